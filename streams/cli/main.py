"""The ``leitstand`` command line: the root app, the quick commands (config, broker, topics,
worker, produce, tail), the command groups of the sibling modules mounted, and ``main``.

Every expected failure (broker missing, port taken, bad argument, unreachable Kafka) ends in
one line on stderr and a non-zero exit; tracebacks are for bugs only.
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer
from pydantic import ValidationError

from ..broker import ENGINES, BrokerError, BrokerUnreachable
from ..errors import CliError
from ..settings import Settings
from . import detect, forecast, run, signals, sumo
from .common import _fail, _overrides, _reachable_settings, err, out, settings

app = typer.Typer(
    name="leitstand",
    help="Leitstand: real-time traffic and infrastructure analytics for municipal control rooms.\n\n"
    "Settings come from defaults, .env, LEITSTAND_* variables and these flags.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
broker_app = typer.Typer(help="Start, stop or inspect the local Kafka broker.", no_args_is_help=True)
topics_app = typer.Typer(help="Create or list the Kafka topics.", no_args_is_help=True)
simulate_app = typer.Typer(help="Produce synthetic sensor streams.", no_args_is_help=True)
bench_app = typer.Typer(help="Run benchmarks (JSON, with a same-run baseline).", no_args_is_help=True)
app.add_typer(broker_app, name="broker")
app.add_typer(topics_app, name="topics")
app.add_typer(simulate_app, name="simulate")
app.add_typer(bench_app, name="bench")


@app.callback()
def _global(
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
    _overrides.update(
        kafka_bootstrap_servers=bootstrap_servers,
        topic_prefix=topic_prefix,
        state_dir=state_dir,
        log_level=log_level,
    )


# --- config -------------------------------------------------------------------------------


@app.command("config")
def config_cmd(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Print the effective settings, secrets masked.

    Sources, lowest first: defaults, .env, LEITSTAND_* variables, command-line flags.
    """
    shown = settings().masked()
    if as_json:
        out.print_json(data=shown)
        return
    from rich.table import Table

    table = Table("setting", "value", "environment variable", box=None)
    for k, v in shown.items():
        table.add_row(k, "" if v is None else str(v), f"LEITSTAND_{k.upper()}")
    out.print(table)


# --- broker -------------------------------------------------------------------------------


def _engine(value: str) -> str:
    if value not in ENGINES:
        raise typer.BadParameter(f"choose one of {', '.join(ENGINES)}")
    return value


def _host_port(s: Settings, port: int | None) -> tuple[str, int]:
    from ..broker.probe import check_bootstrap

    host, p = check_bootstrap(s.kafka_bootstrap_servers)[0]
    return (host, port if port is not None else p)


def _finite_seconds(value: float | None) -> float | None:
    """A duration option: finite and not negative (NaN and inf meant 'wait forever')."""
    if value is not None and not 0 <= value < float("inf"):
        raise typer.BadParameter(f"must be a finite number of seconds >= 0, not {value}")
    return value


@broker_app.command("start")
def broker_start(
    engine: Annotated[
        str,
        typer.Option(
            callback=_engine,
            help="tansu (embedded, memory-only) or kafka (Apache Kafka KRaft, durable).",
        ),
    ] = "tansu",
    port: Annotated[int | None, typer.Option(min=1, max=65535, help="Listener port (default: from the bootstrap address).")] = None,
) -> None:
    """Start a broker on loopback and wait until it answers."""
    from ..broker import start

    s = settings()
    host, p = _host_port(s, port)
    if host not in ("127.0.0.1", "localhost"):
        raise CliError(f"the managed broker only listens on loopback, not {host}")
    info = start(engine, s.state_dir, s.cache_dir, "127.0.0.1", p, progress=True)
    out.print(f"{engine} broker ready on {info.bootstrap} after {info.ready_after_s:.2f} s (pid {info.pid}, log {info.log_file})")


@broker_app.command("stop")
def broker_stop(
    engine: Annotated[str | None, typer.Option(help="Stop only this engine (default: any running).")] = None,
) -> None:
    """Stop the broker started by 'leitstand broker start'."""
    from ..broker import stop

    s = settings()
    stopped = [i for e in ([engine] if engine else ENGINES) if (i := stop(s.state_dir, e)) is not None]
    if not stopped:
        out.print("no broker is running")
        return
    for i in stopped:
        out.print(f"stopped {i.engine} broker (pid {i.pid}, {i.bootstrap})")


@broker_app.command("status")
def broker_status() -> None:
    """Show the running broker and whether it answers.

    Exits 1 when no broker runs.
    """
    from ..broker import read_info
    from ..broker.probe import metadata_ok

    s = settings()
    running = [i for e in ENGINES if (i := read_info(s.state_dir, e)) is not None]
    if not running:
        out.print("no broker is running")
        raise typer.Exit(1)
    for i in running:
        ok = asyncio.run(metadata_ok(i.bootstrap, timeout_s=2.0))
        up = time.time() - i.started_at
        out.print(
            f"{i.engine} broker on {i.bootstrap}: pid {i.pid}, up {up:.0f} s, "
            f"{'answers metadata requests' if ok else 'NOT answering'}; log {i.log_file}"
        )


# --- topics -------------------------------------------------------------------------------


@topics_app.command("create")
def topics_create() -> None:
    """Create the catalogue topics that are missing."""
    from ..kafka_io import ensure_topics

    s = _reachable_settings()
    created = asyncio.run(ensure_topics(s))
    out.print(f"created {len(created)} topics" + (": " + ", ".join(created) if created else " (all existed)"))


@topics_app.command("list")
def topics_list() -> None:
    """List the topics on the broker."""
    from ..kafka_io import list_topics

    for t in asyncio.run(list_topics(_reachable_settings())):
        out.print(t)


# --- worker -------------------------------------------------------------------------------


@app.command("worker")
def worker_cmd(
    web_port: Annotated[int | None, typer.Option(help="Port of the worker's HTTP endpoints (/ready, /metrics).")] = None,
    table_store: Annotated[str | None, typer.Option(help="memory:// or rocksdb://")] = None,
    role: Annotated[
        str | None,
        typer.Option(
            help="all (default), critical (camera events, alarms, notifier, API), telemetry (frames, water readings) "
            "or control (signal control, signals API).",
        ),
    ] = None,
) -> None:
    """Run the stream-processing worker with every agent.

    Serves /ready and /metrics on the web port; stops on Ctrl-C or SIGTERM.
    """
    from ..worker import run_worker

    if web_port is not None:
        _overrides["web_port"] = web_port
    if table_store is not None:
        _overrides["table_store"] = table_store
    if role is not None:
        _overrides["worker_role"] = role
    run_worker(settings())


# --- produce / tail -----------------------------------------------------------------------


@app.command("produce")
def produce_cmd(
    topic: Annotated[str, typer.Argument(help="Catalogue topic name, e.g. sensors.intersection (the prefix is added).")],
    file: Annotated[Path | None, typer.Option("--file", "-f", help="JSON lines file (default: stdin).")] = None,
    key_field: Annotated[
        str | None,
        typer.Option(
            help="Field whose value becomes the message key (default: the topic's key field).",
        ),
    ] = None,
    create: Annotated[bool, typer.Option("--create", help="Allow a topic outside the catalogue (created if missing).")] = False,
) -> None:
    """Send JSON lines from a file or stdin to a topic.

    Lines are sent as they are, bad ones too: the worker dead-letters them. A line too large
    for the producer is refused; the others are still sent, and the command then fails
    naming each refused line.
    """

    from ..kafka_io import ensure_topics, produce_checked
    from ..records import INPUT_RECORDS
    from ..topics import TopicError, check_topic

    try:
        check_topic(topic, create=create, prefix=settings().topic_prefix)
    except TopicError as exc:
        raise CliError(str(exc)) from None
    if file is not None and not file.is_file():
        raise CliError(f"no such file: {file}")
    s = _reachable_settings()
    if key_field is None and topic in INPUT_RECORDS:
        key_field = INPUT_RECORDS[topic].key_field
    try:
        lines = file.open("rb") if file is not None else sys.stdin.buffer
    except OSError as exc:
        raise CliError(f"cannot read {file}: {exc.strerror}") from None

    def items() -> Any:
        for number, line in enumerate(lines, start=1):
            line = line.rstrip(b"\r\n")
            if not line:
                continue
            key = None
            if key_field:
                try:
                    obj = orjson.loads(line)
                    if isinstance(obj, dict) and obj.get(key_field) is not None:
                        key = str(obj[key_field]).encode()
                except orjson.JSONDecodeError:
                    pass
            yield number, key, line

    async def run() -> Any:
        await ensure_topics(s, [topic])  # catalogue topics with the configured partitions, not the broker's default
        return await produce_checked(s, s.topic(topic), items())

    try:
        report = asyncio.run(run())
    finally:
        if file is not None:
            lines.close()
    if report.refused:
        raise CliError(f"sent {report.sent} records to {s.topic(topic)}; refused {len(report.refused)}: " + report.refused_summary())
    err.print(f"sent {report.sent} records to {s.topic(topic)}")


@app.command("tail")
def tail_cmd(
    topic: Annotated[str, typer.Argument(help="Catalogue topic name, e.g. aggregates or deadletter.")],
    from_beginning: Annotated[bool, typer.Option("--from-beginning", help="Start at the oldest retained record.")] = False,
    n: Annotated[int | None, typer.Option("-n", min=1, help="Stop after N records.")] = None,
    idle_timeout: Annotated[
        float | None,
        typer.Option(
            callback=_finite_seconds,
            help="Stop after this many seconds without a record.",
        ),
    ] = None,
    meta: Annotated[bool, typer.Option("--meta", help="Wrap each value with partition, offset, key and timestamp.")] = False,
) -> None:
    """Print a topic's records as JSON lines."""
    from ..kafka_io import tail

    s = _reachable_settings()

    async def run() -> None:
        async for m in tail(s, s.topic(topic), from_beginning=from_beginning, limit=n, idle_timeout_s=idle_timeout):
            try:
                value: Any = orjson.loads(m.value) if m.value else None
            except orjson.JSONDecodeError:
                import base64

                value = {"undecodable_b64": base64.b64encode(m.value or b"").decode()}
            if meta:
                value = {
                    "partition": m.partition,
                    "offset": m.offset,
                    "timestamp_ms": m.timestamp_ms,
                    "key": m.key.decode("utf-8", "replace") if m.key is not None else None,
                    "value": value,
                }
            sys.stdout.buffer.write(orjson.dumps(value) + b"\n")
            sys.stdout.flush()

    try:
        asyncio.run(run())
    except LookupError as exc:
        raise CliError(str(exc)) from None


# --- simulate / demo / bench, detect, forecast, sumo, signals: mounted from their modules --

run.register(app, simulate_app, bench_app)
detect.register(app, bench_app)
forecast.register(app, bench_app)
sumo.register(app, bench_app)
signals.register(app)


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
        _fail(f"error: {where}{message}")
        sys.exit(getattr(exc, "exit_code", 2))
    except (CliError, BrokerError, BrokerUnreachable) as exc:
        _fail(f"error: {exc}")
        sys.exit(1)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ())) or "settings"
        _fail(f"error: invalid setting {where}: {first.get('msg')}")
        sys.exit(2)
    except (KeyboardInterrupt, typer.Abort):
        err.print("interrupted")
        sys.exit(130)
    if code == 130:  # typer turns Ctrl-C into Exit(130) without a word
        err.print("interrupted")
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
