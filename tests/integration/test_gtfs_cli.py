"""``leitstand gtfs city|load`` and ``leitstand ingest gtfs-rt`` as an operator runs them: the
real console script, a real broker, a real GTFS-Realtime protobuf built with the bindings."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import orjson
import pytest
from google.transit import gtfs_realtime_pb2

from streams.kafka_io import ensure_topics, tail
from tests.cli_helpers import leitstand, one_clean_line

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def read_all(s: Any, topic: str) -> list[tuple[bytes | None, dict[str, Any]]]:
    async def go() -> list[tuple[bytes | None, dict[str, Any]]]:
        return [(m.key, orjson.loads(m.value or b"")) async for m in tail(s, s.topic(topic), from_beginning=True, idle_timeout_s=0.5)]

    return asyncio.run(go())


def feed(path: Path, stamps: list[int]) -> Path:
    msg = gtfs_realtime_pb2.FeedMessage()
    msg.header.gtfs_realtime_version = "2.0"
    msg.header.timestamp = max(stamps)
    for n, stamp in enumerate(stamps):
        v = msg.entity.add(id=f"e{n}").vehicle
        v.vehicle.id, v.trip.trip_id, v.trip.route_id = f"bus-{n}", f"T{n}", "L1"
        v.position.latitude, v.position.longitude = 48.1, 11.5 + n / 100
        v.current_stop_sequence, v.timestamp = 3, stamp
    path.write_bytes(msg.SerializeToString())
    return path


def test_city_feed_load_and_realtime_ingest(broker: Any, settings_for: Any, tmp_path: Path) -> None:
    s = settings_for(broker)
    asyncio.run(ensure_topics(s, ["sensors.bus"]))
    env = {"LEITSTAND_KAFKA_BOOTSTRAP_SERVERS": s.kafka_bootstrap_servers, "LEITSTAND_TOPIC_PREFIX": s.topic_prefix}
    made = leitstand("gtfs", "city", str(tmp_path / "city.zip"), "--start", "2026-03-03T05:00+01:00", "--hours", "2", env=env)
    assert made.returncode == 0, made.stderr
    loaded = leitstand("gtfs", "load", str(tmp_path / "city.zip"), env=env)
    assert loaded.returncode == 0, loaded.stderr
    summary = json.loads(loaded.stdout)
    assert summary["routes"] == 2 and summary["sent"] == summary["trips"] > 10
    on_topic = read_all(s, "transit.schedule")
    assert len(on_topic) == summary["trips"] and all(k == v["trip_id"].encode() for k, v in on_topic)

    now = int(time.time())
    rt = feed(tmp_path / "vp.pb", [now - 20, now - 10])
    sent = leitstand("ingest", "gtfs-rt", str(rt), env=env)
    assert sent.returncode == 0 and "sent 2 positions" in sent.stderr, sent.stderr
    # polling an unchanged file twice sends nothing more
    again = leitstand("ingest", "gtfs-rt", str(rt), "--interval", "1", "--count", "2", env=env)
    assert again.returncode == 0 and again.stderr.count("sent 2 positions") == 1 and "sent 0 positions" in again.stderr
    positions = read_all(s, "sensors.bus")
    assert sorted(k or b"" for k, _ in positions) == [b"bus-0", b"bus-0", b"bus-1", b"bus-1"]
    assert {v["trip_id"] for _, v in positions} == {"T0", "T1"}

    (tmp_path / "junk.pb").write_bytes(b"\xff\xfe not protobuf")
    assert "not a GTFS-Realtime FeedMessage" in one_clean_line(leitstand("ingest", "gtfs-rt", str(tmp_path / "junk.pb"), env=env))
    assert "no such file" in one_clean_line(leitstand("gtfs", "load", str(tmp_path / "nope.zip"), "--dry-run", env=env))
    assert "only http" in one_clean_line(leitstand("ingest", "gtfs-rt", "ftp://x/y", env=env))
