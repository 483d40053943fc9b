"""Signal configurations for the benchmarks' intersections (``bench city``, ``bench pipeline``):
a two-stage model over each intersection's detectors, the controller in automatic mode. Its
own module because both benchmarks use it and ``bench_city`` imports ``bench``."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import orjson

from simulators.harness.bench_alarms import _iso
from streams.settings import Settings

if TYPE_CHECKING:
    from simulators.city.frames import IntersectionLayout


def bench_model(intersection_id: str, detector_ids: Iterable[str]) -> dict[str, Any]:
    """A two-stage crossing whose lane areas are the frame's detectors (odd ones north-south,
    even ones east-west): what the control worker needs to decide on every frame."""
    from simulators.city.signal_plans import two_stage_model

    lanes = ((d, ("NS", "EW")[i % 2]) for i, d in enumerate(detector_ids))
    return two_stage_model(intersection_id, f"{intersection_id} (bench city, 2 stages)", lanes, (30.0, 30.0))


async def configure_signals(settings: Settings, intersections: Iterable[IntersectionLayout], controller: str, session: str) -> None:
    """A ``signals.config`` record per intersection: ``controller`` in automatic mode on a
    two-stage model of its detectors (``bench_model``)."""
    from streams.kafka_io import producer

    prod = producer(settings)
    await prod.start()
    try:
        now = _iso(time.time())
        for layout in intersections:
            config = {
                "schema_version": 1,
                "event_time": now,
                "intersection_id": layout.intersection_id,
                "model": bench_model(layout.intersection_id, layout.detectors),
                "controller": controller,
                "mode": "automatic",
                "session": session,
            }
            await prod.send(settings.topic("signals.config"), key=layout.intersection_id.encode(), value=orjson.dumps(config))
        await prod.flush()
    finally:
        await prod.stop()
