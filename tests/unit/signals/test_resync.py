"""A controller told what the street shows (``resync``) while the field controller ignores its
plans: it plans on from that stage, every plan it then makes passes the safety validator, and
the control desk does this only while the signal is found not following."""

from __future__ import annotations

import dataclasses
import json
import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from signals.adapter import StageAdapter
from signals.control import IntersectionControl
from signals.controllers import DetectorObservation, FixedTimeController, LaneMeasurement
from signals.controllers.base import FollowsTheStreet
from signals.controllers.leitstand import LeitstandController
from signals.controllers.maxpressure import MaxPressureController
from signals.desk import ControlDesk, DeskConfig, DeskState, Note, PlanOut
from signals.explain import StageDecision
from signals.following import GRACE_S, FollowEvent
from signals.loader import load_intersection
from signals.validator import SafetyValidator
from tests.paths import EXAMPLE_INTERSECTION as EXAMPLE
from tests.unit.signals.test_desk import at

X = load_intersection(str(EXAMPLE))
STAGES = [s.id for s in X.stages]
DETECTORS = sorted({la.measured_by for la in X.lanes})
T0 = 1_800_000_000.0


def frame(t: float, rng: random.Random) -> DetectorObservation:
    lanes = {
        d: LaneMeasurement(count=float(rng.randint(0, 1)), queue_veh=float(rng.randint(0, 8)), vehicles=float(rng.randint(0, 10)))
        for d in DETECTORS
    }
    return DetectorObservation(X.id, t, 1.0, lanes)


@settings(max_examples=40, deadline=None)
@given(
    controller=st.sampled_from([MaxPressureController, LeitstandController]),
    seed=st.integers(0, 10_000),
    warmup=st.integers(1, 200),
    stage=st.sampled_from(STAGES),
    shown_for=st.floats(0.0, 600.0),
    after=st.integers(1, 120),
    waited=st.dictionaries(st.sampled_from(sorted(X.groups)), st.floats(0.0, 600.0)),
)
def test_after_a_resync_every_plan_starts_from_the_street_and_passes_the_validator(
    controller: Any, seed: int, warmup: int, stage: str, shown_for: float, after: int, waited: dict[str, float]
) -> None:
    """Whatever the controller believed, however long the street has shown the stage (longer
    than its maximum green included) and however long it left the other groups waiting (longer
    than their maximum waits included), the next plan is laid out from that stage's green and no
    plan after it is one the safety gate would reject."""
    ctl, rng, validator = controller(X), random.Random(seed), SafetyValidator(X)
    for t in range(warmup):
        ctl.decide(frame(T0 + t, rng))
    now = T0 + warmup
    assert ctl.resync(stage, now - shown_for, now, {g: now - w for g, w in waited.items()})
    first = ctl.decide(frame(now, rng))
    assert first.plan.phases[0].stage == stage
    kept = min(shown_for, X.stage(stage).max_green_s)
    assert first.origin_s == pytest.approx(now - kept)
    assert f"planned from stage {stage}" in first.explanation.expected_effect
    for t in range(after):
        decision = first if t == 0 else ctl.decide(frame(now + t, rng))
        assert validator.check(decision.plan).ok, (t, validator.check(decision.plan).violations)
        if t:
            assert "planned from stage" not in decision.explanation.expected_effect or decision.time_s == first.time_s


def test_a_cyclic_controller_and_the_mode_off_are_not_resynchronised() -> None:
    fixed = IntersectionControl(X, "fixed")
    off = IntersectionControl(X, "leitstand", mode="off")
    rng = random.Random(1)
    for control in (fixed, off):
        control.on_observation(frame(T0, rng))
        assert not control.resync(STAGES[-1], T0 - 30, T0 + 1)
    assert not isinstance(FixedTimeController(X), FollowsTheStreet) and isinstance(LeitstandController(X), FollowsTheStreet)


def test_an_unknown_stage_or_a_controller_not_started_is_refused() -> None:
    ctl = LeitstandController(X)
    assert not ctl.resync(STAGES[0], T0, T0 + 1)  # nothing decided yet: no window to restart
    ctl.decide(frame(T0, random.Random(2)))
    assert not ctl.resync("no-such-stage", T0, T0 + 1)
    assert not ctl.resync(STAGES[0], float("nan"), T0 + 1)


@dataclass
class Cabinet:
    """A field controller: follows the driven plan through the stage adapter, except from
    ``local_from`` to ``local_until``, when it runs its own fixed program shifted by half a cycle
    (a cabinet switched to local operation); reports the stage it shows every second."""

    local_from: float
    local_until: float
    adapter: StageAdapter = field(default_factory=lambda: StageAdapter(X))

    def __post_init__(self) -> None:
        local = FixedTimeController(X).decide(frame(T0, random.Random(0)))
        cycle = sum(p.green_s for p in local.plan.phases)
        self.local = StageDecision(local.intersection_id, T0, local.plan, local.explanation, origin_s=T0 + cycle / 2)

    def show(self, drive: StageDecision, t: float) -> DeskState:
        self.adapter.step(self.local if self.local_from <= t < self.local_until else drive, t)
        assert self.adapter.stage is not None
        return DeskState(X.id, self.adapter.stage, self.adapter.green_start_s, t)


@dataclass
class DeskRun:
    """What a desk driven against a ``Cabinet`` produced: the desk, its follow events and log
    notes, and (time, drive, the report before it) at every frame while the alarm was raised."""

    desk: ControlDesk
    events: list[FollowEvent] = field(default_factory=list)
    notes: list[Note] = field(default_factory=list)
    raised: list[tuple[float, StageDecision, DeskState]] = field(default_factory=list)


def drive_desk(seed: int, controller: str, frames: int, cabinet: Cabinet, skew_s: Callable[[int], float], exact: bool) -> DeskRun:
    """``controller`` in automatic mode, 1 s frames with random queues, ``cabinet`` as the field
    controller reporting every second on a clock ``skew_s(i)`` ahead of the detectors' at frame
    ``i`` (``exact``: it says its change times are its own)."""
    run = DeskRun(ControlDesk(lambda _: None))
    run.desk.on_config(DeskConfig(X.id, json.loads(EXAMPLE.read_text()), at(T0), controller=controller, mode="automatic"))
    rng, report = random.Random(seed), None
    for i in range(frames):
        t = T0 + i
        box = run.desk.on_observation(frame(t, rng))
        assert box is not None
        run.events += box.following
        run.notes += box.notes
        drive = [p for p in box.plans if isinstance(p, PlanOut)][-1].record.decision
        if report is not None and run.desk.live[X.id].follow.raised:
            run.raised.append((t, drive, report))
        shown = cabinet.show(drive, t)
        report = DeskState(shown.intersection_id, shown.stage, shown.started_s + skew_s(i), shown.at_s + skew_s(i), exact)
        state = run.desk.on_state(report)
        run.events += state.following
        run.notes += state.notes
    return run


def run_local_operation(
    seed: int = 5, controller: str = "leitstand", frames: int = 900, skew_s: float = 0.0, exact: bool = False
) -> tuple[list[FollowEvent], list[tuple[float, StageDecision, DeskState]], int]:
    """``controller`` in automatic mode, 1 s frames, the cabinet in local operation from 100 s to
    400 s, its clock ``skew_s`` ahead of the detectors' (``exact``: it says its change times are
    its own). Returns the follow events, (time, drive, the report before it) while the alarm was
    raised, and the gate's rejections."""
    run = drive_desk(seed, controller, frames, Cabinet(T0 + 100, T0 + 400), lambda _i: skew_s, exact)
    return run.events, run.raised, run.desk.live[X.id].control.rejections


def test_a_cabinet_in_local_operation_has_the_plan_follow_the_street_and_clears_after() -> None:
    events, raised, rejections = run_local_operation()
    assert [e.raised for e in events] == [True, False]
    up, down = events
    assert T0 + 100 < up.since_s < up.time_s < T0 + 400
    assert rejections == 0
    # every plan made from the street's report starts from the stage it showed, green since it
    # began there (as long as that is within the stage's maximum green)
    told = [(d, r) for t, d, r in raised if "planned from stage" in d.explanation.expected_effect and d.time_s == t]
    assert len(told) >= 5
    for decision, report in told:
        if report.at_s - report.started_s <= X.stage(report.stage).max_green_s:
            assert decision.plan.phases[0].stage == report.stage and decision.origin_s == pytest.approx(report.started_s)
    # the alarm clears on the cabinet's own changes in step with the plan after it resumed, soon
    assert down.since_s >= T0 + 400 and down.time_s < T0 + 400 + 90


@pytest.mark.parametrize("controller", ["leitstand", "maxpressure", "fixed", "webster"])
@pytest.mark.parametrize(("seed", "skew_s"), [(11, 0.0), (12, 2.0), (13, -2.0)])
def test_local_operation_raises_once_and_clears_only_after_the_cabinet_follows_again(controller: str, seed: int, skew_s: float) -> None:
    """Every controller, a cabinet whose clock is up to 2 s off: one raise while it runs its own
    program, no clear before it takes the plans back (a chance change in step with the plan's is
    not enough: the acyclic controllers told what the street shows make that common), and the
    clear within a few cycles of it following again. Before stop 48 the clear needed one change
    within 15 s of the plan's and 20 s of agreement broken by every transition: on seeds 1-20
    of this scenario 3-5 local operations were cleared while they lasted, and 5-8 of 20 were
    still raised 800 s after the cabinet followed again."""
    events, _raised, rejections = run_local_operation(seed, controller, frames=800, skew_s=skew_s)
    assert [e.raised for e in events] == [True, False], events
    up, down = events
    assert T0 + 100 < up.time_s < T0 + 400 < down.time_s < T0 + 400 + 240
    assert rejections == 0


@pytest.mark.parametrize("controller", ["leitstand", "maxpressure", "fixed", "webster"])
@pytest.mark.parametrize("skew_s", [-8.0, 8.0])
def test_a_cabinet_clock_8_s_off_clears_after_local_operation_once_it_says_its_change_times(controller: str, skew_s: float) -> None:
    """A cabinet clock 5 s or more off used to leave the alarm of a local operation raised for
    good (none of its changes was ever within ``STEP_S`` of the plan's; every controller, stop 53:
    20 of 20 runs at +-8 s). Reporting its own change times, the desk learns the offset and the
    alarm raised during local operation clears within a few cycles of the cabinet following
    again; events before local operation, if any, are a start-up alarm raised before the offset
    was learned, and cleared."""
    events, _raised, rejections = run_local_operation(16, controller, frames=800, skew_s=skew_s, exact=True)
    later = [e for e in events if e.time_s > T0 + 100]
    assert [e.raised for e in later] == [True, False], events
    up, down = later
    assert T0 + 100 < up.time_s < T0 + 400 < down.time_s < T0 + 400 + 240
    assert [e.raised for e in events if e.time_s <= T0 + 100] in ([], [True, False]) and rejections == 0
    assert down.clock_offset_s == pytest.approx(skew_s, abs=0.5) and "its clock is read as 8 s" in down.summary()


def _following_cabinet(seed: int, frames: int, skew_s: Callable[[int], float]) -> tuple[ControlDesk, list[FollowEvent], list[Note]]:
    """leitstand, a cabinet that follows every plan and reports its own change times each second
    on a clock ``skew_s(i)`` ahead at frame ``i``."""
    run = drive_desk(seed, "leitstand", frames, Cabinet(math.inf, math.inf), skew_s, exact=True)
    return run.desk, run.events, run.notes


def test_the_desk_logs_a_cabinet_clock_it_learned_so_a_technician_can_set_it() -> None:
    """A following cabinet 8 s ahead, reporting its own change times: no alarm, and the worker's
    log gets one warning with the offset when it is learned (not one per report)."""
    _desk, events, notes = _following_cabinet(3, 400, lambda _i: 8.0)
    clock = [n for n in notes if "cabinet clock" in n.event]
    assert events == [] and len(clock) == 1
    assert clock[0].level == "warning" and clock[0].fields == {"intersection_id": X.id, "clock_offset_s": 8.0}


def test_a_learned_cabinet_clock_survives_a_restart_and_a_new_model() -> None:
    """The offset is saved with the intersection once learned (None before) and taken over by a
    restarted desk and by a new configuration of the same cabinet, so a cabinet stuck right after
    a restart is raised after the grace, not after the wait for a clock it already knows; the
    table value round-trips, and one saved before stop 53 reads as not known."""
    from streams.signal_codec import saved_from_value, snapshot_value

    desk, events, _notes = _following_cabinet(3, 200, lambda _i: 8.0)
    snap = desk.snapshot(X.id)
    assert events == [] and snap is not None and snap.clock_offset_s == 8.0
    value = json.loads(json.dumps(snapshot_value(snap)))
    saved = saved_from_value(value)
    assert saved is not None and saved.clock_offset_s == 8.0
    old = saved_from_value({k: v for k, v in value.items() if k != "clock_offset_s"})
    assert old is not None and old.clock_offset_s is None

    reborn = ControlDesk(lambda _: saved)
    rng, raised = random.Random(9), []
    for i in range(200, 260):
        box = reborn.on_observation(frame(T0 + i, rng))
        assert box is not None
        raised += [e for e in box.following + reborn.on_state(DeskState(X.id, "flashing", T0 + 200 + 8, T0 + i + 8, exact=True)).following]
    assert reborn.live[X.id].follow.known_clock() == 8.0
    assert [e.raised for e in raised] == [True] and raised[0].time_s - (T0 + 200) <= GRACE_S + 2

    renewed = dataclasses.replace(saved.config, session="next", event_time=saved.config.event_time + timedelta(seconds=1))
    reborn.on_config(renewed)
    assert reborn.live[X.id].follow.known_clock() == 8.0


@pytest.mark.parametrize("seed", [2, 3])
def test_a_cabinet_clock_reset_8_s_ahead_is_relearned_and_any_alarm_clears(seed: int) -> None:
    """The cabinet's clock steps from right to 8 s ahead at 300 s (a reset; setting a skewed
    clock right is the same step the other way). Its reports are misread until two changes show
    the new offset, which may raise the alarm; it is relearned and the alarm clears. Without the
    two-change rule (the three-quarter rule alone) these two seeds were still raised at 900 s:
    while the controller plans from the misread street its changes scatter against the plan."""
    desk, events, _notes = _following_cabinet(seed, 900, lambda i: 0.0 if i < 300 else 8.0)
    follow = desk.live[X.id].follow
    assert follow.clock_offset_s == 8.0 and not follow.raised
    assert [e.raised for e in events] in ([], [True, False]) and all(e.time_s > T0 + 300 for e in events)


@pytest.mark.parametrize("controller", [MaxPressureController, LeitstandController])
def test_a_group_the_street_left_waiting_is_served_by_its_maximum_wait(controller: Any) -> None:
    """Queues only on the stage shown, a group of another stage whose last green the street ended
    its maximum wait minus 10 s ago: told so, the controller ends the shown stage in time for it;
    told nothing (its wait would restart at the window), it holds the busy stage."""
    shown = X.fixed_plan.phases[0].stage
    served = X.stage(shown).groups
    group = next(g for g in sorted(X.groups) if g not in served)
    busy = {la.measured_by for la in X.lanes if la.group in served}

    def busy_frame(t: float) -> DetectorObservation:
        lanes = {d: LaneMeasurement(count=1.0, queue_veh=8.0 if d in busy else 0.0, vehicles=8.0 if d in busy else 0.0) for d in DETECTORS}
        return DetectorObservation(X.id, t, 1.0, lanes)

    def asked_for_group_at(last_green: dict[str, float] | None) -> float:
        ctl = controller(X)
        for t in range(30):
            ctl.decide(busy_frame(T0 + t))
        now = T0 + 30
        assert ctl.resync(shown, now - 5, now, last_green)
        for t in range(0, 200):
            decision = ctl.decide(busy_frame(now + t))
            adapter = StageAdapter(X)
            if group in X.stage(adapter.target_stage(decision, now + t)).groups:
                return now + t
        return math.inf

    deadline = T0 + 30 - (X.group_max_wait_s(group) - 10)
    told = asked_for_group_at({group: deadline})
    assert told <= deadline + X.group_max_wait_s(group)
    assert asked_for_group_at(None) > told + 10
