"""Detector frames -> 1-minute per-detector aggregates on window close.

State per intersection lives in a Faust table (changelogged, recoverable); the maths is
``streams.windowing``. The table is written with ``use_partitioner=True``: batches from
``take_events`` and the idle timer run outside Faust's per-event context, where a default
table refuses writes (faust-streaming #497). The table key is the message key (intersection
id, as raw bytes), so the producer's partitioner puts each changelog entry on the partition that matches
its source partition, exactly as the per-event path would.

Faust's own windowed tables were not used: they close windows by wall clock relative to the
Kafka message timestamp and cannot be written from a batch; see docs/architecture.md.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

import faust

from .. import windowing
from ..codec import TopicDecoder
from ..ingest import decoded_batches
from ..metrics import AGGREGATES, LATE_FRAMES, OPEN_WINDOWS
from ..records import DetectorAggregate, IntersectionFrame, encode
from ..settings import Settings
from ..topics import AGGREGATES as AGGREGATES_TOPIC
from ..topics import SENSORS_INTERSECTION


def by_intersection(frames: Iterable[IntersectionFrame]) -> dict[str, list[IntersectionFrame]]:
    """Group a batch by intersection, keeping arrival order within each."""
    groups: dict[str, list[IntersectionFrame]] = {}
    for f in frames:
        groups.setdefault(f.intersection_id, []).append(f)
    return groups


def register(app: faust.App, settings: Settings, deadletter: Any) -> None:
    source = app.topic(settings.topic(SENSORS_INTERSECTION))
    sink = app.topic(settings.topic(AGGREGATES_TOPIC))
    windows = app.Table(
        "intersection-windows",
        default=None,
        use_partitioner=True,
        key_type=bytes,  # raw key bytes, hashed like the source topic's keys
        partitions=settings.topic_partitions,
    )
    decoder = TopicDecoder(
        IntersectionFrame,
        max_bytes=settings.max_record_bytes,
        clock_skew_s=settings.clock_skew_s,
        reference=settings.timestamp_reference,
    )
    window_s, lateness_s = settings.aggregate_window_s, settings.aggregate_lateness_s

    async def publish(aggregates: list[DetectorAggregate]) -> None:
        for agg in aggregates:
            await sink.send(key=agg.intersection_id.encode(), value=encode(agg))
        AGGREGATES.inc(len(aggregates))

    @app.agent(source, name="aggregate-detector-frames")
    async def aggregate(stream: Any) -> None:
        async for frames in decoded_batches(
            stream, decoder, deadletter, max_batch=settings.batch_max, within_s=settings.batch_within_s
        ):
            now = time.time()
            for iid, group in by_intersection(frames).items():
                key = iid.encode()
                state, closed, late = windowing.fold(
                    windows.get(key), group, window_s=window_s, lateness_s=lateness_s, wall_now=now
                )
                windows[key] = state
                await publish(closed)
                LATE_FRAMES.inc(late)

    @app.timer(interval=max(1.0, min(settings.aggregate_idle_close_s / 4, 15.0)))
    async def close_idle_windows() -> None:
        now, open_count = time.time(), 0
        for key, state in list(windows.items()):
            closed = windowing.close_idle(
                state, window_s=window_s, idle_s=settings.aggregate_idle_close_s, wall_now=now
            )
            if closed:
                windows[key] = state
                await publish(closed)
            open_count += bool(state["windows"])
        OPEN_WINDOWS.set(open_count)
