"""One intersection's control loop: controller -> safety gate -> mode -> the plan to drive.

Pure and deterministic, so the in-process SUMO runner and the Faust control agent run the very
same code (``leitstand sumo eval`` asserts identical results through both paths).

Modes (ARCHITECTURE.md "Trust"):

* ``automatic``: every admitted decision is driven at once;
* ``advisory``: a new decision becomes a *pending* proposal; the signal keeps driving the last
  approved plan (the fixed program at first) until an operator approves the proposal; a proposal
  nobody approves within ``approval_timeout_s`` expires. An acyclic controller (max-pressure,
  leitstand) decides every second, too often for a person: it asks instead for a *mandate* to
  drive for a period (:mod:`signals.advisory`), and drives only while one is approved;
* ``off``: the fixed program, the controller is not consulted.

The driven plan is handed to a stage adapter (:mod:`signals.adapter`) that makes every handover
between plans safe (minimum green, yellow, intergreens), so a mode change, an approval or a
fallback can happen at any second. An acyclic plan (max-pressure, leitstand) whose window has run
out is replaced by the fixed program: a stale adaptive plan is never extrapolated.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal, TypeGuard

from signals.advisory import ASK_EVERY_S, MANDATE_S, mandate_request
from signals.controllers import CONTROLLERS, DetectorObservation, FixedTimeController, make_controller
from signals.controllers.base import Controller, FollowsTheStreet
from signals.explain import StageDecision
from signals.model import Intersection
from signals.timeline import StageLayout, build_timeline
from signals.validator import GateOutcome, SafetyGate, SafetyValidator

Mode = Literal["automatic", "advisory", "off"]
MODES: tuple[str, ...] = ("automatic", "advisory", "off")


def is_mode(value: str) -> TypeGuard[Mode]:
    """True when ``value`` names a mode: commands and configs bring modes in as plain text."""
    return value in MODES


#: how a plan record relates to the signal: driven now, waiting for a person, or retired
PlanStatus = Literal["active", "fallback", "fixed", "pending", "approved", "rejected", "expired"]


class ControlError(ValueError):
    """A command that cannot be carried out (unknown plan, wrong mode): said in one line."""


@dataclass(frozen=True)
class AuditEntry:
    """One line of the audit log: who did what to which intersection, and when (seconds)."""

    at_s: float
    intersection_id: str
    action: str
    actor: str
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class PlanRecord:
    """A plan as published on ``signals.plans``: the decision, its mode and its status."""

    plan_id: str
    decision: StageDecision
    mode: Mode
    status: PlanStatus
    #: the validator's objections when the decision was rejected (status ``fallback``)
    violations: tuple[str, ...] = ()
    expires_at_s: float | None = None
    #: a request to let the controller drive this long (``signals.advisory``), not a plan to run
    mandate_s: float | None = None


@dataclass(frozen=True)
class ControlStep:
    """What one observation produced: the plan the signal drives now, plus proposals and audit."""

    drive: PlanRecord
    #: True when ``drive`` differs from the previous step's (a dashboard needs only these)
    changed: bool
    proposals: tuple[PlanRecord, ...] = ()
    audit: tuple[AuditEntry, ...] = ()


def plan_id(decision: StageDecision) -> str:
    """Deterministic id: the same decision always gets the same id (idempotent on redelivery)."""
    body = repr((decision.plan, round(decision.origin_s, 3), decision.explanation.controller))
    digest = hashlib.blake2b(body.encode(), digest_size=5).hexdigest()
    return f"{decision.intersection_id}@{decision.time_s:.0f}~{digest}"


class IntersectionControl:
    """Controller, safety gate, mode and pending proposals of one intersection."""

    def __init__(
        self,
        intersection: Intersection,
        controller: str = "maxpressure",
        mode: Mode = "automatic",
        approval_timeout_s: float = 120.0,
        **params: float,
    ) -> None:
        if mode not in MODES:
            raise ControlError(f"unknown mode {mode!r}; known: {', '.join(MODES)}")
        self.intersection = intersection
        self.controller_name = controller
        self.params = params
        self.mode: Mode = mode
        self.approval_timeout_s = approval_timeout_s
        self._validator = SafetyValidator(intersection)
        self._controller: Controller = make_controller(controller, intersection, **params)
        self._gate: SafetyGate | None = None
        self._fixed = FixedTimeController(intersection)
        self._drive: PlanRecord | None = None
        self._approved: PlanRecord | None = None
        self._last_decision: StageDecision | None = None
        self.pending: dict[str, PlanRecord] = {}
        self._audit: list[AuditEntry] = []
        self.rejections = 0
        #: the last decision the gate judged and its outcome (controllers repeat themselves)
        self._admitted: tuple[tuple[object, ...], GateOutcome] | None = None
        #: per signal group, the last frame time the driven plans showed it green
        self._shown_green: dict[str, float] = {}
        self._layout = StageLayout(intersection)
        #: advisory mode, acyclic controller: until when an operator let it drive, and when it last
        #: asked (``signals.advisory``)
        self._mandate_until_s: float | None = None
        self._asked_s = -float("inf")

    # -- observations ------------------------------------------------------------------------------
    def on_observation(self, obs: DetectorObservation, *, ground: bool = True) -> ControlStep:
        """The plan to drive after ``obs``. ``ground``: plan from what the driven plans show when
        that is not the controller's own decision (``_ground``); the control desk passes False
        while the field controller is found not following, and tells the controller what the
        street reports instead (``resync``)."""
        now = obs.time_s
        proposals: list[PlanRecord] = []
        proposals += self._expire(now)
        self._note_shown(now)
        if self.mode == "off":
            drive = self._fixed_record(obs, "fixed")
        else:
            if ground:
                self._ground(now)
            decision = self._controller.decide(obs)
            if self._gate is None:
                self._gate = SafetyGate(self._validator, self._fixed_decision(obs))
            key = (decision.plan, decision.origin_s, decision.explanation)
            if self._admitted is not None and self._admitted[0] == key:
                outcome, fresh = self._admitted[1], False  # the same decision again: judged already
            else:
                outcome, fresh = self._gate.admit(decision), True
                self._admitted = (key, outcome)
            if not outcome.accepted and self._exhausted(outcome.applied, now):
                # the last safe plan has run out: the shipped program, not its last stage held on
                # (frames slower than a maximum green had every decision rejected, and the street
                # held one stage until the groups' maximum waits forced changes)
                outcome = replace(outcome, applied=self._fixed_decision(obs))
            violations = tuple(str(v) for v in outcome.report.violations)
            if not outcome.accepted and fresh:
                self.rejections += 1
                self._log(now, "decision_rejected", "validator", plan=plan_id(decision), violations=list(violations))
            # a controller repeats its decision every frame (and a cyclic plan every cycle with a
            # shifted origin): only a different plan is a new decision worth a person's attention
            new = not self._same_plan(decision, self._last_decision)
            # a (re)started controller's first decision knows nothing of the street yet; from its
            # second on it is planned from the stage the driven plan shows (``_ground``)
            fresh_start = self._last_decision is None
            self._last_decision = decision
            if self.mode == "automatic" or self.mandated(now):
                status: PlanStatus = "active" if outcome.accepted else "fallback"
                drive = PlanRecord(plan_id(outcome.applied), outcome.applied, self.mode, status, violations)
            elif self.mandates:
                drive = self._fixed_record(obs, "fixed")
            else:
                drive = self._advisory_drive(obs)
                if new and outcome.accepted and not self._same_plan(decision, drive.decision):
                    proposal = PlanRecord(plan_id(decision), decision, "advisory", "pending", expires_at_s=now + self.approval_timeout_s)
                    if proposal.plan_id not in self.pending:
                        self.pending[proposal.plan_id] = proposal
                        proposals.append(proposal)
                        self._log(now, "plan_proposed", decision.controller, plan=proposal.plan_id, rule=decision.explanation.rule)
            if self.mandates and outcome.accepted and not fresh_start:
                proposals += self._ask_for_mandate(decision, now)
        changed = self._drive is None or (drive.decision.plan, drive.decision.origin_s, drive.status) != (
            self._drive.decision.plan,
            self._drive.decision.origin_s,
            self._drive.status,
        )
        self._drive = drive
        return ControlStep(drive, changed, tuple(proposals), tuple(self._take_audit()))

    # -- operator commands ---------------------------------------------------------------------------
    def set_mode(self, mode: str, actor: str, at_s: float, reason: str = "") -> tuple[AuditEntry, ...]:
        """Change the mode. Leaving ``off`` or ``advisory`` restarts the controller from now: its
        internal history was not what the signal showed. Advisory mode set again while a mandate
        runs ends the mandate (the fixed program drives until the next approval)."""
        if not is_mode(mode):
            raise ControlError(f"unknown mode {mode!r}; known: {', '.join(MODES)}")
        previous = self.mode
        ended = {"mandate_ended": True} if self.mandated(at_s) else {}
        self._mandate_until_s = None
        if mode != previous:
            self.mode = mode
            self._controller = make_controller(self.controller_name, self.intersection, **self.params)
            self._gate = None
            self._last_decision = None
            if mode != "advisory":
                for pid in list(self.pending):
                    self._retire(pid, "expired", at_s, actor, "mode changed")
            self._approved = None
        self._log(at_s, "mode_changed", actor, previous=previous, mode=mode, reason=reason, **ended)
        return tuple(self._take_audit())

    def approve(self, pid: str, actor: str, at_s: float) -> tuple[PlanRecord, tuple[AuditEntry, ...]]:
        proposal = self._pending_or_raise(pid, at_s)
        del self.pending[pid]
        approved = replace(proposal, status="approved", expires_at_s=None)
        if self.mandates:  # the controller drives from now for the mandate (``signals.advisory``)
            self._mandate_until_s = at_s + MANDATE_S
        else:  # the approved plan drives (``_advisory_drive``)
            self._approved = approved
        # older proposals are superseded by the approved one: approving is choosing
        for other in list(self.pending):
            if self.pending[other].decision.time_s <= proposal.decision.time_s:
                self._retire(other, "expired", at_s, actor, f"superseded by {pid}")
        until = {"mandate_until_s": self._mandate_until_s} if self.mandates else {}
        self._log(at_s, "plan_approved", actor, plan=pid, **until)
        return approved, tuple(self._take_audit())

    def reject(self, pid: str, actor: str, at_s: float, reason: str = "") -> tuple[PlanRecord, tuple[AuditEntry, ...]]:
        self._pending_or_raise(pid, at_s)  # refuses unknown, decided or expired plans
        record = self._retire(pid, "rejected", at_s, actor, reason)
        return record, tuple(self._take_audit())

    def drain_audit(self) -> tuple[AuditEntry, ...]:
        """Audit entries not yet handed out (e.g. expiries found while refusing a command)."""
        return tuple(self._take_audit())

    def resync(self, stage: str, since_s: float, now_s: float, last_green: Mapping[str, float] | None = None) -> bool:
        """The street shows ``stage`` since ``since_s``, not the plan (``signals.following``): the
        controller plans on from it, if it can (``FollowsTheStreet``: max-pressure and leitstand).
        The cyclic controllers (fixed time, Webster) run a program bound to the clock, which a
        cabinet rejoins at its own sync point; with the mode ``off`` the fixed program drives."""
        ctl = self._controller
        return self.mode != "off" and isinstance(ctl, FollowsTheStreet) and ctl.resync(stage, since_s, now_s, last_green)

    # -- what the street shows when the plan driven is not the controller's ------------------------
    def _note_shown(self, now: float) -> None:
        """The groups of the stage the plan driven since the last frame shows now were green until
        now: the waits a controller grounded on the street counts from (sampled at frames, and not
        during a change between stages, so a green that ended unseen has its wait overstated by
        a frame or a change at most, never understated)."""
        if self._drive is None:
            return
        d = self._drive.decision
        shown = self._layout.shown(d.plan, d.origin_s, now)
        if shown is not None:
            for g in self.intersection.stage(shown[0]).groups:
                self._shown_green[g] = now

    def _ground(self, now: float) -> None:
        """An acyclic controller (max-pressure, leitstand) plans on from its own last decision, as
        if it drove the signal. It does not when the validator rejected a decision (the last safe
        plan drives), when its window ran out (the fixed program), or in advisory mode until an
        operator approves a mandate (the fixed program drives while it asks): it then planned
        from a stage the street did not show, so its proposals asked operators to hold a green
        that was not running, with waits that did not match the street's. Here it is told what
        the plan driven shows, whenever that differs from the stage it believes in."""
        drive, last = self._drive, self._last_decision
        if drive is None or last is None or drive.decision is last or drive.decision == last:
            return
        d = drive.decision
        shown = self._layout.shown(d.plan, d.origin_s, now)
        if shown is None:
            return  # the driven plan is changing stage: the controller is told once the green starts
        believed = self._layout.shown(last.plan, last.origin_s, now)
        if believed is not None and believed[0] == shown[0]:
            return
        who = "the fixed program" if d.controller == FixedTimeController.name else "the last safe plan"
        why = f"{'a decision was rejected' if drive.status == 'fallback' else 'advisory mode'}: {who} drives"
        ctl = self._controller
        if isinstance(ctl, FollowsTheStreet):
            ctl.resync(shown[0], shown[1], now, self._shown_green, why=why)

    # -- internals -----------------------------------------------------------------------------------
    @property
    def mandates(self) -> bool:
        """True when an operator approves periods, not plans: advisory mode with an acyclic
        controller (``signals.advisory``)."""
        return self.mode == "advisory" and not CONTROLLERS[self.controller_name].cyclic

    @property
    def mandate_until_s(self) -> float | None:
        """When the mandate approved last ends (None: none was approved since the mode was set)."""
        return self._mandate_until_s if self.mandates else None

    def carry_mandate(self, until_s: float) -> bool:
        """Take over a mandate approved before a restart (the saved state); True if it applies
        (advisory mode with an acyclic controller). It ends when it would have ended."""
        if not self.mandates:
            return False
        self._mandate_until_s = until_s
        return True

    def mandated(self, now: float) -> bool:
        """An operator's mandate lets the acyclic controller drive at ``now`` (advisory mode)."""
        return self.mandates and self._mandate_until_s is not None and now < self._mandate_until_s

    def _ask_for_mandate(self, decision: StageDecision, now: float) -> list[PlanRecord]:
        """A request to drive for ``MANDATE_S``: when none is pending, no mandate runs or the
        running one ends within ``approval_timeout_s``, and the last request is ``ASK_EVERY_S`` ago."""
        left = 0.0 if self._mandate_until_s is None else self._mandate_until_s - now
        if self.pending or left > self.approval_timeout_s or now - self._asked_s < ASK_EVERY_S:
            return []
        request = mandate_request(decision, self.intersection.id, self.controller_name)
        proposal = PlanRecord(
            plan_id(request), request, "advisory", "pending", expires_at_s=now + self.approval_timeout_s, mandate_s=MANDATE_S
        )
        self.pending[proposal.plan_id] = proposal
        self._asked_s = now
        self._log(now, "plan_proposed", decision.controller, plan=proposal.plan_id, rule=decision.explanation.rule, mandate_s=MANDATE_S)
        return [proposal]

    def _same_plan(self, a: StageDecision | None, b: StageDecision | None) -> bool:
        """Same program on the street: equal phases, and origins a whole number of cycles apart
        (cyclic) or equal (acyclic: its window is the decision)."""
        if a is None or b is None or a.plan != b.plan:
            return False
        if not a.plan.cyclic:
            return abs(a.origin_s - b.origin_s) < 1e-6
        cycle = build_timeline(self.intersection, a.plan).duration_s
        off = (a.origin_s - b.origin_s) % cycle if cycle > 0 else 0.0
        return min(off, cycle - off) < 1e-6

    def _pending_or_raise(self, pid: str, at_s: float) -> PlanRecord:
        self._expire(at_s)
        if self.mode != "advisory":
            raise ControlError(f"intersection {self.intersection.id} is in mode {self.mode}, not advisory")
        try:
            return self.pending[pid]
        except KeyError:
            raise ControlError(
                f"no pending plan {pid!r} at intersection {self.intersection.id} (unknown, already decided or expired)"
            ) from None

    def _retire(self, pid: str, status: PlanStatus, at_s: float, actor: str, reason: str) -> PlanRecord:
        record = replace(self.pending.pop(pid), status=status, expires_at_s=None)
        self._log(at_s, f"plan_{status}", actor, plan=pid, reason=reason)
        return record

    def _expire(self, now: float, reason: str = "nobody approved it in time") -> list[PlanRecord]:
        due = [pid for pid, p in self.pending.items() if p.expires_at_s is not None and now >= p.expires_at_s]
        return [self._retire(pid, "expired", now, "timer", reason) for pid in due]

    def expire_due(self, now: float, reason: str) -> list[PlanRecord]:
        """Retire the proposals due at ``now`` (audited as the timer's, with ``reason``)."""
        return self._expire(now, reason)

    def _advisory_drive(self, obs: DetectorObservation) -> PlanRecord:
        approved = self._approved
        if approved is not None and not self._exhausted(approved.decision, obs.time_s):
            return replace(approved, status="active", mode="advisory")
        return self._fixed_record(obs, "fixed")

    def _exhausted(self, decision: StageDecision, now: float) -> bool:
        """An acyclic plan says nothing beyond its window: it is never driven past its end."""
        if decision.plan.cyclic:
            return False
        return now >= decision.origin_s + build_timeline(self.intersection, decision.plan).duration_s

    def _fixed_decision(self, obs: DetectorObservation) -> StageDecision:
        return self._fixed.decide(obs)

    def _fixed_record(self, obs: DetectorObservation, status: PlanStatus) -> PlanRecord:
        decision = self._fixed.decide(obs)
        return PlanRecord(plan_id(decision), decision, self.mode, status)

    def _log(self, at_s: float, action: str, actor: str, **detail: Any) -> None:
        self._audit.append(AuditEntry(at_s, self.intersection.id, action, actor, detail))

    def _take_audit(self) -> list[AuditEntry]:
        out, self._audit = self._audit, []
        return out
