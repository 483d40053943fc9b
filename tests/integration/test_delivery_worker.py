"""Alarm delivery by a real worker (critical role) through a real broker, to a real SMTP server
(STARTTLS required) and a real mosquitto: contacts per pool, the delivery log per channel,
silences, and no second delivery of a transition read again after a restart."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import aiomqtt
import orjson
import pytest

from streams.kafka_io import ensure_topics, producer, tail
from streams.settings import Settings
from streams.stack import WorkerProcess, free_port, same_place, settings_env
from tests.services.mail_mqtt import PASSWORD, USER, Mosquitto, SmtpServer, wait_for

pytestmark = [pytest.mark.integration]

SUED, NORD, OST = "aufsicht@bad-sued.example", "aufsicht@bad-nord.example", "aufsicht@bad-ost.example"
SIREN = "bad-sued/halle/sirene"


class Subscriber:
    """An MQTT client in its own thread and loop standing where a siren controller would."""

    def __init__(self, port: int, topic: str) -> None:
        self.port, self.topic = port, topic
        self.payloads: list[dict[str, Any]] = []
        self.ready = threading.Event()
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=lambda: self.loop.run_until_complete(self.run()), daemon=True)
        self.task: asyncio.Task[None] | None = None

    async def run(self) -> None:
        self.task = asyncio.current_task()
        try:
            async with aiomqtt.Client("127.0.0.1", self.port, username=USER, password=PASSWORD) as client:
                await client.subscribe(self.topic, qos=1)
                self.ready.set()
                async for message in client.messages:
                    self.payloads.append(orjson.loads(bytes(message.payload)))
        except asyncio.CancelledError:
            pass

    def __enter__(self) -> Subscriber:
        self.thread.start()
        assert self.ready.wait(30), "MQTT subscriber did not connect"
        return self

    def __exit__(self, *exc: object) -> None:
        if self.task is not None:
            self.loop.call_soon_threadsafe(self.task.cancel)
        self.thread.join(10)


def camera_event(pool: str, event_id: str, kind: str = "motionless_swimmer") -> dict[str, Any]:
    return {
        "schema_version": 1,
        "event_time": datetime.now(timezone.utc).isoformat(),
        "pool_id": pool,
        "event_id": event_id,
        "kind": kind,
        "zone": "deep end",
        "duration_s": 11.0,
        "confidence": 0.9,
    }


def send(s: Settings, topic: str, key: str, value: dict[str, Any] | bytes) -> None:
    async def go() -> None:
        p = producer(s)
        await p.start()
        try:
            await p.send_and_wait(s.topic(topic), value if isinstance(value, bytes) else orjson.dumps(value), key=key.encode())
        finally:
            await p.stop()

    asyncio.run(go())


def read(s: Settings, topic: str, full: bool = False) -> list[Any]:
    async def go() -> list[Any]:
        return [m async for m in tail(s, topic if full else s.topic(topic), from_beginning=True, idle_timeout_s=1.0) if m.value is not None]

    return asyncio.run(go())


def deliveries(s: Settings) -> list[dict[str, Any]]:
    return [orjson.loads(m.value) for m in read(s, "alerts.deliveries")]


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[tuple[SmtpServer, Mosquitto, Subscriber]]:
    (tmp_path / "smtp").mkdir()
    (tmp_path / "mqtt").mkdir()
    with SmtpServer(tmp_path / "smtp") as smtp, Mosquitto(tmp_path / "mqtt") as mosquitto, Subscriber(mosquitto.port, SIREN) as sub:
        yield smtp, mosquitto, sub


def test_contacts_per_pool_silences_and_no_repeat_after_restart(broker, settings_for, tmp_path: Path, servers) -> None:
    smtp, mosquitto, siren = servers
    s = settings_for(broker)
    asyncio.run(ensure_topics(s))
    contacts = {
        "P1": [[f"mailto:{SUED}", f"mqtt:{SIREN}"]],
        "P2": [[f"mailto:{NORD}"]],
        "*": [[f"mailto:{OST}"]],
    }
    env = settings_env(
        {**same_place(s), **smtp.settings(), **mosquitto.settings(), "alarm_subject_contacts": contacts, "webhook_backoff_s": 0.2}
    )
    env["LEITSTAND_WORKER_ROLE"] = "critical"
    worker = WorkerProcess(env, tmp_path / "worker.log", free_port())
    worker.start(timeout_s=120)
    try:
        # 1. this pool's duty address and siren, not the other pool's
        send(s, "pool.supervision", "P1", camera_event("P1", "E1"))
        wait_for(lambda: smtp.inbox.to(SUED) and siren.payloads, 60, "the P1 mail and siren message")
        [mail] = smtp.inbox.to(SUED)
        assert "motionless_swimmer at P1" in mail["Subject"] and smtp.inbox.mails[0]["tls"]
        assert siren.payloads[0]["alert"]["subject_id"] == "P1"
        assert smtp.inbox.to(NORD) == [] and smtp.inbox.to(OST) == []
        wait_for(lambda: len([d for d in deliveries(s) if d["outcome"] == "delivered"]) >= 2, 60, "two delivered records")
        log = {d["channel"]: d for d in deliveries(s)}
        assert log["email"]["outcome"] == "delivered" and log["email"]["target"] == "mailto:*@bad-sued.example"
        assert log["mqtt"]["outcome"] == "delivered" and log["mqtt"]["target"] == f"mqtt:{SIREN}"
        assert all(b"aufsicht" not in m.value for m in read(s, "alerts.deliveries"))  # no mailbox in the log

        # 2. a silenced pool: the alarm is raised and recorded, not delivered; the log says why
        now = datetime.now(timezone.utc)
        silence = {
            "schema_version": 1,
            "event_time": now.isoformat(),
            "silence_id": "S-cleaning-1",
            "subject_id": "P2",
            "starts_at": (now - timedelta(minutes=1)).isoformat(),
            "ends_at": (now + timedelta(hours=2)).isoformat(),
            "reason": "Grundreinigung",
            "by": "aufsicht.mueller",
        }
        send(s, "alerts.silences", "P2", silence)
        changelog = f"{s.app_id}-critical-alarm-silences-changelog"
        wait_for(lambda: any(b"S-cleaning-1" in m.value for m in read(s, changelog, full=True)), 60, "the silence in the notifier's table")
        send(s, "pool.supervision", "P2", camera_event("P2", "E2"))
        wait_for(lambda: any(d["outcome"] == "silenced" for d in deliveries(s)), 60, "the silenced record")
        [held] = [d for d in deliveries(s) if d["outcome"] == "silenced"]
        assert held["silence_id"] == "S-cleaning-1" and held["channel"] == "email" and "Grundreinigung" in held["detail"]
        alerts = [orjson.loads(m.value) for m in read(s, "alerts")]
        assert any(a["subject_id"] == "P2" and a["transition"] == "raised" for a in alerts)  # still raised and recorded
        assert smtp.inbox.to(NORD) == []
    finally:
        assert worker.stop() == 0, worker.log_tail()

    # 3. after a restart, the P1 transition read again is not delivered again
    p1_raised = next(m.value for m in read(s, "alerts") if orjson.loads(m.value)["subject_id"] == "P1")
    send(s, "alerts", "P1", p1_raised)  # a redelivered alerts record
    worker.start(timeout_s=120)
    try:
        # a new alarm of the same pool after it (same key, same partition: read after the repeat)
        send(s, "pool.supervision", "P1", camera_event("P1", "E3", kind="person_in_closed_zone"))
        wait_for(lambda: len(smtp.inbox.to(SUED)) >= 2, 60, "the second P1 alarm's mail")
        # the repeat was planned before the new alarm (same partition): once nothing is pending,
        # a repeated delivery would have reached the server too
        wait_for(lambda: worker.metrics().get("leitstand_webhook_pending_deliveries") == 0, 60, "an empty outbox")
        subjects = [m["Subject"] for m in smtp.inbox.to(SUED)]
        assert len(subjects) == 2 and "person_in_closed_zone" in subjects[1], subjects
        assert len([p for p in siren.payloads if p["alert"]["kind"] == "motionless_swimmer"]) == 1
        assert smtp.inbox.to(NORD) == []
    finally:
        assert worker.stop() == 0, worker.log_tail()
