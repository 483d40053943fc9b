"""The history sink through a real broker into a real PostgreSQL (both brokers).

Records of every history topic are published with the project's producer (encoded as the worker
encodes them, plus garbage the sink must skip); ``leitstand sink`` runs as its own process. The
issue's test: a sink killed with SIGKILL in the middle of a batch, again and again, and restarted
leaves exactly the published records in the database, none twice, none missing.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import orjson
import psycopg
import pytest

from detection.alarms import Alarm, AlarmChange, AlarmState, Transition
from streams.agents.alarm_lifecycle import alert_record
from streams.db.migrate import load_migrations, migrate
from streams.db.prune import prune, retention_rules
from streams.db.rows import TOPIC_TABLES
from streams.kafka_io import ensure_topics, producer
from streams.records import (
    BusPassage,
    DetectorAggregate,
    Forecast,
    ForecastPoint,
    PlanPhase,
    SignalAuditMessage,
    SignalPlanMessage,
    encode,
    encode_orjson,
)
from streams.settings import Settings
from streams.stack import settings_env
from tests.cli_helpers import leitstand, one_clean_line

pytestmark = [pytest.mark.integration, pytest.mark.slow]

Item = tuple[bytes | None, bytes | None, int]  # key, value, rows it must become (0: skipped)


def _aggregates(n: int, t0: datetime, tag: str = "") -> list[Item]:
    out: list[Item] = []
    for i in range(n):
        start = t0 + timedelta(minutes=i // 40)
        k = f"K{i % 40}"
        agg = DetectorAggregate(
            aggregate_id=f"{k}:d{i}{tag}:{int(start.timestamp())}",
            intersection_id=k,
            detector_id=f"d{i % 4}",
            window_start=start,
            window_end=start + timedelta(minutes=1),
            frames=4,
            count_sum=i % 50,
            occupancy_mean=(i % 10) / 10,
            speed_kmh_mean=None if i % 7 == 0 else 42.0,
            event_time=start,
        )
        out.append((k.encode(), encode(agg), 1))
    return out


def _every_topic(now: datetime) -> dict[str, list[Item]]:
    """Records of each history topic, plus what the sink must skip (garbage, tombstones)."""
    pools: list[Item] = [
        (
            b"bad-1",
            orjson.dumps(
                {
                    "schema_version": 1,
                    "event_time": now.isoformat(),
                    "pool_id": "bad-1",
                    "ph": {"value": 7.0 + i / 100, "unit": "pH"},
                    "visitors": i,
                }
            ),
            1,
        )
        for i in range(20)
    ]
    pools.append((b"bad-1", b'{"schema_version": 1, "pool_id": "bad-1"}', 0))  # dead-lettered by the worker
    plans: list[Item] = []
    for i in range(10):
        plan = SignalPlanMessage(
            event_time=now, intersection_id=f"K{i % 3}", plan_id=f"p@K{i % 3}~{i}", session="s1", time_s=float(i), origin_s=0.0,
            cyclic=True, phases=[PlanPhase("A", 30.0)], mode="automatic", status="active", controller="leitstand",
            version="1", rule="r", explanation={"i": i},
        )  # fmt: skip
        plans.append((f"K{i % 3}".encode(), encode(plan), 1))
    # a drive record of a signal whose street did not show it (police control): explained as such
    ignored = SignalPlanMessage(
        event_time=now, intersection_id="K9", plan_id="p@K9~0", session="s1", time_s=now.timestamp(), origin_s=0.0, cyclic=True,
        phases=[PlanPhase("A", 30.0)], mode="automatic", status="active", controller="leitstand", version="1", rule="r",
        explanation={}, not_following=True,
    )  # fmt: skip
    plans.append((b"K9", encode(ignored), 1))
    audits: list[Item] = [
        (
            b"K1",
            encode(SignalAuditMessage(event_time=now, intersection_id="K1", session="s1", action="set_mode", actor="vlz", detail={"i": i})),
            1,
        )
        for i in range(10)
    ]
    alarm_id = "water_ph@bad-1~0123456789ab"
    acks: list[Item] = [
        (
            alarm_id.encode(),
            orjson.dumps({"schema_version": 1, "event_time": now.isoformat(), "alert_id": alarm_id, "action": "acknowledge", "by": "a1"}),
            1,
        )
        for _ in range(5)
    ]
    acks.append((b"x", b"not json at all", 0))
    alerts: list[Item] = []
    steps: list[tuple[Transition, AlarmState]] = [("raised", "raised"), ("acknowledged", "acknowledged"), ("resolved", "resolved")]
    for i, (transition, state) in enumerate(steps * 3):
        alarm = Alarm(alarm_id=f"water_ph@bad-{i // 3}~0123456789ab", subject_id=f"bad-{i // 3}", subject_type="pool", kind="water_ph",
                      severity="major", state=state, message="pH", raised_at=now.timestamp(), evidence={"ph": 8.0})  # fmt: skip
        alerts.append((b"bad", alert_record(AlarmChange(transition, alarm), now.timestamp() + i), 1))
    alerts.append((b"bad", None, 0))  # a tombstone
    forecasts: list[Item] = []
    for i in range(5):
        points = [ForecastPoint((now + timedelta(hours=h)).isoformat(), 10.0, 8.0, 12.0) for h in range(24)]
        fc = Forecast(series_id=f"intersection/K{i}", model="seasonal_naive", model_version="1", origin=now.isoformat(), event_ids=[],
                      points=points, event_time=now.isoformat(), trigger="schedule")  # fmt: skip
        forecasts.append((f"intersection/K{i}".encode(), encode_orjson(fc), 24))
    aggregates = _aggregates(300, now - timedelta(hours=2))
    aggregates.append((b"K1", b"\x00garbage", 0))
    return {"aggregates": aggregates, "sensors.pool": pools, "signals.plans": plans, "signals.audit": audits,
            "alerts.acks": acks, "alerts": alerts, "forecasts": forecasts, "events.schedule": _schedule(now),
            "transit.passages": _passages(now)}  # fmt: skip


def _passages(now: datetime) -> list[Item]:
    """Two trips of a line at four stops, the second one bunched behind the first; a record the
    schema refuses (a punctuality nobody judged) is skipped."""
    items: list[Item] = []
    for n, trip in enumerate(("T0", "T1")):
        for k in range(4):
            p = BusPassage(
                schema_version=1, event_time=now + timedelta(seconds=120 * k + 100 * n), route_id="L1", direction_id=0,
                trip_id=trip, vehicle_id=f"bus-{trip}", stop_id=f"S{k}", stop_index=k,
                scheduled_at=now + timedelta(seconds=120 * k + 600 * n), delay_s=-500.0 * n, punctuality="early" if n else "on_time",
                headway_s=100.0 if n else None, scheduled_headway_s=600.0 if n else None, headway_kind="bunched" if n else None,
            )  # fmt: skip
            items.append((b"L1", encode(p), 1))
    wrong = orjson.loads(encode(p)) | {"punctuality": "sort of"}
    items.append((b"L1", orjson.dumps(wrong), 0))
    # T0 at S0 made again (the bus agent re-reading positions after a crash): the first row stays
    again = orjson.loads(items[0][1] or b"") | {"delay_s": 99.0, "event_time": (now + timedelta(seconds=30)).isoformat()}
    items.append((b"L1", orjson.dumps(again), 0))
    return items


def _schedule(now: datetime) -> list[Item]:
    """A concert announced, moved by a newer announcement, then an OLDER announcement read last
    (it must not win), a holiday, garbage: two rows, the concert as moved."""

    def concert(announced: datetime, starts: datetime) -> bytes:
        ends = starts + timedelta(hours=3)
        value = {"schema_version": 1, "event_time": announced.isoformat(), "venue_id": "stadium", "event_id": "c1", "kind": "concert"}
        return orjson.dumps({**value, "starts_at": starts.isoformat(), "ends_at": ends.isoformat()})

    day = now + timedelta(days=1)
    holiday = {"schema_version": 1, "event_time": now.isoformat(), "venue_id": "city", "event_id": "h1", "kind": "holiday",
               "starts_at": day.isoformat(), "ends_at": (day + timedelta(days=1)).isoformat(), "title": "Feiertag"}  # fmt: skip
    return [
        (b"stadium", concert(now - timedelta(hours=2), day), 0),
        (b"stadium", concert(now, day + timedelta(hours=1)), 1),
        (b"stadium", concert(now - timedelta(hours=3), day + timedelta(hours=5)), 0),
        (b"city", orjson.dumps(holiday), 1),
        (b"city", b"{not json", 0),
    ]


async def _publish(s: Settings, topic: str, items: list[Item]) -> list[tuple[int, int, int]]:
    """Send ``items`` to ``topic``; returns (partition, offset, rows expected) of each."""
    prod = producer(s)
    await prod.start()
    try:
        futs = [await prod.send(s.topic(topic), key=k, value=v) for k, v, _ in items]
        metas = await asyncio.gather(*futs)
    finally:
        await prod.stop()
    return [(m.partition, m.offset, rows) for m, (_, _, rows) in zip(metas, items)]


class Sink:
    """``leitstand sink`` as a child process."""

    def __init__(self, s: Settings, dsn: str, log_file: Path, **extra: Any) -> None:
        values = {"kafka_bootstrap_servers": s.kafka_bootstrap_servers, "topic_prefix": s.topic_prefix, "postgres_dsn": dsn, **extra}
        self.env = {**os.environ, **settings_env(values), "LEITSTAND_LOG_FORMAT": "json"}
        self.log_file = log_file
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with open(self.log_file, "ab") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", "streams.cli", "sink"], stdout=log, stderr=subprocess.STDOUT, env=self.env)

    def signal(self, sig: int, timeout_s: float = 30.0) -> int:
        assert self.proc is not None
        self.proc.send_signal(sig)
        return self.proc.wait(timeout_s)

    def log(self) -> str:
        return self.log_file.read_text(errors="replace")


def _wait(predicate: Callable[[], bool], timeout_s: float, what: str, sink: Sink) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        assert sink.proc is not None and sink.proc.poll() is None, f"sink exited: {sink.log()[-2000:]}"
        time.sleep(0.1)
    raise AssertionError(f"{what} not within {timeout_s} s; sink log: {sink.log()[-2000:]}")


def _query(dsn: str, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(dsn) as conn:
        return conn.execute(sql, params).fetchall()


def _offsets_done(dsn: str, s: Settings, published: dict[str, list[tuple[int, int, int]]]) -> bool:
    """Every partition's stored next offset has passed the last record published to it."""
    stored = {(t, p): o for t, p, o in _query(dsn, "SELECT topic, partition, next_offset FROM sink_offsets")}
    return all(stored.get((s.topic(topic), p), 0) > o for topic, items in published.items() for p, o, _ in items)


def _positions(dsn: str, table: str, source: str | None = None) -> Counter[tuple[int, int]]:
    """How often each source position occurs in ``table`` (a forecast's points: once per point)."""
    where = "" if source is None else " WHERE source = %s"
    args = () if source is None else (source,)
    return Counter((p, o) for p, o in _query(dsn, f"SELECT src_partition, src_offset FROM {table}{where}", *args))


def _expected(items: list[tuple[int, int, int]]) -> Counter[tuple[int, int]]:
    return Counter({(p, o): rows for p, o, rows in items if rows})


def test_sink_writes_every_topic_into_its_table_exactly_once(broker, settings_for, pg_database: str, tmp_path: Path) -> None:
    s = settings_for(broker)
    asyncio.run(ensure_topics(s, list(TOPIC_TABLES)))
    assert leitstand("db", "migrate", env={"LEITSTAND_POSTGRES_DSN": pg_database}).returncode == 0
    now = datetime.now(timezone.utc).replace(microsecond=0)
    records = _every_topic(now)
    published = {topic: asyncio.run(_publish(s, topic, items)) for topic, items in records.items()}
    sink = Sink(s, pg_database, tmp_path / "sink.log", sink_batch_within_s=0.2)
    sink.start()
    try:
        _wait(lambda: _offsets_done(pg_database, s, published), 60, "all records written", sink)
        for topic, items in published.items():
            table = TOPIC_TABLES[topic]
            source = topic if table == "audit_log" else None
            assert _positions(pg_database, table, source) == _expected(items), topic
        counts = dict(
            _query(pg_database, "SELECT 'aggregates', count(*) FROM aggregates UNION ALL SELECT 'forecasts', count(*) FROM forecasts")
        )
        assert counts == {"aggregates": 300, "forecasts": 5 * 24}
        events = _query(pg_database, "SELECT venue_id, event_id, starts_at FROM scheduled_events ORDER BY 1")
        assert events == [("city", "h1", now + timedelta(days=1)), ("stadium", "c1", now + timedelta(days=1, hours=1))]
        current = _query(pg_database, "SELECT alarm_id, state FROM alarms_current ORDER BY alarm_id")
        assert current == [(f"water_ph@bad-{i}~0123456789ab", "resolved") for i in range(3)]
        bunched = _query(pg_database, "SELECT trip_id, count(*) FROM bus_passages WHERE headway_kind = 'bunched' GROUP BY 1")
        assert bunched == [("T1", 4)]
        assert _query(pg_database, "SELECT delay_s FROM bus_passages WHERE trip_id = 'T0' AND stop_id = 'S0'") == [(0.0,)]
        flags = dict(_query(pg_database, "SELECT plan_id, not_following FROM signal_decisions"))
        assert flags.pop("p@K9~0") is True and set(flags.values()) == {None}  # the others do not say
        from streams.transparency.sources import signal_from_db

        told = asyncio.run(signal_from_db(Settings(_env_file=None, postgres_dsn=pg_database), "K9", now.timestamp() + 1))
        assert told["found"] and told["street_followed_plan"] is False, told
        assert asyncio.run(signal_from_db(Settings(_env_file=None, postgres_dsn=pg_database), "K1", now.timestamp() + 1))[
            "street_followed_plan"] is None  # fmt: skip
        # more records while it runs: picked up, nothing written twice
        more = asyncio.run(_publish(s, "aggregates", _aggregates(50, now, tag="b")))
        published["aggregates"] += more
        _wait(lambda: _offsets_done(pg_database, s, published), 30, "later records written", sink)
        assert _positions(pg_database, "aggregates") == _expected(published["aggregates"])
    finally:
        code = sink.signal(signal.SIGTERM)
    assert code == 0, sink.log()[-2000:]
    log = sink.log()
    assert "history sink stopped" in log and "Traceback" not in log
    assert '"undecodable record skipped' in log  # the garbage on aggregates and the tombstone on alerts, once each


def _sink_session_in_transaction(dsn: str) -> bool:
    rows = _query(dsn, "SELECT xact_start IS NOT NULL FROM pg_stat_activity WHERE application_name = 'leitstand-sink'")
    return any(r[0] for r in rows)


def test_sink_killed_mid_batch_and_restarted_loses_and_repeats_nothing(
    broker, settings_for, pg_database: str, tmp_path: Path, record_timing
) -> None:
    s = settings_for(broker)
    asyncio.run(ensure_topics(s, list(TOPIC_TABLES)))
    migrate(pg_database)
    t0 = datetime.now(timezone.utc).replace(second=0, microsecond=0) - timedelta(days=1)
    published = {"aggregates": asyncio.run(_publish(s, "aggregates", _aggregates(40_000, t0)))}
    total = len(published["aggregates"])
    sink = Sink(s, pg_database, tmp_path / "sink.log", sink_batch_max=500, sink_batch_within_s=0.2)
    count = lambda: int(_query(pg_database, "SELECT count(*) FROM aggregates")[0][0])  # noqa: E731
    kills_in_transaction = 0
    # at least three kills, and more (up to eight) until one lands inside an open transaction: on a
    # busy machine a batch's transaction can close between the look and the kill
    for cycle in range(8):
        if cycle >= 3 and kills_in_transaction:
            break
        before = count()
        sink.start()
        _wait(lambda before=before: count() >= before + 2_000, 60, f"progress in cycle {cycle}", sink)  # type: ignore[misc]
        deadline = time.monotonic() + 10
        while not _sink_session_in_transaction(pg_database) and time.monotonic() < deadline:
            time.sleep(0.002)
        in_tx = _sink_session_in_transaction(pg_database)
        assert sink.signal(signal.SIGKILL) == -signal.SIGKILL
        kills_in_transaction += in_tx
        if cycle == 1:  # records published while no sink runs are picked up on restart
            published["aggregates"] += asyncio.run(_publish(s, "aggregates", _aggregates(2_000, t0, tag="late")))
    assert count() < len(published["aggregates"]), "the kills came too late to interrupt anything"
    started, left = time.monotonic(), len(published["aggregates"]) - count()
    sink.start()
    try:
        _wait(lambda: _offsets_done(pg_database, s, published), 120, "all records written after the restarts", sink)
        rate = left / (time.monotonic() - started)
    finally:
        sink.signal(signal.SIGTERM)
    positions = _positions(pg_database, "aggregates")
    assert positions == _expected(published["aggregates"])  # neither a duplicate nor a missing row
    assert sum(positions.values()) == total + 2_000
    ids = _query(pg_database, "SELECT count(*), count(DISTINCT aggregate_id) FROM aggregates")[0]
    assert ids == (total + 2_000, total + 2_000)
    assert kills_in_transaction >= 1, "no kill hit the sink inside a transaction"
    record_timing(f"history_sink_{broker.engine}_catch_up_rows_per_s", rate)


def test_migrate_is_idempotent_and_refuses_an_edited_migration(pg_database: str, tmp_path: Path) -> None:
    env = {"LEITSTAND_POSTGRES_DSN": pg_database}
    first, again = leitstand("db", "migrate", env=env), leitstand("db", "migrate", env=env)
    assert first.returncode == 0 and "applied 0001_history_schema" in first.stdout
    assert "applied 0002_queues_and_scheduled_events" in first.stdout
    assert "applied 0003_street_not_following" in first.stdout
    assert "applied 0004_bus_passages" in first.stdout
    assert again.returncode == 0 and f"already up to date (schema version {len(load_migrations())})" in again.stdout
    tables = {r[0] for r in _query(pg_database, "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'")}
    assert {*TOPIC_TABLES.values(), "sink_offsets", "schema_migrations", "alarms_current"} <= tables
    edited = [m.__class__(m.version, m.name, m.sql + "\n-- edited\n") for m in load_migrations()]
    with pytest.raises(Exception, match="was changed after it was applied"):
        migrate(pg_database, edited)


def test_a_sink_started_before_its_topics_exist_finds_them_and_stops_when_told(
    broker, settings_for, pg_database: str, tmp_path: Path
) -> None:
    """The compose stack may start the sink before the workers create the topics. It used to wait
    in aiokafka's getmany for an assignment that never came: no history written, and deaf to
    SIGTERM. Now it looks for the topics every round until it has some, then writes."""
    s = settings_for(broker)
    migrate(pg_database)
    sink = Sink(s, pg_database, tmp_path / "sink.log", sink_batch_within_s=0.2)
    sink.start()
    try:
        _wait(lambda: "history topics missing" in sink.log(), 30, "the sink said the topics are missing", sink)
        time.sleep(2.0)  # a few rounds without topics
        asyncio.run(ensure_topics(s, list(TOPIC_TABLES)))
        published = asyncio.run(_publish(s, "transit.passages", _passages(datetime.now(timezone.utc))))
        _wait(lambda: _query(pg_database, "SELECT count(*) FROM bus_passages")[0][0] == 8, 60, "the passages written", sink)
        assert sink.log().count("history topics missing") == 1  # said once, not every round
    finally:
        started = time.monotonic()
        code = sink.signal(signal.SIGTERM)
    assert code == 0 and time.monotonic() - started < 10, sink.log()[-2000:]
    assert _positions(pg_database, "bus_passages") == _expected(published)


def test_a_sink_newer_than_its_database_refuses_to_start(broker, settings_for, pg_database: str, tmp_path: Path) -> None:
    """An upgrade that forgot ``db migrate``: on schema v3 the v4 sink would have every bus
    passage refused by PostgreSQL and skipped. It stops in one line instead, and runs once migrated."""
    s = settings_for(broker)
    asyncio.run(ensure_topics(s, list(TOPIC_TABLES)))
    migrate(pg_database, load_migrations()[:3])
    env = settings_env({"kafka_bootstrap_servers": s.kafka_bootstrap_servers, "topic_prefix": s.topic_prefix, "postgres_dsn": pg_database})
    line = one_clean_line(leitstand("sink", env=env, cwd=tmp_path, timeout=60))
    assert f"the history schema is version 3, this sink writes version {len(load_migrations())}" in line
    assert "leitstand db migrate" in line
    assert migrate(pg_database)[0].name == "bus_passages"
    sink = Sink(s, pg_database, tmp_path / "sink.log", sink_batch_within_s=0.2)
    sink.start()
    try:
        _wait(lambda: "history sink assigned" in sink.log(), 30, "the sink started on the migrated database", sink)
    finally:
        assert sink.signal(signal.SIGTERM) == 0, sink.log()[-2000:]


def test_a_database_that_refuses_the_sink_stops_it_and_nothing_is_skipped(broker, settings_for, pg_database: str, tmp_path: Path) -> None:
    """Stop 54's probe: a sink without INSERT on a table, or on a schema newer than it knows,
    skipped every record as "refused by the database" and committed past it (history lost); one
    aggregate whose id makes an index row over 8 KB was retried forever (history stopped). Now the
    first stops the sink in one line with nothing skipped, the second skips that record only."""
    import random
    import string
    import uuid

    s = settings_for(broker)
    asyncio.run(ensure_topics(s, list(TOPIC_TABLES)))
    migrate(pg_database)
    role = f"sink_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(pg_database, autocommit=True) as conn:
        conn.execute(f"CREATE ROLE {role} LOGIN")
        conn.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {role}")
        conn.execute(f"GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO {role}")
        conn.execute(f"REVOKE INSERT ON aggregates FROM {role}")
    limited = pg_database.replace("postgres@", f"{role}@", 1)
    assert limited != pg_database
    t0 = datetime.now(timezone.utc).replace(second=0, microsecond=0) - timedelta(hours=1)
    items = _aggregates(6, t0)
    huge = DetectorAggregate(
        aggregate_id=f"X:d0:{int(t0.timestamp())}",
        intersection_id="".join(random.Random(7).choices(string.ascii_letters, k=20_000)),  # random: no compression fits it
        detector_id="d0",
        window_start=t0,
        window_end=t0 + timedelta(minutes=1),
        frames=1,
        count_sum=1,
        occupancy_mean=0.1,
        speed_kmh_mean=None,
        event_time=t0,
    )
    items.insert(3, (b"X", encode(huge), 0))
    published = asyncio.run(_publish(s, "aggregates", items))
    env = settings_env({"kafka_bootstrap_servers": s.kafka_bootstrap_servers, "topic_prefix": s.topic_prefix, "postgres_dsn": limited})
    try:
        proc = leitstand("sink", env=env, cwd=tmp_path, timeout=90)
        assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
        line = proc.stderr.strip().splitlines()[-1]  # after the sink's log lines
        assert "the database refuses the history's writes (permission denied for table aggregates" in line, line
        assert "nothing was skipped" in line
        assert _query(pg_database, "SELECT count(*) FROM sink_offsets WHERE topic = %s", s.topic("aggregates"))[0][0] == 0
        with psycopg.connect(pg_database, autocommit=True) as conn:
            conn.execute(f"GRANT INSERT ON aggregates TO {role}")
        sink = Sink(s, limited, tmp_path / "sink.log", sink_batch_within_s=0.2)
        sink.start()
        try:
            _wait(lambda: _offsets_done(pg_database, s, {"aggregates": published}), 60, "every aggregate done", sink)
        finally:
            assert sink.signal(signal.SIGTERM) == 0, sink.log()[-2000:]
        assert _positions(pg_database, "aggregates") == _expected(published)  # the huge one skipped, the others written
        assert "database refused a record; skipped" in sink.log()
    finally:
        with psycopg.connect(pg_database, autocommit=True) as conn:
            conn.execute(f"DROP OWNED BY {role}")
            conn.execute(f"DROP ROLE {role}")

    # a schema newer than this release: migrate and the sink refuse in one line, touching nothing
    with psycopg.connect(pg_database, autocommit=True) as conn:
        conn.execute("INSERT INTO schema_migrations (version, name, sha256) VALUES (%s, 'future', 'x')", (len(load_migrations()) + 1,))
    env = {"LEITSTAND_POSTGRES_DSN": pg_database}
    newer = f"the history schema is version {len(load_migrations()) + 1}, newer than this"
    assert newer in one_clean_line(leitstand("db", "migrate", env=env))
    env = settings_env({"kafka_bootstrap_servers": s.kafka_bootstrap_servers, "topic_prefix": s.topic_prefix, "postgres_dsn": pg_database})
    proc = leitstand("sink", env=env, cwd=tmp_path, timeout=60)
    assert proc.returncode == 1 and newer in proc.stderr.strip().splitlines()[-1], proc.stderr


def test_commands_without_a_database_fail_in_one_line(tmp_path: Path) -> None:
    for args in (("db", "migrate"), ("db", "prune"), ("sink",)):
        line = one_clean_line(leitstand(*args, env={"LEITSTAND_POSTGRES_DSN": ""}, cwd=tmp_path))
        assert "LEITSTAND_POSTGRES_DSN" in line
    line = one_clean_line(leitstand("db", "migrate", env={"LEITSTAND_POSTGRES_DSN": "postgresql://u:secretpw@127.0.0.1:1/x"}, cwd=tmp_path))
    assert "cannot connect to PostgreSQL" in line and "secretpw" not in line
    line = one_clean_line(leitstand("db", "prune", env={"LEITSTAND_RETENTION_AUDIT_LOG_DAYS": "90"}, cwd=tmp_path))
    assert "183" in line


def test_prune_deletes_by_age_per_table_and_an_alarm_as_a_whole(pg_database: str) -> None:
    migrate(pg_database)
    now = datetime(2026, 12, 1, tzinfo=timezone.utc)
    old, recent = now - timedelta(days=200), now - timedelta(days=10)
    with psycopg.connect(pg_database) as conn:
        for i, t in enumerate([old, old, recent]):
            conn.execute(
                "INSERT INTO aggregates VALUES (%s, 'K1', 'd', %s, %s, 1, 1, 0.5, NULL, 0, %s)", (f"a{i}", t, t + timedelta(minutes=1), i)
            )
            conn.execute("INSERT INTO audit_log VALUES (%s, 'signals.audit', 'K1', 's', 'set_mode', 'x', '{}', 0, %s)", (t, i))
            conn.execute(
                "INSERT INTO bus_passages VALUES (%s, 'L1', 0, 'T', 'v', 'S', %s, %s, 0.0, 'on_time', NULL, NULL, NULL, 0, %s)",
                (t, i, t, i),
            )
        # alarm A: raised long ago, resolved recently -> kept whole; alarm B: all old -> deleted
        for off, (alarm, t) in enumerate([("A", now - timedelta(days=400)), ("A", recent), ("B", now - timedelta(days=400))]):
            conn.execute(
                "INSERT INTO alarm_transitions VALUES (%s, 'raised', %s, 'p', 'pool', 'k', 'major', 'open', 0, 'm', %s,"
                " NULL, NULL, NULL, NULL, NULL, '{}', 0, %s)",
                (t, alarm, t, off),
            )
    rules = retention_rules(Settings(_env_file=None))
    dry = {p.table: p.rows for p in prune(pg_database, rules, now=now, dry_run=True)}
    assert dry == {"aggregates": 2, "pool_readings": 0, "forecasts": 0, "signal_decisions": 0, "audit_log": 2, "alarm_transitions": 1,
                   "scheduled_events": 0, "bus_passages": 2}  # fmt: skip
    assert _query(pg_database, "SELECT count(*) FROM aggregates")[0][0] == 3  # a dry run deletes nothing
    done = {p.table: p.rows for p in prune(pg_database, rules, now=now)}
    assert done == dry
    assert _query(pg_database, "SELECT alarm_id, count(*) FROM alarm_transitions GROUP BY alarm_id") == [("A", 2)]
    assert _query(pg_database, "SELECT aggregate_id FROM aggregates") == [("a2",)]
