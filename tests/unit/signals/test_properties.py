"""Property tests over random intersections and random detector inputs.

1. Soundness: whatever a controller outputs, if the validator accepts it, an independent,
   sampling-based oracle (written here, sharing no code with the validator) finds no violated
   constraint on the timeline the controller would drive.
2. Completeness on constructed violations: a timeline built with wrong timings (shorter
   intergreen, other yellow / red-yellow, a forced conflicting green, a too-long minimum...) or a
   plan with a too-short stage, a starved group or a cycle out of bounds is always rejected,
   with the matching violation code.
"""

from __future__ import annotations

import dataclasses
import itertools
from typing import Unpack

import numpy as np
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from signals.controllers import DetectorObservation, LaneMeasurement, make_controller
from signals.controllers.priority import PriorityController
from signals.model import Intersection, LaneArea, SignalGroup, SignalGroupTimings, SignalPlan, Stage, StagePhase
from signals.priority import PriorityCall, PriorityRules
from signals.timeline import Interval, SignalState, SignalTimeline, build_timeline
from signals.validator import SafetyValidator

DT = 0.1  # all generated timings are multiples of 0.1 s, so mid-grid samples never hit a boundary
PROPS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def intersections(draw, feasible: bool = False) -> Intersection:
    n = draw(st.integers(2, 6))
    ids = [f"G{i}" for i in range(n)]
    groups = {}
    for gid in ids:
        if draw(st.booleans()):
            groups[gid] = SignalGroup(
                gid,
                "vehicle",
                min_green_s=draw(st.integers(5, 8)),
                yellow_s=draw(st.integers(3, 5)),
                red_yellow_s=draw(st.sampled_from([0, 1])),
            )
        else:
            groups[gid] = SignalGroup(gid, "pedestrian", min_green_s=draw(st.integers(5, 10)), yellow_s=0, red_yellow_s=0)
    # G0/G1 always conflict: a signalised junction has at least two stages
    pairs = [p for p in itertools.combinations(ids, 2) if p == ("G0", "G1") or draw(st.booleans())]
    conflicts = frozenset(frozenset(p) for p in pairs)
    intergreen = {}
    for a, b in pairs:
        intergreen[(a, b)] = float(draw(st.integers(0, 9)))
        intergreen[(b, a)] = float(draw(st.integers(0, 9)))
    # stages: a greedy colouring of the conflict graph, then optional non-conflicting extras
    order = draw(st.permutations(ids))
    classes: list[set[str]] = []
    for g in order:
        for c in classes:
            if all(frozenset((g, o)) not in conflicts for o in c):
                c.add(g)
                break
        else:
            classes.append({g})
    for c in classes:
        for g in ids:
            if g not in c and all(frozenset((g, o)) not in conflicts for o in c) and draw(st.booleans()):
                c.add(g)
    stages = []
    for i, c in enumerate(classes):
        lo = float(draw(st.integers(3, 8)))
        floor = max([lo, *(groups[g].min_green_s for g in c)])
        # some vehicle groups only yield in a stage (permissive turns); some of those need a
        # yielding clearance when that stage ends (turners waiting inside the junction)
        yielding = frozenset(g for g in sorted(c) if groups[g].kind == "vehicle" and draw(st.integers(0, 3)) == 0)
        stages.append(Stage(f"S{i}", frozenset(c), lo, floor + draw(st.integers(5, 40)), yielding=yielding))
    for g in sorted(set().union(*(s.yielding for s in stages))):
        if draw(st.booleans()):
            groups[g] = dataclasses.replace(groups[g], yielding_clearance_s=float(draw(st.integers(0, 15))))
    floors = {s.id: max([s.min_green_s, *(groups[g].min_green_s for g in s.groups)]) for s in stages}
    plan = SignalPlan(tuple(StagePhase(s.id, min(s.max_green_s, floors[s.id] + draw(st.integers(0, 15)))) for s in stages))
    lanes = [LaneArea(f"out{i}") for i in range(2)]
    lanes += [
        LaneArea(
            f"in_{g}",
            g,
            tuple(draw(st.lists(st.sampled_from(["out0", "out1"]), max_size=2, unique=True))),
            float(draw(st.sampled_from([1500, 1800, 2000]))),
        )
        for g in ids
        if groups[g].kind == "vehicle"
    ]
    base = Intersection("X", groups, tuple(stages), conflicts, intergreen, plan, tuple(lanes))
    cycle = build_timeline(base, plan).duration_s
    if feasible:
        cmin, cmax = min(cycle, 30.0), max(cycle, 120.0)
        wait = cmax
    else:
        cmin = float(draw(st.integers(10, 40)))
        cmax = float(draw(st.integers(60, 150)))
        wait = float(draw(st.integers(40, 150)))
    return dataclasses.replace(base, cycle_min_s=cmin, cycle_max_s=max(cmin, cmax), max_wait_s=wait)


readings = st.tuples(st.floats(0, 12), st.one_of(st.floats(0, 40), st.just(float("nan")), st.just(-1.0)))


def _observations(x: Intersection, seq: list[list[tuple[float, float]]], step: float) -> list[DetectorObservation]:
    out = []
    for k, row in enumerate(seq):
        lanes = {la.id: LaneMeasurement(count=c, queue_veh=q) for la, (c, q) in zip(x.lanes, itertools.cycle(row))}
        out.append(DetectorObservation(x.id, k * step, step, lanes))
    return out


# -- the oracle: brute-force sampling of the timeline ------------------------------------------
def oracle_violations(x: Intersection, plan: SignalPlan, tl: SignalTimeline) -> list[str]:
    """Everything wrong with a timeline, found by sampling states every DT seconds."""
    reps = 3 if tl.cyclic else 1
    n = int(round(tl.duration_s / DT)) * reps
    t = (np.arange(n) + 0.5) * DT
    tt = t % tl.duration_s if tl.cyclic else t
    codes = {SignalState.RED: 0, SignalState.RED_YELLOW: 1, SignalState.GREEN: 2, SignalState.YELLOW: 3}
    states = {}
    for g, ivs in tl.intervals.items():
        starts = np.array([iv.start_s for iv in ivs])
        vals = np.array([codes[iv.state] for iv in ivs])
        states[g] = vals[np.searchsorted(starts, tt, side="right") - 1]
    bad: list[str] = []
    # the timeline realises the plan: each stage's groups are green throughout its window
    offset = 0.0
    for w, ph in zip(tl.stage_windows, plan.phases):
        if abs((w.end_s - w.start_s) - ph.green_s) > 1e-6 or w.start_s < offset - 1e-6:
            bad.append("plan_mismatch")
        offset = w.end_s
        inside = (tt > w.start_s) & (tt < w.end_s)
        for g in x.stage(ph.stage).groups:
            if np.any(states[g][inside] != 2):
                bad.append("plan_mismatch")
    for pair in x.conflicts:
        a, b = sorted(pair)
        if np.any((states[a] == 2) & (states[b] == 2)):
            bad.append("conflicting_greens")
    for g, s in states.items():
        grp = x.groups[g]
        change = np.flatnonzero(np.diff(s)) + 1
        bounds = np.concatenate(([0], change, [n]))
        seg = [(int(s[i]), (j - i) * DT, i > 0, j < n) for i, j in zip(bounds[:-1], bounds[1:])]
        for (cur, dur, closed_l, closed_r), nxt in zip(seg, seg[1:] + [None]):
            closed = closed_l and closed_r
            if nxt is not None:
                allowed = {0: 1 if grp.red_yellow_s > 0 else 2, 1: 2, 2: 3 if grp.yellow_s > 0 else 0, 3: 0}[cur]
                if nxt[0] != allowed:
                    bad.append("signal_sequence")
            if closed and cur == 3 and abs(dur - grp.yellow_s) > DT / 2:
                bad.append("yellow_duration")
            if closed and cur == 1 and abs(dur - grp.red_yellow_s) > DT / 2:
                bad.append("red_yellow_duration")
            if closed and cur == 2 and dur < grp.min_green_s - DT / 2:
                bad.append("min_green")
        green = s == 2
        if not green.any():
            if tl.cyclic or n * DT > x.group_max_wait_s(g) + DT / 2:
                bad.append("max_wait")
            continue
        idx = np.flatnonzero(green)
        gaps = np.diff(idx) - 1
        waits = list(gaps[gaps > 0] * DT)
        if not tl.cyclic:
            waits += [idx[0] * DT, (n - 1 - idx[-1]) * DT]
        if waits and max(waits) > x.group_max_wait_s(g) + DT / 2:
            bad.append("max_wait")
    for (a, b), need in x.intergreen_s.items():
        ga, gb = states[a] == 2, states[b] == 2
        starts = np.flatnonzero(gb[1:] & ~gb[:-1]) + 1
        for k in starts:
            before = np.flatnonzero(ga[:k])
            if before.size and (k - before[-1] - 1) * DT < need - DT / 2:
                bad.append("intergreen")
    # a group ending where it only yielded: its clearance towards every conflicting group that
    # starts before it is green again (sampled: the last green sample against each start)
    wins = list(tl.stage_windows)
    for i, w0 in enumerate(wins[: len(wins) if tl.cyclic else len(wins) - 1]):
        for g in x.stage(w0.stage).yielding:
            own = x.groups[g].yielding_clearance_s
            if own is None or g in x.stage(wins[(i + 1) % len(wins)].stage).groups:
                continue
            end = int(round(w0.end_s / DT))  # first sample after its green
            for e in (e for e in x.groups if x.conflicting(g, e)):
                ge = states[e] == 2
                for j in range(end, min(n, end + int(own / DT) + 1)):
                    if states[g][j] == 2:
                        break
                    if ge[j] and (j == 0 or not ge[j - 1]) and (j - end) * DT < own - DT / 2:
                        bad.append("intergreen")
    if tl.cyclic and not (x.cycle_min_s - 1e-6 <= tl.duration_s <= x.cycle_max_s + 1e-6):
        bad.append("cycle_bounds")
    for ph in plan.phases:
        stg = x.stage(ph.stage)
        if not stg.min_green_s - 1e-6 <= ph.green_s <= stg.max_green_s + 1e-6:
            bad.append("stage_green_bounds")
    return bad


@PROPS
@given(
    x=intersections(),
    name=st.sampled_from(["fixed", "webster", "maxpressure", "leitstand"]),
    seq=st.lists(st.lists(readings, min_size=1, max_size=6), min_size=20, max_size=120),
)
def test_accepted_controller_output_violates_no_constraint(x: Intersection, name: str, seq) -> None:
    validator = SafetyValidator(x)
    ctl = make_controller(name, x)
    seen = set()
    for k, obs in enumerate(_observations(x, seq, 5.0)):
        d = ctl.decide(obs)
        if d.plan in seen:
            continue
        seen.add(d.plan)
        report = validator.check(d.plan)
        if report.ok and (k % 4 == 0 or k == len(seq) - 1):
            assert oracle_violations(x, d.plan, build_timeline(x, d.plan)) == []
        assert d.explanation.controller == name and d.explanation.rule


@PROPS
@given(x=intersections(feasible=True), seq=st.lists(st.lists(readings, min_size=1, max_size=6), min_size=30, max_size=150))
def test_maxpressure_on_feasible_intersections_is_always_accepted(x: Intersection, seq) -> None:
    """With the wait limit at the cycle bound and one stage of reserve, the guard suffices."""
    validator = SafetyValidator(x)
    ctl = make_controller("maxpressure", x)
    for obs in _observations(x, seq, 5.0):
        d = ctl.decide(obs)
        assert validator.check(d.plan).ok, validator.check(d.plan).violations


@PROPS
@given(
    x=intersections(feasible=True),
    seq=st.lists(st.lists(readings, min_size=1, max_size=6), min_size=30, max_size=150),
    data=st.data(),
)
def test_leitstand_with_exits_into_red_and_fed_approaches_is_always_accepted(x: Intersection, seq, data) -> None:
    """Frames every 5 s (leitstand decides every second when it can) with exits marked as leading
    into a neighbour's red and approaches as still fed by one (1.8's hold): every plan passes the
    validator. Before holds committed the frames' interval, a hold by 1 s ran on to the next
    frame 5 s later and overran maximum greens."""
    validator = SafetyValidator(x)
    ctl = make_controller("leitstand", x)
    ids = sorted(la.id for la in x.lanes)
    for obs in _observations(x, seq, 5.0):
        red = frozenset(data.draw(st.lists(st.sampled_from(ids), max_size=4)))
        fed = frozenset(data.draw(st.lists(st.sampled_from(ids), max_size=4)))
        d = ctl.decide(dataclasses.replace(obs, exits_into_red=red, fed_now=fed))
        assert validator.check(d.plan).ok, validator.check(d.plan).violations


@PROPS
@given(
    x=intersections(feasible=True),
    name=st.sampled_from(["leitstand", "maxpressure"]),
    seq=st.lists(st.lists(readings, min_size=1, max_size=6), min_size=30, max_size=150),
    data=st.data(),
)
def test_adaptive_control_with_bus_calls_is_always_accepted(x: Intersection, name: str, seq, data) -> None:
    """Late buses calling any stage, with any ETA and weight (transit priority for the adaptive
    controllers, ``signals.priority.BusCall``): every plan passes the validator."""
    validator = SafetyValidator(x)
    ctl = PriorityController(make_controller(name, x), x)
    stages = [s.id for s in x.stages]
    for k, obs in enumerate(_observations(x, seq, 5.0)):
        if data.draw(st.booleans()):
            stage, eta, weight = data.draw(st.sampled_from(stages)), data.draw(st.floats(0, 300)), data.draw(st.floats(0, 100))
            ctl.rules = PriorityRules(bus_weight_veh=weight)
            ctl.request(PriorityCall(f"r{k}", f"bus-{k % 3}", stage, obs.time_s, eta, 120.0))
        d = ctl.decide(obs)
        assert validator.check(d.plan).ok, validator.check(d.plan).violations


#: detector systems report every second up to every 15 minutes (the records' bound)
FRAME_INTERVALS = [1.0, 5.0, 20.0, 45.0, 60.0, 120.0, 300.0, 900.0]


@PROPS
@given(
    x=intersections(feasible=True),
    seq=st.lists(st.tuples(st.lists(readings, min_size=1, max_size=6), st.sampled_from(FRAME_INTERVALS)), min_size=30, max_size=120),
)
def test_leitstand_on_frames_of_changing_interval_is_always_accepted(x: Intersection, seq) -> None:
    """Frames whose interval changes (1 s to 5 min, in any order): leitstand moves between
    acyclic control and the shipped program (1.7) and back, and every plan passes the validator,
    the handover's transitions included."""
    validator = SafetyValidator(x)
    ctl = make_controller("leitstand", x)
    t = 0.0
    for row, interval in seq:
        t += interval  # each frame covers the interval before it
        lanes = {la.id: LaneMeasurement(count=c, queue_veh=q) for la, (c, q) in zip(x.lanes, itertools.cycle(row))}
        d = ctl.decide(DetectorObservation(x.id, t, interval, lanes))
        assert validator.check(d.plan).ok, (d.explanation.rule, validator.check(d.plan).violations)


@PROPS
@given(x=intersections(feasible=True))
def test_the_oracle_agrees_that_feasible_fixed_plans_are_safe(x: Intersection) -> None:
    report = SafetyValidator(x).check(x.fixed_plan)
    assert report.ok, report.violations
    assert oracle_violations(x, x.fixed_plan, build_timeline(x, x.fixed_plan)) == []


# -- constructed violations ----------------------------------------------------------------------
def _regroup(x: Intersection, gid: str, **changes: Unpack[SignalGroupTimings]) -> Intersection:
    groups = dict(x.groups)
    groups[gid] = dataclasses.replace(groups[gid], **changes)
    return dataclasses.replace(x, groups=groups)


def _sometimes_red(x: Intersection) -> list[str]:
    return sorted(g for g in x.groups if any(g not in s.groups for s in x.stages))


@PROPS
@given(x=intersections(feasible=True), data=st.data())
def test_timelines_built_with_wrong_timings_are_rejected(x: Intersection, data) -> None:
    validator = SafetyValidator(x)
    plan = x.fixed_plan
    kinds = ["min_green", "conflict"]
    red = _sometimes_red(x)
    vehicles = [g for g in red if x.groups[g].yellow_s > 0]
    if vehicles:
        kinds += ["yellow", "no_yellow"]
    if [g for g in red if x.groups[g].red_yellow_s > 0]:
        kinds += ["red_yellow"]
    tl = build_timeline(x, plan)
    bound = [(a, b) for (a, b) in x.intergreen_s if a in red and b in red]
    if bound:
        kinds.append("intergreen")
    kind = data.draw(st.sampled_from(kinds))
    if kind == "min_green":
        # a group green through the whole cycle never ends a run: the oracle has no run to measure
        # and the validator (conservatively) measures the cycle, so only groups that turn red count
        assume(red)
        g = data.draw(st.sampled_from(red))
        longest = max(iv.duration_s for iv in tl.intervals[g] if iv.state is SignalState.GREEN)
        strict = _regroup(x, g, min_green_s=longest + tl.duration_s + 1)  # longer than any run, wrapped or not
        assert "min_green" in SafetyValidator(strict).check_timeline(tl).codes
        assert "min_green" in oracle_violations(strict, plan, tl)
        return
    if kind == "conflict":
        assume(x.conflicts)
        a, b = sorted(data.draw(st.sampled_from(sorted(x.conflicts, key=sorted))))
        forged = dataclasses.replace(tl, intervals={**tl.intervals, b: (Interval(0.0, tl.duration_s, SignalState.GREEN),)})
        assert "conflicting_greens" in validator.check_timeline(forged).codes
        assert "conflicting_greens" in oracle_violations(x, plan, forged)
        return
    if kind == "intergreen":
        a, b = data.draw(st.sampled_from(bound))
        # build with the real timings, then demand an intergreen longer than any gap in the cycle
        strict = dataclasses.replace(x, intergreen_s={**x.intergreen_s, (a, b): tl.duration_s + 1})
        assert "intergreen" in SafetyValidator(strict).check_timeline(tl).codes
        assert "intergreen" in oracle_violations(strict, plan, tl)
        return
    if kind in ("yellow", "no_yellow"):
        g = data.draw(st.sampled_from(vehicles))
        y = x.groups[g].yellow_s
        built = _regroup(x, g, yellow_s=0.0 if kind == "no_yellow" else y + data.draw(st.sampled_from([-1.0, 1.0])))
        code = "signal_sequence" if kind == "no_yellow" else "yellow_duration"
        forged = build_timeline(built, plan)
        assert code in validator.check_timeline(forged).codes
        assert code in oracle_violations(x, plan, forged)  # the oracle is no blind referee
        return
    g = data.draw(st.sampled_from([g for g in red if x.groups[g].red_yellow_s > 0]))
    built = _regroup(x, g, red_yellow_s=2.0)
    forged = build_timeline(built, plan)
    assert "red_yellow_duration" in validator.check_timeline(forged).codes
    assert "red_yellow_duration" in oracle_violations(x, plan, forged)


@PROPS
@given(x=intersections(feasible=True), data=st.data())
def test_plans_that_break_bounds_are_rejected(x: Intersection, data) -> None:
    validator = SafetyValidator(x)
    phases = list(x.fixed_plan.phases)
    i = data.draw(st.integers(0, len(phases) - 1))
    kind = data.draw(st.sampled_from(["short", "long", "cycle_max", "cycle_min", "starve", "wait"]))
    stg = x.stage(phases[i].stage)
    if kind == "short":
        phases[i] = StagePhase(stg.id, stg.min_green_s - data.draw(st.sampled_from([0.1, 1.0, 2.5])))
        assert "stage_min_green" in validator.check(SignalPlan(tuple(phases))).codes
    elif kind == "long":
        phases[i] = StagePhase(stg.id, stg.max_green_s + data.draw(st.sampled_from([0.1, 5.0])))
        assert "stage_max_green" in validator.check(SignalPlan(tuple(phases))).codes
    elif kind == "cycle_max":
        c = build_timeline(x, x.fixed_plan).duration_s
        tight = dataclasses.replace(x, cycle_min_s=min(x.cycle_min_s, c - 1), cycle_max_s=c - 0.5)
        assert "cycle_bounds" in SafetyValidator(tight).check(x.fixed_plan).codes
    elif kind == "cycle_min":
        c = build_timeline(x, x.fixed_plan).duration_s
        tight = dataclasses.replace(x, cycle_min_s=c + 0.5, cycle_max_s=max(x.cycle_max_s, c + 1))
        assert "cycle_bounds" in SafetyValidator(tight).check(x.fixed_plan).codes
    elif kind == "starve":
        only_here = stg.groups - frozenset().union(*(s.groups for s in x.stages if s.id != stg.id))
        assume(only_here and len(phases) > 1)
        rest = tuple(p for p in phases if p.stage != stg.id)
        assert "starved" in validator.check(SignalPlan(rest)).codes
    else:
        tl = build_timeline(x, x.fixed_plan)
        red = _sometimes_red(x)
        assume(red)
        g = data.draw(st.sampled_from(red))
        longest = max(iv.duration_s for iv in tl.intervals[g] if iv.state is not SignalState.GREEN)
        strict = _regroup(x, g, max_wait_s=longest - 0.5)
        assert "max_wait" in SafetyValidator(strict).check(x.fixed_plan).codes
