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
    return int(number) if number.is_integer() and "." not in text else number


def replay_rows(path: Path, time_col: str, key_col: str | None = None) -> Iterator[tuple[float, bytes | None, bytes]]:
    """(offset in dataset seconds, key, JSON value) per row, in file order.

    Raises ``KeyError`` naming a missing column (the CLI turns it into one line).
    """
    with path.open(newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        header = reader.fieldnames or []
        for col in (time_col, key_col):
            if col is not None and col not in header:
                raise KeyError(f"{path} has no column {col!r} (columns: {', '.join(header)})")
        first: float | None = None
        last_offset = 0.0
        for row in reader:
            t = parse_time(row.get(time_col) or "")
            record: dict[str, Any] = {"schema_version": 1}
            record.update({k: _cell(v) for k, v in row.items() if k and v not in (None, "") and k != time_col})
            if math.isfinite(t):
                record["event_time"] = datetime.fromtimestamp(t, tz=timezone.utc).isoformat()
                first = t if first is None else first
                last_offset = max(last_offset, t - first)
            else:
                record["event_time"] = row.get(time_col)
            key = str(row[key_col]).encode() if key_col and row.get(key_col) else None
            yield last_offset, key, orjson.dumps(record)


async def replay_csv(settings: Any, path: Path, topic: str, time_col: str, speed: float,
                     key_col: str | None = None, stats: dict[str, Any] | None = None) -> dict[str, Any]:
    """Send the rows to ``topic`` paced by ``speed`` (0: as fast as possible)."""
    from streams.kafka_io import producer

    from .producer import PacedSender

    stats = stats if stats is not None else {}
    stats.update(sent=0, dataset_offset_s=0.0)
    prod = producer(settings)
    await prod.start()
    paced = PacedSender(prod, speed)
    try:
        for offset, key, value in replay_rows(path, time_col, key_col):
            await paced.send(offset, topic, key, value)
            stats["sent"] += 1
            stats["dataset_offset_s"] = offset
        await paced.flush()
    finally:
        await prod.stop()
    stats["wall_s"] = time.monotonic() - paced.t0
    return stats
