"""Arrival predictions for a bus's next stops, and the schedule-only prediction they beat.

The schedule-only prediction is the timetable (what a printed stop sign says). Ours starts from
where the bus is against its timetable (its delay now: the delay persists) and runs the rest of
the timetable at the pace the line's buses actually keep: the ratio of observed to scheduled
running time between stops, smoothed over the line's recent segments and shrunk towards 1.

Measured in the synthetic city (``leitstand bench arrivals``, 4 lines, 3 weekdays): propagating
the delay alone cuts the 10-minute MAE by 48 % against the timetable; the smoothed line pace adds
little there and 4 points at 20 minutes. A vehicle's own pace (``vehicle_weight``) made things
worse: passage times estimated from 30-s positions make one segment's ratio too noisy, so it is
off by default.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from .adherence import Passage

#: ratios outside this range are a stop skipped, a detour or a clock error, not a pace
RATIO_BOUNDS = (0.3, 4.0)


@dataclass(frozen=True)
class PaceRules:
    line_alpha: float = 0.02  # weight of a new segment in the line's pace
    vehicle_alpha: float = 0.3  # in the vehicle's own pace
    vehicle_weight: float = 0.0  # the vehicle's share in the blend (when it has a pace)
    shrink: float = 0.25  # how much of the learnt pace's distance from 1 is used
    min_segment_s: float = 20.0  # shorter scheduled segments say little about the pace


@dataclass
class Pace:
    """Observed/scheduled running-time ratios per line and direction, and per vehicle trip."""

    rules: PaceRules = field(default_factory=PaceRules)
    line: dict[tuple[str, int], float] = field(default_factory=dict)
    vehicle: dict[str, tuple[str, float]] = field(default_factory=dict)  # vehicle -> (trip, ratio)
    last: dict[str, Passage] = field(default_factory=dict)  # vehicle -> its last passage

    def add(self, p: Passage) -> None:
        """Learn from the segment between the vehicle's previous passage and this one."""
        prev = self.last.get(p.vehicle_id)
        self.last[p.vehicle_id] = p
        if prev is None or prev.trip_id != p.trip_id or p.index <= prev.index:
            return  # a new trip: the vehicle's pace restarts with its first segment
        planned = p.scheduled - prev.scheduled
        if planned < self.rules.min_segment_s:
            return
        ratio = (p.t - prev.t) / planned
        if not RATIO_BOUNDS[0] <= ratio <= RATIO_BOUNDS[1]:
            return
        key = (p.route_id, p.direction_id)
        a = self.rules.line_alpha
        self.line[key] = ratio if key not in self.line else (1 - a) * self.line[key] + a * ratio
        own = self.vehicle.get(p.vehicle_id)
        b = self.rules.vehicle_alpha
        self.vehicle[p.vehicle_id] = (p.trip_id, ratio if own is None or own[0] != p.trip_id else (1 - b) * own[1] + b * ratio)

    def ratio(self, route_id: str, direction_id: int, vehicle_id: str, trip_id: str) -> float:
        pace = self.line.get((route_id, direction_id), 1.0)
        own = self.vehicle.get(vehicle_id)
        if own is not None and own[0] == trip_id:
            w = self.rules.vehicle_weight
            pace = (1 - w) * pace + w * own[1]
        return 1.0 + self.rules.shrink * (pace - 1.0)


def predict_arrivals(t: float, delay_s: float, schedule: tuple[float, ...], reached: int, ratio: float) -> list[tuple[int, float]]:
    """(stop index, predicted arrival) for every stop after ``reached``.

    The bus is where the timetable planned it at ``t - delay_s``; each stop's scheduled time
    still to run is stretched by ``ratio``. Never before ``t``.
    """
    if not (math.isfinite(t) and math.isfinite(delay_s) and math.isfinite(ratio)) or ratio <= 0:
        return []
    planned_now = t - delay_s
    return [(j, t + max(0.0, schedule[j] - planned_now) * ratio) for j in range(max(0, reached + 1), len(schedule))]


def schedule_only(schedule: tuple[float, ...], reached: int) -> list[tuple[int, float]]:
    """The timetable's arrival at every stop after ``reached``: the baseline."""
    return [(j, schedule[j]) for j in range(max(0, reached + 1), len(schedule))]
