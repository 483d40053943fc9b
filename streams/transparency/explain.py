"""After-the-fact explanations: what was seen, who decided, what else was possible, who approved.

Pure functions over the logged messages (the JSON of ``signals.plans``, ``signals.audit``,
``sensors.intersection``, ``alerts``, ``alerts.acks``, or the same fields read from the
PostgreSQL history); :mod:`streams.transparency.sources` fetches them, the CLI and the HTTP API
only print what these return. Nothing here guesses: a question the logs cannot answer gets an
answer that says so (``found: false`` and why).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from detection.data_quality import DataQualityState, frame_streams

#: plan statuses that say what a signal drove (the others are proposals and their fate)
DRIVING = frozenset({"active", "fallback", "fixed"})
#: alarm kinds -> the register entry of the rule set that raises them
ALARM_SOURCES = (
    ("water_", "detection.water_rules"),
    ("evaluation_behind", "detection.reader_backlog"),
    ("motionless", "detection.pool_watch"),
    ("overcrowding", "detection.pool_watch"),
    ("crowding", "detection.pool_watch"),
    ("camera_", "detection.pool_watch"),
    ("sensor_", "detection.pool_watch"),
    ("incident_", "detection.incidents"),
    ("detector_fault_", "detection.incidents"),
    ("blocked_", "signals.blockage"),
)


def epoch(value: Any) -> float:
    """A logged time (ISO 8601 text, datetime or epoch seconds) as epoch seconds."""
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, datetime):
        return value.timestamp()
    return datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()


def _plan_time(p: Mapping[str, Any]) -> float:
    """When a plan message applied: its frame's event time (``time_s`` is when it was decided)."""
    return epoch(p["event_time"])


def _decided_at(p: Mapping[str, Any]) -> float:
    return float(p["time_s"]) if p.get("time_s") is not None else epoch(p["event_time"])


def decision_at(plans: Iterable[Mapping[str, Any]], intersection_id: str, at_s: float) -> Mapping[str, Any] | None:
    """The plan that drove the signal at ``at_s``: the newest driving plan not after it."""
    best: Mapping[str, Any] | None = None
    for p in plans:
        if p.get("intersection_id") != intersection_id or p.get("status") not in DRIVING or _plan_time(p) > at_s:
            continue
        if best is None or _plan_time(p) >= _plan_time(best):
            best = p
    return best


def alternatives(plan: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The options the controller weighed: its inputs per stage other than the one it chose."""
    chosen = plan["phases"][0]["stage"] if plan.get("phases") else None
    per_stage: dict[str, dict[str, float]] = {}
    for key, value in (plan.get("explanation", {}).get("inputs") or {}).items():
        metric, _, stage = str(key).rpartition(".")
        if metric and stage and stage != chosen:
            per_stage.setdefault(stage, {})[metric] = value
    return [{"stage": s, "inputs": v} for s, v in sorted(per_stage.items())]


def _audit_for(audit: Iterable[Mapping[str, Any]], intersection_id: str, until_s: float) -> list[Mapping[str, Any]]:
    return sorted(
        (a for a in audit if a.get("intersection_id") == intersection_id and epoch(a["event_time"]) <= until_s),
        key=lambda a: epoch(a["event_time"]),
    )


def data_quality_of(frames: Iterable[Mapping[str, Any]], intersection_id: str, at_s: float) -> dict[str, list[str]]:
    """Replays the intersection's frames up to ``at_s`` through the data-quality watch: the
    inputs that were degraded when the decision was taken (arrival = event time: the log
    holds no arrival times, so clock skew cannot be judged after the fact)."""
    dq = DataQualityState()
    mine = sorted((f for f in frames if f.get("intersection_id") == intersection_id), key=lambda f: epoch(f["event_time"]))
    for f in mine:
        t = epoch(f["event_time"])
        if t > at_s:
            break
        for stream, value in frame_streams(intersection_id, float(f["interval_s"]), f["detectors"]).items():
            dq.observe(stream, t, t, value)
    if mine:
        dq.tick(at_s)
    return dq.degraded(f"intersection/{intersection_id}/")


def explain_signal(
    intersection_id: str,
    at_s: float,
    plans: Sequence[Mapping[str, Any]],
    audit: Sequence[Mapping[str, Any]],
    frames: Sequence[Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    """Why the signal at ``intersection_id`` showed what it showed at ``at_s``."""
    plan = decision_at(plans, intersection_id, at_s)
    if plan is None:
        return {
            "found": False,
            "intersection_id": intersection_id,
            "at_s": at_s,
            "reason": "no logged plan drove this signal at or before that time",
        }
    # approvals are stamped with the operator's wall clock, which may lie after a replayed or
    # simulated frame's event time: a plan's own approval counts whenever it was logged
    everything = _audit_for(audit, intersection_id, float("inf"))
    history = [a for a in everything if epoch(a["event_time"]) <= at_s]
    pid = plan["plan_id"]
    modes = [a for a in history if a.get("action") == "mode_changed"]
    seen = [f for f in frames or () if f.get("intersection_id") == intersection_id and epoch(f["event_time"]) <= at_s]
    mine = [f for f in frames if f.get("intersection_id") == intersection_id] if frames is not None else None
    # no frame of the intersection before the decision: nothing was judged, nothing "passed"
    degraded = data_quality_of(mine, intersection_id, at_s) if mine else None if mine is None else NO_FRAMES
    return {
        "found": True,
        "intersection_id": intersection_id,
        "at_s": at_s,
        "decided_at_s": _decided_at(plan),
        "decided_by": {"controller": plan.get("controller"), "version": plan.get("version"), "rule": plan.get("rule")},
        "status": plan.get("status"),
        "mode": plan.get("mode"),
        "plan": {"plan_id": pid, "phases": plan.get("phases"), "cyclic": plan.get("cyclic")},
        "seen": {"inputs": (plan.get("explanation") or {}).get("inputs", {}), "last_frame": seen[-1] if seen else None},
        "expected_effect": (plan.get("explanation") or {}).get("expected_effect"),
        "alternatives": alternatives(plan),
        "rejected_by_validator": [a.get("detail") for a in history if a.get("action") == "decision_rejected"][-5:],
        "approved_by": [
            {"action": a["action"], "actor": a.get("actor"), "at": a["event_time"]}
            for a in everything
            if (a.get("detail") or {}).get("plan") == pid and a.get("action") != "plan_proposed"
        ]
        + mandate_at(history, plan, at_s),
        "mode_set_by": {"actor": modes[-1].get("actor"), "mode": (modes[-1].get("detail") or {}).get("mode"), "at": modes[-1]["event_time"]}
        if modes
        else None,
        "data_quality": degraded,
        "data_quality_note": _dq_note(degraded),
        **street_followed(plan),
    }


def mandate_at(history: Sequence[Mapping[str, Any]], plan: Mapping[str, Any], at_s: float) -> list[dict[str, Any]]:
    """Who let an acyclic controller drive in advisory mode (``signals.advisory``): its plans are
    its own, not the one approved, so the approval in force is the mandate whose window holds
    ``at_s`` (an approval with ``mandate_until_s``, on the intersection's clock like the plans),
    unless advisory mode was set again (``mandate_ended``) after it."""
    if plan.get("mode") != "advisory" or plan.get("status") not in ("active", "fallback"):
        return []
    found: list[dict[str, Any]] = []
    for a in history:
        detail = a.get("detail") or {}
        if a.get("action") == "plan_approved" and detail.get("mandate_until_s") is not None and at_s < float(detail["mandate_until_s"]):
            found = [{"action": "mandate_approved", "actor": a.get("actor"), "at": a["event_time"], "until_s": detail["mandate_until_s"]}]
        elif a.get("action") == "mode_changed" and detail.get("mandate_ended"):
            found = []
    return found


def street_followed(plan: Mapping[str, Any]) -> dict[str, Any]:
    """Whether the street showed the plan then: a complaint about what a signal showed is not
    answered by the plan when a police officer, a local program or a fault had the cabinet
    (``not_following`` on the drive record, since stop 46; older records do not say)."""
    flag = plan.get("not_following")
    if flag is None:
        return {"street_followed_plan": None, "street_note": "not recorded for this plan (logged before stop 46)"}
    if flag:
        note = (
            "the field controller reported another stage than this plan's (alarm signal_not_following): "
            "the street did not show this plan; see the alarm and the controller's own log"
        )
        return {"street_followed_plan": False, "street_note": note}
    note = "not found deviating (judged only where the field controller reports its stage on signals.state)"
    return {"street_followed_plan": True, "street_note": note}


#: ``data_quality_of``'s stand-in when the log holds no frame of the intersection before the decision
NO_FRAMES: dict[str, list[str]] = {"(no frames)": []}


def _dq_note(degraded: Mapping[str, list[str]] | None) -> str:
    if degraded is None:
        return "inputs not available (the history database keeps no raw frames): data quality not judged"
    if degraded is NO_FRAMES:
        return "no detector frame of this intersection in the log before the decision: data quality not judged"
    if not degraded:
        return "every detector input passed the data-quality watch"
    return f"this decision used degraded data: {len(degraded)} input stream(s) flagged"


def alarm_source(kind: str) -> str:
    """The register entry of the rule set behind an alarm kind."""
    for prefix, source in ALARM_SOURCES:
        if kind.startswith(prefix):
            return source
    return "detection.alarm_escalation"


def explain_alarm(alarm_id: str, alerts: Sequence[Mapping[str, Any]], acks: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """One alarm's story: raised by which rule on what evidence, each transition, who acted."""
    mine = sorted((a for a in alerts if a.get("alarm_id") == alarm_id), key=lambda a: epoch(a["event_time"]))
    if not mine:
        return {"found": False, "alarm_id": alarm_id, "reason": "no transition of this alarm in the log"}
    first, last = mine[0], mine[-1]
    people = sorted((c for c in acks if c.get("alert_id") == alarm_id), key=lambda c: epoch(c["event_time"]))
    return {
        "found": True,
        "alarm_id": alarm_id,
        "kind": last.get("kind"),
        "subject": {"id": last.get("subject_id"), "type": last.get("subject_type")},
        "severity": last.get("severity"),
        "decided_by": {"rule_set": alarm_source(str(last.get("kind", ""))), "message": first.get("message")},
        "seen": first.get("evidence", {}),
        "raised_at": first.get("raised_at"),
        "timeline": [
            {"at": a["event_time"], "transition": a.get("transition"), "state": a.get("state"), "level": a.get("level")} for a in mine
        ],
        "acknowledged_by": last.get("acknowledged_by"),
        "acknowledged_at": last.get("acknowledged_at"),
        "resolved_by": last.get("resolved_by"),
        "escalation_level": last.get("level"),
        "people": [{"action": c.get("action"), "by": c.get("by"), "at": c["event_time"], "note": c.get("note")} for c in people],
        "alternatives": "an alarm informs people; the alternative to raising it was staying silent, which the rule set's thresholds decide",
    }
