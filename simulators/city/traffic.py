"""Signalised intersections on a street grid: detector frames, incidents and detector faults.

The grid has one main east-west road (the middle row) and one main north-south road (the
middle column); everything else is a side road. Each intersection has four approaches
(N, E, S, W: where the traffic comes *from*) with two lanes, and one set-back loop per lane
(``K3-N1``: intersection K3, approach N, lane 1) about 40 m before the stop line.

Per approach and frame a point-queue model runs: arrivals (Poisson, from the demand profile,
events, rain and what the upstream intersection let through one frame earlier) meet the
approach's capacity (saturation flow times its green share); what is not served queues, and a
queue longer than the link spills back (drivers divert). The loops then see what physics says
they would: count = served vehicles, speed falling with volume/capacity and queue,
occupancy = flow x effective vehicle length / speed plus the time the queue stands on the loop.

A blocked lane (incident) stops its lane: its loop sits in the standing queue (occupancy high,
hardly any count, crawling speed); the other lane takes the merged traffic at reduced
capacity with drivers slowing past the obstacle; the downstream intersection receives fewer
vehicles because fewer get through.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING

from streams.records import DetectorReading, IntersectionFrame, encode

from .calendar import RainPeriod, VenueEvent, demand_profile, rain_at
from .types import CityConfig, Emission, GroundTruth, poisson, rng_for

if TYPE_CHECKING:
    from .signal_plans import ClosedLoop, DelayLedger, Shares

SATURATION_VEH_H = 1800.0  # per lane
CYCLE_S = 90.0
EFFECTIVE_LENGTH_M = 6.5  # vehicle (4.5 m average with some vans) + loop length
SETBACK_VEH = 6.0  # the loop lies ~40 m before the stop line: queues shorter than this miss it
APPROACHES = ("N", "E", "S", "W")
#: approach -> (row step, column step) to the upstream intersection (where its traffic comes from)
UPSTREAM = {"N": (-1, 0), "S": (1, 0), "W": (0, -1), "E": (0, 1)}


@dataclass(frozen=True)
class Approach:
    name: str
    main: bool
    peak_veh_h: float  # both lanes, at demand factor 1.0
    green_share: float
    free_speed_kmh: float
    max_queue_veh: float  # both lanes: the link length
    upstream: tuple[str, str] | None  # (intersection id, approach) feeding this one
    through_share: float  # share of this approach's demand that came through the upstream one
    lane_split: float  # share of lane 1 (kerb lane)

    def capacity_veh_h(self) -> float:
        return 2 * SATURATION_VEH_H * self.green_share


@dataclass(frozen=True)
class GridJunction:
    """A junction of the synthetic city's street grid: where it sits and the approaches that feed it.

    Not the signal model (``signals.model.Intersection``): the city only needs what its traffic
    generator draws from, and it keeps the ``intersection_id`` its frames are keyed by.
    """

    intersection_id: str
    row: int
    col: int
    approaches: tuple[Approach, ...]

    def detector_ids(self) -> list[str]:
        return [f"{self.intersection_id}-{a.name}{lane}" for a in self.approaches for lane in (1, 2)]


def grid_shape(n: int) -> tuple[int, int]:
    cols = math.ceil(math.sqrt(n))
    return math.ceil(n / cols), cols


def build_grid(config: CityConfig) -> list[GridJunction]:
    rows, cols = grid_shape(config.intersections)
    main_row, main_col = rows // 2, cols // 2
    rng = rng_for(config, "grid")
    ids = {divmod(i, cols): f"K{i + 1}" for i in range(config.intersections)}
    out = []
    for (r, c), iid in sorted(ids.items(), key=lambda kv: int(kv[1][1:])):
        aps = []
        crossing_main = (r == main_row) + (c == main_col)
        for name in APPROACHES:
            main = (r == main_row) if name in ("E", "W") else (c == main_col)
            if crossing_main == 2 or crossing_main == 0:
                green = 0.5 if crossing_main == 2 else 0.45
            else:
                green = 0.58 if main else 0.32
            per_lane = rng.uniform(560, 720) if main else rng.uniform(180, 340)
            dr, dc = UPSTREAM[name]
            up_id = ids.get((r + dr, c + dc))
            aps.append(
                Approach(
                    name=name,
                    main=main,
                    peak_veh_h=2 * per_lane,
                    green_share=green,
                    free_speed_kmh=50.0 if main else 40.0,
                    max_queue_veh=2 * (260 if main else 150) / 7.0,
                    upstream=(up_id, name) if up_id else None,
                    through_share=0.55 if main else 0.3,
                    lane_split=0.45 if main else 0.5,
                )
            )
        out.append(GridJunction(iid, r, c, tuple(aps)))
    return out


def venue_sites(grid: list[GridJunction]) -> dict[str, tuple[str, ...]]:
    """The stadium sits at the grid's far corner, the arena at the other end of the first row."""
    pos = {(junction.row, junction.col): junction.intersection_id for junction in grid}

    def around(junction: GridJunction) -> tuple[str, ...]:
        near = [
            pos[(junction.row + dr, junction.col + dc)]
            for dr, dc in ((-1, 0), (0, -1), (0, 1), (1, 0))
            if (junction.row + dr, junction.col + dc) in pos
        ]
        return (junction.intersection_id, *near)

    stadium = grid[-1]
    arena = max((junction for junction in grid if junction.row == 0), key=lambda junction: junction.col)
    return {"stadium": around(stadium), "arena": around(arena)}


# --- injections ---------------------------------------------------------------------------


@dataclass(frozen=True)
class LaneBlock:
    intersection_id: str
    approach: str
    lane: int
    start: float
    end: float


@dataclass(frozen=True)
class DetectorFault:
    intersection_id: str
    detector_id: str
    mode: str  # "stuck" | "silent" | "noisy"
    start: float
    end: float


def _on_frame(t: float, t0: float, dt: float) -> float:
    return t0 + math.ceil((t - t0) / dt) * dt


def plan_injections(config: CityConfig, grid: list[GridJunction], t0: float, t1: float) -> tuple[list[LaneBlock], list[DetectorFault]]:
    """Blocked lanes (more likely when and where traffic is heavy) and detector faults.

    Injections at one intersection never overlap (nor within 30 min of each other), so each
    truth record explains its own symptoms.
    """
    rng = rng_for(config, "traffic-plan")
    dt = config.frame_interval_s
    lo = t0 + config.warmup_s
    busy: dict[str, list[tuple[float, float]]] = {}
    by_id = {junction.intersection_id: junction for junction in grid}

    def free(iid: str, s: float, e: float) -> bool:
        return all(e + 1800 <= a or s >= b + 1800 for a, b in busy.get(iid, []))

    blocks: list[LaneBlock] = []
    days = max(0.0, t1 - lo) / 86_400
    for _ in range(poisson(rng, config.incident_rate_per_day * days)):
        for _try in range(200):
            length = rng.uniform(15, 45) * 60
            if t1 - length - 300 <= lo:
                break
            s = _on_frame(rng.uniform(lo, t1 - length - 300), t0, dt)
            e = s + math.ceil(length / dt) * dt
            exposure = demand_profile(datetime.fromtimestamp(s, timezone.utc), config)
            junction = by_id[rng.choice(sorted(by_id))]
            ap = rng.choices(junction.approaches, weights=[a.peak_veh_h for a in junction.approaches])[0]
            if rng.random() < exposure and free(junction.intersection_id, s, e):
                blocks.append(LaneBlock(junction.intersection_id, ap.name, rng.choice((1, 2)), s, e))
                busy.setdefault(junction.intersection_id, []).append((s, e))
                break
    faults: list[DetectorFault] = []
    lengths = {"stuck": (10, 60), "silent": (15, 60), "noisy": (30, 120)}
    for _ in range(poisson(rng, config.detector_fault_rate_per_day * days)):
        mode = rng.choices(("stuck", "silent", "noisy"), weights=(0.4, 0.35, 0.25))[0]
        for _try in range(200):
            length = rng.uniform(*lengths[mode]) * 60
            if t1 - length - 300 <= lo:
                break
            s = _on_frame(rng.uniform(lo, t1 - length - 300), t0, dt)
            e = s + math.ceil(length / dt) * dt
            junction = by_id[rng.choice(sorted(by_id))]
            det = rng.choice(junction.detector_ids())
            if free(junction.intersection_id, s, e):
                faults.append(DetectorFault(junction.intersection_id, det, mode, s, e))
                busy.setdefault(junction.intersection_id, []).append((s, e))
                break
    return sorted(blocks, key=lambda b: (b.start, b.intersection_id)), sorted(faults, key=lambda f: (f.start, f.detector_id))


def injection_truth(grid: list[GridJunction], blocks: list[LaneBlock], faults: list[DetectorFault]) -> list[GroundTruth]:
    downstream = {a.upstream: (junction.intersection_id, a.name) for junction in grid for a in junction.approaches if a.upstream}
    out = []
    for b in blocks:
        down = downstream.get((b.intersection_id, b.approach))
        out.append(
            GroundTruth(
                "incident",
                b.intersection_id,
                b.start,
                b.end,
                f"incident_{b.approach}",
                "major",
                {
                    "approach": b.approach,
                    "lane": b.lane,
                    "detector_id": f"{b.intersection_id}-{b.approach}{b.lane}",
                    "downstream": f"{down[0]}/{down[1]}" if down else None,
                },
            )
        )
    for f in faults:
        expected = None if f.mode == "noisy" else f"detector_fault_{f.detector_id}"
        out.append(
            GroundTruth(
                f"detector_{f.mode}",
                f.intersection_id,
                f.start,
                f.end,
                expected,
                None if expected is None else "minor",
                {"detector_id": f.detector_id},
            )
        )
    return out


# --- frames -------------------------------------------------------------------------------


@dataclass
class _ApproachState:
    queue: float = 0.0
    served_veh_h: float | None = None
    noise: float = 0.0  # AR(1) log-demand deviation: platoons and random slow-downs
    shadow_queue: float = 0.0  # closed loop: the same arrivals under the fixed plan (the counterfactual)


@dataclass(frozen=True)
class _Signal:
    """Closed loop, one junction and frame: the shares the worker's plan gives, the fixed plan's
    (for the shadow queue), and where the delay of both goes."""

    current: Shares
    fixed: Shares
    ledger: DelayLedger


def traffic_emissions(
    config: CityConfig,
    grid: list[GridJunction],
    t0: float,
    t1: float,
    blocks: list[LaneBlock],
    faults: list[DetectorFault],
    events: list[VenueEvent],
    rain: list[RainPeriod],
    signals: ClosedLoop | None = None,
) -> Iterator[Emission]:
    """One ``IntersectionFrame`` per intersection and interval, in time order.

    With ``signals`` (the demo's closed loop) each junction's approaches take their green shares
    from the plan the control worker last drove (read as each frame is computed: the city never
    waits for the worker), and a shadow fixed-time queue per approach, fed the same arrivals,
    books the delay fixed time would have had. Without it the constant shares apply (open loop).
    """
    dt = config.frame_interval_s
    rngs = {junction.intersection_id: rng_for(config, "traffic", junction.intersection_id) for junction in grid}
    states = {(junction.intersection_id, a.name): _ApproachState() for junction in grid for a in junction.approaches}
    steps = int(math.ceil((t1 - t0) / dt - 1e-9))
    for step in range(steps):
        t = t0 + step * dt
        when = datetime.fromtimestamp(t, timezone.utc)
        mm_h = rain_at(t, rain)
        base = demand_profile(when, config, rain_mm_h=mm_h)
        served_prev = {k: s.served_veh_h for k, s in states.items()}
        active_blocks = {(b.intersection_id, b.approach): b.lane for b in blocks if b.start <= t < b.end}
        active_faults = {f.detector_id: f.mode for f in faults if f.start <= t < f.end}
        for junction in grid:
            event_factor = _event_factor(junction.intersection_id, events, t)
            rng = rngs[junction.intersection_id]
            readings: list[DetectorReading] = []
            signal = None
            if signals is not None and junction.intersection_id in signals.models:
                iid = junction.intersection_id
                signal = _Signal(signals.current[iid], signals.fixed[iid], signals.ledgers[iid])
                signal.ledger.intervals += 1
                signal.ledger.controlled_intervals += iid in signals.from_worker
            for ap in junction.approaches:
                st = states[(junction.intersection_id, ap.name)]
                readings += _approach_readings(
                    junction.intersection_id,
                    ap,
                    st,
                    rng,
                    dt,
                    base * event_factor,
                    mm_h,
                    served_prev.get(ap.upstream) if ap.upstream else None,
                    active_blocks.get((junction.intersection_id, ap.name)),
                    active_faults,
                    signal,
                )
            frame = IntersectionFrame(
                schema_version=1, event_time=when, intersection_id=junction.intersection_id, interval_s=dt, detectors=readings
            )
            yield Emission(t, "sensors.intersection", junction.intersection_id, encode(frame))


def _event_factor(iid: str, events: list[VenueEvent], t: float) -> float:
    """1 + the extra demand the events around ``iid`` bring at ``t`` (the venue's own junction most)."""
    factor = 1.0
    for ev in events:
        if iid in ev.near:
            factor *= ev.demand_factor(t, ev.near[0] == iid)
    return factor


def hourly_served(
    config: CityConfig,
    grid: list[GridJunction],
    t0: float,
    t1: float,
    events: list[VenueEvent],
    rain: list[RainPeriod],
    *,
    stream: str,
) -> Iterator[tuple[str, float, int]]:
    """(intersection id, hour start, vehicles served in that hour) from ``t0`` (an hour start) to ``t1``.

    The same point-queue model as :func:`traffic_emissions`, open loop, with no incidents or
    faults, and without the loops: what a traffic computer's counts of previous weeks hold.
    The loops count the served vehicles (each lane a binomial share of them), so their hourly
    sum and this agree in expectation, including what the model's upstream coupling takes from
    quiet hours; a history drawn from the demand profile instead overstated the demo's counts by
    ~3 %, 13-15 % at night. ``stream`` names the random streams, distinct from the run's. About
    a quarter of a second per simulated day for 12 junctions (7.8 s for 35 days).
    """
    if t0 % 3600:
        raise ValueError("hourly_served counts whole hours: t0 must be an hour start")
    dt = config.frame_interval_s
    rngs = {j.intersection_id: rng_for(config, stream, j.intersection_id) for j in grid}
    states = {(j.intersection_id, a.name): _ApproachState() for j in grid for a in j.approaches}
    sums = {j.intersection_id: 0 for j in grid}
    hour = t0
    steps = int(math.ceil((t1 - t0) / dt - 1e-9))
    for step in range(steps):
        t = t0 + step * dt
        if t - hour >= 3600:
            yield from ((iid, hour, n) for iid, n in sums.items())
            sums = dict.fromkeys(sums, 0)
            hour += 3600 * ((t - hour) // 3600)
        mm_h = rain_at(t, rain)
        base = demand_profile(datetime.fromtimestamp(t, timezone.utc), config, rain_mm_h=mm_h)
        served_prev = {k: s.served_veh_h for k, s in states.items()}
        for junction in grid:
            factor = base * _event_factor(junction.intersection_id, events, t)
            rng = rngs[junction.intersection_id]
            for ap in junction.approaches:
                upstream = served_prev.get(ap.upstream) if ap.upstream else None
                state = states[(junction.intersection_id, ap.name)]
                served, *_ = _step_queue(ap, state, rng, dt, factor, mm_h, upstream, None, ap.green_share)
                sums[junction.intersection_id] += served
    if steps and t1 - hour >= 3600 - 1e-6:  # the last hour only when complete
        yield from ((iid, hour, n) for iid, n in sums.items())


def _approach_readings(
    iid: str,
    ap: Approach,
    st: _ApproachState,
    rng: random.Random,
    dt: float,
    factor: float,
    mm_h: float,
    upstream_served: float | None,
    blocked_lane: int | None,
    faults: dict[str, str],
    signal: _Signal | None = None,
) -> list[DetectorReading]:
    """One frame interval of one approach: step its queue (and, in closed loop, the shadow
    fixed-time queue on the same arrivals), then read each lane's loop."""
    green = ap.green_share if signal is None else signal.current.by_approach.get(ap.name, ap.green_share)
    cycle = CYCLE_S if signal is None else signal.current.cycle_s
    queue_before = st.queue
    served, lane_cap, arrivals, u = _step_queue(ap, st, rng, dt, factor, mm_h, upstream_served, blocked_lane, green)
    if signal is not None:
        fixed = signal.fixed.by_approach.get(ap.name, ap.green_share)
        wet = 0.9 if mm_h > 0 else 1.0
        shadow_before = st.shadow_queue
        shadow_served, shadow_cap = _serve(ap, st.shadow_queue + arrivals, fixed, wet, dt, blocked_lane, u)
        st.shadow_queue = min(ap.max_queue_veh, st.shadow_queue + arrivals - shadow_served)
        signal.ledger.add(
            dt=dt,
            arrivals=arrivals,
            queue_before=(queue_before, shadow_before),
            queue_after=(st.queue, st.shadow_queue),
            capacity=(_capacity(lane_cap, blocked_lane), _capacity(shadow_cap, blocked_lane)),
            shares=(green, fixed),
            cycles=(cycle, signal.fixed.cycle_s),
        )
    interval = _Interval(
        ap=ap,
        dt=dt,
        served=served,
        queue=st.queue,
        x=served / max(1e-9, 2 * lane_cap),
        free_kmh=ap.free_speed_kmh * (0.88 if mm_h > 0 else 1.0),
        blocked=blocked_lane is not None,
        green_share=green,
        cycle_s=cycle,
    )
    out = []
    for lane in (1, 2):
        det = f"{iid}-{ap.name}{lane}"
        if lane == blocked_lane:
            reading = _blocked_loop(det, ap.name, lane, st.queue, dt, faults, rng)
        else:
            share = ap.lane_split if lane == 1 else 1 - ap.lane_split
            if interval.blocked:
                share = 1.0  # the open lane takes all the traffic
            reading = _flowing_loop(det, lane, share, interval, faults, rng)
        if reading is not None:
            out.append(reading)
    return out


def _step_queue(
    ap: Approach,
    st: _ApproachState,
    rng: random.Random,
    dt: float,
    factor: float,
    mm_h: float,
    upstream_served: float | None,
    blocked_lane: int | None,
    green_share: float,
) -> tuple[int, float, int, float]:
    """The point-queue model for one interval; updates ``st``, returns (served, lane capacity,
    arrivals, the uniform draw that rounded the capacity: a shadow queue reuses both).

    Demand mixes the approach's own (profile times AR(1) noise) with what the upstream
    intersection actually let through, so a blocked lane upstream thins the traffic here.
    A blocked lane leaves 60 % of one lane's capacity; rain takes 10 %.
    """
    st.noise = 0.85 * st.noise + rng.gauss(0.0, 0.05)
    own = ap.peak_veh_h * factor * math.exp(st.noise)
    if upstream_served is not None:
        up_norm = upstream_served  # the corridor carries on what it actually let through
        demand = (1 - ap.through_share) * own + ap.through_share * min(up_norm, 1.3 * own)
    else:
        demand = own
    wet = 0.9 if mm_h > 0 else 1.0
    arrivals = poisson(rng, demand * dt / 3600.0)
    waiting = st.queue + arrivals
    u = rng.random()
    served, lane_cap = _serve(ap, waiting, green_share, wet, dt, blocked_lane, u)
    st.queue = min(ap.max_queue_veh, waiting - served)  # beyond the link, drivers divert
    st.served_veh_h = served * 3600.0 / dt
    return served, lane_cap, arrivals, u


def _capacity(lane_cap: float, blocked_lane: int | None) -> float:
    """Vehicles both lanes can discharge in the interval (60 % of one lane's when one is blocked)."""
    return 2 * lane_cap if blocked_lane is None else 0.6 * lane_cap


def _serve(
    ap: Approach, waiting: float, green_share: float, wet: float, dt: float, blocked_lane: int | None, u: float
) -> tuple[int, float]:
    """(served, lane capacity) of an approach with ``waiting`` vehicles and this green share; the
    fractional capacity is rounded up with probability equal to the fraction (``u`` uniform)."""
    lane_cap = SATURATION_VEH_H * green_share * wet * dt / 3600.0
    capacity = _capacity(lane_cap, blocked_lane)
    can = int(capacity) + (u < capacity - int(capacity))
    return min(int(waiting), can), lane_cap


@dataclass(frozen=True)
class _Interval:
    """One approach over one frame interval after its queue step: what its loops see."""

    ap: Approach
    dt: float
    served: int  # vehicles over the stop line, both lanes
    queue: float  # vehicles left standing, both lanes
    x: float  # degree of saturation: served over the capacity of both lanes
    free_kmh: float  # free speed, lower in the rain
    blocked: bool  # one lane is blocked: the other takes all the traffic, slowly
    green_share: float  # the approach's share of the cycle in green (constant, or the driven plan's)
    cycle_s: float


def _blocked_loop(
    det: str, approach: str, lane: int, queue: float, dt: float, faults: dict[str, str], rng: random.Random
) -> DetectorReading | None:
    """The loop of the blocked lane lies in the standing queue behind the obstacle."""
    count = poisson(rng, 0.3 * dt / 60)
    occ = rng.uniform(0.72, 0.93)
    speed = round(rng.uniform(2.0, 8.0), 1) if count else None
    return _reading(det, approach, lane, count, occ, speed, queue, faults, rng)


def _flowing_loop(
    det: str, lane: int, share: float, interval: _Interval, faults: dict[str, str], rng: random.Random
) -> DetectorReading | None:
    """A loop in moving traffic: its share of the served vehicles, speed falling with
    saturation and queue, occupancy from flow plus the time the queue stands on the loop."""
    ap, dt, served = interval.ap, interval.dt, interval.served
    count = int(served) if share == 1.0 else sum(rng.random() < share for _ in range(int(served)))
    q_lane = interval.queue * share
    flow_lane = count * 3600.0 / dt
    speed_kmh = interval.free_kmh * (1 - 0.35 * min(1.0, interval.x) ** 2) * (1 - 0.65 * min(1.0, q_lane / 15.0))
    if interval.blocked:
        speed_kmh *= rng.uniform(0.3, 0.5)  # drivers slow down to squeeze past the obstacle
    speed_kmh = max(3.0, speed_kmh + rng.gauss(0.0, 2.0))
    red_s = interval.cycle_s * (1 - interval.green_share)
    peak_queue = q_lane + flow_lane * red_s / 3600.0
    reach = min(1.0, max(0.0, (peak_queue - SETBACK_VEH) / 12.0))
    occ = flow_lane * EFFECTIVE_LENGTH_M / (speed_kmh * 1000.0)
    occ += reach * ((1 - interval.green_share) + interval.green_share * 0.6 * min(1.0, q_lane / 20.0))
    occ = min(0.97, max(0.0, occ + rng.gauss(0.0, 0.005)))
    return _reading(
        det,
        ap.name,
        lane,
        count,
        occ,
        round(speed_kmh, 1) if count else None,
        peak_queue if not interval.blocked else interval.queue,
        faults,
        rng,
    )


def _reading(
    det: str,
    approach: str,
    lane: int,
    count: int,
    occ: float,
    speed: float | None,
    queue: float,
    faults: dict[str, str],
    rng: random.Random,
) -> DetectorReading | None:
    """What the loop reports, after its fault if it has one (None: it reports nothing)."""
    mode = faults.get(det)
    if mode == "silent":
        return None
    if mode == "stuck":  # the loop reports presence all the time, and so counts no gaps
        count, occ, speed = 0, 1.0, None
    elif mode == "noisy":
        count = max(0, int(round(count * math.exp(rng.gauss(0, 0.5)))))
        occ = min(0.9, occ * math.exp(rng.gauss(0, 0.5)))
        speed = None if speed is None else round(max(1.0, speed + rng.gauss(0, 15)), 1)
    return DetectorReading(
        detector_id=det,
        count=count,
        occupancy=round(occ, 4),
        speed_kmh=speed,
        queue_veh=round(min(1000.0, queue), 1),
        approach=approach,
        lane=lane,
    )
