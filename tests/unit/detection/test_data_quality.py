"""The data-quality watch (detection/data_quality.py): each issue appears when it should, and not otherwise."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from detection.data_quality import ISSUES, DataQualityState, QualityLimits, frame_streams, observe, summary


def _feed(dq: DataQualityState, stream: str, values: list[float], start: float = 0.0, step: float = 60.0, lag: float = 1.0) -> list[str]:
    issues: list[str] = []
    for i, v in enumerate(values):
        issues = dq.observe(stream, start + i * step, start + i * step + lag, v)
    return issues


def test_a_healthy_stream_has_no_issue() -> None:
    dq = DataQualityState()
    values = [0.2 + 0.05 * ((i * 7) % 5) for i in range(200)]
    assert _feed(dq, "intersection/K1/d1/occupancy", values) == []
    assert dq.summary()["began"] == {k: 0 for k in ISSUES}


def test_stuck_after_the_limit_but_zero_counts_are_normal() -> None:
    dq = DataQualityState(QualityLimits(stuck_after=5))
    assert _feed(dq, "pool/P1/ph", [7.2] * 4) == []
    assert _feed(dq, "pool/P1/ph", [7.2], start=240) == ["stuck"]
    assert _feed(dq, "intersection/K1/d1/count_per_s", [0.0] * 50) == []
    assert _feed(dq, "pool/P1/ph", [7.3], start=300) == []  # a change ends it


def test_out_of_range_and_not_finite() -> None:
    dq = DataQualityState()
    assert _feed(dq, "intersection/K1/d1/speed_kmh", [250.0]) == ["out_of_range"]
    assert _feed(dq, "pool/P1/ph", [float("nan")]) == ["out_of_range"]
    assert _feed(dq, "pool/P1/unknown_quantity", [1e9]) == []  # no range known: not judged


def test_clock_ahead_and_clock_behind_its_usual_latency() -> None:
    dq = DataQualityState(QualityLimits(skew_limit_s=120))
    assert _feed(dq, "pool/P1/ph", [7.0], start=1000, lag=-300) == ["clock_skew"]  # event 5 min in the future
    dq2 = DataQualityState(QualityLimits(skew_limit_s=120))
    _feed(dq2, "pool/P1/ph", [7.0 + 0.01 * i for i in range(20)], lag=30)  # usual latency 30 s
    assert _feed(dq2, "pool/P1/ph", [7.3], start=2000, lag=100) == []
    assert _feed(dq2, "pool/P1/ph", [7.31], start=2060, lag=400) == ["clock_skew"]


def test_drift_against_the_streams_own_history() -> None:
    dq = DataQualityState(QualityLimits(warmup=50))
    base = [7.0 + 0.02 * ((i * 3) % 7 - 3) for i in range(300)]
    assert _feed(dq, "pool/P1/ph", base) == []
    issues = _feed(dq, "pool/P1/ph", [7.6 + 0.02 * ((i * 3) % 7 - 3) for i in range(40)], start=300 * 60)
    assert "drift" in issues


def test_missing_after_silence_and_back_when_it_reports() -> None:
    dq = DataQualityState(QualityLimits(expected_interval_s=60, missing_after=3))
    _feed(dq, "pool/P1/ph", [7.0, 7.1])
    dq.tick(60 + 1 + 100)
    assert "missing" not in dq.streams["pool/P1/ph"]["issues"]
    dq.tick(60 + 1 + 181)
    assert dq.streams["pool/P1/ph"]["issues"] == ["missing"]
    assert dq.summary()["degraded_now"]["missing"] == 1
    assert _feed(dq, "pool/P1/ph", [7.05], start=300) == []
    assert dq.summary()["began"]["missing"] == 1


def test_frames_become_streams_with_counts_as_rates() -> None:
    got = frame_streams("K1", 30.0, [{"detector_id": "d", "count": 6, "occupancy": 0.5, "speed_kmh": None, "queue_veh": 2.0}])
    assert got == {"intersection/K1/d/count_per_s": 0.2, "intersection/K1/d/occupancy": 0.5, "intersection/K1/d/queue_veh": 2.0}


@given(
    st.lists(st.floats(allow_nan=True, allow_infinity=True, width=32), min_size=1, max_size=80),
    st.lists(st.floats(min_value=-1e4, max_value=1e4), min_size=1, max_size=80),
)
def test_any_input_gives_known_issues_and_counts_only_grow(values: list[float], lags: list[float]) -> None:
    state: dict | None = None
    before = {k: 0 for k in ISSUES}
    for i, v in enumerate(values):
        state, issues = observe(state, "pool/P1/ph", 60.0 * i, 60.0 * i + lags[i % len(lags)], v, QualityLimits(stuck_after=3, warmup=5))
        assert set(issues) <= set(ISSUES) and issues == sorted(set(issues)) == state["issues"]
        assert all(state["counts"][k] >= before[k] for k in ISSUES)
        before = dict(state["counts"])
    assert state is not None and summary({"s": state})["streams"] == 1


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["intersection/K1/d1/occupancy", "intersection/K2/d1/speed_kmh", "pool/P1/ph", "pool/P1/redox"]),
            st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.sampled_from([0.5, 7.2, 300.0, -1.0, 999.0])),
            st.floats(0, 600),  # how late it arrives
            st.booleans(),  # a timer tick after it
        ),
        max_size=120,
    )
)
def test_the_tallies_equal_a_recount_over_every_stream(steps: list[tuple[str, float, float, bool]]) -> None:
    """The metrics read tallies kept as streams change; they must always say what a full pass
    over the streams would (a drift here would show degraded sensors that are not, or hide them)."""
    dq = DataQualityState(QualityLimits(stuck_after=3, warmup=5, expected_interval_s=10.0))
    t = 1_000_000.0
    for stream, value, lag, tick in steps:
        t += 10.0
        dq.observe(stream, t, t + lag, value)
        if tick:
            dq.tick(t + 100.0)
        for source in ("intersection", "pool"):
            states = [s for k, s in dq.streams.items() if k.startswith(f"{source}/")]
            assert dq.stream_count(source) == len(states)
            for issue in ISSUES:
                assert dq.degraded_count(source, issue) == sum(issue in s["issues"] for s in states), (source, issue)
                assert dq.began_count(source, issue) == sum(int(s["counts"].get(issue, 0)) for s in states), (source, issue)


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["intersection/K1/d1/occupancy", "intersection/K1/d1/count_per_s", "pool/P1/ph", "pool/P1/redox"]),
            st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.sampled_from([0.0, 0.5, 7.2, 300.0, -1.0])),
            st.floats(-300, 600),  # how late it arrives (negative: a clock ahead)
        ),
        max_size=150,
    )
)
def test_the_watch_folding_in_place_equals_the_pure_fold(steps: list[tuple[str, float, float]]) -> None:
    """``DataQualityState`` updates its own states in place (the hot path); ``observe`` copies.
    Both must give the same states and issues, and ``observe`` must leave its input alone."""
    limits = QualityLimits(stuck_after=3, warmup=5)
    dq = DataQualityState(limits)
    pure: dict[str, dict] = {}
    t = 1_000_000.0
    for stream, value, lag in steps:
        t += 10.0
        old = pure.get(stream)
        frozen = None if old is None else {**old, "issues": list(old["issues"]), "counts": dict(old["counts"])}
        pure[stream], issues = observe(old, stream, t, t + lag, value, limits)
        assert old == frozen  # untouched
        assert dq.observe(stream, t, t + lag, value) == issues
    assert dq.streams == pure
