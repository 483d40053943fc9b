"""Through a real broker into a running worker: exact aggregates, exact dead letters (malformed
frames, and valid ones sent without their key). Both brokers."""

from __future__ import annotations

import asyncio
import base64
import random
from datetime import datetime, timedelta, timezone
from pathlib import Path

import orjson
import pytest

from simulators.city.frames import MALFORMED_KINDS, frames, malformed
from streams.kafka_io import ensure_topics, producer, tail
from streams.records import IntersectionFrame, encode
from streams.stack import WorkerProcess, free_port, same_place, settings_env
from tests.cli_helpers import leitstand
from tests.oracle import detector_windows

pytestmark = [pytest.mark.integration, pytest.mark.slow]

WINDOW_S = 60


def expected_aggregates(valid: list) -> dict[str, tuple]:
    """Direct computation over the valid frames, in send order (= per-key partition order)."""
    return detector_windows(valid, WINDOW_S)


async def _send(s, items: list[tuple[bytes | None, bytes]]) -> list[tuple[int, int]]:
    prod = producer(s)
    await prod.start()
    try:
        futs = [await prod.send(s.topic("sensors.intersection"), key=k, value=v) for k, v in items]
        metas = await asyncio.gather(*futs)
    finally:
        await prod.stop()
    return [(m.partition, m.offset) for m in metas]


async def _collect(s, topic: str, want: int, timeout_s: float) -> list[dict]:
    out: list[dict] = []

    async def read() -> None:
        async for m in tail(s, s.topic(topic), from_beginning=True, limit=want):
            assert m.value is not None  # the worker publishes no tombstones here
            out.append(orjson.loads(m.value))

    try:
        await asyncio.wait_for(read(), timeout_s)
    except TimeoutError:
        pass
    # anything beyond `want` would be a duplicate or a stray: look briefly for more
    async for _ in tail(s, s.topic(topic), from_beginning=True, idle_timeout_s=2.0):
        pass
    return out


def test_ten_thousand_frames_with_one_percent_malformed(broker, settings_for, tmp_path: Path, record_timing) -> None:
    # idle close must outlast the gap between frames of one intersection while the worker is busy:
    # with every agent of role `all` reading frames it drains ~550 frames/s, and 3 s once closed
    # a last window before its final frames were read (Apache Kafka, loaded CI machine)
    s = settings_for(broker, aggregate_idle_close_s=10.0, aggregate_lateness_s=0.0)
    rng = random.Random(42)
    start = datetime.now(timezone.utc).replace(second=0, microsecond=0) - timedelta(minutes=60)
    valid: list[IntersectionFrame] = []
    items: list[tuple[bytes | None, bytes]] = []
    bad: dict[int, tuple[str, bytes]] = {}
    for f in frames(intersections=50, start=start, interval_s=15.0, steps=200, seed=11):
        value = encode(f)
        key: bytes | None = f.intersection_id.encode()
        draw = rng.random()
        if draw < 0.01:
            kind = MALFORMED_KINDS[len(bad) % len(MALFORMED_KINDS)]
            value = malformed(kind, value, rng)
            bad[len(items)] = (kind, value)
        elif draw < 0.012:  # a valid frame sent without its key: it could land on any partition
            key = None
            bad[len(items)] = ("keyless", value)
        else:
            valid.append(f)
        items.append((key, value))
    assert len(items) == 10_000 and 60 <= len(bad) <= 170 and 5 <= sum(k == "keyless" for k, _ in bad.values()) <= 40

    asyncio.run(ensure_topics(s))
    worker = WorkerProcess(
        settings_env(
            {
                **same_place(s),
                "aggregate_idle_close_s": s.aggregate_idle_close_s,
                "aggregate_lateness_s": s.aggregate_lateness_s,
            }
        ),
        log_file=tmp_path / "worker.log",
        web_port=free_port(),
    )
    ready = worker.start(timeout_s=90)
    record_timing(f"{broker.engine}_worker_ready_s", ready)
    try:
        positions = asyncio.run(_send(s, items))
        want = expected_aggregates(valid)
        got = asyncio.run(_collect(s, "aggregates", len(want), timeout_s=180))
        dead = asyncio.run(_collect(s, "deadletter", len(bad), timeout_s=30))
        metrics = worker.metrics()
    finally:
        code = worker.stop()
    assert code == 0, worker.log_tail()

    # aggregates: exactly the direct computation, each window once
    ids = [a["aggregate_id"] for a in got]
    assert len(ids) == len(set(ids)), "a window was emitted twice"
    assert {a["aggregate_id"]: (a["count_sum"], a["occupancy_mean"], a["frames"], a["speed_kmh_mean"]) for a in got} == want

    # dead letters: exactly the malformed records, each with reason, partition and offset
    assert len(dead) == len(bad)
    by_pos = {(d["partition"], d["offset"]): d for d in dead}
    for index, (kind, raw) in bad.items():
        d = by_pos[positions[index]]
        assert base64.b64decode(d["raw_b64"]) == raw
        assert d["source_topic"] == s.topic("sensors.intersection")
        assert d["reason"], d
        expected_code = {
            "garbage": {"not_json", "invalid"},
            "wrong_type": {"invalid"},
            "occupancy_out_of_range": {"out_of_range"},
            "missing_timestamp": {"missing_field"},
            "keyless": {"key_missing"},
        }[kind]
        assert d["reason_code"] in expected_code, (kind, d)

    # the counters rose by exactly as much
    dl_total = sum(v for k, v in metrics.items() if k.startswith("leitstand_deadletter_records_total{"))
    assert dl_total == len(bad)
    decoded = metrics[f'leitstand_records_decoded_total{{topic="{s.topic("sensors.intersection")}"}}']
    # Records Faust fetched while its flow was suspended at start-up are read again, and the
    # worker says so (wiring._Rewinder._after_resume); the states skip them, so the windows above
    # are exact, but the decode counter counts both reads. Only then may it exceed the valid
    # records (1 clean-clone CI run: 9,900 decodes of 9,899 valid records).
    if "records fetched while the flow was suspended were dropped; reading them again" in (tmp_path / "worker.log").read_text():
        assert decoded >= len(valid)
    else:
        assert decoded == len(valid)


def test_produce_and_tail_round_trip(broker, settings_for, tmp_path: Path) -> None:
    s = settings_for(broker)
    env = {"LEITSTAND_KAFKA_BOOTSTRAP_SERVERS": s.kafka_bootstrap_servers, "LEITSTAND_TOPIC_PREFIX": s.topic_prefix}
    asyncio.run(ensure_topics(s))
    lines = [orjson.dumps({"schema_version": 1, "pool_id": f"P{i % 3}", "n": i}) for i in range(25)]
    source = tmp_path / "in.jsonl"
    source.write_bytes(b"\n".join(lines) + b"\n")
    sent = leitstand("produce", "sensors.pool", "-f", str(source), env=env)
    assert sent.returncode == 0, sent.stderr
    assert "sent 25 records" in sent.stderr
    tailed = leitstand("tail", "sensors.pool", "--from-beginning", "-n", "25", "--meta", env=env, timeout=60)
    assert tailed.returncode == 0, tailed.stderr
    rows = [orjson.loads(line) for line in tailed.stdout.splitlines()]
    assert sorted(r["value"]["n"] for r in rows) == list(range(25))
    assert all(r["key"] == r["value"]["pool_id"] for r in rows)  # keyed by the topic's key field
    # per key, order is kept
    for pool in ("P0", "P1", "P2"):
        ns = [r["value"]["n"] for r in rows if r["key"] == pool]
        assert ns == sorted(ns)
