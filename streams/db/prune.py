"""Retention of the history: what ``leitstand db prune`` deletes, per table, by age.

Ages come from the settings (``retention_*_days``). Raw 1-minute aggregates go first (30 days),
the audit log last (at least 183 days, six months: EU AI Act Art. 12 and 19(1) for logs of a
high-risk system; the settings refuse less). An alarm's transitions are deleted together, once
its newest transition is older than the cutoff, so ``alarms_current`` never shows a half history.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from ..settings import MIN_AUDIT_LOG_DAYS, Settings
from .connect import connect


@dataclass(frozen=True)
class Retention:
    """Rows of ``table`` whose ``column`` lies more than ``days`` before now are deleted."""

    table: str
    column: str
    days: int

    def cutoff(self, now: datetime) -> datetime:
        return now - timedelta(days=self.days)

    def where(self) -> str:
        """The condition on the rows to delete (one parameter: the cutoff)."""
        if self.table == "alarm_transitions":
            return f"alarm_id IN (SELECT alarm_id FROM alarm_transitions GROUP BY alarm_id HAVING max({self.column}) < %(cutoff)s)"
        return f"{self.column} < %(cutoff)s"


class RetentionRefused(ValueError):
    """A retention shorter than the law asks for."""


def retention_rules(settings: Settings) -> list[Retention]:
    """Every table's rule, shortest-lived first; refuses an audit log kept under six months
    (the settings already do: this guards callers that build settings another way)."""
    if settings.retention_audit_log_days < MIN_AUDIT_LOG_DAYS:
        raise RetentionRefused(f"audit_log is kept at least {MIN_AUDIT_LOG_DAYS} days, not {settings.retention_audit_log_days}")
    return [
        Retention("aggregates", "window_start", settings.retention_aggregates_days),
        Retention("pool_readings", "event_time", settings.retention_pool_readings_days),
        Retention("forecasts", "published_at", settings.retention_forecasts_days),
        Retention("signal_decisions", "event_time", settings.retention_signal_decisions_days),
        Retention("audit_log", "event_time", settings.retention_audit_log_days),
        Retention("alarm_transitions", "event_time", settings.retention_alarm_transitions_days),
        Retention("scheduled_events", "ends_at", settings.retention_scheduled_events_days),
        Retention("bus_passages", "event_time", settings.retention_bus_passages_days),
    ]


@dataclass(frozen=True)
class Pruned:
    table: str
    days: int
    cutoff: datetime
    rows: int


def prune(dsn: str, rules: list[Retention], *, now: datetime, dry_run: bool = False) -> list[Pruned]:
    """Delete (or with ``dry_run`` only count) what each rule ages out; one transaction per table."""
    done = []
    with connect(dsn, application_name="leitstand-prune") as conn:
        for rule in rules:
            cutoff = rule.cutoff(now)
            with conn.transaction():
                if dry_run:
                    row = conn.execute(f"SELECT count(*) FROM {rule.table} WHERE {rule.where()}", {"cutoff": cutoff}).fetchone()
                    n = int(row[0]) if row else 0
                else:
                    n = conn.execute(f"DELETE FROM {rule.table} WHERE {rule.where()}", {"cutoff": cutoff}).rowcount
            done.append(Pruned(rule.table, rule.days, cutoff, n))
    return done
