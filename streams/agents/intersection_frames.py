"""The telemetry role's one reader of ``sensors.intersection``: each batch decoded once, then
folded into windows (aggregation), incident states (traffic_incidents) and the data-quality
watch, concurrently.

Why one reader: three agents on the same topic each ran Faust's per-message machinery (a
delivery to its channel, its stream's iteration and acknowledgement) and decoded every frame
again; at 12 detectors a frame those costs were a large share of a telemetry worker's CPU
(docs/capacity.md). Each fold keeps its own table and source offsets (``wiring.track_source``),
so exact recovery is as before; the batch is acknowledged once all three are done. The control
role reads the topic with its own agent (a separate consumer group).
"""

from __future__ import annotations

import asyncio
from typing import Any

import faust

from ..ingest import positioned_batches
from ..records import IntersectionFrame
from ..settings import Settings
from ..topics import SENSORS_INTERSECTION
from . import aggregation, data_quality, traffic_incidents
from .wiring import topic_decoder


def register(app: faust.App, settings: Settings, deadletter: Any) -> None:
    handlers = (
        aggregation.register(app, settings, deadletter),
        traffic_incidents.register(app, settings),
        data_quality.register(app, settings),
    )
    decoder = topic_decoder(IntersectionFrame, settings)

    @app.agent(app.topic(settings.topic(SENSORS_INTERSECTION)), name="intersection-frames")
    async def frames(stream: Any) -> None:
        # this reader owns the topic's dead letters (malformed, oversize, wrong key, clock skew)
        async for batch in positioned_batches(stream, decoder, deadletter, max_batch=settings.batch_max, within_s=settings.batch_within_s):
            await asyncio.gather(*(handle(batch) for handle in handlers))
