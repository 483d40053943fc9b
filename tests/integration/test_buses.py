"""Buses end to end through a real broker and worker, on a small GTFS feed the test writes.

One line, four trips 10 minutes apart. Trip T1 runs 7 minutes late: a gap opens behind T0 and
T2 catches up with T1 (bunching); T1 asks for priority at the mapped stop, the on-time trips do
not. The feed goes through the GTFS loader onto ``transit.schedule``; positions onto
``sensors.bus``. Then bad input (duplicate, out of order, unknown trip, teleport, stale,
malformed) is counted and dead-lettered and raises nothing. Last, a worker restart: the
alarms raised before it are cleared by the new worker once it has seen half an hour of positions.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import time
import zipfile
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import orjson
import pytest

from streams.kafka_io import ensure_topics, produce_to, tail
from streams.stack import WorkerProcess, free_port, same_place, settings_env
from streams.transit_codec import encode_schedule, load_feed

pytestmark = [pytest.mark.integration]

STOPS = 6
RUN_S = 120
DWELL_S = 20
STEP_LON = 0.0067  # ~500 m at 48 deg N
DELAYS = {"T0": 0, "T1": 420, "T2": 0, "T3": 0}
MODEL = json.loads((Path(__file__).resolve().parents[2] / "signals" / "examples" / "k101_four_arm.json").read_text())
COUNTS = {"N_in": 1, "S_in": 1, "N_left": 0, "S_left": 1, "E_in": 1, "W_in": 1}


def frame(t: float) -> dict[str, Any]:
    detectors = [{"detector_id": k, "count": v, "occupancy": 0.1} for k, v in COUNTS.items()]
    return {
        "schema_version": 1,
        "event_time": datetime.fromtimestamp(t, timezone.utc).isoformat(),
        "intersection_id": "K101",
        "interval_s": 5.0,
        "detectors": detectors,
    }


def write_feed(path: Path, origin: datetime, first_s: int) -> None:
    """agency, stops, routes, trips, stop_times and calendar.txt (weekly pattern) as a zip."""
    day = origin.date()

    def table(rows: list[list[Any]]) -> str:
        buf = io.StringIO()
        csv.writer(buf, lineterminator="\n").writerows(rows)
        return buf.getvalue()

    files: dict[str, list[list[Any]]] = {
        "agency.txt": [["agency_id", "agency_name", "agency_url", "agency_timezone"], ["A", "Test", "https://example.invalid", "UTC"]],
        "stops.txt": [["stop_id", "stop_name", "stop_lat", "stop_lon"]]
        + [[f"S{k}", f"Stop {k}", 48.0, 11.0 + k * STEP_LON] for k in range(STOPS)],
        "routes.txt": [["route_id", "agency_id", "route_short_name", "route_type"], ["L1", "A", "1", 3]],
        "trips.txt": [["route_id", "service_id", "trip_id", "direction_id"]] + [["L1", "ALL", t, 0] for t in DELAYS],
        "stop_times.txt": [["trip_id", "arrival_time", "departure_time", "stop_id", "stop_sequence"]],
        "calendar.txt": [
            ["service_id", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday", "start_date", "end_date"],
            ["ALL", 1, 1, 1, 1, 1, 1, 1, f"{day - timedelta(days=1):%Y%m%d}", f"{day + timedelta(days=1):%Y%m%d}"],
        ],
    }
    for n, trip in enumerate(DELAYS):
        for k in range(STOPS):
            s = first_s + 600 * n + RUN_S * k
            hms = f"{s // 3600:02d}:{s % 3600 // 60:02d}:{s % 60:02d}"
            files["stop_times.txt"].append([trip, hms, hms, f"S{k}", k + 1])
    with zipfile.ZipFile(path, "w") as zf:
        for name, rows in files.items():
            zf.writestr(name, table(rows))


def positions(origin: float, first_s: int) -> list[dict[str, Any]]:
    """Every 30 s of each trip: at a stop for DWELL_S after arriving, else on the way to the next."""
    out = []
    for n, (trip, delay) in enumerate(DELAYS.items()):
        arrive = [origin + first_s + 600 * n + RUN_S * k + delay for k in range(STOPS)]
        t = arrive[0]
        while t <= arrive[-1]:
            k = max(i for i in range(STOPS) if arrive[i] <= t)
            if t - arrive[k] < DWELL_S or k == STOPS - 1:
                seq, status, lon = k + 1, "STOPPED_AT", 11.0 + k * STEP_LON
            else:
                f = (t - arrive[k] - DWELL_S) / (RUN_S - DWELL_S)
                seq, status, lon = k + 2, "IN_TRANSIT_TO", 11.0 + (k + f) * STEP_LON
            out.append(record(f"bus-{trip}", trip, t, seq, status, lon))
            t += 30
    return sorted(out, key=lambda r: r["event_time"])


def record(vehicle: str, trip: str, t: float, seq: int, status: str, lon: float, lat: float = 48.0) -> dict[str, Any]:
    return {
        "schema_version": 1,
        "event_time": datetime.fromtimestamp(t, timezone.utc).isoformat(),
        "vehicle_id": vehicle,
        "trip_id": trip,
        "route_id": "L1",
        "latitude": lat,
        "longitude": round(lon, 6),
        "current_stop_sequence": seq,
        "current_status": status,
    }


def read_all(s: Any, topic: str) -> list[dict[str, Any]]:
    async def go() -> list[dict[str, Any]]:
        return [orjson.loads(m.value or b"") async for m in tail(s, s.topic(topic), from_beginning=True, idle_timeout_s=0.5)]

    return asyncio.run(go())


def wait_for(s: Any, topic: str, predicate: Any, timeout_s: float) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout_s
    while True:
        records = read_all(s, topic)
        if predicate(records) or time.monotonic() > deadline:
            return records
        time.sleep(0.5)


def send(s: Any, topic: str, items: list[tuple[bytes, bytes]]) -> None:
    asyncio.run(produce_to(s, s.topic(topic), items))


def test_buses_end_to_end(broker: Any, settings_for: Any, tmp_path: Path) -> None:
    # one partition: the test sends 50 minutes of positions at once (see the agent's docstring)
    s = settings_for(broker, topic_partitions=1)
    asyncio.run(ensure_topics(s))
    now = datetime.now(timezone.utc)
    day_start = (now - timedelta(hours=2)).replace(hour=0, minute=0, second=0, microsecond=0)
    first_s = int((now - timedelta(minutes=50) - day_start).total_seconds())
    feed = tmp_path / "feed.zip"
    write_feed(feed, day_start, first_s)
    loaded = load_feed(feed)
    assert len(loaded.records) == 4 and loaded.skipped == {}
    send(s, "transit.schedule", encode_schedule(loaded.records))

    env = settings_env(
        {
            **same_place(s),
            "topic_partitions": 1,
            "bus_stale_s": 7200.0,  # the positions are up to 50 min old when sent
            "bus_priority_late_s": 120.0,
            "bus_priority_stops": {"S3": ["K101", "A"]},
            "bus_schedule_refresh_s": 2.0,
        }
    )
    worker = WorkerProcess(env, tmp_path / "worker.log", free_port())
    worker.start(timeout_s=120)
    try:
        # K101 under the fixed program in automatic mode, driven by frames up to now
        config = {"schema_version": 1, "event_time": now.isoformat(), "intersection_id": "K101", "model": MODEL}
        send(s, "signals.config", [(b"K101", orjson.dumps({**config, "controller": "fixed", "mode": "automatic"}))])
        t_frames = now.timestamp() - 60
        send(s, "sensors.intersection", [(b"K101", orjson.dumps(frame(t_frames + 5 * i))) for i in range(12)])
        wait_for(s, "signals.plans", lambda rs: len(rs) >= 12, 60)
        good = positions(day_start.timestamp(), first_s)
        send(s, "sensors.bus", [(r["vehicle_id"].encode(), orjson.dumps(r)) for r in good])
        lifecycle = wait_for(
            s, "alerts.lifecycle", lambda rs: {r["kind"] for r in rs if r["op"] == "raise"} >= {"bus_bunching", "bus_gap"}, 90
        )
        raised = {r["kind"]: r for r in lifecycle if r["op"] == "raise"}
        assert set(raised) == {"bus_bunching", "bus_gap"}, lifecycle
        assert raised["bus_bunching"]["subject_id"] == "L1" and raised["bus_bunching"]["subject_type"] == "bus_line"
        assert raised["bus_bunching"]["evidence"]["follower_trip"] == "T2"
        assert raised["bus_gap"]["evidence"]["follower_trip"] == "T1"
        alerts = wait_for(s, "alerts", lambda rs: {r.get("kind") for r in rs} >= {"bus_bunching", "bus_gap"}, 60)
        assert {r["kind"] for r in alerts if r.get("subject_type") == "bus_line"} >= {"bus_bunching", "bus_gap"}

        requests = wait_for(s, "signals.priority", lambda rs: len(rs) >= 1, 30)
        assert [(r["trip_id"], r["intersection_id"], r["approach"]) for r in requests] == [("T1", "K101", "A")]
        assert requests[0]["delay_s"] > 120
        # the control agent took it up: granted or refused, with its reason, in the audit
        audit = wait_for(s, "signals.audit", lambda rs: any(r["action"].startswith("priority_") for r in rs), 30)
        [decided] = [r for r in audit if r["action"].startswith("priority_")]
        assert decided["actor"] == "bus:bus-T1" and decided["detail"]["delay_before_s"] > 120
        assert decided["detail"].get("explanation") or decided["detail"].get("reason")

        # every stop passage on transit.passages for the history: 4 trips x 6 stops, keyed by line,
        # T1 late at each; the gap behind T0 is on T1's passages, the bunching on T2's
        passages = wait_for(s, "transit.passages", lambda rs: len(rs) >= 4 * STOPS, 30)
        assert sorted((r["trip_id"], r["stop_index"]) for r in passages) == [(t, k) for t in DELAYS for k in range(STOPS)]
        assert {r["route_id"] for r in passages} == {"L1"}
        assert {r["punctuality"] for r in passages if r["trip_id"] == "T1"} == {"late"}
        assert {r["punctuality"] for r in passages if r["trip_id"] != "T1"} == {"on_time"}
        assert {r["headway_kind"] for r in passages if r["trip_id"] == "T1"} == {"gap"}
        assert "bunched" in {r["headway_kind"] for r in passages if r["trip_id"] == "T2"}

        before = worker.metrics()
        accepted = before.get('leitstand_bus_positions_total{outcome="accepted"}', 0)
        assert accepted == len(good)
        punctual = before["leitstand_bus_punctuality_ratio"]
        assert 0.7 < punctual < 0.8  # T1's 6 passages late, the other 18 on time

        last = good[-1]
        t_last = datetime.fromisoformat(last["event_time"]).timestamp()
        bad = [
            last,  # duplicate
            {**last, "event_time": datetime.fromtimestamp(t_last - 60, timezone.utc).isoformat()},  # out of order
            {**last, "trip_id": "T9", "vehicle_id": "bus-x"},  # unknown trip
            {**last, "event_time": datetime.fromtimestamp(t_last + 10, timezone.utc).isoformat(), "latitude": 48.5},  # teleport
            {**last, "vehicle_id": "bus-old", "event_time": (now - timedelta(hours=3)).isoformat()},  # stale
        ]
        items = [(r["vehicle_id"].encode(), orjson.dumps(r)) for r in bad] + [(b"bus-y", b'{"schema_version": 1, "vehicle_id": ')]
        send(s, "sensors.bus", items)
        reasons = ("duplicate", "out_of_order", "unknown_trip", "teleport", "stale")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            m = worker.metrics()
            if all(m.get(f'leitstand_bus_positions_total{{outcome="{r}"}}', 0) >= 1 for r in reasons):
                break
            time.sleep(0.5)
        assert {r: m.get(f'leitstand_bus_positions_total{{outcome="{r}"}}', 0) for r in reasons} == dict.fromkeys(reasons, 1.0)
        dead = wait_for(s, "deadletter", lambda rs: any(r.get("source_topic", "").endswith("sensors.bus") for r in rs), 30)
        assert any(r.get("source_topic", "").endswith("sensors.bus") for r in dead), dead
        # nothing new raised by the bad input, and no passage made of it
        after = read_all(s, "alerts.lifecycle")
        assert [r for r in after if r["op"] == "raise"] == [r for r in lifecycle if r["op"] == "raise"]
        assert len(read_all(s, "transit.passages")) == len(passages)
    finally:
        code = worker.stop()
    assert code == 0, worker.log_tail()

    # a restart loses the episodes; the bunching and gap alarms of L1 raised before it are
    # still open in the alarm books, and nothing would end them (T2 and T1 are not seen again).
    # Half an hour of stream time after its first position, the new worker clears them.
    assert [r for r in read_all(s, "alerts.lifecycle") if r["op"] == "clear"] == []
    worker = WorkerProcess(env, tmp_path / "worker-2.log", free_port())
    worker.start(timeout_s=120)
    try:
        after = [r for r in good if r["vehicle_id"] == "bus-T0"][:1] + [r for r in good if r["vehicle_id"] == "bus-T3"][-1:]
        assert datetime.fromisoformat(after[1]["event_time"]) - datetime.fromisoformat(after[0]["event_time"]) > timedelta(minutes=30)
        send(s, "sensors.bus", [(r["vehicle_id"].encode(), orjson.dumps(r)) for r in after])
        kinds = {"bus_bunching", "bus_gap"}
        cleared = wait_for(s, "alerts.lifecycle", lambda rs: {r["kind"] for r in rs if r["op"] == "clear"} >= kinds, 60)
        assert sorted((r["subject_id"], r["kind"]) for r in cleared if r["op"] == "clear") == [("L1", "bus_bunching"), ("L1", "bus_gap")]
        books = wait_for(s, "alerts", lambda rs: sum(1 for r in rs if r.get("subject_type") == "bus_line" and not r["active"]) >= 2, 60)
        assert {r["kind"] for r in books if r.get("subject_type") == "bus_line" and not r["active"]} == {"bus_bunching", "bus_gap"}
    finally:
        code = worker.stop()
    assert code == 0, worker.log_tail()
