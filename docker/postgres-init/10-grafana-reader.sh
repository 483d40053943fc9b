#!/bin/sh
# Run once by the postgres image on the first start of an empty data volume
# (/docker-entrypoint-initdb.d). Creates `grafana_reader`, the role Grafana's PostgreSQL
# datasource logs in with: it may read every table the owner ($POSTGRES_USER) creates later
# (`leitstand db migrate` runs after this), and change nothing, so a dashboard query can never
# alter the history or the audit log.
set -eu
: "${GRAFANA_DB_PASSWORD:?GRAFANA_DB_PASSWORD is not set}"

psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
    -v owner="$POSTGRES_USER" -v db="$POSTGRES_DB" -v pw="$GRAFANA_DB_PASSWORD" <<'SQL'
CREATE ROLE grafana_reader LOGIN PASSWORD :'pw' NOSUPERUSER NOCREATEDB NOCREATEROLE;
GRANT CONNECT ON DATABASE :"db" TO grafana_reader;
GRANT USAGE ON SCHEMA public TO grafana_reader;
GRANT SELECT ON ALL TABLES IN SCHEMA public TO grafana_reader;
ALTER DEFAULT PRIVILEGES FOR ROLE :"owner" IN SCHEMA public GRANT SELECT ON TABLES TO grafana_reader;
ALTER ROLE grafana_reader SET default_transaction_read_only = on;
ALTER ROLE grafana_reader SET statement_timeout = '30s';
SQL
