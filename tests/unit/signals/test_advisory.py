"""Advisory mode for an acyclic controller (``signals.advisory``): a person approves a mandate to
drive for a period, not each few-second window; nothing but the fixed program drives without one."""

from __future__ import annotations

import random
from dataclasses import replace

import pytest

from signals.advisory import ASK_EVERY_S, MANDATE_S
from signals.control import ControlStep, IntersectionControl
from signals.validator import SafetyValidator
from tests.unit.signals.test_grounding import _from_street, _street
from tests.unit.signals.test_resync import T0, X, frame


def hour(
    control: IntersectionControl, seed: int = 1, approve_after_s: float | None = None, start: int = 0, end: int = 3600
) -> list[ControlStep]:
    """One frame a second; a simulated operator approves each request ``approve_after_s`` after it
    was made (None: never)."""
    rng, steps = random.Random(seed), []
    asked: dict[str, float] = {}
    for t in range(start, end):
        now = T0 + t
        step = control.on_observation(frame(now, rng))
        asked |= {p.plan_id: now for p in step.proposals if p.status == "pending"}
        if approve_after_s is not None:
            for pid in [pid for pid in control.pending if now - asked[pid] >= approve_after_s]:
                _, audit = control.approve(pid, "op", now)
                step = replace(step, audit=step.audit + audit)
        steps.append(step)
    return steps


@pytest.mark.parametrize("controller", ["maxpressure", "leitstand"])
def test_without_an_approval_only_the_fixed_program_drives_and_requests_are_rare(controller: str) -> None:
    control = IntersectionControl(X, controller, "advisory", approval_timeout_s=120.0)
    steps = hour(control)
    requests = [p for s in steps for p in s.proposals if p.status == "pending"]
    assert all(s.drive.status == "fixed" for s in steps)
    # stop 49: 1,100-2,800 proposals an hour, each a window of seconds; now one per ASK_EVERY_S
    assert len(requests) == int(3600 // ASK_EVERY_S)
    times = [e.at_s for s in steps for e in s.audit if e.action == "plan_proposed"]
    assert len(times) == len(requests) and all(b - a >= ASK_EVERY_S for a, b in zip(times, times[1:]))
    effect = requests[0].decision.explanation.expected_effect
    assert f"approve to let {controller} drive" in effect and f"for {MANDATE_S / 60:g} min" in effect
    assert SafetyValidator(X).check(requests[0].decision.plan).ok


@pytest.mark.parametrize("controller", ["maxpressure", "leitstand"])
def test_an_approved_mandate_lets_the_controller_drive_until_it_ends(controller: str) -> None:
    control = IntersectionControl(X, controller, "advisory", approval_timeout_s=120.0)
    rng = random.Random(4)
    assert not control.on_observation(frame(T0, rng)).proposals, "a fresh controller knows nothing of the street yet"
    (request,) = control.on_observation(frame(T0 + 1, rng)).proposals
    control.approve(request.plan_id, "op", T0 + 20)
    validator = SafetyValidator(X)
    driven, renewals = [], []
    for t in range(21, int(20 + MANDATE_S + 60)):
        step = control.on_observation(frame(T0 + t, rng))
        driven.append((t, step.drive))
        renewals += [t for p in step.proposals if p.status == "pending"]
        assert validator.check(step.drive.decision.plan).ok
    during = [d for t, d in driven if t < 20 + MANDATE_S]
    after = [d for t, d in driven if t >= 20 + MANDATE_S]
    assert all(d.status in ("active", "fallback") and d.decision.controller == controller for d in during)
    assert len({d.plan_id for d in during}) > 10, "its own decisions drive, not the approved window alone"
    assert all(d.status == "fixed" for d in after), "the fixed program once the mandate ended"
    assert renewals and all(20 + MANDATE_S - 120 <= t < 20 + MANDATE_S for t in renewals), "a renewal asked for near the end"


def test_a_renewal_approved_in_time_keeps_the_controller_driving() -> None:
    control = IntersectionControl(X, "leitstand", "advisory", approval_timeout_s=120.0)
    steps = hour(control, seed=5, approve_after_s=30.0)
    first_active = next(i for i, s in enumerate(steps) if s.drive.status != "fixed")
    assert first_active <= 32
    assert all(s.drive.status != "fixed" for s in steps[first_active:]), "renewed before each mandate ran out"
    approvals = [e for s in steps for e in s.audit if e.action == "plan_approved"]
    assert approvals, "approvals are audited"


def test_leaving_advisory_mode_ends_the_mandate() -> None:
    control = IntersectionControl(X, "leitstand", "advisory", approval_timeout_s=120.0)
    hour(control, seed=6, approve_after_s=5.0, end=60)
    assert control.on_observation(frame(T0 + 60, random.Random(1))).drive.status != "fixed"
    control.set_mode("off", "op", T0 + 61)
    control.set_mode("advisory", "op", T0 + 62)
    steps = hour(control, seed=6, start=63, end=200)
    assert all(s.drive.status == "fixed" for s in steps), "a new advisory period starts without a mandate"


@pytest.mark.parametrize("controller", ["maxpressure", "leitstand"])
def test_a_request_shows_what_the_controller_would_do_from_the_stage_the_street_shows(controller: str) -> None:
    """Also right after a mode change (the controller restarts): its first decision knows nothing
    of the street, so the request waits for the second, planned from the fixed program's stage."""
    control = IntersectionControl(X, controller, "automatic")
    rng = random.Random(8)
    for t in range(50):
        control.on_observation(frame(T0 + t, rng))
    control.set_mode("off", "op", T0 + 50)
    for t in range(50, 77):
        control.on_observation(frame(T0 + t, rng))
    control.set_mode("advisory", "op", T0 + 77)
    for t in range(77, 90):
        street = _street(control, T0 + t)
        step = control.on_observation(frame(T0 + t, rng))
        if step.proposals:
            (request,) = step.proposals
            assert street is not None and _from_street(request.decision, street, T0 + t), (t, street, request.decision.plan)
            assert "planned from stage" in request.decision.explanation.expected_effect
            return
    raise AssertionError("no request within 13 s of entering advisory mode")


def test_a_cyclic_controller_still_has_each_plan_approved() -> None:
    control = IntersectionControl(X, "webster", "advisory", approval_timeout_s=1e9, recompute_every_cycles=1)
    proposals = [p for s in hour(control) for p in s.proposals]
    assert proposals and all("approve to let" not in p.decision.explanation.expected_effect for p in proposals)


def test_advisory_mode_set_again_takes_a_running_mandate_back() -> None:
    """The operator's way to end a mandate early without leaving advisory mode; audited."""
    control = IntersectionControl(X, "maxpressure", "advisory", approval_timeout_s=120.0)
    hour(control, seed=7, approve_after_s=5.0, end=60)
    [entry] = control.set_mode("advisory", "op", T0 + 60, reason="watching a procession")
    assert entry.action == "mode_changed" and entry.detail["mandate_ended"] is True
    steps = hour(control, seed=7, start=61, end=200)
    assert all(s.drive.status == "fixed" for s in steps)
