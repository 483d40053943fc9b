"""Webster (1958) cycle and splits from measured flows, recomputed every few cycles.

Optimum cycle C0 = (1.5 L + 5) / (1 - Y), where L is the lost time per cycle and Y the sum of the
stages' critical flow ratios y = q / s (flow over saturation flow of the most loaded lane area a
stage serves). Effective green is shared in proportion to y. Lost time is taken as the sum of the
stage transitions (intergreen periods), i.e. start-up loss and end gain are assumed to cancel.
Changes are bounded per recomputation so drivers and the downstream coordination see no jumps.
"""

from __future__ import annotations

import math
from collections import defaultdict

from signals.controllers.base import DetectorObservation
from signals.explain import Explanation, StageDecision
from signals.model import Intersection, SignalPlan, StagePhase
from signals.timeline import transition_times

#: beyond this the intersection is oversaturated and Webster's formula diverges: use the max cycle
Y_SATURATED = 0.9


class WebsterController:
    name = "webster"
    version = "1.0"
    #: plans bound to a cycle (True) or windows of a few seconds, decided anew each frame
    cyclic = True

    def __init__(
        self, intersection: Intersection, recompute_every_cycles: int = 3, max_cycle_change_s: float = 10.0, max_split_change_s: float = 8.0
    ) -> None:
        self.intersection = intersection
        self.recompute_every_cycles = recompute_every_cycles
        self.max_cycle_change_s = max_cycle_change_s
        self.max_split_change_s = max_split_change_s
        self._sequence = intersection.fixed_plan.stage_sequence
        self._plan = intersection.fixed_plan
        self._counts: dict[str, float] = defaultdict(float)
        self._measured_s = 0.0
        self._origin_s: float | None = None
        #: the recomputed plan and its explanation, waiting for the next cycle boundary
        self._next: tuple[SignalPlan, Explanation] | None = None
        self._explanation = Explanation(
            self.name,
            self.version,
            "webster_initial_program",
            (("cycle_s", self.cycle_s),),
            "starts from the shipped program until flows are measured",
        )

    @property
    def lost_time_s(self) -> float:
        """Sum of the stage changes of the current plan (all groups' intergreens honoured)."""
        return sum(transition_times(self.intersection, self._plan))

    @property
    def cycle_s(self) -> float:
        return sum(p.green_s for p in self._plan.phases) + self.lost_time_s

    def decide(self, observation: DetectorObservation) -> StageDecision:
        now = observation.time_s
        if self._origin_s is None:
            self._origin_s = now
        # a new plan takes over only at a cycle boundary, so no phase is cut short mid-cycle
        while now >= self._origin_s + self.cycle_s:
            self._origin_s += self.cycle_s
            if self._next is not None:
                self._plan, self._explanation = self._next
                self._next = None
        for lane in self.intersection.lanes:
            if lane.group is not None:
                self._counts[lane.id] += observation.count(lane.measured_by)
        self._measured_s += max(0.0, observation.interval_s)
        if self._next is None and self._measured_s >= self.recompute_every_cycles * self.cycle_s:
            self._recompute()
        return StageDecision(self.intersection.id, now, self._plan, self._explanation, origin_s=self._origin_s)

    def _recompute(self) -> None:
        intersection = self.intersection
        flows = {lid: c * 3600.0 / self._measured_s for lid, c in self._counts.items()}
        ratios = []
        n = len(self._sequence)
        for i, stage_id in enumerate(self._sequence):
            # only the groups a stage starts are critical for it: a protected-turn stage that
            # continues groups already green (SUMO's left-turn phases) must not count them twice
            groups = (
                intersection.stage(stage_id).groups - intersection.stage(self._sequence[i - 1]).groups
                if n > 1
                else intersection.stage(stage_id).groups
            )
            ys = [flows.get(la.id, 0.0) / la.saturation_flow_vph for la in intersection.lanes if la.group in groups]
            ratios.append(max(ys, default=0.0))
        big_y = sum(ratios)
        lost = self.lost_time_s
        saturated = big_y >= Y_SATURATED
        c0 = intersection.cycle_max_s if saturated else (1.5 * lost + 5.0) / (1.0 - big_y)
        prev_c = self.cycle_s
        target_c = min(max(c0, intersection.cycle_min_s), intersection.cycle_max_s)
        c = min(max(target_c, prev_c - self.max_cycle_change_s), prev_c + self.max_cycle_change_s)
        effective = max(c - lost, 0.0)
        prev_g = [p.green_s for p in self._plan.phases]
        share = [r / big_y for r in ratios] if big_y > 0 else [g / sum(prev_g) for g in prev_g]
        greens = []
        for stage_id, s, g_prev in zip(self._sequence, share, prev_g):
            g = min(max(effective * s, g_prev - self.max_split_change_s), g_prev + self.max_split_change_s)
            g = min(max(g, intersection.stage_green_floor_s(stage_id)), intersection.stage(stage_id).max_green_s)
            greens.append(g)
        greens = [round(g, 1) for g in self._fit_cycle(greens, lost)]
        over = sum(greens) + lost - intersection.cycle_max_s
        if over > 0:  # rounding pushed the cycle past its bound: take it from the longest green
            k = max(range(len(greens)), key=lambda i: greens[i])
            greens[k] = math.floor((greens[k] - over) * 10) / 10
        plan = SignalPlan(tuple(StagePhase(s, g) for s, g in zip(self._sequence, greens)))
        new_cycle_s = sum(greens) + sum(transition_times(intersection, plan))
        inputs = {"Y": round(big_y, 3), "C0_s": round(c0, 1), "cycle_s": round(new_cycle_s, 1), "L_s": lost}
        inputs |= {f"y.{s}": round(r, 3) for s, r in zip(self._sequence, ratios)}
        inputs |= {f"flow_vph.{k}": round(v, 1) for k, v in sorted(flows.items())}
        split = ", ".join(f"{s} {g:g} s" for s, g in zip(self._sequence, greens))
        explanation = Explanation(
            self.name,
            self.version,
            "webster_saturated" if saturated else "webster_recompute",
            tuple(inputs.items()),
            f"cycle {new_cycle_s:g} s (Webster optimum {c0:.0f} s, change bounded to ±{self.max_cycle_change_s:g} s), "
            f"greens {split}: "
            + (
                "oversaturated (Y >= 0.9), longest cycle for capacity; queues will grow"
                if saturated
                else "minimises average delay for the measured flows"
            ),
        )
        self._next = (plan, explanation)
        self._counts.clear()
        self._measured_s = 0.0

    def _fit_cycle(self, greens: list[float], lost: float) -> list[float]:
        """Pull the cycle back inside its bounds by moving green that is above the stage floors
        (or below the stage maxima); if the floors alone exceed the maximum cycle the plan stays
        infeasible and the safety validator will reject it."""
        intersection = self.intersection
        floors = [intersection.stage_green_floor_s(s) for s in self._sequence]
        ceils = [intersection.stage(s).max_green_s for s in self._sequence]
        total = sum(greens) + lost
        if total > intersection.cycle_max_s:
            slack = [g - f for g, f in zip(greens, floors)]
            cut = min(total - intersection.cycle_max_s, sum(slack))
            if sum(slack) > 0:
                greens = [g - cut * sl / sum(slack) for g, sl in zip(greens, slack)]
        elif total < intersection.cycle_min_s:
            room = [c - g for g, c in zip(greens, ceils)]
            add = min(intersection.cycle_min_s - total, sum(room))
            if sum(room) > 0:
                greens = [g + add * r / sum(room) for g, r in zip(greens, room)]
        return greens
