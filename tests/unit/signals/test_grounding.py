"""An acyclic controller whose plan is not the one driven (advisory mode without a mandate, a rejected decision, a
window run out) plans from what the driven plan shows (``IntersectionControl._ground``): its
proposals start from the stage on the street, say so, and still pass the safety validator."""

from __future__ import annotations

import random
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from signals.control import IntersectionControl
from signals.controllers import DetectorObservation
from signals.explain import StageDecision
from signals.model import SignalPlan, StagePhase
from signals.timeline import StageLayout, build_timeline
from signals.validator import SafetyValidator
from tests.unit.signals.test_resync import T0, X, frame


def test_the_stage_a_plan_shows_and_since_when() -> None:
    a, b = X.stages[0].id, X.stages[1].id
    layout = StageLayout(X)
    acyclic = SignalPlan((StagePhase(a, 20.0), StagePhase(b, 15.0)), cyclic=False)
    change = layout.change(a, b)
    assert change > 0
    assert layout.shown(acyclic, 100.0, 90.0) == (a, 100.0)  # before the window: its first stage held
    assert layout.shown(acyclic, 100.0, 110.0) == (a, 100.0)
    assert layout.shown(acyclic, 100.0, 120.0 + change / 2) is None  # changing stage
    assert layout.shown(acyclic, 100.0, 121.0 + change) == (b, 120.0 + change)
    assert layout.shown(acyclic, 100.0, 10_000.0) == (b, 120.0 + change)  # run out: the last stage held
    cyclic = SignalPlan((StagePhase(a, 20.0), StagePhase(b, 15.0)), cyclic=True)
    cycle = layout.windows(cyclic)[1]
    assert cycle == pytest.approx(35.0 + change + layout.change(b, a))
    assert layout.shown(cyclic, 100.0, 100.0 + 3 * cycle + 5.0) == (a, 100.0 + 3 * cycle)
    assert layout.shown(cyclic, 100.0, 100.0 - cycle + 5.0) == (a, 100.0 - cycle)  # before the origin: cycles back
    assert layout.shown(cyclic, 100.0, 100.0 + cycle - 0.5) is None  # the change back to the first stage
    # the windows agree with the full timeline's here (no group cleared two stages back)
    tl = build_timeline(X, cyclic)
    assert [(w.stage, w.start_s) for w in tl.stage_windows] == [(st, start) for st, start, _ in layout.windows(cyclic)[0]]


def _street(control: IntersectionControl, t: float) -> tuple[str, float] | None:
    d = control._drive.decision if control._drive else None  # noqa: SLF001 (what the signal drives)
    return None if d is None else _shown(d, t)


LAYOUT = StageLayout(X)


def _shown(d: StageDecision, t: float) -> tuple[str, float] | None:
    return LAYOUT.shown(d.plan, d.origin_s, t)


def _from_street(d: StageDecision, street: tuple[str, float], now: float) -> bool:
    """The plan shows the street's stage now, or is changing from it now (a switch at once)."""
    here = _shown(d, now)
    if here is not None:
        return here[0] == street[0]
    before = _shown(d, now - 0.5)
    return before is not None and before[0] == street[0]


@pytest.mark.parametrize("controller", ["maxpressure", "leitstand"])
def test_advisory_decisions_start_from_the_stage_the_fixed_program_shows(controller: str) -> None:
    """In advisory mode, until an operator approves a mandate (``signals.advisory``), the fixed
    program drives; each new decision of the controller (what its request to drive would start
    with) shows the stage the street shows at the time (or changes from it at once), and says what
    it was planned from. Planned from its own last decision instead (stop 48 and before), most
    decisions held or left a stage the street was not showing."""
    control, rng = IntersectionControl(X, controller, "advisory", approval_timeout_s=1e9), random.Random(7)
    checked, said, last = 0, 0, None
    for t in range(600):
        now = T0 + t
        street = _street(control, now)
        step = control.on_observation(frame(now, rng))
        assert step.drive.status == "fixed"
        d = control._last_decision  # noqa: SLF001 (the controller's own decision)
        if d is None or d is last or street is None:
            continue  # a repeated decision, or the fixed program changing stage: nothing to plan from
        last = d
        assert _from_street(d, street, now), (t, street, d.plan, d.origin_s - now)
        checked += 1
        said += "advisory mode: the fixed program drives" in d.explanation.expected_effect
    assert checked >= 20
    assert said, "the explanation says what the plan was laid out from"


def test_waits_of_a_grounded_controller_count_from_the_street() -> None:
    """A group the fixed program has not shown for a long time is due in the controller's eyes
    too: its decisions (before any mandate, advisory mode) serve it within its maximum wait counted
    from the street's last green."""
    control, rng = IntersectionControl(X, "maxpressure", "advisory", approval_timeout_s=1e9), random.Random(3)
    last_green: dict[str, float] = {}
    checked, last = 0, None
    for t in range(900):
        now = T0 + t
        d = control._drive.decision if control._drive else None  # noqa: SLF001
        if d is not None:
            for g in build_timeline(X, d.plan).green_at(now - d.origin_s):
                last_green[g] = now
        control.on_observation(frame(now, rng))
        mine = control._last_decision  # noqa: SLF001 (the controller's own decision)
        if mine is None or mine is last:
            continue
        last = mine
        tl = build_timeline(X, mine.plan)
        for g, grp in X.groups.items():
            if g not in last_green or t < 200 or grp.max_wait_s is None:
                continue
            starts = [iv.start_s for iv in tl.intervals[g] if iv.state.name == "GREEN"]
            first = mine.origin_s + starts[0] if starts else None
            if first is not None and first >= now:
                assert first - last_green[g] <= grp.max_wait_s + 2.0, (g, first - last_green[g], grp.max_wait_s)
                checked += 1
    assert checked >= 20  # the check bit (planned from its own decisions, no decision of this run was checkable)


def test_after_a_rejection_the_controller_plans_from_what_the_shell_drives() -> None:
    """Frames slower than a maximum green: max-pressure commits each stage for a whole frame and
    the validator rejects it; the fixed program or the last safe plan drives, and the next plan
    starts from the stage that one shows."""
    control, rng = IntersectionControl(X, "maxpressure", "automatic"), random.Random(5)
    grounded = 0
    for k in range(40):
        now = T0 + 90.0 * k
        street = _street(control, now)
        obs = frame(now, rng)
        step = control.on_observation(DetectorObservation(obs.intersection_id, now, 90.0, obs.lanes))
        decided = control._last_decision  # noqa: SLF001 (the controller's own, rejected or not)
        assert decided is not None
        if "a decision was rejected" in decided.explanation.expected_effect:
            grounded += 1
            assert street is not None and _from_street(decided, street, now)
        assert SafetyValidator(X).check(step.drive.decision.plan).ok
    assert control.rejections > 0 and grounded > 0


def test_an_automatic_controller_whose_plans_are_driven_is_never_told() -> None:
    control, rng = IntersectionControl(X, "leitstand", "automatic"), random.Random(11)
    for t in range(600):
        step = control.on_observation(frame(T0 + t, rng))
        assert "instead of the plan" not in step.drive.decision.explanation.expected_effect


@settings(max_examples=30, deadline=None)
@given(
    controller=st.sampled_from(["maxpressure", "leitstand"]),
    seed=st.integers(0, 10_000),
    actions=st.lists(st.tuples(st.integers(1, 40), st.sampled_from(["approve", "mode", "nothing"])), min_size=1, max_size=25),
)
def test_any_approvals_and_mode_changes_keep_every_plan_valid_and_grounded(controller: str, seed: int, actions: list[Any]) -> None:
    """Operators approving any proposal at any time, modes switched back and forth: every plan
    driven or proposed passes the validator, and a proposal made while a plan not its own drives
    shows the stage that plan shows (or changes from it at once)."""
    control = IntersectionControl(X, controller, "advisory", approval_timeout_s=30.0)
    rng, validator = random.Random(seed), SafetyValidator(X)
    now = T0
    for gap, action in actions:
        for _ in range(gap):
            now += 1.0
            street = _street(control, now)
            own = control._drive is not None and control._drive.decision is control._last_decision  # noqa: SLF001
            step = control.on_observation(frame(now, rng))
            assert validator.check(step.drive.decision.plan).ok
            for p in step.proposals:
                assert validator.check(p.decision.plan).ok
                # a controller restarted by a mode change starts afresh ("start"): grounded from its
                # second decision on
                fresh = p.decision.explanation.rule == "start"
                if p.status == "pending" and street is not None and not own and not fresh and control.mode == "advisory":
                    assert _from_street(p.decision, street, now)
        if action == "approve" and control.pending:
            control.approve(max(control.pending.values(), key=lambda p: p.decision.time_s).plan_id, "op", now)
        elif action == "mode":
            control.set_mode("automatic" if control.mode == "advisory" else "advisory", "op", now)
