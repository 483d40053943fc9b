"""Detector frames -> 1-minute per-detector aggregates on window close.

State per intersection lives in a Faust table (changelogged, recoverable); the maths is
``streams.windowing``. The table is written with ``use_partitioner=True``: batches from
``take_events`` and the idle timer run outside Faust's per-event context, where a default
table refuses writes (faust-streaming #497). The table key is the message key (intersection
id, as raw bytes), so the producer's partitioner puts each changelog entry on the partition that matches
its source partition, exactly as the per-event path would.

Ordering makes a crash harmless: closed windows are sent and acknowledged by the broker before
the state that says "closed" is written. A crash in between re-emits a window with identical
values (at-least-once); it never loses one.

Faust's own windowed tables were not used: they close windows by wall clock relative to the
Kafka message timestamp and cannot be written from a batch; see docs/architecture.md.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from typing import Any

import faust

from .. import windowing
from ..ingest import decoded_batches
from ..metrics import AGGREGATES, LATE_FRAMES, OPEN_WINDOWS, EventClock, frame_end
from ..records import DetectorAggregate, IntersectionFrame, encode
from ..settings import Settings
from ..topics import AGGREGATES as AGGREGATES_TOPIC
from ..topics import SENSORS_INTERSECTION
from .wiring import Outgoing, Sink, keyed_table, publish_then_save, topic_decoder

#: the table of open windows per intersection
WINDOWS_TABLE = "intersection-windows"


def by_intersection(frames: Iterable[IntersectionFrame]) -> dict[str, list[IntersectionFrame]]:
    """Group a batch by intersection, keeping arrival order within each."""
    groups: dict[str, list[IntersectionFrame]] = {}
    for f in frames:
        groups.setdefault(f.intersection_id, []).append(f)
    return groups


def fold_batch(
    windows: Any, frames: Iterable[IntersectionFrame], settings: Settings, now: float
) -> tuple[dict[bytes, windowing.State], list[DetectorAggregate]]:
    """New states of the intersections in the batch and the windows they closed."""
    updates: dict[bytes, windowing.State] = {}
    closed: list[DetectorAggregate] = []
    for iid, group in by_intersection(frames).items():
        key = iid.encode()
        updates[key], done, late = windowing.fold(
            windows.get(key), group, window_s=settings.aggregate_window_s, lateness_s=settings.aggregate_lateness_s, wall_now=now
        )
        closed += done
        LATE_FRAMES.inc(late)
    return updates, closed


def close_idle(windows: Any, settings: Settings, now: float) -> tuple[dict[bytes, windowing.State], list[DetectorAggregate], int]:
    """States with windows closed for silence, the closed windows, and how many intersections
    still have open windows."""
    updates: dict[bytes, windowing.State] = {}
    closed: list[DetectorAggregate] = []
    open_count = 0
    for key, state in list(windows.items()):
        state, done = windowing.close_idle(
            state, window_s=settings.aggregate_window_s, idle_s=settings.aggregate_idle_close_s, wall_now=now
        )
        if done:
            updates[key] = state
            closed += done
        open_count += bool(state["windows"])
    return updates, closed, open_count


def to_sink(sink: Sink, aggregates: Iterable[DetectorAggregate]) -> list[Outgoing]:
    return [Outgoing(sink, agg.intersection_id.encode(), encode(agg)) for agg in aggregates]


def register(app: faust.App, settings: Settings, deadletter: Any) -> None:
    source = app.topic(settings.topic(SENSORS_INTERSECTION))
    sink = app.topic(settings.topic(AGGREGATES_TOPIC))
    windows = keyed_table(app, WINDOWS_TABLE, settings)
    decoder = topic_decoder(IntersectionFrame, settings)
    # the agent and the idle timer both read-modify-write states across an await (publish):
    # one at a time, or a timer's save could overwrite frames the agent folded meanwhile
    state_lock = asyncio.Lock()
    clock = EventClock.for_reference(settings.timestamp_reference)

    async def emit(closed: list[DetectorAggregate], updates: dict[bytes, windowing.State]) -> None:
        """Closed windows on the broker first: only then may the state say 'closed'."""
        await publish_then_save(to_sink(sink, closed), windows, updates)
        AGGREGATES.inc(len(closed))

    @app.agent(source, name="aggregate-detector-frames")
    async def aggregate(stream: Any) -> None:
        async for frames in decoded_batches(stream, decoder, deadletter, max_batch=settings.batch_max, within_s=settings.batch_within_s):
            received = time.time()
            async with state_lock:
                updates, closed = fold_batch(windows, frames, settings, time.time())
                await emit(closed, updates)
            ends = ((f.intersection_id, frame_end(f)) for f in frames)
            clock.observe_keyed("frame_to_aggregate", ends, (a.intersection_id for a in closed), received)

    @app.timer(interval=max(1.0, min(settings.aggregate_idle_close_s / 4, 15.0)))
    async def close_idle_windows() -> None:
        async with state_lock:
            updates, closed, open_count = close_idle(windows, settings, time.time())
            await emit(closed, updates)
        OPEN_WINDOWS.set(open_count)
