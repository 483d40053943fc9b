"""Alarms end to end through a real broker and worker, both brokers.

Raise (camera event, water rule), deduplicate a redelivered event, acknowledge and resolve over
HTTP with a token, escalate when nobody acknowledges, and deliver to a real local webhook
receiver that refuses the first attempts.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import orjson
import pytest

from streams.kafka_io import ensure_topics, producer, tail
from streams.stack import WorkerProcess, free_port, same_place, settings_env
from streams.webhooks import verify

pytestmark = pytest.mark.integration

TOKEN = "s3cret-token-for-the-alarm-lifecycle-test"
SECRET = "hmac-key"


class Receiver:
    """A real HTTP server standing in for the on-duty pager gateway; fails the first N posts."""

    def __init__(self, fail_first: int) -> None:
        self.fail_first = fail_first
        self.attempts = 0
        self.received: list[dict[str, Any]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                outer.attempts += 1
                if outer.attempts <= outer.fail_first:
                    self.send_response(503)
                    self.end_headers()
                    return
                outer.received.append({"path": self.path, "headers": dict(self.headers), "body": body})
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver(fail_first=2)
    yield r
    r.close()


def _http(method: str, url: str, token: str | None = None, body: dict | None = None) -> tuple[int, dict]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=5) as r:  # noqa: S310
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


async def _send(s, topic: str, records: list[dict], key_field: str) -> None:
    prod = producer(s)
    await prod.start()
    try:
        futs = [await prod.send(s.topic(topic), key=r[key_field].encode(), value=orjson.dumps(r)) for r in records]
        await asyncio.gather(*futs)
    finally:
        await prod.stop()


def _wait_for(s, topic: str, predicate, timeout_s: float) -> list[dict]:
    """All records of ``topic`` once ``predicate(records)`` holds (or the timeout passes)."""

    async def read_all() -> list[dict]:
        return [orjson.loads(m.value or b"") async for m in tail(s, s.topic(topic), from_beginning=True, idle_timeout_s=0.5)]

    deadline = time.monotonic() + timeout_s
    while True:
        records = asyncio.run(read_all())
        if predicate(records) or time.monotonic() > deadline:
            return records
        time.sleep(0.3)


def _iso(dt: datetime) -> str:
    return dt.isoformat()


def test_alarm_lifecycle_end_to_end(broker, settings_for, tmp_path: Path, receiver: Receiver) -> None:
    s = settings_for(broker, api_token=TOKEN)
    asyncio.run(ensure_topics(s))
    env = settings_env(
        {
            **same_place(s),
            "api_token": TOKEN,
            "webhook_secret": SECRET,
            "alarm_contact_levels": [[receiver.url + "/duty"], [receiver.url + "/manager"]],
            "alarm_ack_timeout_critical_s": 6.0,
            "webhook_backoff_s": 0.2,
            "water_min_duration_s": 20.0,
            "pools": {"P1": {"basin_type": "swimmer", "capacity": 100}},
            "webhook_allowed_hosts": "127.0.0.1",  # the test receiver is plain http on loopback
        }
    )
    web_port = free_port()
    worker = WorkerProcess(env, tmp_path / "worker.log", web_port)
    worker.start(timeout_s=90)
    base = f"http://127.0.0.1:{web_port}"
    try:
        now = datetime.now(timezone.utc)
        camera = [
            {
                "schema_version": 1,
                "event_time": _iso(now),
                "pool_id": "P1",
                "event_id": "E1",
                "kind": "motionless_swimmer",
                "zone": "deep end",
                "duration_s": 11.0,
                "confidence": 0.9,
            },
            {
                "schema_version": 1,
                "event_time": _iso(now),
                "pool_id": "P2",
                "event_id": "E2",
                "kind": "person_in_closed_zone",
                "zone": "slide",
            },
        ]
        asyncio.run(_send(s, "pool.supervision", camera + camera[:1], "pool_id"))  # E1 redelivered
        # pH 7.6 for 40 s of event time (readings every 10 s): longer than the 20 s minimum
        readings = [
            {
                "schema_version": 1,
                "event_time": _iso(now - timedelta(seconds=60 - 10 * i)),
                "pool_id": "P1",
                "ph": {"value": 7.6, "unit": "pH"},
                "free_chlorine": {"value": 0.4, "unit": "mg/l"},
            }
            for i in range(5)
        ]
        asyncio.run(_send(s, "sensors.pool", readings, "pool_id"))

        raised = _wait_for(s, "alerts", lambda rs: sum(r["transition"] == "raised" for r in rs) >= 3, 30)
        by_kind = {r["kind"]: r for r in raised if r["transition"] == "raised"}
        assert set(by_kind) == {"motionless_swimmer", "person_in_closed_zone", "water_ph"}, raised
        assert sum(r["transition"] == "raised" and r["kind"] == "motionless_swimmer" for r in raised) == 1
        swimmer = by_kind["motionless_swimmer"]
        assert swimmer["severity"] == "critical" and swimmer["subject_id"] == "P1"
        assert by_kind["water_ph"]["severity"] == "major" and by_kind["water_ph"]["evidence"]["value"] == 7.6

        # the API: listing is open, changes need the token
        status, listed = _http("GET", f"{base}/alerts?state=open", token=TOKEN)
        assert status == 200 and listed["count"] == 3
        aid = swimmer["alarm_id"]
        assert _http("POST", f"{base}/alerts/{aid}/ack", body={"by": "x"})[0] == 401
        assert _http("POST", f"{base}/alerts/{aid}/ack", token="wrong", body={"by": "x"})[0] == 401
        assert _http("POST", f"{base}/alerts/nope@P9~000000000000/ack", token=TOKEN)[0] == 404
        status, answer = _http("POST", f"{base}/alerts/{aid}/ack", token=TOKEN, body={"by": "supervisor-1"})
        assert status == 202, answer

        # P2's alarm nobody acknowledges: escalated to level 1 after 6 s; P1's is not
        events = _wait_for(
            s,
            "alerts",
            lambda rs: (
                any(r["transition"] == "escalated" and r["subject_id"] == "P2" for r in rs)
                and any(r["transition"] == "acknowledged" for r in rs)
            ),
            30,
        )
        acked = [r for r in events if r["transition"] == "acknowledged"]
        # issue 16: the shared token is recorded as machine-token; the written name is a claim
        assert [(r["alarm_id"], r["acknowledged_by"]) for r in acked] == [(aid, "machine-token")]
        escalated = [r for r in events if r["transition"] == "escalated"]
        assert escalated and all(r["subject_id"] == "P2" for r in escalated)
        assert escalated[0]["level"] == 1
        # a second acknowledgement would be dropped by the books, note and all: refused, naming who
        deadline = time.monotonic() + 10
        while (again := _http("POST", f"{base}/alerts/{aid}/ack", token=TOKEN, body={"note": "me too"}))[0] == 202:
            assert time.monotonic() < deadline, again  # only while the book has not saved the first yet
            time.sleep(0.2)
        assert again[0] == 409 and "already acknowledged by machine-token" in again[1]["error"], again

        status, _ = _http(
            "POST", f"{base}/alerts/{aid}/resolve", token=TOKEN, body={"by": "supervisor-1", "note": "false alarm: diver training"}
        )
        assert status == 202
        events = _wait_for(s, "alerts", lambda rs: any(r["transition"] == "resolved" for r in rs), 20)
        resolved = [r for r in events if r["transition"] == "resolved"]
        assert [(r["alarm_id"], r["resolved_by"], r["note"]) for r in resolved] == [
            (aid, "machine-token", "claimed by supervisor-1: false alarm: diver training")
        ]
        time.sleep(0.5)
        status, listed = _http("GET", f"{base}/alerts?state=open", token=TOKEN)
        assert aid not in {a["alarm_id"] for a in listed["alerts"]}
        assert _http("POST", f"{base}/alerts/{aid}/ack", token=TOKEN)[0] == 409

        # webhooks: the first two attempts failed, yet every raised/escalated alarm arrived, signed
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and len(receiver.received) < 4:
            time.sleep(0.2)
        got = [(r["path"], json.loads(r["body"])) for r in receiver.received]
        duty = {b["alert"]["alarm_id"] for p, b in got if p == "/duty" and b["alert"]["transition"] == "raised"}
        assert duty == {r["alarm_id"] for r in by_kind.values()}
        assert any(p == "/manager" and b["alert"]["transition"] == "escalated" for p, b in got)
        for r in receiver.received:
            assert verify(SECRET.encode(), r["headers"], r["body"], now=time.time())
        log = _wait_for(s, "alerts.deliveries", lambda rs: sum(r["outcome"] == "delivered" for r in rs) >= 4, 10)
        assert sum(r["outcome"] == "retry" for r in log) == 2
    finally:
        code = worker.stop()
    assert code == 0, worker.log_tail()
