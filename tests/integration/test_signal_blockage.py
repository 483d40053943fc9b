"""A blocked approach reaches the alarm books through a real broker and a `control` worker, both brokers.

K101 runs its fixed program (so its greens do not depend on the readings). For the first 600 s
of frames four vehicles stand on N_in and none crosses its stop line, though group K1 gets green
every cycle; then N_in's loop counts vehicles again. The worker is stopped once it raised the
alarm and a second one gets the frames in which the queue moves: the open blockage is in the
worker's table, so there must be exactly one raise of ``blocked_N_in`` for K101 on
``alerts.lifecycle`` (after three starved greens, not before) and one clear after the queue
moved, both decodable by the alarm books' reader. (Before stop 41 a restart forgot the open
blockage and the alarm stayed open until someone resolved it.)
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import msgspec
import pytest

from streams.kafka_io import ensure_topics
from streams.records import LifecycleCommand
from streams.stack import WorkerProcess, free_port, same_place, settings_env

from .test_alarm_lifecycle import _send, _wait_for
from .test_signal_control import _configured, _iso, k101_config

pytestmark = pytest.mark.integration

LANES = ("N_in", "S_in", "N_left", "S_left", "E_in", "W_in")
STEP_S = 5.0
BLOCKED = 120  # frames (600 s, six or seven cycles of 74 s) with N_in standing and not moving
FRAMES = 200


def _frame(t0: float, i: int) -> dict:
    detectors = [{"detector_id": d, "count": 1, "occupancy": 0.2, "queue_veh": 1} for d in LANES]
    n_in = detectors[0]
    n_in["queue_veh"], n_in["count"] = (4, 0) if i < BLOCKED else (1, 2)
    at = _iso(t0 + STEP_S * i)
    return {"schema_version": 1, "event_time": at, "intersection_id": "K101", "interval_s": STEP_S, "detectors": detectors}


def test_a_blocked_approach_raises_and_clears_one_alarm(broker, settings_for, tmp_path: Path) -> None:
    s = settings_for(broker)
    asyncio.run(ensure_topics(s))
    env = settings_env({**same_place(s), "worker_role": "control"})
    first = WorkerProcess(env, tmp_path / "first.log", free_port())
    first.start(timeout_s=90)
    t0 = time.time() - 3600.0
    try:
        config = k101_config(t0, "fixed", "automatic", "blocked-run", {})
        asyncio.run(_send(s, "signals.config", [config], "intersection_id"))
        _configured(s, "K101")
        asyncio.run(_send(s, "sensors.intersection", [_frame(t0, i) for i in range(BLOCKED)], "intersection_id"))
        _wait_for(s, "alerts.lifecycle", lambda rs: any(r["op"] == "raise" for r in rs), 120)
    finally:
        first.stop()
    worker = WorkerProcess(env, tmp_path / "second.log", free_port())
    worker.start(timeout_s=90)
    try:
        asyncio.run(_send(s, "sensors.intersection", [_frame(t0, i) for i in range(BLOCKED, FRAMES)], "intersection_id"))
        commands = _wait_for(s, "alerts.lifecycle", lambda rs: any(r["op"] == "clear" for r in rs), 120)
        decoded = [msgspec.json.decode(json.dumps(r).encode(), type=LifecycleCommand) for r in commands]
        assert [(c.op, c.subject_id, c.subject_type, c.kind) for c in decoded] == [
            ("raise", "K101", "intersection", "blocked_N_in"),
            ("clear", "K101", "intersection", "blocked_N_in"),
        ]
        raised, cleared = decoded
        after_s = raised.event_time.timestamp() - t0
        assert 2 * 60 < after_s < BLOCKED * STEP_S, after_s  # three greens of K1 at least two cycles in, while blocked
        assert cleared.event_time.timestamp() - t0 >= BLOCKED * STEP_S
        assert raised.severity == "major" and "none crossed the stop line" in (raised.message or "")
        assert raised.evidence is not None and raised.evidence["greens"] == 3 and raised.evidence["queue_veh"] == 4
    finally:
        worker.stop()
