"""The shipped fixed-time program: the baseline every adaptive controller is compared against."""

from __future__ import annotations

from signals.controllers.base import DetectorObservation
from signals.explain import Explanation, StageDecision
from signals.model import Intersection
from signals.timeline import build_timeline


class FixedTimeController:
    """Always drives the intersection's configured fixed plan (measurements are ignored)."""

    name = "fixed"
    version = "1.0"
    #: plans bound to a cycle (True) or windows of a few seconds, decided anew each frame
    cyclic = True

    def __init__(self, intersection: Intersection) -> None:
        self.intersection = intersection
        self._cycle_s = build_timeline(intersection, intersection.fixed_plan).duration_s
        #: the program's cycle starts with the first observation (a field controller's sync point)
        self._origin_s: float | None = None

    def decide(self, observation: DetectorObservation) -> StageDecision:
        plan = self.intersection.fixed_plan
        if self._origin_s is None:
            self._origin_s = observation.time_s
        inputs = (("cycle_s", self._cycle_s),) + tuple((f"green_s.{p.stage}", p.green_s) for p in plan.phases)
        return StageDecision(
            intersection_id=self.intersection.id,
            time_s=observation.time_s,
            plan=plan,
            explanation=Explanation(
                self.name, self.version, "fixed_program", inputs, f"runs the shipped program, cycle {self._cycle_s:g} s"
            ),
            origin_s=self._origin_s,
        )
