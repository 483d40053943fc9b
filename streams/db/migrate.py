"""Versioned schema migrations: SQL files in ``migrations/``, applied in order, each once.

A minimal runner rather than yoyo-migrations (the candidate tool): yoyo guards concurrent runs
with a lock *row* that a killed ``migrate`` leaves behind (every later run then waits and fails
until someone runs ``yoyo break-lock``), and it reads only URL DSNs, where our settings accept
libpq's ``key=value`` form too. Here a transaction-scoped advisory lock serialises concurrent
runs and dies with its session, and every migration is applied in the same transaction as its
row in ``schema_migrations`` (PostgreSQL's DDL is transactional): a migration is either wholly
applied and recorded, or not at all. The checksum of every applied file is kept and compared,
so an edited migration is refused instead of silently diverging from the databases it built.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from .connect import DatabaseUnavailable, connect, one_line

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
#: ``0001_history_schema.sql``: version 1, name ``history_schema``
_FILE = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
#: arbitrary constant: the advisory lock that serialises ``migrate`` runs on one database
_LOCK_KEY = 0x1E175_0001

_BOOKKEEPING = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    int PRIMARY KEY,
    name       text NOT NULL,
    sha256     text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)
"""


class MigrationError(DatabaseUnavailable):
    """A migration file or the database's migration history is not as expected."""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def load_migrations(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    """The migrations in version order; a stray file name or a gap in the numbers is refused."""
    found = []
    for path in sorted(directory.glob("*.sql")):
        m = _FILE.match(path.name)
        if m is None:
            raise MigrationError(f"{path.name}: migration files are named NNNN_name.sql")
        found.append(Migration(int(m[1]), m[2], path.read_text(encoding="utf-8")))
    for expected, mig in enumerate(found, start=1):
        if mig.version != expected:
            raise MigrationError(f"migration {expected:04d} is missing (found {mig.version:04d}_{mig.name}.sql)")
    return found


def migrate(dsn: str, migrations: list[Migration] | None = None) -> list[Migration]:
    """Apply the migrations not applied yet; returns those applied now (empty: up to date)."""
    import psycopg

    todo = load_migrations() if migrations is None else migrations
    applied_now: list[Migration] = []
    with connect(dsn, application_name="leitstand-migrate") as conn:
        try:
            exists = conn.execute("SELECT to_regclass('schema_migrations') IS NOT NULL").fetchone()
            newest = conn.execute(APPLIED_VERSION_SQL).fetchone() if exists and exists[0] else None
            conn.rollback()
            if newest and int(newest[0]) > len(todo):
                raise MigrationError(
                    f"the history schema is version {newest[0]}, newer than this release's {len(todo)}: "
                    "use the newer release (its sink writes that schema)"
                )
            for mig in todo:
                with conn.transaction():
                    conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_KEY,))
                    conn.execute(_BOOKKEEPING)
                    row = conn.execute("SELECT sha256 FROM schema_migrations WHERE version = %s", (mig.version,)).fetchone()
                    if row is not None:
                        if row[0] != mig.sha256:
                            raise MigrationError(
                                f"migration {mig.version:04d}_{mig.name} was changed after it was applied; add a new migration instead"
                            )
                        continue
                    conn.execute(mig.sql.encode())  # bytes: psycopg sends the whole script, no %-placeholders
                    conn.execute(
                        "INSERT INTO schema_migrations (version, name, sha256) VALUES (%s, %s, %s)", (mig.version, mig.name, mig.sha256)
                    )
                applied_now.append(mig)
        except psycopg.Error as exc:
            raise MigrationError(f"migration failed: {one_line(exc)}") from None
    return applied_now


#: the newest applied migration (0 when the table exists but is empty), shared with the sink's check
APPLIED_VERSION_SQL = "SELECT coalesce(max(version), 0) FROM schema_migrations"


def current_version(dsn: str) -> int:
    """The newest applied migration (0: none)."""
    with connect(dsn, application_name="leitstand-migrate") as conn:
        row = conn.execute("SELECT to_regclass('schema_migrations') IS NOT NULL").fetchone()
        if not row or not row[0]:
            return 0
        got = conn.execute(APPLIED_VERSION_SQL).fetchone()
        return int(got[0]) if got else 0
