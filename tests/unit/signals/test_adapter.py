"""The stage adapter keeps every handover safe; the monitor catches what is unsafe on the street."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from signals.adapter import StageAdapter
from signals.explain import Explanation, StageDecision
from signals.loader import load_intersection
from signals.model import Intersection, SignalPlan, StagePhase
from signals.monitor import SafetyMonitor
from signals.timeline import SignalState
from signals.validator import SafetyValidator
from tests.unit.signals.test_properties import intersections

EXAMPLE = load_intersection("signals/examples/k101_four_arm.json")
WHY = Explanation("test", "0", "random", (), "-")
G, Y, R, RY = SignalState.GREEN, SignalState.YELLOW, SignalState.RED, SignalState.RED_YELLOW


@st.composite
def plan_switches(draw, x: Intersection) -> list[tuple[int, StageDecision]]:
    """At random seconds, a new arbitrary acyclic plan (random stages, greens, origin) takes over."""
    out, t = [], 0
    ids = [s.id for s in x.stages]
    for _ in range(draw(st.integers(1, 12))):
        t += draw(st.integers(0, 40))
        phases = tuple(StagePhase(draw(st.sampled_from(ids)), float(draw(st.integers(1, 30)))) for _ in range(draw(st.integers(1, 5))))
        origin = t - draw(st.integers(0, 20))
        out.append((t, StageDecision(x.id, float(t), SignalPlan(phases, cyclic=draw(st.booleans())), WHY, float(origin))))
    return out


def _drive(x: Intersection, switches: list[tuple[int, StageDecision]], seconds: int, adapter: StageAdapter | None = None) -> SafetyMonitor:
    adapter, monitor = adapter or StageAdapter(x), SafetyMonitor(x)
    current = StageDecision(x.id, 0.0, x.fixed_plan, WHY, 0.0)
    pending = list(switches)
    for t in range(seconds):
        while pending and pending[0][0] <= t:
            current = pending.pop(0)[1]
        monitor.observe(float(t), adapter.step(current, float(t)))
    return monitor


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=st.data(), x=st.one_of(st.just(EXAMPLE), intersections(feasible=True)))
def test_any_sequence_of_plans_is_shown_safely(data: st.DataObject, x: Intersection) -> None:
    """Whatever plans arrive, whenever: no conflicting greens, intergreen, sequence, yellow,
    red-yellow or minimum-green violation ever reaches the street (waits are the plans' business)."""
    monitor = _drive(x, data.draw(plan_switches(x)), 400)
    assert [str(v) for v in monitor.violations if v.code != "max_wait"] == []


def test_fixed_plan_through_the_adapter_shows_the_fixed_cycle() -> None:
    x = EXAMPLE
    monitor = _drive(x, [], 600)
    assert monitor.violations == []
    adapter = StageAdapter(x)
    fixed = StageDecision(x.id, 0.0, x.fixed_plan, WHY, 0.0)
    changes = 0
    for t in range(600):
        before = adapter.stage
        adapter.step(fixed, float(t))
        changes += before is not None and adapter.stage != before
    assert changes >= len(x.fixed_plan.phases) * 3  # several cycles' worth of stage changes


def test_monitor_flags_what_is_unsafe() -> None:
    x = EXAMPLE
    a, b = next((a, b) for a, b in sorted(tuple(sorted(p)) for p in x.conflicts) if x.groups[a].yellow_s > 0)
    others = {g: R for g in x.groups}
    m = SafetyMonitor(x)
    m.observe(0.0, {**others, a: G, b: G})
    assert [v.code for v in m.violations] == ["conflicting_greens"]
    m = SafetyMonitor(x)
    m.observe(0.0, {**others, a: G})
    m.observe(1.0, {**others, a: R})  # green straight to red: no yellow, and a short green
    assert {v.code for v in m.violations} >= {"signal_sequence", "min_green"}
    m = SafetyMonitor(x)
    m.observe(0.0, {**others, a: G})
    for t in range(1, 8):
        m.observe(float(t), {**others, a: G})
    m.observe(8.0, {**others, a: Y})
    m.observe(8.0 + x.groups[a].yellow_s, {**others, a: R})
    m.observe(8.0 + x.groups[a].yellow_s, {**others, a: R, b: RY if x.groups[b].red_yellow_s else G})
    m.observe(8.0 + x.groups[a].yellow_s + 0.1, {**others, a: R, b: G})
    assert "intergreen" in {v.code for v in m.violations} or x.intergreen_s[(a, b)] <= x.groups[a].yellow_s + 0.1


def test_monitor_judges_the_whole_street_whatever_the_order_or_the_part_it_is_given() -> None:
    """K1 -> K2 needs 4 s of intergreen. Handed K2's green before K1's green end in one step, the
    monitor measured K2's intergreen against K1's *old* green and found nothing; handed only the
    groups that changed, it never saw that K1 was still green (stop 54's probe)."""
    x = EXAMPLE
    assert x.intergreen_s[("K1", "K2")] == 4.0
    base = {g: R for g in x.groups if g not in ("K1", "K2")}
    for order in (("K1", "K2"), ("K2", "K1")):
        m = SafetyMonitor(x)
        for t, step in ((0.0, {"K1": G, "K2": R}), (9.0, {"K1": G, "K2": RY}), (10.0, {"K1": Y, "K2": G})):
            m.observe(t, {**base, **{g: step[g] for g in order}})
        assert [(v.code, v.subject) for v in m.violations] == [("intergreen", "K1->K2")], order
    m = SafetyMonitor(x)
    m.observe(0.0, {**base, "K1": G, "K2": R})
    m.observe(9.0, {"K2": RY})
    assert [(v.code, v.subject) for v in m.observe(10.0, {"K2": G})] == [("conflicting_greens", "K1/K2")]


def test_a_long_intergreen_two_stages_back_is_counted_when_a_handover_is_judged() -> None:
    """A -> C needs 30 s of intergreen; C may wait 60 s. After C 10, A 10, B 10 (the fixed plan),
    a valid plan A 25, B 10, C 8 taken over at 17 s: the adapter judged the sequence's waits with
    the stage transitions alone (3 s from B to C), ran A to 42 s and C got green at 72 s, a 62 s
    wait. Counting A's green end, it keeps C's wait (stop 54's probe)."""
    from signals.loader import intersection_from_dict

    x = intersection_from_dict(
        {
            "schema": "leitstand.intersection/1",
            "id": "X",
            "max_wait_s": 60,
            "signal_groups": [{"id": "A"}, {"id": "B"}, {"id": "C"}],
            "conflicts": [["A", "C"], ["B", "C"]],
            "intergreen_s": {"A": {"C": 30}, "C": {"A": 3, "B": 3}, "B": {"C": 3}},
            "stages": [{"id": "SA", "groups": ["A"]}, {"id": "SB", "groups": ["B"]}, {"id": "SC", "groups": ["C"]}],
            "fixed_plan": [{"stage": "SC", "green_s": 10}, {"stage": "SA", "green_s": 10}, {"stage": "SB", "green_s": 10}],
        }
    )
    second = SignalPlan((StagePhase("SA", 25.0), StagePhase("SB", 10.0), StagePhase("SC", 8.0)))
    assert SafetyValidator(x).check(second).ok
    for switch in range(1, 60):
        adapter, monitor = StageAdapter(x), SafetyMonitor(x)
        first_d = StageDecision(x.id, 0.0, x.fixed_plan, WHY, 0.0)
        second_d = StageDecision(x.id, float(switch), second, WHY, float(switch))
        for t in range(200):
            monitor.observe(float(t), adapter.step(first_d if t < switch else second_d, float(t)))
        assert monitor.violations == [], (switch, monitor.violations)


def _splice(x: Intersection, guard: bool) -> tuple[StageAdapter, SafetyMonitor]:
    """Two plans the validator accepts (hypothesis found them): the second, with stage C 50 s
    instead of 12 s, takes over at a point of its cycle that makes the adapter skip B on its way
    from A to C and then hold C; K2 (stage B only) waits past its 110 s."""
    first = SignalPlan((StagePhase("A", 8.0), StagePhase("B", 5.0), StagePhase("C", 12.0)))
    second = SignalPlan((StagePhase("A", 8.0), StagePhase("B", 5.0), StagePhase("C", 50.0)))
    validator = SafetyValidator(x)
    assert validator.check(first).ok and validator.check(second).ok
    adapter = StageAdapter(x)
    if not guard:
        adapter._due_stage = lambda *_: None  # type: ignore[method-assign]
    plans = [(1, StageDecision(x.id, 1.0, first, WHY, 1.0)), (38, StageDecision(x.id, 38.0, second, WHY, 34.0))]
    return adapter, _drive(x, plans, 400, adapter)


def test_a_handover_between_valid_plans_cannot_starve_a_group() -> None:
    _, unguarded = _splice(EXAMPLE, guard=False)
    assert [v.subject for v in unguarded.violations if v.code == "max_wait"] == ["K2"]
    adapter, guarded = _splice(EXAMPLE, guard=True)
    assert guarded.violations == [] and adapter.wait_overrides >= 1


@st.composite
def valid_plan_switches(draw, x: Intersection) -> list[tuple[int, StageDecision]]:
    """At random seconds, a new cyclic plan the validator accepts takes over, at any origin."""
    validator, out, t = SafetyValidator(x), [], 0
    stages = list(x.stages)
    for _ in range(draw(st.integers(1, 8))):
        t += draw(st.integers(1, 90))
        greens = [float(draw(st.integers(int(s.min_green_s), int(s.max_green_s)))) for s in stages]
        plan = SignalPlan(tuple(StagePhase(s.id, g) for s, g in zip(stages, greens, strict=True)))
        if validator.check(plan).ok:
            out.append((t, StageDecision(x.id, float(t), plan, WHY, float(t - draw(st.integers(0, 120))))))
    return out


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=st.data(), x=st.one_of(st.just(EXAMPLE), intersections(feasible=True)))
def test_valid_plans_switched_at_any_moment_keep_every_wait(data: st.DataObject, x: Intersection) -> None:
    """Each plan keeps the waits; whenever and wherever in its cycle one takes over, the street
    still does: no group waits past its maximum (nor any other violation)."""
    monitor = _drive(x, data.draw(valid_plan_switches(x)), 600)
    assert [str(v) for v in monitor.violations] == []
