"""A batch's records and those refused only for their clock, merged back in arrival order for the
data-quality watch (intersection_frames.py: one reader of the topic for every fold)."""

from __future__ import annotations

from datetime import datetime, timezone

from hypothesis import given
from hypothesis import strategies as st

from streams.codec import RawMessage
from streams.ingest import Batch, Positioned
from streams.records import DetectorReading, IntersectionFrame

T = datetime(2026, 12, 2, tzinfo=timezone.utc)


def _pos(partition: int, offset: int) -> Positioned[IntersectionFrame]:
    frame = IntersectionFrame(
        schema_version=1,
        event_time=T,
        intersection_id=f"K{partition}-{offset:03d}",
        interval_s=15.0,
        detectors=[DetectorReading(detector_id="D1", count=1, occupancy=0.1)],
    )
    return Positioned(RawMessage("sensors.intersection", partition, offset, None, b""), frame)


@given(st.lists(st.tuples(st.integers(0, 3), st.booleans()), max_size=60))
def test_every_parsed_keeps_each_partitions_order_and_loses_nothing(arrivals: list[tuple[int, bool]]) -> None:
    next_offset = [0, 0, 0, 0]
    kept: list[Positioned[IntersectionFrame]] = []
    refused: list[Positioned[IntersectionFrame]] = []
    order: list[Positioned[IntersectionFrame]] = []
    for partition, is_refused in arrivals:
        p = _pos(partition, next_offset[partition])
        next_offset[partition] += 1
        (refused if is_refused else kept).append(p)
        order.append(p)
    merged = Batch(kept, {}, len(arrivals), refused).every_parsed()
    assert sorted(merged, key=lambda p: p.record.intersection_id) == sorted(order, key=lambda p: p.record.intersection_id)
    for partition in range(4):
        mine = [p.raw.offset for p in merged if p.raw.partition == partition]
        assert mine == sorted(mine)


def test_without_refused_records_the_batch_is_handed_over_as_it_came() -> None:
    kept = [_pos(1, 5), _pos(0, 9), _pos(1, 6)]
    assert Batch(kept, {}, 3).every_parsed() == kept
