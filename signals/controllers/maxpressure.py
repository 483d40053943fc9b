"""Max-pressure control (Varaiya 2013, "Max pressure control of a network of signalized
intersections", Transportation Research Part C 36): every few seconds choose the stage with the
largest pressure, sum over the lane areas it serves of saturation flow x (upstream queue - mean
queue of the lane areas it feeds). Turning ratios are not measured by field detectors, so the
downstream queue is the plain mean over the listed exit areas (equal split).

The raw policy ignores minimum greens, transitions and starvation; here it only chooses among
actions that keep every stage within its green bounds and every signal group within its maximum
wait (checked earliest-deadline-first), and the safety validator still checks the resulting timeline.
The plan it emits is acyclic: a window of realised history plus the committed continuation.

A late bus's call (``signals.priority.BusCall``) adds the bus as ``weight_veh`` queued vehicles on
its stage, at the highest saturation flow among the stage's lanes, until the call ends.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from signals.controllers.base import NOT_FOLLOWING, DetectorObservation
from signals.explain import Explanation, StageDecision
from signals.model import Intersection, SignalPlan, StagePhase
from signals.priority import MAX_CALLS_PER_STAGE, BusCall
from signals.timeline import EPS, SignalState, build_timeline, runs, transition_times


class MaxPressureController:
    name = "maxpressure"
    version = "1.2"
    #: plans bound to a cycle (True) or windows of a few seconds, decided anew each frame
    cyclic = False

    def __init__(self, intersection: Intersection, decision_interval_s: float = 5.0) -> None:
        self.intersection = intersection
        self.decision_interval_s = decision_interval_s
        #: seconds one decision commits: the decision interval, or the frames' interval if longer
        #: (a hold commits green up to the next frame, so holding by less overran maximum greens
        #: whenever frames came slower than decisions)
        self._step_s = decision_interval_s
        ids = [s.id for s in intersection.stages]
        self._max_transition_s = max((intersection.transition_s(a, b) for a in ids for b in ids), default=0.0)
        max_limit = max(intersection.group_max_wait_s(g) for g in intersection.groups)
        self.history_s = max_limit + intersection.cycle_max_s + self._max_transition_s
        # the longest a cleared group binds a later change: an intergreen or a yielding clearance
        clearances = [g.yielding_clearance_s for g in intersection.groups.values() if g.yielding_clearance_s is not None]
        self._longest_clearance_s = max([*intersection.intergreen_s.values(), *clearances], default=0.0)
        self._phases: list[StagePhase] = []
        #: wall time at which the plan window starts (t = 0 of its timeline)
        self._origin_s = 0.0
        self._horizon_s: float | None = None
        self._last: StageDecision | None = None
        #: why the window was restarted at the stage the street shows (``resync``), said once
        self._street = ""
        #: when each group's last green ended as the street showed it (``resync``), absolute seconds
        self._street_greens: dict[str, float] = {}
        self._measured = {la.id: la.measured_by for la in intersection.lanes}
        #: late buses' calls by vehicle, weighed until each ends (``take_call``)
        self._calls: dict[str, BusCall] = {}
        #: per stage, calls running but not weighed (more than ``MAX_CALLS_PER_STAGE``)
        self._calls_over: dict[str, int] = {}

    # -- transit priority -------------------------------------------------------------------------
    def take_call(self, call: BusCall) -> None:
        """Weigh a late bus as demand on its stage until ``call.until_s`` (``TakesBusCalls``)."""
        self._calls[call.call.vehicle_id] = call

    def call_refusal(self) -> str | None:
        """Calls are always weighed (``TakesBusCalls``)."""
        return None

    def bus_calls(self, now: float) -> dict[str, list[BusCall]]:
        """The calls weighed at ``now`` by stage: the ``MAX_CALLS_PER_STAGE`` due first of each
        (ended ones are dropped; the others are counted for the explanation)."""
        self._calls = {v: c for v, c in self._calls.items() if c.until_s > now}
        out: dict[str, list[BusCall]] = {}
        for c in sorted(self._calls.values(), key=lambda c: (c.call.at_s + c.call.eta_s, c.call.vehicle_id)):
            out.setdefault(c.call.stage, []).append(c)
        self._calls_over = {s: len(cs) - MAX_CALLS_PER_STAGE for s, cs in out.items() if len(cs) > MAX_CALLS_PER_STAGE}
        return {s: cs[:MAX_CALLS_PER_STAGE] for s, cs in out.items()}

    def calls_said(self, calls: dict[str, list[BusCall]], now: float) -> str:
        """The weighed calls in the explanation's words, and how many more were not weighed ("" when none)."""
        said = [
            f"bus {c.call.vehicle_id} ({c.call.delay_s:.0f} s late, due in about {max(0.0, c.call.at_s + c.call.eta_s - now):.0f} s) "
            f"counts as {c.weight_veh:g} vehicles for stage {stage}"
            for stage, cs in sorted(calls.items())
            for c in cs
        ]
        said += [
            f"{n} more calling stage {stage} not weighed (at most {MAX_CALLS_PER_STAGE} a stage)"
            for stage, n in sorted(self._calls_over.items())
            if stage in calls
        ]
        return f"; transit priority: {'; '.join(said)}" if said else ""

    # -- measurements --------------------------------------------------------------------------
    def pressures(self, obs: DetectorObservation) -> dict[str, float]:
        """Stage pressure per Varaiya (2013), in vehicles x vehicles/second."""
        intersection = self.intersection
        out = {}
        for st in intersection.stages:
            p = 0.0
            for la in intersection.lanes:
                if la.group in st.groups:
                    down = sum(obs.queue(self._measured[d]) for d in la.downstream) / len(la.downstream) if la.downstream else 0.0
                    p += la.saturation_flow_vph / 3600.0 * (obs.queue(la.measured_by) - down)
            out[st.id] = p
        return out

    def waits(self) -> dict[str, float]:
        """Seconds each group has not been green at the end of the committed horizon."""
        tl = build_timeline(self.intersection, SignalPlan(tuple(self._phases), cyclic=False))
        out = {}
        for g in self.intersection.groups:
            greens = [r for r in runs(tl, g) if r.state is SignalState.GREEN]
            out[g] = 0.0 if greens and greens[-1].open_end else tl.duration_s - (greens[-1].end_s if greens else 0.0)
            if greens:  # a green of the window's own: the street's from before no longer counts
                self._street_greens.pop(g, None)
            elif g in self._street_greens:  # its last green was the street's, before the window
                out[g] = max(out[g], self._origin_s + tl.duration_s - self._street_greens[g])
        return out

    # -- the decision ---------------------------------------------------------------------------
    def _not_due(self, observation: DetectorObservation) -> StageDecision | None:
        """The decision to repeat when none is due yet (or the start); None when one is due.

        A decision is due while the committed horizon still lies ahead of the next expected
        observation, so the signal never overruns what the plan (and the validator) saw.
        """
        intersection = self.intersection
        now = observation.time_s
        if self._horizon_s is None:
            first = intersection.fixed_plan.phases[0].stage
            self._phases = [StagePhase(first, intersection.stage_green_floor_s(first))]
            self._origin_s = now
            self._horizon_s = now + self._phases[0].green_s
            return self._emit(now, "start", {}, f"starts with stage {first} for its minimum green")
        interval_s = observation.known_interval_s()
        if now + interval_s + EPS < self._horizon_s and self._last is not None:
            return self._last
        if now > self._horizon_s + EPS:
            # no decision was due while observations were missing: the signal held its stage
            last = self._phases[-1]
            self._phases[-1] = StagePhase(last.stage, last.green_s + now - self._horizon_s)
            self._horizon_s = now
        self._step_s = max(self.decision_interval_s, interval_s)
        return None

    def _emergency(self, order: list[str], fallback: str, waits: dict[str, float], can_hold: bool) -> tuple[str, str]:
        """No action keeps every wait safe: serve the most overdue group, first in ``order``.

        Returns the chosen stage and the overdue group.
        """
        intersection = self.intersection
        cur = self._phases[-1].stage
        urgent = max(waits, key=lambda g: waits[g] - intersection.group_max_wait_s(g))
        options = [s for s in order if urgent in intersection.stage(s).groups and (s != cur or can_hold)]
        return (options[0] if options else fallback), urgent

    def decide(self, observation: DetectorObservation) -> StageDecision:
        intersection = self.intersection
        now = observation.time_s
        repeat = self._not_due(observation)
        if repeat is not None:
            return repeat
        pressures = self.pressures(observation)
        calls = self.bus_calls(now)
        for stage_id, cs in calls.items():
            sat = max(
                (la.saturation_flow_vph for la in intersection.lanes if la.group in intersection.stage(stage_id).groups), default=1800.0
            )
            pressures[stage_id] += sat / 3600.0 * sum(c.weight_veh for c in cs)
        waits = self.waits()
        cur = self._phases[-1]
        step = self._step_s
        can_hold = cur.green_s + step <= intersection.stage(cur.stage).max_green_s + EPS
        ranked = sorted(intersection.stages, key=lambda s: (-pressures[s.id], s.id != cur.stage, s.id))
        best = ranked[0].id
        inputs = {f"pressure.{k}": round(v, 2) for k, v in pressures.items()}
        inputs |= {f"queue_veh.{la.id}": observation.queue(la.measured_by) for la in intersection.lanes}
        chosen, rule = None, ""
        for st in ranked:
            if st.id == cur.stage and not can_hold:
                continue
            if self._wait_safe(st.id, waits):
                chosen = st.id
                if st.id == cur.stage:
                    rule = "max_pressure_hold"
                elif st.id == best:
                    rule = "max_pressure_switch"
                elif best == cur.stage and not can_hold and st is ranked[1]:
                    rule = "max_green_switch"  # the best stage has used up its maximum green
                else:  # a higher-pressure action would have let some group wait too long
                    rule = "max_wait_guard"
                break
        if chosen is None:
            chosen, urgent = self._emergency([s.id for s in ranked], ranked[-1].id, waits, can_hold)
            rule = "max_wait_emergency"
            inputs[f"wait_s.{urgent}"] = round(waits[urgent], 1)
        self._commit(chosen)
        if rule.startswith("max_wait"):
            inputs |= {f"wait_s.{g}": round(w, 1) for g, w in waits.items() if g in intersection.stage(chosen).groups}
        effect = (
            f"holds stage {chosen} {step:g} s more"
            if chosen == cur.stage
            else f"switches {cur.stage} -> {chosen} (transition {self._last_transition_s():g} s)"
        )
        effect += f"; expected to discharge the highest-pressure movements (pressure {pressures[chosen]:.2f})"
        inputs |= {f"bus_call_veh.{k}": sum(c.weight_veh for c in cs) for k, cs in calls.items()}
        return self._emit(now, rule, inputs, effect + self.calls_said(calls, now))

    def _candidate(self, stage_id: str) -> list[StagePhase]:
        """The phase list after holding (same stage) or switching to ``stage_id``."""
        cur = self._phases[-1]
        if stage_id == cur.stage:
            return self._phases[:-1] + [StagePhase(stage_id, cur.green_s + self._step_s)]
        green = max(self.intersection.stage_green_floor_s(stage_id), self._step_s)
        return self._phases + [StagePhase(stage_id, green)]

    def _span(self, phases: list[StagePhase]) -> float:
        plan = SignalPlan(tuple(phases), cyclic=False)
        return sum(p.green_s for p in phases) + sum(transition_times(self.intersection, plan))

    def _last_transition_s(self) -> float:
        trans = transition_times(self.intersection, SignalPlan(tuple(self._phases), cyclic=False))
        return trans[-1] if trans else 0.0

    def _duration_of(self, stage_id: str) -> float:
        """Time the action adds to the committed horizon (transition included)."""
        return self._span(self._candidate(stage_id)) - self._span(self._phases)

    def _wait_safe(self, stage_id: str, waits: dict[str, float]) -> bool:
        """After this action, can every waiting group still be served within its maximum wait?

        Simulates one more round serving every group earliest-deadline-first (the groups the
        action serves start waiting when it ends), each change costed at the longest possible
        transition and each stage at its minimum green: a conservative check, so several groups
        coming due together (e.g. after start-up) are all served in time.
        """
        intersection = self.intersection
        added = self._duration_of(stage_id)
        served = intersection.stage(stage_id).groups
        # everyone is scheduled once more, the groups just served with their wait starting at 0
        pending = {g: 0.0 if g in served else w + added for g, w in waits.items()}
        t = 0.0
        while pending:
            urgent = min(pending, key=lambda g: intersection.group_max_wait_s(g) - pending[g])
            serve = max((s for s in intersection.stages if urgent in s.groups), key=lambda s: (len(s.groups & pending.keys()), s.id))
            t += self._max_transition_s
            for g in serve.groups & pending.keys():
                if pending.pop(g) + t > intersection.group_max_wait_s(g) + EPS:
                    return False
            t += max(intersection.stage_green_floor_s(serve.id), self._step_s)
        return True

    def _commit(self, stage_id: str) -> None:
        self._phases = self._candidate(stage_id)
        assert self._horizon_s is not None
        self._horizon_s = self._origin_s + self._span(self._phases)
        self._trim()

    def _trim(self) -> None:
        """Drop the oldest phase while the rest still spans ``history_s`` and none of its groups'
        intergreens or yielding clearances can still bind a later change (so the retained past is
        laid out unchanged)."""
        while len(self._phases) > 2:
            tl = build_timeline(self.intersection, SignalPlan(tuple(self._phases), cyclic=False))
            w0, w1 = tl.stage_windows[0], tl.stage_windows[1]
            if tl.duration_s - w1.start_s < self.history_s or w1.end_s - w0.end_s < self._longest_clearance_s:
                return
            self._origin_s += w1.start_s
            self._phases.pop(0)

    def resync(
        self, stage: str, since_s: float, now_s: float, last_green: Mapping[str, float] | None = None, *, why: str = NOT_FOLLOWING
    ) -> bool:
        """The street shows ``stage`` since ``since_s`` although the plan drove something else (the
        control desk calls this while the field controller is found not following): the window
        restarts at that stage, green since ``since_s`` (at most its maximum green, as a green whose
        start lies outside the window), committed at least to its minimum green, and the next
        decision is made at once from it.

        Planned on from a stage it believed in, the plan a cabinet takes back after manual control
        would place the next stage's green where the street had not even begun it: the cabinet's
        real change comes later, and the plan's next switch could cut that green short of its
        minimum. The other groups' waits would restart at the window's start; ``last_green`` says
        when the street last showed each group green (from the field controller's reported stages,
        ``FollowWatch.street``), so a group the cabinet's own program left waiting counts its wait
        from there and is served within its maximum wait (or first, if that has passed)."""
        intersection = self.intersection
        if self._horizon_s is None or stage not in {s.id for s in intersection.stages} or not math.isfinite(since_s):
            return False
        kept = min(max(now_s - since_s, 0.0), intersection.stage(stage).max_green_s)
        self._phases = [StagePhase(stage, max(kept, intersection.stage_green_floor_s(stage)))]
        self._origin_s = now_s - kept
        self._horizon_s = self._origin_s + self._phases[0].green_s
        self._last = None
        self._street_greens = {g: t for g, t in (last_green or {}).items() if math.isfinite(t) and t <= now_s}
        self._street = f"planned from stage {stage}, which the street has shown for {now_s - since_s:.0f} s instead of the plan ({why})"
        return True

    def _emit(self, now: float, rule: str, inputs: dict[str, float], effect: str) -> StageDecision:
        if self._street:
            effect, self._street = f"{effect}; {self._street}", ""
        self._last = StageDecision(
            self.intersection.id,
            now,
            SignalPlan(tuple(self._phases), cyclic=False),
            Explanation(self.name, self.version, rule, tuple((k, float(v)) for k, v in inputs.items()), effect),
            origin_s=self._origin_s,
        )
        return self._last
