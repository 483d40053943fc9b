"""A forged command on the internal ``alerts.lifecycle`` topic that decoded but made the alarm
books raise (an integer beyond 64 bits in ``evidence``: orjson refuses it) stopped the worker,
and with it every alarm, on every restart: the fail-stop of ``streams.ingest`` never commits
past it. Now it is dead-lettered and the next command is applied."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest

from streams.kafka_io import ensure_topics, producer, tail
from streams.stack import WorkerProcess, free_port, same_place, settings_env

pytestmark = pytest.mark.integration


def _cmd(kind: str, evidence: object) -> bytes:
    return json.dumps(
        {
            "schema_version": 1,
            "event_time": datetime.now(timezone.utc).isoformat(),
            "op": "raise",
            "subject_id": "pool-1",
            "kind": kind,
            "severity": "minor",
            "message": kind,
            "evidence": evidence,
        }
    ).encode()


async def _send(s, items: list[bytes]) -> None:
    prod = producer(s)
    await prod.start()
    try:
        for v in items:  # one at a time: the good command after the poison one, same partition
            await (await prod.send(s.topic("alerts.lifecycle"), key=b"pool-1", value=v))
    finally:
        await prod.stop()


def _read(s, topic: str) -> list[bytes]:
    async def run() -> list[bytes]:
        return [m.value or b"" async for m in tail(s, s.topic(topic), from_beginning=True, idle_timeout_s=0.5)]

    return asyncio.run(run())


@pytest.mark.parametrize("broker", ["tansu"], indirect=True)
def test_forged_lifecycle_command_is_dead_lettered_and_the_books_go_on(broker, settings_for, tmp_path: Path) -> None:
    s = settings_for(broker)
    asyncio.run(ensure_topics(s))
    values = {
        **same_place(s),
        "worker_role": "critical",
    }
    worker = WorkerProcess(settings_env(values), tmp_path / "worker.log", free_port())
    worker.start(timeout_s=90)
    try:
        asyncio.run(_send(s, [_cmd("forged", {"x": 2**100}), _cmd("genuine", {"x": 1})]))
        deadline, alerts, dead = time.monotonic() + 30, [], []
        while time.monotonic() < deadline:
            alerts = [json.loads(v) for v in _read(s, "alerts")]
            dead = [json.loads(v) for v in _read(s, "deadletter")]
            if any(a["kind"] == "genuine" for a in alerts) and dead:
                break
            time.sleep(0.5)
        alive = worker.proc is not None and worker.proc.poll() is None
        metrics = worker.metrics() if alive else {}
    finally:
        code = worker.stop()
    assert alive, f"the worker stopped: {worker.log_tail(8)}"
    assert code == 0, worker.log_tail()
    assert [a["kind"] for a in alerts] == ["genuine"], alerts
    assert [(d["source_topic"], d["reason_code"]) for d in dead] == [(s.topic("alerts.lifecycle"), "invalid")]
    counted = sum(v for k, v in metrics.items() if k.startswith("leitstand_deadletter_records_total{"))
    assert counted == len(dead) == 1
