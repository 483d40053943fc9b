"""Intersection model: signal groups, stages, conflicts, intergreens, bounds; JSON loading.

The vocabulary follows the German guideline RiLSA (Richtlinien für Lichtsignalanlagen, FGSV 2015):
a *signal group* (Signalgruppe) is one set of signal heads that always shows the same state; a
*stage* (Phase) is a set of mutually non-conflicting signal groups that are green together; the
*intergreen time* (Zwischenzeit) runs from the end of green of a clearing group to the start of
green of a conflicting entering group. Pure values only: no I/O beyond reading a JSON file.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal

SCHEMA = "leitstand.intersection/1"
#: RiLSA minimum green for vehicle groups; a configured value may raise it (never lower it below 1 s)
RILSA_MIN_GREEN_S = 5.0
#: RiLSA yellow time for 50 km/h approaches (4 s at 60 km/h, 5 s at 70 km/h)
RILSA_YELLOW_S = 3.0
#: RiLSA red-yellow (Rot-Gelb) time for vehicle groups
RILSA_RED_YELLOW_S = 1.0
#: upper cycle bound used when the configuration names none (common municipal practice)
DEFAULT_MAX_CYCLE_S = 120.0

GroupKind = Literal["vehicle", "pedestrian", "cyclist"]


class ModelError(ValueError):
    """The intersection configuration is inconsistent (reported before any plan is built)."""


@dataclass(frozen=True)
class SignalGroup:
    """One signal group. Pedestrian heads in Germany have no yellow and no red-yellow, hence 0."""

    id: str
    kind: GroupKind = "vehicle"
    min_green_s: float = RILSA_MIN_GREEN_S
    yellow_s: float = RILSA_YELLOW_S
    red_yellow_s: float = RILSA_RED_YELLOW_S
    #: longest tolerated non-green time for this group; None uses the intersection's value
    max_wait_s: float | None = None


@dataclass(frozen=True)
class Stage:
    """A set of non-conflicting signal groups that are green together, with its green bounds."""

    id: str
    groups: frozenset[str]
    min_green_s: float = RILSA_MIN_GREEN_S
    max_green_s: float = 60.0


@dataclass(frozen=True)
class LaneArea:
    """A detector lane area (what field detectors measure) and the signal group that discharges it.

    ``downstream`` names the lane areas this one feeds; max-pressure (Varaiya 2013) needs them for
    the downstream queue. Empty means the exit is assumed free (queue 0). Exit areas (measured,
    not signalled) have ``group`` None.
    """

    id: str
    group: str | None = None
    downstream: tuple[str, ...] = ()
    saturation_flow_vph: float = 1800.0
    #: the detector that measures this area; a lane feeding several signal groups (a shared
    #: through/right lane) is one detector but one lane area per group. None: the area's own id.
    detector: str | None = None

    @property
    def measured_by(self) -> str:
        return self.detector or self.id


@dataclass(frozen=True)
class StagePhase:
    """One stage held green for ``green_s`` seconds (transitions are added by the timeline)."""

    stage: str
    green_s: float


@dataclass(frozen=True)
class SignalPlan:
    """A sequence of stage phases. Cyclic plans repeat (fixed, Webster); acyclic ones are a
    window of realised history plus the proposed continuation (max-pressure)."""

    phases: tuple[StagePhase, ...]
    cyclic: bool = True

    @property
    def stage_sequence(self) -> tuple[str, ...]:
        return tuple(p.stage for p in self.phases)


@dataclass(frozen=True)
class Intersection:
    """The static description every plan is checked against."""

    id: str
    groups: Mapping[str, SignalGroup]
    stages: tuple[Stage, ...]
    conflicts: frozenset[frozenset[str]]
    intergreen_s: Mapping[tuple[str, str], float]
    fixed_plan: SignalPlan
    lanes: tuple[LaneArea, ...] = ()
    cycle_min_s: float = 30.0
    cycle_max_s: float = DEFAULT_MAX_CYCLE_S
    max_wait_s: float = DEFAULT_MAX_CYCLE_S
    name: str = ""
    _stage_index: Mapping[str, Stage] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "groups", MappingProxyType(dict(self.groups)))
        object.__setattr__(self, "intergreen_s", MappingProxyType(dict(self.intergreen_s)))
        object.__setattr__(self, "_stage_index", MappingProxyType({s.id: s for s in self.stages}))
        self._check()

    # -- queries -------------------------------------------------------------------------------
    def stage(self, stage_id: str) -> Stage:
        try:
            return self._stage_index[stage_id]
        except KeyError:
            raise ModelError(f"unknown stage {stage_id!r}") from None

    def conflicting(self, a: str, b: str) -> bool:
        return frozenset((a, b)) in self.conflicts

    def group_max_wait_s(self, group_id: str) -> float:
        own = self.groups[group_id].max_wait_s
        return self.max_wait_s if own is None else own

    def stage_green_floor_s(self, stage_id: str) -> float:
        """Shortest green a stage may get on its own: its minimum and that of all its groups."""
        st = self.stage(stage_id)
        return max([st.min_green_s, *(self.groups[g].min_green_s for g in st.groups)])

    def transition_s(self, from_stage: str, to_stage: str) -> float:
        """Time between the end of one stage's green and the start of the next stage's green.

        The longest of: intergreens for every clearing->entering conflicting pair (RiLSA), the
        yellow of every ending group (so it is red before the next stage starts), and the
        red-yellow of every starting group (shown at the end of the transition).
        """
        if from_stage == to_stage:
            return 0.0
        a, b = self.stage(from_stage).groups, self.stage(to_stage).groups
        ending, starting = a - b, b - a
        needs = [0.0]
        needs += [self.groups[g].yellow_s for g in ending]
        needs += [self.groups[g].red_yellow_s for g in starting]
        needs += [self.intergreen_s[(e, s)] for e in ending for s in starting if self.conflicting(e, s)]
        return max(needs)

    # -- consistency ---------------------------------------------------------------------------
    def _check(self) -> None:
        known = set(self.groups)
        for gid, g in self.groups.items():
            if gid != g.id:
                raise ModelError(f"group key {gid!r} != id {g.id!r}")
            if g.min_green_s < 1.0 or g.yellow_s < 0 or g.red_yellow_s < 0:
                raise ModelError(f"group {gid}: non-physical timing")
        for pair in self.conflicts:
            if len(pair) != 2 or not pair <= known:
                raise ModelError(f"conflict {sorted(pair)} names unknown or identical groups")
            a, b = sorted(pair)
            for key in ((a, b), (b, a)):
                if key not in self.intergreen_s:
                    raise ModelError(f"conflicting pair {key} has no intergreen time")
        for (a, b), t in self.intergreen_s.items():
            if not self.conflicting(a, b):
                raise ModelError(f"intergreen {a}->{b} given for a non-conflicting pair")
            if t < 0:
                raise ModelError(f"intergreen {a}->{b} is negative")
        if len(self._stage_index) != len(self.stages):
            raise ModelError("duplicate stage ids")
        if len(self.stages) < 2:
            raise ModelError("a signalised intersection needs at least two stages")
        served: set[str] = set()
        for st in self.stages:
            if not st.groups or not st.groups <= known:
                raise ModelError(f"stage {st.id} is empty or names unknown groups")
            for a in st.groups:
                for b in st.groups:
                    if a < b and self.conflicting(a, b):
                        raise ModelError(f"stage {st.id} holds conflicting groups {a} and {b}")
            if not 0 < st.min_green_s <= st.max_green_s:
                raise ModelError(f"stage {st.id}: need 0 < min_green <= max_green")
            served |= st.groups
        if served != known:
            raise ModelError(f"groups in no stage (would starve): {sorted(known - served)}")
        for lane in self.lanes:
            if lane.group is not None and lane.group not in known:
                raise ModelError(f"lane area {lane.id} names unknown group {lane.group}")
        lane_ids = {lane.id for lane in self.lanes}
        for lane in self.lanes:
            if not set(lane.downstream) <= lane_ids:
                raise ModelError(f"lane area {lane.id}: unknown downstream area")
        if not 0 < self.cycle_min_s <= self.cycle_max_s:
            raise ModelError("need 0 < cycle_min_s <= cycle_max_s")
        if not self.fixed_plan.phases or not self.fixed_plan.cyclic:
            raise ModelError("the fixed plan must be a non-empty cyclic plan")
        for p in self.fixed_plan.phases:
            self.stage(p.stage)


# -- JSON ----------------------------------------------------------------------------------------
def intersection_from_dict(doc: Mapping[str, Any]) -> Intersection:
    """Build an :class:`Intersection` from the documented JSON schema (docs/signals.md)."""
    if doc.get("schema") != SCHEMA:
        raise ModelError(f"expected schema {SCHEMA!r}, got {doc.get('schema')!r}")
    groups = {g["id"]: SignalGroup(**g) for g in doc["signal_groups"]}
    conflicts = frozenset(frozenset(pair) for pair in doc.get("conflicts", []))
    intergreen = {
        (a, b): float(t) for a, row in doc.get("intergreen_s", {}).items() for b, t in row.items()
    }
    stages = tuple(
        Stage(id=s["id"], groups=frozenset(s["groups"]), min_green_s=float(s.get("min_green_s", RILSA_MIN_GREEN_S)),
              max_green_s=float(s.get("max_green_s", 60.0)))
        for s in doc["stages"]
    )
    lanes = tuple(
        LaneArea(id=la["id"], group=la.get("group"), downstream=tuple(la.get("downstream", ())),
                 saturation_flow_vph=float(la.get("saturation_flow_vph", 1800.0)), detector=la.get("detector"))
        for la in doc.get("lane_areas", [])
    )
    plan = SignalPlan(tuple(StagePhase(p["stage"], float(p["green_s"])) for p in doc["fixed_plan"]))
    cycle = doc.get("cycle", {})
    cycle_max = float(cycle.get("max_s", DEFAULT_MAX_CYCLE_S))
    return Intersection(
        id=doc["id"], name=doc.get("name", ""), groups=groups, stages=stages, conflicts=conflicts,
        intergreen_s=intergreen, fixed_plan=plan, lanes=lanes,
        cycle_min_s=float(cycle.get("min_s", 30.0)), cycle_max_s=cycle_max,
        max_wait_s=float(doc.get("max_wait_s", cycle_max)),
    )


def load_intersection(path: str | Path) -> Intersection:
    """Read one intersection from a JSON file."""
    return intersection_from_dict(json.loads(Path(path).read_text(encoding="utf-8")))


def symmetric_conflicts(pairs: Iterable[tuple[str, str]]) -> frozenset[frozenset[str]]:
    """Conflict matrix from a list of pairs (the matrix is symmetric by definition)."""
    return frozenset(frozenset(p) for p in pairs)


def intersection_to_dict(x: Intersection) -> dict[str, Any]:
    """The JSON document :func:`intersection_from_dict` reads back (round trip is exact)."""
    return {
        "schema": SCHEMA, "id": x.id, "name": x.name,
        "signal_groups": [
            {"id": g.id, "kind": g.kind, "min_green_s": g.min_green_s, "yellow_s": g.yellow_s,
             "red_yellow_s": g.red_yellow_s, **({"max_wait_s": g.max_wait_s} if g.max_wait_s is not None else {})}
            for g in x.groups.values()
        ],
        "stages": [{"id": s.id, "groups": sorted(s.groups), "min_green_s": s.min_green_s, "max_green_s": s.max_green_s}
                   for s in x.stages],
        "conflicts": sorted(sorted(pair) for pair in x.conflicts),
        "intergreen_s": {a: {b: t for (a2, b), t in sorted(x.intergreen_s.items()) if a2 == a}
                         for a in sorted({a for a, _ in x.intergreen_s})},
        "lane_areas": [
            {"id": la.id, "group": la.group, "downstream": list(la.downstream),
             "saturation_flow_vph": la.saturation_flow_vph, **({"detector": la.detector} if la.detector else {})}
            for la in x.lanes
        ],
        "fixed_plan": [{"stage": p.stage, "green_s": p.green_s} for p in x.fixed_plan.phases],
        "cycle": {"min_s": x.cycle_min_s, "max_s": x.cycle_max_s},
        "max_wait_s": x.max_wait_s,
    }
