"""Transit signal priority (signals/priority.py, signals/controllers/priority.py) on the K101
example: fixed program A 36 s, B 10 s, C 28 s, cycle 95 s (greens at 0-36, 44-54, 58-86)."""

from __future__ import annotations

import hypothesis.strategies as st
from hypothesis import given, settings

from signals.controllers import DetectorObservation, FixedTimeController
from signals.controllers.priority import PriorityController
from signals.explain import StageDecision
from signals.loader import load_intersection
from signals.model import SignalPlan
from signals.priority import Grant, PriorityCall, PriorityRules, Refusal, plan_priority
from signals.timeline import build_timeline
from signals.validator import SafetyValidator

X = load_intersection("signals/examples/k101_four_arm.json")
ORIGIN = 1_000_000.0


def fixed_at(t: float) -> StageDecision:
    ctl = FixedTimeController(X)
    ctl.decide(DetectorObservation(X.id, ORIGIN, 1.0, {}))
    return ctl.decide(DetectorObservation(X.id, t, 1.0, {}))


def call(stage: str, at: float, eta: float, delay: float = 240.0) -> PriorityCall:
    return PriorityCall("r1", "bus-1", stage, ORIGIN + at, eta, delay)


def greens(grant: Grant) -> list[tuple[str, float]]:
    return [(p.stage, p.green_s) for p in grant.decision.plan.phases]


def test_extension_holds_the_bus_stage_just_long_enough() -> None:
    out = plan_priority(X, fixed_at(ORIGIN + 30), call("A", 30, eta=10))  # A ends at 36, bus at 40
    assert isinstance(out, Grant) and out.kind == "extension"
    assert out.seconds == 7.0  # 40 + 3 s margin - 36
    assert greens(out)[:3] == [("A", 43.0), ("B", 10.0), ("C", 28.0)] and greens(out)[3:] == [("A", 36.0), ("B", 10.0), ("C", 28.0)]
    assert out.saving_s == 95 - 40  # instead of waiting for the next A green at 95
    assert out.decision.origin_s == ORIGIN and not out.decision.plan.cyclic
    assert SafetyValidator(X).check(out.decision.plan).ok
    assert "green extension of 7 s" in out.explain(call("A", 30, eta=10))


def test_early_green_cuts_the_stages_before_down_to_their_minimum() -> None:
    # at 40 (transition A->B) the bus will be at the C stop line at 45; C starts at 58
    out = plan_priority(X, fixed_at(ORIGIN + 40), call("C", 40, eta=5))
    assert isinstance(out, Grant) and out.kind == "early_green"
    assert out.seconds == 5.0  # B can give 5 s (10 -> its 5 s minimum); A is over
    assert greens(out)[:3] == [("A", 36.0), ("B", 5.0), ("C", 33.0)]
    unrolled = SignalPlan(X.fixed_plan.phases * 2, cyclic=False)
    assert build_timeline(X, out.decision.plan).duration_s == build_timeline(X, unrolled).duration_s  # same rhythm
    assert SafetyValidator(X).check(out.decision.plan).ok


def test_refusals() -> None:
    d = fixed_at(ORIGIN + 10)
    assert isinstance(plan_priority(X, d, call("A", 10, eta=5)), Refusal)  # arrives in green
    far = plan_priority(X, d, call("A", 30, eta=40))
    assert isinstance(far, Refusal) and "allowed" in far.reason
    assert isinstance(plan_priority(X, d, call("Z", 10, eta=5)), Refusal)  # no such stage
    # in the B -> C transition nothing before C can be cut any more
    short = plan_priority(X, fixed_at(ORIGIN + 55), call("C", 55, eta=1))
    assert isinstance(short, Refusal) and "minimum" in short.reason


@settings(max_examples=300, deadline=None)
@given(
    st.floats(min_value=0, max_value=95, exclude_max=True),
    st.sampled_from(["A", "B", "C"]),
    st.floats(min_value=0, max_value=120),
    st.floats(min_value=0, max_value=30),
    st.floats(min_value=0, max_value=30),
)
def test_every_grant_is_safe_and_within_limits(at: float, stage: str, eta: float, max_ext: float, max_early: float) -> None:
    rules = PriorityRules(max_extension_s=max_ext, max_early_s=max_early)
    out = plan_priority(X, fixed_at(ORIGIN + at), call(stage, at, eta), rules)
    if isinstance(out, Refusal):
        return
    assert SafetyValidator(X).check(out.decision.plan).ok
    fixed = [p.green_s for p in X.fixed_plan.phases] * 2
    new = [p.green_s for p in out.decision.plan.phases]
    for p, before, after in zip(out.decision.plan.phases, fixed, new):
        assert after >= X.stage_green_floor_s(p.stage) - 1e-9  # never below a minimum green
        if p.stage != stage:
            assert after <= before + 1e-9  # only the bus's stage gains
    limit = max_ext if out.kind == "extension" else max_early
    assert rules.min_change_s <= out.seconds <= limit + 1e-9 and out.saving_s > 0


def test_wrapper_drives_the_grant_once_per_cycle_then_the_program_again() -> None:
    ctl = PriorityController(FixedTimeController(X), X)
    assert isinstance(ctl.request(call("A", 0, 5)), Refusal)  # nothing driven yet
    ctl.decide(DetectorObservation(X.id, ORIGIN, 1.0, {}))  # the program's cycle starts here
    first = ctl.decide(DetectorObservation(X.id, ORIGIN + 30, 1.0, {}))
    assert first.explanation.controller == "fixed"
    grant = ctl.request(call("A", 30, eta=10))
    assert isinstance(grant, Grant)
    assert ctl.decide(DetectorObservation(X.id, ORIGIN + 31, 1.0, {})) is grant.decision
    again = ctl.request(call("A", 40, eta=10))
    assert isinstance(again, Refusal) and "one per cycle" in again.reason
    after = ctl.decide(DetectorObservation(X.id, grant.until_s + 1, 1.0, {}))
    assert after.explanation.controller == "fixed" and ctl.name == "fixed"


def test_a_grant_lasts_to_the_end_of_the_cycle_holding_the_bus_green() -> None:
    # extension in this cycle: the grant ends with this (longer) cycle, 95 + 7 s after its start
    ext = plan_priority(X, fixed_at(ORIGIN + 30), call("A", 30, eta=10))
    assert isinstance(ext, Grant) and ext.until_s == ORIGIN + 95 + 7
    # early green for C in this cycle: the cycle keeps its length, the grant ends with it
    early = plan_priority(X, fixed_at(ORIGIN + 40), call("C", 40, eta=5))
    assert isinstance(early, Grant) and early.until_s == ORIGIN + 95
    # at 70 (C green) A's next green is in the next cycle: the grant runs through both (to the end of the
    # second C green: an acyclic plan ends without the intergreen back to A)
    late = plan_priority(X, fixed_at(ORIGIN + 70), call("A", 70, eta=5))
    assert isinstance(late, Grant) and late.kind == "early_green" and late.until_s == ORIGIN + 95 + 86
