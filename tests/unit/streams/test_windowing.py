"""Window aggregation equals a direct computation, survives JSON state round trips, is idempotent."""

from __future__ import annotations

import random
from datetime import datetime, timezone

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from streams import windowing
from streams.records import DetectorReading, IntersectionFrame
from tests.oracle import detector_windows

T0 = 1_790_000_040.0  # a minute boundary


def make_frames(n: int, seed: int, interval_s: float = 15.0, iid: str = "K1") -> list[IntersectionFrame]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        dets = [
            DetectorReading(
                detector_id=f"D{j}",
                count=rng.randint(0, 20),
                occupancy=round(rng.random(), 3),
                speed_kmh=None if rng.random() < 0.2 else round(rng.uniform(5, 60), 1),
                queue_veh=None if rng.random() < 0.3 else round(rng.uniform(0, 25), 1),
            )
            for j in range(rng.randint(1, 3))
        ]
        out.append(
            IntersectionFrame(
                schema_version=1,
                event_time=datetime.fromtimestamp(T0 + i * interval_s, tz=timezone.utc),
                intersection_id=iid,
                interval_s=interval_s,
                detectors=dets,
            )
        )
    return out


def direct(frames: list[IntersectionFrame], window_s: int) -> dict[str, tuple]:
    return detector_windows(frames, window_s, with_queue=True)


def as_dict(aggs) -> dict[str, tuple]:
    return {a.aggregate_id: (a.count_sum, a.occupancy_mean, a.frames, a.speed_kmh_mean, a.queue_veh_mean) for a in aggs}


@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 60), seed=st.integers(0, 10_000), batch=st.integers(1, 17))
def test_closed_windows_equal_direct_computation_across_json_round_trips(n: int, seed: int, batch: int) -> None:
    frames = make_frames(n, seed)
    state = None
    emitted = []
    for i in range(0, n, batch):
        state, closed, late = windowing.fold(state, frames[i : i + batch], window_s=60, lateness_s=0, wall_now=0.0)
        assert late == 0
        emitted += closed
        state = orjson.loads(orjson.dumps(state))  # what the Faust table's changelog does
    assert state is not None  # n >= 1: at least one batch was folded
    state, idle = windowing.close_idle(state, window_s=60, idle_s=1, wall_now=10.0)
    emitted += idle
    assert as_dict(emitted) == direct(frames, 60)
    assert len({a.aggregate_id for a in emitted}) == len(emitted)
    assert state["windows"] == {}


def test_window_closes_only_when_watermark_passes_end_plus_lateness() -> None:
    frames = make_frames(8, 1)  # 2 minutes of 15 s frames
    state, closed, _ = windowing.fold(None, frames[:4], window_s=60, lateness_s=0, wall_now=0)
    assert closed and {a.window_start.timestamp() for a in closed} == {T0}  # end of frame 4 = T0+60
    state, closed, _ = windowing.fold(None, frames[:4], window_s=60, lateness_s=10, wall_now=0)
    assert closed == []  # waits 10 s of event time for stragglers
    state, closed, _ = windowing.fold(state, frames[4:5], window_s=60, lateness_s=10, wall_now=0)
    assert {a.window_start.timestamp() for a in closed} == {T0}


def test_redelivered_frames_are_not_counted_twice() -> None:
    frames = make_frames(6, 2)
    once, _, _ = windowing.fold(None, frames[:3], window_s=60, lateness_s=30, wall_now=0)
    twice = orjson.loads(orjson.dumps(once))
    twice, _, _ = windowing.fold(twice, frames[:3], window_s=60, lateness_s=30, wall_now=0)
    assert twice["windows"] == orjson.loads(orjson.dumps(once))["windows"]


def test_frames_for_closed_windows_are_late_and_dropped() -> None:
    frames = make_frames(12, 3)
    state, closed, _ = windowing.fold(None, frames, window_s=60, lateness_s=0, wall_now=0)
    before = as_dict(closed)
    state, closed_again, late = windowing.fold(state, frames[:2], window_s=60, lateness_s=0, wall_now=0)
    assert late == 2 and closed_again == []
    assert before == direct(frames, 60)  # all three windows closed, and stay as they were


def test_idle_close_waits_for_silence() -> None:
    state, _, _ = windowing.fold(None, make_frames(2, 4), window_s=60, lateness_s=0, wall_now=100.0)
    assert windowing.close_idle(state, window_s=60, idle_s=30, wall_now=120.0) == (state, [])
    after, closed = windowing.close_idle(state, window_s=60, idle_s=30, wall_now=131.0)
    assert closed and after["windows"] == {}
    assert state["windows"], "the input state must not be mutated"


def test_fold_never_mutates_its_input() -> None:
    frames = make_frames(10, 5)
    state, _, _ = windowing.fold(None, frames[:3], window_s=60, lateness_s=0, wall_now=0)
    snapshot = orjson.dumps(state)
    windowing.fold(state, frames[3:], window_s=60, lateness_s=0, wall_now=1)
    assert orjson.dumps(state) == snapshot


def test_store_partition_matches_the_producer_partitioner() -> None:
    from aiokafka.partitioner import DefaultPartitioner

    from streams.stores import key_partition

    for i in range(200):
        key = f"INT-{i:04d}".encode()
        assert key_partition(key, 4) == DefaultPartitioner()(key, [0, 1, 2, 3], [0, 1, 2, 3])


def test_queue_mean_is_none_when_no_reading_of_the_window_had_a_queue() -> None:
    t = datetime.fromtimestamp(T0, tz=timezone.utc)
    dets = [
        DetectorReading(detector_id="Q", count=1, occupancy=0.1, queue_veh=4.0),
        DetectorReading(detector_id="N", count=1, occupancy=0.1),
    ]
    frame = IntersectionFrame(schema_version=1, event_time=t, intersection_id="K1", interval_s=60.0, detectors=dets)
    _, closed, _ = windowing.fold(None, [frame], window_s=60, lateness_s=0, wall_now=0.0)
    assert {a.detector_id: a.queue_veh_mean for a in closed} == {"N": None, "Q": 4.0}


def test_a_state_from_before_queue_aggregation_keeps_folding() -> None:
    """A changelog written by the previous release holds five-element accumulators: the window
    goes on, and its queue mean counts only the readings folded after the upgrade."""
    frames = make_frames(2, 6)
    old, _, _ = windowing.fold(None, frames[:1], window_s=60, lateness_s=30, wall_now=0)
    for w in old["windows"].values():
        for acc in w["detectors"].values():
            del acc[5:]
    late = [f.detectors for f in frames[1:]][0]
    state, _, _ = windowing.fold(old, frames[1:], window_s=60, lateness_s=30, wall_now=0)
    _, closed = windowing.close_idle(state, window_s=60, idle_s=1, wall_now=10.0)
    after = {d.detector_id: d.queue_veh for d in late}
    for a in closed:
        q = after.get(a.detector_id)
        assert a.queue_veh_mean == q  # one reading with a queue after the upgrade, or none
