"""Degraded detector inputs (signals/input_quality.py) and the desk marking the explanations of
decisions made on them (signals/desk.py)."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given
from hypothesis import strategies as st

from detection.data_quality import QualityLimits
from signals.controllers import DetectorObservation, LaneMeasurement
from signals.desk import DeskCommand, PlanOut
from signals.input_quality import InputQuality
from streams.signal_codec import decision_from_message, plan_message
from tests.unit.signals.test_desk import COUNTS, T0, at, config, fresh, obs


def frame(i: int, interval_s: float = 60.0, **lanes: LaneMeasurement) -> DetectorObservation:
    base = {k: LaneMeasurement(count=float(v + i % 3), occupancy=0.1 + 0.01 * (i % 5), queue_veh=float(i % 4)) for k, v in COUNTS.items()}
    return DetectorObservation("K101", T0 + interval_s * i, interval_s, {**base, **lanes})


def test_clean_frames_are_not_degraded() -> None:
    q = InputQuality()
    assert all(q.observe(frame(i)) == () for i in range(100))


def test_out_of_range_and_missing_are_named_per_detector() -> None:
    q = InputQuality()
    q.observe(frame(0))
    bad = frame(1, speed=LaneMeasurement(occupancy=1.7))  # a detector with occupancy above 1
    lanes = {k: v for k, v in bad.lanes.items() if k != "E_in"}
    degraded = dict(q.observe(replace(bad, lanes=lanes)))
    assert degraded == {"E_in": ("missing",), "speed": ("out_of_range",)}


def test_a_detector_never_seen_is_not_missing() -> None:
    q = InputQuality()
    q.observe(frame(0))
    assert q.observe(frame(1, N_out=LaneMeasurement(count=1.0))) == ()
    assert q.observe(frame(2)) == (("N_out", ("missing",)),)


def test_stuck_takes_the_same_duration_whatever_the_frame_interval() -> None:
    for interval in (60.0, 5.0):
        q = InputQuality(QualityLimits(stuck_after=30))
        frozen = LaneMeasurement(count=2.0, occupancy=0.4, queue_veh=3.0)
        per_half_hour = int(30 * 60 / interval)
        found = [q.observe(frame(i, interval, E_in=frozen)) for i in range(per_half_hour + 1)]
        assert all(f == () for f in found[: per_half_hour - 1])  # a red of 5 s frames is not "stuck"
        assert ("E_in", ("stuck",)) in found[-1]


@given(st.lists(st.floats(min_value=0, max_value=0.9), min_size=1, max_size=50))
def test_plausible_values_that_keep_changing_are_never_degraded(occupancies: list[float]) -> None:
    q = InputQuality()
    for i, occ in enumerate(occupancies):
        lanes = {"d": LaneMeasurement(count=float(i % 7), occupancy=occ + i * 1e-3)}
        assert q.observe(DetectorObservation("K", T0 + 60 * i, 60.0, lanes)) == ()


def test_the_desk_marks_decisions_made_on_degraded_frames_only() -> None:
    desk = fresh()
    desk.on_config(config(mode="automatic", controller="maxpressure", params={}))
    clean = [desk.on_observation(obs(i)) for i in range(3)]
    assert all(
        "degraded_inputs" not in p.record.decision.explanation.to_dict()
        for box in clean
        if box
        for p in box.plans
        if isinstance(p, PlanOut)
    )
    broken = obs(3)
    broken = replace(broken, lanes={**broken.lanes, "E_in": LaneMeasurement(count=1.0, occupancy=3.0)})
    box = desk.on_observation(broken)
    assert box is not None
    drive = box.plans[-1]
    assert isinstance(drive, PlanOut) and drive.record.decision.explanation.controller == "maxpressure"
    explained = drive.record.decision.explanation.to_dict()
    assert explained["degraded_inputs"] == {"E_in": ["out_of_range"]}
    assert "[degraded inputs: E_in out_of_range]" in explained["summary"]
    # the mark survives the wire: the adapter rebuilds the same explanation from signals.plans
    assert decision_from_message(plan_message(drive.record, "run-1")).explanation == drive.record.decision.explanation


def test_the_fixed_program_is_never_marked() -> None:
    desk = fresh()
    desk.on_config(config(mode="automatic", controller="fixed", params={}))
    desk.on_observation(obs(0))
    broken = replace(obs(1), lanes={"E_in": LaneMeasurement(occupancy=3.0)})
    box = desk.on_observation(broken)
    assert box is not None
    assert all("degraded_inputs" not in p.record.decision.explanation.to_dict() for p in box.plans if isinstance(p, PlanOut))


def test_an_advisory_proposal_keeps_its_mark_when_approved() -> None:
    desk = fresh()
    desk.on_config(config())  # advisory webster
    proposals: list[PlanOut] = []
    for i in range(60):  # W_in reads an impossible occupancy until webster proposes a plan
        box = desk.on_observation(replace(obs(i), lanes={**obs(i).lanes, "W_in": LaneMeasurement(count=1.0, occupancy=2.0)}))
        assert box is not None
        proposals += [p for p in box.plans if isinstance(p, PlanOut) and p.record.status == "pending"]
        if proposals:
            break
    assert proposals and proposals[0].record.decision.explanation.degraded == (("W_in", ("out_of_range",)),)
    pid = proposals[0].record.plan_id
    approved = desk.on_command(DeskCommand("K101", "approve", "op", at(T0 + 1000), plan_id=pid))
    [record] = [p.record for p in approved.plans if isinstance(p, PlanOut) and p.record.status == "approved"]
    assert record.decision.explanation.degraded == (("W_in", ("out_of_range",)),)


def _reference(q_limits: QualityLimits, frames: list[DetectorObservation]) -> list[tuple[tuple[str, tuple[str, ...]], ...]]:
    """The watch as first written: every frame through ``frame_streams`` (a dict per lane), the
    detector read back from the stream id. The allocation-light ``observe`` must agree with it."""
    from detection.data_quality import DataQualityState, frame_streams

    watch = DataQualityState(InputQuality(q_limits)._scaled(frames[0].interval_s))
    seen: set[str] = set()
    out = []
    for f in frames:
        lanes = [
            {
                "detector_id": d,
                "count": m.count,
                "occupancy": m.occupancy,
                "speed_kmh": None if m.speed_mps is None else m.speed_mps * 3.6,
                "queue_veh": m.queue_veh,
            }
            for d, m in f.lanes.items()
        ]
        issues: dict[str, set[str]] = {}
        prefix = f"intersection/{f.intersection_id}/"
        for stream, value in frame_streams(f.intersection_id, f.interval_s, lanes).items():
            found = watch.observe(stream, f.time_s, f.time_s + f.interval_s, value)
            issues.setdefault(stream[len(prefix) :].rsplit("/", 1)[0], set()).update(
                i for i in found if i in ("missing", "out_of_range", "stuck")
            )
        for d in seen - set(f.lanes):
            issues.setdefault(d, set()).add("missing")
        seen |= set(f.lanes)
        out.append(tuple((d, tuple(sorted(i))) for d, i in sorted(issues.items()) if i))
    return out


_measure = st.builds(
    LaneMeasurement,
    count=st.sampled_from([0.0, 1.0, 3.0, 400.0]),
    occupancy=st.sampled_from([0.0, 0.2, 1.5]),
    speed_mps=st.sampled_from([None, 8.0, 60.0]),
    queue_veh=st.sampled_from([0.0, 2.0, 300.0]),
)


@given(st.lists(st.dictionaries(st.sampled_from(["N_in", "S_in", "E_in", "W/2"]), _measure, min_size=1), min_size=1, max_size=40))
def test_the_fast_watch_names_what_the_first_one_named(lanes_per_frame: list[dict[str, LaneMeasurement]]) -> None:
    """Repeated values (stuck after 3 one-second frames here), implausible ones, absent lanes:
    frame by frame the same degraded detectors with the same issues."""
    limits = QualityLimits(stuck_after=3, expected_interval_s=1.0)
    frames = [DetectorObservation("K1", T0 + i, 1.0, lanes) for i, lanes in enumerate(lanes_per_frame)]
    q = InputQuality(limits)
    assert [q.observe(f) for f in frames] == _reference(limits, frames)
