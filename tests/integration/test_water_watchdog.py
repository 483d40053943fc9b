"""No water worker, no water alarms: the critical worker says so. A deployment that runs the
critical role without the water role (or whose water worker hangs) raises the system alarm
``evaluation_behind`` (subject ``water-rules``); starting a water worker clears it. Real broker, real worker processes."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import orjson
import pytest

from streams.kafka_io import ensure_topics, producer, tail
from streams.settings import Settings
from streams.stack import WorkerProcess, free_port, same_place, settings_env

pytestmark = [pytest.mark.integration]

AFTER_S = 5.0


def _send_readings(s: Settings, n: int) -> None:
    async def go() -> None:
        p = producer(s)
        await p.start()
        try:
            now = datetime.now(timezone.utc).isoformat()
            for i in range(n):
                pool = f"P{i % 3}"
                value = {"schema_version": 1, "event_time": now, "pool_id": pool, "ph": {"value": 7.0, "unit": "pH"}}
                await p.send(s.topic("sensors.pool"), orjson.dumps(value), key=pool.encode())
            await p.flush()
        finally:
            await p.stop()

    asyncio.run(go())


def _watch_records(s: Settings) -> list[dict[str, Any]]:
    async def go() -> list[dict[str, Any]]:
        return [orjson.loads(m.value) async for m in tail(s, s.topic("alerts"), from_beginning=True, idle_timeout_s=0.5) if m.value]

    return [r for r in asyncio.run(go()) if r.get("kind") == "evaluation_behind"]


def _wait(s: Settings, predicate: Any, timeout_s: float, what: str, workers: list[WorkerProcess]) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout_s
    while True:
        records = _watch_records(s)
        if predicate(records):
            return records
        if time.monotonic() > deadline:
            logs = "\n".join(w.log_tail() for w in workers)
            raise AssertionError(f"no {what} within {timeout_s} s; evaluation_behind records: {records}\n{logs}")
        time.sleep(0.5)


def test_critical_worker_alarms_when_no_water_worker_reads_and_clears_once_one_does(broker, settings_for, tmp_path: Path) -> None:
    s = settings_for(broker)
    asyncio.run(ensure_topics(s))
    env = settings_env({**same_place(s), "water_watch_after_s": AFTER_S})
    critical = WorkerProcess({**env, "LEITSTAND_WORKER_ROLE": "critical"}, tmp_path / "critical.log", free_port())
    water = WorkerProcess({**env, "LEITSTAND_WORKER_ROLE": "water"}, tmp_path / "water.log", free_port())
    critical.start(timeout_s=120)
    try:
        _send_readings(s, 30)  # (an idle topic is never a backlog: tests/unit/detection/test_reader_backlog.py)
        t0 = time.monotonic()
        raised = _wait(s, lambda rs: any(r["transition"] == "raised" for r in rs), 60, "raised alarm", [critical])
        waited = time.monotonic() - t0
        [alarm] = [r for r in raised if r["transition"] == "raised"]
        assert alarm["subject_id"] == "water-rules" and alarm["subject_type"] == "system" and alarm["severity"] == "major"
        assert "--role water" in alarm["message"] and f"{s.app_id}-water" in alarm["message"]
        assert waited >= AFTER_S - 1.5, f"raised after {waited:.1f} s, before the {AFTER_S} s threshold"
        assert critical.metrics()["leitstand_water_rules_behind_seconds"] >= AFTER_S

        water.start(timeout_s=120)
        cleared = _wait(s, lambda rs: any(r["transition"] != "raised" and r["active"] is False for r in rs), 60, "clear", [critical, water])
        assert [r["transition"] for r in cleared if r["transition"] == "raised"] == ["raised"]  # raised once
        assert critical.metrics()["leitstand_water_rules_behind_seconds"] < AFTER_S / 2
    finally:
        water_rc = water.stop() if water.proc is not None else 0
        assert critical.stop() == 0, critical.log_tail()
        assert water_rc == 0, water.log_tail()
