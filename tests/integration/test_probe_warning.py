"""The early warning through a real broker and a telemetry worker: a pool whose pH jumps (its
acid dosing failed) gets one minor ``unusual_ph`` command on ``alerts.lifecycle``, a pool beside
it gets none, and a restarted worker, which reads the pools' detectors back from its table,
repeats nothing and warns at once of a chlorine drop (a detector that had lost its state would
still be in its day of warm-up). Steps, not slow drifts: this tests the plumbing; how early a
drift is warned is measured by ``leitstand bench probe-warning``."""

from __future__ import annotations

import asyncio
import math
import random
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import orjson
import pytest

from streams.kafka_io import ensure_topics
from streams.records import PoolReading, Quantity, encode
from streams.stack import WorkerProcess, free_port, same_place, settings_env

from .test_alarm_lifecycle import _send, _wait_for

pytestmark = pytest.mark.integration

DAY_MIN = 1440


def _readings(
    pool: str, t0: float, minutes: range, seed: int, ph_from: int | None = None, cl_from: int | None = None
) -> list[dict[str, Any]]:
    """Minutes of a pool: pH 0.15 higher from ``ph_from``, free chlorine 0.15 mg/l lower from ``cl_from``."""
    rng = random.Random(seed)
    out = []
    for i in minutes:
        ph = 7.0 + 0.03 * math.sin(2 * math.pi * i / DAY_MIN) + (0.15 if ph_from is not None and i >= ph_from else 0.0)
        cl = 0.45 - (0.15 if cl_from is not None and i >= cl_from else 0.0)
        r = PoolReading(
            schema_version=1,
            event_time=datetime.fromtimestamp(t0 + 60 * i, timezone.utc),
            pool_id=pool,
            ph=Quantity(ph + rng.gauss(0, 0.01), "pH"),
            free_chlorine=Quantity(cl + rng.gauss(0, 0.008), "mg/l"),
            redox=Quantity(780 + rng.gauss(0, 3), "mV"),
        )
        out.append(orjson.loads(encode(r)))
    return out


def _warnings(records: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    return [(r["subject_id"], r["kind"], r["severity"]) for r in records if r.get("op") == "raise" and r["kind"].startswith("unusual_")]


def test_a_failed_dosing_is_warned_once_and_a_restart_neither_repeats_nor_forgets(broker, settings_for, tmp_path: Path) -> None:
    s = settings_for(broker)
    asyncio.run(ensure_topics(s))
    # a day of history (the warm-up here) sent now: event times up to two days old are accepted
    env = settings_env(
        {**same_place(s), "worker_role": "telemetry", "clock_skew_s": 2 * 86_400.0, "probe_warning_warmup_s": DAY_MIN * 60.0}
    )
    step, later = DAY_MIN + 30, DAY_MIN + 240
    t0 = datetime.now(timezone.utc).timestamp() - (later + 100) * 60
    worker = WorkerProcess(env, tmp_path / "worker.log", free_port())
    worker.start(timeout_s=90)
    try:
        minutes = range(step + 90)
        asyncio.run(_send(s, "sensors.pool", _readings("P1", t0, minutes, 1, ph_from=step) + _readings("P2", t0, minutes, 2), "pool_id"))
        records = _wait_for(s, "alerts.lifecycle", lambda rs: bool(_warnings(rs)), 90)
        assert _warnings(records) == [("P1", "unusual_ph", "minor")], (records[-3:], worker.log_tail(20))
        (raised,) = [r for r in records if r.get("op") == "raise"]
        assert raised["evidence"]["parameter"] == "ph" and raised["evidence"]["score"] >= 0.8, raised
        assert datetime.fromisoformat(raised["event_time"]).timestamp() == pytest.approx(t0 + 60 * step, abs=1)
    finally:
        worker.stop()

    again = WorkerProcess(env, tmp_path / "again.log", free_port())
    again.start(timeout_s=90)
    try:
        rest = _readings("P1", t0, range(step + 90, later + 60), 3, ph_from=step, cl_from=later)
        asyncio.run(_send(s, "sensors.pool", rest + _readings("P2", t0, range(step + 90, later + 60), 4), "pool_id"))
        records = _wait_for(s, "alerts.lifecycle", lambda rs: len(_warnings(rs)) >= 2, 90)
        assert _warnings(records) == [("P1", "unusual_ph", "minor"), ("P1", "unusual_free_chlorine", "minor")], (
            records[-3:],
            again.log_tail(20),
        )
        second = [r for r in records if r.get("op") == "raise"][1]
        assert datetime.fromisoformat(second["event_time"]).timestamp() == pytest.approx(t0 + 60 * later, abs=1)
    finally:
        again.stop()
