"""Webhook delivery: signed JSON POSTs with exponential backoff, planned as plain data.

The plan (who gets what, when to retry) is pure and tested on its own; ``post`` is the only
part that touches the network. Receivers verify ``X-Leitstand-Signature`` (HMAC-SHA256 of the
raw body with the shared secret, hex, prefixed ``sha256=``) and de-duplicate on
``X-Leitstand-Delivery``: at-least-once delivery means a receiver may see a delivery twice.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Sequence
from typing import Any

import aiohttp
import orjson

MAX_BACKOFF_S = 300.0
NOTIFY_TRANSITIONS = ("raised", "reraised", "escalated")


def signature(secret: bytes, body: bytes) -> str:
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def verify(secret: bytes, body: bytes, header: str) -> bool:
    """What a receiver does (used by our tests and documented for integrators)."""
    return hmac.compare_digest(signature(secret, body), header)


def backoff_s(attempts: int, base_s: float) -> float:
    """Delay before the next attempt after ``attempts`` failures: base, 2 base, 4 base, ..."""
    return min(MAX_BACKOFF_S, base_s * 2 ** max(0, attempts - 1))


def plan_deliveries(alert: dict[str, Any], contact_levels: Sequence[Sequence[str]], now: float) -> dict[str, dict[str, Any]]:
    """Deliveries for one ``alerts`` record: new and escalated alarms go to their level's URLs.

    Delivery ids are deterministic (alarm, transition, level, when), so a re-published
    transition plans the same deliveries again instead of new ones.
    """
    if alert.get("transition") not in NOTIFY_TRANSITIONS or not contact_levels:
        return {}
    level = min(int(alert.get("level") or 0), len(contact_levels) - 1)
    when = alert.get("escalated_at") if alert["transition"] == "escalated" else (
        alert.get("last_occurrence_at") or alert.get("raised_at"))
    out: dict[str, dict[str, Any]] = {}
    for url in contact_levels[level]:
        did = hashlib.blake2b(
            f"{alert['alarm_id']}|{alert['transition']}|{level}|{when}|{url}".encode(), digest_size=10
        ).hexdigest()
        out[did] = {
            "url": url, "alarm_id": alert["alarm_id"], "transition": alert["transition"], "level": level,
            "body": orjson.dumps({"delivery": did, "level": level, "alert": alert}).decode(),
            "attempts": 0, "next_at": now, "created_at": now,
        }
    return out


async def post(session: aiohttp.ClientSession, delivery_id: str, d: dict[str, Any], secret: bytes | None,
               timeout_s: float) -> tuple[bool, str]:
    """One attempt. (delivered, detail); any 2xx counts, everything else is retried."""
    body = d["body"].encode()
    headers = {"Content-Type": "application/json", "X-Leitstand-Delivery": delivery_id,
               "X-Leitstand-Timestamp": f"{time.time():.3f}", "User-Agent": "leitstand-notifier"}
    if secret:
        headers["X-Leitstand-Signature"] = signature(secret, body)
    try:
        async with session.post(d["url"], data=body, headers=headers,
                                timeout=aiohttp.ClientTimeout(total=timeout_s)) as resp:
            return 200 <= resp.status < 300, f"HTTP {resp.status}"
    except Exception as exc:  # noqa: BLE001 - every failure of a receiver is a retry, never a crash
        return False, f"{type(exc).__name__}: {exc}"[:300]
