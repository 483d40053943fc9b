"""Transit priority around any controller: the running decision, unless a grant is running.

The control desk wraps an intersection's controller in :class:`PriorityController` when the
first priority call arrives. A grant (:func:`signals.priority.plan_priority`) is planned against
the decision the wrapped controller made last, so it changes the program the street is showing;
while its window runs the wrapper returns the grant instead of the controller's decision, and
the control loop gates and adapts it like any other plan. No new grant while one runs: at most
one per cycle.

When the decision driven last is adaptive (acyclic) and the controller weighs bus calls
(``TakesBusCalls``: leitstand, max-pressure), the request becomes a call the controller weighs
in its own next decisions instead (``signals.priority.call_for_bus``); several buses may call at
once, each for its own stage.
"""

from __future__ import annotations

from collections.abc import Mapping

from signals.controllers.base import NOT_FOLLOWING, Controller, DetectorObservation, FollowsTheStreet, TakesBusCalls
from signals.explain import StageDecision
from signals.model import Intersection
from signals.priority import BusCall, Grant, PriorityCall, PriorityRules, Refusal, call_for_bus, plan_priority


class PriorityController:
    """``inner``'s decisions, replaced by the running priority grant while it lasts."""

    def __init__(self, inner: Controller, intersection: Intersection, rules: PriorityRules | None = None) -> None:
        self.inner = inner
        self.intersection = intersection
        self.rules = rules or PriorityRules()
        self.name = inner.name
        self.version = inner.version
        self._last: StageDecision | None = None
        self._grant: Grant | None = None

    def decide(self, observation: DetectorObservation) -> StageDecision:
        decision = self.inner.decide(observation)
        self._last = decision
        if self._grant is not None:
            if observation.time_s < self._grant.until_s:
                return self._grant.decision
            self._grant = None
        return decision

    def resync(
        self, stage: str, since_s: float, now_s: float, last_green: Mapping[str, float] | None = None, *, why: str = NOT_FOLLOWING
    ) -> bool:
        """The street shows ``stage`` (``FollowsTheStreet``): a running grant was planned against a
        plan the street did not show, so it ends; ``inner`` plans on from the stage if it can."""
        self._grant = None
        return isinstance(self.inner, FollowsTheStreet) and self.inner.resync(stage, since_s, now_s, last_green, why=why)

    def request(self, call: PriorityCall) -> Grant | BusCall | Refusal:
        """Plan a grant for ``call`` (it drives from the next observation on), hand an adaptive
        controller the bus's call, or say why not."""
        if self._grant is not None and call.at_s < self._grant.until_s:
            return Refusal(f"a priority grant runs until {self._grant.until_s:.0f} (at most one per cycle)")
        if self._last is None:
            return Refusal("no plan driven yet")
        if not call.delay_s > 0:  # conditional priority: the bus agent asks for late buses only
            return Refusal(f"bus {call.vehicle_id} is not late ({call.delay_s:.0f} s): priority is for late buses")
        if not self._last.plan.cyclic and isinstance(self.inner, TakesBusCalls):
            if why := self.inner.call_refusal():
                return Refusal(why)
            taken = call_for_bus(self.intersection, call, self.rules)
            if isinstance(taken, BusCall):
                self.inner.take_call(taken)
            return taken
        out = plan_priority(self.intersection, self._last, call, self.rules)
        if isinstance(out, Grant):
            self._grant = out
        return out
