"""The alarm lifecycle: raised -> acknowledged -> resolved, escalated when nobody answers.

Pure state-machine functions over one subject's alarm book (a pool, an intersection, a
detector). The book is a plain dict so it lives in a Faust table as it is:

    {"open": {kind: alarm_dict}, "closed": [alarm ids, newest last],
     "closed_triggers": [kind + US + trigger absorbed by a closed alarm],   (when there are any)
     "commands": [ids of people's commands applied, newest last]}          (when there are any)

Rules an operator can rely on:

* **One open alarm per subject and kind.** A second trigger while one is open adds evidence
  (``occurrences`` rises, transition ``occurred``), it does not open a second alarm. Except
  that a new occurrence of a *critical* alarm somebody already acknowledged re-arms it
  (transition ``reraised``: unacknowledged again, a new deadline, delivered again): the person
  on duty is busy with the first swimmer and must hear about the second.
* **Deterministic ids.** ``alarm_id(kind, subject, trigger)`` is derived from what triggered
  it (a camera event id, the event time a water violation began), so a redelivered event
  finds its alarm already open or already closed and changes nothing. A trigger an alarm
  absorbed as a further occurrence is remembered when that alarm closes (``closed_triggers``):
  redelivered after a worker crash, it used to open a new alarm for a swimmer already dealt
  with (stop 55).
* **A person's command acts once.** Acknowledgements and resolutions carry the identity of the
  person's command (``command``); one applied before is skipped. The router that re-keys them is
  at-least-once: after a crash it re-sent an acknowledgement, and if a second swimmer had
  re-armed the alarm meanwhile, that old acknowledgement acknowledged the new swimmer (stop 55).
* **Escalation.** An alarm not acknowledged within its severity's deadline moves to the next
  contact level and the deadline restarts; at the last level it is re-sent there.
* **Clearing is not resolving.** When the condition goes away (water back in range, camera
  restored) an acknowledged alarm resolves itself; an unacknowledged one stays open
  (``active`` false) until a person has seen it, as in ISA-18.2's "return to normal,
  unacknowledged". Critical alarms (a person at risk) never resolve without a person.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

Severity = Literal["critical", "major", "minor"]
AlarmState = Literal["raised", "acknowledged", "escalated", "resolved"]
Transition = Literal["raised", "reraised", "occurred", "acknowledged", "escalated", "resolved", "updated"]

SEVERITIES: tuple[Severity, ...] = ("critical", "major", "minor")
MAX_CLOSED_IDS = 200  # remembered per subject, so redelivered triggers stay quiet
#: triggers absorbed by closed alarms, and people's commands applied, remembered per subject: a
#: redelivery comes seconds to minutes after the original (a worker's restart), not days
MAX_CLOSED_TRIGGERS = 500
MAX_COMMAND_IDS = 200


@dataclass(frozen=True)
class EscalationPolicy:
    """Acknowledgement deadlines per severity and how many contact levels there are."""

    ack_timeout_s: Mapping[str, float] = field(default_factory=lambda: {"critical": 30.0, "major": 600.0, "minor": 3600.0})
    levels: int = 2  # 0 = the person on duty, 1 = their deputy / the manager, ...


@dataclass(frozen=True)
class AlarmTrigger:
    """What a detector or rule says happened; the lifecycle decides what it means."""

    subject_id: str
    kind: str
    severity: Severity
    trigger: str  # stable identity of the cause (event id, violation start)
    at: float  # event time, POSIX seconds
    message: str
    evidence: Mapping[str, Any] = field(default_factory=dict)
    subject_type: str = "pool"


@dataclass(frozen=True)
class Alarm:
    alarm_id: str
    subject_id: str
    subject_type: str
    kind: str
    severity: Severity
    state: AlarmState
    message: str
    raised_at: float
    evidence: Mapping[str, Any]
    active: bool = True  # the condition is still present
    level: int = 0
    deadline: float | None = None  # acknowledge by this time or escalate
    occurrences: int = 1
    last_occurrence_at: float | None = None  # event time of the newest trigger
    acknowledged_at: float | None = None
    acknowledged_by: str | None = None
    escalated_at: float | None = None
    cleared_at: float | None = None
    resolved_at: float | None = None
    resolved_by: str | None = None
    note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["evidence"] = dict(self.evidence)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Alarm:
        return cls(**d)


@dataclass(frozen=True)
class AlarmChange:
    """A transition to publish on ``alerts`` (and to deliver, for raised/escalated)."""

    transition: Transition
    alarm: Alarm


Book = dict[str, Any]


def alarm_id(kind: str, subject_id: str, trigger: str) -> str:
    """``kind@subject~digest``: readable, deterministic, and routable back to its subject."""
    digest = hashlib.blake2b(f"{kind}\x1f{subject_id}\x1f{trigger}".encode(), digest_size=6).hexdigest()
    return f"{kind}@{subject_id}~{digest}"


def subject_of(alarm_id_: str) -> str | None:
    """The subject an alarm id belongs to (None when the id is not one of ours)."""
    kind, at, rest = alarm_id_.partition("@")
    subject, tilde, digest = rest.rpartition("~")
    if not (kind and at and subject and tilde and len(digest) == 12):
        return None
    return subject


def empty_book() -> Book:
    return {"open": {}, "closed": []}


def _copy(book: Book | None) -> Book:
    b = book or empty_book()
    new = {"open": dict(b["open"]), "closed": list(b["closed"])}
    for extra in ("closed_triggers", "commands"):  # only books that have them (older books do not)
        if isinstance(b.get(extra), list):
            new[extra] = list(b[extra])
    return new


def _trigger_key(kind: str, trigger: str) -> str:
    return f"{kind}\x1f{trigger}"


def _close(book: Book, alarm: Alarm) -> None:
    book["open"].pop(alarm.kind, None)
    book["closed"] = (book["closed"] + [alarm.alarm_id])[-MAX_CLOSED_IDS:]
    absorbed = [_trigger_key(alarm.kind, t) for t in _trigger_ids(alarm.evidence)]
    if absorbed:
        book["closed_triggers"] = (book.get("closed_triggers", []) + absorbed)[-MAX_CLOSED_TRIGGERS:]


def _seen_command(book: Book, command: str | None) -> bool:
    return command is not None and command in book.get("commands", ())


def _note_command(book: Book, command: str | None) -> None:
    if command is not None:
        book["commands"] = (book.get("commands", []) + [command])[-MAX_COMMAND_IDS:]


def _trigger_ids(evidence: Mapping[str, Any]) -> list[str]:
    """The trigger ids an open alarm has absorbed; whatever else a book holds there counts as none
    (evidence arrives from a topic anyone with broker access can write)."""
    ids = evidence.get("trigger_ids")
    return [i for i in ids if isinstance(i, str)] if isinstance(ids, list) else []


def raise_alarm(book: Book | None, trig: AlarmTrigger, now: float, policy: EscalationPolicy) -> tuple[Book, list[AlarmChange]]:
    """Open an alarm for the trigger, or add it as evidence to the one already open."""
    new = _copy(book)
    aid = alarm_id(trig.kind, trig.subject_id, trig.trigger)
    if aid in new["closed"] or _trigger_key(trig.kind, trig.trigger) in new.get("closed_triggers", ()):
        return new, []  # a redelivered trigger of an alarm people already dealt with
    current = new["open"].get(trig.kind)
    if current is not None:
        alarm = Alarm.from_dict(current)
        seen = _trigger_ids(alarm.evidence)
        if alarm.alarm_id == aid or trig.trigger in seen:
            return new, []  # the same trigger again (redelivery)
        rearm = alarm.severity == "critical" and alarm.state == "acknowledged"
        alarm = replace(
            alarm,
            occurrences=alarm.occurrences + 1,
            active=True,
            last_occurrence_at=trig.at,
            cleared_at=None,
            message=trig.message,
            evidence={**alarm.evidence, **trig.evidence, "trigger_ids": [*seen[-49:], trig.trigger]},
        )
        if rearm:
            # the acknowledgement's note was about the earlier occurrence: it does not carry over
            alarm = replace(
                alarm,
                state="raised",
                deadline=now + policy.ack_timeout_s[alarm.severity],
                acknowledged_at=None,
                acknowledged_by=None,
                note=None,
            )
        new["open"][trig.kind] = alarm.to_dict()
        return new, [AlarmChange("reraised" if rearm else "occurred", alarm)]
    alarm = Alarm(
        alarm_id=aid,
        subject_id=trig.subject_id,
        subject_type=trig.subject_type,
        kind=trig.kind,
        severity=trig.severity,
        state="raised",
        message=trig.message,
        raised_at=trig.at,
        evidence=dict(trig.evidence),
        deadline=now + policy.ack_timeout_s[trig.severity],
    )
    new["open"][trig.kind] = alarm.to_dict()
    return new, [AlarmChange("raised", alarm)]


def clear_condition(book: Book | None, kind: str, at: float) -> tuple[Book, list[AlarmChange]]:
    """The condition behind ``kind`` went away; see the module docstring for what follows."""
    new = _copy(book)
    current = new["open"].get(kind)
    if current is None:
        return new, []
    alarm = Alarm.from_dict(current)
    if not alarm.active:
        return new, []
    alarm = replace(alarm, active=False, cleared_at=at)
    if alarm.state == "acknowledged" and alarm.severity != "critical":
        alarm = replace(alarm, state="resolved", resolved_at=at, resolved_by="system: condition cleared")
        _close(new, alarm)
        return new, [AlarmChange("resolved", alarm)]
    new["open"][kind] = alarm.to_dict()
    return new, [AlarmChange("updated", alarm)]


def _find(book: Book, aid: str) -> Alarm | None:
    for d in book["open"].values():
        if d["alarm_id"] == aid:
            return Alarm.from_dict(d)
    return None


class UnknownAlarm(LookupError):
    """No open alarm with that id (never raised, or already resolved)."""


def _for_person(book: Book | None, aid: str) -> tuple[Book, Alarm | None]:
    """The open alarm a person acts on; None when it is already closed (acting again is quiet)."""
    new = _copy(book)
    alarm = _find(new, aid)
    if alarm is None and aid not in new["closed"]:
        raise UnknownAlarm(aid)
    return new, alarm


def acknowledge(
    book: Book | None, aid: str, by: str, at: float, note: str | None = None, command: str | None = None
) -> tuple[Book, list[AlarmChange]]:
    """A person has seen it: escalation stops. Acknowledging twice changes nothing, and the same
    command (``command``, its identity) applied again changes nothing either."""
    new, alarm = _for_person(book, aid)
    if _seen_command(new, command):
        return new, []
    _note_command(new, command)
    if alarm is None or alarm.state == "acknowledged":
        return new, []
    alarm = replace(alarm, state="acknowledged", acknowledged_at=at, acknowledged_by=by, deadline=None, note=note or alarm.note)
    if not alarm.active and alarm.severity != "critical":
        alarm = replace(alarm, state="resolved", resolved_at=at, resolved_by="system: condition cleared")
        _close(new, alarm)
        return new, [AlarmChange("acknowledged", alarm), AlarmChange("resolved", alarm)]
    new["open"][alarm.kind] = alarm.to_dict()
    return new, [AlarmChange("acknowledged", alarm)]


def resolve(
    book: Book | None, aid: str, by: str, at: float, note: str | None = None, command: str | None = None
) -> tuple[Book, list[AlarmChange]]:
    """A person closes the alarm (implies acknowledgement). Resolving twice changes nothing."""
    new, alarm = _for_person(book, aid)
    if _seen_command(new, command):
        return new, []
    _note_command(new, command)
    if alarm is None:
        return new, []
    alarm = replace(
        alarm,
        state="resolved",
        resolved_at=at,
        resolved_by=by,
        deadline=None,
        note=note or alarm.note,
        acknowledged_at=alarm.acknowledged_at or at,
        acknowledged_by=alarm.acknowledged_by or by,
    )
    _close(new, alarm)
    return new, [AlarmChange("resolved", alarm)]


def escalate_due(book: Book | None, now: float, policy: EscalationPolicy) -> tuple[Book, list[AlarmChange]]:
    """Escalate every alarm whose acknowledgement deadline has passed."""
    new = _copy(book)
    changes: list[AlarmChange] = []
    for kind, d in list(new["open"].items()):
        alarm = Alarm.from_dict(d)
        if alarm.deadline is None or now < alarm.deadline or alarm.state == "acknowledged":
            continue
        alarm = replace(
            alarm,
            state="escalated",
            escalated_at=now,
            level=min(alarm.level + 1, policy.levels - 1),
            deadline=now + policy.ack_timeout_s[alarm.severity],
        )
        new["open"][kind] = alarm.to_dict()
        changes.append(AlarmChange("escalated", alarm))
    return new, changes


def open_alarms(book: Book | None) -> list[Alarm]:
    return [Alarm.from_dict(d) for d in (book or empty_book())["open"].values()]
