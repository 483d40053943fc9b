"""Issue 10 #1: one large bad record must not cost the valid records of its batch. Both brokers.

Four frames of one intersection in one window: valid, an ~800 KB frame with ``"count": "bad"``,
valid, valid. Before the fix the ~1.07 MB dead letter (base64 of the whole value) was refused
(``MessageSizeTooLargeError``), the agent crashed, and the batch's offsets were committed: one
aggregate with ``frames: 1``. Now: ``frames: 3``, one bounded dead letter with the digest of the
whole record, and the dead-letter counter agrees with the topic.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
from datetime import datetime, timedelta, timezone
from pathlib import Path

import orjson
import pytest

from streams.kafka_io import ensure_topics, producer, tail
from streams.stack import WorkerProcess, free_port, same_place, settings_env

pytestmark = pytest.mark.integration

ONE_MIB = 1 << 20


def _frame(at: datetime, count: object = 3, pad: int = 0) -> bytes:
    detectors = [{"detector_id": "D1", "count": count, "occupancy": 0.2}, {"detector_id": "D2", "count": 1, "occupancy": 0.1}]
    body = {"schema_version": 1, "event_time": at.isoformat(), "intersection_id": "K1", "interval_s": 15, "detectors": detectors}
    if pad:
        body["padding"] = "x" * pad  # unknown fields are ignored by the decoder; the count is what is bad
    return orjson.dumps(body)


async def _send(s, values: list[bytes]) -> list[tuple[int, int]]:
    prod = producer(s)
    await prod.start()
    try:
        futs = [await prod.send(s.topic("sensors.intersection"), key=b"K1", value=v) for v in values]
        metas = await asyncio.gather(*futs)
    finally:
        await prod.stop()
    return [(m.partition, m.offset) for m in metas]


async def _read(s, topic: str, want: int, timeout_s: float) -> list[bytes]:
    out: list[bytes] = []

    async def read() -> None:
        async for m in tail(s, s.topic(topic), from_beginning=True, limit=want):
            assert m.value is not None  # the worker publishes no tombstones here
            out.append(m.value)

    try:
        await asyncio.wait_for(read(), timeout_s)
    except TimeoutError:
        pass
    return out


def test_an_800kb_bad_frame_costs_no_valid_frame(broker, settings_for, tmp_path: Path) -> None:
    s = settings_for(broker, aggregate_idle_close_s=3.0, aggregate_lateness_s=0.0)
    start = datetime.now(timezone.utc).replace(second=0, microsecond=0) - timedelta(minutes=10)
    big = _frame(start + timedelta(seconds=15), count="bad", pad=800_000)
    assert 800_000 < len(big) < s.max_record_bytes  # not oversize: it fails on its content
    values = [_frame(start), big, _frame(start + timedelta(seconds=30)), _frame(start + timedelta(seconds=45))]

    asyncio.run(ensure_topics(s))
    worker = WorkerProcess(
        settings_env(
            {
                **same_place(s),
                "aggregate_idle_close_s": 3.0,
                "aggregate_lateness_s": 0.0,
            }
        ),
        log_file=tmp_path / "worker.log",
        web_port=free_port(),
    )
    worker.start(timeout_s=90)
    try:
        positions = asyncio.run(_send(s, values))
        aggregates = [orjson.loads(v) for v in asyncio.run(_read(s, "aggregates", 2, timeout_s=60))]
        dead = asyncio.run(_read(s, "deadletter", 1, timeout_s=20))
        # anything more on the dead-letter topic would be a duplicate or a stray
        more = asyncio.run(_read(s, "deadletter", 2, timeout_s=3))
        metrics = worker.metrics()
    finally:
        code = worker.stop()
    assert code == 0, worker.log_tail()

    # the three valid frames all count
    assert sorted((a["detector_id"], a["frames"]) for a in aggregates) == [("D1", 3), ("D2", 3)], aggregates
    assert {a["count_sum"] for a in aggregates if a["detector_id"] == "D1"} == {9}

    # exactly one dead letter: bounded, marked truncated, with the whole record's size and digest
    assert len(dead) == 1 and len(more) == 1, (len(dead), len(more))
    raw_dl = dead[0]
    assert len(raw_dl) < ONE_MIB
    dl = orjson.loads(raw_dl)
    assert (dl["partition"], dl["offset"]) == positions[1]
    assert dl["reason_code"] == "invalid" and "count" in dl["reason"]
    assert dl["raw_truncated"] is True
    assert dl["raw_size"] == len(big)
    assert dl["raw_sha256"] == hashlib.sha256(big).hexdigest()
    kept = base64.b64decode(dl["raw_b64"])
    assert 0 < len(kept) < len(big) and big.startswith(kept)
    assert base64.b64decode(dl["key_b64"]) == b"K1" and dl["key_truncated"] is False

    # /metrics and the topic agree
    counted = sum(v for k, v in metrics.items() if k.startswith("leitstand_deadletter_records_total{"))
    assert counted == len(dead) == 1
    # every valid frame decoded; a frame read again after the suspended-flow race (wiring.py,
    # seen under load on Kafka) decodes twice and is skipped by the state's offsets, so the
    # aggregates above, not this counter, prove each frame counted once
    assert metrics[f'leitstand_records_decoded_total{{topic="{s.topic("sensors.intersection")}"}}'] >= 3
