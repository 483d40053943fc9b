"""The language every detector agent speaks to the alarm books: ``LifecycleCommand``s.

Pool, water and traffic agents turn what their core decided (triggers raised, conditions
cleared) into raise / clear commands on ``alerts.lifecycle``; the alarm-books agent
(``alarm_lifecycle.py``) is their single reader. Kept apart from both sides so no agent imports
a sibling agent.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timezone
from typing import Protocol

from detection.alarms import AlarmTrigger

from ..records import LifecycleCommand, encode
from .wiring import Outgoing, Sink


class AlarmOutcome(Protocol):
    """What a detection core decided for one subject (``PoolOutcome``, ``IncidentOutcome``)."""

    @property
    def triggers(self) -> Sequence[AlarmTrigger]: ...

    @property
    def clears(self) -> Sequence[str]: ...


def lifecycle_commands(subject_id: str, outcome: AlarmOutcome, at: datetime, subject_type: str = "pool") -> Iterable[LifecycleCommand]:
    """Raise/clear commands for the alarm books from what the core decided."""
    for t in outcome.triggers:
        yield LifecycleCommand(
            schema_version=1,
            event_time=datetime.fromtimestamp(t.at, tz=timezone.utc),
            op="raise",
            subject_id=subject_id,
            subject_type=subject_type,
            kind=t.kind,
            severity=t.severity,
            trigger=t.trigger,
            message=t.message,
            evidence=dict(t.evidence),
        )
    for kind in outcome.clears:
        yield LifecycleCommand(schema_version=1, event_time=at, op="clear", subject_id=subject_id, subject_type=subject_type, kind=kind)


def to_lifecycle(topic: Sink, commands: Iterable[LifecycleCommand]) -> list[Outgoing]:
    """The commands as messages on ``alerts.lifecycle``, keyed by subject (one writer per subject)."""
    return [Outgoing(topic, c.subject_id.encode(), encode(c)) for c in commands]
