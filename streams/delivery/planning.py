"""What to deliver, what was delivered, when to try again, and whether a silence holds (pure).

The notifier keeps one outbox entry per subject (a changelogged Faust table)::

    {"pending": {delivery_id: delivery, ...}, "done": {delivery_id: finished_at, ...}}

``pending`` are deliveries still to send (with their attempt count and next time); ``done``
remembers the ids that reached a final outcome (delivered, failed, silenced) for
``DONE_KEEP_S``. A transition read again (the ``alerts`` record redelivered after a restart or
a rebalance) plans the same deterministic ids, and ``with_planned`` drops those already pending
or done: a delivery is never planned, so never sent, twice. The one window left is a crash
after a server accepted a delivery and before the outbox recorded it; that delivery is sent
again with the same id (webhook-id header, e-mail Message-ID, the ``delivery`` field of the
MQTT payload), on which receivers de-duplicate.

Entries written before this format (a plain ``{delivery_id: delivery}``) are read as pending.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from typing import Any, Literal

import orjson

from .. import webhooks
from .contacts import Levels, parse_contact

#: how long, and how many per subject, finished delivery ids are remembered
DONE_KEEP_S = 7 * 24 * 3600.0
DONE_KEEP_N = 1000

Outcome = Literal["delivered", "retry", "failed"]
Outbox = dict[str, Any]


def plan_deliveries(alert: Mapping[str, Any], levels: Levels, now: float, allowed_hosts: Iterable[str] = ()) -> dict[str, dict[str, Any]]:
    """Deliveries of one ``alerts`` record: new and escalated alarms go to every contact of
    their level (an escalation past the last level stays at the last one).

    A delivery names its contact by ``target_id`` and ``target`` only: the outbox is
    changelogged to Kafka, and a URL may carry a credential, an e-mail address is personal.
    """
    if alert.get("transition") not in webhooks.NOTIFY_TRANSITIONS or not levels:
        return {}
    level = min(int(alert.get("level") or 0), len(levels) - 1)
    allowed = tuple(allowed_hosts)
    out: dict[str, dict[str, Any]] = {}
    for raw in levels[level]:
        contact = parse_contact(raw, allowed)
        did = webhooks.delivery_id(alert, level, raw)
        out[did] = {
            "channel": contact.channel,
            "target_id": contact.target_id,
            "target": contact.target,
            "alarm_id": alert["alarm_id"],
            "subject_id": alert.get("subject_id"),
            "transition": alert["transition"],
            "level": level,
            "body": orjson.dumps({"delivery": did, "level": level, "alert": alert}).decode(),
            "attempts": 0,
            "next_at": now,
            "created_at": now,
        }
    return out


def outbox_parts(value: Mapping[str, Any] | None) -> tuple[dict[str, Any], dict[str, float]]:
    """(pending, done) of one subject's outbox entry, whichever format it was written in."""
    if not value:
        return {}, {}
    if isinstance(value.get("pending"), dict) and isinstance(value.get("done"), dict):
        return dict(value["pending"]), dict(value["done"])
    return dict(value), {}  # the format before: delivery id -> delivery


def with_planned(value: Mapping[str, Any] | None, planned: Mapping[str, dict[str, Any]]) -> tuple[Outbox, dict[str, dict[str, Any]]]:
    """The outbox with ``planned`` added, and which of them are new (neither pending nor done)."""
    pending, done = outbox_parts(value)
    added = {did: d for did, d in planned.items() if did not in pending and did not in done}
    return {"pending": {**pending, **added}, "done": done}, added


def prune_done(done: Mapping[str, float], now: float, keep_s: float = DONE_KEEP_S, keep_n: int = DONE_KEEP_N) -> dict[str, float]:
    """The finished ids still worth remembering: younger than ``keep_s``, the newest ``keep_n``."""
    young = [(t, did) for did, t in done.items() if now - t < keep_s]
    young.sort(reverse=True)
    return {did: t for t, did in young[:keep_n]}


def finished(value: Mapping[str, Any] | None, dids: Iterable[str], now: float) -> Outbox:
    """The outbox with ``dids`` moved from pending to done (delivered, failed or silenced)."""
    pending, done = outbox_parts(value)
    for did in dids:
        pending.pop(did, None)
        done[did] = now
    return {"pending": pending, "done": prune_done(done, now)}


def rescheduled(value: Mapping[str, Any] | None, did: str, attempts: int, detail: str, now: float, backoff_base_s: float) -> Outbox:
    """The outbox with one pending delivery's attempt counted and its next try set."""
    pending, done = outbox_parts(value)
    if did in pending:
        pending[did] = {
            **pending[did],
            "attempts": attempts,
            "next_at": now + webhooks.backoff_s(attempts, backoff_base_s),
            "last_error": detail,
        }
    return {"pending": pending, "done": done}


def outcome_of(ok: bool, retry: bool, attempts: int, max_attempts: int) -> Outcome:
    """Delivered; failed for good (not worth retrying, or the last attempt); or retry later."""
    if ok:
        return "delivered"
    if not retry or attempts >= max_attempts:
        return "failed"
    return "retry"


def due(pending: Mapping[str, Mapping[str, Any]], now: float, in_flight: Iterable[str] = ()) -> list[str]:
    """Pending deliveries whose time has come and that are not being sent right now."""
    busy = set(in_flight)
    return [did for did, d in pending.items() if did not in busy and d["next_at"] <= now]


# --- silences ----------------------------------------------------------------------------


def silence_state(silence_id: str, starts_at: float, ends_at: float, reason: str, by: str) -> dict[str, Any]:
    """A silence as the notifier keeps it (POSIX seconds), the latest one per subject."""
    return {"silence_id": silence_id, "starts_at": starts_at, "ends_at": ends_at, "reason": reason, "by": by}


def silence_active(silence: Mapping[str, Any] | None, now: float) -> bool:
    """Whether a subject's silence holds at ``now``: ``starts_at <= now < ends_at`` (a silence
    sent with ``ends_at <= starts_at`` lifts the one before and holds never)."""
    return silence is not None and float(silence["starts_at"]) <= now < float(silence["ends_at"])


def silenced_detail(silence: Mapping[str, Any]) -> str:
    """What the delivery log says of a delivery a silence held back."""
    until = datetime.fromtimestamp(float(silence["ends_at"]), tz=timezone.utc).isoformat()
    return f"silenced by {silence['silence_id']} until {until} ({silence['by']}: {silence['reason']})"[:300]
