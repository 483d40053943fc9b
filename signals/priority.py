"""Transit signal priority: a green extension or an early green for one late bus, within limits.

Conditional priority only: the bus agent asks only for buses later than its threshold, and this
module grants only what the running program allows:

* **Green extension** when the bus's stage is green now but would turn red before the bus
  reaches the stop line: the stage is held ``needed`` seconds longer (at most
  ``max_extension_s``, never beyond the stage's maximum green or the intersection's maximum
  cycle). The other stages keep their greens; the cycle is that much longer.
* **Early green** when the bus's stage is red and the bus would arrive before it turns green:
  the stages before it are cut short (at most ``max_early_s`` in total, never below a stage's
  minimum green, never a green that already ran its minimum into the past), and the time is given
  back to the bus's stage, so the cycle keeps its length and the program its rhythm.

A grant is the running cyclic program unrolled over the current and the next cycle with the
changed greens: an acyclic plan from the start of the current cycle, which the control loop
passes through the safety gate and the stage adapter like any other plan and replaces with the
program again when its window has run out. One grant per intersection at a time, so at most one
per cycle.

An adaptive (acyclic) controller gets no grant: it re-plans every second, and a plan laid over
it would stop it reacting to anything else. It takes a **bus call** instead (:class:`BusCall`):
until the bus should have passed, the bus counts as ``bus_weight_veh`` queued vehicles on its
stage in the controller's own choice, so that stage is held longer while green and called
sooner while red, within the same minimum and maximum greens, maximum waits and validator as
every other decision; the controller's explanation names the bus. The weight is the person-based
idea of priority (a bus carries many people), one constant chosen by cross-validation across
maps (docs/transit.md).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import ClassVar, Literal

from signals.explain import Explanation, StageDecision
from signals.model import Intersection, SignalPlan, StagePhase
from signals.timeline import StageWindow, build_timeline

CONTROLLER = "transit-priority"
VERSION = "1.0"


#: bus calls weighed per stage at once (the earliest due): two buses of a line running together is
#: the most a stage serves in one green; more calls are a flood (a faulty bus agent, or someone
#: writing to ``signals.priority``) and must not hold a stage for the sum of them
MAX_CALLS_PER_STAGE = 2


@dataclass(frozen=True)
class PriorityRules:
    max_extension_s: float = 15.0
    max_early_s: float = 15.0
    #: green kept after the bus's expected arrival at the stop line (an ETA is an estimate)
    margin_s: float = 3.0
    #: shorter grants are not worth a changed plan
    min_change_s: float = 1.0
    #: adaptive controllers: how many queued vehicles a late bus counts as for its stage
    bus_weight_veh: float = 30.0
    #: adaptive controllers: a call lasts the bus's ETA and the margin, but at most this long
    #: (a bus stuck far back in a queue must not bias the signal for minutes)
    max_call_s: float = 120.0

    def __post_init__(self) -> None:
        if not (0 <= self.max_extension_s <= 60 and 0 <= self.max_early_s <= 60 and 0 <= self.margin_s <= 30):
            raise ValueError("priority limits out of range (extension and early green 0..60 s, margin 0..30 s)")
        if not (0 <= self.bus_weight_veh <= 100 and 0 < self.max_call_s <= 600):
            raise ValueError("bus call out of range (weight 0..100 vehicles, call 0..600 s)")


@dataclass(frozen=True)
class PriorityCall:
    """A late bus asking: which stage serves its approach, when it will be at the stop line."""

    request_id: str
    vehicle_id: str
    stage: str
    at_s: float
    eta_s: float
    delay_s: float


@dataclass(frozen=True)
class Grant:
    kind: Literal["extension", "early_green"]
    seconds: float
    decision: StageDecision
    until_s: float
    saving_s: float

    def explain(self, call: PriorityCall) -> str:
        what = "green extension" if self.kind == "extension" else "early green"
        return (
            f"{what} of {self.seconds:.0f} s for stage {call.stage}: bus {call.vehicle_id} {call.delay_s:.0f} s late, "
            f"at the stop line in {call.eta_s:.0f} s; it saves about {self.saving_s:.0f} s (delay after about "
            f"{call.delay_s - self.saving_s:.0f} s)"
        )


@dataclass(frozen=True)
class Refusal:
    reason: str


@dataclass(frozen=True)
class BusCall:
    """A late bus as extra demand on its stage, for an adaptive controller to weigh until
    ``until_s`` (the bus's ETA and the margin, at most ``max_call_s``)."""

    call: PriorityCall
    weight_veh: float
    until_s: float
    #: as the audit and the SUMO counts name it, beside a grant's ``extension`` / ``early_green``
    kind: ClassVar[Literal["bus_call"]] = "bus_call"

    def explain(self) -> str:
        c = self.call
        return (
            f"bus call on stage {c.stage}: bus {c.vehicle_id} {c.delay_s:.0f} s late, at the stop line in about "
            f"{c.eta_s:.0f} s, counts as {self.weight_veh:g} waiting vehicles for the adaptive controller until it "
            f"should have passed ({self.until_s - c.at_s:.0f} s); minimum and maximum greens and waits still bind"
        )


def call_for_bus(x: Intersection, call: PriorityCall, rules: PriorityRules = PriorityRules()) -> BusCall | Refusal:
    """The bus call an adaptive controller weighs for ``call``, or why there is none."""
    if call.stage not in {s.id for s in x.stages}:
        return Refusal(f"stage {call.stage!r} is not a stage of {x.id}")
    if not (math.isfinite(call.eta_s) and call.eta_s >= 0 and math.isfinite(call.at_s)):
        return Refusal("no usable arrival estimate")
    if rules.bus_weight_veh <= 0:
        return Refusal("bus calls are switched off (weight 0)")
    return BusCall(call, rules.bus_weight_veh, call.at_s + min(call.eta_s + rules.margin_s, rules.max_call_s))


def plan_priority(x: Intersection, current: StageDecision, call: PriorityCall, rules: PriorityRules = PriorityRules()) -> Grant | Refusal:
    """The grant for ``call`` against the plan driven now, or why there is none."""
    plan = current.plan
    if not plan.cyclic:
        return Refusal("the driven plan is adaptive (acyclic): priority works on cyclic programs")
    if call.stage not in plan.stage_sequence:
        return Refusal(f"stage {call.stage!r} is not in the driven plan")
    if not call.eta_s >= 0:
        return Refusal("no usable arrival estimate")
    cycle = build_timeline(x, plan).duration_s
    t = (call.at_s - current.origin_s) % cycle
    start = call.at_s - t
    phases = list(plan.phases) * 2
    windows = build_timeline(x, SignalPlan(tuple(phases), cyclic=False)).stage_windows
    arrive = t + call.eta_s
    for i, w in enumerate(windows):
        if phases[i].stage == call.stage and w.end_s > t:
            if w.start_s <= t:
                return _extend(x, current, call, rules, phases, i, w.end_s - t, start, cycle, windows)
            return _early(x, current, call, rules, phases, i, t, arrive, start, cycle, windows)
    return Refusal("the bus's stage does not come round within two cycles")


def _extend(
    x: Intersection,
    current: StageDecision,
    call: PriorityCall,
    rules: PriorityRules,
    phases: list[StagePhase],
    i: int,
    remaining: float,
    start: float,
    cycle: float,
    windows: tuple[StageWindow, ...],
) -> Grant | Refusal:
    needed = call.eta_s + rules.margin_s - remaining
    if needed <= 0:
        return Refusal("the bus arrives while its stage is green")
    stage = x.stage(call.stage)
    limit = min(rules.max_extension_s, stage.max_green_s - phases[i].green_s, x.cycle_max_s - cycle)
    needed = max(needed, rules.min_change_s)
    if needed > limit:
        return Refusal(f"it would need {needed:.0f} s of extension, {max(0.0, limit):.0f} s allowed")
    phases[i] = replace(phases[i], green_s=phases[i].green_s + needed)
    nxt = next(k for k in range(i + 1, len(phases)) if phases[k].stage == call.stage)
    saving = windows[nxt].start_s - (windows[i].end_s - remaining + call.eta_s)
    return _grant(x, current, call, "extension", needed, phases, i, start, saving)


def _early(
    x: Intersection,
    current: StageDecision,
    call: PriorityCall,
    rules: PriorityRules,
    phases: list[StagePhase],
    j: int,
    t: float,
    arrive: float,
    start: float,
    cycle: float,
    windows: tuple[StageWindow, ...],
) -> Grant | Refusal:
    wait = windows[j].start_s - arrive
    if wait <= 0:
        return Refusal("the bus arrives after its stage has turned green")
    want = min(wait, rules.max_early_s)
    cut = 0.0
    for k in range(j):  # the running green first, then the ones before the bus's stage
        w = windows[k]
        if w.end_s <= t:
            continue  # over already
        floor = max(x.stage_green_floor_s(phases[k].stage), t - w.start_s)
        take = min(max(0.0, phases[k].green_s - floor), want - cut)
        if take > 0:
            phases[k] = replace(phases[k], green_s=phases[k].green_s - take)
            cut += take
        if cut >= want:
            break
    if cut < rules.min_change_s:
        return Refusal("the stages before the bus's stage are at their minimum greens")
    stage = x.stage(call.stage)
    phases[j] = replace(phases[j], green_s=min(stage.max_green_s, phases[j].green_s + cut))
    return _grant(x, current, call, "early_green", cut, phases, j, start, cut)


def _grant(
    x: Intersection,
    current: StageDecision,
    call: PriorityCall,
    kind: Literal["extension", "early_green"],
    seconds: float,
    phases: list[StagePhase],
    changed: int,
    start: float,
    saving: float,
) -> Grant:
    plan = SignalPlan(tuple(phases), cyclic=False)
    # the grant lasts to the end of the cycle holding the bus's green (the next cycle's first
    # green, so the program takes over inside a green), not always two cycles: a bus in the next
    # cycle can be served, and still at most one grant per cycle
    n = len(current.plan.phases)
    timeline = build_timeline(x, plan)
    until = start + (timeline.stage_windows[n].start_s if changed < n else timeline.duration_s)
    explanation = Explanation(
        CONTROLLER,
        VERSION,
        f"transit_priority_{kind}",
        (
            ("delay_s", round(call.delay_s, 1)),
            ("eta_s", round(call.eta_s, 1)),
            (f"{kind}_s", round(seconds, 1)),
            ("saving_s", round(saving, 1)),
        ),
        f"bus {call.vehicle_id} gets {'a longer' if kind == 'extension' else 'an earlier'} green on stage {call.stage}; "
        f"saves about {saving:.0f} s (then {current.explanation.controller} again)",
    )
    decision = StageDecision(x.id, call.at_s, plan, explanation, origin_s=start)
    return Grant(kind, seconds, decision, until, round(saving, 1))
