"""Headways from consecutive passages at a stop; bunching and gap episodes; regularity.

The headway at a stop is the time between two buses of a line and direction passing it; the
scheduled headway is the difference of the two trips' timetabled times there. A headway below
``bunched_below`` (50 %) of the scheduled one is bunched, above ``gap_above`` (150 %) a gap.

One short headway is noise (two buses leaving a stop in a row at a traffic light), so an episode
starts when the same follower trip is bunched (or gapped) at ``min_stops`` stops in a row and
ends after ``clear_stops`` regular ones in a row, or when its follower has not been seen for
``expire_s``. A line is in alarm while any episode of that kind is open in either direction:
that is the one alarm per line and kind the alarm books hold.

A book starts empty, also after a worker restart, while the alarm books may still hold an
alarm raised before it. So once, ``expire_s`` of stream time after the book's first reading,
``reconcile`` clears each kind on every line with no episode of that kind open: by then an
episode open at the restart would have ended by the rules above (its follower regular at
``clear_stops`` stops, or unseen for ``expire_s``) or been found again. A clear for an alarm
that is not open changes nothing in the alarm books.

Regularity is the coefficient of variation (standard deviation / mean) of the last
``cv_window`` headways of a line and direction: 0 for clockwork, about 1 for buses arriving at
random.
"""

from __future__ import annotations

import math
import statistics
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

from .adherence import Passage

HeadwayKind = Literal["bunched", "gap", "regular"]
AlarmKind = Literal["bus_bunching", "bus_gap"]
ALARM_OF: dict[HeadwayKind, AlarmKind] = {"bunched": "bus_bunching", "gap": "bus_gap"}
#: a previous passage longer ago than this is the end of yesterday's service, not a headway
MAX_HEADWAY_S = 3 * 3600.0
#: timetabled differences below this are not a headway (two trips planned together)
MIN_SCHEDULED_S = 60.0


@dataclass(frozen=True)
class HeadwayRules:
    bunched_below: float = 0.5
    gap_above: float = 1.5
    min_stops: int = 2
    clear_stops: int = 2
    expire_s: float = 1800.0
    cv_window: int = 20

    def __post_init__(self) -> None:
        if not 0.0 < self.bunched_below < 1.0 < self.gap_above:
            raise ValueError("need 0 < bunched_below < 1 < gap_above")
        if self.min_stops < 1 or self.clear_stops < 1 or self.cv_window < 2:
            raise ValueError("min_stops and clear_stops must be >= 1, cv_window >= 2")


@dataclass(frozen=True)
class Headway:
    route_id: str
    direction_id: int
    stop_id: str
    leader_trip: str
    follower_trip: str
    follower_vehicle: str
    t: float
    observed_s: float
    scheduled_s: float
    kind: HeadwayKind

    @property
    def ratio(self) -> float:
        return self.observed_s / self.scheduled_s


@dataclass(frozen=True)
class AlarmChange:
    """A line's bunching or gap alarm starts (``raise``) or ends (``clear``)."""

    kind: AlarmKind
    route_id: str
    action: Literal["raise", "clear"]
    t: float
    evidence: dict[str, object]


@dataclass
class _Streak:
    bad: int = 0
    good: int = 0
    last_t: float = 0.0
    open: bool = False
    headway: Headway | None = None


@dataclass
class HeadwayBook:
    """Headway state of every line: the last passage per stop, streaks, recent headways."""

    rules: HeadwayRules = field(default_factory=HeadwayRules)
    last: dict[tuple[str, int, str], Passage] = field(default_factory=dict)
    streaks: dict[tuple[str, int, HeadwayKind, str], _Streak] = field(default_factory=dict)
    recent: dict[tuple[str, int], deque[float]] = field(default_factory=dict)
    #: stream time of the first reading this book saw, and whether it has reconciled since
    first_t: float | None = None
    reconciled: bool = False

    def add(self, p: Passage) -> tuple[Headway | None, list[AlarmChange]]:
        """One passage: the headway it closes (if any) and the alarm changes it causes."""
        self._saw(p.t)
        key = (p.route_id, p.direction_id, p.stop_id)
        prev = self.last.get(key)
        if prev is None or prev.trip_id == p.trip_id:
            self.last.setdefault(key, p)
            return None, []
        if p.t < prev.t:  # a passage estimated a little late: keep the order of arrival
            prev, p = p, prev
        self.last[key] = p
        observed, scheduled = p.t - prev.t, abs(p.scheduled - prev.scheduled)
        if observed > MAX_HEADWAY_S or scheduled < MIN_SCHEDULED_S:
            return None, []
        ratio = observed / scheduled
        kind: HeadwayKind = "bunched" if ratio < self.rules.bunched_below else "gap" if ratio > self.rules.gap_above else "regular"
        h = Headway(p.route_id, p.direction_id, p.stop_id, prev.trip_id, p.trip_id, p.vehicle_id, p.t, observed, scheduled, kind)
        window = self.recent.setdefault((p.route_id, p.direction_id), deque(maxlen=self.rules.cv_window))
        window.append(observed)
        return h, self._streaks(h)

    def _streaks(self, h: Headway) -> list[AlarmChange]:
        changes: list[AlarmChange] = []
        kinds: tuple[HeadwayKind, ...] = ("bunched", "gap")
        for kind in kinds:
            before = self.open_follower_count(h.route_id, ALARM_OF[kind])
            key = (h.route_id, h.direction_id, kind, h.follower_trip)
            s = self.streaks.get(key)
            if s is None and h.kind != kind:
                continue
            s = self.streaks.setdefault(key, _Streak())
            s.last_t = h.t
            if h.kind == kind:
                s.bad, s.good, s.headway = (
                    s.bad + 1,
                    0,
                    h if s.headway is None or abs(h.ratio - 1) > abs(s.headway.ratio - 1) else s.headway,
                )
                s.open = s.open or s.bad >= self.rules.min_stops
            else:
                s.good, s.bad = s.good + 1, 0
                if s.open and s.good < self.rules.clear_stops:
                    continue
                del self.streaks[key]
            changes += self._edge(h.route_id, ALARM_OF[kind], before, h.t, s)
        return changes

    def expire(self, now: float) -> list[AlarmChange]:
        """End the episodes whose follower has not been seen for ``expire_s`` (trip ended)."""
        self._saw(now)
        changes: list[AlarmChange] = []
        for key, s in list(self.streaks.items()):
            if now - s.last_t > self.rules.expire_s:
                route, kind = key[0], ALARM_OF[key[2]]
                before = self.open_follower_count(route, kind)
                del self.streaks[key]
                changes += self._edge(route, kind, before, now, s)
        return changes

    def reconcile(self, now: float, routes: Iterable[str]) -> list[AlarmChange]:
        """Once, ``expire_s`` after the first reading: a clear of each kind for every line of
        ``routes`` (and every line seen) with no episode of that kind open (module docstring)."""
        if not self.reconcile_due(now):
            return []
        self.reconciled = True
        lines = set(routes) | {route for route, _, _ in self.last}
        return [
            AlarmChange(kind, route, "clear", now, {"reason": "reconciled after start"})
            for route in sorted(lines)
            for kind in ALARM_OF.values()
            if self.open_follower_count(route, kind) == 0
        ]

    def reconcile_due(self, now: float) -> bool:
        """Whether ``reconcile`` would act at ``now`` (once, ``expire_s`` after the first reading)."""
        return not self.reconciled and self.first_t is not None and now >= self.first_t + self.rules.expire_s

    def _saw(self, t: float) -> None:
        if self.first_t is None and math.isfinite(t):
            self.first_t = t

    def open_follower_count(self, route_id: str, kind: AlarmKind) -> int:
        return sum(1 for (r, _, k, _), s in self.streaks.items() if r == route_id and ALARM_OF[k] == kind and s.open)

    def _edge(self, route: str, kind: AlarmKind, before: int, t: float, s: _Streak) -> list[AlarmChange]:
        after = self.open_follower_count(route, kind)
        if before == 0 and after > 0:
            return [AlarmChange(kind, route, "raise", t, _evidence(s.headway))]
        if before > 0 and after == 0:
            return [AlarmChange(kind, route, "clear", t, _evidence(s.headway))]
        return []

    def cv(self, route_id: str, direction_id: int) -> float | None:
        """Coefficient of variation of the recent headways (None below 3 headways)."""
        window = self.recent.get((route_id, direction_id))
        if window is None or len(window) < 3:
            return None
        mean = statistics.fmean(window)
        return statistics.pstdev(window) / mean if mean > 0 else None


def _evidence(h: Headway | None) -> dict[str, object]:
    if h is None:
        return {}
    return {
        "direction_id": h.direction_id,
        "stop_id": h.stop_id,
        "leader_trip": h.leader_trip,
        "follower_trip": h.follower_trip,
        "vehicle_id": h.follower_vehicle,
        "headway_s": round(h.observed_s, 1),
        "scheduled_headway_s": round(h.scheduled_s, 1),
    }
