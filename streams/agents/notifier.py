"""Deliver new and escalated alarms to the people on duty (webhooks), losing none.

``alerts`` -> an outbox table (changelogged) -> a dispatcher that posts every due delivery in
its own task. A delivery leaves the outbox only when a receiver answered 2xx or its attempts
are used up, and every attempt is logged on ``alerts.deliveries``. A receiver that is down or
slow holds up only its own deliveries: the others go out in their own tasks.

URLs never leave the settings: the outbox (changelogged to Kafka), the delivery log and the
worker log name a target by origin and id (``webhooks.plan_deliveries``), since a webhook URL
may carry a credential in its path or query.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from datetime import datetime, timezone
from typing import Any

import faust
import orjson
import structlog

from .. import webhooks
from ..metrics import WEBHOOK_DELIVERIES, WEBHOOK_PENDING, observe_delivery
from ..settings import Settings
from ..topics import ALERTS, ALERTS_DELIVERIES
from .wiring import Sink, keyed_table

log = structlog.get_logger(__name__)


def delivery_record(did: str, d: dict[str, Any], url: str | None, attempts: int, outcome: str, detail: str, now: float) -> dict[str, Any]:
    """One attempt as logged on ``alerts.deliveries`` (the target by origin and id, never its URL)."""
    return {
        "schema_version": 1,
        "event_time": datetime.fromtimestamp(now, tz=timezone.utc).isoformat(),
        "delivery_id": did,
        "alarm_id": d["alarm_id"],
        "transition": d["transition"],
        "level": d["level"],
        "target": d.get("target") or webhooks.origin(url or ""),
        "target_id": d.get("target_id") or webhooks.target_id(url or ""),
        "attempt": attempts,
        "outcome": outcome,
        "detail": detail,
    }


class Dispatcher:
    """The outbox and its deliveries: each due delivery is posted in its own task, so a slow or
    dead receiver holds up only its own deliveries."""

    def __init__(self, settings: Settings, outbox: Any, delivery_log: Sink) -> None:
        self.settings = settings
        self.outbox = outbox
        self.delivery_log = delivery_log
        self.secret = webhooks.secret_key(settings.webhook_secret.get_secret_value()) if settings.webhook_secret else None
        self.levels = settings.alarm_contact_levels
        self.allowed_hosts = tuple(settings.webhook_allowed_hosts)
        self.urls = {webhooks.target_id(url): url for level in self.levels for url in level}
        self.lock = asyncio.Lock()
        self.in_flight: set[str] = set()
        self.tasks: set[asyncio.Future[None]] = set()  # strong references, or asyncio may drop them

    async def plan(self, events: Iterable[Any], now: float) -> None:
        """New and escalated alarms -> deliveries in the outbox (per subject key)."""
        async with self.lock:
            for e in events:
                try:
                    alert = orjson.loads(e.message.value)
                except orjson.JSONDecodeError:
                    continue  # written by our own lifecycle agent; nothing else writes here
                planned = webhooks.plan_deliveries(alert, self.levels, now)
                if planned:
                    key = e.message.key or b""
                    self.outbox[key] = {**(self.outbox.get(key) or {}), **planned}

    def dispatch(self, now: float) -> int:
        """Start every due delivery not already in flight; returns how many are pending."""
        count = 0
        for key, pending in list(self.outbox.items()):
            for did, d in (pending or {}).items():
                count += 1
                if did not in self.in_flight and d["next_at"] <= now:
                    self.in_flight.add(did)
                    task = asyncio.ensure_future(self.attempt(key, did, d))
                    self.tasks.add(task)
                    task.add_done_callback(self.tasks.discard)
        return count

    async def attempt(self, key: bytes, did: str, d: dict[str, Any]) -> None:
        try:
            url = self.urls.get(d.get("target_id", "")) or d.get("url")  # "url": planned by an older version
            ok, detail, retry = await self._post(did, url, d)
            now = time.time()
            attempts = d["attempts"] + 1
            gave_up = not ok and (not retry or attempts >= self.settings.webhook_max_attempts)
            outcome = "delivered" if ok else ("failed" if gave_up else "retry")
            await self._settle(key, did, d, done=ok or gave_up, attempts=attempts, detail=detail, now=now)
            WEBHOOK_DELIVERIES.labels(outcome).inc()
            observe_delivery(outcome, d.get("created_at"), now)
            record = delivery_record(did, d, url, attempts, outcome, detail, now)
            await self.delivery_log.send(key=d["alarm_id"].encode(), value=orjson.dumps(record))
            if outcome != "delivered":
                log.warning(
                    "webhook delivery", outcome=outcome, target=record["target"], alarm_id=d["alarm_id"], attempt=attempts, detail=detail
                )
        finally:
            self.in_flight.discard(did)

    async def _post(self, did: str, url: str | None, d: dict[str, Any]) -> tuple[bool, str, bool]:
        """(delivered, detail, worth retrying) of one POST."""
        if url is None:
            return False, "target no longer in LEITSTAND_ALARM_CONTACT_LEVELS", False
        # a session per attempt: alarms are rare, and nothing is left open at shutdown
        async with webhooks.session(self.allowed_hosts) as session:
            return await webhooks.post(
                session, did, url, d["body"].encode(), self.secret, self.settings.webhook_timeout_s, self.allowed_hosts
            )

    async def _settle(self, key: bytes, did: str, d: dict[str, Any], *, done: bool, attempts: int, detail: str, now: float) -> None:
        """A finished delivery leaves the outbox; one to retry gets its attempt count and next time."""
        async with self.lock:
            pending = dict(self.outbox.get(key) or {})
            if done:
                pending.pop(did, None)
            elif did in pending:
                pending[did] = {
                    **d,
                    "attempts": attempts,
                    "next_at": now + webhooks.backoff_s(attempts, self.settings.webhook_backoff_s),
                    "last_error": detail,
                }
            self.outbox[key] = pending


def register(app: faust.App, settings: Settings) -> None:
    alerts = app.topic(settings.topic(ALERTS))
    dispatcher = Dispatcher(settings, keyed_table(app, "webhook-outbox", settings), app.topic(settings.topic(ALERTS_DELIVERIES)))

    @app.agent(alerts, name="notify-on-duty")
    async def plan(stream: Any) -> None:
        async for events in stream.take_events(500, within=0.02):
            await dispatcher.plan(events, time.time())

    @app.timer(interval=0.25)
    async def dispatch() -> None:
        WEBHOOK_PENDING.set(dispatcher.dispatch(time.time()))
