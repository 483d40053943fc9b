"""Deliver new and escalated alarms to the people on duty (webhooks), losing none.

``alerts`` -> an outbox table (changelogged) -> a dispatcher that posts every due delivery in
its own task. A delivery leaves the outbox only when a receiver answered 2xx or its attempts
are used up, and every attempt is logged on ``alerts.deliveries``. A receiver that is down or
slow holds up only its own deliveries: the others go out in their own tasks.
"""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timezone
from typing import Any

import aiohttp
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
    outbox = app.Table("webhook-outbox", default=None, use_partitioner=True, key_type=bytes,
                       partitions=settings.topic_partitions)
    secret = settings.webhook_secret.get_secret_value().encode() if settings.webhook_secret else None
    levels = settings.alarm_contact_levels
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
            # a session per attempt: alarms are rare, and nothing is left open at shutdown
            async with aiohttp.ClientSession() as session:
                ok, detail = await webhooks.post(session, did, d, secret, settings.webhook_timeout_s)
            now = time.time()
            attempts = d["attempts"] + 1
            gave_up = not ok and attempts >= settings.webhook_max_attempts
            outcome = "delivered" if ok else ("failed" if gave_up else "retry")
            async with lock:
                pending = dict(outbox.get(key) or {})
                if ok or gave_up:
                    pending.pop(did, None)
                elif did in pending:
                    pending[did] = {**d, "attempts": attempts, "next_at": now + webhooks.backoff_s(attempts, settings.webhook_backoff_s),
                                    "last_error": detail}
                outbox[key] = pending
            WEBHOOK_DELIVERIES.labels(outcome).inc()
            record = {"schema_version": 1, "event_time": datetime.fromtimestamp(now, tz=timezone.utc).isoformat(),
                      "delivery_id": did, "alarm_id": d["alarm_id"], "transition": d["transition"], "level": d["level"],
                      "url": d["url"], "attempt": attempts, "outcome": outcome, "detail": detail}
            await delivery_log.send(key=d["alarm_id"].encode(), value=orjson.dumps(record))
            if outcome != "delivered":
                log.warning("webhook delivery", outcome=outcome, url=d["url"], alarm_id=d["alarm_id"], attempt=attempts, detail=detail)
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
