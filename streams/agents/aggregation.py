"""Detector frames -> 1-minute per-detector aggregates on window close.

State per intersection lives in a Faust table (changelogged, recoverable); the maths is
``streams.windowing``. The table is written with ``use_partitioner=True``: batches from
``take_events`` and the idle timer run outside Faust's per-event context, where a default
table refuses writes (faust-streaming #497). The table key is the message key (intersection
id, as raw bytes), so the producer's partitioner puts each changelog entry on the partition that matches
its source partition, exactly as the per-event path would.

Ordering makes a crash harmless: closed windows are sent and acknowledged by the broker before
the state that says "closed" is written. A crash in between re-emits a window with identical
values (at-least-once); it never loses one. States carry their source offsets and the source
resumes at the table's checkpoint (``wiring.track_source``), so a restarted worker's windows
are exactly those of a worker that never stopped. Frames for a closed window are dead-lettered
with reason ``late`` (the watermark policy: streams/windowing.py).

Faust's own windowed tables were not used: they close windows by wall clock relative to the
Kafka message timestamp and cannot be written from a batch; see docs/architecture.md.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any, NamedTuple

import faust

from .. import windowing
from ..codec import DecodeFailure, RawMessage, dead_letter
from ..ingest import Batch, BatchHandler, Positioned, send_dead_letters
from ..metrics import AGGREGATES, LATE_FRAMES, LATE_RECORDS, OPEN_WINDOWS, EventClock, frame_end
from ..records import DeadLetter, DetectorAggregate, IntersectionFrame, encode
from ..settings import Settings
from ..topics import AGGREGATES as AGGREGATES_TOPIC
from ..topics import SENSORS_INTERSECTION
from .wiring import Outgoing, Sink, applied, keyed_table, save, stamped, states, track_source, value_identity

#: the table of open windows per intersection
WINDOWS_TABLE = "intersection-windows"

Frame = Positioned[IntersectionFrame]


class BatchFold(NamedTuple):
    """What a batch did: new states, closed windows, late frames (to dead-letter), and how many
    frames were merged out of order."""

    updates: dict[bytes, windowing.State]
    closed: list[DetectorAggregate]
    late: list[Frame]
    reordered: int


def by_intersection(frames: Iterable[Frame]) -> dict[str, list[Frame]]:
    """Group a batch by intersection, keeping arrival order within each."""
    groups: dict[str, list[Frame]] = {}
    for f in frames:
        groups.setdefault(f.record.intersection_id, []).append(f)
    return groups


def _never(raw: RawMessage) -> bool:
    return False


def fold_batch(
    windows: Any, frames: Iterable[Frame], settings: Settings, now: float, replayed: Callable[[RawMessage], bool] = _never
) -> BatchFold:
    """New states of the intersections in the batch, the windows they closed and the late frames.

    A frame at or below the offset its intersection's state already reflects is skipped: it was
    folded before the worker stopped, and the source was resumed at an older checkpoint. Frames
    ``replayed`` (processed and their outputs acknowledged before a restart) rebuild the state
    only: what they closed or found late was sent then.
    """
    out = BatchFold({}, [], [], 0)
    for iid, group in by_intersection(frames).items():
        key = iid.encode()
        state = windows.get(key)
        fresh = [f for f in group if f.raw.offset > applied(state)]
        if not fresh:
            continue
        split = sum(1 for f in fresh if replayed(f.raw))  # a prefix: one partition, in offset order
        for part, emit in ((fresh[:split], False), (fresh[split:], True)):
            if not part:
                continue
            folded = windowing.fold_frames(
                state,
                [f.record for f in part],
                window_s=settings.aggregate_window_s,
                lateness_s=settings.aggregate_lateness_s,
                wall_now=now,
            )
            state = stamped(folded.state, max(f.raw.offset for f in part))
            if emit:
                out.closed.extend(folded.closed)
                out.late.extend(part[i] for i in folded.late)
                out = out._replace(reordered=out.reordered + folded.reordered)
        out.updates[key] = state
    return out


def late_letters(late: Sequence[Frame], settings: Settings, now: float) -> list[DeadLetter]:
    """Dead letters (reason ``late``) for frames whose window had already closed."""
    window_s = settings.aggregate_window_s
    return [
        dead_letter(
            f.raw,
            DecodeFailure(
                "late",
                f"frame at {f.record.event_time.isoformat()} for window starting "
                f"{windowing.window_start(f.record.event_time.timestamp(), window_s):.0f} (epoch s), already closed",
            ),
            now,
        )
        for f in late
    ]


def close_idle(
    windows: Any, settings: Settings, now: float, resumed_at: float | None = None
) -> tuple[dict[bytes, windowing.State], list[DetectorAggregate], int]:
    """States with windows closed for silence, the closed windows, and how many intersections
    still have open windows."""
    updates: dict[bytes, windowing.State] = {}
    closed: list[DetectorAggregate] = []
    open_count = 0
    for key, state in states(windows):
        state, done = windowing.close_idle(
            state, window_s=settings.aggregate_window_s, idle_s=settings.aggregate_idle_close_s, wall_now=now, resumed_at=resumed_at
        )
        if done:
            updates[key] = state
            closed += done
        open_count += bool(state["windows"])
    return updates, closed, open_count


def to_sink(sink: Sink, aggregates: Iterable[DetectorAggregate]) -> list[Outgoing]:
    return [Outgoing(sink, agg.intersection_id.encode(), encode(agg)) for agg in aggregates]


def count_late(topic: str, fold: BatchFold) -> None:
    LATE_FRAMES.inc(len(fold.late))
    if fold.late:
        LATE_RECORDS.labels(topic, "deadlettered").inc(len(fold.late))
    if fold.reordered:
        LATE_RECORDS.labels(topic, "merged").inc(fold.reordered)


def register(app: faust.App, settings: Settings, deadletter: Any) -> BatchHandler[IntersectionFrame]:
    """The table, the idle-close timer and the fold of one batch of frames (the caller reads the
    topic: ``intersection_frames.py``, one reader for every fold of the role)."""
    topic = settings.topic(SENSORS_INTERSECTION)
    sink_name = settings.topic(AGGREGATES_TOPIC)
    sink = app.topic(sink_name)
    windows = keyed_table(app, WINDOWS_TABLE, settings)
    tracking = track_source(app, windows, [topic], settings, outputs={sink_name: value_identity})
    # the agent and the idle timer both read-modify-write states across an await (publish):
    # one at a time, or a timer's save could overwrite frames the agent folded meanwhile
    state_lock = asyncio.Lock()
    clock = EventClock.for_reference(settings.timestamp_reference)

    async def emit(closed: list[DetectorAggregate], late: list[DeadLetter], updates: dict[bytes, Any]) -> None:
        """Closed windows and late frames on the broker first: only then may the state say 'closed'."""
        sent = await tracking.publish(to_sink(sink, closed))
        await send_dead_letters(deadletter, late)
        save(windows, updates)
        AGGREGATES.inc(len(sent))

    async def aggregate(batch: Batch[IntersectionFrame]) -> None:
        received = time.time()
        tracking.observe(batch.size, settings.batch_max)
        async with state_lock:
            now = time.time()
            fold = fold_batch(windows, batch.records, settings, now, tracking.replayed)
            await emit(fold.closed, late_letters(fold.late, settings, now), tracking.with_checkpoints(fold.updates, batch.ends))
        count_late(topic, fold)
        ends = ((f.record.intersection_id, frame_end(f.record)) for f in batch.records)
        clock.observe_keyed("frame_to_aggregate", ends, (a.intersection_id for a in fold.closed), received)

    @app.timer(interval=max(1.0, min(settings.aggregate_idle_close_s / 4, 15.0)))
    async def close_idle_windows() -> None:
        async with state_lock:
            updates, closed, open_count = close_idle(windows, settings, time.time(), tracking.quiet_since())
            await emit(closed, [], updates)
        OPEN_WINDOWS.set(open_count)

    return aggregate
