"""``leitstand console``: the operator console as its own process (streams/console/, docs/operators.md).

It needs a broker (it reads the state topics from the beginning and writes people's commands) and
at least one account (``leitstand users add NAME --role admin``); workers may start before or after.
"""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer

from ..errors import CliError
from .common import err, reachable_settings

app = typer.Typer(help="The operator console.", no_args_is_help=False)


@app.command("console")
def console(
    host: Annotated[str | None, typer.Option(help="Listen address (default LEITSTAND_CONSOLE_HOST, 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(min=1, max=65535, help="Port (default LEITSTAND_CONSOLE_PORT, 6080).")] = None,
) -> None:
    """Serve the operator console: alarms, signals, silences."""
    from ..console.users import UserStore, users_db_path
    from ..console.web import serve
    from ..stack import terminate_as_interrupt

    settings = reachable_settings()
    store = UserStore(users_db_path(settings))
    try:  # the console's own audit log follows the audit-log retention (never under six months)
        pruned = store.prune_audit(settings.retention_audit_log_days)
    except ValueError as exc:
        store.close()
        raise CliError(f"console audit log not pruned: {exc}") from None
    if pruned:
        err.print(f"pruned {pruned} console audit lines older than {settings.retention_audit_log_days} days", markup=False)
    if not store.all_users():
        err.print(f"note: no accounts in {store.path} yet; add one with: leitstand users add NAME --role admin", markup=False)
    where_host, where_port = host or settings.console_host, port or settings.console_port
    try:
        with terminate_as_interrupt():
            asyncio.run(serve(settings, store, where_host, where_port, ready_line=lambda line: err.print(line, markup=False)))
    except OSError as exc:
        raise CliError(f"console cannot listen on {where_host}:{where_port}: {exc.strerror or exc}") from None
    finally:
        store.close()
