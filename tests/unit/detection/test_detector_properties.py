"""Whatever the stream throws at them (NaN, inf, huge values, gaps, duplicates, time going
backwards), detectors return scores in [0, 1], never raise, keep JSON-able state, and an
out-of-order reading leaves their state untouched."""

from __future__ import annotations

import json
import math

from hypothesis import given, settings
from hypothesis import strategies as st

from detection.adaptive import AdaptiveDetector
from detection.base import Detector
from detection.registry import DETECTOR_NAMES, make_detector, restore
from detection.sensor_faults import REASONS, SensorFaultDetector

T0 = 1_735_689_600.0

values = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(min_value=-1e6, max_value=1e6),
    st.sampled_from([0.0, 0.0, 1.0, math.nan, math.inf, -math.inf, 1e308, -1e308, 5e-324]),
)
# time steps: regular, duplicate, small and huge gaps, and steps back in time
steps = st.one_of(
    st.just(300.0),
    st.just(0.0),
    st.floats(min_value=0.0, max_value=7 * 86400),
    st.floats(min_value=-86400.0, max_value=-1e-3),
    st.sampled_from([math.nan, math.inf, -math.inf]),
)
streams = st.lists(st.tuples(steps, values), min_size=1, max_size=120)


def run(name: str, stream: list[tuple[float, float]], det: Detector | None = None) -> None:
    """Feed ``stream`` to a fresh registry detector (or ``det``): every score in [0, 1], state JSON."""
    det = det or make_detector(name)
    t = T0
    for dt, x in stream:
        t_i = t + dt
        if math.isfinite(t_i):
            t = t_i  # the clock may go backwards; a non-finite time is offered but not kept
        s = det.score_one(t_i, x)
        assert isinstance(s, float) and 0.0 <= s <= 1.0, (name, t_i, x, s)
        det.learn_one(t_i, x)
    json.dumps(det.to_state(), allow_nan=False)


@settings(max_examples=60, deadline=None)
@given(stream=streams)
def test_scores_in_unit_interval_and_state_stays_json(stream: list[tuple[float, float]]) -> None:
    for name in DETECTOR_NAMES:
        run(name, stream)


@settings(max_examples=60, deadline=None)
@given(stream=streams)
def test_the_shift_score_is_bounded_and_json_on_any_stream(stream: list[tuple[float, float]]) -> None:
    """The registered ``adaptive`` needs 1,024 readings before its shift score speaks; with a
    memory of 2 it speaks after 8, so these short hostile streams exercise its arithmetic."""
    run("adaptive, shift memory 2", stream, AdaptiveDetector(shift_memory=2.0))


@settings(max_examples=40, deadline=None)
@given(
    prefix=st.lists(st.floats(min_value=-100, max_value=100), min_size=1, max_size=60),
    back=st.floats(min_value=1e-3, max_value=86400.0),
    late=values,
)
def test_out_of_order_reading_does_not_touch_state(prefix: list[float], back: float, late: float) -> None:
    for name in DETECTOR_NAMES:
        det = make_detector(name)
        for i, x in enumerate(prefix):
            det.score_one(T0 + 300 * i, x)
            det.learn_one(T0 + 300 * i, x)
        before = json.dumps(det.to_state())
        newest = T0 + 300 * (len(prefix) - 1)
        assert det.score_one(newest - back, late) == 0.0 or name == "sensor_fault"
        det.learn_one(newest - back, late)
        assert json.dumps(det.to_state()) == before, name


@settings(max_examples=40, deadline=None)
@given(
    stream=st.lists(st.tuples(st.floats(min_value=0, max_value=3600), st.floats(min_value=-1e3, max_value=1e3)), min_size=2, max_size=60),
    cut=st.integers(min_value=0, max_value=59),
)
def test_restored_state_scores_like_the_original(stream: list[tuple[float, float]], cut: int) -> None:
    for name in DETECTOR_NAMES:
        a = make_detector(name)
        t = T0
        ts = []
        for dt, _ in stream:
            t += dt
            ts.append(t)
        k = min(cut, len(stream) - 1)
        for ti, (_, x) in zip(ts[:k], stream[:k]):
            a.score_one(ti, x)
            a.learn_one(ti, x)
        b = restore(json.loads(json.dumps(a.to_state())))
        for ti, (_, x) in zip(ts[k:], stream[k:]):
            assert a.score_one(ti, x) == b.score_one(ti, x)
            a.learn_one(ti, x)
            b.learn_one(ti, x)


@settings(max_examples=60, deadline=None)
@given(stream=streams, lo=st.floats(-10, 0), width=st.floats(0.1, 20), step=st.floats(0.01, 5))
def test_sensor_fault_check_never_raises_and_names_a_known_reason(
    stream: list[tuple[float, float]], lo: float, width: float, step: float
) -> None:
    d = SensorFaultDetector(lo=lo, hi=lo + width, max_step=step, stuck_after_s=900.0, heartbeat_s=600.0)
    t = T0
    for dt, x in stream:
        t_i = t + dt
        if math.isfinite(t_i):
            t = t_i
        why = d.check(t_i, x)
        assert why is None or why in REASONS
        if why == "out_of_range":
            assert x < lo or x > lo + width
        assert isinstance(d.silent(t), bool)
    json.dumps(d.to_state(), allow_nan=False)
