"""The demo in under a minute: city -> embedded broker -> worker -> alarms -> evaluation -> report.

The demo runs on the embedded broker only: that is what the demo is for (no Java, no Docker).
How it reads the worker's consumer lag before it judges is tested on both brokers.
"""

from __future__ import annotations

import asyncio
import random
import re
import socket
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from simulators.harness import demo
from simulators.harness.demo import LagProbe, _DemoSession, run_demo
from simulators.harness.run_evaluation import evaluate_run
from streams.broker import BrokerInfo
from streams.kafka_io import ensure_topics, produce_to
from streams.settings import Settings
from streams.stack import free_port

pytestmark = pytest.mark.integration


def test_short_demo_alarms_every_critical_pool_incident(tmp_path: Path) -> None:
    port = free_port()
    s = Settings(_env_file=None, state_dir=tmp_path / "state", cache_dir=tmp_path / "cache")
    city = {"intersections": 6, "pools": 2, "bus_lines": 1, "seed": 3, "camera_incidents_per_pool_day": 24.0}
    summary = run_demo(
        s,
        minutes=0.6,
        speed=500,
        report_dir=tmp_path / "report",
        port=port,
        city=city,
        start_at=datetime(2026, 7, 2, 5, 0, tzinfo=timezone.utc),
    )
    report = tmp_path / "report"
    evaluation = orjson.loads((report / "evaluation.json").read_bytes())
    alarms = evaluation["alarms"]
    assert alarms["critical_incidents"] >= 2, "the seed/rate should inject critical pool incidents"
    assert alarms["critical_alarmed"] == alarms["critical_incidents"], alarms["critical_missed"]
    assert summary["aggregates_received"] > 0 and summary["stopped_cleanly"]
    # the city sends nothing invalid: a dead letter is the pipeline's mistake (the imported
    # history's schedule once set the stream clock weeks back and the run's schedule died as skew)
    assert summary["deadletters_received"] == 0
    # one process per role, as in production: the alarm path shares no event loop with forecasting
    assert summary["worker_roles"] == ["critical", "water", "telemetry", "control"]
    assert all((report / f"worker-{role}.log").stat().st_size > 0 for role in summary["worker_roles"])
    # the city's timetable went onto transit.schedule like a real feed: the bus agent judged every position against it
    assert summary["timetable_trips"] > 0 and summary["buses"]["positions"].get("accepted", 0) > 0, summary["buses"]
    assert 0.0 <= summary["buses"]["punctuality"] <= 1.0
    assert "bunching episodes in the truth alarmed" in (report / "index.html").read_text()
    # the simulated operator acknowledged over the HTTP API: the lifecycle shows it
    assert evaluation["lifecycle"]["acknowledged"] >= 1
    # the report is self-contained: every image it references exists
    page = (report / "index.html").read_text()
    images = re.findall(r"src='(plots/[^']+)'", page)
    assert any("alarm_timeline" in i for i in images)
    assert all((report / i).stat().st_size > 10_000 for i in images)
    # judged only once the worker had consumed everything the city sent, and the report says so
    wait = summary["lag_wait"]
    assert wait["caught_up"] and wait["final_lag_total"] == 0, wait
    assert wait["final_lag"] and set(wait["final_lag"].values()) == {0}, wait
    assert any(t.startswith("sensors.") for t in wait["final_lag"]), "the city's topics are among those waited for"
    assert 0 <= wait["waited_s"] <= wait["bound_s"] + demo.SETTLE_S + 10 and wait["worker_reached"] is None
    assert evaluation["worker_lag"]["caught_up"] and evaluation["worker_lag"]["judged_late"] == []
    samples = [orjson.loads(line) for line in (report / "lag.jsonl").read_bytes().splitlines()]
    assert summary["lag_samples"] == len(samples) >= 3
    assert {r["phase"] for r in samples} == {"run", "wait"} and samples[-1]["lag"] == wait["final_lag"]
    assert any("consumer_lag" in i for i in images) and "consumer lag 0 on every input topic" in page
    # signal control in closed loop: every junction configured on the control worker decided,
    # the advisory ones had proposals approved over HTTP and others expire, delay against fixed time
    signals = summary["signals"]
    junctions = signals["intersections"]
    assert set(junctions) == {f"K{i}" for i in range(1, 7)}
    assert all(j["decisions"] > 0 and j["frames_answered"] > 0 for j in junctions.values()), junctions
    assert all(j["delay"]["fixed_veh_h"] > 0 and j["delay"]["delay_ratio"] is not None for j in junctions.values())
    advisory = [j for j in junctions.values() if j["mode"] == "advisory"]
    assert len(advisory) == 2 and all(j["approved"] > 0 and j["expired"] > 0 for j in advisory), advisory
    assert signals["plans_applied_to_city"] > 0 and signals["delay_ratio"] is not None
    assert evaluation["signals"]["available"] and evaluation["signals"]["intersections_with_decisions"] == 6
    assert "<h2>Signal control</h2>" in page and "delay controlled / fixed time" in page and "webster_recompute" in page
    assert "not run by the demo city" not in page
    # nothing left running: the broker's port is free again
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))


async def _behind_then_caught_up(settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """A consumer group that has committed 40 of 100 records on one topic and nothing on a
    second (which it has been assigned: the /metrics path), then all of both."""
    topic, other = settings.topic("sensors.pool"), settings.topic("sensors.bus")
    await ensure_topics(settings, [topic, other])
    await produce_to(settings, topic, ((b"k%d" % (i % 3), b"v%d" % i) for i in range(100)))
    await produce_to(settings, other, ((b"k", b"x%d" % i) for i in range(7)))
    group = f"{settings.app_id}-lagged"
    consumer = AIOKafkaConsumer(
        topic,
        other,
        bootstrap_servers=settings.kafka_bootstrap_servers,
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    probe = LagProbe(settings, [group])
    await probe.start()
    out: dict[str, Any] = {}
    try:
        read: list[Any] = []
        while len([m for m in read if m.topic == topic]) < 100 or len([m for m in read if m.topic == other]) < 7:
            for msgs in (await consumer.getmany(timeout_ms=1000)).values():
                read += msgs
        first = [m for m in read if m.topic == topic]
        # commit 40 records' worth: per partition the offset after the last of them
        partial: dict[TopicPartition, int] = {}
        for m in first[:40]:
            tp = TopicPartition(m.topic, m.partition)
            partial[tp] = max(partial.get(tp, 0), m.offset + 1)
        await consumer.commit(partial)
        out["behind"] = await probe.lag({other})
        # the first record not committed on each partition: the earliest of them is how far it got
        out["next_ts"] = min(m.timestamp for m in read if m.offset == partial.get(TopicPartition(m.topic, m.partition), 0))
        session = _DemoSession(settings, tmp_path / "r", {"critical": free_port()}, "t" * 32, random.Random(1))
        session.metric_topics = {other}
        monkeypatch.setattr(demo, "SETTLE_S", 0.5)
        out["timed_out"] = await session.wait_for_worker(probe, 0.0, 2.0, lambda note: None)
        # all of both (after the last record read: Tansu's listed end offsets fall short, see LagProbe)
        everything: dict[TopicPartition, int] = {}
        for m in read:
            tp = TopicPartition(m.topic, m.partition)
            everything[tp] = max(everything.get(tp, 0), m.offset + 1)
        await consumer.commit(everything)
        out["caught_up"] = await probe.lag({other})
        out["waited"] = await session.wait_for_worker(probe, 0.0, 20.0, lambda note: None)
        session.close()
    finally:
        await probe.close()
        await consumer.stop()
    return out


def test_lag_probe_reads_a_group_behind_then_caught_up(
    broker: BrokerInfo, settings_for: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = settings_for(broker)
    (tmp_path / "r").mkdir()
    out = asyncio.run(_behind_then_caught_up(settings, tmp_path, monkeypatch))
    pool, bus = settings.topic("sensors.pool"), settings.topic("sensors.bus")
    behind = out["behind"]
    assert sum(n for (t, _), n in behind.items() if t == pool) == 60, repr(behind)
    assert sum(n for (t, _), n in behind.items() if t == bus) == 7, "assigned but never committed: counts from 0"
    timed_out = out["timed_out"]
    assert not timed_out["caught_up"] and timed_out["final_lag"] == {"sensors.bus": 7, "sensors.pool": 60}, timed_out
    assert timed_out["final_lag_total"] == 67 and timed_out["waited_s"] >= 2.0
    # how far the group had got: the earliest timestamp of a record it had not committed
    reached = datetime.fromisoformat(timed_out["worker_reached"]).timestamp()
    assert reached * 1000 == pytest.approx(out["next_ts"], abs=1)
    assert set(out["caught_up"].values()) == {0} and {t for t, _ in out["caught_up"]} == {pool, bus}
    waited = out["waited"]
    assert waited["caught_up"] and waited["final_lag"] == {"sensors.bus": 0, "sensors.pool": 0} and waited["worker_reached"] is None
    assert waited["caught_up_after_s"] is not None and waited["caught_up_after_s"] < 10


def test_evaluation_marks_incidents_judged_while_the_worker_was_behind(tmp_path: Path) -> None:
    """A run judged when the wait ran out: incidents later than the worker had got are marked."""
    t0 = datetime(2026, 7, 2, 5, 0, tzinfo=timezone.utc).timestamp()
    summary = {
        "simulated_from": datetime.fromtimestamp(t0, tz=timezone.utc).isoformat(),
        "simulated_until": datetime.fromtimestamp(t0 + 86_400, tz=timezone.utc).isoformat(),
        "city": {"pools": 1},
        "lag_wait": {
            "caught_up": False,
            "waited_s": 120.0,
            "final_lag": {"cameras.pool": 0, "sensors.pool": 1234},
            "final_lag_total": 1234,
            "worker_reached": datetime.fromtimestamp(t0 + 40_000, tz=timezone.utc).isoformat(),
        },
    }
    (tmp_path / "summary.json").write_bytes(orjson.dumps(summary))
    rows = [
        {
            "subject_id": "pool-1",
            "kind": "swimmer",
            "start": t0 + s,
            "end": t0 + s + 60,
            "expected_alarm": "motionless",
            "severity": "critical",
        }
        for s in (10_000, 39_900, 60_000)
    ]
    (tmp_path / "truth.jsonl").write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in rows))
    lag = evaluate_run(tmp_path)["worker_lag"]
    assert not lag["caught_up"] and lag["final_lag_total"] == 1234
    assert [r["start"] - t0 for r in lag["judged_late"]] == [39_900, 60_000]
