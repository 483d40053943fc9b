"""Concrete signal-state timeline built from a plan: what each signal group shows, when.

The validator checks this timeline rather than the plan, so conflicting greens, intergreens,
yellow and red-yellow durations, minimum greens, cycle length and maximum waits are all judged
on the very states a controller would drive. The construction is deterministic: between two
stages the ending groups show yellow then red, the starting groups red then red-yellow, and the
next stage's green begins after :meth:`Intersection.transition_s` (intergreens respected).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from types import MappingProxyType

from signals.model import Intersection, SignalPlan

EPS = 1e-6


class SignalState(str, Enum):
    RED = "red"
    RED_YELLOW = "red_yellow"
    GREEN = "green"
    YELLOW = "yellow"


@dataclass(frozen=True)
class Interval:
    """``state`` shown on [start_s, end_s)."""

    start_s: float
    end_s: float
    state: SignalState

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s


@dataclass(frozen=True)
class StageWindow:
    """Where one plan phase's green lies on the timeline."""

    stage: str
    start_s: float
    end_s: float


@dataclass(frozen=True)
class SignalTimeline:
    """Per signal group, contiguous intervals covering [0, duration_s).

    A cyclic timeline is one cycle (time 0 = start of the first stage's green); an acyclic one is
    a window whose first and last intervals are open (their true start / end lie outside).
    """

    duration_s: float
    cyclic: bool
    intervals: Mapping[str, tuple[Interval, ...]]
    stage_windows: tuple[StageWindow, ...]

    def state_at(self, group: str, t: float) -> SignalState:
        if self.cyclic:
            t = t % self.duration_s
        for iv in self.intervals[group]:
            if iv.start_s <= t < iv.end_s:
                return iv.state
        return self.intervals[group][-1].state

    def window_index_at(self, t: float) -> int | None:
        """The stage window wanted ``t`` seconds after the start: the first whose green ends after
        ``t`` (inside it, or in the transition towards it); None past the last one's green (a
        cyclic timeline's transition back to its first stage, or an acyclic one run out)."""
        return next((k for k, w in enumerate(self.stage_windows) if t < w.end_s - EPS), None)

    def green_at(self, t: float) -> frozenset[str]:
        """The groups green ``t`` seconds after the start. An acyclic window (a controller's
        committed plan, a neighbour's driven one) holds its first and last states outside it, as
        the signal does until the next plan: so ``t`` is clamped into it; a cyclic one repeats."""
        if not self.cyclic:
            t = min(max(0.0, t), max(0.0, self.duration_s - EPS))
        return frozenset(g for g in self.intervals if self.state_at(g, t) is SignalState.GREEN)


def transition_times(intersection: Intersection, plan: SignalPlan) -> list[float]:
    """Duration of each stage change in the plan (the last one wraps round in a cyclic plan).

    Starts from :meth:`Intersection.transition_s` (the neighbouring stages) and lengthens a change
    wherever a group that cleared *earlier* - two or more stages back, or in the previous cycle -
    still needs its intergreen towards a group about to start (RiLSA: the intergreen holds between
    every clearing and entering conflicting pair, not only between neighbouring stages); a group
    that ended where it only yielded needs its yielding clearance (``Intersection.clearance_s``).
    Lengthening only ever widens later gaps, so the iteration settles in a few rounds.
    """
    phases = plan.phases
    n = len(phases)
    m = n if plan.cyclic else n - 1
    groups = [intersection.stage(p.stage).groups for p in phases]
    trans = [intersection.transition_s(phases[i].stage, phases[(i + 1) % n].stage) for i in range(m)]
    for _ in range(2 * n + 4):
        ends, t = [], 0.0
        for i in range(n):
            t += phases[i].green_s
            ends.append(t)
            if i < m:
                t += trans[i]
        cycle = t
        # green ends per group: the end of a phase it holds when the next phase does not hold it,
        # with the stage it ended in (a group ending where it only yielded keeps its clearance)
        green_ends: dict[str, list[tuple[float, str]]] = {g: [] for g in intersection.groups}
        for i in range(m):
            for g in groups[i] - groups[(i + 1) % n]:
                green_ends[g].append((ends[i], phases[i].stage))
        changed = False
        for j in range(m):
            nxt = (j + 1) % n
            need = trans[j]
            for g in groups[nxt] - groups[j]:
                for c in (c for c in intersection.groups if (c, g) in intersection.intergreen_s):
                    cand = [(e, st) for e, st in green_ends[c] if e <= ends[j] + EPS]
                    if plan.cyclic:
                        cand += [(e - cycle, st) for e, st in green_ends[c]]
                    if cand:  # its latest green end counts (the turners cleared in any later green)
                        e, st = max(cand)
                        need = max(need, e + intersection.clearance_s(st, c, g) - ends[j])
            if need > trans[j] + EPS:
                trans[j], changed = need, True
        if not changed:
            break
    return trans


def build_timeline(intersection: Intersection, plan: SignalPlan) -> SignalTimeline:
    """Lay the plan out as signal states (deterministic; see the module docstring)."""
    phases = list(plan.phases)
    if not phases:
        raise ValueError("empty plan")
    n = len(phases)
    segs: dict[str, list[Interval]] = {g: [] for g in intersection.groups}
    windows: list[StageWindow] = []
    transitions = transition_times(intersection, plan)
    t = 0.0
    for i, ph in enumerate(phases):
        here = intersection.stage(ph.stage).groups
        start, end = t, t + ph.green_s
        windows.append(StageWindow(ph.stage, start, end))
        for g in segs:
            segs[g].append(Interval(start, end, SignalState.GREEN if g in here else SignalState.RED))
        t = end
        if i == n - 1 and not plan.cyclic:
            break
        nxt = phases[(i + 1) % n].stage
        there = intersection.stage(nxt).groups
        trans = transitions[i]
        if trans <= 0:
            continue
        t_next = t + trans
        for g in segs:
            grp = intersection.groups[g]
            if g in here and g in there:
                segs[g].append(Interval(t, t_next, SignalState.GREEN))
            elif g in here:
                y_end = t + grp.yellow_s
                segs[g].append(Interval(t, y_end, SignalState.YELLOW))
                segs[g].append(Interval(y_end, t_next, SignalState.RED))
            elif g in there:
                ry_start = t_next - grp.red_yellow_s
                segs[g].append(Interval(t, ry_start, SignalState.RED))
                segs[g].append(Interval(ry_start, t_next, SignalState.RED_YELLOW))
            else:
                segs[g].append(Interval(t, t_next, SignalState.RED))
        t = t_next
    return SignalTimeline(
        duration_s=t,
        cyclic=plan.cyclic,
        intervals=MappingProxyType({g: tuple(_merge(s)) for g, s in segs.items()}),
        stage_windows=tuple(windows),
    )


#: plans whose stage windows a ``StageLayout`` keeps (the fixed program and the latest decisions)
LAYOUTS = 8

Windows = tuple[tuple[tuple[str, float, float], ...], float]


@dataclass
class StageLayout:
    """Where each stage's green lies in a plan, laid out with the changes between neighbouring
    stages (``Intersection.transition_s``), and which stage a plan shows when.

    ``build_timeline`` also lengthens a change for a group that cleared two stages back, which
    moves a window by a second or two at most, at a fraction of the cost: it ran at every frame
    and report of the follow watch (390 us a frame for leitstand's plans on the example junction;
    9-25 us with these windows, every controller, and the same stage as the adapter's at every
    time checked), and leitstand's acyclic plans change every second, so a timeline per plan cost
    the control loop about 120 us a frame (stop 49)."""

    intersection: Intersection
    _windows: dict[SignalPlan, Windows] = field(default_factory=dict)
    _transition: dict[tuple[str, str], float] = field(default_factory=dict)

    def windows(self, plan: SignalPlan) -> Windows:
        """The plan's stage windows (stage, green start, green end; seconds from its origin) and
        its length (a cyclic plan's cycle includes the change back to its first stage)."""
        got = self._windows.get(plan)
        if got is not None:
            return got
        phases, out, t = plan.phases, [], 0.0
        for i, ph in enumerate(phases):
            out.append((ph.stage, t, t + ph.green_s))
            t += ph.green_s
            if i + 1 < len(phases) or plan.cyclic:
                t += self.change(ph.stage, phases[(i + 1) % len(phases)].stage)
        if len(self._windows) >= LAYOUTS:
            del self._windows[next(iter(self._windows))]
        got = self._windows[plan] = (tuple(out), t)
        return got

    def change(self, a: str, b: str) -> float:
        """Seconds of the change from stage ``a`` to stage ``b``."""
        key = (a, b)
        if key not in self._transition:
            self._transition[key] = self.intersection.transition_s(a, b)
        return self._transition[key]

    def shown(self, plan: SignalPlan, origin_s: float, t: float) -> tuple[str, float] | None:
        """The stage whose green the plan, started at ``origin_s``, shows at epoch second ``t``,
        and when that green began (epoch seconds); None during a change between stages. An
        acyclic window holds its first and last stage outside it (as ``SignalTimeline.green_at``),
        so a time before it gives the first stage and one after it the last."""
        windows, length = self.windows(plan)
        tau, base = t - origin_s, origin_s
        if plan.cyclic and length > 0:
            cycles = tau // length
            tau, base = tau - cycles * length, base + cycles * length
        elif tau < windows[0][1]:
            return windows[0][0], base + windows[0][1]
        window = next((w for w in windows if tau < w[2] - EPS), None)
        if window is None:
            if plan.cyclic:
                return None  # the change back to the first stage
            window = windows[-1]
        stage, start, _end = window
        return (stage, base + start) if start <= tau + EPS else None


def _merge(intervals: list[Interval]) -> list[Interval]:
    out: list[Interval] = []
    for iv in intervals:
        if iv.duration_s <= EPS:
            continue
        if out and out[-1].state == iv.state and abs(out[-1].end_s - iv.start_s) <= EPS:
            out[-1] = Interval(out[-1].start_s, iv.end_s, iv.state)
        else:
            out.append(iv)
    return out


@dataclass(frozen=True)
class Run:
    """A maximal stretch of one state; ``end_s`` may exceed the cycle when it wraps around.

    ``open_start`` / ``open_end``: the true boundary lies outside an acyclic window.
    """

    start_s: float
    end_s: float
    state: SignalState
    open_start: bool = False
    open_end: bool = False

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s


def runs(timeline: SignalTimeline, group: str) -> list[Run]:
    """Maximal same-state runs of one group; in a cyclic timeline the wrap-around run is merged."""
    ivs = list(timeline.intervals[group])
    if not ivs:
        return []
    if timeline.cyclic:
        if len(ivs) == 1:
            iv = ivs[0]
            return [Run(iv.start_s, iv.start_s + timeline.duration_s, iv.state)]
        if ivs[0].state == ivs[-1].state:
            last = ivs.pop()
            first = ivs.pop(0)
            ivs.append(Interval(last.start_s, timeline.duration_s + first.end_s, last.state))
        return [Run(iv.start_s, iv.end_s, iv.state) for iv in ivs]
    out = [Run(iv.start_s, iv.end_s, iv.state) for iv in ivs]
    out[0] = Run(out[0].start_s, out[0].end_s, out[0].state, open_start=True, open_end=out[0].open_end)
    out[-1] = Run(out[-1].start_s, out[-1].end_s, out[-1].state, open_start=out[-1].open_start, open_end=True)
    return out
