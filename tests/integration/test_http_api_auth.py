"""The worker's HTTP API through a real worker and broker: tokens and bodies (issue 10, #6 and #9).

#6: the bearer check compared the header after ``.strip()``, so ``Bearer <token><NBSP>`` (and,
with an empty configured token, ``Bearer <NBSP>``) was accepted and acknowledged an alarm.
#9: a change body that is not a JSON object gave 500 in the alerts API; ``GET /alerts`` and
``GET /signals/plans`` answered anyone who reached the port.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import orjson
import pytest

from streams.kafka_io import ensure_topics, producer
from streams.settings import Settings
from streams.stack import WorkerProcess, free_port, same_place, settings_env
from tests.conftest import settings_maker

#: Tansu only: what these tests check (the bearer and console-user token checks, the change bodies,
#: the views served) happens in the worker's HTTP layer before anything reaches the broker; the
#: alarm changes over HTTP on both brokers are test_alarm_lifecycle's (and the Kafka half took
#: ~160 s of the suite under load: one worker per test)
pytestmark = [pytest.mark.integration, pytest.mark.parametrize("broker", ["tansu"], indirect=True)]

#: 44 bytes of RFC 6750 token characters: passes the settings' start-up checks
TOKEN = "k9-Xq2mZ7vR4tL8wN3pB6yH1cF5gJ0dS-long-enough"
READ_TOKEN = "r3ad-0nly-Wm8Zq2Lx7Vb4Nc9Tg1Hf6Jd5Ks0Pq-wall"


class Api:
    """Raw HTTP to the worker: header values go out as the exact bytes given (urllib re-encodes)."""

    def __init__(self, port: int) -> None:
        self.port = port

    def call(
        self, method: str, path: str, auth: bytes | str | None = None, body: bytes | None = None, headers: dict[str, str] | None = None
    ) -> tuple[int, Any]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            conn.putrequest(method, path)
            if auth is not None:
                conn.putheader("Authorization", auth if isinstance(auth, bytes) else auth.encode())
            for name, value in (headers or {}).items():
                conn.putheader(name, value)
            if body is not None:
                conn.putheader("Content-Type", "application/json")
                conn.putheader("Content-Length", str(len(body)))
            conn.endheaders(body)
            resp = conn.getresponse()
            raw = resp.read()
            kind = resp.getheader("Content-Type", "")
            return resp.status, json.loads(raw) if kind.startswith("application/json") else raw
        finally:
            conn.close()

    def bearer(self, method: str, path: str, token: str = TOKEN, body: Any = None) -> tuple[int, Any]:
        data = None if body is None else body if isinstance(body, bytes) else json.dumps(body).encode()
        return self.call(method, path, auth=f"Bearer {token}", body=data)


def start_api_worker(broker: Any, settings_for: Any, tmp_path: Path, **extra: Any) -> tuple[WorkerProcess, Settings]:
    """A real ``leitstand worker`` (role all) with the API token set, topics created."""
    s = settings_for(broker, api_token=TOKEN)
    asyncio.run(ensure_topics(s))
    env = settings_env(
        {
            **same_place(s),
            "api_token": TOKEN,
            "api_read_token": READ_TOKEN,
            **extra,
        }
    )
    worker = WorkerProcess(env, tmp_path / "worker.log", free_port())
    worker.start(timeout_s=90)
    return worker, s


@pytest.fixture(scope="module")
def api_worker(broker, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Api, Settings, WorkerProcess]]:
    """One worker for the module's tests (each used to start its own: 7 s apiece): they change
    nothing another one reads (one alarm of pool P6; every other change names what does not exist)."""
    root = tmp_path_factory.mktemp("api-worker")
    worker, s = start_api_worker(broker, settings_maker(root), root)
    try:
        yield Api(worker.web_port), s, worker
    finally:
        code = worker.stop()
    assert code == 0, worker.log_tail()


async def _camera_event(settings: Settings, pool: str, event_id: str) -> None:
    prod = producer(settings)
    await prod.start()
    try:
        record = {
            "schema_version": 1,
            "event_time": datetime.now(timezone.utc).isoformat(),
            "pool_id": pool,
            "event_id": event_id,
            "kind": "person_in_closed_zone",
            "zone": "slide",
        }
        await (await prod.send(settings.topic("pool.supervision"), key=pool.encode(), value=orjson.dumps(record)))
    finally:
        await prod.stop()


def _open_alarm(api: Api, pool: str, timeout_s: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        status, listed = api.bearer("GET", "/alerts?state=open")
        assert status == 200, listed
        found = [a for a in listed["alerts"] if a["subject_id"] == pool]
        if found:
            return found[0]
        time.sleep(0.3)
    raise AssertionError(f"no alarm for {pool} within {timeout_s} s")


def test_only_the_exact_token_changes_an_alarm(api_worker) -> None:
    """#6: NBSP and look-alikes around the token are refused; the alarm stays unacknowledged."""
    api, s, _ = api_worker
    asyncio.run(_camera_event(s, "P6", "E6"))
    alarm = _open_alarm(api, "P6")
    path = f"/alerts/{alarm['alarm_id']}/ack"
    body = json.dumps({"by": "intruder"}).encode()
    nbsp = "\u00a0".encode()
    for auth in [
        b"Bearer " + TOKEN.encode() + nbsp,  # was stripped and accepted: 202
        b"Bearer " + nbsp + TOKEN.encode(),
        b"Bearer " + nbsp,
        b"Bearer ",
        b"Bearer",
        b"Bearer  " + TOKEN.encode(),
        b"Bearer " + TOKEN.upper().encode(),
        b"Basic " + TOKEN.encode(),
        b"Bearer " + READ_TOKEN.encode(),
    ]:
        status, answer = api.call("POST", path, auth=auth, body=body)
        assert status == 401, (auth, status, answer)
        assert answer["error"] == "missing or wrong bearer token"
    status, answer = api.call("POST", path, body=body)
    assert status == 401
    time.sleep(1.0)
    assert _open_alarm(api, "P6")["state"] == "raised"  # nothing above reached the books
    status, answer = api.call("POST", path, auth=b"bearer " + TOKEN.encode(), body=json.dumps({"by": "duty-1"}).encode())
    assert status == 202, answer
    deadline = time.monotonic() + 20
    while _open_alarm(api, "P6")["state"] != "acknowledged":
        assert time.monotonic() < deadline, "the acknowledgement with the right token was not applied"
        time.sleep(0.3)
    # issue 16: the shared token names no person; the written name is kept only as a claim
    assert answer["by"] == "machine-token"
    alarm = _open_alarm(api, "P6")
    assert alarm["acknowledged_by"] == "machine-token" and "claimed by duty-1" in json.dumps(alarm)


def test_console_user_tokens_act_as_their_user_within_their_role(broker, settings_for, tmp_path: Path) -> None:
    """Issue 16: per-user tokens of the console work on the worker (its SQLite store, read-only);
    the audit trail names the user, and a planner's token is refused every change (403)."""
    from streams.console.users import UserStore

    users_db = tmp_path / "console.sqlite"  # the file the console would use; the worker is told where
    worker, s = start_api_worker(broker, settings_for, tmp_path, console_users_db=users_db)
    store = UserStore(users_db)
    try:
        for name, role in (("plan", "planner"), ("sup", "pool-supervisor")):
            store.add(name, role, "correct horse battery")
        planner, supervisor = store.new_token("plan", "wall"), store.new_token("sup", "bridge")
        api = Api(worker.web_port)
        asyncio.run(_camera_event(s, "P7", "E7"))
        alarm = _open_alarm(api, "P7")
        assert api.bearer("GET", "/alerts", token=planner)[0] == 200  # planners read
        assert api.bearer("GET", "/signals/plans", token=planner)[0] == 200
        status, answer = api.bearer("POST", f"/alerts/{alarm['alarm_id']}/ack", token=planner, body={"by": "sup"})
        assert (status, answer) == (403, {"error": "user plan (role planner) may not acknowledge alarms"})
        status, answer = api.bearer("POST", "/signals/K1/mode", token=planner, body={"mode": "off"})
        assert status == 403 and "may not change an intersection's mode" in answer["error"]
        status, answer = api.bearer("POST", "/signals/K1/mode", token=supervisor, body={"mode": "off"})
        assert status == 403 and answer["error"].startswith("user sup (role pool-supervisor) may not")
        status, answer = api.bearer("POST", f"/alerts/{alarm['alarm_id']}/ack", token=supervisor, body={"note": "on my way"})
        assert status == 202 and answer["by"] == "sup", answer
        deadline = time.monotonic() + 20
        while (found := _open_alarm(api, "P7"))["state"] != "acknowledged":
            assert time.monotonic() < deadline, "the supervisor's acknowledgement was not applied"
            time.sleep(0.3)
        assert found["acknowledged_by"] == "sup"
        store.set_disabled("sup", True)  # revoked in the console's file: refused at the next request
        assert api.bearer("POST", f"/alerts/{alarm['alarm_id']}/resolve", token=supervisor, body={})[0] == 401
    finally:
        store.close()
        code = worker.stop()
    assert code == 0, worker.log_tail()


def test_reads_need_a_token_probes_do_not(api_worker) -> None:
    """#9: the lists name operators and carry their notes; /ready and /metrics stay open for probes."""
    api, _, _ = api_worker
    for path in ("/alerts", "/alerts?state=raised", "/signals/plans", "/signals/plans?status=pending"):
        status, answer = api.call("GET", path)
        assert status == 401, (path, answer)
        assert api.call("GET", path, auth="Bearer wrong")[0] == 401
        assert api.call("GET", path, auth=b"Bearer " + TOKEN.encode() + "\u00a0".encode())[0] == 401
        status, answer = api.bearer("GET", path)
        assert status == 200, (path, answer)
    assert api.bearer("GET", "/alerts?state=nonsense")[0] == 400
    assert api.bearer("GET", "/alerts?status=raised")[0] == 400  # a typo must not list every open alarm
    assert api.bearer("GET", "/alerts?state=open&state=raised")[0] == 400
    assert api.bearer("GET", "/signals/plans?state=pending")[0] == 400
    assert api.call("GET", "/alerts?state=nonsense")[0] == 401  # no probing of parameters without a token
    assert api.call("GET", "/ready")[0] == 200
    status, text = api.call("GET", "/metrics")
    assert status == 200 and b"leitstand_" in text


def test_the_read_token_reads_but_never_changes(api_worker) -> None:
    api, _, _ = api_worker
    assert api.bearer("GET", "/alerts", token=READ_TOKEN)[0] == 200
    assert api.bearer("GET", "/signals/plans", token=READ_TOKEN)[0] == 200
    assert api.bearer("POST", "/alerts/a@b~c/ack", token=READ_TOKEN, body={})[0] == 401
    assert api.bearer("POST", "/signals/K1/mode", token=READ_TOKEN, body={"mode": "off"})[0] == 401


@pytest.mark.parametrize(
    "path",
    [
        "/alerts/person_in_closed_zone@P9~000000000000/ack",
        "/alerts/person_in_closed_zone@P9~000000000000/resolve",
        "/signals/K1/plans/p1/approve",
        "/signals/K1/mode",
    ],
)
def test_change_bodies_are_json_objects_of_known_string_fields(api_worker, path: str) -> None:
    """#9: non-object bodies were a 500 in the alerts API; now 400 with a reason, 413 when too big."""
    api, _, _ = api_worker
    for raw in (b"[]", b'"x"', b"3", b"null", b"true", b"{", b"\xff\xfe", b"NaN", b"[" * 3000):
        status, answer = api.bearer("POST", path, body=raw)
        assert status == 400, (raw[:20], status, answer)
        assert "JSON object" in answer["error"]
    status, answer = api.bearer("POST", path, body=b'{"note": "' + b"x" * 20_000 + b'"}')
    assert status == 413, answer
    name = "actor" if path.startswith("/signals") else "by"
    for body in ({name: ["x"]}, {name: 7}, {name: "x" * 65}, {name: "a\u202eb"}, {"unknown": 1}):
        status, answer = api.bearer("POST", path, body={"mode": "off", **body} if path.endswith("/mode") else body)
        assert status == 400, (body, status, answer)
    text = "reason" if path.startswith("/signals") else "note"
    status, answer = api.bearer("POST", path, body={"mode": "off", text: {"a": 1}} if path.endswith("/mode") else {text: {"a": 1}})
    assert status == 400 and text in answer["error"], answer
    # a well-formed change for something that does not exist is a 404, not a 400 or 500
    body = {"mode": "off", "actor": "duty"} if path.endswith("/mode") else {name: "duty"}
    assert api.bearer("POST", path, body=body)[0] == 404
    # the token is checked before the body: nobody learns what a body must look like without it
    assert api.call("POST", path, body=b"[]")[0] == 401


def test_faust_builtin_table_and_router_views_are_not_served(api_worker) -> None:
    """Faust serves /table/ (table names and values by key) and /router/ (cluster topology) to anyone
    who reaches the port, bypassing every token check above; Leitstand routes within one worker."""
    api, _, _ = api_worker
    for path in ("/table/", "/table/alarm-books/", "/router/", "/router/topics"):
        status, _ = api.call("GET", path)
        assert status == 404, path
