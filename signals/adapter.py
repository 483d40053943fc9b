"""Stage adapter: turns the plan being driven into signal states second by second, safely.

A field controller does not replay a plan's drawing; it runs stages and transitions. The adapter
reads which stage the driven plan wants now and changes stage only when that stage has had its
minimum green, with a transition that gives every ending group its yellow, every starting group
its red-yellow, and every entering group its intergreen after *each* conflicting group that
cleared before, whenever that was. So any handover between plans (a mode change, an approval, a
validator fallback, an exhausted window) is as safe as a validated plan: the adapter cannot be
told to cut a green short or skip a clearance.

Nor can a handover starve a group. Each validated plan keeps every group's wait within its
maximum, but the splice of two need not: Webster lengthening the stage before a group's, at the
cycle boundary, made one wait 123 s where 120 s was allowed (ingolstadt21, seed 5, 10 % of the
detectors dead: a violation the monitor caught). So the adapter keeps each waiting group's
deadline (end of its last green + its maximum wait). While following the plan (holding one more
step, or changing to the plan's stage and giving it its minimum green) still leaves an
earliest-deadline-first order that gets every waiting group green in time, it follows the plan;
otherwise it starts the stage of the group whose deadline comes first (``wait_overrides`` counts
these). A plan that keeps the waits itself is never overridden.
"""

from __future__ import annotations

from collections.abc import Mapping
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
        #: end of the last green of every group that has cleared, and the stage it ended in (a
        #: group that ended where it only yielded keeps its yielding clearance)
        self.green_end_s: dict[str, tuple[float, str]] = {}
        self._decision: StageDecision | None = None
        self._timeline: SignalTimeline | None = None
        self.stage_changes = 0
        #: changes the adapter made against the plan because a group's wait was running out
        self.wait_overrides = 0
        #: when the adapter first showed anything (a group never green waits from here)
        self._first_s: float | None = None

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
        k = tl.window_index_at(tau)
        if k is not None:
            return tl.stage_windows[k].stage
        return tl.stage_windows[0].stage if tl.cyclic else tl.stage_windows[-1].stage

    # -- one second ----------------------------------------------------------------------------
    def step(self, decision: StageDecision, t: float, step_s: float = 1.0) -> dict[str, SignalState]:
        """Signal states to show on [t, t + ``step_s``); call with increasing ``t``."""
        intersection = self.intersection
        if self.stage is None:
            self.stage = self.target_stage(decision, t)
            self.green_start_s = t
            self._first_s = t
        if self.transition is not None and t >= self.transition.end_s - EPS:
            self.stage = self.transition.to_stage
            self.green_start_s = self.transition.end_s
            self.transition = None
        if self.transition is None:
            want = self.target_stage(decision, t)
            if t - self.green_start_s >= intersection.stage_green_floor_s(self.stage) - EPS:
                due = self._due_stage(want, t, step_s)
                if due is not None:
                    want = due
                    self.wait_overrides += 1
            if want != self.stage and t - self.green_start_s >= intersection.stage_green_floor_s(self.stage) - EPS:
                self._begin(want, t)
                if self.transition is not None and self.transition.end_s <= t + EPS:
                    self.stage, self.green_start_s, self.transition = want, t, None
        return self.states(t)

    def _due_stage(self, want: str, t: float, step_s: float) -> str | None:
        """A stage to start now instead of ``want``: following the plan (holding one more step,
        or changing to ``want`` and giving it its minimum green) would leave no order in which the
        waiting groups, served earliest deadline first, all get green in time. Then the group whose
        deadline comes first is served now. None while the plan's course still keeps every wait."""
        intersection = self.intersection
        assert self.stage is not None
        on = intersection.stage(self.stage).groups
        first = self._first_s if self._first_s is not None else t
        deadlines = {
            g: (self.green_end_s[g][0] if g in self.green_end_s else first) + intersection.group_max_wait_s(g)
            for g in intersection.groups
            if g not in on and any(g in st.groups for st in intersection.stages)
        }
        if not deadlines:
            return None
        if want == self.stage:
            if self._keeps_waits(self.stage, t + step_s, deadlines, holding=True):
                return None
        elif self._keeps_waits(want, t + self._need(want, t) + intersection.stage_green_floor_s(want), deadlines, served=want):
            return None
        urgent = min(deadlines, key=lambda g: (deadlines[g], g))
        order = [st.id for st in intersection.stages]
        return min((st.id for st in intersection.stages if urgent in st.groups), key=lambda s: (self._need(s, t), order.index(s)))

    def _keeps_waits(
        self, stage: str, free_at: float, deadlines: dict[str, float], served: str | None = None, holding: bool = False
    ) -> bool:
        """Whether, with ``stage`` free to change from ``free_at`` on, serving the waiting groups
        earliest deadline first (each stage its minimum green, transitions as configured) gets
        every one green by its deadline. ``served``: a stage whose groups get green at once.
        ``holding``: ``stage`` is the one shown now, so its first change also waits for the
        intergreens of groups that cleared recently."""
        intersection = self.intersection
        pending = {g: d for g, d in deadlines.items() if served is None or g not in intersection.stage(served).groups}
        order = [st.id for st in intersection.stages]
        cur, now = stage, free_at
        # the greens that will have ended, hop by hop: a group cleared two stages back still
        # delays a conflicting one (an intergreen longer than the stage between them), which the
        # stage transition alone ignored and a handover then broke a maximum wait (stop 54's probe)
        ends: dict[str, tuple[float, str]] = dict(self.green_end_s) if holding else {}
        while pending:
            g = min(pending, key=lambda h: (pending[h], h))
            hops = {st.id: self._need(st.id, now, cur, ends) for st in intersection.stages if g in st.groups}
            nxt = min(hops, key=lambda s: (hops[s], order.index(s)))
            green_at = now + hops[nxt]
            if green_at > pending[g] + EPS:
                return False
            for h in intersection.stage(cur).groups - intersection.stage(nxt).groups:
                ends[h] = (now, cur)
            for h in intersection.stage(nxt).groups:
                pending.pop(h, None)
            cur, now = nxt, green_at + intersection.stage_green_floor_s(nxt)
        return True

    def _need(
        self, to_stage: str, t: float, from_stage: str | None = None, green_end_s: Mapping[str, tuple[float, str]] | None = None
    ) -> float:
        """Seconds a change to ``to_stage`` begun at ``t`` takes: the stage transition, or longer
        where a conflicting group cleared too recently. From the current stage and the greens
        that really ended, unless ``from_stage`` and ``green_end_s`` describe a planned sequence."""
        intersection = self.intersection
        stage = self.stage if from_stage is None else from_stage
        ends = self.green_end_s if green_end_s is None else green_end_s
        assert stage is not None
        here, there = intersection.stage(stage).groups, intersection.stage(to_stage).groups
        need = intersection.transition_s(stage, to_stage)
        for s in there - here:
            for c, (end, ended_in) in ends.items():
                if (c, s) in intersection.intergreen_s and c not in there and c not in here:
                    need = max(need, end + intersection.clearance_s(ended_in, c, s) - t)
            for c in here - there:  # clearing now
                if (c, s) in intersection.intergreen_s:
                    need = max(need, intersection.clearance_s(stage, c, s))
        return need

    def _begin(self, to_stage: str, t: float) -> None:
        intersection = self.intersection
        assert self.stage is not None
        need = self._need(to_stage, t)
        for g in intersection.stage(self.stage).groups - intersection.stage(to_stage).groups:
            self.green_end_s[g] = (t, self.stage)
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
