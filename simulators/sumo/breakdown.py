"""Where a controller loses capacity: ``leitstand sumo eval ... --breakdown``.

RESCO's delay says *how much* a controller loses, not *where*. This accounting, fed every
simulation step with what the detectors measured and the states the signal showed, splits each
traffic light's green time and its change time into what they bought:

* **green group-seconds**, per signal group shown green: *served* (a vehicle crossed one of its
  stop-line loops), *standing* (vehicles stood on its approach lanes and none crossed: the exit is
  blocked, a permissive turn found no gap, or the first second of a start-up), *arriving*
  (vehicles on the way inside the detection zone, none at the line yet) and *empty* (nobody
  there: green given to no one while others may wait);
* **change seconds**: time spent in yellow / intergreen transitions, the lost time each stage
  change costs, and stage changes per hour;
* **halted vehicle-seconds** on its approach lanes (where the queue stands, per intersection) and
  on its exit lanes (spillback from downstream);
* the **decision rules** the controller used, counted per new decision;
* network-wide, the **insertion backlog**: vehicles that should have entered the network and
  could not, because the entry lane was full (their wait is the ``departDelay`` part of RESCO's
  delay; tripinfo gives the ``timeLoss`` part apart).

It reads only the frames (the detectors a city has) and the shown states; SUMO's own view is used
for the insertion backlog alone. Pure: no libsumo here.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from signals.explain import StageDecision
from signals.model import Intersection
from signals.timeline import SignalState
from streams.records import IntersectionFrame


@dataclass
class SignalUse:
    """One traffic light's account over a run."""

    served_s: float = 0.0
    standing_s: float = 0.0
    arriving_s: float = 0.0
    empty_s: float = 0.0
    change_s: float = 0.0
    approach_halted_veh_s: float = 0.0
    exit_halted_veh_s: float = 0.0
    rules: Counter[str] = field(default_factory=Counter)

    def as_dict(self, stage_changes: int, hours: float) -> dict[str, Any]:
        green = self.served_s + self.standing_s + self.arriving_s + self.empty_s
        share = (lambda x: round(x / green, 3)) if green > 0 else (lambda _x: 0.0)
        return {
            "green_group_s": round(green, 1),
            "served_share": share(self.served_s),
            "standing_share": share(self.standing_s),
            "arriving_share": share(self.arriving_s),
            "empty_share": share(self.empty_s),
            "change_s": round(self.change_s, 1),
            "stage_changes": stage_changes,
            "switches_per_hour": round(stage_changes / hours, 1) if hours > 0 else 0.0,
            "approach_halted_veh_h": round(self.approach_halted_veh_s / 3600.0, 2),
            "exit_halted_veh_h": round(self.exit_halted_veh_s / 3600.0, 2),
            "rules": dict(sorted(self.rules.items())),
        }


class Breakdown:
    """Folds steps into per-traffic-light accounts (see the module docstring for the terms)."""

    def __init__(self, intersections: Mapping[str, Intersection]) -> None:
        self.uses = {tid: SignalUse() for tid in intersections}
        #: per traffic light: group -> the detectors of its approach lanes
        self._group_dets = {
            tid: {g: {la.measured_by for la in x.lanes if la.group == g} for g in x.groups} for tid, x in intersections.items()
        }
        self._exit_dets = {tid: {la.measured_by for la in x.lanes if la.group is None} for tid, x in intersections.items()}
        self._approach_dets = {tid: set().union(*groups.values()) for tid, groups in self._group_dets.items()}
        #: per traffic light, the last decision seen (rule, plan, origin): a repeated one is not new
        self._last_decision: dict[str, tuple[object, ...]] = {}
        self.duration_s = 0.0
        self.pending_veh_s = 0.0
        self.pending_max = 0

    def observe(
        self,
        frame: IntersectionFrame,
        states: Mapping[str, SignalState],
        changing: bool,
        decision: StageDecision,
        step_s: float,
    ) -> None:
        """One traffic light, one step: the frame it was given, the states it then showed."""
        tid = frame.intersection_id
        use = self.uses[tid]
        counts = {r.detector_id: r.count or 0 for r in frame.detectors}
        queues = {r.detector_id: r.queue_veh or 0.0 for r in frame.detectors}
        present = {r.detector_id: r.vehicles or 0.0 for r in frame.detectors}
        for g, dets in self._group_dets[tid].items():
            if states.get(g) is not SignalState.GREEN or not dets:
                continue
            if any(counts.get(d, 0) > 0 for d in dets):
                use.served_s += step_s
            elif any(queues.get(d, 0.0) > 0 for d in dets):
                use.standing_s += step_s
            elif any(present.get(d, 0.0) > 0 for d in dets):
                use.arriving_s += step_s
            else:
                use.empty_s += step_s
        if changing:
            use.change_s += step_s
        use.approach_halted_veh_s += step_s * sum(queues.get(d, 0.0) for d in self._approach_dets[tid])
        use.exit_halted_veh_s += step_s * sum(queues.get(d, 0.0) for d in self._exit_dets[tid] - self._approach_dets[tid])
        key = (decision.explanation.rule, decision.plan, decision.origin_s)
        if self._last_decision.get(tid) != key:
            use.rules[decision.explanation.rule] += 1
            self._last_decision[tid] = key

    def network(self, pending_vehicles: int, step_s: float) -> None:
        """Once per step: the vehicles waiting to be inserted into the network."""
        self.duration_s += step_s
        self.pending_veh_s += pending_vehicles * step_s
        self.pending_max = max(self.pending_max, pending_vehicles)

    def finish(self, stage_changes: Mapping[str, int]) -> dict[str, Any]:
        hours = self.duration_s / 3600.0
        per = {tid: use.as_dict(stage_changes.get(tid, 0), hours) for tid, use in sorted(self.uses.items())}
        return {
            "insertion_backlog_mean_veh": round(self.pending_veh_s / self.duration_s, 1) if self.duration_s else 0.0,
            "insertion_backlog_max_veh": self.pending_max,
            "intersections": per,
        }


def merge(breakdowns: list[dict[str, Any]]) -> dict[str, Any]:
    """Several seeds' breakdowns as one: means of the backlog, per light the sums of seconds and
    counts, shares recomputed from the sums."""
    if not breakdowns:
        return {}
    n = len(breakdowns)
    out: dict[str, Any] = {
        "insertion_backlog_mean_veh": round(sum(b["insertion_backlog_mean_veh"] for b in breakdowns) / n, 1),
        "insertion_backlog_max_veh": max(b["insertion_backlog_max_veh"] for b in breakdowns),
        "intersections": {},
    }
    for tid in breakdowns[0]["intersections"]:
        rows = [b["intersections"][tid] for b in breakdowns if tid in b["intersections"]]
        green = sum(r["green_group_s"] for r in rows)
        rules: Counter[str] = Counter()
        for r in rows:
            rules.update(r["rules"])
        out["intersections"][tid] = {
            "green_group_s": round(green, 1),
            **{
                k: round(sum(r[k] * r["green_group_s"] for r in rows) / green, 3) if green else 0.0
                for k in ("served_share", "standing_share", "arriving_share", "empty_share")
            },
            "change_s": round(sum(r["change_s"] for r in rows) / len(rows), 1),
            "stage_changes": round(sum(r["stage_changes"] for r in rows) / len(rows), 1),
            "switches_per_hour": round(sum(r["switches_per_hour"] for r in rows) / len(rows), 1),
            "approach_halted_veh_h": round(sum(r["approach_halted_veh_h"] for r in rows) / len(rows), 2),
            "exit_halted_veh_h": round(sum(r["exit_halted_veh_h"] for r in rows) / len(rows), 2),
            "rules": dict(sorted(rules.items())),
        }
    return out
