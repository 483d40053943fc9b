"""``leitstand``: queue- and arrival-aware acyclic stage control, decided every second.

What it sees is what lane-area detectors (video, radar) report per approach lane: halted
vehicles (the queue) and vehicles in the area (queue plus those approaching the stop line within
the detection zone), and the same for exit lanes. No identities, no routes.

The rule, in the spirit of actuated control and SURTRAC's queue/platoon clearing:

* **serve while it pays**: the green stage keeps running while the movements only it serves
  still have vehicles queued or arriving (a platoon is not cut off), the classic gap-out;
* **switch when it pays more**: another stage takes over when the vehicles it would release,
  weighted up by how long its groups have waited (x(1 + wait / ``wait_scale_s``)), outweigh
  ``stranded_weight`` times the vehicles the current stage would strand (plus
  ``switch_cost_veh``): close to exhaustive service, which polling theory favours when every
  change costs lost time;
* **exits that are full count for nothing**: a movement whose exit lane is queued back is not
  served into the spillback (the downstream term of max-pressure, without turning ratios);
* minimum and maximum greens, intergreens and every group's maximum wait are enforced exactly
  as for max-pressure (the same plan bookkeeping, earliest-deadline-first wait guard), and the
  safety validator still checks every plan.

It has no trained parameters. The five constants (vehicles, seconds) were chosen in a small
sweep on the three development maps, seed 1 only; docs/signals.md lists the sweep and the check
on networks it never saw (generated grids) - read the figures with that in mind.
"""

from __future__ import annotations

from signals.controllers.base import DetectorObservation
from signals.controllers.maxpressure import MaxPressureController
from signals.explain import StageDecision
from signals.model import Intersection
from signals.timeline import EPS


class LeitstandController(MaxPressureController):
    name = "leitstand"
    version = "1.0"

    def __init__(
        self,
        intersection: Intersection,
        decision_interval_s: float = 1.0,
        approach_weight: float = 1.0,
        switch_cost_veh: float = 0.0,
        wait_scale_s: float = 30.0,
        spillback_veh: float = 8.0,
        stranded_weight: float = 3.0,
    ) -> None:
        super().__init__(intersection, decision_interval_s=decision_interval_s)
        self.approach_weight = approach_weight
        self.switch_cost_veh = switch_cost_veh
        self.wait_scale_s = wait_scale_s
        self.spillback_veh = spillback_veh
        self.stranded_weight = stranded_weight
        #: per stage: approach detectors it serves, each with the exit detectors its movements use
        self._serves: dict[str, dict[str, set[str]]] = {}
        for st in intersection.stages:
            serves: dict[str, set[str]] = {}
            for la in intersection.lanes:
                if la.group in st.groups:
                    serves.setdefault(la.measured_by, set()).update(self._measured[d] for d in la.downstream)
            self._serves[st.id] = serves

    def _lane_value(self, obs: DetectorObservation, det: str, exits: set[str]) -> float:
        queue = obs.queue(det)
        approaching = max(0.0, obs.vehicles(det) - queue)
        value = queue + self.approach_weight * approaching
        if exits and min(obs.queue(e) for e in exits) >= self.spillback_veh:
            return 0.0  # every exit of this lane is queued back: green would not move anyone
        return value

    def decide(self, observation: DetectorObservation) -> StageDecision:
        intersection = self.intersection
        now = observation.time_s
        repeat = self._not_due(observation)
        if repeat is not None:
            return repeat
        cur = self._phases[-1]
        waits = self.waits()
        value = {st.id: {d: self._lane_value(observation, d, ex) for d, ex in self._serves[st.id].items()} for st in intersection.stages}
        mine = value[cur.stage]
        can_hold = cur.green_s + self.decision_interval_s <= intersection.stage(cur.stage).max_green_s + EPS

        def gain(stage_id: str) -> float:
            """Vehicles a change to ``stage_id`` releases, weighted by its groups' longest wait."""
            fresh = sum(v for d, v in value[stage_id].items() if d not in mine)
            wait = max((waits[g] for g in intersection.stage(stage_id).groups - intersection.stage(cur.stage).groups), default=0.0)
            return fresh * (1.0 + wait / self.wait_scale_s)

        gains = {s.id: gain(s.id) for s in intersection.stages if s.id != cur.stage}
        others = sorted(gains, key=lambda s: (-gains[s], s))
        best = others[0]
        stranded = sum(v for d, v in mine.items() if d not in value[best])
        inputs = {f"gain.{s}": round(gains[s], 2) for s in others}
        inputs |= {"stranded": round(stranded, 2), "green_s": cur.green_s}
        pays = gains[best] > self.stranded_weight * stranded + self.switch_cost_veh
        if can_hold and not pays and self._wait_safe(cur.stage, waits):
            rule = "serve_while_it_pays" if stranded > 0 else "rest_in_green"
            chosen = cur.stage
        else:
            safe = next((s for s in others if self._wait_safe(s, waits)), None)
            if safe is not None:
                chosen = safe
                rule = "max_green_switch" if not can_hold else "switch_pays" if safe == best and pays else "max_wait_guard"
            else:
                chosen, urgent = self._emergency([s.id for s in intersection.stages], best, waits, can_hold)
                rule = "max_wait_emergency"
                inputs[f"wait_s.{urgent}"] = round(waits[urgent], 1)
        self._commit(chosen)
        if chosen == cur.stage:
            effect = f"holds stage {chosen}: {stranded:.1f} vehicles still to serve, {gains[best]:.1f} waiting at {best}"
        else:
            effect = (
                f"switches {cur.stage} -> {chosen} (transition {self._last_transition_s():g} s): releases "
                f"{gains[chosen]:.1f} weighted vehicles, strands {stranded:.1f}"
            )
        return self._emit(now, rule, inputs, effect)
