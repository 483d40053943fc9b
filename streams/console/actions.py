"""People's commands from the console (web forms and the per-user token API alike).

Each command is checked in the same order: the role may do it (``policy.may``), the text fields
are clean (the worker API's rules, ``streams/http/auth.py``), the target exists in the view
(``ConsoleState``) and is in a state where the command makes sense. A refusal changes nothing
and is written to the console's audit log with who tried what; an accepted command is sent to
its topic with the authenticated user as the actor, and audited as well.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, cast

import structlog

from signals.control import MODES

from ..http.auth import Refused, free_text
from ..records import AlertAction, AlertCommand, SignalAction, SignalCommand, SignalMode, Silence
from ..topics import ALERTS_ACKS, ALERTS_SILENCES, SIGNALS_APPROVALS
from . import policy
from .feed import Feed
from .state import ConsoleState
from .users import User, UserStore

log = structlog.get_logger(__name__)

VERBS = policy.VERBS


@dataclass(frozen=True)
class Outcome:
    status: int  # 202 accepted, 4xx refused
    message: str


class Commands:
    """The checks and the sending; one instance per console process."""

    def __init__(self, state: ConsoleState, feed: Feed, store: UserStore) -> None:
        self.state = state
        self.feed = feed
        self.store = store

    def _refuse(self, user: User, action: str, target: str, status: int, message: str, remote: str | None) -> Outcome:
        self.store.audit(user.name, action, target, f"refused {status}", message, remote)
        log.info("console command refused", user=user.name, action=action, target=target, status=status, reason=message)
        return Outcome(status, message)

    def _allowed(self, user: User, action: policy.Action, target: str, remote: str | None) -> Outcome | None:
        if policy.may(user.role, action):
            return None
        return self._refuse(user, action, target, 403, f"role {user.role} may not {VERBS[action]}", remote)

    async def _send(self, user: User, action: str, target: str, topic: str, key: str, record: Any, remote: str | None) -> Outcome:
        await self.feed.send(topic, key, record)
        self.store.audit(user.name, action, target, "accepted", "", remote)
        return Outcome(202, "accepted")

    async def alarm(self, user: User, aid: str, verb: str, note: str, remote: str | None = None) -> Outcome:
        """Acknowledge (``verb`` "acknowledge") or resolve an open alarm, with an optional note."""
        action: policy.Action = "alarm.ack" if verb == "acknowledge" else "alarm.resolve"
        if (refused := self._allowed(user, action, aid, remote)) is not None:
            return refused
        try:
            text = free_text({"note": note}, "note") if note else None
        except Refused as exc:
            return self._refuse(user, action, aid, exc.status, exc.error, remote)
        if (why := self.state.alarm_check(aid, verb)) is not None:
            return self._refuse(user, action, aid, why.status, why.message, remote)
        try:
            kind: AlertAction = "acknowledge" if verb == "acknowledge" else "resolve"
            cmd = AlertCommand(schema_version=1, event_time=_now(), alert_id=aid, action=kind, by=user.name, note=text)
        except (ValueError, TypeError) as exc:
            return self._refuse(user, action, aid, 400, str(exc), remote)
        return await self._send(user, action, aid, ALERTS_ACKS, aid, cmd, remote)

    async def plan(self, user: User, iid: str, pid: str, verb: str, reason: str, remote: str | None = None) -> Outcome:
        """Approve or reject a pending proposal."""
        target = f"{iid}/{pid}"
        if (refused := self._allowed(user, "plan.decide", target, remote)) is not None:
            return refused
        try:
            text = free_text({"reason": reason}, "reason") or ""
        except Refused as exc:
            return self._refuse(user, "plan.decide", target, exc.status, exc.error, remote)
        if (why := self.state.plan_check(iid, pid)) is not None:
            return self._refuse(user, "plan.decide", target, why.status, why.message, remote)
        try:
            decision: SignalAction = "approve" if verb == "approve" else "reject"
            cmd = SignalCommand(
                schema_version=1, event_time=_now(), intersection_id=iid, action=decision, actor=user.name, plan_id=pid, reason=text
            )
        except (ValueError, TypeError) as exc:
            return self._refuse(user, "plan.decide", target, 400, str(exc), remote)
        return await self._send(user, f"plan.{verb}", target, SIGNALS_APPROVALS, iid, cmd, remote)

    async def mode(self, user: User, iid: str, mode: str, reason: str, remote: str | None = None) -> Outcome:
        if (refused := self._allowed(user, "signal.mode", iid, remote)) is not None:
            return refused
        if iid not in self.state.modes:
            return self._refuse(user, "signal.mode", iid, 404, f"no intersection {iid}", remote)
        try:
            text = free_text({"reason": reason}, "reason") or ""
            if mode not in MODES:
                raise ValueError(mode)
            cmd = SignalCommand(
                schema_version=1,
                event_time=_now(),
                intersection_id=iid,
                action="set_mode",
                actor=user.name,
                mode=cast(SignalMode, mode),
                reason=text,
            )
        except Refused as exc:
            return self._refuse(user, "signal.mode", iid, exc.status, exc.error, remote)
        except (ValueError, TypeError):
            return self._refuse(user, "signal.mode", iid, 400, "mode must be automatic, advisory or off", remote)
        return await self._send(user, "signal.mode", iid, SIGNALS_APPROVALS, iid, cmd, remote)

    async def silence(self, user: User, subject: str, minutes: str, reason: str, remote: str | None = None) -> Outcome:
        """Silence a subject from now for ``minutes`` (``minutes`` "0" lifts an active silence)."""
        if (refused := self._allowed(user, "silence.set", subject, remote)) is not None:
            return refused
        now = time.time()
        lift = minutes.strip() == "0"
        try:
            req = policy.silence_request(subject, "1" if lift else minutes, reason, now)
            free_text({"reason": req.reason}, "reason")
        except ValueError as exc:
            return self._refuse(user, "silence.set", subject, 400, str(exc), remote)
        except Refused as exc:
            return self._refuse(user, "silence.set", subject, exc.status, exc.error, remote)
        ends = now if lift else req.ends_at
        try:
            rec = Silence(
                schema_version=1,
                event_time=_now(),
                silence_id=policy.silence_id(req.subject_id, now, user.name),
                subject_id=req.subject_id,
                starts_at=_at(now),
                ends_at=_at(ends),
                reason=req.reason,
                by=user.name,
            )
        except (ValueError, TypeError) as exc:
            return self._refuse(user, "silence.set", subject, 400, str(exc), remote)
        return await self._send(
            user, "silence.lift" if lift else "silence.set", req.subject_id, ALERTS_SILENCES, req.subject_id, rec, remote
        )


def _at(t: float) -> datetime:
    return datetime.fromtimestamp(t, tz=timezone.utc)


def _now() -> datetime:
    return _at(time.time())
