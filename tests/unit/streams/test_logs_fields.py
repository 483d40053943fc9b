"""Every log call in the code renders through the worker's real logging config, in both formats.

The field names are collected from the source (keyword arguments of ``log.*`` calls), so a new
call that names a field structlog or the renderer reserves (``event``, ``level``, ...) fails here
rather than crashing an agent or printing ``--- Logging error ---`` in production.
"""

from __future__ import annotations

import ast
import io
import json
import logging
import logging.config
import traceback
from collections.abc import Callable, Iterator
from unittest import mock

import pytest
import structlog
from hypothesis import given
from hypothesis import strategies as st

from streams.logs import configure_structlog, field_name, logging_config
from tests.fuzzing import budget
from tests.paths import REPO

PACKAGES = ("streams", "signals", "detection", "forecasting", "simulators")
LOG_METHODS = {"debug", "info", "warning", "warn", "error", "exception", "critical", "msg", "log", "bind", "new"}
#: keyword arguments that are directives to structlog, not fields of the line
DIRECTIVES = {"exc_info", "stack_info"}
VALUES = [7, "two words", None, {"nested": 1}, 1.5, ["a", 2]]


def _is_logger(node: ast.expr) -> bool:
    name = node.id if isinstance(node, ast.Name) else node.attr if isinstance(node, ast.Attribute) else ""
    return name.lower().endswith(("log", "logger"))


def logged_field_names() -> set[str]:
    """Keyword names of every ``log.<method>(...)`` / ``logger.<method>(...)`` call in the code,
    and the field names of every ``Note(level, event, {fields})`` a pure core hands the worker to log."""
    names: set[str] = set()
    for package in PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
                if not isinstance(node, ast.Call):
                    continue
                if isinstance(node.func, ast.Attribute) and node.func.attr in LOG_METHODS and _is_logger(node.func.value):
                    names |= {k.arg for k in node.keywords if k.arg is not None}
                names |= _note_field_names(node)
    return names


def _note_field_names(call: ast.Call) -> set[str]:
    """The literal keys of a ``Note(level, event, {...})`` call's fields (signals/desk.py)."""
    if not (isinstance(call.func, ast.Name) and call.func.id == "Note"):
        return set()
    fields = call.args[2] if len(call.args) > 2 else next((k.value for k in call.keywords if k.arg == "fields"), None)
    if not isinstance(fields, ast.Dict):
        return set()
    return {k.value for k in fields.keys if isinstance(k, ast.Constant) and isinstance(k.value, str)}


class _Captured:
    """What the worker's handler wrote, and what it would have reported as a logging error."""

    def __init__(self, stream: io.StringIO) -> None:
        self.stream = stream
        self.errors: list[str] = []

    def text(self) -> str:
        return self.stream.getvalue()


@pytest.fixture
def worker_logging(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., _Captured]]:
    """Apply the worker's logging config; capture its stream and any handler error."""
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)

    def apply(fmt: str, level: str = "debug") -> _Captured:
        logging.config.dictConfig(logging_config(level, fmt))
        structlog.reset_defaults()
        configure_structlog()
        captured = _Captured(io.StringIO())
        handler = root.handlers[0]
        assert isinstance(handler, logging.StreamHandler)
        handler.setStream(captured.stream)

        def handle_error(record: logging.LogRecord) -> None:  # what stdlib would print as "--- Logging error ---"
            captured.errors.append(traceback.format_exc())

        monkeypatch.setattr(handler, "handleError", handle_error)
        return captured

    yield apply
    root.handlers[:] = saved[0]
    root.setLevel(saved[1])
    structlog.reset_defaults()


def test_the_scan_finds_the_log_calls() -> None:
    names = logged_field_names()
    # a few fields known to be logged today: the scan is not vacuous
    assert {"venue", "series", "intersection", "alarm_id"} <= names, names


@pytest.mark.parametrize("fmt", ["console", "json"])
@pytest.mark.parametrize("value", VALUES, ids=[type(v).__name__ for v in VALUES])
def test_every_logged_field_name_renders(worker_logging, fmt: str, value: object) -> None:
    captured = worker_logging(fmt)
    names = sorted(logged_field_names())
    log = structlog.get_logger("leitstand.test")
    log.warning("every field at once", **{n: value for n in names})
    assert not captured.errors, captured.errors[0]
    line = captured.text().strip()
    assert "every field at once" in line
    if fmt == "json":
        record = json.loads(line)
        assert record["event"] == "every field at once" and record["level"] == "warning"
        assert record["logger"] == "leitstand.test" and record["timestamp"]
        for n in set(names) - DIRECTIVES:
            assert field_name(n) in record, n
    else:
        assert "[warning" in line
        for n in set(names) - DIRECTIVES:
            assert f"{field_name(n)}=" in line, n


def test_reserved_names_are_kept_apart_from_the_records_own(worker_logging) -> None:
    captured = worker_logging("json")
    structlog.get_logger("leitstand.test").info("alarm", level=2, logger="ops", timestamp=5)
    record = json.loads(captured.text())
    assert record["level"] == "info" and record["logger"] == "leitstand.test"
    assert (record["level_"], record["logger_"], record["timestamp_"]) == (2, "ops", 5)


@pytest.mark.parametrize("fmt", ["console", "json"])
def test_foreign_records_with_odd_messages_still_render(worker_logging, fmt: str) -> None:
    """Faust, mode and aiokafka log through stdlib: a dict or int message, or arguments that do
    not match the format string, must give a line, not a handler error."""
    captured = worker_logging(fmt)
    lib = logging.getLogger("faust.fake")
    lib.info({"a": 1})
    lib.warning(42)
    lib.error("two args %s %s", 1)  # a library bug: too few arguments
    lib.error("%d items", "many")  # wrong type for the format
    assert not captured.errors, captured.errors[0]
    lines = captured.text().strip().splitlines()
    assert len(lines) == 4, lines
    assert "two args %s %s" in lines[2] and "1" in lines[2]


@pytest.mark.fuzz
@budget(60)
@given(
    fields=st.dictionaries(
        st.from_regex(r"[a-z_][a-z0-9_]{0,12}", fullmatch=True).filter(lambda k: k != "event"),
        st.one_of(
            st.none(),
            st.integers(),
            st.floats(),
            st.text(max_size=20),
            st.lists(st.integers(), max_size=3),
            st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
        ),
        max_size=8,
    ),
    fmt=st.sampled_from(["console", "json"]),
)
def test_any_field_names_and_values_render(fields: dict, fmt: str) -> None:
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    try:
        logging.config.dictConfig(logging_config("debug", fmt))
        structlog.reset_defaults()
        configure_structlog()
        stream = io.StringIO()
        handler = root.handlers[0]
        assert isinstance(handler, logging.StreamHandler)
        handler.setStream(stream)
        errors: list[logging.LogRecord] = []  # records the handler failed to write
        with mock.patch.object(handler, "handleError", side_effect=errors.append):
            structlog.get_logger("leitstand.fuzz").info("fuzzed", **fields)
        assert not errors
        assert "fuzzed" in stream.getvalue()
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
        structlog.reset_defaults()
