"""Every panel's query of the three dashboards, run against a real PostgreSQL and a real
Prometheus after a short real pipeline run (Grafana's server cannot run here; this is what it
would ask).

The run: a fresh database migrated with ``leitstand db migrate``; a worker of role ``all`` and
``leitstand sink`` as child processes on a real broker; Prometheus scraping the worker once a
second. Inputs, all through Kafka: the signal model of K101 in advisory mode and its live frames
(aggregates, plans, pending proposals, frame_to_decision latency), a burst of K7 frames in which
one approach jams (an incident alarm), water readings of P1 with pH out of band and every DIN
parameter and visitors (water alarm), a camera alarm acknowledged over HTTP (ack latency, audit
log), 54 hours of hourly K1 aggregates and a match announced at a venue next to K1 (forecasts,
an event-triggered refit), an event at the stadium and a public holiday (venue ``city``) inside
the dashboards' time range (the Planung annotations), then the hours after the forecast origin
so the forecast is scored (forecast error by series kind) and K1's hours a week before them
at a lower level (the weekly seasonal naive of the accuracy panel). K101's and K7's frames carry
queues (the queue panel). A GTFS feed of one bus line and 50 minutes of its buses' positions, one
trip 7 minutes late (stop passages with headways, a bunching and a gap alarm: the bus panels).
One partition per topic: the bus agent compares buses of a line in event-time order only within
a batch (docs/transit.md), and the positions are sent at once.

Then each SQL query is expanded as Grafana's PostgreSQL datasource would for the run's time
range (streams/dashboards.py) and executed; each PromQL query goes through Prometheus's
/api/v1/query_range. A query that returns nothing, or lacks a column or label its panel reads,
fails the test.
"""

from __future__ import annotations

import asyncio
import math
import os
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import psycopg
import pytest

from streams.dashboards import (
    PanelQuery,
    SqlContext,
    TimeRange,
    auto_interval_ms,
    expand_promql,
    expand_sql,
    load,
    queries,
    variable_queries,
)
from streams.kafka_io import ensure_topics, producer
from streams.records import DetectorAggregate, ScheduledEvent, encode
from streams.stack import WorkerProcess, free_port, same_place, settings_env
from streams.transit_codec import encode_schedule, load_feed

from .test_alarm_lifecycle import _send, _wait_for
from .test_buses import positions, write_feed
from .test_metrics import _camera_alarm_acked
from .test_signal_control import COUNTS, MODEL, approval

# the subject is what reaches PostgreSQL / Prometheus and how it is queried, not the broker
# path (covered on both engines by test_pipeline, test_sinks and the others): Tansu only, ~35 s less
pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.parametrize("broker", ["tansu"], indirect=True)]

TOKEN = "dashboards-token-" + "x" * 32
HOUR = timedelta(hours=1)
#: the hour the history of K1 ends in (the forecast is made after it and scored by the next)
CUT = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - 6 * HOUR
HISTORY_H = 54
SCRAPE_S = 1.0


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, tz=UTC).isoformat()


def _k1_hours(first: datetime, hours: int, level: float = 1.0) -> list[tuple[bytes, bytes]]:
    """Hourly K1 aggregates (what the aggregation agent would have written), a daily profile
    scaled by ``level`` (a week with less traffic: the seasonal naive is not exact)."""
    out = []
    for h in range(hours):
        t = first + h * HOUR
        profile = 200 + 300 * math.exp(-(((t.hour - 8) / 2) ** 2)) + 350 * math.exp(-(((t.hour - 17) / 2) ** 2))
        vehicles = int(level * profile)
        agg = DetectorAggregate(
            aggregate_id=f"K1/D1/{int(t.timestamp())}",
            intersection_id="K1",
            detector_id="D1",
            window_start=t,
            window_end=t + timedelta(minutes=1),
            frames=4,
            count_sum=vehicles,
            occupancy_mean=0.12,
            speed_kmh_mean=41.0,
            event_time=t + timedelta(minutes=1),
        )
        out.append((b"K1", encode(agg)))
    return out


async def _send_raw(s: Any, topic: str, items: list[tuple[bytes, bytes]]) -> None:
    prod = producer(s)
    await prod.start()
    try:
        await asyncio.gather(*[await prod.send(s.topic(topic), key=k, value=v) for k, v in items])
    finally:
        await prod.stop()


def _frame(t: float, iid: str, detectors: list[dict[str, Any]], interval_s: float = 1.0) -> dict[str, Any]:
    """A frame that ended at ``t``."""
    return {
        "schema_version": 1,
        "event_time": _iso(t - interval_s),
        "intersection_id": iid,
        "interval_s": interval_s,
        "detectors": detectors,
    }


def _k101(t: float, interval_s: float = 1.0, iid: str = "K101") -> dict[str, Any]:
    """K101's detectors with the signal test's counts (per 5 s: light traffic Webster can plan for)."""
    scale = interval_s / 5.0
    dets = [
        {"detector_id": k, "count": round(v * scale), "occupancy": 0.1, "speed_kmh": 38.0, "queue_veh": 1.5 + i}
        for i, (k, v) in enumerate(COUNTS.items())
    ]
    return _frame(t, iid, dets, interval_s)


def _k7_burst(now: float) -> list[dict[str, Any]]:
    """30 one-second frames of K7 ending now: 24 normal, then approach A jams (occupancy 85 %,
    speed 8 km/h) while B and C flow: an incident after the detector's warm-up."""
    frames = []
    for i in range(30):
        jam = i >= 24
        dets: list[dict[str, Any]] = [
            {
                "detector_id": "A",
                "count": 1 if jam else 3,
                "occupancy": 0.85 if jam else 0.1,
                "speed_kmh": 8.0 if jam else 40.0,
                "queue_veh": 14.0 if jam else 1.0,
            },  # fmt: skip
            {"detector_id": "B", "count": 3, "occupancy": 0.1, "speed_kmh": 40.0},
            {"detector_id": "C", "count": 3, "occupancy": 0.12, "speed_kmh": 42.0},
        ]
        frames.append(_frame(now - 30 + i, "K7", dets))
    return frames


def _reading(t: float, i: int) -> dict[str, Any]:
    """Every DIN 19643 parameter of P1 and the visitors; pH out of the band after 2 s."""
    q = {
        "free_chlorine": (0.45, "mg/l"),
        "combined_chlorine": (0.1, "mg/l"),
        "ph": (7.9 if i >= 2 else 7.1, "pH"),
        "redox": (760.0, "mV"),
        "temperature": (27.5, "degC"),
        "turbidity": (0.2, "FNU"),
    }
    values = {k: {"value": v, "unit": u} for k, (v, u) in q.items()}
    return {"schema_version": 1, "event_time": _iso(t), "pool_id": "P1", "visitors": 40 + i, **values}


def _live(s: Any, seconds: int) -> None:
    for i in range(seconds):
        now = time.time()
        asyncio.run(_send(s, "sensors.intersection", [_k101(now)], "intersection_id"))
        asyncio.run(_send(s, "sensors.pool", [_reading(now, i)], "pool_id"))
        time.sleep(max(0.0, 1.0 - (time.time() - now)))


def _schedule_in_range() -> list[tuple[bytes, bytes]]:
    """A concert at the stadium and a public holiday of the city inside the dashboards' range;
    the concert is announced twice (moved by an hour): the table keeps the newest announcement."""
    day = (CUT - 24 * HOUR).replace(hour=0)
    now = datetime.now(UTC)
    common: dict[str, Any] = {"schema_version": 1, "venue_id": "stadium", "event_id": "concert-1", "kind": "concert"}
    first = ScheduledEvent(**common, event_time=now - HOUR, starts_at=CUT - 30 * HOUR, ends_at=CUT - 27 * HOUR, title="Konzert")
    moved = ScheduledEvent(
        **common, event_time=now, starts_at=CUT - 29 * HOUR, ends_at=CUT - 26 * HOUR, title="Konzert", expected_attendance=8_000
    )
    holiday = ScheduledEvent(
        schema_version=1, event_time=now, venue_id="city", event_id="feiertag-1", kind="holiday", starts_at=day,
        ends_at=day + 24 * HOUR, title="Feiertag",
    )  # fmt: skip
    return [(b"stadium", encode(first)), (b"stadium", encode(moved)), (b"city", encode(holiday))]


def _forecasts_with_event(s: Any) -> list[dict[str, Any]]:
    """Wait for K1's scheduled forecast, announce a match (an event-triggered refit follows),
    a concert and a holiday in the range."""
    _wait_for(s, "forecasts", lambda fs: any(f["series_id"] == "intersection/K1" for f in fs), 150)
    kickoff = (datetime.now(UTC) + 4 * HOUR).replace(minute=0, second=0, microsecond=0)
    match = ScheduledEvent(
        schema_version=1,
        event_time=datetime.now(UTC),
        venue_id="stadium",
        event_id="match-1",
        kind="match",
        starts_at=kickoff,
        ends_at=kickoff + 2 * HOUR,
        expected_attendance=20_000,
    )
    asyncio.run(_send_raw(s, "events.schedule", [(b"stadium", encode(match)), *_schedule_in_range()]))
    return _wait_for(s, "forecasts", lambda fs: any(f["trigger"] == "event" for f in fs), 120)


def _db(dsn: str, sql: str) -> tuple[list[str], list[tuple[Any, ...]]]:
    with psycopg.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute(sql.encode())  # bytes: a query Grafana sends as text, no parameters
        return [c.name for c in cur.description or []], cur.fetchall()


def _wait_rows(dsn: str, sql: str, timeout_s: float, what: str, sink: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if _db(dsn, sql)[1][0][0]:
            return
        assert sink.poll() is None, f"sink exited: {log.read_text()[-2000:]}"
        time.sleep(0.5)
    raise AssertionError(f"{what}: not in the database within {timeout_s} s; sink log: {log.read_text()[-1500:]}")


def _query_range(base: str, expr: str, rng: TimeRange, step_s: float) -> list[dict[str, Any]]:
    params = {"query": expr, "start": str(rng.start.timestamp()), "end": str(rng.end.timestamp()), "step": f"{step_s:g}"}
    url = f"{base}/api/v1/query_range?{urllib.parse.urlencode(params)}"
    with urllib.request.urlopen(url, timeout=10) as r:  # noqa: S310 (loopback)
        body = orjson.loads(r.read())
    assert body["status"] == "success", body
    return list(body["data"]["result"])


def _check_sql(dsn: str, q: PanelQuery, ctx: SqlContext) -> tuple[list[str], int]:
    sql = expand_sql(q.text, ctx)
    try:
        columns, rows = _db(dsn, sql)
    except psycopg.Error as exc:
        raise AssertionError(f"{q.where}: {exc}\n{sql}") from None
    assert rows, f"{q.where}: no rows\n{sql}"
    missing = set(q.reads) - set(columns)
    assert not missing, f"{q.where}: the panel reads {sorted(missing)}, the query returns {columns}"
    empty = [c for i, c in enumerate(columns) if all(r[i] is None for r in rows)]
    assert not empty, f"{q.where}: columns without a single value: {empty}\n{sql}"
    if q.fmt == "time_series":
        numeric = [i for i, c in enumerate(columns) if c not in ("time", "metric") and isinstance(rows[0][i], (int, float))]
        assert numeric, f"{q.where}: a time series without a numeric value column: {columns} {rows[0]}"
    return columns, len(rows)


def _check_promql(base: str, q: PanelQuery, rng: TimeRange) -> int:
    interval_ms = auto_interval_ms(rng, 1000, min_interval=f"{int(SCRAPE_S)}s")
    expr = expand_promql(q.text, rng, interval_ms, int(SCRAPE_S * 1000))
    series = _query_range(base, expr, rng, interval_ms / 1000)
    assert series, f"{q.where}: no series for {expr}"
    finite = [s for s in series if any(math.isfinite(float(v)) for _, v in s["values"])]
    assert finite, f"{q.where}: only NaN values for {expr}: {series}"
    for s in finite:
        missing = set(q.reads) - set(s["metric"])
        assert not missing, f"{q.where}: the legend reads {sorted(missing)}, the series has {s['metric']}"
    return len(finite)


def _bus_feed(s: Any, tmp_path: Path) -> list[tuple[bytes, bytes]]:
    """The test_buses line: its feed onto ``transit.schedule`` (before the worker starts, so its
    first read of the timetable has it); returns the positions, to be sent later."""
    now = datetime.now(UTC)
    day_start = (now - 2 * HOUR).replace(hour=0, minute=0, second=0, microsecond=0)
    first_s = int((now - timedelta(minutes=50) - day_start).total_seconds())
    feed = tmp_path / "feed.zip"
    write_feed(feed, day_start, first_s)
    asyncio.run(_send_raw(s, "transit.schedule", encode_schedule(load_feed(feed).records)))
    return [(r["vehicle_id"].encode(), orjson.dumps(r)) for r in positions(day_start.timestamp(), first_s)]


def _k102_mandate(s: Any, k101: dict[str, Any], t0: float) -> None:
    """K102, a copy of K101 under leitstand in advisory mode: it asks for a mandate to drive
    (signals.advisory) and an operator approves it, for the panel of running mandates."""
    config = {**k101, "intersection_id": "K102", "model": {**MODEL, "id": "K102"}, "controller": "leitstand", "params": {}}
    asyncio.run(_send(s, "signals.config", [config], "intersection_id"))
    _wait_for(s, "signals.audit", lambda rs: any(a["action"] == "control_started" and a["intersection_id"] == "K102" for a in rs), 30)
    asyncio.run(_send(s, "sensors.intersection", [_k101(t0 + 5 * (i + 1), 5.0, "K102") for i in range(30)], "intersection_id"))
    plans = _wait_for(s, "signals.plans", lambda rs: any(p["intersection_id"] == "K102" and p.get("mandate_s") for p in rs), 30)
    request = next(p for p in plans if p["intersection_id"] == "K102" and p.get("mandate_s"))
    asyncio.run(_send(s, "signals.approvals", [approval("K102", request["plan_id"], "operator-7")], "intersection_id"))


def _worker_env(s: Any) -> dict[str, str]:
    return settings_env(
        {
            **same_place(s),
            "topic_partitions": 1,
            "bus_stale_s": 7200.0,  # the positions are up to 50 min old when sent
            "bus_priority_stops": {"S3": ["K101", "A"]},  # the late trip asks K101 (advisory: refused)
            "api_token": TOKEN,
            "aggregate_window_s": 2,
            "aggregate_lateness_s": 0.0,
            "aggregate_idle_close_s": 3.0,
            "water_min_duration_s": 1.0,
            "pools": {"P1": {"basin_type": "swimmer", "capacity": 120}},
            "venues": {"stadium": ["intersection/K1"]},
            "forecast_min_history_h": 48,
            "forecast_history_days": 7,
            "forecast_refresh_s": 3600,
        }
    )


def _start_sink(s: Any, dsn: str, log: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        **settings_env({"kafka_bootstrap_servers": s.kafka_bootstrap_servers, "topic_prefix": s.topic_prefix, "postgres_dsn": dsn}),
    }
    env["LEITSTAND_SINK_BATCH_WITHIN_S"] = "0.2"
    with open(log, "ab") as out:
        return subprocess.Popen([sys.executable, "-m", "streams.cli", "sink"], stdout=out, stderr=subprocess.STDOUT, env=env)


def _migrate(dsn: str) -> None:
    env = {**os.environ, "LEITSTAND_POSTGRES_DSN": dsn}
    done = subprocess.run([sys.executable, "-m", "streams.cli", "db", "migrate"], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def _run_pipeline(s: Any, dsn: str, web_port: int, sink: subprocess.Popen[bytes], sink_log: Path, buses: list[tuple[bytes, bytes]]) -> None:
    """Everything the dashboards show, through the worker and the sink (see the module doc)."""
    asyncio.run(_send_raw(s, "aggregates", _k1_hours(CUT - (HISTORY_H - 1) * HOUR, HISTORY_H)))
    asyncio.run(_send_raw(s, "sensors.bus", buses))
    t0 = time.time() - 330
    config = {
        "schema_version": 1,
        "event_time": _iso(t0 - 60),
        "intersection_id": "K101",
        "model": MODEL,
        "controller": "webster",
        "mode": "advisory",
        "session": "dashboards-run",
        "approval_timeout_s": 3600.0,  # the proposal still waits when the dashboards look
        "params": {"recompute_every_cycles": 1},
    }
    asyncio.run(_send(s, "signals.config", [config], "intersection_id"))
    # 30 frames 5 s apart (faster than real time) until 3 minutes ago: enough cycles for a proposal
    asyncio.run(_send(s, "sensors.intersection", [_k101(t0 + 5 * (i + 1), 5.0) for i in range(30)], "intersection_id"))
    asyncio.run(_send(s, "sensors.intersection", _k7_burst(time.time()), "intersection_id"))
    _k102_mandate(s, config, t0)
    _live(s, seconds=12)
    _camera_alarm_acked(s, f"http://127.0.0.1:{web_port}", TOKEN)
    _forecasts_with_event(s)
    # the hours after K1's history: the forecast made for CUT is scored when CUT completes
    asyncio.run(_send_raw(s, "aggregates", _k1_hours(CUT + HOUR, 2)))
    # the same hours a week earlier, 10 % quieter: the weekly seasonal naive of the accuracy panel
    asyncio.run(_send_raw(s, "aggregates", _k1_hours(CUT + HOUR - 7 * 24 * HOUR, 2, level=0.9)))
    _live(s, seconds=6)  # fresh proposals and a few more scrapes
    for what, sql in {
        "an event-triggered forecast": "SELECT count(*) FROM forecasts WHERE trigger = 'event'",
        "an incident alarm": "SELECT count(*) FROM alarm_transitions WHERE subject_type = 'intersection'",
        "an acknowledgement": "SELECT count(*) FROM alarm_transitions WHERE transition = 'acknowledged'",
        "a pending proposal": "SELECT count(*) FROM signal_decisions WHERE status = 'pending'",
        "K101 aggregates": "SELECT count(*) FROM aggregates WHERE intersection_id = 'K101'",
        "K101 queues": "SELECT count(*) FROM aggregates WHERE intersection_id = 'K101' AND queue_veh_mean IS NOT NULL",
        "the moved concert and the holiday": "SELECT count(*) = 2 FROM scheduled_events WHERE title IS NOT NULL"
        " AND (event_id <> 'concert-1' OR expected_attendance = 8000)",
        "K1 a week before the scored hours": "SELECT count(*) FROM aggregates WHERE intersection_id = 'K1'"
        f" AND window_start < '{(CUT - 6 * 24 * HOUR).isoformat()}'",
        "bus passages of the late trip, with a gap behind it": "SELECT count(*) FROM bus_passages"
        " WHERE trip_id = 'T1' AND punctuality = 'late' AND headway_kind = 'gap'",
        "a priority request of the late trip": "SELECT count(*) FROM audit_log WHERE action LIKE 'priority_%'",
        "a running mandate": "SELECT count(*) FROM audit_log WHERE action = 'plan_approved' AND detail->>'mandate_until_s' IS NOT NULL",
        "a bunching alarm of the line": "SELECT count(*) FROM alarm_transitions WHERE subject_type = 'bus_line' AND kind = 'bus_bunching'",
    }.items():
        _wait_rows(dsn, sql, 60, what, sink, sink_log)


def test_every_panel_query_returns_what_its_panel_reads(broker, settings_for, pg_database: str, prometheus_for, tmp_path: Path) -> None:
    s = settings_for(broker, api_token=TOKEN, topic_partitions=1)
    asyncio.run(ensure_topics(s))
    _migrate(pg_database)
    buses = _bus_feed(s, tmp_path)
    started = datetime.now(UTC)
    web_port = free_port()
    worker = WorkerProcess(_worker_env(s), tmp_path / "worker.log", web_port)
    worker.start(timeout_s=90)
    sink_log = tmp_path / "sink.log"
    sink = _start_sink(s, pg_database, sink_log)
    try:
        prometheus = prometheus_for([f"127.0.0.1:{web_port}"], scrape_interval_s=SCRAPE_S)
        _run_pipeline(s, pg_database, web_port, sink, sink_log, buses)
        time.sleep(3 * SCRAPE_S)
        # the dashboards' time range: K1's history (2 days back) up to now, as "now-3d .. now"
        rng = TimeRange(CUT - 3 * 24 * HOUR, datetime.now(UTC))
        prom_rng = TimeRange(started, datetime.now(UTC))
        report = _check_every_panel(pg_database, prometheus, rng, prom_rng)
    finally:
        sink.terminate()
        sink.wait(30)
        worker.stop()
    print("\n" + "\n".join(report))


def _check_every_panel(dsn: str, prometheus: str, rng: TimeRange, prom_rng: TimeRange) -> list[str]:
    """Each dashboard's variables from their own queries, then every panel query."""
    values = {"intersection": "K101", "pool": "P1", "series": "intersection/K1", "capacity": "120"}
    report, checked = [], 0
    for d in load():
        choices = {name: {r[0] for r in _db(dsn, expand_sql(sql, SqlContext(rng)))[1]} for name, sql in variable_queries(d).items()}
        for name, options in choices.items():
            assert values[name] in options, f"{d.name}: variable ${name} offers {sorted(options)}"
        ctx = SqlContext(rng, interval_ms=auto_interval_ms(rng, 1000, "1m"), variables=values)
        by_panel: dict[int, set[str]] = {}
        for q in queries(d):
            if q.kind == "sql":
                columns, n = _check_sql(dsn, q, ctx)
                by_panel.setdefault(q.panel_id, set()).update(columns)
                report.append(f"{q.where}: {n} rows, columns {columns}")
            else:
                n = _check_promql(prometheus, q, prom_rng)
                report.append(f"{q.where}: {n} series")
            checked += 1
        for q in queries(d):  # what a panel's overrides and transformations name, over all its queries
            missing = set(q.panel_reads) - by_panel.get(q.panel_id, set(q.panel_reads))
            assert not missing, f"{q.where}: the panel names fields no query returns: {sorted(missing)}"
    assert checked == sum(len(queries(d)) for d in load()) and checked >= 25
    return report
