"""Sensor streams -> the data-quality watch (detection/data_quality.py) -> /metrics.

Telemetry role. Reads ``sensors.pool`` beside the agent that owns its dead letters (none here)
with a decoder that accepts any event time, so a device whose clock is far off, which the other
agents refuse at decode, still shows up here as clock skew; the frames of
``sensors.intersection`` come from the role's one reader of that topic
(``intersection_frames.py``), those refused for their event time included.
The state is in memory, not a table: it is a watch, not a record, and after a restart it learns
each stream's history again (about ``warmup`` readings). A timer marks silent streams missing,
refreshes the gauges and logs the daily summary once per UTC day.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import faust
import structlog

from detection.data_quality import COUNT_PER_S, ISSUES, OCCUPANCY, QUEUE_VEH, SPEED_KMH, DataQualityState, QualityLimits, detector_streams

from .. import metrics
from ..ingest import Batch, BatchHandler, decoded_batches
from ..records import IntersectionFrame, PoolReading
from ..settings import Settings
from ..topics import SENSORS_POOL
from .wiring import Times, topic_decoder

log = structlog.get_logger(__name__)


def limits_from(settings: Settings) -> QualityLimits:
    return QualityLimits(
        expected_interval_s=settings.dq_expected_interval_s,
        stuck_after=settings.dq_stuck_after,
        skew_limit_s=settings.dq_skew_limit_s,
    )


def fold_frames(dq: DataQualityState, frames: Iterable[IntersectionFrame], arrival_s: float) -> int:
    """Every detector quantity of every frame into the watch; returns the values judged."""
    n = 0
    fold = dq.fold
    for f in frames:
        event_s = f.event_time.timestamp()
        for d in f.detectors:  # what frame_streams gives, without a dict per detector and frame
            count, occupancy, speed, queue = detector_streams(f.intersection_id, d.detector_id)
            fold(count, COUNT_PER_S, event_s, arrival_s, d.count / f.interval_s)
            fold(occupancy, OCCUPANCY, event_s, arrival_s, d.occupancy)
            n += 2
            if d.speed_kmh is not None:
                fold(speed, SPEED_KMH, event_s, arrival_s, float(d.speed_kmh))
                n += 1
            if d.queue_veh is not None:
                fold(queue, QUEUE_VEH, event_s, arrival_s, float(d.queue_veh))
                n += 1
    return n


def fold_pool(dq: DataQualityState, readings: Iterable[PoolReading], arrival_s: float) -> int:
    """Every water parameter and the visitor count of every reading into the watch."""
    n = 0
    for r in readings:
        event_s = r.event_time.timestamp()
        values = dict(r.values())
        if r.visitors is not None:
            values["visitors"] = float(r.visitors)
        for quantity, value in values.items():
            dq.observe(f"pool/{r.pool_id}/{quantity}", event_s, arrival_s, value)
            n += 1
    return n


class MetricsView:
    """Writes the watch's state into the ``leitstand_data_quality_*`` metrics."""

    #: the gauges are written at most this often (from tallies the state keeps, no pass over streams)
    EVERY_S = 1.0

    def __init__(self) -> None:
        self.began: dict[tuple[str, str], int] = {}
        self.dirty = False
        self.updated_at = 0.0

    def changed(self, dq: DataQualityState, now: float) -> None:
        """A batch was folded in: update now if the last update is ``EVERY_S`` old, else the
        timer does it within a second."""
        self.dirty = True
        if now - self.updated_at >= self.EVERY_S:
            self.update(dq, now)

    def update(self, dq: DataQualityState, now: float = 0.0) -> None:
        self.dirty, self.updated_at = False, now
        for source in metrics.DQ_SOURCES:
            metrics.DQ_STREAMS.labels(source).set(dq.stream_count(source))
            for issue in ISSUES:
                metrics.DQ_DEGRADED.labels(source, issue).set(dq.degraded_count(source, issue))
                total = dq.began_count(source, issue)
                delta = total - self.began.get((source, issue), 0)
                if delta > 0:
                    metrics.DQ_ISSUES.labels(source, issue).inc(delta)
                self.began[(source, issue)] = total


def register(app: faust.App, settings: Settings) -> BatchHandler[IntersectionFrame]:
    """The pool readings' agent and the timer; returns the handler of a batch of frames (the
    caller reads that topic: ``intersection_frames.py``)."""
    dq = DataQualityState(limits_from(settings))
    view = MetricsView()
    pool_topic = app.topic(settings.topic(SENSORS_POOL))
    pool_decoder = topic_decoder(PoolReading, settings, Times.ANY)

    async def watch_frames(batch: Batch[IntersectionFrame]) -> None:
        # frames refused for their event time too: a device clock far off is what this watch reports
        now = time.time()
        metrics.DQ_READINGS.labels("intersection").inc(fold_frames(dq, (p.record for p in batch.every_parsed()), now))
        view.changed(dq, now)

    @app.agent(pool_topic, name="data-quality-pool")
    async def watch_pool(stream: Any) -> None:
        async for readings in decoded_batches(stream, pool_decoder, None, max_batch=settings.batch_max, within_s=settings.batch_within_s):
            now = time.time()
            metrics.DQ_READINGS.labels("pool").inc(fold_pool(dq, readings, now))
            view.changed(dq, now)

    @app.task
    async def data_quality_timer() -> None:
        day = datetime.now(UTC).date()
        tick_every = min(settings.dq_expected_interval_s, 30.0)
        ticked = time.time()
        while True:
            await asyncio.sleep(MetricsView.EVERY_S)
            now = time.time()
            if now - ticked < tick_every:
                if view.dirty:
                    view.update(dq, now)  # the batches' last changes, at most a second late
                continue
            ticked = now
            dq.tick(now)
            view.update(dq, now)
            today = datetime.now(UTC).date()
            if today != day:
                log.info("data quality daily summary", day=day.isoformat(), **dq.summary())
                day = today

    return watch_frames
