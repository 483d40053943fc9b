"""``leitstand broker start|stop|status``: the local Tansu or Apache Kafka broker on loopback."""

from __future__ import annotations

import asyncio
import time
from typing import Annotated

import typer

from ..broker import ENGINES
from ..errors import CliError
from ..settings import Settings
from .common import cli_settings, out

app = typer.Typer(help="Start, stop or inspect the local Kafka broker.", no_args_is_help=True)


def engine_name(value: str) -> str:
    """The ``--engine`` option: one of the managed engines."""
    if value not in ENGINES:
        raise typer.BadParameter(f"choose one of {', '.join(ENGINES)}")
    return value


def host_port(settings: Settings, port: int | None) -> tuple[str, int]:
    """The first bootstrap address, its port replaced by ``--port`` when given."""
    from ..broker.probe import check_bootstrap

    host, bootstrap_port = check_bootstrap(settings.kafka_bootstrap_servers)[0]
    return (host, port if port is not None else bootstrap_port)


@app.command("start")
def broker_start(
    engine: Annotated[
        str,
        typer.Option(
            callback=engine_name,
            help="tansu (embedded, memory-only) or kafka (Apache Kafka KRaft, durable).",
        ),
    ] = "tansu",
    port: Annotated[int | None, typer.Option(min=1, max=65535, help="Listener port (default: from the bootstrap address).")] = None,
) -> None:
    """Start a broker on loopback and wait until it answers."""
    from ..broker import start

    settings = cli_settings()
    host, listen_port = host_port(settings, port)
    if host not in ("127.0.0.1", "localhost"):
        raise CliError(f"the managed broker only listens on loopback, not {host}")
    info = start(engine, settings.state_dir, settings.cache_dir, "127.0.0.1", listen_port, progress=True)
    out.print(f"{engine} broker ready on {info.bootstrap} after {info.ready_after_s:.2f} s (pid {info.pid}, log {info.log_file})")


@app.command("stop")
def broker_stop(
    engine: Annotated[
        str | None, typer.Option(help="Stop only this engine (default: any running).", callback=lambda v: v and engine_name(v))
    ] = None,
) -> None:
    """Stop the broker started by 'leitstand broker start'."""
    from ..broker import stop

    settings = cli_settings()
    stopped = [info for name in ([engine] if engine else ENGINES) if (info := stop(settings.state_dir, name)) is not None]
    if not stopped:
        out.print(f"no broker started from {settings.state_dir.resolve()} is running{_someone_answers(settings)}")
        return
    for info in stopped:
        out.print(f"stopped {info.engine} broker (pid {info.pid}, {info.bootstrap})")


def _someone_answers(settings: Settings) -> str:
    """What to add when the state directory knows no broker but the configured address answers:
    the state directory is relative to the working directory, and a broker started from another
    one was reported as "no broker is running" while it served (a probe of stop 55)."""
    from ..broker.probe import _quiet_aiokafka, check_bootstrap, metadata_ok

    _quiet_aiokafka()  # a refused connection is the answer here, not an error to print
    try:
        host, port = check_bootstrap(settings.kafka_bootstrap_servers)[0]
    except Exception:  # noqa: BLE001 - a bad address is reported where it is used, not here
        return ""
    if not asyncio.run(metadata_ok(f"{host}:{port}", timeout_s=2.0)):
        return ""
    return (
        f"; but a broker answers at {host}:{port}: it was started with another --state-dir "
        "(relative to the working directory) or by someone else; stop it from there"
    )


@app.command("status")
def broker_status() -> None:
    """Show the running broker and whether it answers.

    Exits 1 when no broker runs.
    """
    from ..broker import read_info
    from ..broker.probe import metadata_ok

    settings = cli_settings()
    running = [info for name in ENGINES if (info := read_info(settings.state_dir, name)) is not None]
    if not running:
        out.print(f"no broker started from {settings.state_dir.resolve()} is running{_someone_answers(settings)}")
        raise typer.Exit(1)
    for info in running:
        answers = asyncio.run(metadata_ok(info.bootstrap, timeout_s=2.0))
        up = time.time() - info.started_at
        out.print(
            f"{info.engine} broker on {info.bootstrap}: pid {info.pid}, up {up:.0f} s, "
            f"{'answers metadata requests' if answers else 'NOT answering'}; log {info.log_file}"
        )
