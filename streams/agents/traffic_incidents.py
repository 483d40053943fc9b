"""Detector frames -> traffic incidents and detector faults, per intersection.

Takes each batch of ``sensors.intersection`` from the role's one reader of that topic
(``intersection_frames.py``, which owns its dead letters), folds each frame with
``detection.incidents`` and sends raise/clear commands to the alarm books. State per
intersection lives in a table; commands are on the broker before it is saved. States carry
their source offsets (``wiring.track_source``): a frame the state already reflects is skipped
after a restart, so no incident transition is lost or raised twice from it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import faust

from detection.incidents import DetectorValue, frames_outcome

from ..codec import RawMessage
from ..ingest import Batch, BatchHandler, Positioned
from ..records import IntersectionFrame, LifecycleCommand
from ..settings import Settings
from ..topics import ALERTS_LIFECYCLE, SENSORS_INTERSECTION
from .alarm_commands import lifecycle_commands, to_lifecycle
from .wiring import applied, keyed_table, save, stamped, track_source, value_identity


def detector_values(frame: IntersectionFrame) -> list[DetectorValue]:
    # detectors without an approach form their own group: they are still compared with the rest
    return [DetectorValue(d.detector_id, d.approach or d.detector_id, d.count, d.occupancy, d.speed_kmh) for d in frame.detectors]


def watch_frames(
    table: Any, frames: Iterable[Positioned[IntersectionFrame]], replayed: Callable[[RawMessage], bool] = lambda raw: False
) -> tuple[dict[bytes, Any], list[LifecycleCommand]]:
    """Fold frames in order into their intersections' states: new states and alarm commands
    (a frame at or below the offset its state reflects was folded before: skipped; a frame
    ``replayed`` after a restart only rebuilds state: its commands were sent before).

    Each intersection's frames are folded together (its state copied once per batch, not per
    frame); the commands come out in the batch's order."""
    groups: dict[str, list[tuple[int, Positioned[IntersectionFrame]]]] = {}
    for i, p in enumerate(frames):
        groups.setdefault(p.record.intersection_id, []).append((i, p))
    updates: dict[bytes, Any] = {}
    ordered: list[tuple[int, list[LifecycleCommand]]] = []
    for iid, group in groups.items():
        key = iid.encode()
        before = table.get(key)
        fresh, last = [], applied(before)
        for i, p in group:  # offsets rise within a key (one partition); a repeat is skipped
            if p.raw.offset > last:
                fresh.append((i, p))
                last = p.raw.offset
        if not fresh:
            continue
        state, outcomes = frames_outcome(before, iid, [(p.record.event_time.timestamp(), detector_values(p.record)) for _, p in fresh])
        updates[key] = stamped(state, last)
        for (i, p), outcome in zip(fresh, outcomes, strict=True):
            if (outcome.triggers or outcome.clears) and not replayed(p.raw):
                ordered.append((i, list(lifecycle_commands(iid, outcome, p.record.event_time, subject_type="intersection"))))
    ordered.sort(key=lambda item: item[0])
    return updates, [c for _, cmds in ordered for c in cmds]


def register(app: faust.App, settings: Settings) -> BatchHandler[IntersectionFrame]:
    """The table and the fold of one batch of frames (the caller reads the topic and owns its
    dead letters: ``intersection_frames.py``)."""
    topic = settings.topic(SENSORS_INTERSECTION)
    lifecycle_name = settings.topic(ALERTS_LIFECYCLE)
    lifecycle = app.topic(lifecycle_name)
    table = keyed_table(app, "incident-watch", settings)
    tracking = track_source(app, table, [topic], settings, outputs={lifecycle_name: value_identity})

    async def watch(batch: Batch[IntersectionFrame]) -> None:
        updates, commands = watch_frames(table, batch.records, tracking.replayed)
        await tracking.publish(to_lifecycle(lifecycle, commands))
        save(table, tracking.with_checkpoints(updates, batch.ends))

    return watch
