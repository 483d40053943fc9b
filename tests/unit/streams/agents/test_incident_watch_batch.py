"""The incident watch folds each intersection's frames of a batch together: the commands are
those of a frame-by-frame fold, in the batch's order; repeats and replays send nothing."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from detection.incidents import frame_outcome
from streams.agents import traffic_incidents
from streams.agents.alarm_commands import lifecycle_commands
from streams.agents.wiring import applied
from streams.codec import RawMessage
from streams.ingest import Positioned
from streams.records import DetectorReading, IntersectionFrame, LifecycleCommand

START = datetime(2026, 6, 1, 8, tzinfo=timezone.utc)


def _frame(iid: str, i: int, jam: bool) -> IntersectionFrame:
    dets = [
        DetectorReading(
            detector_id=f"{a}1",
            approach=a,
            count=6,
            occupancy=0.9 if jam and a == "N" else 0.15,
            speed_kmh=6.0 if jam and a == "N" else 45.0,
        )
        for a in ("N", "E", "S")
    ]
    return IntersectionFrame(
        schema_version=1, event_time=START + timedelta(seconds=15 * i), intersection_id=iid, interval_s=15.0, detectors=dets
    )


def _batch() -> list[Positioned[IntersectionFrame]]:
    """Two intersections interleaved, each on its own partition; K2 jams from frame 30 on."""
    out = []
    for i in range(40):
        for p, iid in enumerate(("K1", "K2")):
            out.append(Positioned(RawMessage("frames", p, i, iid.encode(), b""), _frame(iid, i, jam=iid == "K2" and i >= 30)))
    return out


def _one_by_one(batch: list[Positioned[IntersectionFrame]]) -> list[LifecycleCommand]:
    states: dict[str, Any] = {}
    commands: list[LifecycleCommand] = []
    for p in batch:
        f = p.record
        states[f.intersection_id], out = frame_outcome(
            states.get(f.intersection_id), f.intersection_id, f.event_time.timestamp(), traffic_incidents.detector_values(f)
        )
        commands += lifecycle_commands(f.intersection_id, out, f.event_time, subject_type="intersection")
    return commands


def test_commands_equal_a_frame_by_frame_fold_in_batch_order() -> None:
    batch = _batch()
    updates, commands = traffic_incidents.watch_frames({}, batch)
    assert commands == _one_by_one(batch)
    assert [c.subject_id for c in commands] == ["K2"] and commands[0].op == "raise"
    assert {k: applied(v) for k, v in updates.items()} == {b"K1": 39, b"K2": 39}


def test_a_record_repeated_in_the_batch_or_replayed_sends_nothing() -> None:
    batch = _batch()
    repeated = batch + batch[-10:]  # a redelivery inside the same batch
    _, commands = traffic_incidents.watch_frames({}, repeated)
    assert commands == _one_by_one(batch)
    _, replayed = traffic_incidents.watch_frames({}, batch, lambda raw: True)
    assert replayed == []
