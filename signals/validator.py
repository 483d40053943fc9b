"""The safety gate every decision passes, checked on the concrete signal-state timeline.

Rules and their sources:

* conflicting groups are never green at the same time (RiLSA, signal safety);
* intergreen times (Zwischenzeiten) from end of green of a clearing group to start of green of a
  conflicting entering group are respected (RiLSA 2015, 2.5); where a group's green ends in a
  stage in which it only yielded, its yielding clearance (turners waiting inside the junction
  start from a standstill) holds towards every conflicting group until it is green again;
* the signal sequence is red -> red-yellow -> green -> yellow -> red, with yellow and red-yellow
  lasting exactly their configured times (RiLSA / StVO §37; groups configured with 0 s skip them);
* every green lasts at least the group's minimum green, 5 s by default (RiLSA), and every stage
  phase lies within its stage's minimum and maximum green;
* a cyclic plan's cycle lies within the configured bounds (default at most 120 s);
* no signal group - pedestrians and side streets included - waits longer than its maximum wait,
  and every group is served at all;
* every green in a plan is a finite, positive number of seconds (NaN compares False with
  everything, so without this check a NaN green would pass every other rule).

The intersection itself is checked where it is built (``signals.model``: finite numbers in the
constructor, RiLSA bounds and a safe fixed plan in the loaders), so the rules above can trust it.

A rejected decision is replaced by the last safe plan, and the rejection is logged with reasons.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

from signals.explain import StageDecision
from signals.model import SANE_MAX_S, Intersection, SignalPlan
from signals.timeline import EPS, SignalState, SignalTimeline, build_timeline, runs

log = logging.getLogger(__name__)

R, RY, G, Y = SignalState.RED, SignalState.RED_YELLOW, SignalState.GREEN, SignalState.YELLOW

#: violation codes (stable: dashboards and audits key on them)
CODES = (
    "conflicting_greens",
    "intergreen",
    "signal_sequence",
    "yellow_duration",
    "red_yellow_duration",
    "min_green",
    "stage_min_green",
    "stage_max_green",
    "cycle_bounds",
    "max_wait",
    "starved",
    "unknown_stage",
    "invalid_green",
)


@dataclass(frozen=True)
class Violation:
    code: str
    subject: str
    at_s: float
    detail: str

    def __str__(self) -> str:
        return f"{self.code} [{self.subject}] at {self.at_s:.1f} s: {self.detail}"


@dataclass(frozen=True)
class ValidationReport:
    violations: tuple[Violation, ...]

    @property
    def ok(self) -> bool:
        return not self.violations

    @property
    def codes(self) -> frozenset[str]:
        return frozenset(v.code for v in self.violations)


def stage_runs(plan: SignalPlan) -> list[tuple[str, float]]:
    """The plan's greens per stage as the street shows them: phases of one stage in a row are
    one green (no transition between them), and in a cyclic plan the last phase runs on into the
    first. The stage bounds hold for these, not for each phase: ``B 25, B 25, B 25`` was accepted
    as three 25 s greens of a stage whose maximum is 25 s (stop 54's probe)."""
    runs: list[tuple[str, float]] = []
    for p in plan.phases:
        if runs and runs[-1][0] == p.stage:
            runs[-1] = (p.stage, runs[-1][1] + p.green_s)
        else:
            runs.append((p.stage, p.green_s))
    if plan.cyclic and len(runs) > 1 and runs[0][0] == runs[-1][0]:
        stage, last = runs.pop()
        runs[0] = (stage, runs[0][1] + last)
    return runs


class SafetyValidator:
    """Checks plans (and timelines) of one intersection against its safety constraints."""

    def __init__(self, intersection: Intersection) -> None:
        self.intersection = intersection

    def check(self, plan: SignalPlan) -> ValidationReport:
        """Validate a plan: its phases against stage bounds, its timeline against everything else."""
        intersection = self.intersection
        unknown = [p.stage for p in plan.phases if p.stage not in {s.id for s in intersection.stages}]
        if unknown or not plan.phases:
            return ValidationReport((Violation("unknown_stage", ",".join(unknown) or "-", 0.0, "plan names unknown stages or is empty"),))
        invalid = [p for p in plan.phases if not _finite_green(p.green_s)]
        if invalid:  # the timeline of a NaN or infinite green is meaningless: judge nothing else
            return ValidationReport(
                tuple(
                    Violation("invalid_green", p.stage, 0.0, f"green {p.green_s!r} s is not a finite time in (0, {SANE_MAX_S:g}] s")
                    for p in invalid
                )
            )
        out = []
        for stage_id, green_s in stage_runs(plan):
            st = intersection.stage(stage_id)
            if green_s < st.min_green_s - EPS:
                out.append(Violation("stage_min_green", st.id, 0.0, f"{green_s:g} s < {st.min_green_s:g} s"))
            if green_s > st.max_green_s + EPS:
                out.append(Violation("stage_max_green", st.id, 0.0, f"{green_s:g} s > {st.max_green_s:g} s"))
        return ValidationReport(tuple(out) + self.check_timeline(build_timeline(intersection, plan)).violations)

    def check_timeline(self, tl: SignalTimeline) -> ValidationReport:
        """Validate a concrete timeline (also one not built by :func:`build_timeline`)."""
        out: list[Violation] = []
        out += self._conflicts(tl)
        out += self._intergreens(tl)
        out += self._yielding_clearances(tl)
        for g in self.intersection.groups:
            out += self._sequence_and_greens(tl, g)
            out += self._waits(tl, g)
        if tl.cyclic and not (self.intersection.cycle_min_s - EPS <= tl.duration_s <= self.intersection.cycle_max_s + EPS):
            out.append(
                Violation(
                    "cycle_bounds",
                    self.intersection.id,
                    0.0,
                    f"cycle {tl.duration_s:g} s outside [{self.intersection.cycle_min_s:g}, {self.intersection.cycle_max_s:g}] s",
                )
            )
        return ValidationReport(tuple(out))

    # -- the rules --------------------------------------------------------------------------------
    def _conflicts(self, tl: SignalTimeline) -> list[Violation]:
        out = []
        for pair in sorted(self.intersection.conflicts, key=sorted):
            a, b = sorted(pair)
            for ia in tl.intervals[a]:
                if ia.state is not G:
                    continue
                for ib in tl.intervals[b]:
                    if ib.state is G and min(ia.end_s, ib.end_s) - max(ia.start_s, ib.start_s) > EPS:
                        out.append(
                            Violation(
                                "conflicting_greens",
                                f"{a}/{b}",
                                max(ia.start_s, ib.start_s),
                                f"{a} and {b} conflict but are green together",
                            )
                        )
        return out

    def _intergreens(self, tl: SignalTimeline) -> list[Violation]:
        out = []
        for (a, b), need in sorted(self.intersection.intergreen_s.items()):
            ends = [r.end_s for r in runs(tl, a) if r.state is G and not r.open_end]
            if not ends:
                continue
            for rb in runs(tl, b):
                if rb.state is not G or rb.open_start:
                    continue
                s = rb.start_s
                if tl.cyclic:
                    gaps = [(s - e) % tl.duration_s for e in ends]
                else:
                    gaps = [s - e for e in ends if e <= s + EPS]
                if gaps and min(gaps) < need - EPS:
                    out.append(Violation("intergreen", f"{a}->{b}", s, f"{b} green {min(gaps):g} s after {a}, needs {need:g} s"))
        return out

    def _yielding_clearances(self, tl: SignalTimeline) -> list[Violation]:
        """A group ending where it only yielded keeps its clearance towards every conflicting
        group that starts before it is green again (the next stage, or one after a short
        non-conflicting stage in between)."""
        inter, out = self.intersection, []
        wins = tl.stage_windows
        n = len(wins)
        for k in range(n if tl.cyclic else n - 1):
            cur, here = wins[k], inter.stage(wins[k].stage)
            for e in sorted(here.yielding - inter.stage(wins[(k + 1) % n].stage).groups):
                if inter.groups[e].yielding_clearance_s is None:
                    continue
                before = here.groups
                for step in range(1, n if tl.cyclic else n - k):
                    w = wins[(k + step) % n]
                    gap = w.start_s - cur.end_s + (tl.duration_s if k + step >= n else 0.0)
                    stage = inter.stage(w.stage)
                    if e in stage.groups:
                        break
                    for s in sorted(stage.groups - before):
                        if inter.conflicting(e, s) and gap < (need := inter.clearance_s(cur.stage, e, s)) - EPS:
                            out.append(
                                Violation(
                                    "intergreen",
                                    f"{e}->{s}",
                                    w.start_s,
                                    f"{s} green {gap:g} s after {e} yielded in {cur.stage}, needs {need:g} s",
                                )
                            )
                    before = stage.groups
        return out

    def _sequence_and_greens(self, tl: SignalTimeline, g: str) -> list[Violation]:
        grp = self.intersection.groups[g]
        rs = runs(tl, g)
        out = []
        nxt = {R: RY if grp.red_yellow_s > 0 else G, RY: G, G: Y if grp.yellow_s > 0 else R, Y: R}
        pairs = list(zip(rs, rs[1:] + (rs[:1] if tl.cyclic and len(rs) > 1 else [])))
        for cur, follow in pairs:
            if follow.state is not nxt[cur.state]:
                out.append(Violation("signal_sequence", g, cur.end_s, f"{cur.state.value} followed by {follow.state.value}"))
        for r in rs:
            closed = not (r.open_start or r.open_end)
            if r.state is Y and closed and abs(r.duration_s - grp.yellow_s) > EPS:
                out.append(Violation("yellow_duration", g, r.start_s, f"yellow {r.duration_s:g} s, configured {grp.yellow_s:g} s"))
            if r.state is RY and closed and abs(r.duration_s - grp.red_yellow_s) > EPS:
                out.append(
                    Violation("red_yellow_duration", g, r.start_s, f"red-yellow {r.duration_s:g} s, configured {grp.red_yellow_s:g} s")
                )
            if r.state is G and closed and r.duration_s < grp.min_green_s - EPS:
                out.append(Violation("min_green", g, r.start_s, f"green {r.duration_s:g} s < {grp.min_green_s:g} s"))
        return out

    def _waits(self, tl: SignalTimeline, g: str) -> list[Violation]:
        limit = self.intersection.group_max_wait_s(g)
        rs = runs(tl, g)
        if tl.cyclic and not any(r.state is G for r in rs):
            return [Violation("starved", g, 0.0, f"{g} never green in the cycle")]
        out, wait_start, wait = [], None, 0.0
        seq = rs + (rs if tl.cyclic else [])  # twice round a cycle catches the wrap-around wait
        for r in seq:
            if r.state is G:
                if wait > limit + EPS:
                    out.append(Violation("max_wait", g, wait_start or 0.0, f"waits {wait:g} s > {limit:g} s"))
                wait, wait_start = 0.0, None
            else:
                wait_start = r.start_s if wait_start is None else wait_start
                wait += r.duration_s
        if wait > limit + EPS and not tl.cyclic:
            out.append(Violation("max_wait", g, wait_start or 0.0, f"waits {wait:g} s > {limit:g} s"))
        return out[:1] if tl.cyclic else out


def _finite_green(green_s: object) -> bool:
    return isinstance(green_s, (int, float)) and not isinstance(green_s, bool) and math.isfinite(green_s) and 0 < green_s <= SANE_MAX_S


@dataclass(frozen=True)
class GateOutcome:
    """What the gate let through: the decision to drive, whether it was the proposed one, why not."""

    applied: StageDecision
    accepted: bool
    report: ValidationReport


class SafetyGate:
    """Admits valid decisions; replaces rejected ones by the last safe decision and logs why."""

    def __init__(self, validator: SafetyValidator, fallback: StageDecision) -> None:
        first = validator.check(fallback.plan)
        if not first.ok:
            raise ValueError("the fallback plan itself is unsafe: " + "; ".join(map(str, first.violations)))
        self.validator = validator
        self.last_safe = fallback

    def admit(self, decision: StageDecision) -> GateOutcome:
        report = self.validator.check(decision.plan)
        if report.ok:
            self.last_safe = decision
            return GateOutcome(decision, True, report)
        log.warning(
            "intersection %s: rejected %s decision (%s); falling back to last safe plan from %s: %s",
            decision.intersection_id,
            decision.controller,
            decision.explanation.rule,
            self.last_safe.controller,
            "; ".join(map(str, report.violations)),
        )
        return GateOutcome(self.last_safe, False, report)
