"""Conversions between the signal records on Kafka and the pure ``signals`` core.

Both paths of ``leitstand sumo eval`` (in-process and through the broker) pass every frame and
every plan through these functions, so they see bit-identical inputs and outputs: JSON floats
round-trip exactly and times are epoch seconds of the record's ``event_time``.
"""

from __future__ import annotations

from datetime import UTC, datetime

from signals.control import AuditEntry, PlanRecord
from signals.controllers import DetectorObservation, LaneMeasurement
from signals.explain import Explanation, StageDecision
from signals.model import SignalPlan, StagePhase
from streams.records import IntersectionFrame, PlanPhase, SignalAuditMessage, SignalPlanMessage


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


def plan_message(record: PlanRecord, session: str, *, changed: bool = True, now_s: float | None = None) -> SignalPlanMessage:
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
