"""The alarm books: the single writer of every alarm's lifecycle.

Everything that moves an alarm (a detector raising or clearing, a person acknowledging or
resolving) arrives as a ``LifecycleCommand`` on the internal ``alerts.lifecycle`` topic keyed
by subject, so changes to one subject are applied in order by one agent. People's commands
arrive on ``alerts.acks`` keyed by alert id (the audit trail of human actions, fed by the
HTTP API or any other client); a small router re-keys them by the subject encoded in the id.

Transitions go to ``alerts`` (keyed by subject) and are acknowledged by the broker before the
book that records them is saved, so a crash re-publishes a transition, never loses one; the
deterministic alarm ids make the repeat harmless downstream. Escalation runs on a timer.

Books carry the offset of the last command applied to them and the source resumes at the
table's checkpoint after a restart (``wiring.track_source``): a command a recovered book already
reflects is skipped, one it does not is applied, so no transition is lost and none is made
twice from the same command.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Callable, Iterable
from datetime import datetime, timezone
from typing import Any

import faust
import orjson
import structlog

from detection import alarms
from detection.alarms import AlarmChange, AlarmTrigger, Book, EscalationPolicy

from ..codec import RawMessage
from ..ingest import Positioned, decoded_batches, positioned_batches
from ..metrics import ALARM_COMMANDS_REJECTED, ALARM_TRANSITIONS, OPEN_ALARMS, EventClock
from ..records import AlertCommand, LifecycleCommand, encode
from ..settings import Settings
from ..topics import ALERTS, ALERTS_ACKS, ALERTS_LIFECYCLE
from .wiring import Outgoing, Sink, Times, applied, keyed_table, publish, save, stamped, states, topic_decoder, track_source

log = structlog.get_logger(__name__)
_TIME_FIELDS = ("raised_at", "last_occurrence_at", "deadline", "acknowledged_at", "escalated_at", "cleared_at", "resolved_at")


def policy_from(settings: Settings) -> EscalationPolicy:
    return EscalationPolicy(
        ack_timeout_s={
            "critical": settings.alarm_ack_timeout_critical_s,
            "major": settings.alarm_ack_timeout_major_s,
            "minor": settings.alarm_ack_timeout_minor_s,
        },
        levels=max(1, len(settings.alarm_contact_levels)),
    )


def _iso(t: float | None) -> str | None:
    return None if t is None else datetime.fromtimestamp(t, tz=timezone.utc).isoformat()


def alarm_json(alarm: alarms.Alarm) -> dict[str, Any]:
    """An alarm for people and dashboards: times as ISO 8601 (the books keep POSIX seconds)."""
    d = alarm.to_dict()
    for f in _TIME_FIELDS:
        d[f] = _iso(d[f])
    return d


def alert_record(change: AlarmChange, now: float) -> bytes:
    """The ``alerts`` value: the alarm as it is after ``change``."""
    return orjson.dumps({"schema_version": 1, "event_time": _iso(now), "transition": change.transition, **alarm_json(change.alarm)})


def apply_command(book: Book | None, cmd: LifecycleCommand, now: float, policy: EscalationPolicy) -> tuple[Book, list[AlarmChange]]:
    """One command against one subject's book; an ack for an unknown alarm raises ``UnknownAlarm``."""
    at = cmd.event_time.timestamp()
    if cmd.op == "raise":
        trig = AlarmTrigger(
            cmd.subject_id,
            cmd.kind,
            cmd.severity or "major",
            cmd.trigger or f"{at:.3f}",
            at,
            cmd.message or cmd.kind,
            cmd.evidence,
            cmd.subject_type,
        )
        return alarms.raise_alarm(book, trig, now, policy)
    if cmd.op == "clear":
        return alarms.clear_condition(book, cmd.kind, at)
    if cmd.op == "acknowledge":
        return alarms.acknowledge(book, cmd.alert_id or "", cmd.by or "unknown", at, cmd.note, cmd.command_id)
    return alarms.resolve(book, cmd.alert_id or "", cmd.by or "unknown", at, cmd.note, cmd.command_id)


def command_identity(ack: AlertCommand) -> str:
    """What makes a person's command the same command again: who did what to which alarm, when
    (to the microsecond the console or API stamped it). Re-sent by the router after a crash, it
    is the same; the same person acting again later is a new command."""
    what = "\x1f".join((ack.alert_id, ack.action, ack.by, ack.event_time.isoformat()))
    return "cmd-" + hashlib.blake2b(what.encode(), digest_size=16).hexdigest()


def command_for(ack: AlertCommand) -> tuple[bytes, LifecycleCommand]:
    """Re-key a person's command by the subject its alarm id names."""
    subject = alarms.subject_of(ack.alert_id) or ""
    kind = ack.alert_id.partition("@")[0]
    cmd = LifecycleCommand(
        schema_version=1,
        event_time=ack.event_time,
        op=ack.action,
        subject_id=subject,
        kind=kind,
        alert_id=ack.alert_id,
        by=ack.by,
        note=ack.note,
        command_id=command_identity(ack),
    )
    return subject.encode(), cmd


class AlarmBooks:
    """Handles the HTTP API needs: the table to read and the topic to write people's commands to."""

    def __init__(self, table: Any, acks_topic: Sink) -> None:
        self.table = table
        self.acks_topic = acks_topic

    def all_alarms(self) -> list[alarms.Alarm]:
        return [a for _, book in states(self.table) for a in alarms.open_alarms(book)]

    def find(self, alert_id: str) -> tuple[alarms.Alarm | None, bool]:
        """(open alarm, closed?) for an id, from the books this worker holds."""
        subject = alarms.subject_of(alert_id)
        book = self.table.get(subject.encode()) if subject else None
        if not book:
            return None, False
        for a in alarms.open_alarms(book):
            if a.alarm_id == alert_id:
                return a, False
        return None, alert_id in book["closed"]

    async def submit(self, cmd: AlertCommand) -> None:
        await (await self.acks_topic.send(key=cmd.alert_id.encode(), value=encode(cmd)))


def book_changes(
    books: Any,
    commands: Iterable[Positioned[LifecycleCommand]],
    now: float,
    policy: EscalationPolicy,
    replayed: Callable[[RawMessage], bool] = lambda raw: False,
) -> tuple[dict[bytes, Book], list[AlarmChange]]:
    """Apply a batch of commands in order: the changed books and the transitions they made.
    A command at or below the offset its book reflects was applied before a restart (skipped);
    one ``replayed`` after a restart rebuilds the book only (its transitions were sent before);
    a person's command for an alarm that does not exist is refused (counted, logged)."""
    updates: dict[bytes, Book] = {}
    changes: list[AlarmChange] = []
    for raw, cmd in commands:
        key = cmd.subject_id.encode()
        before = updates.get(key) or books.get(key)
        if raw.offset <= applied(before):
            continue
        try:
            book, done = apply_command(before, cmd, now, policy)
            updates[key] = stamped(book, raw.offset)
            if replayed(raw):
                continue
        except alarms.UnknownAlarm:
            ALARM_COMMANDS_REJECTED.labels(cmd.op).inc()
            log.warning("alarm command for an unknown alarm", op=cmd.op, alert_id=cmd.alert_id, by=cmd.by)
            continue
        changes += done
    return updates, changes


def due_escalations(books: Any, now: float, policy: EscalationPolicy) -> tuple[dict[bytes, Book], list[AlarmChange], int]:
    """Books with alarms escalated for want of an acknowledgement, the escalations, and the
    number of open alarms."""
    updates: dict[bytes, Book] = {}
    changes: list[AlarmChange] = []
    open_count = 0
    for key, before in states(books):
        book, done = alarms.escalate_due(before, now, policy)
        if done:
            updates[key] = stamped(book, applied(before))
            changes += done
        open_count += len(book["open"])
    return updates, changes, open_count


def alert_identity(key: bytes | None, value: bytes | None) -> str:
    """What makes an ``alerts`` record the same transition again: the alarm, the transition and
    where the alarm stood (not the processing time, which differs on a repeat)."""
    try:
        d = orjson.loads(value or b"{}")
    except orjson.JSONDecodeError:
        return ""
    if not isinstance(d, dict):
        return ""
    return "|".join(str(d.get(f)) for f in ("alarm_id", "transition", "occurrences", "level", "state", "active"))


def to_alerts(topic: Sink, changes: Iterable[AlarmChange], now: float) -> list[Outgoing]:
    return [Outgoing(topic, c.alarm.subject_id.encode(), alert_record(c, now)) for c in changes]


def report(changes: Iterable[AlarmChange]) -> None:
    """Counters and one log line per transition."""
    for c in changes:
        ALARM_TRANSITIONS.labels(c.transition, c.alarm.severity).inc()
        log.info(
            "alarm",
            transition=c.transition,
            alarm_id=c.alarm.alarm_id,
            severity=c.alarm.severity,
            escalation_level=c.alarm.level,
            by=c.alarm.acknowledged_by if c.transition == "acknowledged" else None,
        )


def register_router(app: faust.App, settings: Settings, deadletter: Any) -> Any:
    """People's commands (``alerts.acks``, keyed by alert id) re-keyed by subject onto
    ``alerts.lifecycle``; returns the acks topic (the HTTP API writes to it)."""
    acks = app.topic(settings.topic(ALERTS_ACKS))
    lifecycle_topic = app.topic(settings.topic(ALERTS_LIFECYCLE))
    decoder = topic_decoder(AlertCommand, settings)

    @app.agent(acks, name="route-alert-commands")
    async def route(stream: Any) -> None:
        async for commands in decoded_batches(stream, decoder, deadletter, max_batch=settings.batch_max, within_s=0.02):
            await publish(Outgoing(lifecycle_topic, key, encode(cmd)) for key, cmd in map(command_for, commands))

    return acks


def register(app: faust.App, settings: Settings, deadletter: Any) -> AlarmBooks:
    lifecycle_name = settings.topic(ALERTS_LIFECYCLE)
    lifecycle_topic = app.topic(lifecycle_name)
    alerts_name = settings.topic(ALERTS)
    alerts_topic = app.topic(alerts_name)
    books = keyed_table(app, "alarm-books", settings)
    tracking = track_source(app, books, [lifecycle_name], settings, outputs={alerts_name: alert_identity})
    policy = policy_from(settings)
    # internal topic, written only by our own agents; event times may be simulated ones
    decoder = topic_decoder(LifecycleCommand, settings, Times.ANY)
    lock = asyncio.Lock()  # agent and timer both read-modify-write books across an await
    clock = EventClock.for_reference(settings.timestamp_reference)
    acks = register_router(app, settings, deadletter)

    async def emit(changes: list[AlarmChange], updates: dict[bytes, Any], now: float) -> None:
        """Transitions on the broker before the books that record them are saved; a transition
        the stopped worker already sent (read back at recovery) is not sent again."""
        messages = to_alerts(alerts_topic, changes, now)
        fresh = {id(m) for m in tracking.unsent(messages)}
        changes = [c for c, m in zip(changes, messages, strict=True) if id(m) in fresh]
        await tracking.publish(m for m in messages if id(m) in fresh)
        report(changes)
        clock.observe_alarms(changes)  # leitstand_alarm_ack_seconds
        save(books, updates)

    @app.agent(lifecycle_topic, name="alarm-lifecycle")
    async def lifecycle(stream: Any) -> None:
        async for batch in positioned_batches(stream, decoder, deadletter, max_batch=settings.batch_max, within_s=0.02):
            async with lock:
                now = time.time()
                updates, changes = book_changes(books, batch.records, now, policy, tracking.replayed)
                await emit(changes, tracking.with_checkpoints(updates, batch.ends), now)

    @app.timer(interval=1.0)
    async def escalate() -> None:
        async with lock:
            now = time.time()
            updates, changes, open_count = due_escalations(books, now, policy)
            await emit(changes, updates, now)
        OPEN_ALARMS.set(open_count)

    return AlarmBooks(books, acks)
