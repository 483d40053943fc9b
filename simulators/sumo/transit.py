"""Bus lines in the SUMO closed loop, and transit signal priority on and off.

``add_bus_lines`` puts bus lines on a real-city map: the paths between fringe edges that cross
the most traffic lights the loop controls, a stop on every second edge long enough for one
(a ``busStop`` on its rightmost bus lane, 20 s dwell), buses every ``headway_s`` (a SUMO
``flow`` with ``line``): one additional file the project generates (``leitstand.transit.add.xml``
in the run directory, written from the scenario's network, nothing hand-made).

``run_transit`` is the closed loop of ``simulators/sumo/loop.py`` (same frames, same in-process
control, same stage adapter and safety monitor) plus, with ``tsp``, the bus agent's rule in
miniature (:class:`TspPolicy`): a bus whose time loss exceeds ``late_s`` and that is within
``request_m`` of a controlled traffic light asks for priority on the stage serving its link,
after its last stop before the light, and again every ``retry_s`` while refused; the control
loop's priority wrapper grants within the limits of ``signals/priority.py``. The delay of buses
and of the other vehicles is read from SUMO's tripinfo separately (timeLoss + departDelay).

Under the fixed program (the deployed baseline in most cities, the default) and Webster a
grant changes the cyclic plan; under leitstand and max-pressure, which re-plan every second,
the request becomes a bus call the controller weighs (``signals.priority.BusCall``).
"""

from __future__ import annotations

import dataclasses
import os
import re
import tempfile
import time
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from signals.desk import priority_controller
from signals.priority import BusCall, Grant, PriorityCall, PriorityRules

from .loop import InProcessSource, _frame, _SignalDriver, _start_sumo, load_network, read_scenario, sim_epoch, write_detectors
from .network import SumoSignals

BUS_TYPE = "leitstand_bus"
MIN_STOP_EDGE_M = 60.0


@dataclass(frozen=True)
class BusLine:
    line_id: str
    edges: tuple[str, ...]
    stops: tuple[tuple[str, str, float, float], ...]  # (stop id, lane, start, end)
    signals: int  # controlled traffic lights on the path


def _bus_lane(edge: Any) -> Any | None:
    for lane in edge.getLanes():  # rightmost first
        if lane.allows("bus"):
            return lane
    return None


def plan_lines(net: Any, signals: Mapping[str, SumoSignals], n_lines: int = 2, candidates: int = 40) -> list[BusLine]:
    """The ``n_lines`` fringe-to-fringe paths (bus lanes all the way) crossing the most signals."""
    controlled = set(signals)
    normal = sorted((e for e in net.getEdges() if not e.getID().startswith(":") and _bus_lane(e) is not None), key=lambda e: e.getID())
    fringe = [e for e in normal if e.is_fringe()]
    if fringe:  # netconvert marks the edges at the map's edge
        starts, ends = [e for e in fringe if e.getOutgoing()], [e for e in fringe if e.getIncoming()]
    else:  # a generated net: edges leaving / entering a border node (fewer than 4 neighbours)
        starts = [e for e in normal if len(e.getFromNode().getNeighboringNodes()) < 4]
        ends = [e for e in normal if len(e.getToNode().getNeighboringNodes()) < 4]
    starts, ends = starts[:candidates], ends[:candidates]
    scored: list[tuple[int, float, tuple[str, ...]]] = []
    for a in starts:
        for b in ends:
            if a.getID() == b.getID() or a.getToNode() == b.getFromNode():
                continue
            path, cost = net.getShortestPath(a, b, vClass="bus")
            if not path:
                continue
            tls = {e.getToNode().getID() for e in path if e.getToNode().getType() == "traffic_light"}
            crossed = len({t for t in controlled if t in tls or any(t == e.getTLS().getID() for e in path if e.getTLS())})
            scored.append((crossed, -cost, tuple(e.getID() for e in path if not e.getID().startswith(":"))))
    scored.sort(reverse=True)
    lines: list[BusLine] = []
    used: set[str] = set()
    for crossed, _, edges in scored:
        if edges[0] in used or crossed == 0:
            continue
        used.add(edges[0])
        lines.append(BusLine(f"B{len(lines) + 1}", edges, _stops(net, f"B{len(lines) + 1}", edges), crossed))
        if len(lines) == n_lines:
            break
    return lines


def _stops(net: Any, line: str, edges: tuple[str, ...]) -> tuple[tuple[str, str, float, float], ...]:
    out: list[tuple[str, str, float, float]] = []
    for k, eid in enumerate(edges[1:-1], start=1):
        edge = net.getEdge(eid)
        lane = _bus_lane(edge)
        if k % 2 or lane is None or lane.getLength() < MIN_STOP_EDGE_M:
            continue
        mid = lane.getLength() / 2
        out.append((f"{line}_s{len(out)}", lane.getID(), round(mid - 10, 2), round(mid + 10, 2)))
    return tuple(out)


def write_transit(lines: list[BusLine], path: Path, begin: float, end: float, headway_s: float) -> None:
    """busStops, the bus type, one route and one flow per line (stops with 20 s dwell)."""
    root = ET.Element("additional")
    for line in lines:
        for sid, lane, start, stop_end in line.stops:
            ET.SubElement(root, "busStop", id=sid, lane=lane, startPos=f"{start}", endPos=f"{stop_end}", lines=line.line_id)
    ET.SubElement(root, "vType", id=BUS_TYPE, vClass="bus", length="12", accel="1.2", decel="4", maxSpeed="15")
    for n, line in enumerate(lines):
        ET.SubElement(root, "route", id=f"route_{line.line_id}", edges=" ".join(line.edges))
        flow = ET.SubElement(
            root,
            "flow",
            id=f"bus_{line.line_id}",
            type=BUS_TYPE,
            route=f"route_{line.line_id}",
            begin=f"{begin + 30 * n:.0f}",
            end=f"{end:.0f}",
            period=f"{headway_s:.0f}",
            line=line.line_id,
            departLane="best",
        )
        for sid, *_ in line.stops:
            ET.SubElement(flow, "stop", busStop=sid, duration="20")
    ET.ElementTree(root).write(path)


@dataclass
class TransitResult:
    scenario: str
    seed: int
    tsp: bool
    controller: str
    bus_delay_mean: float
    other_delay_mean: float
    buses: int
    others: int
    grants: int
    refusals: int
    safety_violations: int
    wall_s: float
    lines: list[dict[str, Any]] = field(default_factory=list)
    grant_kinds: dict[str, int] = field(default_factory=dict)
    refusal_reasons: dict[str, int] = field(default_factory=dict)


def _stage_for(s: SumoSignals, link: int) -> str | None:
    """The first stage of the program that gives the link's signal group green."""
    group = s.link_groups[link] if 0 <= link < len(s.link_groups) else None
    if group is None:
        return None
    for stage in s.intersection.fixed_plan.stage_sequence:
        if group in s.intersection.stage(stage).groups:
            return stage
    return None


@dataclass(frozen=True)
class TspPolicy:
    """The bus agent's side of TSP in the loop, with the grant limits it asks under.

    ``late_s``: conditional priority, a bus with more time loss than this asks. ``request_m``:
    how far before the stop line it may ask. ``retry_s``: a refused bus asks again this often
    while it approaches (0: once per light, the first version). ``after_stop``: no request while
    a bus stop still lies between the bus and the light (its dwell would waste the green).
    The defaults are the cross-validated choice (docs/transit.md, TSP table).
    """

    late_s: float = 30.0
    request_m: float = 150.0
    retry_s: float = 3.0
    after_stop: bool = True
    #: 25 s chosen by cross-validation across maps (docs/transit.md); the worker's default is 15 s
    rules: PriorityRules = field(default_factory=lambda: PriorityRules(max_extension_s=25.0, max_early_s=25.0))


def _stop_before_light(traci: Any, vid: str, light_m: float) -> bool:
    """Whether the bus is at a stop or its next stop lies before the light ``light_m`` ahead."""
    if traci.vehicle.isStopped(vid):
        return True
    for stop in traci.vehicle.getNextStops(vid)[:1]:
        ahead = traci.vehicle.getDrivingDistance(vid, stop.lane.rsplit("_", 1)[0], stop.endPos)
        return bool(0 <= ahead < light_m)
    return False


class _Priority:
    """The bus agent's rule in the loop: late and near a controlled light -> a request (again
    after a refusal every ``retry_s`` while it approaches, when the policy says so)."""

    def __init__(self, source: InProcessSource, signals: Mapping[str, SumoSignals], policy: TspPolicy) -> None:
        self.source, self.signals, self.policy = source, signals, policy
        self.granted: set[tuple[str, str]] = set()
        self.last_ask: dict[tuple[str, str], float] = {}
        self.grants = self.refusals = 0
        self.reasons: Counter[str] = Counter()
        self.kinds: Counter[str] = Counter()

    def step(self, traci: Any, clock: float) -> None:
        p = self.policy
        for vid in traci.vehicle.getIDList():
            if traci.vehicle.getTypeID(vid) != BUS_TYPE or traci.vehicle.getTimeLoss(vid) <= p.late_s:
                continue
            for tls, link, dist, _ in traci.vehicle.getNextTLS(vid)[:1]:
                key = (vid, tls)
                if tls not in self.signals or dist > p.request_m or key in self.granted:
                    continue
                last = self.last_ask.get(key)
                if last is not None and (p.retry_s <= 0 or clock - last < p.retry_s):
                    continue
                if p.after_stop and _stop_before_light(traci, vid, dist):
                    continue
                stage = _stage_for(self.signals[tls], link)
                if stage is not None:
                    self._ask(traci, vid, tls, stage, dist, clock)

    def _ask(self, traci: Any, vid: str, tls: str, stage: str, dist: float, clock: float) -> None:
        self.last_ask[(vid, tls)] = clock
        eta = dist / max(traci.vehicle.getSpeed(vid), 3.0)
        call = PriorityCall(f"{vid}@{tls}", vid, stage, clock, eta, traci.vehicle.getTimeLoss(vid))
        out = priority_controller(self.source.controls[tls]).request(call)
        if isinstance(out, (Grant, BusCall)):
            self.granted.add((vid, tls))
            self.grants += 1
            self.kinds[out.kind] += 1
        else:
            self.refusals += 1
            self.reasons[re.sub(r"\d+", "N", out.reason)] += 1


def run_transit(
    sumocfg: str | Path,
    seed: int,
    tsp: bool,
    *,
    n_lines: int = 2,
    headway_s: float = 300.0,
    policy: TspPolicy | None = None,
    controller: str = "fixed",
) -> TransitResult:
    """One seeded run of the scenario under ``controller`` with bus lines, TSP on or off."""
    import libsumo as traci

    scenario = read_scenario(sumocfg)
    net, signals = load_network(scenario)
    lines = plan_lines(net, signals, n_lines)
    source = InProcessSource()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="leitstand-transit-") as tmp:
        work = Path(tmp)
        det_file, transit_file, tripinfo = work / "leitstand.det.add.xml", work / "leitstand.transit.add.xml", work / "tripinfo.xml"
        detectors = write_detectors(signals, net, det_file)
        last = max(scenario.begin_s + headway_s, scenario.end_s - 600)  # the last buses still finish
        write_transit(lines, transit_file, scenario.begin_s, last, headway_s)
        _start_sumo(traci, scenario, seed, tripinfo, (*scenario.additional, det_file, transit_file))
        try:
            epoch = sim_epoch(scenario.end_s)
            source.start(scenario, signals, controller, f"transit-{seed}-{os.getpid()}", epoch)
            driver = _SignalDriver(signals)
            priority = _Priority(source, signals, policy or TspPolicy())
            if tsp:  # wrapped before the first frame, so the first request finds a plan driven
                for control in source.controls.values():
                    priority_controller(control).rules = priority.policy.rules
            step_s = traci.simulation.getDeltaT()
            t = traci.simulation.getTime()
            while t < scenario.end_s - 1e-9:
                frames = [_frame(traci, tid, detectors[tid], epoch + t, step_s) for tid in driver.signals]
                decisions = source.decide(frames)
                driver.apply(traci, decisions, t, epoch + t)
                if tsp:
                    priority.step(traci, epoch + t)
                traci.simulationStep()
                t = traci.simulation.getTime()
        finally:
            traci.close()
        bus, other = _delays(tripinfo)
    return TransitResult(
        scenario=scenario.name,
        seed=seed,
        tsp=tsp,
        controller=controller,
        bus_delay_mean=round(sum(bus) / len(bus), 2) if bus else float("nan"),
        other_delay_mean=round(sum(other) / len(other), 2) if other else float("nan"),
        buses=len(bus),
        others=len(other),
        grants=priority.grants,
        refusals=priority.refusals,
        safety_violations=len(driver.violations()),
        wall_s=round(time.perf_counter() - started, 1),
        grant_kinds=dict(priority.kinds),
        refusal_reasons=dict(priority.reasons),
        lines=[{"line": ln.line_id, "edges": len(ln.edges), "stops": len(ln.stops), "signals": ln.signals} for ln in lines],
    )


def _delays(tripinfo: Path) -> tuple[list[float], list[float]]:
    """Delay (timeLoss + departDelay) of every bus and of every other vehicle, unfinished included."""
    bus: list[float] = []
    other: list[float] = []
    for _, el in ET.iterparse(tripinfo, events=("end",)):
        if el.tag == "tripinfo":
            delay = float(el.get("timeLoss", 0.0)) + float(el.get("departDelay", 0.0))
            (bus if el.get("vType") == BUS_TYPE else other).append(delay)
            el.clear()
    return bus, other


def tsp_benchmark(sumocfg: str | Path, seeds: int = 5, first_seed: int = 1, **kw: Any) -> dict[str, Any]:
    """Bus and general-traffic delay with TSP off and on, per seed and in the mean (same seeds;
    tuning uses other seeds than the reported ones: ``first_seed``)."""
    runs = [run_transit(sumocfg, seed, tsp, **kw) for seed in range(first_seed, first_seed + seeds) for tsp in (False, True)]
    off = [r for r in runs if not r.tsp]
    on = [r for r in runs if r.tsp]

    def mean(rs: list[TransitResult], key: str) -> float:
        return round(sum(getattr(r, key) for r in rs) / len(rs), 2)

    bus_off, bus_on, other_off, other_on = (
        mean(off, "bus_delay_mean"),
        mean(on, "bus_delay_mean"),
        mean(off, "other_delay_mean"),
        mean(on, "other_delay_mean"),
    )
    return {
        "benchmark": "tsp",
        "scenario": off[0].scenario,
        "controller": off[0].controller,
        "seeds": [r.seed for r in off],
        "policy": dataclasses.asdict(kw.get("policy") or TspPolicy()),
        "lines": off[0].lines,
        "bus_delay_s": {"off": bus_off, "on": bus_on, "change": round(bus_on / bus_off - 1, 3)},
        "other_delay_s": {"off": other_off, "on": other_on, "change": round(other_on / other_off - 1, 3)},
        "grants": sum(r.grants for r in on),
        "refusals": sum(r.refusals for r in on),
        "safety_violations": sum(r.safety_violations for r in runs),
        "targets": "bus delay -20 % or better, general traffic +5 % at most",
        "runs": [r.__dict__ for r in runs],
    }
