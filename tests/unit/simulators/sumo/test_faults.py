"""Broken detectors (simulators/sumo/faults.py): dead ones vanish, stuck ones repeat the reading
they froze at, noisy ones stay valid records, the healthy ones are untouched, and the same seed
breaks the same detectors the same way (every controller of a comparison meets the same faults)."""

from __future__ import annotations

from datetime import UTC, datetime

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from simulators.sumo.faults import DetectorFaults, FailureKind
from streams.records import DetectorReading, IntersectionFrame

IDS = ("a", "b", "c", "d")

readings = st.builds(
    DetectorReading,
    detector_id=st.just("x"),
    count=st.integers(0, 4),
    occupancy=st.floats(0.0, 1.0),
    speed_kmh=st.none() | st.floats(0.0, 80.0),
    queue_veh=st.none() | st.floats(0.0, 12.0),
    vehicles=st.none() | st.floats(0.0, 15.0),
)


def _frame(t: int, values: list[DetectorReading]) -> IntersectionFrame:
    return IntersectionFrame(
        schema_version=1,
        event_time=datetime.fromtimestamp(1_800_000_000 + t, tz=UTC),
        intersection_id="K1",
        interval_s=1.0,
        detectors=[msgspec.structs.replace(r, detector_id=d) for d, r in zip(IDS, values, strict=True)],
    )


frames = st.lists(st.lists(readings, min_size=4, max_size=4), min_size=1, max_size=40)


def _run(faults: DetectorFaults, series: list[list[DetectorReading]]) -> list[IntersectionFrame]:
    return [faults.apply(_frame(t, values), float(t)) for t, values in enumerate(series)]


@settings(max_examples=60, deadline=None)
@given(series=frames)
def test_dead_detectors_are_absent_and_the_rest_untouched(series: list[list[DetectorReading]]) -> None:
    faults = DetectorFaults.draw(FailureKind.DEAD, frozenset({"b"}), seed=1, begin_s=0, end_s=40)
    for seen, values in zip(_run(faults, series), series, strict=True):
        assert [r.detector_id for r in seen.detectors] == ["a", "c", "d"]
        assert seen.detectors[0] == msgspec.structs.replace(values[0], detector_id="a")


@settings(max_examples=60, deadline=None)
@given(series=frames, seed=st.integers(0, 10_000))
def test_a_stuck_detector_repeats_the_reading_it_had_at_its_onset(series: list[list[DetectorReading]], seed: int) -> None:
    faults = DetectorFaults.draw(FailureKind.STUCK, frozenset({"c"}), seed=seed, begin_s=0, end_s=len(series) + 20)
    onset = faults.onset_s["c"]
    assert 0 <= onset <= (len(series) + 20) / 2
    seen = _run(faults, series)
    for t, (frame, values) in enumerate(zip(seen, series, strict=True)):
        true = [msgspec.structs.replace(v, detector_id=d) for d, v in zip(IDS, values, strict=True)]
        by_id = {r.detector_id: r for r in frame.detectors}
        assert [by_id[d] for d in ("a", "b", "d")] == [true[0], true[1], true[3]]
        if t < onset:
            assert by_id["c"] == true[2]
        else:
            assert by_id["c"] == msgspec.structs.replace(series[int(onset)][2], detector_id="c")


@settings(max_examples=60, deadline=None)
@given(series=frames, seed=st.integers(0, 10_000))
def test_noisy_readings_are_valid_records_and_repeat_for_the_same_seed(series: list[list[DetectorReading]], seed: int) -> None:
    first = _run(DetectorFaults.draw(FailureKind.NOISY, frozenset({"a", "d"}), seed, 0, 40), series)
    again = _run(DetectorFaults.draw(FailureKind.NOISY, frozenset({"a", "d"}), seed, 0, 40), series)
    assert first == again
    for frame, values in zip(first, series, strict=True):
        # what the city's decoder would accept: the wire round trip validates every bound
        assert msgspec.json.decode(msgspec.json.encode(frame), type=IntersectionFrame) == frame
        by_id = {r.detector_id: r for r in frame.detectors}
        assert by_id["b"] == msgspec.structs.replace(values[1], detector_id="b")
        for d, true in (("a", values[0]), ("d", values[3])):
            assert abs(by_id[d].count - true.count) <= 1
            assert (by_id[d].queue_veh is None) == (true.queue_veh is None)


def test_noise_changes_readings() -> None:
    """Noise that never moved a reading would make the noisy benchmark a clean one."""
    busy = DetectorReading(detector_id="x", count=1, occupancy=0.4, queue_veh=5.0, vehicles=7.0)
    seen = _run(DetectorFaults.draw(FailureKind.NOISY, frozenset(IDS), 3, 0, 200), [[busy] * 4] * 50)
    queues = {r.queue_veh or 0.0 for f in seen for r in f.detectors}
    assert len(queues) > 3 and min(queues) < 5.0 < max(queues)
