"""The history database: ``leitstand db migrate``, ``leitstand db prune`` and, at the root,
``leitstand sink`` (the process that writes the topics into PostgreSQL). docs/database.md.

psycopg and aiokafka are imported inside the commands, so ``leitstand --help`` stays quick.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Annotated

import typer

from ..errors import CliError
from .common import cli_settings, out, reachable_settings

#: the ``db`` group
app = typer.Typer(help="History in PostgreSQL: migrations, retention.", no_args_is_help=True)
#: mounted without a name: ``sink`` sits at the root
root_app = typer.Typer()


@app.command("migrate")
def migrate_cmd() -> None:
    """Create or update the history schema (idempotent).

    Applies only the migrations the database lacks; each in one transaction with its record."""
    from ..db.connect import describe, dsn_of
    from ..db.migrate import current_version, migrate

    dsn = dsn_of(cli_settings())
    applied = migrate(dsn)
    for mig in applied:
        out.print(f"applied {mig.version:04d}_{mig.name}")
    version = current_version(dsn)
    state = "migrated" if applied else "already up to date"
    out.print(f"{describe(dsn)}: {state} (schema version {version})")


@app.command("prune")
def prune_cmd(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Count what would be deleted; delete nothing.")] = False,
) -> None:
    """Delete history older than each table's retention.

    Ages from LEITSTAND_RETENTION_*_DAYS. The audit log is kept at least 183 days (EU AI Act Art. 12/19); a smaller setting is refused.
    """
    import psycopg

    from ..db.connect import dsn_of, one_line
    from ..db.prune import RetentionRefused, prune, retention_rules

    settings = cli_settings()
    dsn = dsn_of(settings)
    try:
        rules = retention_rules(settings)
    except RetentionRefused as exc:
        raise CliError(str(exc)) from None
    try:
        pruned = prune(dsn, rules, now=datetime.now(timezone.utc), dry_run=dry_run)
    except psycopg.Error as exc:
        raise CliError(f"prune failed: {one_line(exc)} (has `leitstand db migrate` run?)") from None
    verb = "would delete" if dry_run else "deleted"
    for p in pruned:
        out.print(f"{p.table}: {verb} {p.rows} rows older than {p.days} days (before {p.cutoff:%Y-%m-%d %H:%M} UTC)")


@root_app.command("sink")
def sink_cmd() -> None:
    """Write the history topics into PostgreSQL, exactly once.

    Needs LEITSTAND_POSTGRES_DSN and a migrated database. Aggregates, pool readings, signal
    plans, the audit log, alarm transitions and forecasts; resumes from the offsets stored with
    the rows. Stops on Ctrl-C or SIGTERM.
    """
    import logging.config

    from ..db.connect import dsn_of
    from ..db.sink import run_sink
    from ..logs import configure_structlog, logging_config

    settings = cli_settings()
    dsn = dsn_of(settings)
    settings = reachable_settings()
    configure_structlog()
    logging.config.dictConfig(logging_config(settings.log_level, settings.log_format))
    run_sink(settings, dsn)
