"""Detector frames -> traffic incidents and detector faults, per intersection.

Reads ``sensors.intersection`` beside the aggregation agent (which owns that topic's dead
letters), folds each frame with ``detection.incidents`` and sends raise/clear commands to the
alarm books. State per intersection lives in a table; commands are on the broker before it is
saved.
"""

from __future__ import annotations

import asyncio
from typing import Any

import faust

from detection.incidents import DetectorValue, frame_outcome

from ..codec import TopicDecoder, decoder_limits
from ..ingest import decoded_batches
from ..records import IntersectionFrame, encode
from ..settings import Settings
from ..topics import ALERTS_LIFECYCLE, SENSORS_INTERSECTION
from .alarm_lifecycle import lifecycle_commands as commands


def detector_values(frame: IntersectionFrame) -> list[DetectorValue]:
    # detectors without an approach form their own group: they are still compared with the rest
    return [DetectorValue(d.detector_id, d.approach or d.detector_id, d.count, d.occupancy, d.speed_kmh) for d in frame.detectors]


def register(app: faust.App, settings: Settings) -> None:
    source = app.topic(settings.topic(SENSORS_INTERSECTION))
    lifecycle = app.topic(settings.topic(ALERTS_LIFECYCLE))
    table = app.Table("incident-watch", default=None, use_partitioner=True, key_type=bytes, partitions=settings.topic_partitions)
    decoder = TopicDecoder(IntersectionFrame, **decoder_limits(settings))  # type: ignore[arg-type]

    @app.agent(source, name="traffic-incident-watch")
    async def watch(stream: Any) -> None:
        async for frames in decoded_batches(stream, decoder, None, max_batch=settings.batch_max, within_s=settings.batch_within_s):
            updates, out = {}, []
            for f in frames:
                key = f.intersection_id.encode()
                state, outcome = frame_outcome(
                    updates.get(key) or table.get(key), f.intersection_id, f.event_time.timestamp(), detector_values(f)
                )
                updates[key] = state
                out += commands(f.intersection_id, outcome, f.event_time, subject_type="intersection")
            pending = [await lifecycle.send(key=c.subject_id.encode(), value=encode(c)) for c in out]
            await asyncio.gather(*pending)
            for key, state in updates.items():
                table[key] = state
