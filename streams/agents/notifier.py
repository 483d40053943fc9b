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
from datetime import datetime, timezone
from typing import Any

import faust
import orjson
import structlog

from .. import webhooks
from ..metrics import WEBHOOK_DELIVERIES, WEBHOOK_PENDING
from ..settings import Settings
from ..topics import ALERTS, ALERTS_DELIVERIES

log = structlog.get_logger(__name__)


def register(app: faust.App, settings: Settings) -> None:
    alerts = app.topic(settings.topic(ALERTS))
    delivery_log = app.topic(settings.topic(ALERTS_DELIVERIES))
    outbox = app.Table("webhook-outbox", default=None, use_partitioner=True, key_type=bytes, partitions=settings.topic_partitions)
    secret = webhooks.secret_key(settings.webhook_secret.get_secret_value()) if settings.webhook_secret else None
    levels = settings.alarm_contact_levels
    allowed_hosts = tuple(settings.webhook_allowed_hosts)
    urls = {webhooks.target_id(url): url for level in levels for url in level}
    lock = asyncio.Lock()
    in_flight: set[str] = set()
    tasks: set[asyncio.Future[None]] = set()  # strong references, or asyncio may drop them

    @app.agent(alerts, name="notify-on-duty")
    async def plan(stream: Any) -> None:
        async for events in stream.take_events(500, within=0.02):
            now = time.time()
            async with lock:
                for e in events:
                    try:
                        alert = orjson.loads(e.message.value)
                    except orjson.JSONDecodeError:
                        continue  # written by our own lifecycle agent; nothing else writes here
                    planned = webhooks.plan_deliveries(alert, levels, now)
                    if planned:
                        key = e.message.key or b""
                        outbox[key] = {**(outbox.get(key) or {}), **planned}

    async def attempt(key: bytes, did: str, d: dict[str, Any]) -> None:
        try:
            url = urls.get(d.get("target_id", "")) or d.get("url")  # "url": planned by an older version
            if url is None:
                ok, detail, retry = False, "target no longer in LEITSTAND_ALARM_CONTACT_LEVELS", False
            else:
                # a session per attempt: alarms are rare, and nothing is left open at shutdown
                async with webhooks.session(allowed_hosts) as session:
                    ok, detail, retry = await webhooks.post(
                        session, did, url, d["body"].encode(), secret, settings.webhook_timeout_s, allowed_hosts
                    )
            target = d.get("target") or webhooks.origin(url or "")
            now = time.time()
            attempts = d["attempts"] + 1
            gave_up = not ok and (not retry or attempts >= settings.webhook_max_attempts)
            outcome = "delivered" if ok else ("failed" if gave_up else "retry")
            async with lock:
                pending = dict(outbox.get(key) or {})
                if ok or gave_up:
                    pending.pop(did, None)
                elif did in pending:
                    pending[did] = {
                        **d,
                        "attempts": attempts,
                        "next_at": now + webhooks.backoff_s(attempts, settings.webhook_backoff_s),
                        "last_error": detail,
                    }
                outbox[key] = pending
            WEBHOOK_DELIVERIES.labels(outcome).inc()
            record = {
                "schema_version": 1,
                "event_time": datetime.fromtimestamp(now, tz=timezone.utc).isoformat(),
                "delivery_id": did,
                "alarm_id": d["alarm_id"],
                "transition": d["transition"],
                "level": d["level"],
                "target": target,
                "target_id": d.get("target_id") or webhooks.target_id(url or ""),
                "attempt": attempts,
                "outcome": outcome,
                "detail": detail,
            }
            await delivery_log.send(key=d["alarm_id"].encode(), value=orjson.dumps(record))
            if outcome != "delivered":
                log.warning("webhook delivery", outcome=outcome, target=target, alarm_id=d["alarm_id"], attempt=attempts, detail=detail)
        finally:
            in_flight.discard(did)

    @app.timer(interval=0.25)
    async def dispatch() -> None:
        now, count = time.time(), 0
        for key, pending in list(outbox.items()):
            for did, d in (pending or {}).items():
                count += 1
                if did not in in_flight and d["next_at"] <= now:
                    in_flight.add(did)
                    task = asyncio.ensure_future(attempt(key, did, d))
                    tasks.add(task)
                    task.add_done_callback(tasks.discard)
        WEBHOOK_PENDING.set(count)
