"""History in PostgreSQL: record -> row mapping (rows.py), schema migrations (migrate.py and
migrations/), the exactly-once history sink (sink.py) and retention (prune.py). docs/database.md."""
