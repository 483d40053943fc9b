"""The watermark / lateness policy (streams/windowing.py): out-of-order frames merge while their
window is open, late ones are named (the agent dead-letters them with reason ``late``), and
wall-clock idle closing never counts a worker's own downtime as silence."""

from __future__ import annotations

from datetime import datetime, timezone

from hypothesis import given, settings
from hypothesis import strategies as st

from streams import windowing
from streams.agents import aggregation
from streams.codec import RawMessage
from streams.ingest import Positioned
from streams.records import encode
from streams.settings import Settings
from tests.oracle import detector_windows
from tests.unit.streams.test_windowing import T0, make_frames


def test_late_frames_are_named_and_never_merged() -> None:
    frames = make_frames(12, seed=4)  # 3 minutes of 15 s frames
    state, closed, _ = windowing.fold(None, frames[4:], window_s=60, lateness_s=0, wall_now=0)
    out = windowing.fold_frames(state, frames[:4], window_s=60, lateness_s=0, wall_now=0)
    assert out.late == [0, 1, 2, 3] and out.closed == [] and out.state["windows"] == state["windows"]


def test_out_of_order_frames_in_an_open_window_are_merged_and_counted() -> None:
    frames = make_frames(4, seed=5)
    out = windowing.fold_frames(None, [frames[3], frames[1], frames[2], frames[0]], window_s=60, lateness_s=30, wall_now=0)
    assert out.late == [] and out.reordered == 3
    _, closed = windowing.close_idle(out.state, window_s=60, idle_s=1, wall_now=10)
    want = detector_windows(frames, 60)
    assert {a.aggregate_id: (a.count_sum, a.frames) for a in closed} == {k: (v[0], v[2]) for k, v in want.items()}


@settings(max_examples=80, deadline=None)
@given(order=st.permutations(list(range(12))), lateness=st.sampled_from([0.0, 15.0, 60.0]))
def test_every_frame_is_merged_or_named_late(order: list[int], lateness: float) -> None:
    frames = make_frames(12, seed=6)
    shuffled = [frames[i] for i in order]
    out = windowing.fold_frames(None, shuffled, window_s=60, lateness_s=lateness, wall_now=0)
    _, rest = windowing.close_idle(out.state, window_s=60, idle_s=1, wall_now=10)
    merged = sum(a.frames for a in out.closed + rest if a.detector_id == "D0")
    late_d0 = sum(1 for i in out.late if any(d.detector_id == "D0" for d in shuffled[i].detectors))
    assert merged + late_d0 == sum(1 for f in frames if any(d.detector_id == "D0" for d in f.detectors))


def test_idle_closing_counts_silence_from_when_the_worker_resumed() -> None:
    state, _, _ = windowing.fold(None, make_frames(2, seed=7), window_s=60, lateness_s=0, wall_now=100.0)
    # silent 200 s on the wall clock, but the worker itself was down until 250: not idle yet
    assert windowing.close_idle(state, window_s=60, idle_s=90, wall_now=300.0, resumed_at=250.0) == (state, [])
    _, closed = windowing.close_idle(state, window_s=60, idle_s=90, wall_now=341.0, resumed_at=250.0)
    assert closed


def test_the_aggregation_agent_dead_letters_late_frames_with_reason_late() -> None:
    s = Settings(_env_file=None, aggregate_lateness_s=0.0)
    frames = make_frames(8, seed=8)
    msgs = [Positioned(RawMessage("t", 0, i, b"K1", encode(f)), f) for i, f in enumerate(frames[4:] + frames[:1])]
    first = aggregation.fold_batch({}, msgs[:4], s, 0.0)
    assert first.closed and not first.late
    fold = aggregation.fold_batch(first.updates, msgs, s, 0.0)  # redelivered 0-3 skipped by offset
    assert [m.raw.offset for m in fold.late] == [4] and not fold.closed
    (letter,) = aggregation.late_letters(fold.late, s, 0.0)
    assert letter.reason_code == "late" and letter.offset == 4 and letter.source_topic == "t"
    assert datetime.fromtimestamp(T0, tz=timezone.utc).isoformat() in letter.reason
