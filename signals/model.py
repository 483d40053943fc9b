"""Intersection model: signal groups, stages, conflicts, intergreens, bounds (JSON loading: loader.py).

The vocabulary follows the German guideline RiLSA (Richtlinien für Lichtsignalanlagen, FGSV 2015):
a *signal group* (Signalgruppe) is one set of signal heads that always shows the same state; a
*stage* (Phase) is a set of mutually non-conflicting signal groups that are green together; the
*intergreen time* (Zwischenzeit) runs from the end of green of a clearing group to the start of
green of a conflicting entering group. Pure values only: no I/O beyond reading a JSON file.

Two checks guard every model, both at construction time (docs/signals.md, "Bounds"):

* the :class:`Intersection` constructor refuses any number that is not finite, negative or
  beyond an hour, and any structural inconsistency: no object with a NaN intergreen can exist,
  so no comparison in the timeline or the validator can be silently false;
* the factories for configuration from outside (``signals/loader.py``: ``intersection_from_dict``,
  ``intersection_from_json``, ``load_intersection``; the SUMO reader) also apply the RiLSA bounds
  (:func:`rilsa_problems`) and require the fixed plan, the first fallback of every controller,
  to pass the safety validator (``loader.ensure_safe``). Hand-built models (the validator's own
  tests build deliberately wrong ones) may call ``ensure_safe`` themselves.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal, TypedDict

SCHEMA = "leitstand.intersection/1"
#: RiLSA minimum green for vehicle groups; a configured value may raise it (never lower it below 1 s)
RILSA_MIN_GREEN_S = 5.0
#: RiLSA yellow time for 50 km/h approaches (4 s at 60 km/h, 5 s at 70 km/h)
RILSA_YELLOW_S = 3.0
#: RiLSA red-yellow (Rot-Gelb) time for vehicle groups
RILSA_RED_YELLOW_S = 1.0
#: upper cycle bound used when the configuration names none (common municipal practice)
DEFAULT_MAX_CYCLE_S = 120.0

# -- bounds of a loaded model (docs/signals.md, "Bounds"; RiLSA 2015 where it fixes a value) --------
#: any time in any model object: finite, >= 0 and at most an hour (the constructor's sanity bound)
SANE_MAX_S = 3600.0
#: RiLSA yellow for vehicle groups: 3 s (50 km/h) to 5 s (70 km/h); faster approaches are not signalised
RILSA_YELLOW_RANGE_S = (3.0, 5.0)
#: yellow of pedestrian / cyclist heads (none for pedestrians in Germany; cyclist heads may have one)
MAX_OTHER_YELLOW_S = 5.0
#: red-yellow: RiLSA 1 s for vehicles; 0 for heads without it (SUMO programs); 2 s tolerated
MAX_RED_YELLOW_S = 2.0
#: intergreens come from clearing / entering distances (RiLSA 2.5); 30 s clears any real junction
MAX_INTERGREEN_S = 30.0
#: longest stage green a model may allow, and the longest minimum green
MAX_GREEN_S = 180.0
#: longest cycle (and longest maximum wait) a model may allow
MAX_CYCLE_S = 300.0
#: saturation flow of one lane area (a single lane discharges about 1800-2000 veh/h)
MAX_SATURATION_FLOW_VPH = 10_000.0
#: a lane-area detector zone longer than a kilometre is no stop-line detector
MAX_ZONE_LENGTH_M = 1_000.0
#: structural limits: far above any real junction, low enough that validating stays fast
MAX_GROUPS, MAX_STAGES, MAX_PHASES, MAX_LANE_AREAS, MAX_ID_CHARS = 64, 32, 64, 512, 64
#: a model document larger than this is refused before parsing (a record must fit in 1 MiB anyway)
MAX_MODEL_BYTES = 1 << 20

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
    #: intergreen towards every conflicting group when this group's green ends in a stage where
    #: it only *yields* (:attr:`Stage.yielding`): turners waiting inside the junction for a gap
    #: clear from a standstill once the stream they yield to has stopped, which takes longer
    #: than the intergreen matrix's moving vehicle on a long path (RiLSA's waiting left turners).
    #: It holds until the group is green again, across short stages in between. Set by a
    #: configuration's engineers; the SUMO reader sets none (docs/signals.md, "Yielding
    #: clearance"). None: the matrix alone
    yielding_clearance_s: float | None = None


class SignalGroupTimings(TypedDict, total=False):
    """Some timings of a :class:`SignalGroup`, as keyword arguments: what a test or a tool changes
    with ``dataclasses.replace(group, **timings)``."""

    min_green_s: float
    yellow_s: float
    red_yellow_s: float
    max_wait_s: float | None
    yielding_clearance_s: float | None


@dataclass(frozen=True)
class Stage:
    """A set of non-conflicting signal groups that are green together, with its green bounds."""

    id: str
    groups: frozenset[str]
    min_green_s: float = RILSA_MIN_GREEN_S
    max_green_s: float = 60.0
    #: groups green here only *permissively*: they yield to a conflicting stream green in the same
    #: stage (a left turn across oncoming traffic, SUMO's ``g``). Turners waiting for a gap stand
    #: inside the junction, where no detector sees them; controllers need to know where that
    #: happens (leitstand's ``clear_short_link``). Empty: every group is protected
    yielding: frozenset[str] = frozenset()


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
    #: length of the detection zone along the lane in metres (None: not known): the most
    #: vehicles it can hold, hence the most a reading - or the estimate of a dead detector - can show
    length_m: float | None = None
    #: the stretch of road the detection zone covers, named alike by every intersection whose
    #: detectors cover it (the SUMO reader names it by its lanes). Two intersections' detectors on
    #: one zone - the upstream signal's exit, the downstream signal's approach on a short link -
    #: see the same vehicles, so each can stand in for the other (``signals/corridor.py``)
    zone: str | None = None

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
        yellow of every ending group (so it is red before the next stage starts), the red-yellow
        of every starting group (shown at the end of the transition), and the yielding clearance
        of every group that ends while it only yields in ``from_stage`` and conflicts with a
        starting one (:meth:`clearance_s`).
        """
        if from_stage == to_stage:
            return 0.0
        a, b = self.stage(from_stage).groups, self.stage(to_stage).groups
        ending, starting = a - b, b - a
        needs = [0.0]
        needs += [self.groups[g].yellow_s for g in ending]
        needs += [self.groups[g].red_yellow_s for g in starting]
        needs += [self.clearance_s(from_stage, e, s) for e in ending for s in starting if self.conflicting(e, s)]
        return max(needs)

    def clearance_s(self, from_stage: str, clearing: str, entering: str) -> float:
        """Seconds from the end of ``clearing``'s green in ``from_stage`` to the earliest green of
        the conflicting ``entering`` group: the intergreen, or the clearing group's yielding
        clearance when it only yielded in that stage (its turners may still wait inside)."""
        ig = self.intergreen_s[(clearing, entering)]
        own = self.groups[clearing].yielding_clearance_s
        if own is not None and clearing in self.stage(from_stage).yielding:
            return max(ig, own)
        return ig

    # -- consistency ---------------------------------------------------------------------------
    def _check_numbers(self) -> None:
        """Every number finite and non-negative, times at most an hour: what arithmetic needs.

        ``t < 0`` is False for NaN, so each bound is written as ``lo <= t <= hi`` (False for NaN).
        """

        def sane(what: str, value: float, lo: float = 0.0, hi: float = SANE_MAX_S) -> None:
            if not (isinstance(value, (int, float)) and not isinstance(value, bool) and lo <= value <= hi):
                raise ModelError(f"{what} is {value!r}, need a finite number in [{lo:g}, {hi:g}]")

        for gid, g in self.groups.items():
            sane(f"group {gid!r} min_green_s", g.min_green_s, 1.0)
            sane(f"group {gid!r} yellow_s", g.yellow_s)
            sane(f"group {gid!r} red_yellow_s", g.red_yellow_s)
            if g.max_wait_s is not None:
                sane(f"group {gid!r} max_wait_s", g.max_wait_s)
            if g.yielding_clearance_s is not None:
                sane(f"group {gid!r} yielding_clearance_s", g.yielding_clearance_s)
        for (a, b), t in self.intergreen_s.items():
            sane(f"intergreen {a!r}->{b!r}", t)
        for st in self.stages:
            sane(f"stage {st.id!r} min_green_s", st.min_green_s, 1.0)
            sane(f"stage {st.id!r} max_green_s", st.max_green_s, 1.0)
        for p in self.fixed_plan.phases:
            sane(f"fixed plan green of stage {p.stage!r}", p.green_s, 1.0)
        for lane in self.lanes:
            sane(f"lane area {lane.id!r} saturation_flow_vph", lane.saturation_flow_vph, 1.0, MAX_SATURATION_FLOW_VPH)
            if lane.length_m is not None:
                sane(f"lane area {lane.id!r} length_m", lane.length_m, 0.0, MAX_ZONE_LENGTH_M)
        sane("cycle min_s", self.cycle_min_s)
        sane("cycle max_s", self.cycle_max_s)
        sane("max_wait_s", self.max_wait_s)

    def _check(self) -> None:
        self._check_numbers()
        known = set(self.groups)
        for gid, g in self.groups.items():
            if gid != g.id:
                raise ModelError(f"group key {gid!r} != id {g.id!r}")
            if g.kind not in ("vehicle", "pedestrian", "cyclist"):
                raise ModelError(f"group {gid!r}: unknown kind {g.kind!r}")
        for pair in self.conflicts:
            if len(pair) != 2 or not pair <= known:
                raise ModelError(f"conflict {sorted(pair)} names unknown or identical groups")
            a, b = sorted(pair)
            for key in ((a, b), (b, a)):
                if key not in self.intergreen_s:
                    raise ModelError(f"conflicting pair {key} has no intergreen time")
        for a, b in self.intergreen_s:
            if not self.conflicting(a, b):
                raise ModelError(f"intergreen {a}->{b} given for a non-conflicting pair")
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
            if not st.yielding <= st.groups:
                raise ModelError(f"stage {st.id}: yielding groups {sorted(st.yielding - st.groups)} are not green in it")
            served |= st.groups
        if served != known:
            raise ModelError(f"groups in no stage (would starve): {sorted(known - served)}")
        yielding = frozenset().union(*(st.yielding for st in self.stages))
        for gid, g in self.groups.items():
            if g.yielding_clearance_s is not None and gid not in yielding:
                raise ModelError(f"group {gid!r} has a yielding clearance but yields in no stage")
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


# -- RiLSA bounds and the fixed plan: the gate for configuration from outside -------------------
def rilsa_problems(intersection: Intersection) -> list[str]:
    """What in ``intersection`` lies outside the physical bounds docs/signals.md lists (RiLSA 2015 where it
    fixes a value); empty when all is well. Checked by every factory of this module."""
    out: list[str] = []

    def within(what: str, value: float, lo: float, hi: float) -> None:
        if not lo <= value <= hi:
            out.append(f"{what} {value:g} s outside [{lo:g}, {hi:g}] s")

    for gid, g in intersection.groups.items():
        within(f"group {gid!r} min_green_s", g.min_green_s, RILSA_MIN_GREEN_S, MAX_GREEN_S)
        if g.kind == "vehicle":
            within(f"vehicle group {gid!r} yellow_s", g.yellow_s, *RILSA_YELLOW_RANGE_S)
        else:
            within(f"{g.kind} group {gid!r} yellow_s", g.yellow_s, 0.0, MAX_OTHER_YELLOW_S)
        within(f"group {gid!r} red_yellow_s", g.red_yellow_s, 0.0, MAX_RED_YELLOW_S)
        if g.max_wait_s is not None:
            within(f"group {gid!r} max_wait_s", g.max_wait_s, RILSA_MIN_GREEN_S, MAX_CYCLE_S)
        if g.yielding_clearance_s is not None:
            within(f"group {gid!r} yielding_clearance_s", g.yielding_clearance_s, 0.0, MAX_INTERGREEN_S)
    for (a, b), t in sorted(intersection.intergreen_s.items()):
        within(f"intergreen {a!r}->{b!r}", t, 0.0, MAX_INTERGREEN_S)
    for st in intersection.stages:
        within(f"stage {st.id!r} min_green_s", st.min_green_s, RILSA_MIN_GREEN_S, MAX_GREEN_S)
        within(f"stage {st.id!r} max_green_s", st.max_green_s, RILSA_MIN_GREEN_S, MAX_GREEN_S)
        if intersection.stage_green_floor_s(st.id) > st.max_green_s:
            out.append(f"stage {st.id!r}: its groups' minimum green exceeds max_green_s {st.max_green_s:g} s")
    within("cycle max_s", intersection.cycle_max_s, RILSA_MIN_GREEN_S, MAX_CYCLE_S)
    within("max_wait_s", intersection.max_wait_s, RILSA_MIN_GREEN_S, MAX_CYCLE_S)
    if len(intersection.fixed_plan.phases) > MAX_PHASES:
        out.append(f"fixed plan has {len(intersection.fixed_plan.phases)} phases, at most {MAX_PHASES}")
    return out
