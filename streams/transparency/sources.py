"""Where explanations read the logs: the topics themselves, or the PostgreSQL history (``--db``).

The topics are read from the beginning without a consumer group (``kafka_io.tail``: never
disturbs the workers) and filtered by key field; the history tables are indexed by subject and
time, so ``--db`` is the way for a long-lived deployment (topics keep days, the audit log in
PostgreSQL at least 183 days; docs/transparency.md). Both return the same dict shapes, which
:mod:`streams.transparency.explain` reads.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import orjson

from ..kafka_io import TailError, tail
from ..settings import Settings
from ..topics import ALERTS, ALERTS_ACKS, SENSORS_INTERSECTION, SIGNALS_AUDIT, SIGNALS_PLANS
from .explain import epoch, explain_alarm, explain_signal

#: frames further back than this before the asked time are not read (data quality needs ~1 h)
FRAME_LOOKBACK_S = 3600.0
IDLE_S = 1.0


class ExplainSourceError(Exception):
    """The log could not be read (broker or database away): one line for CLI and HTTP."""


async def read_topic(settings: Settings, topic: str, keep: Callable[[Mapping[str, Any]], bool]) -> list[dict[str, Any]]:
    """Every JSON message of ``topic`` that ``keep`` accepts (undecodable ones are skipped)."""
    out: list[dict[str, Any]] = []
    try:
        async for m in tail(settings, settings.topic(topic), from_beginning=True, idle_timeout_s=IDLE_S):
            if m.value is None:
                continue
            try:
                value = orjson.loads(m.value)
            except orjson.JSONDecodeError:
                continue
            if isinstance(value, dict) and _readable_time(value) and keep(value):
                out.append(value)
    except (TailError, LookupError) as exc:
        raise ExplainSourceError(str(exc)) from None
    return out


async def signal_from_topics(settings: Settings, intersection_id: str, at_s: float) -> dict[str, Any]:
    mine: Callable[[Mapping[str, Any]], bool] = lambda v: v.get("intersection_id") == intersection_id  # noqa: E731
    plans = await read_topic(settings, SIGNALS_PLANS, mine)
    audit = await read_topic(settings, SIGNALS_AUDIT, mine)
    frames = await read_topic(
        settings, SENSORS_INTERSECTION, lambda v: mine(v) and "event_time" in v and at_s - FRAME_LOOKBACK_S <= _t(v) <= at_s
    )
    return explain_signal(intersection_id, at_s, plans, audit, frames)


def _readable_time(v: Mapping[str, Any]) -> bool:
    """A record without an ``event_time`` the explanations can read is skipped like undecodable
    bytes: one such record made every explanation of its intersection or alarm a traceback."""
    try:
        return math.isfinite(epoch(v["event_time"]))
    except (KeyError, TypeError, ValueError, OverflowError):
        return False


def _t(v: Mapping[str, Any]) -> float:
    try:
        return epoch(v["event_time"])
    except (ValueError, TypeError):
        return float("nan")


async def alarm_from_topics(settings: Settings, alarm_id: str) -> dict[str, Any]:
    alerts = await read_topic(settings, ALERTS, lambda v: v.get("alarm_id") == alarm_id)
    acks = await read_topic(settings, ALERTS_ACKS, lambda v: v.get("alert_id") == alarm_id)
    return explain_alarm(alarm_id, alerts, acks)


_PLANS_SQL = """SELECT event_time, intersection_id, plan_id, session, status, mode, controller, version, rule, cyclic,
 phases, explanation, violations, not_following, extract(epoch FROM event_time) AS time_s
 FROM signal_decisions WHERE intersection_id = %s AND event_time <= to_timestamp(%s) ORDER BY event_time DESC LIMIT 500"""
_AUDIT_SQL = """SELECT event_time, subject_id AS intersection_id, session, action, actor, detail FROM audit_log
 WHERE source = 'signals.audit' AND subject_id = %s AND event_time <= to_timestamp(%s) + interval '1 day'
 ORDER BY event_time DESC LIMIT 5000"""
_ALERTS_SQL = """SELECT event_time, transition, alarm_id, subject_id, subject_type, kind, severity, state, level, message,
 raised_at, acknowledged_at, acknowledged_by, escalated_at, resolved_at, resolved_by, evidence
 FROM alarm_transitions WHERE alarm_id = %s ORDER BY event_time"""
_ACKS_SQL = """SELECT event_time, subject_id AS alert_id, action, actor AS "by", detail->>'note' AS note FROM audit_log
 WHERE source = 'alerts.acks' AND subject_id = %s ORDER BY event_time"""


async def _rows(settings: Settings, queries: list[tuple[str, tuple[Any, ...]]]) -> list[list[dict[str, Any]]]:
    import psycopg
    from psycopg.rows import dict_row

    from ..db.connect import DatabaseUnavailable, connect_async, dsn_of

    try:  # no database configured or none reachable: the same one line as a failed query
        conn = await connect_async(dsn_of(settings), application_name="leitstand-explain")
    except DatabaseUnavailable as exc:
        raise ExplainSourceError(str(exc)) from None
    try:
        out = []
        async with conn.cursor(row_factory=dict_row) as cur:
            for sql, args in queries:
                await cur.execute(sql, args)
                out.append([dict(r) for r in await cur.fetchall()])
        return out
    except psycopg.Error as exc:
        raise ExplainSourceError(f"cannot read the history: {str(exc).strip().splitlines()[0]}") from None
    finally:
        await conn.close()


async def signal_from_db(settings: Settings, intersection_id: str, at_s: float) -> dict[str, Any]:
    plans, audit = await _rows(settings, [(_PLANS_SQL, (intersection_id, at_s)), (_AUDIT_SQL, (intersection_id, at_s))])
    return explain_signal(intersection_id, at_s, plans, audit, None)


async def alarm_from_db(settings: Settings, alarm_id: str) -> dict[str, Any]:
    alerts, acks = await _rows(settings, [(_ALERTS_SQL, (alarm_id,)), (_ACKS_SQL, (alarm_id,))])
    return explain_alarm(alarm_id, alerts, acks)


async def explain_signal_from(settings: Settings, intersection_id: str, at_s: float, use_db: bool) -> dict[str, Any]:
    """The CLI's and the API's one entry for signals."""
    if use_db:
        return await signal_from_db(settings, intersection_id, at_s)
    return await signal_from_topics(settings, intersection_id, at_s)


async def explain_alarm_from(settings: Settings, alarm_id: str, use_db: bool) -> dict[str, Any]:
    """The CLI's and the API's one entry for alarms."""
    if use_db:
        return await alarm_from_db(settings, alarm_id)
    return await alarm_from_topics(settings, alarm_id)
