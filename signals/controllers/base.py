"""What controllers see (field detector measurements only) and the interface they share."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from signals.explain import StageDecision
from signals.model import Intersection
from signals.priority import BusCall


@dataclass(frozen=True)
class LaneMeasurement:
    """One detector lane area over one interval: what induction loops / video detectors report."""

    count: float = 0.0
    occupancy: float = 0.0
    speed_mps: float | None = None
    queue_veh: float = 0.0
    #: vehicles inside the lane area, queued or approaching (video / radar lane-area detectors)
    vehicles: float = 0.0


@dataclass(frozen=True)
class NeighbourReading:
    """A neighbouring intersection's reading of a zone this intersection measures too (the exit
    of the upstream signal is the approach of the next one on a short link): a second witness."""

    intersection_id: str
    detector_id: str
    reading: LaneMeasurement


@dataclass(frozen=True)
class DetectorObservation:
    """All detector lane areas of one intersection for one interval (the detector frame)."""

    intersection_id: str
    time_s: float
    interval_s: float
    lanes: Mapping[str, LaneMeasurement]
    #: own detector id -> a neighbour's recent reading of the same zone (``signals/corridor.py``);
    #: empty when no neighbour shares a zone or none is controlled by the same worker
    neighbours: Mapping[str, NeighbourReading] = field(default_factory=dict)
    #: own exit detectors on a short link (``signals.corridor.SHORT_LINK_M``) whose downstream
    #: signal shows none of the groups draining that link green now: traffic sent in stops on a
    #: link that holds two or three vehicles (``signals/corridor.py``); empty without neighbours
    exits_into_red: frozenset[str] = frozenset()
    #: own approach detectors on a short link whose upstream signal shows a group feeding that
    #: link green now, or did within that group's yellow and a second more: vehicles are still
    #: entering it (``signals/corridor.py``); empty without neighbours
    fed_now: frozenset[str] = frozenset()

    def known_interval_s(self) -> float:
        """The frame's interval in seconds, 0 when unknown (NaN, infinite, zero or negative): an
        infinite interval would otherwise be committed as green, or divide a count to nothing."""
        return self.interval_s if 0.0 < self.interval_s < math.inf else 0.0

    def queue(self, lane_id: str) -> float:
        """Queue in vehicles; missing or non-finite readings count as 0 (no evidence of demand)."""
        m = self.lanes.get(lane_id)
        return _finite_nonneg(m.queue_veh) if m else 0.0

    def vehicles(self, lane_id: str) -> float:
        m = self.lanes.get(lane_id)
        return _finite_nonneg(m.vehicles) if m else 0.0

    def occupancy(self, lane_id: str) -> float:
        """Share of the lane area covered by vehicles, 0..1 (missing or nonsense: 0)."""
        m = self.lanes.get(lane_id)
        return min(1.0, _finite_nonneg(m.occupancy)) if m else 0.0

    def count(self, lane_id: str) -> float:
        m = self.lanes.get(lane_id)
        return _finite_nonneg(m.count) if m else 0.0


def _finite_nonneg(v: float) -> float:
    return float(v) if isinstance(v, (int, float)) and math.isfinite(v) and v > 0 else 0.0


@runtime_checkable
class Controller(Protocol):
    """observation -> decision. ``name`` and ``version`` go into every explanation."""

    name: str
    version: str

    def decide(self, observation: DetectorObservation) -> StageDecision: ...


#: why a controller is told the street's stage unless the caller says otherwise
NOT_FOLLOWING = "field controller not following"


@runtime_checkable
class FollowsTheStreet(Protocol):
    """A controller that can be told what the street shows when the field controller is found not
    following its plans (manual or local control, a refused plan): it then plans on from that
    stage, so the plan a cabinet takes back is laid out from the green it really shows."""

    def resync(
        self, stage: str, since_s: float, now_s: float, last_green: Mapping[str, float] | None = None, *, why: str = NOT_FOLLOWING
    ) -> bool:
        """``stage`` is shown since ``since_s`` (and each group's last green ended at
        ``last_green[group]``, where known); True if the controller's own picture changed.
        ``why`` ends the sentence its next explanation adds (what drove the signal instead)."""
        ...


@runtime_checkable
class TakesBusCalls(Protocol):
    """An adaptive controller that weighs a late bus as demand on its stage (``signals.priority``,
    bus calls): cyclic programs get a changed plan instead."""

    def take_call(self, call: BusCall) -> None:
        """Weigh ``call`` in the decisions until its ``until_s`` (a new call of the same bus
        replaces the old one)."""
        ...

    def call_refusal(self) -> str | None:
        """Why a call taken now would not be weighed (None: it would be): the desk then refuses
        the request with this reason instead of auditing a grant that changes nothing."""
        ...


class ControllerClass(Protocol):
    """A controller class as the registry keeps it: its ``name`` and its constructor, which takes
    the intersection and the controller's own keyword parameters (from the signal config)."""

    name: str
    version: str
    #: True for controllers that drive cycle plans (fixed, Webster): only theirs can wait for a
    #: person's approval one by one; an acyclic one is approved for a period (``signals.advisory``)
    cyclic: bool

    def __call__(self, intersection: Intersection, /, *args: Any, **params: Any) -> Controller: ...
