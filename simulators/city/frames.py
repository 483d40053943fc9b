"""A small synthetic detector-frame source: deterministic by seed, with daily peaks.

This is the foundation's producer for the main job and the tests; the full synthetic city with
ground truth (issue 6) grows out of it. Demand follows a weekday profile with a morning and an
evening peak; occupancy and speed follow counts through a simple fundamental-diagram shape.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone

from streams.records import DetectorReading, IntersectionFrame

from .types import poisson as _poisson

SATURATION_VEH_H = 1800.0  # per lane, typical urban saturation flow
FREE_SPEED_KMH = 50.0


def demand_factor(t: datetime) -> float:
    """Share of the peak-hour flow at time ``t`` (0..1): morning and evening peaks, quieter weekends."""
    h = t.hour + t.minute / 60.0
    am = math.exp(-((h - 7.75) ** 2) / (2 * 1.0**2))
    pm = math.exp(-((h - 17.0) ** 2) / (2 * 1.4**2))
    base = 0.15 + 0.35 * math.exp(-((h - 12.5) ** 2) / (2 * 3.0**2))
    weekday = t.weekday() < 5
    peaks = (am + 0.9 * pm) if weekday else 0.35 * math.exp(-((h - 14.0) ** 2) / (2 * 3.0**2))
    night = 0.1 if (h < 5 or h > 22) else 1.0
    return min(1.0, night * (base + peaks) * (1.0 if weekday else 0.8))


@dataclass(frozen=True)
class IntersectionLayout:
    intersection_id: str
    detectors: tuple[str, ...]
    peak_veh_h: tuple[float, ...]  # per detector


def layouts(n: int, seed: int, detectors_per_intersection: int = 4) -> list[IntersectionLayout]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        dets = tuple(f"D{j + 1}" for j in range(detectors_per_intersection))
        peaks = tuple(rng.uniform(300.0, 1200.0) for _ in dets)
        out.append(IntersectionLayout(f"INT-{i + 1:04d}", dets, peaks))
    return out


def frame_at(layout: IntersectionLayout, t: datetime, interval_s: float, rng: random.Random) -> IntersectionFrame:
    f = demand_factor(t)
    readings = []
    for det, peak in zip(layout.detectors, layout.peak_veh_h):
        mean = peak * f * interval_s / 3600.0
        count = _poisson(rng, mean)
        flow_ratio = min(0.98, count * 3600.0 / interval_s / SATURATION_VEH_H)
        occupancy = round(min(1.0, 0.02 + 0.6 * flow_ratio**1.5 + rng.uniform(0.0, 0.02)), 4)
        speed = round(max(5.0, FREE_SPEED_KMH * (1.0 - 0.7 * flow_ratio**2) + rng.gauss(0.0, 2.0)), 1)
        queue = round(max(0.0, (flow_ratio - 0.6) * 25.0 + rng.gauss(0.0, 0.5)), 1)
        readings.append(DetectorReading(detector_id=det, count=count, occupancy=occupancy, speed_kmh=speed, queue_veh=queue))
    return IntersectionFrame(
        schema_version=1,
        event_time=t,
        intersection_id=layout.intersection_id,
        interval_s=interval_s,
        detectors=readings,
    )


def frames(
    *,
    intersections: int,
    start: datetime,
    interval_s: float,
    steps: int,
    seed: int,
    detectors_per_intersection: int = 4,
) -> Iterator[IntersectionFrame]:
    """Frames for every intersection, interval after interval, in event-time order."""
    rng = random.Random(seed + 1)
    lay = layouts(intersections, seed, detectors_per_intersection)
    start = start.astimezone(timezone.utc)
    t0 = start.timestamp()
    for step in range(steps):
        t = datetime.fromtimestamp(t0 + step * interval_s, tz=timezone.utc)
        for layout in lay:
            yield frame_at(layout, t, interval_s, rng)


MALFORMED_KINDS = ("garbage", "wrong_type", "occupancy_out_of_range", "missing_timestamp")


def malformed(kind: str, valid_json: bytes, rng: random.Random) -> bytes:
    """A realistic broken variant of a valid frame (for tests and the demo's dead-letter path)."""
    import orjson

    if kind == "garbage":
        return bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 64)))
    obj = orjson.loads(valid_json)
    if kind == "wrong_type":
        obj["detectors"][0]["count"] = "many"
    elif kind == "occupancy_out_of_range":
        obj["detectors"][0]["occupancy"] = 1.7
    elif kind == "missing_timestamp":
        del obj["event_time"]
    else:
        raise ValueError(f"unknown malformed kind {kind!r}")
    return orjson.dumps(obj)
