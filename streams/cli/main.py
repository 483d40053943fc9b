"""The ``leitstand`` command line: the root app with the global flags, every command group
mounted from its module, and ``main``.

Each module holds one typer app and its commands as module-level functions. The apps mounted
without a name (``runtime``, ``run``, ``detect``) have no callback, so typer merges their
commands into the root: ``leitstand config``, ``leitstand demo``, ``leitstand detect``. The order
of the ``add_typer`` calls is the order of ``leitstand --help``.

Every expected failure (broker missing, port taken, bad argument, unreachable Kafka) ends in
one line on stderr and a non-zero exit; tracebacks are for bugs only.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError

from ..broker import BrokerError, BrokerUnreachable
from ..errors import CliError
from .bench import app as bench_app
from .broker import app as broker_app
from .common import err, fail, settings_overrides
from .console import app as console_app
from .dashboards import app as dashboards_app
from .db import app as db_app
from .db import root_app as sink_app
from .detect import app as detect_app
from .events import app as events_app
from .explain import app as explain_app
from .forecast import app as forecast_app
from .gtfs import app as gtfs_app
from .ingest import app as ingest_app
from .registry import app as registry_app
from .run import app as run_app
from .runtime import app as runtime_app
from .signals import app as signals_app
from .simulate import app as simulate_app
from .sumo import app as sumo_app
from .topics import app as topics_app
from .users import app as users_app

app = typer.Typer(
    name="leitstand",
    help="Leitstand: real-time traffic and infrastructure analytics for municipal control rooms.\n\n"
    "Settings come from defaults, .env, LEITSTAND_* variables and these flags.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


@app.callback()
def global_options(
    bootstrap_servers: Annotated[
        str | None,
        typer.Option(
            "--bootstrap-servers",
            "-b",
            help="Kafka bootstrap host:port[,host:port].",
        ),
    ] = None,
    topic_prefix: Annotated[str | None, typer.Option(help="Prefix of every topic name.")] = None,
    state_dir: Annotated[Path | None, typer.Option(help="Where broker pid/log files and local state live.")] = None,
    log_level: Annotated[str | None, typer.Option(help="debug, info, warning or error.")] = None,
) -> None:
    """The flags every command shares; they override the loaded settings."""
    settings_overrides.update(
        kafka_bootstrap_servers=bootstrap_servers,
        topic_prefix=topic_prefix,
        state_dir=state_dir,
        log_level=log_level,
    )


# root commands first (merged, in this order), then the groups
app.add_typer(runtime_app)
app.add_typer(run_app)
app.add_typer(detect_app)
app.add_typer(sink_app)
app.add_typer(broker_app, name="broker")
app.add_typer(topics_app, name="topics")
app.add_typer(simulate_app, name="simulate")
app.add_typer(bench_app, name="bench")
app.add_typer(forecast_app, name="forecast")
app.add_typer(gtfs_app, name="gtfs")
app.add_typer(ingest_app, name="ingest")
app.add_typer(events_app, name="events")
app.add_typer(sumo_app, name="sumo")
app.add_typer(signals_app, name="signals")
app.add_typer(dashboards_app, name="dashboards")
app.add_typer(db_app, name="db")
app.add_typer(console_app)  # `leitstand console` (merged into the root)
app.add_typer(users_app, name="users")
app.add_typer(registry_app, name="registry")
app.add_typer(explain_app, name="explain")


def unexpected(exc: BaseException) -> str:
    """One line for a failure nobody foresaw (a bug, or an input no check knew), with the stack
    trace written to a private file: a person at the CLI gets a message, a developer the details.
    Stop 55's probe found a dozen inputs that ended in a trace (``--duration inf``, a year 10000,
    a state directory that is a file)."""
    import tempfile
    import traceback

    detail = "".join(traceback.format_exception(exc))
    try:
        fd, path = tempfile.mkstemp(prefix="leitstand-error-", suffix=".log")  # 0600
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(detail)
        where = f"the details are in {path}"
    except OSError:
        where = "the details could not be written to a file"
    return f"error: unexpected {type(exc).__name__}: {exc} ({where}; please report it with the command you ran)"


def main() -> None:
    """Console-script entry point: one line per expected failure, no tracebacks."""
    # typer vendors click; its usage errors all derive from typer.exceptions.TyperException
    from typer.exceptions import TyperException

    try:
        code = app(standalone_mode=False)
    except TyperException as exc:
        message = exc.format_message() if hasattr(exc, "format_message") else str(exc)
        if type(exc).__name__ == "NoArgsIsHelpError":  # a bare group: show its help
            err.print(message)
            sys.exit(2)
        ctx = getattr(exc, "ctx", None)
        where = f"{ctx.command_path}: " if ctx is not None else ""
        fail(f"error: {where}{message}")
        sys.exit(getattr(exc, "exit_code", 2))
    except (CliError, BrokerError, BrokerUnreachable) as exc:
        fail(f"error: {exc}")
        sys.exit(1)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ())) or "settings"
        fail(f"error: invalid setting {where}: {first.get('msg')}")
        sys.exit(2)
    except (KeyboardInterrupt, typer.Abort):
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C (or timeout's group signal) ends it without a trace
        err.print("interrupted")
        sys.exit(130)
    except Exception as exc:  # noqa: BLE001 - the last guard: one line for the person, the trace in a file
        fail(unexpected(exc))
        sys.exit(1)
    if code == 130:  # typer turns Ctrl-C into Exit(130) without a word
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        err.print("interrupted")
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
