"""Scale-out through Kafka's consumer groups (issue 12, "Scale-out"). Both brokers.

Two worker processes of one role share the partitions of a four-partition stream; one is killed
with SIGKILL mid-stream; the survivor takes its partitions over and nothing is lost:

* critical role: every camera event raises its alarm and the alarm reaches a real local webhook
  receiver; each alarm has one delivery id (``webhook-id``), so it is exactly once at a receiver
  that de-duplicates by it, as Standard Webhooks asks. A delivery id may arrive twice only for a
  delivery the killed worker made in the seconds before the kill (its outbox update died with
  it), and only once more.
* telemetry role: every window the oracle computes is emitted; a window emitted twice (the
  killed worker's last windows, re-emitted by the survivor) must carry the same values, so the
  aggregates are exact once de-duplicated by ``aggregate_id`` (this test compares values; repeats
  themselves are what ``leitstand bench recovery`` counts: the history sink appends every record).
"""

from __future__ import annotations

import asyncio
import json
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp import web

from simulators.city.frames import frames
from streams import webhooks
from streams.kafka_io import ensure_topics, producer, tail
from streams.records import encode
from streams.settings import Settings
from streams.stack import WorkerProcess, free_port, ready_state, same_place, settings_env
from tests.integration.test_broker_outage import wait_for
from tests.oracle import detector_windows

pytestmark = [pytest.mark.integration, pytest.mark.slow]

PARTITIONS = 4
#: how long before the kill a delivery may have been made whose outbox update the kill can lose
IN_FLIGHT_S = 5.0
#: a delivery first seen this long after the kill was sent was still in flight from the killed worker
KILL_SLACK_S = 0.5
SECRET = "whsec_" + "c2NhbGUtb3V0LXRlc3Qtc2VjcmV0LTAxMjM0NTY3ODk="


class Receiver:
    """The on-duty pager gateway: a real aiohttp server on loopback, in a thread of its own,
    counting what arrives by delivery id (``webhook-id``) after checking the signature."""

    def __init__(self) -> None:
        self.by_id: Counter[str] = Counter()
        self.alarm_of: dict[str, str] = {}
        #: monotonic time each delivery id first arrived
        self.first_at: dict[str, float] = {}
        self.unverified = 0
        self.url = ""
        self._loop = asyncio.new_event_loop()
        self._stop: asyncio.Event | None = None
        started = threading.Event()
        self._thread = threading.Thread(target=lambda: self._loop.run_until_complete(self._serve(started)), daemon=True)
        self._thread.start()
        assert started.wait(10)

    async def _hook(self, request: web.Request) -> web.Response:
        body = await request.read()
        if not webhooks.verify(SECRET, request.headers, body, now=time.time()):
            self.unverified += 1
            return web.Response(status=401)
        did = request.headers["webhook-id"]
        self.by_id[did] += 1
        self.first_at.setdefault(did, time.monotonic())
        self.alarm_of[did] = json.loads(body)["alert"]["alarm_id"]
        return web.Response(status=204)

    async def _serve(self, started: threading.Event) -> None:
        app = web.Application()
        app.router.add_post("/duty", self._hook)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{runner.addresses[0][1]}/duty"
        self._stop = asyncio.Event()
        started.set()
        await self._stop.wait()
        await runner.cleanup()

    def close(self) -> None:
        if self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def _pair(s: Settings, tmp_path: Path, role: str, extra: dict[str, Any]) -> list[WorkerProcess]:
    """Two workers of ``role`` in one consumer group, each with a data dir and port of its own."""
    return [
        WorkerProcess(
            settings_env({**same_place(s), "data_dir": tmp_path / f"worker-{name}", "worker_role": role, **extra}),
            tmp_path / f"worker-{name}.log",
            free_port(),
        )
        for name in ("a", "b")
    ]


def _owned(worker: WorkerProcess, topic: str) -> set[int]:
    status, body = ready_state(worker.web_port)
    if status != 200:
        return set()
    return {int(tp.rsplit(":", 1)[1]) for tp in body.get("assigned", []) if tp.rsplit(":", 1)[0] == topic}


def _start_sharing(workers: list[WorkerProcess], topic: str) -> None:
    """Start both side by side (one group join, not a join and a rebalance) and wait until they
    split the topic's partitions between them."""
    for w in workers:
        w.launch()
    for w in workers:
        w.wait_ready(timeout_s=120)

    def shared() -> bool:
        a, b = (_owned(w, topic) for w in workers)
        return bool(a) and bool(b) and not a & b and a | b == set(range(PARTITIONS))

    assert wait_for(shared, timeout_s=90, step_s=0.5), [(ready_state(w.web_port), w.log_tail()) for w in workers]


def _send_paced(s: Settings, topic: str, items: list[tuple[bytes, bytes]], every_s: float, sent: list[int]) -> threading.Thread:
    """Send ``items`` from a thread, one per ``every_s``, each acknowledged; ``sent[0]`` counts."""

    async def run() -> None:
        prod = producer(s)
        await prod.start()
        try:
            for key, value in items:
                await prod.send_and_wait(s.topic(topic), value, key=key)
                sent[0] += 1
                await asyncio.sleep(every_s)
        finally:
            await prod.stop()

    thread = threading.Thread(target=lambda: asyncio.run(run()), daemon=True)
    thread.start()
    return thread


def _kill_when(worker: WorkerProcess, due: Callable[[], bool]) -> float:
    """SIGKILL ``worker`` once ``due``; returns the monotonic time of the kill."""
    assert wait_for(due, timeout_s=120, step_s=0.05), "the stream did not get far enough to kill a worker mid-stream"
    assert worker.proc is not None
    killed_at = time.monotonic()
    worker.proc.send_signal(signal.SIGKILL)
    worker.proc.wait(30)
    return killed_at


def _records(s: Settings, topic: str) -> list[dict[str, Any]]:
    async def read() -> list[dict[str, Any]]:
        return [orjson.loads(m.value) async for m in tail(s, s.topic(topic), from_beginning=True, idle_timeout_s=2.0) if m.value]

    return asyncio.run(read())


def test_critical_workers_share_partitions_and_the_survivor_alarms_once(broker, settings_for, tmp_path: Path, receiver: Receiver) -> None:
    s = settings_for(broker, topic_partitions=PARTITIONS)
    asyncio.run(ensure_topics(s))
    workers = _pair(
        s,
        tmp_path,
        "critical",
        {
            "webhook_secret": SECRET,
            "webhook_allowed_hosts": "127.0.0.1",
            "alarm_contact_levels": [[receiver.url]],
            "webhook_backoff_s": 0.2,
            "alarm_ack_timeout_critical_s": 3600.0,  # no escalation: one delivery per alarm
        },
    )
    topic = s.topic("pool.supervision")
    pools = [f"P{i:02d}" for i in range(40)]
    now = datetime.now(timezone.utc)
    events = [
        (
            pool.encode(),
            orjson.dumps(
                {
                    "schema_version": 1,
                    "event_time": now.isoformat(),
                    "pool_id": pool,
                    "event_id": f"E-{pool}",
                    "kind": "motionless_swimmer",
                    "zone": "deep end",
                    "duration_s": 12.0,
                    "confidence": 0.9,
                }
            ),
        )
        for pool in pools
    ]
    try:
        _start_sharing(workers, topic)
        killed, survivor = workers
        sent = [0]
        sender = _send_paced(s, "pool.supervision", events, every_s=0.25, sent=sent)
        killed_at = _kill_when(killed, lambda: sent[0] >= 15 and len(receiver.by_id) >= 5)
        sender.join(120)
        assert sent[0] == len(events)

        def alarmed() -> set[str]:
            return {a.split("@", 1)[1].split("~", 1)[0] for a in receiver.alarm_of.values()}

        got = wait_for(lambda: alarmed() >= set(pools), timeout_s=120, step_s=0.5)
        assert got, f"no delivery for {sorted(set(pools) - alarmed())}; {survivor.log_tail()}"
        assert wait_for(lambda: _owned(survivor, topic) == set(range(PARTITIONS)), timeout_s=60), ready_state(survivor.web_port)
        time.sleep(3)  # room for a late duplicate delivery to arrive before counting
        alerts = _records(s, "alerts")
    finally:
        codes = [w.stop() for w in workers]
    assert codes[1] == 0, workers[1].log_tail()

    raised: dict[str, list[dict[str, Any]]] = {}
    for a in alerts:
        if a.get("transition") == "raised":
            raised.setdefault(a["alarm_id"], []).append({k: v for k, v in a.items() if k != "event_time"})
    assert {a.split("@", 1)[1].split("~", 1)[0] for a in raised} == set(pools), "an alarm was lost"
    assert receiver.unverified == 0
    # Delivery is at-least-once by design (docs/architecture.md, Scale-out): a SIGKILL between the
    # receiver's 2xx and the outbox update repeats that delivery, with the same webhook-id, which
    # receivers de-duplicate. The kill above comes right after a delivery reached the receiver, in
    # that window on purpose. So a repeat is allowed only there: a delivery the killed worker made
    # in the last seconds before it died, repeated once by the survivor. Anything else (a repeat of
    # an older delivery, one sent twice by the survivor itself) is a lost outbox state: a bug.
    twice = {did: n for did, n in receiver.by_id.items() if n > 1}

    def explained(did: str, n: int) -> bool:
        # killed_at is taken just before the SIGKILL is sent: a request the worker had already
        # written reaches the receiver a few ms later (one CI run on Kafka: -0.0 s), so the window
        # starts KILL_SLACK_S after the kill
        return n == 2 and -KILL_SLACK_S <= killed_at - receiver.first_at[did] <= IN_FLIGHT_S

    unexplained = {did: (n, round(killed_at - receiver.first_at[did], 2)) for did, n in twice.items() if not explained(did, n)}
    assert not unexplained, f"webhooks delivered more than once outside the crash window: {unexplained}"
    ids_per_alarm = Counter(receiver.alarm_of.values())
    assert all(n == 1 for n in ids_per_alarm.values()), {a: n for a, n in ids_per_alarm.items() if n > 1}
    # the alerts topic itself: a raised transition repeated after the crash (the survivor
    # re-applying a command the killed worker had published but not yet saved) must be the same
    # record but for its publication time, so consumers de-duplicate it by alarm id
    for alarm_id, records in raised.items():
        assert all(r == records[0] for r in records), (alarm_id, records)


def test_telemetry_workers_share_partitions_and_the_survivor_finishes_every_window(broker, settings_for, tmp_path: Path) -> None:
    s = settings_for(broker, topic_partitions=PARTITIONS)
    asyncio.run(ensure_topics(s))
    workers = _pair(s, tmp_path, "telemetry", {"aggregate_idle_close_s": 3600.0, "aggregate_lateness_s": 0.0, "batch_max": 200})
    topic = s.topic("sensors.intersection")
    first = datetime.now(timezone.utc).replace(second=0, microsecond=0) - timedelta(minutes=45)
    all_frames = list(frames(intersections=16, start=first, interval_s=15.0, steps=120, seed=31))
    items = [(f.intersection_id.encode(), encode(f)) for f in all_frames]
    try:
        _start_sharing(workers, topic)
        killed, survivor = workers
        sent = [0]
        sender = _send_paced(s, "sensors.intersection", items, every_s=0.008, sent=sent)
        _kill_when(killed, lambda: sent[0] >= len(items) * 0.4)
        sender.join(240)
        assert sent[0] == len(items)
        last_end = max(f.event_time.timestamp() + f.interval_s for f in all_frames)
        want = {k: v for k, v in detector_windows(all_frames, 60).items() if int(k.rsplit("/", 1)[1]) + 60 <= last_end}

        def aggregates() -> dict[str, set[tuple[Any, ...]]]:
            got: dict[str, set[tuple[Any, ...]]] = {}
            for a in _records(s, "aggregates"):
                got.setdefault(a["aggregate_id"], set()).add((a["count_sum"], a["occupancy_mean"], a["frames"], a["speed_kmh_mean"]))
            return got

        got = wait_for(lambda: (g := aggregates()).keys() >= want.keys() and g, timeout_s=180, step_s=2) or aggregates()
        assert wait_for(lambda: _owned(survivor, topic) == set(range(PARTITIONS)), timeout_s=60), ready_state(survivor.web_port)
    finally:
        codes = [w.stop() for w in workers]
    assert codes[1] == 0, workers[1].log_tail()

    missing = sorted(set(want) - set(got))
    assert not missing, f"{len(missing)} of {len(want)} windows never emitted, e.g. {missing[:5]}"
    differing = {k: (sorted(v), want[k]) for k, v in got.items() if k in want and v != {want[k]}}
    assert not differing, f"{len(differing)} windows emitted with values other than the oracle's: {list(differing.items())[:3]}"


# Apache Kafka only in CI: the assignor's map rides the group protocol, which Tansu passes as well
# (2 of 2 runs while this was built); its half was left out for the suite's 30-minute limit
@pytest.mark.parametrize("broker", ["kafka"], indirect=True)
def test_alarm_api_answers_for_every_worker_and_for_the_survivor(broker, settings_for, tmp_path: Path) -> None:
    """Two critical workers split the alarm books. Whichever worker an operator's request reaches
    lists every open alarm and acknowledges any of them (forwarded to the book's holder); after a
    SIGKILL the survivor's listing names the dead worker until it holds every book itself."""
    from tests.integration.test_http_api_auth import TOKEN, Api

    s = settings_for(broker, topic_partitions=PARTITIONS)
    asyncio.run(ensure_topics(s))
    workers = _pair(s, tmp_path, "critical", {"api_token": TOKEN, "alarm_ack_timeout_critical_s": 3600.0})
    pools = [f"Q{i:02d}" for i in range(12)]
    now = datetime.now(timezone.utc).isoformat()

    def event(pool: str) -> bytes:
        record = {"schema_version": 1, "event_time": now, "pool_id": pool, "event_id": f"R-{pool}", "kind": "person_in_closed_zone"}
        return orjson.dumps({**record, "zone": "slide"})

    events = [(p.encode(), event(p)) for p in pools]
    topic = s.topic("pool.supervision")
    try:
        _start_sharing(workers, topic)
        a, b = (Api(w.web_port) for w in workers)
        sent = [0]
        _send_paced(s, "pool.supervision", events, every_s=0.0, sent=sent).join(60)

        def listed(api: Api, state: str = "open", local: bool = False) -> set[str]:
            status, body = api.call(
                "GET", f"/alerts?state={state}", auth=f"Bearer {TOKEN}", headers={"X-Leitstand-Forwarded-By": "test"} if local else None
            )
            assert status == 200, body
            return {x["subject_id"] for x in body["alerts"]}

        assert wait_for(lambda: listed(a) == set(pools) and listed(b) == set(pools), timeout_s=60, step_s=0.5), (listed(a), listed(b))
        own_a, own_b = listed(a, local=True), listed(b, local=True)
        assert own_a and own_b and not own_a & own_b and own_a | own_b == set(pools), (own_a, own_b)

        status, body = a.bearer("GET", "/alerts")
        assert body["workers"] == 2 and body["unreachable"] == [] and body["count"] == len(pools)
        for alarm in body["alerts"]:  # every ack through worker a: half of them are b's books
            status, answer = a.bearer("POST", f"/alerts/{alarm['alarm_id']}/ack", body={"note": "on my way"})
            assert status == 202, answer
        assert wait_for(lambda: listed(b, "acknowledged") == set(pools), timeout_s=30, step_s=0.5), listed(b, "acknowledged")
        # a forwarded acknowledgement keeps its body: before stop 46 the holder got an empty one
        _, acked = a.bearer("GET", "/alerts?state=acknowledged")
        notes = {x["subject_id"]: x.get("note") for x in acked["alerts"]}
        assert set(notes) == set(pools) and set(notes.values()) == {"on my way"}, notes

        assert workers[1].proc is not None
        workers[1].proc.send_signal(signal.SIGKILL)
        workers[1].proc.wait(30)
        status, body = a.bearer("GET", "/alerts")
        assert status == 200, body
        # until the group notices, b's books are named as unreachable, not silently left out
        assert body["unreachable"] == [] or set(body["unreachable"]) == {f"http://127.0.0.1:{workers[1].web_port}"}, body
        assert body["unreachable"] or {x["subject_id"] for x in body["alerts"]} == set(pools), body

        def survivor_holds_all() -> bool:
            status, body = a.bearer("GET", "/alerts?state=acknowledged")
            return status == 200 and body["unreachable"] == [] and {x["subject_id"] for x in body["alerts"]} == set(pools)

        assert wait_for(survivor_holds_all, timeout_s=90, step_s=0.5), (a.bearer("GET", "/alerts"), workers[0].log_tail())
    finally:
        codes = [w.stop() for w in workers]
    assert codes[0] == 0, workers[0].log_tail()
