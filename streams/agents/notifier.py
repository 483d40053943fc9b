"""Deliver new and escalated alarms to the people on duty (webhooks, e-mail, MQTT), losing none,
sending none twice, and holding back what a silence covers.

``alerts`` -> an outbox table (changelogged) -> a dispatcher that sends every due delivery in
its own task. A delivery leaves the outbox only when a receiver accepted it or its attempts
are used up, and every attempt is logged on ``alerts.deliveries`` (``channel``: webhook, email
or mqtt). A receiver that is down or slow holds up only its own deliveries. The outbox also
remembers the ids it finished (``delivery.planning``), so a transition read again after a
restart is not delivered again.

``alerts.silences`` -> a silences table (the latest silence per subject). An alarm of a subject
whose silence holds (``starts_at <= now < ends_at`` when the transition reaches the notifier) is
raised and recorded as always, but not delivered: each delivery it would have had is logged
with outcome ``silenced`` and the silence id. Both topics are keyed by subject and have the same
partition count, so one worker holds a subject's alarms and its silence.

Contacts never leave the settings: the outbox, the delivery log and the worker log name a
target by ``target`` and ``target_id`` (``delivery.contacts``), since a webhook URL may carry a
credential and an e-mail address is personal.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Sequence
from datetime import datetime, timezone
from typing import Any

import faust
import orjson
import structlog

from .. import webhooks
from ..delivery import contacts, email, mqtt, planning
from ..ingest import decoded_batches
from ..metrics import ALARM_DELIVERIES, WEBHOOK_DELIVERIES, WEBHOOK_PENDING, observe_delivery
from ..records import Silence
from ..settings import Settings
from ..topics import ALERTS, ALERTS_DELIVERIES, ALERTS_SILENCES, DEADLETTER
from .wiring import Sink, changelog_durable, keyed_table, topic_decoder

log = structlog.get_logger(__name__)


def delivery_record(
    did: str, d: dict[str, Any], url: str | None, attempts: int, outcome: str, detail: str, now: float, silence_id: str | None = None
) -> dict[str, Any]:
    """One attempt as logged on ``alerts.deliveries`` (the target by name and id, never its address)."""
    return {
        "schema_version": 1,
        "event_time": datetime.fromtimestamp(now, tz=timezone.utc).isoformat(),
        "delivery_id": did,
        "channel": d.get("channel") or "webhook",  # planned before e-mail and MQTT: a webhook
        "alarm_id": d["alarm_id"],
        "transition": d["transition"],
        "level": d["level"],
        "target": d.get("target") or webhooks.origin(url or ""),
        "target_id": d.get("target_id") or webhooks.target_id(url or ""),
        "attempt": attempts,
        "outcome": outcome,
        "detail": detail,
        "silence_id": silence_id,
    }


def silence_from(record: Silence) -> dict[str, Any]:
    """The table value of a silence record."""
    return planning.silence_state(record.silence_id, record.starts_at.timestamp(), record.ends_at.timestamp(), record.reason, record.by)


class Dispatcher:
    """The outbox and its deliveries: each due delivery is sent in its own task, so a slow or
    dead receiver holds up only its own deliveries."""

    def __init__(self, settings: Settings, outbox: Any, delivery_log: Sink, silences: Any | None = None) -> None:
        self.settings = settings
        self.outbox = outbox
        self.silences: Any = silences if silences is not None else {}
        self.delivery_log = delivery_log
        self.secret = webhooks.secret_key(settings.webhook_secret.get_secret_value()) if settings.webhook_secret else None
        self.levels = settings.alarm_contact_levels
        self.subject_contacts = settings.alarm_subject_contacts
        self.allowed_hosts = tuple(settings.webhook_allowed_hosts)
        self.contacts = {
            webhooks.target_id(raw): contacts.parse_contact(raw, self.allowed_hosts)
            for raw in contacts.all_contacts(self.subject_contacts, self.levels)
        }
        self.lock = asyncio.Lock()
        self.in_flight: set[str] = set()
        self.tasks: set[asyncio.Future[None]] = set()  # strong references, or asyncio may drop them

    async def plan(self, events: Iterable[Any], now: float) -> None:
        """New and escalated alarms -> deliveries in the outbox (per subject key); those a
        silence holds back are logged as ``silenced`` and remembered as done."""
        async with self.lock:
            for e in events:
                try:
                    alert = orjson.loads(e.message.value)
                except orjson.JSONDecodeError:
                    continue  # written by our own lifecycle agent; nothing else writes here
                key = e.message.key or b""
                await self._plan_one(key, alert, now)

    async def _plan_one(self, key: bytes, alert: dict[str, Any], now: float) -> None:
        subject = str(alert.get("subject_id") or key.decode(errors="replace"))
        levels = contacts.levels_for(subject, self.subject_contacts, self.levels)
        planned = planning.plan_deliveries(alert, levels, now, self.allowed_hosts)
        if not planned:
            return
        value, added = planning.with_planned(self.outbox.get(key), planned)
        if not added:
            return  # a transition read again: every delivery of it is pending or done
        silence = self.silences.get(key)
        if planning.silence_active(silence, now):
            detail = planning.silenced_detail(silence)
            records = [delivery_record(did, d, None, 0, "silenced", detail, now, silence["silence_id"]) for did, d in added.items()]
            # the log has them before the outbox forgets them (a crash in between repeats, never loses)
            acks = [await self.delivery_log.send(key=r["alarm_id"].encode(), value=orjson.dumps(r)) for r in records]
            await asyncio.gather(*acks)
            value = planning.finished(value, added, now)
            for d in added.values():
                ALARM_DELIVERIES.labels(d["channel"], "silenced").inc()
            log.info("alarm silenced", alarm_id=alert.get("alarm_id"), silence_id=silence["silence_id"], deliveries=len(added))
        self.outbox[key] = value

    def dispatch(self, now: float) -> int:
        """Start every due delivery not already in flight; returns how many are pending."""
        count = 0
        for key, value in list(self.outbox.items()):
            pending, _ = planning.outbox_parts(value)
            count += len(pending)
            for did in planning.due(pending, now, self.in_flight):
                self.in_flight.add(did)
                task = asyncio.ensure_future(self.attempt(key, did, pending[did]))
                self.tasks.add(task)
                task.add_done_callback(self.tasks.discard)
        return count

    async def attempt(self, key: bytes, did: str, d: dict[str, Any]) -> None:
        try:
            contact = self.contacts.get(d.get("target_id", ""))
            url = d.get("url")  # planned by an older version: the URL itself
            if contact is None and url:
                contact = contacts.Contact("webhook", url, url)
            ok, detail, retry = await self.send(did, contact, d)
            now = time.time()
            attempts = d["attempts"] + 1
            outcome = planning.outcome_of(ok, retry, attempts, self.settings.webhook_max_attempts)
            await self._settle(key, did, outcome, attempts, detail, now)
            channel = d.get("channel") or "webhook"
            ALARM_DELIVERIES.labels(channel, outcome).inc()
            if channel == "webhook":
                WEBHOOK_DELIVERIES.labels(outcome).inc()
                observe_delivery(outcome, d.get("created_at"), now)
            record = delivery_record(did, d, contact.address if contact else None, attempts, outcome, detail, now)
            await self.delivery_log.send(key=d["alarm_id"].encode(), value=orjson.dumps(record))
            if outcome != "delivered":
                log.warning(
                    "alarm delivery",
                    channel=channel,
                    outcome=outcome,
                    target=record["target"],
                    alarm_id=d["alarm_id"],
                    attempt=attempts,
                    detail=detail,
                )
        finally:
            self.in_flight.discard(did)

    async def send(self, did: str, contact: contacts.Contact | None, d: dict[str, Any]) -> tuple[bool, str, bool]:
        """(delivered, detail, worth retrying) of one attempt on the contact's channel."""
        if contact is None:
            return False, "target no longer among the configured contacts", False
        if contact.channel == "email":
            assert self.settings.smtp_from is not None  # the settings refuse e-mail contacts without it
            msg = email.message(did, d, self.settings.smtp_from, contact.address, time.time())
            return await email.send(self.settings, contact.address, msg)
        if contact.channel == "mqtt":
            return await mqtt.publish(self.settings, contact.address, d["body"].encode())
        # a session per attempt: alarms are rare, and nothing is left open at shutdown
        async with webhooks.session(self.allowed_hosts) as session:
            return await webhooks.post(
                session, did, contact.address, d["body"].encode(), self.secret, self.settings.webhook_timeout_s, self.allowed_hosts
            )

    async def _settle(self, key: bytes, did: str, outcome: planning.Outcome, attempts: int, detail: str, now: float) -> None:
        """A finished delivery moves to done; one to retry gets its attempt count and next time."""
        async with self.lock:
            value = self.outbox.get(key)
            if outcome == "retry":
                self.outbox[key] = planning.rescheduled(value, did, attempts, detail, now, self.settings.webhook_backoff_s)
            else:
                self.outbox[key] = planning.finished(value, [did], now)
        # durable before the next delivery: a crash now repeats only this one (same webhook-id)
        await changelog_durable(self.outbox.app)

    def keep_silences(self, records: Sequence[Silence]) -> None:
        """The latest silence per subject wins (records arrive in order per subject)."""
        for r in records:
            self.silences[r.subject_id.encode()] = silence_from(r)
            log.info(
                "silence",
                subject_id=r.subject_id,
                silence_id=r.silence_id,
                starts_at=r.starts_at.isoformat(),
                ends_at=r.ends_at.isoformat(),
            )


async def changelog_known(table: Any) -> None:
    """Wait until the producer knows the partitions of ``table``'s changelog.

    A write to a table with ``use_partitioner=True`` hashes the key with the producer's
    metadata and raises ``TypeError`` when the changelog topic is not in it yet (Faust creates
    changelogs at start-up but never asks for their metadata). Seen on Apache Kafka when a
    silence arrived a few seconds after start: the agent crashed and took the worker down.
    Immediate once the producer knows the topic.
    """
    producer = table.app.producer._ensure_producer()  # aiokafka's producer inside Faust's
    await producer.partitions_for(table.changelog_topic.get_topic_name())


def register(app: faust.App, settings: Settings, deadletter: Any | None = None) -> Dispatcher:
    """The notifier's agents and timer; ``deadletter`` receives silences that do not decode."""
    if deadletter is None:
        deadletter = app.topic(settings.topic(DEADLETTER), key_serializer="raw", value_serializer="raw")
    alerts = app.topic(settings.topic(ALERTS))
    silences_topic = app.topic(settings.topic(ALERTS_SILENCES))
    outbox, silences = keyed_table(app, "webhook-outbox", settings), keyed_table(app, "alarm-silences", settings)
    dispatcher = Dispatcher(settings, outbox, app.topic(settings.topic(ALERTS_DELIVERIES)), silences)
    decoder = topic_decoder(Silence, settings)

    @app.agent(alerts, name="notify-on-duty")
    async def plan(stream: Any) -> None:
        async for events in stream.take_events(500, within=0.02):
            await changelog_known(outbox)
            await dispatcher.plan(events, time.time())
            await changelog_durable(app)  # the outbox is durable before these alerts are acknowledged

    @app.agent(silences_topic, name="notifier-silences")
    async def keep_silences(stream: Any) -> None:
        async for records in decoded_batches(stream, decoder, deadletter, max_batch=500, within_s=0.05):
            await changelog_known(silences)
            dispatcher.keep_silences(records)
            await changelog_durable(app)

    @app.timer(interval=0.25)
    async def dispatch() -> None:
        WEBHOOK_PENDING.set(dispatcher.dispatch(time.time()))

    return dispatcher
