"""In-process CLI runs for the file-input fuzzers (a child process per example costs seconds).

``invoke`` runs a command as ``streams.cli.main`` would and returns its exit code and the one
line ``main`` prints for an expected failure; anything else (a traceback, a message that
renders on several lines or breaks the console's markup) fails the test that called it.
"""

from __future__ import annotations

import asyncio
import io
import re

from rich.console import Console
from typer.testing import CliRunner

from streams.broker import BrokerError, BrokerUnreachable
from streams.cli import app
from streams.cli.common import fail
from streams.errors import CliError
from streams.settings import Settings

#: what streams.cli.main turns into "error: <message>" and exit 1
EXPECTED = (CliError, BrokerError, BrokerUnreachable)


def render_error(exc: BaseException | str) -> list[str]:
    """The non-empty lines ``main`` prints for ``exc`` (its own printer, on a console like ``streams.cli.common.err``)."""
    buf = io.StringIO()
    fail(f"error: {exc}", Console(file=buf, highlight=False, soft_wrap=True, width=120))
    return [line for line in buf.getvalue().splitlines() if line.strip()]


def invoke(*args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    """(exit code, text): the error line on failure, the command's output on success."""
    from typer.exceptions import TyperException

    res = CliRunner().invoke(app, list(args), env=env, standalone_mode=False)
    exc = res.exception
    if exc is None or isinstance(exc, SystemExit):
        return res.exit_code, res.output
    if isinstance(exc, TyperException):  # a usage error: main() prints format_message() on one line
        message = exc.format_message() if hasattr(exc, "format_message") else str(exc)
        lines = render_error(message)
        assert len(lines) == 1, f"usage error of {args} renders on {len(lines)} lines: {lines}"
        return getattr(exc, "exit_code", 2), lines[0]
    if isinstance(exc, EXPECTED):
        lines = render_error(exc)
        assert len(lines) == 1, f"error of {args} renders on {len(lines)} lines: {lines}"
        return 1, lines[0]
    raise exc  # a traceback: the test shows where


def count_records(settings: Settings, topic: str, idle_s: float = 1.0) -> int:
    """Records on a topic, counted by reading it from the beginning until it is idle.

    Not end minus start offsets: Tansu 0.6 reports a high watermark of base offset + 1 for a
    partition whose records came in one batch, so offsets under-count there.
    """
    from streams.kafka_io import tail

    async def run() -> int:
        n = 0
        async for _ in tail(settings, topic, from_beginning=True, idle_timeout_s=idle_s):
            n += 1
        return n

    return asyncio.run(run())


def sent_count(text: str) -> int:
    """N of "sent N records" / "replayed N rows" in a command's report (success or error line)."""
    m = re.search(r"(?:sent|replayed) ([\d,]+) (?:records|rows)", text)
    assert m, text
    return int(m.group(1).replace(",", ""))


def test_render_error_keeps_markup_like_text_on_one_line() -> None:
    assert render_error(CliError("unknown topic 'x'")) == ["error: unknown topic 'x'"]
    assert render_error(CliError("column [/x] [bold]y")) == ["error: column [/x] [bold]y"]
    # a line break quoted from a file (a CSV header in quotes) does not split the message
    assert render_error(CliError("a\nb\u2028c")) == ["error: a b c"]
