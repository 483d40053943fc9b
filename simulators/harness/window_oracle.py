"""The oracle for window aggregation: a plain group-by, summed in arrival order.

Kept apart from streams/windowing.py on purpose: it shares no code with what it checks. The tests
and ``leitstand bench recovery`` judge the worker's windows against it (one oracle, not two).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from streams.records import IntersectionFrame


def detector_windows(frames: Iterable[IntersectionFrame], window_s: int, *, with_queue: bool = False) -> dict[str, tuple]:
    """``aggregate_id`` -> (count_sum, occupancy_mean, frames, speed_kmh_mean[, queue_veh_mean])."""
    acc: dict[str, list] = defaultdict(lambda: [0, 0.0, 0, 0.0, 0, 0.0, 0])
    for f in frames:
        w = int(f.event_time.timestamp() // window_s) * window_s
        for d in f.detectors:
            a = acc[f"{f.intersection_id}/{d.detector_id}/{w}"]
            a[0] += d.count
            a[1] += d.occupancy
            a[2] += 1
            if d.speed_kmh is not None:
                a[3] += d.speed_kmh
                a[4] += 1
            if d.queue_veh is not None:
                a[5] += d.queue_veh
                a[6] += 1
    out = {}
    for k, a in acc.items():
        row: tuple = (a[0], a[1] / a[2], a[2], a[3] / a[4] if a[4] else None)
        out[k] = (*row, a[5] / a[6] if a[6] else None) if with_queue else row
    return out
