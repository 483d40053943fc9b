"""The runtime's own commands, at the root of ``leitstand``: ``config``, ``worker``, ``produce``
and ``tail``. Quick to read and quick to start: Kafka and Faust are imported inside the commands.
"""

from __future__ import annotations

import asyncio
import base64
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING, Annotated, Any

import orjson
import typer

from ..errors import CliError
from .common import check_catalogue_topic, cli_settings, err, fail, finite_seconds, input_file, out, reachable_settings, settings_overrides

if TYPE_CHECKING:
    from ..kafka_io import TailedMessage, TailReport

#: mounted without a name: these commands sit at the root
app = typer.Typer()


@app.command("config")
def config_cmd(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Print the effective settings, secrets masked.

    Sources, lowest first: defaults, .env, LEITSTAND_* variables, command-line flags.
    """
    shown = cli_settings().masked()
    if as_json:
        out.print_json(data=shown)
        return
    from rich.table import Column, Table

    if not out.is_terminal:  # piped or redirected: tab-separated lines, nothing cut to 80 columns
        for name, value in shown.items():
            print(f"{name}\t{'' if value is None else value}\tLEITSTAND_{name.upper()}")
        return
    table = Table(*(Column(h, overflow="fold") for h in ("setting", "value", "environment variable")), box=None)
    for name, value in shown.items():
        table.add_row(name, "" if value is None else str(value), f"LEITSTAND_{name.upper()}")
    out.print(table)


@app.command("worker")
def worker_cmd(
    web_port: Annotated[int | None, typer.Option(help="Port of the worker's HTTP endpoints (/ready, /metrics).")] = None,
    table_store: Annotated[str | None, typer.Option(help="memory:// or rocksdb://")] = None,
    role: Annotated[
        str | None,
        typer.Option(
            help="all (default), critical (camera events, alarms, notifier, API), water (pool water limits, "
            "silent pool sensors), telemetry (frames, buses, forecasts) or control (signal control, signals API).",
        ),
    ] = None,
) -> None:
    """Run the stream-processing worker with every agent.

    Serves /ready and /metrics on the web port; stops on Ctrl-C or SIGTERM.
    """
    from ..worker import run_worker

    if web_port is not None:
        settings_overrides["web_port"] = web_port
    if table_store is not None:
        settings_overrides["table_store"] = table_store
    if role is not None:
        settings_overrides["worker_role"] = role
    run_worker(cli_settings())


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
    from ..records import KEYED_RECORDS

    check_catalogue_topic(topic, create)
    if file is not None:
        input_file(file)
    settings = reachable_settings()
    if key_field is None and topic in KEYED_RECORDS:
        key_field = KEYED_RECORDS[topic].key_field
    try:
        # stdin through a reader of its own: the read-ahead thread may still block in it when a
        # Ctrl-C ends the command, and the interpreter's shutdown then aborted on sys.stdin's lock
        lines: IO[bytes] = file.open("rb") if file is not None else open(sys.stdin.fileno(), "rb", closefd=False)  # noqa: SIM115
    except OSError as exc:
        raise CliError(f"cannot read {file}: {exc.strerror}") from None

    async def send() -> Any:
        await ensure_topics(settings, [topic])  # catalogue topics with the configured partitions, not the broker's default
        return await produce_checked(settings, settings.topic(topic), keyed_lines(read_lines(lines, file), key_field))

    try:
        report = asyncio.run(send())
    finally:
        if file is not None:
            lines.close()
    target = settings.topic(topic)
    if report.refused:
        raise CliError(f"sent {report.sent} records to {target}; refused {len(report.refused)}: " + report.refused_summary())
    err.print(f"sent {report.sent} records to {target}")


def read_lines(lines: Iterable[bytes], file: Path | None) -> Iterator[bytes]:
    """``lines``, with a read error as a one-line ``CliError`` naming the input (the records
    before it are sent)."""
    try:
        yield from lines
    except OSError as exc:
        raise CliError(f"cannot read {file or 'stdin'}: {exc.strerror or exc}") from None


def keyed_lines(lines: Iterable[bytes], key_field: str | None) -> Iterator[tuple[int, bytes | None, bytes]]:
    """``(line number, key, line)`` for every non-empty line; the key is the value of
    ``key_field`` when the line is a JSON object holding it (a bad line is still sent, unkeyed)."""
    for number, raw in enumerate(lines, start=1):
        line = raw.rstrip(b"\r\n")
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


@app.command("tail")
def tail_cmd(
    topic: Annotated[str, typer.Argument(help="Catalogue topic name, e.g. aggregates or deadletter.")],
    from_beginning: Annotated[bool, typer.Option("--from-beginning", help="Start at the oldest retained record.")] = False,
    n: Annotated[int | None, typer.Option("-n", min=1, help="Stop after N records.")] = None,
    idle_timeout: Annotated[
        float | None,
        typer.Option(
            callback=finite_seconds,
            help="Stop after this many seconds without a record, counted once the records present at start are read.",
        ),
    ] = None,
    meta: Annotated[bool, typer.Option("--meta", help="Wrap each value with partition, offset, key and timestamp.")] = False,
) -> None:
    """Print a topic's records as JSON lines.

    The idle timeout counts once the records present at start have been read; a tail that read
    nothing says why on stderr.
    """
    from ..kafka_io import TailError, TailReport, tail

    settings = reachable_settings()
    name = settings.topic(topic)
    report = TailReport()

    async def print_records() -> None:
        async for record in tail(settings, name, from_beginning=from_beginning, limit=n, idle_timeout_s=idle_timeout, report=report):
            sys.stdout.buffer.write(orjson.dumps(tailed_value(record, meta)) + b"\n")
            sys.stdout.flush()

    try:
        asyncio.run(print_records())
    except (LookupError, TailError) as exc:
        raise CliError(str(exc)) from None
    if report.idle_stop and report.read == 0:
        fail(f"no records on {name} ({tail_empty_reason(report, from_beginning)}, none arrived in {idle_timeout:g} s)")


def tail_empty_reason(report: TailReport, from_beginning: bool) -> str:
    """Why a tail that stopped idle had nothing to print before anything arrived."""
    if not from_beginning:
        return "read from its end"
    return "empty at start" if report.empty_at_start else "nothing left at start"


def tailed_value(record: TailedMessage, meta: bool) -> Any:
    """A record's value as JSON (base64 when it is not JSON), wrapped with its position with ``meta``."""
    try:
        value: Any = orjson.loads(record.value) if record.value else None
    except orjson.JSONDecodeError:
        value = {"undecodable_b64": base64.b64encode(record.value or b"").decode()}
    if not meta:
        return value
    return {
        "partition": record.partition,
        "offset": record.offset,
        "timestamp_ms": record.timestamp_ms,
        "key": record.key.decode("utf-8", "replace") if record.key is not None else None,
        "value": value,
    }
