"""What the console shows, folded from the topics it reads; pure (no Kafka, no HTTP).

The console owns no state of its own about alarms or plans: it reads ``alerts`` (every
transition of every alarm), ``alerts.deliveries`` (who was notified, how it went),
``alerts.silences``, ``signals.plans`` and ``signals.audit`` from the beginning and keeps the
latest view. So it works whichever worker owns an alarm, and a restarted console shows what the
topics say, not what it remembered. ``ConsoleState.apply`` takes one decoded record of one
topic; the checks of a command (``alarm_check``, ``plan_check``) read the same view.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ..topics import ALERTS, ALERTS_DELIVERIES, ALERTS_SILENCES, SIGNALS_AUDIT, SIGNALS_PLANS

TOPICS = (ALERTS, ALERTS_DELIVERIES, ALERTS_SILENCES, SIGNALS_PLANS, SIGNALS_AUDIT)
SEVERITY_ORDER = {"critical": 0, "major": 1, "minor": 2}
#: how much history the view keeps (the topics keep the rest)
MAX_CLOSED = 500
MAX_DELIVERIES_PER_ALARM = 30
MAX_DECISIONS = 50
#: plan statuses on signals.plans that end a proposal
RETIRED = ("approved", "rejected", "expired")
#: signals.audit actions shown as "last decisions"
DECISIONS = ("plan_approved", "plan_rejected", "plan_expired", "mode_changed", "command_refused", "decision_rejected")


def _ts(value: Any) -> float | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value).timestamp()
    except ValueError:
        return None


@dataclass
class Refusal:
    """Why a command is refused before it is sent: HTTP status and one line."""

    status: int
    message: str


@dataclass
class ConsoleState:
    alarms: dict[str, dict[str, Any]] = field(default_factory=dict)  # open alarms by id (latest record)
    closed: OrderedDict[str, dict[str, Any]] = field(default_factory=OrderedDict)  # resolved, newest last
    deliveries: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    silences: dict[str, dict[str, Any]] = field(default_factory=dict)  # latest per subject
    modes: dict[str, dict[str, Any]] = field(default_factory=dict)  # latest drive per intersection
    pending: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)  # intersection -> plan id -> proposal
    retired: OrderedDict[tuple[str, str], str] = field(default_factory=OrderedDict)
    decisions: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=MAX_DECISIONS))
    version: int = 0

    def apply(self, topic: str, record: Any) -> bool:
        """Fold one record of ``topic`` (catalogue name) into the view; True if it changed."""
        if not isinstance(record, dict):
            return False
        handler = {
            ALERTS: self._alert,
            ALERTS_DELIVERIES: self._delivery,
            ALERTS_SILENCES: self._silence,
            SIGNALS_PLANS: self._plan,
            SIGNALS_AUDIT: self._audit,
        }.get(topic)
        if handler is None or not handler(record):
            return False
        self.version += 1
        return True

    def _alert(self, r: dict[str, Any]) -> bool:
        aid = r.get("alarm_id")
        if not isinstance(aid, str) or aid in self.closed:
            return False  # a resolved id never reopens (detection/alarms.py)
        if r.get("state") == "resolved":
            self.alarms.pop(aid, None)
            self.closed[aid] = r
            while len(self.closed) > MAX_CLOSED:
                self.closed.popitem(last=False)
        else:
            self.alarms[aid] = r
        return True

    def _delivery(self, r: dict[str, Any]) -> bool:
        aid = r.get("alarm_id")
        if not isinstance(aid, str):
            return False
        log = self.deliveries.setdefault(aid, [])
        log.append(r)
        del log[:-MAX_DELIVERIES_PER_ALARM]
        return True

    def _silence(self, r: dict[str, Any]) -> bool:
        subject = r.get("subject_id")
        if not isinstance(subject, str):
            return False
        self.silences[subject] = r
        return True

    def _plan(self, r: dict[str, Any]) -> bool:
        iid, pid, status = r.get("intersection_id"), r.get("plan_id"), r.get("status")
        if not isinstance(iid, str) or not isinstance(pid, str):
            return False
        previous = self.modes.get(iid)
        if previous is not None and previous.get("session") != r.get("session"):
            self.pending.pop(iid, None)  # a new session restarts control: old proposals are gone
        self.modes[iid] = {k: r.get(k) for k in ("mode", "controller", "session", "time_s", "event_time", "status", "plan_id")}
        if status == "pending":
            self.pending.setdefault(iid, {})[pid] = r
        elif status in RETIRED:
            self.pending.get(iid, {}).pop(pid, None)
            self.retired[(iid, pid)] = str(status)
            while len(self.retired) > MAX_CLOSED:
                self.retired.popitem(last=False)
        return True

    def _audit(self, r: dict[str, Any]) -> bool:
        if r.get("action") not in DECISIONS:
            return False
        self.decisions.appendleft(r)
        return True

    # --- views ----------------------------------------------------------------------------------

    def open_alarms(self) -> list[dict[str, Any]]:
        """Open alarms, most severe first, then oldest first."""
        return sorted(self.alarms.values(), key=lambda a: (SEVERITY_ORDER.get(str(a.get("severity")), 9), str(a.get("raised_at") or "")))

    def unacknowledged(self) -> list[dict[str, Any]]:
        return [a for a in self.open_alarms() if a.get("state") in ("raised", "escalated")]

    def acknowledged(self) -> list[dict[str, Any]]:
        return [a for a in self.open_alarms() if a.get("state") == "acknowledged"]

    def critical_unacknowledged(self) -> int:
        return sum(a.get("severity") == "critical" for a in self.unacknowledged())

    def notified(self, aid: str) -> list[dict[str, Any]]:
        """The newest attempt per (level, target): who was (or is being) notified, and how it went."""
        latest: dict[tuple[Any, Any], dict[str, Any]] = {}
        for d in self.deliveries.get(aid, []):
            latest[(d.get("level"), d.get("target_id") or d.get("target"))] = d
        return sorted(latest.values(), key=lambda d: (d.get("level") or 0, str(d.get("target"))))

    def active_silence(self, subject: str, now: float) -> dict[str, Any] | None:
        s = self.silences.get(subject)
        if s is None:
            return None
        start, end = _ts(s.get("starts_at")), _ts(s.get("ends_at"))
        return s if start is not None and end is not None and start <= now < end else None

    def active_silences(self, now: float) -> list[dict[str, Any]]:
        return [s for subject in sorted(self.silences) if (s := self.active_silence(subject, now)) is not None]

    def proposals(self) -> list[tuple[str, dict[str, Any]]]:
        """Pending proposals with the seconds left (stream time of the intersection's last drive)."""
        found = []
        for iid in sorted(self.pending):
            now_s = (self.modes.get(iid) or {}).get("time_s")
            for p in self.pending[iid].values():
                left = p.get("expires_at_s")
                if isinstance(left, (int, float)) and isinstance(now_s, (int, float)):
                    left = max(0.0, left - now_s)
                found.append((iid, {**p, "seconds_left": left}))
        return found

    # --- checks before a command is sent --------------------------------------------------------

    def alarm_check(self, aid: str, action: str) -> Refusal | None:
        """None if ``action`` on alarm ``aid`` makes sense now, else why not."""
        if aid in self.closed:
            return Refusal(409, f"alarm {aid} is already resolved")
        alarm = self.alarms.get(aid)
        if alarm is None:
            return Refusal(404, f"no open alarm {aid}")
        if action == "acknowledge" and alarm.get("state") == "acknowledged":
            return Refusal(409, f"alarm {aid} is already acknowledged by {alarm.get('acknowledged_by')}")
        return None

    def plan_check(self, iid: str, pid: str) -> Refusal | None:
        """None if plan ``pid`` of ``iid`` is pending (approve / reject make sense), else why not."""
        if iid not in self.modes:
            return Refusal(404, f"no intersection {iid}")
        if pid in self.pending.get(iid, {}):
            mode = self.modes[iid].get("mode")
            return None if mode == "advisory" else Refusal(409, f"intersection {iid} is in mode {mode}, not advisory")
        status = self.retired.get((iid, pid))
        if status == "expired":
            return Refusal(409, f"proposal {pid} has expired; nobody approved it in time")
        if status is not None:
            return Refusal(409, f"proposal {pid} was already {status}")
        return Refusal(404, f"no pending proposal {pid} at {iid}")
