"""The follow watch: a field controller that follows the driven plan (modelled by the same stage
adapter the SUMO loop drives, with its minimum greens and transitions) never raises, whether it
reports every second or only when its stage changes; one that holds its own stage raises after
the grace, and clears once it follows again for as long."""

from __future__ import annotations

import dataclasses
import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from signals.adapter import StageAdapter
from signals.control import IntersectionControl
from signals.controllers.base import DetectorObservation, LaneMeasurement
from signals.explain import StageDecision
from signals.following import CLOCK_WAIT_S, GRACE_S, KIND, MAX_OFFSET_S, REPORT_VALID_S, STEP_S, FollowEvent, FollowWatch
from signals.loader import load_intersection

X = load_intersection("signals/examples/k101_four_arm.json")
APPROACHES = sorted({la.measured_by for la in X.lanes if la.group is not None})


def _obs(t: float, rng: random.Random) -> DetectorObservation:
    lanes = {
        d: LaneMeasurement(count=rng.randint(0, 1), queue_veh=float(rng.randint(0, 8)), vehicles=float(rng.randint(0, 10)))
        for d in APPROACHES
    }
    return DetectorObservation(X.id, t, 1.0, lanes)


def _drive(seconds: int, seed: int, controller: str = "leitstand") -> list[tuple[float, StageDecision, str]]:
    """(t, the decision driven from t on, the stage a following field controller shows at t)."""
    return [(t, decision, stage) for t, decision, stage, _started in _drive_timed(seconds, seed, controller)]


def _drive_timed(seconds: int, seed: int, controller: str = "leitstand") -> list[tuple[float, StageDecision, str, float]]:
    """As ``_drive``, with when the stage shown began (the adapter's own change time)."""
    control, adapter, rng = IntersectionControl(X, controller), StageAdapter(X), random.Random(seed)
    out = []
    for t in range(seconds):
        decision = control.on_observation(_obs(float(t), rng)).drive.decision
        adapter.step(decision, float(t))
        assert adapter.stage is not None
        out.append((float(t), decision, adapter.stage, adapter.green_start_s))
    return out


def _watch(run: list[tuple[float, StageDecision, str]], shown: list[str] | None = None, every: bool = True) -> list[FollowEvent]:
    """Feed decisions and reports as the desk does: each frame drives, then (every second, or only
    on a change of the shown stage) the controller's report arrives."""
    watch, events, last = FollowWatch(X), [], None
    for i, (t, decision, stage) in enumerate(run):
        stage = shown[i] if shown is not None else stage
        watch.drove(decision)
        events += watch.at(t)
        if every or stage != last:
            events += watch.report(stage, t)
        last = stage
    return events


@settings(max_examples=6, deadline=None)
@given(seed=st.integers(0, 10_000), controller=st.sampled_from(["leitstand", "maxpressure", "fixed", "webster"]), every=st.booleans())
def test_a_controller_that_follows_never_raises(seed: int, controller: str, every: bool) -> None:
    run = _drive(900, seed, controller)
    assert _watch(run, every=every) == []


def test_a_controller_holding_its_own_stage_raises_once_and_clears_after_following_again() -> None:
    run = _drive(900, 7, "fixed")  # the fixed program changes stage every cycle
    stuck = run[0][2]
    shown = [stuck if t < 400 else stage for t, _d, stage in run]
    events = _watch(run, shown)
    assert [e.raised for e in events] == [True, False]
    up, down = events
    assert up.kind == KIND and up.reported == stuck and up.driven != stuck
    assert up.time_s - up.since_s >= GRACE_S and up.time_s - up.since_s < GRACE_S + 2
    # the plan asked for another stage at least GRACE_S before the alarm, and never had by then
    assert 400 <= down.since_s and down.time_s - down.since_s >= GRACE_S
    trigger = up.trigger()
    assert trigger.severity == "major" and trigger.subject_type == "intersection" and stuck in trigger.message


def test_a_report_only_on_change_is_judged_at_every_frame() -> None:
    """A controller that reports once and then keeps its stage while the plan moves on: the
    frames, not new reports, raise the alarm."""
    run = _drive(300, 3, "fixed")
    watch = FollowWatch(X)
    events: list[FollowEvent] = []
    for t, decision, _stage in run:
        watch.drove(decision)
        if t == 0:
            events += watch.report(run[0][2], t)
        events += watch.at(t)
    assert [e.raised for e in events] == [True]


def test_a_stale_report_says_nothing_and_an_older_one_is_ignored() -> None:
    run = _drive(1200, 3, "fixed")
    watch = FollowWatch(X)
    watch.drove(run[0][1])
    assert watch.at(0.0) == []
    assert watch.report(run[0][2], 0.0) == []
    assert watch.report("nonsense", -5.0) == []  # older than the latest report: ignored
    events: list[FollowEvent] = []
    for t, decision, _stage in run:
        watch.drove(decision)
        if t > REPORT_VALID_S:
            events += watch.at(t)
    assert events == []  # the reporter fell silent before the plan and its stage parted for long


def test_carry_keeps_an_alarm_until_the_signal_is_seen_following() -> None:
    run = _drive(120, 5, "fixed")
    watch = FollowWatch(X)
    watch.carry(True)
    events: list[FollowEvent] = []
    for t, decision, stage in run:
        events += watch.at(t)
        watch.drove(decision)
        events += watch.report(stage, t)
    assert [e.raised for e in events] == [False] and not watch.raised


def test_nothing_is_judged_before_anything_was_driven() -> None:
    watch = FollowWatch(X)
    assert watch.at(10.0) == [] and watch.report("p1", 10.0) == []


def test_reports_that_overtake_the_frames_wait_for_them() -> None:
    """Reports and frames come on different topics: every report of a run may arrive before its
    frames (a backlog of frames after a restart). Each waits until a frame reaches its time, so
    the verdicts are those of frames and reports in step: nothing for a following controller, one
    alarm for a stuck one, an alarm and its clear for one stuck for 300 s."""
    run = _drive(900, 11, "fixed")
    following = [s for _t, _d, s in run]
    stuck = [run[0][2]] * len(run)
    cases: tuple[tuple[list[str], list[bool]], ...] = ((following, []), (stuck, [True]), (stuck[:300] + following[300:], [True, False]))
    for ahead in (50, len(run)):
        for shown, expected in cases:
            watch = FollowWatch(X)
            events: list[FollowEvent] = []
            for k in range(0, len(run), ahead):
                for t, _d, _s in run[k : k + ahead]:
                    events += watch.report(shown[int(t)], t)
                for t, decision, _s in run[k : k + ahead]:
                    events += watch.at(t)
                    watch.drove(decision)
            assert [e.raised for e in events] == expected, (ahead, expected)


@settings(max_examples=200, deadline=None)
@given(
    steps=st.lists(
        st.tuples(
            st.sampled_from(["at", "report", "drove", "carry"]),
            st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-100, 2000).map(float)),
            st.one_of(st.sampled_from(["A", "B", "C"]), st.text(max_size=4)),
            st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True)),
            st.booleans(),
        ),
        max_size=80,
    )
)
def test_any_sequence_of_frames_reports_and_plans_never_raises_and_alternates(steps: list) -> None:
    """Whatever arrives, in whatever order and with whatever times (NaN, infinite, backwards,
    stages the model does not have): nothing raises, the events alternate raise, clear, ..., and
    what ``street`` tells a controller to plan from (stop 48) is finite and never breaks it, and
    the clock offset learned from "exact" reports stays finite and within its bound."""
    watch, events = FollowWatch(X), []
    plans = _drive(60, 1, "fixed")
    control = IntersectionControl(X, "leitstand")
    control.on_observation(_obs(0.0, random.Random(0)))
    for kind, t, stage, started, exact in steps:
        if kind == "at":
            events += watch.at(t)
            street = watch.street(t)
            if street is not None and math.isfinite(t):
                assert math.isfinite(street.since_s) and all(math.isfinite(v) for v in street.last_green.values())
                control.resync(street.stage, street.since_s, t, street.last_green)
        elif kind == "carry":
            was = watch.raised
            watch.carry(True)
            events += [] if was else [FollowEvent(X.id, True, 0.0, "", "", 0.0)]  # taken over: counts as a raise
        elif kind == "report":
            events += watch.report(stage, t, started, exact)
            assert abs(watch.clock_offset_s) <= MAX_OFFSET_S
        elif math.isfinite(t):
            decision = plans[int(abs(t)) % len(plans)][1]
            watch.drove(dataclasses.replace(decision, time_s=t))
    flags = [e.raised for e in events]
    assert flags == [i % 2 == 0 for i in range(len(flags))]
    assert watch.raised == (len(flags) % 2 == 1)


def test_the_stage_asked_for_is_the_one_a_field_adapter_reads_from_the_plan() -> None:
    """The watch lays plans out with the changes between neighbouring stages only (cheap, it runs
    at every frame and report); on the example junction that gives the adapter's stage for every
    controller's plans, now and up to 40 s ahead."""
    adapter = StageAdapter(X)
    for controller in ("leitstand", "maxpressure", "fixed", "webster"):
        for t, decision, _stage in _drive(300, 2, controller):
            watch = FollowWatch(X)
            watch.drove(decision)
            for ahead in (0.0, 3.0, 7.0, 15.0, 40.0):
                assert watch._wanted(t + ahead) == adapter.target_stage(decision, t + ahead)  # noqa: SLF001


def test_a_signal_found_not_following_tells_what_it_shows_and_when_each_group_was_last_green() -> None:
    """``street`` while raised: the stage reported, since when, and each other group's last green
    end from the reported stages (the next stage's start less the change between them)."""
    run = _drive(200, 4, "fixed")
    watch = FollowWatch(X)
    for t, decision, _stage in run[:150]:
        watch.drove(decision)
        watch.at(t)
    # a time in the middle of one of the plan's greens (not in a change, when the old stage is expected)
    t = max(float(u) for u in range(141, 150) if watch._green_start(u)[1] + STEP_S < u)  # type: ignore[index]  # noqa: SLF001
    wanted = watch._wanted(t)  # noqa: SLF001 - the stage the plan asks for then
    assert wanted is not None
    first, second = (s.id for s in X.stages if s.id != wanted)  # the cabinet shows neither
    assert watch.street(t) is None  # nothing reported, nothing raised
    watch.report(wanted, 100.0, 100.0)
    watch.report(first, 120.0, 118.0)
    watch.report(second, 140.0, 139.0)
    assert watch.street(t) is None  # not raised yet
    watch.carry(True)
    street = watch.street(t)
    assert street is not None and (street.stage, street.since_s) == (second, 139.0)
    expected = {g: 118.0 - X.transition_s(wanted, first) for g in X.stage(wanted).groups}
    expected |= {g: 139.0 - X.transition_s(first, second) for g in X.stage(first).groups}
    for g in X.stage(second).groups:
        expected.pop(g, None)
    assert street.last_green == expected
    watch.report(wanted, t, t)
    assert watch.street(t) is None  # shows what the plan asks


def _watch_skewed(run: list[tuple[float, StageDecision, str, float]], skew_s: float, exact: bool) -> tuple[FollowWatch, list[FollowEvent]]:
    """A following cabinet whose clock runs ``skew_s`` ahead of the detectors': its reports, every
    second, stamp both the report and the change on its own clock."""
    watch, events = FollowWatch(X), []
    for t, decision, stage, started in run:
        watch.drove(decision)
        events += watch.at(t)
        events += watch.report(stage, t + skew_s, started + skew_s, exact)
    return watch, events


@pytest.mark.parametrize("controller", ["leitstand", "maxpressure"])
@pytest.mark.parametrize("skew_s", [-8.0, 5.0, 8.0])
def test_a_cabinet_clock_that_is_off_is_learned_from_its_own_change_times(controller: str, skew_s: float) -> None:
    """A cabinet whose clock is 5-8 s off, following an acyclic plan with 5 s greens: before stop
    53 it raised ``signal_not_following`` in every such run 5 s or more ahead (its reports were
    judged against the plan 5 s later). Reporting its own change times, the watch learns the
    offset within a few changes and judges on the detectors' clock: after the first two minutes
    nothing is raised (a start-up alarm before the offset is learned is possible at 8 s, and
    cleared), and the alarm text tells the offset."""
    watch, events = _watch_skewed(_drive_timed(600, 2, controller), skew_s, exact=True)
    assert watch.clock_offset_s == pytest.approx(skew_s, abs=0.5)
    assert not watch.raised and [e for e in events if e.time_s > 120] == []
    said = FollowEvent(X.id, True, 50.0, "A", "B", 20.0, clock_offset_s=watch.clock_offset_s).summary()
    assert f"its clock is read as {abs(skew_s):.0f} s {'ahead of' if skew_s > 0 else 'behind'} the detectors'" in said


def test_a_pollers_first_sighting_teaches_no_offset() -> None:
    """Reports that do not say their change time is the cabinet's own (a poller stamping when it
    first saw a stage lags every change, which would look like a clock ahead) teach nothing: the
    watch judges them as they are, and a cabinet 8 s ahead is then found not following."""
    watch, events = _watch_skewed(_drive_timed(600, 2, "leitstand"), 8.0, exact=False)
    assert watch.clock_offset_s == 0.0 and [e.raised for e in events][:1] == [True]


def _own_program(seconds: int, shift_s: float) -> list[tuple[str, float]]:
    """A cabinet in local operation: the intersection's fixed program, shifted by ``shift_s``,
    through the stage adapter (stage shown each second and since when)."""
    program = IntersectionControl(X, "fixed").on_observation(_obs(0.0, random.Random(0))).drive.decision
    program = dataclasses.replace(program, origin_s=shift_s)
    adapter, out = StageAdapter(X), []
    for t in range(seconds):
        adapter.step(program, float(t))
        assert adapter.stage is not None
        out.append((adapter.stage, adapter.green_start_s))
    return out


@pytest.mark.parametrize("seed", [4, 5])
def test_a_cabinet_running_its_own_program_teaches_no_offset(seed: int) -> None:
    """Changes that do not follow the plan land near its green starts by chance only: a cabinet
    running its own program (the fixed one, shifted by a third of its cycle) against leitstand's
    plans, reporting its own change times, moves no offset and is found not following."""
    run = _drive_timed(900, seed, "leitstand")
    own = _own_program(900, sum(p.green_s for p in X.fixed_plan.phases) / 3)
    watch, events = FollowWatch(X), []
    for (t, decision, _stage, _started), (stage, started) in zip(run, own, strict=True):
        watch.drove(decision)
        events += watch.at(t)
        events += watch.report(stage, t, started, exact=True)
    assert watch.clock_offset_s == 0.0 and [e.raised for e in events][:1] == [True]


def test_a_cabinet_flashing_from_the_start_is_still_found_when_it_times_its_changes() -> None:
    """The first alarm of a cabinet that times its changes itself waits ``CLOCK_WAIT_S`` for its
    clock to be learned (a following cabinet 8 s ahead looks like a lagging one until then); one
    that never changes (here: flashing, a stage no plan asks for, from the first report on)
    teaches nothing and is raised when the wait is over, as the only event."""
    run = _drive_timed(300, 3, "leitstand")
    watch, events = FollowWatch(X), []
    for t, decision, _stage, _started in run:
        watch.drove(decision)
        events += watch.at(t)
        events += watch.report("flashing", t, 0.0, exact=True)
    assert [e.raised for e in events] == [True]
    up = events[0]
    assert up.since_s == 0.0 and up.time_s == CLOCK_WAIT_S and watch.clock_offset_s == 0.0


def test_reports_a_moved_offset_puts_after_the_frames_wait_for_them() -> None:
    """A backlog of reports judged in one batch when the frames catch up, while the offset moves
    (an offset of 8 s carried over, the clock now right: the step rule moves it to 0 in the
    batch): the reports the new offset puts after the newest frame wait for their frames instead
    of being judged against a plan not decided yet."""
    run = _drive_timed(600, 2, "leitstand")
    watch = FollowWatch(X)
    watch.carry_clock(8.0)
    moved_at = None
    for i, (t, decision, stage, started) in enumerate(run):
        watch.drove(decision)
        watch.report(stage, t, started, exact=True)
        if i % 30 == 29:  # the frames come in batches of 30 s, 10 s behind the reports
            watch.at(t - 10)
            looked = watch._last_look_s  # noqa: SLF001 - the latest time judged, on the detectors' clock
            assert looked <= t - 10, (t, looked, watch.clock_offset_s)
            moved_at = t if moved_at is None and watch.clock_offset_s == 0.0 else moved_at
    assert moved_at is not None and watch.clock_offset_s == 0.0
