"""Detector frames -> traffic incidents and detector faults, per intersection.

Reads ``sensors.intersection`` beside the aggregation agent (which owns that topic's dead
letters), folds each frame with ``detection.incidents`` and sends raise/clear commands to the
alarm books. State per intersection lives in a table; commands are on the broker before it is
saved.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import faust

from detection.incidents import DetectorValue, frame_outcome

from ..ingest import decoded_batches
from ..records import IntersectionFrame, LifecycleCommand
from ..settings import Settings
from ..topics import ALERTS_LIFECYCLE, SENSORS_INTERSECTION
from .alarm_commands import lifecycle_commands, to_lifecycle
from .wiring import keyed_table, publish_then_save, topic_decoder


def detector_values(frame: IntersectionFrame) -> list[DetectorValue]:
    # detectors without an approach form their own group: they are still compared with the rest
    return [DetectorValue(d.detector_id, d.approach or d.detector_id, d.count, d.occupancy, d.speed_kmh) for d in frame.detectors]


def watch_frames(table: Any, frames: Iterable[IntersectionFrame]) -> tuple[dict[bytes, Any], list[LifecycleCommand]]:
    """Fold frames in order into their intersections' states: new states and alarm commands."""
    updates: dict[bytes, Any] = {}
    commands: list[LifecycleCommand] = []
    for f in frames:
        key = f.intersection_id.encode()
        state, outcome = frame_outcome(updates.get(key) or table.get(key), f.intersection_id, f.event_time.timestamp(), detector_values(f))
        updates[key] = state
        commands += lifecycle_commands(f.intersection_id, outcome, f.event_time, subject_type="intersection")
    return updates, commands


def register(app: faust.App, settings: Settings) -> None:
    source = app.topic(settings.topic(SENSORS_INTERSECTION))
    lifecycle = app.topic(settings.topic(ALERTS_LIFECYCLE))
    table = keyed_table(app, "incident-watch", settings)
    decoder = topic_decoder(IntersectionFrame, settings)

    @app.agent(source, name="traffic-incident-watch")
    async def watch(stream: Any) -> None:
        # the aggregation agent owns this topic's dead letters: none here
        async for frames in decoded_batches(stream, decoder, None, max_batch=settings.batch_max, within_s=settings.batch_within_s):
            updates, commands = watch_frames(table, frames)
            await publish_then_save(to_lifecycle(lifecycle, commands), table, updates)
