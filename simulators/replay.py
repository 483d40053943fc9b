"""Replay a real dataset (CSV) into a topic with its own timing, compressed.

Each row becomes one JSON record: the row's columns (numbers as numbers, empty cells dropped),
``event_time`` in ISO 8601 from the time column, and ``schema_version`` 1. Rows are sent in
file order, each ``(t - t_first) / speed`` seconds after the start (never earlier than the row
before), so a day of 5-minute readings at ``--speed 1440`` takes a minute and keeps its gaps and
bursts. Rows whose time cannot be
parsed are sent anyway, at the position of the previous row, so the worker dead-letters them
with a reason rather than the replay dropping them silently.
"""

from __future__ import annotations

import asyncio
import csv
import math
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import orjson

from streams.timeparse import parse_time


def _cell(text: str) -> Any:
    try:
        number = float(text)
    except ValueError:
        return text
    if number.is_integer() and "." not in text and abs(number) < 2**63:  # JSON consumers read int64
        return int(number)
    return number


class ReplayError(ValueError):
    """The file cannot be replayed (not UTF-8 text, not CSV, a missing column): one line for the CLI."""


def _event_time(t: float) -> str | None:
    """ISO 8601 of a parsed time, or None when it is NaN or beyond what a datetime holds."""
    if not math.isfinite(t):
        return None
    try:
        return datetime.fromtimestamp(t, tz=timezone.utc).isoformat()
    except (OverflowError, OSError, ValueError):  # e.g. epoch seconds of the year 300000
        return None


def replay_records(path: Path, time_col: str, key_col: str | None = None) -> Iterator[tuple[int, float, bytes | None, bytes]]:
    """(line number, offset in dataset seconds, key, JSON value) per row, in file order.

    Raises ``KeyError`` naming a missing column and :class:`ReplayError` for a file that is not
    UTF-8 CSV (binary data, NUL bytes, a field beyond the csv module's limit), naming the line.
    """
    line = 0
    try:
        with path.open(newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            header = reader.fieldnames or []
            for col in (time_col, key_col):
                if col is not None and col not in header:
                    raise KeyError(f"{path} has no column {col!r} (columns: {', '.join(map(repr, header))})")
            first: float | None = None
            last_offset = 0.0
            for row in reader:
                line = reader.line_num
                raw_time = row.get(time_col) or ""
                t = parse_time(raw_time)
                iso = _event_time(t)
                record: dict[str, Any] = {"schema_version": 1}
                record.update({k: _cell(v) for k, v in row.items() if k and isinstance(v, str) and v != "" and k != time_col})
                if iso is not None:
                    record["event_time"] = iso
                    first = t if first is None else first
                    last_offset = max(last_offset, t - first)
                else:
                    record["event_time"] = raw_time  # sent anyway: the worker dead-letters it with a reason
                key = str(row[key_col]).encode() if key_col and row.get(key_col) else None
                yield line, last_offset, key, orjson.dumps(record)
    except UnicodeDecodeError as exc:
        raise ReplayError(
            f"{path} is not UTF-8 text (byte 0x{exc.object[exc.start]:02x} near line {line + 1}); replay takes a CSV file"
        ) from None
    except csv.Error as exc:
        raise ReplayError(f"{path} is not a readable CSV file (line {line + 1}: {exc})") from None


def replay_rows(path: Path, time_col: str, key_col: str | None = None) -> Iterator[tuple[float, bytes | None, bytes]]:
    """(offset in dataset seconds, key, JSON value) per row, in file order (see :func:`replay_records`)."""
    for _line, offset, key, value in replay_records(path, time_col, key_col):
        yield offset, key, value


def check_csv(path: Path, time_col: str, key_col: str | None = None) -> int:
    """Read the whole file once without sending: a file that cannot be replayed fails before the
    first row reaches the broker, not halfway. Returns the number of rows."""
    return sum(1 for _ in replay_records(path, time_col, key_col))


async def replay_csv(
    settings: Any,
    path: Path,
    topic: str,
    time_col: str,
    speed: float,
    key_col: str | None = None,
    stats: dict[str, Any] | None = None,
    *,
    checked: bool = False,
) -> dict[str, Any]:
    """Send the rows to ``topic`` paced by ``speed`` (0: as fast as possible).

    The file is read once before the first send (:func:`check_csv`) unless the caller has done
    that already (``checked``).

    ``stats["refused"]`` lists (line, reason) of rows that could not be sent (a row over the
    producer's max request size, a send the broker refused); the other rows are sent anyway.
    """
    from streams.kafka_io import CheckedSender, producer

    stats = stats if stats is not None else {}
    if not checked:
        check_csv(path, time_col, key_col)
    stats.update(sent=0, refused=[], dataset_offset_s=0.0)
    prod = producer(settings)
    await prod.start()
    sender = CheckedSender(prod, topic)
    t0 = time.monotonic()
    try:
        for line, offset, key, value in replay_records(path, time_col, key_col):
            if speed > 0:
                delay = t0 + offset / speed - time.monotonic()
                if delay > 0:  # acknowledge what is in flight before waiting: a slow broker slows the replay
                    await sender.flush()
                    await asyncio.sleep(delay)
            await sender.send(line, key, value)
            stats["sent"] = sender.report.sent + sender.in_flight
            stats["dataset_offset_s"] = offset
        report = await sender.flush()
    finally:
        await prod.stop()
    stats.update(sent=report.sent, refused=list(report.refused), report=report, wall_s=time.monotonic() - t0)
    return stats
