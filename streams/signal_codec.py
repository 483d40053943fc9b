"""Conversions between the signal records on Kafka and the pure ``signals`` core.

Records (``streams.records``) are the wire; the core (``signals.control``, ``signals.desk``)
knows none of them. The control agent turns records into desk inputs here, the desk's outbox
into ``signals.plans`` / ``signals.audit`` messages, and a desk snapshot into the table value
it saves (and back after a restart: that JSON form is the changelog's, so it must not change).

Both paths of ``leitstand sumo eval`` (in-process and through the broker) pass every frame and
every plan through these functions, so they see bit-identical inputs and outputs: JSON floats
round-trip exactly and times are epoch seconds of the record's ``event_time``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, cast

import msgspec

from signals.control import AuditEntry, Mode, PlanRecord
from signals.controllers import DetectorObservation, LaneMeasurement
from signals.desk import AuditOut, DeskCommand, DeskConfig, DeskPriority, DeskState, Outbox, PlanOut, Saved, Snapshot, StalePlan
from signals.explain import Explanation, StageDecision
from signals.model import SignalPlan, StagePhase
from streams.records import (
    IntersectionConfig,
    IntersectionFrame,
    PlanPhase,
    PriorityRequest,
    SignalAuditMessage,
    SignalCommand,
    SignalPlanMessage,
    StageShown,
)


def epoch_s(moment: datetime) -> float:
    return moment.timestamp()


def at(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, tz=UTC)


def observation_from_frame(frame: IntersectionFrame) -> DetectorObservation:
    """A detector frame as a controller sees it: per detector count, occupancy, speed, queue."""
    lanes = {
        d.detector_id: LaneMeasurement(
            count=float(d.count),
            occupancy=d.occupancy,
            speed_mps=None if d.speed_kmh is None else d.speed_kmh / 3.6,
            queue_veh=d.queue_veh or 0.0,
            vehicles=d.vehicles or 0.0,
        )
        for d in frame.detectors
    }
    return DetectorObservation(frame.intersection_id, epoch_s(frame.event_time), frame.interval_s, lanes)


def plan_message(
    record: PlanRecord, session: str, *, changed: bool = True, now_s: float | None = None, not_following: bool = False
) -> SignalPlanMessage:
    d = record.decision
    e = d.explanation
    return SignalPlanMessage(
        event_time=at(d.time_s if now_s is None else now_s),
        intersection_id=d.intersection_id,
        plan_id=record.plan_id,
        session=session,
        time_s=d.time_s,
        origin_s=d.origin_s,
        cyclic=d.plan.cyclic,
        phases=[PlanPhase(p.stage, p.green_s) for p in d.plan.phases],
        mode=record.mode,
        status=record.status,
        changed=changed,
        controller=e.controller,
        version=e.version,
        rule=e.rule,
        explanation=e.to_dict(),
        violations=list(record.violations),
        expires_at_s=record.expires_at_s,
        not_following=not_following,
        mandate_s=record.mandate_s,
    )


def decision_from_message(msg: SignalPlanMessage) -> StageDecision:
    """The decision a signal adapter drives, rebuilt from ``signals.plans``."""
    ex = msg.explanation
    explanation = Explanation(
        msg.controller,
        msg.version,
        msg.rule,
        tuple((str(k), float(v)) for k, v in ex.get("inputs", {}).items()),
        str(ex.get("expected_effect", "")),
        tuple((str(k), tuple(str(i) for i in v)) for k, v in ex.get("degraded_inputs", {}).items()),
    )
    plan = SignalPlan(tuple(StagePhase(p.stage, p.green_s) for p in msg.phases), cyclic=msg.cyclic)
    return StageDecision(msg.intersection_id, msg.time_s, plan, explanation, origin_s=msg.origin_s)


def audit_message(entry: AuditEntry, session: str) -> SignalAuditMessage:
    return SignalAuditMessage(
        event_time=at(entry.at_s),
        intersection_id=entry.intersection_id,
        session=session,
        action=entry.action,
        actor=entry.actor,
        detail=dict(entry.detail),
    )


# --- the control desk ----------------------------------------------------------------------------


def desk_config(cfg: IntersectionConfig) -> DeskConfig:
    return DeskConfig(
        intersection_id=cfg.intersection_id,
        model=cfg.model,
        event_time=cfg.event_time,
        controller=cfg.controller,
        mode=cfg.mode,
        session=cfg.session,
        approval_timeout_s=cfg.approval_timeout_s,
        params=cfg.params,
    )


def config_record(cfg: DeskConfig) -> IntersectionConfig:
    return IntersectionConfig(
        schema_version=1,
        event_time=cfg.event_time,
        intersection_id=cfg.intersection_id,
        model=dict(cfg.model),
        controller=cfg.controller,
        mode=cfg.mode,
        session=cfg.session,
        approval_timeout_s=cfg.approval_timeout_s,
        params=dict(cfg.params),
    )


def desk_command(cmd: SignalCommand) -> DeskCommand:
    return DeskCommand(
        intersection_id=cmd.intersection_id,
        action=cmd.action,
        actor=cmd.actor,
        event_time=cmd.event_time,
        plan_id=cmd.plan_id,
        mode=cmd.mode,
        reason=cmd.reason,
    )


def desk_priority(req: PriorityRequest) -> DeskPriority:
    """A bus's priority request; ``approach`` names the stage serving it (none: refused)."""
    return DeskPriority(
        intersection_id=req.intersection_id,
        request_id=req.request_id,
        vehicle_id=req.vehicle_id,
        trip_id=req.trip_id,
        stage=req.approach or "",
        event_time=req.event_time,
        eta_s=req.eta_s,
        delay_s=req.delay_s,
    )


def desk_state(shown: StageShown) -> DeskState:
    """A field controller's ``signals.state`` report: the stage it shows, since when, reported when."""
    return DeskState(
        shown.intersection_id, shown.stage, shown.stage_started_at.timestamp(), shown.event_time.timestamp(), shown.stage_started_exact
    )


def plan_out_message(plan: PlanOut | StalePlan) -> SignalPlanMessage:
    """A plan of the desk's outbox as published; a stale proposal (saved before a restart) is
    its saved message, now expired."""
    if isinstance(plan, StalePlan):
        saved: SignalPlanMessage = plan.saved
        return msgspec.structs.replace(saved, status="expired", expires_at_s=None, changed=True)
    return plan_message(plan.record, plan.session, changed=plan.changed, now_s=plan.now_s, not_following=plan.not_following)


def audit_out_message(audit: AuditOut) -> SignalAuditMessage:
    return audit_message(audit.entry, audit.session)


def outbox_messages(box: Outbox) -> tuple[list[SignalPlanMessage], list[SignalAuditMessage]]:
    """The ``signals.plans`` and ``signals.audit`` messages of an outbox, in publishing order."""
    return [plan_out_message(p) for p in box.plans], [audit_out_message(a) for a in box.audit]


def snapshot_value(snap: Snapshot) -> dict[str, Any]:
    """The table value of a desk snapshot: the config record, the mode, the pending plans as
    ``signals.plans`` messages (JSON builtins, as the changelog stores them), the approach
    detectors with a blockage alarm open, whether the signal was found not following, and the
    cabinet's clock offset once learned."""
    return {
        "config": msgspec.to_builtins(config_record(snap.config)),
        "mode": snap.mode,
        "pending": [msgspec.to_builtins(plan_out_message(p)) for p in snap.pending],
        "blocked": list(snap.blocked),
        "not_following": snap.not_following,
        "mandate_until_s": snap.mandate_until_s,
        "clock_offset_s": snap.clock_offset_s,
    }


def saved_from_value(value: Any) -> Saved | None:
    """A table value read back (``None`` when nothing is saved). A value that does not convert
    raises ``msgspec.ValidationError``: the table is written only by ``snapshot_value``."""
    if not value:
        return None
    config = desk_config(msgspec.convert(value["config"], IntersectionConfig))
    stale = tuple(_stale(msgspec.convert(p, SignalPlanMessage)) for p in value.get("pending", ()))
    # the table is ours, its values untyped (Any): the desk's control refuses a mode it does not know
    # "blocked" since stop 41: a value saved before has none
    blocked = msgspec.convert(value.get("blocked", []), tuple[str, ...])
    # "not_following" since stop 42: a value saved before has none
    not_following = msgspec.convert(value.get("not_following", False), bool)
    # "mandate_until_s" since stop 50: a value saved before has none
    mandate = msgspec.convert(value.get("mandate_until_s"), float | None)
    # "clock_offset_s" since stop 53: a value saved before has none (the clock is relearned)
    clock = msgspec.convert(value.get("clock_offset_s"), float | None)
    return Saved(config, cast("Mode | None", value.get("mode")), stale, blocked, not_following, mandate, clock)


def _stale(msg: SignalPlanMessage) -> StalePlan:
    return StalePlan(msg.plan_id, msg.event_time.timestamp(), msg)
