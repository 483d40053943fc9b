"""Blocked approaches: vehicles that stand through green after green and never cross the line.

A junction can lock so that no signal timing frees it: vehicles that entered towards a full
exit stop *inside* the junction, in the way of the turners that wait there for a gap, and each
waits for the other (ingolstadt21 with 10 % dead detectors, seed 3; cologne3's joined GS
cluster with a slower wait weighting, seed 3; docs/signals.md). In SUMO, with teleporting off,
such a lock lasts for the rest of the run; on a street it lasts until someone gets out and
waves. Either way it is for the people in the control room: the signals keep cycling and no
detector sees the vehicles inside the junction, but every approach behind the lock shows the
same thing, a queue standing through green with nobody crossing the stop line.

The rule, per approach detector (its stop-line count and its queue are in every frame): a
*starved green* is a green of at least ``MIN_GREEN_S`` (RiLSA's minimum: the first of a
standing queue crosses within about 2-4 s) that began and ended with vehicles standing on the
approach and none counted over the stop line in between. (Without "and ended": on clean
ingolstadt21 runs a queue that left its lane uncounted, changing lanes upstream of the loop,
raised five alarms in four runs.) ``STRIKES`` starved greens in a row
raise a blockage; the first green that moves a vehicle clears it. A detector missing from a
frame (dead) changes nothing. The same picture comes from an exit blocked further on and
from a stop-line loop that stopped counting, so the alarm's text names all three; which one it
is, someone has to look (a camera, the exit's queue, the detector's data-quality mark).

Why three: one starved green is a permissive turn that found no gap, or a queue that moved up
without reaching the line; two in a row happen under heavy oncoming flow; three in a row
means the approach was given green three times for nothing, which is worth a look whatever
the cause. Set from that argument, not tuned; the measurement is in docs/signals.md.

Pure: frames and the seconds each group was green in them in, events out.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from detection.alarms import AlarmTrigger
from detection.incidents import alarm_kind_part
from signals.controllers.base import DetectorObservation
from signals.model import Intersection

#: a green shorter than this says nothing about whether the queue can move (RiLSA minimum green)
MIN_GREEN_S = 5.0
#: starved greens in a row that raise a blockage (see the module text)
STRIKES = 3
#: alarm kinds of blockages start with this (the detector follows, ``alarm_kind_part``)
KIND_PREFIX = "blocked_"


@dataclass(frozen=True)
class BlockageEvent:
    """A blockage raised (``raised`` True) or cleared on one approach detector."""

    intersection_id: str
    detector: str
    raised: bool
    time_s: float
    #: starved greens in a row (raised) / vehicles the clearing green moved (cleared)
    greens: int
    #: seconds of green those greens gave the approach (raised) / of the clearing green
    green_s: float
    #: vehicles standing on the approach at the last reading
    queue_veh: float
    #: why a blockage is cleared without a green (its detector left the intersection's model)
    why: str = ""

    @property
    def kind(self) -> str:
        """The alarm kind: one alarm per approach detector of an intersection."""
        return KIND_PREFIX + alarm_kind_part(self.detector)

    def trigger(self) -> AlarmTrigger:
        """The alarm a raised blockage is: major (traffic, not life safety; the same severity as
        a traffic incident), for the traffic control room."""
        return AlarmTrigger(
            self.intersection_id,
            self.kind,
            "major",
            f"{self.time_s:.3f}",
            self.time_s,
            self.summary(),
            {"detector": self.detector, "greens": self.greens, "green_s": self.green_s, "queue_veh": self.queue_veh},
            subject_type="intersection",
        )

    def summary(self) -> str:
        """One sentence for the operator on duty."""
        if self.raised:
            return (
                f"{self.detector} at {self.intersection_id}: {self.queue_veh:g} vehicles stood through {self.greens} greens "
                f"({self.green_s:g} s of green) and none crossed the stop line: the junction or the lane's exit is "
                "blocked, or the stop-line detector has stopped counting"
            )
        if self.why:
            return f"{self.detector} at {self.intersection_id}: no longer watched ({self.why})"
        return (
            f"{self.detector} at {self.intersection_id}: vehicles cross the stop line again ({self.greens} in {self.green_s:g} s of green)"
        )


@dataclass
class _Approach:
    groups: frozenset[str]
    #: queue at the last frame in which the approach had no green (what a green starts with)
    queue_before: float = 0.0
    #: the green running now: seconds so far, whether it began on a standing queue, vehicles
    #: counted, the queue at its latest frame
    green_s: float = 0.0
    stood: bool = False
    crossed: float = 0.0
    queue_last: float = 0.0
    #: starved greens in a row, and their green seconds
    strikes: int = 0
    starved_s: float = 0.0
    raised: bool = False


@dataclass
class BlockageWatch:
    """One intersection's approaches, frame by frame."""

    intersection: Intersection
    approaches: dict[str, _Approach] = field(init=False)
    #: time of the newest frame folded in: an older or repeated one (a redelivery after a
    #: rebalance) is skipped, since the desk's replay shows no green for it and it would cut a
    #: green in two
    last_s: float = field(init=False, default=-math.inf)

    def __post_init__(self) -> None:
        groups: dict[str, set[str]] = {}
        for area in self.intersection.lanes:
            if area.group is not None:
                groups.setdefault(area.measured_by, set()).add(area.group)
        self.approaches = {d: _Approach(frozenset(gs)) for d, gs in sorted(groups.items())}

    def open(self) -> list[str]:
        """The approach detectors with a blockage raised and not cleared."""
        return [d for d, a in self.approaches.items() if a.raised]

    def carry(self, raised: Iterable[str], at_s: float, why: str) -> list[BlockageEvent]:
        """Take over blockages raised before this watch existed (a worker restart, a new model for
        the intersection): each stays raised here, so the first green that moves a vehicle clears
        its alarm; without this the alarm stayed open after a restart until someone resolved it.
        A detector this intersection no longer watches is cleared at once (``why``)."""
        out: list[BlockageEvent] = []
        for d in sorted(set(raised)):
            a = self.approaches.get(d)
            if a is not None:
                a.raised = True
            else:
                out.append(BlockageEvent(self.intersection.id, d, False, at_s, 0, 0.0, 0.0, why))
        return out

    def observe(self, obs: DetectorObservation, green_s: Mapping[str, float]) -> list[BlockageEvent]:
        """Fold one frame in. ``green_s``: seconds each signal group showed green during the
        frame's interval (as driven, not as planned). A frame not newer than the last is skipped."""
        if not obs.time_s > self.last_s:  # NaN too
            return []
        self.last_s = obs.time_s
        out: list[BlockageEvent] = []
        for d, a in self.approaches.items():
            if d not in obs.lanes:
                continue  # a dead detector is no evidence either way
            green = max((green_s.get(g, 0.0) for g in a.groups), default=0.0)
            queue = obs.queue(d)
            if green > 0.0:
                if a.green_s == 0.0:
                    a.stood, a.crossed = a.queue_before >= 1.0, 0.0
                a.green_s += green
                a.crossed += obs.count(d)
                a.queue_last = queue
                continue
            if a.green_s > 0.0:
                event = self._green_ended(obs, d, a, queue)
                if event is not None:
                    out.append(event)
            a.queue_before = queue
        return out

    def _green_ended(self, obs: DetectorObservation, d: str, a: _Approach, queue: float) -> BlockageEvent | None:
        green_s, stood, crossed = a.green_s, a.stood and a.queue_last >= 1.0, a.crossed
        a.green_s = 0.0
        if crossed > 0:
            a.strikes, a.starved_s = 0, 0.0
            if a.raised:
                a.raised = False
                return BlockageEvent(obs.intersection_id, d, False, obs.time_s, int(crossed), green_s, queue)
            return None
        if not stood or green_s < MIN_GREEN_S:
            return None  # nobody stood through it (they left the lane uncounted), or too short to judge
        a.strikes += 1
        a.starved_s += green_s
        if a.strikes >= STRIKES and not a.raised:
            a.raised = True
            return BlockageEvent(obs.intersection_id, d, True, obs.time_s, a.strikes, a.starved_s, a.queue_last)
        return None
