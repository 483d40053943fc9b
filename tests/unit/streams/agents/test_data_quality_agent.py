"""The data-quality agent's folding and its metrics (the agent loop itself runs in
tests/integration/test_transparency.py against a real broker and worker)."""

from __future__ import annotations

from datetime import UTC, datetime

import msgspec
from hypothesis import given
from hypothesis import strategies as st

from detection.data_quality import DataQualityState, QualityLimits, frame_streams
from streams import metrics
from streams.agents.data_quality import MetricsView, fold_frames, fold_pool, limits_from
from streams.records import DetectorReading, IntersectionFrame, PoolReading
from streams.settings import Settings


def _value(name: str, **labels: str) -> float:
    return metrics.REGISTRY.get_sample_value(name, labels) or 0.0


def _frame(i: int, count: int) -> IntersectionFrame:
    return IntersectionFrame(
        schema_version=1,
        event_time=datetime.fromtimestamp(1_000_000 + 60 * i, tz=UTC),
        intersection_id="K1",
        interval_s=60.0,
        detectors=[DetectorReading(detector_id="d1", count=count, occupancy=0.25, speed_kmh=40.0 + i % 3)],
    )


def test_frames_and_pool_readings_reach_the_metrics() -> None:
    dq = DataQualityState(QualityLimits(stuck_after=5))
    view = MetricsView()
    before = _value("leitstand_data_quality_issues_total", series_kind="intersection", reason="stuck")
    judged = fold_frames(dq, [_frame(i, 7) for i in range(6)], 1_000_000 + 400.0)
    assert judged == 6 * 3  # count rate, occupancy, speed per frame
    view.update(dq)
    assert _value("leitstand_data_quality_streams", series_kind="intersection") == 3
    # count 7 and occupancy 0.25 repeat 6 times (stuck after 5); the speed varies
    assert _value("leitstand_data_quality_degraded_streams", series_kind="intersection", reason="stuck") == 2
    assert _value("leitstand_data_quality_issues_total", series_kind="intersection", reason="stuck") == before + 2
    view.update(dq)  # nothing new began: the counter does not move again
    assert _value("leitstand_data_quality_issues_total", series_kind="intersection", reason="stuck") == before + 2

    pool = PoolReading(schema_version=1, event_time=datetime.fromtimestamp(1_000_000, tz=UTC), pool_id="P1", visitors=12)
    assert fold_pool(dq, [pool], 1_000_000 + 1.0) == 1
    view.update(dq)
    assert _value("leitstand_data_quality_streams", series_kind="pool") == 1


def test_limits_come_from_settings() -> None:
    s = Settings(dq_expected_interval_s=15.0, dq_stuck_after=9, dq_skew_limit_s=30.0)
    assert limits_from(s) == QualityLimits(expected_interval_s=15.0, stuck_after=9, skew_limit_s=30.0)


def test_gauges_are_recomputed_at_most_once_a_second_and_never_lost() -> None:
    """Recomputing every stream's gauges after each batch cost 13-18 % of a telemetry worker;
    a batch within a second of the last update only marks the view dirty, for the timer."""
    dq = DataQualityState(QualityLimits(stuck_after=5))
    view = MetricsView()
    fold_frames(dq, [_frame(i, 3) for i in range(2)], 1_000_000 + 200.0)
    view.changed(dq, now=100.0)
    assert not view.dirty and _value("leitstand_data_quality_streams", series_kind="intersection") == 3
    fold_frames(dq, [msgspec.structs.replace(_frame(3, 3), intersection_id="K2")], 1_000_000 + 400.0)
    view.changed(dq, now=100.5)  # a second intersection's 3 streams: not published yet
    assert view.dirty and _value("leitstand_data_quality_streams", series_kind="intersection") == 3
    view.changed(dq, now=101.0)
    assert not view.dirty and _value("leitstand_data_quality_streams", series_kind="intersection") == 6


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["d1", "d2", "lane-3"]),
            st.integers(0, 50),
            st.floats(0, 1),
            st.one_of(st.none(), st.floats(0, 300)),
            st.one_of(st.none(), st.floats(0, 1000)),
        ),
        min_size=1,
        max_size=4,
        unique_by=lambda d: d[0],
    ),
    st.sampled_from([15.0, 60.0]),
)
def test_the_agent_folds_exactly_the_streams_frame_streams_names(detectors: list[tuple], interval_s: float) -> None:
    """The agent's fast path must judge the same streams with the same values as the definition
    (frame_streams), which explanations replay: else an explanation names other sensors."""
    frame = IntersectionFrame(
        schema_version=1,
        event_time=datetime.fromtimestamp(1_000_000, tz=UTC),
        intersection_id="K7",
        interval_s=interval_s,
        detectors=[DetectorReading(detector_id=i, count=c, occupancy=o, speed_kmh=s, queue_veh=q) for i, c, o, s, q in detectors],
    )
    fast = DataQualityState()
    judged = fold_frames(fast, [frame], 1_000_010.0)
    slow = DataQualityState()
    dicts = [{"detector_id": i, "count": c, "occupancy": o, "speed_kmh": s, "queue_veh": q} for i, c, o, s, q in detectors]
    expected = frame_streams("K7", interval_s, dicts)
    for stream, value in expected.items():
        slow.observe(stream, 1_000_000.0, 1_000_010.0, value)
    assert judged == len(expected)
    assert fast.streams == slow.streams
