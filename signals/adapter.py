"""Stage adapter: turns the plan being driven into signal states second by second, safely.

A field controller does not replay a plan's drawing; it runs stages and transitions. The adapter
reads which stage the driven plan wants now and changes stage only when that stage has had its
minimum green, with a transition that gives every ending group its yellow, every starting group
its red-yellow, and every entering group its intergreen after *each* conflicting group that
cleared before, whenever that was. So any handover between plans (a mode change, an approval, a
validator fallback, an exhausted window) is as safe as a validated plan: the adapter cannot be
told to cut a green short or skip a clearance.
"""

from __future__ import annotations

from dataclasses import dataclass

from signals.explain import StageDecision
from signals.model import Intersection
from signals.timeline import EPS, SignalState, SignalTimeline, build_timeline


@dataclass(frozen=True)
class Transition:
    from_stage: str
    to_stage: str
    start_s: float
    end_s: float


class StageAdapter:
    """Per intersection: current stage, its green start, an ongoing transition, green ends."""

    def __init__(self, intersection: Intersection) -> None:
        self.intersection = intersection
        self.stage: str | None = None
        self.green_start_s = 0.0
        self.transition: Transition | None = None
        #: end of the last green of every group that has cleared
        self.green_end_s: dict[str, float] = {}
        self._decision: StageDecision | None = None
        self._timeline: SignalTimeline | None = None
        self.stage_changes = 0

    # -- what the plan asks for ----------------------------------------------------------------
    def target_stage(self, decision: StageDecision, t: float) -> str:
        if decision is not self._decision:
            if self._decision is None or decision.plan != self._decision.plan:
                self._timeline = build_timeline(self.intersection, decision.plan)
            self._decision = decision
        tl = self._timeline
        assert tl is not None
        tau = t - decision.origin_s
        if tl.cyclic:
            tau %= tl.duration_s
        windows = tl.stage_windows
        for w in windows:
            if tau < w.end_s - EPS:
                # inside this window, or in the plan's transition towards it: this stage is wanted
                return w.stage
        return windows[0].stage if tl.cyclic else windows[-1].stage

    # -- one second ----------------------------------------------------------------------------
    def step(self, decision: StageDecision, t: float) -> dict[str, SignalState]:
        """Signal states to show on [t, t + 1 step); call with increasing ``t``."""
        intersection = self.intersection
        if self.stage is None:
            self.stage = self.target_stage(decision, t)
            self.green_start_s = t
        if self.transition is not None and t >= self.transition.end_s - EPS:
            self.stage = self.transition.to_stage
            self.green_start_s = self.transition.end_s
            self.transition = None
        if self.transition is None:
            want = self.target_stage(decision, t)
            if want != self.stage and t - self.green_start_s >= intersection.stage_green_floor_s(self.stage) - EPS:
                self._begin(want, t)
                if self.transition is not None and self.transition.end_s <= t + EPS:
                    self.stage, self.green_start_s, self.transition = want, t, None
        return self.states(t)

    def _begin(self, to_stage: str, t: float) -> None:
        intersection = self.intersection
        assert self.stage is not None
        here, there = intersection.stage(self.stage).groups, intersection.stage(to_stage).groups
        for g in here - there:
            self.green_end_s[g] = t
        need = intersection.transition_s(self.stage, to_stage)
        for s in there - here:
            for c, end in self.green_end_s.items():
                ig = intersection.intergreen_s.get((c, s))
                if ig is not None and c not in there:
                    need = max(need, end + ig - t)
        self.transition = Transition(self.stage, to_stage, t, t + need)
        self.stage_changes += 1

    def states(self, t: float) -> dict[str, SignalState]:
        intersection = self.intersection
        assert self.stage is not None
        tr = self.transition
        if tr is None:
            on = intersection.stage(self.stage).groups
            return {g: SignalState.GREEN if g in on else SignalState.RED for g in intersection.groups}
        here, there = intersection.stage(tr.from_stage).groups, intersection.stage(tr.to_stage).groups
        out = {}
        for g, grp in intersection.groups.items():
            if g in here and g in there:
                out[g] = SignalState.GREEN
            elif g in here:
                out[g] = SignalState.YELLOW if t < tr.start_s + grp.yellow_s - EPS else SignalState.RED
            elif g in there:
                out[g] = SignalState.RED_YELLOW if t >= tr.end_s - grp.red_yellow_s - EPS else SignalState.RED
            else:
                out[g] = SignalState.RED
        return out
