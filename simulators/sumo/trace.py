"""A second-by-second trace of chosen signals in a closed-loop run: how a jam starts, not just where.

Why: ``--breakdown`` says where an hour's capacity went, per intersection; it cannot say when a
jam began or what held it. Both ingolstadt21 diagnoses in docs/signals.md (a detector stuck
empty, and a deadlock of left turners waiting *inside* two junctions) needed the signal's state
and decision rule second by second beside the vehicles standing on its lanes and in its junction,
which no detector measures. ``leitstand sumo trace`` writes exactly that as JSON lines.

:func:`trace_row` is pure (what one row says); :class:`TracingSource` reads libsumo after each
decision, and :func:`trace_run` drives one seeded run (optionally only up to ``until_s``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from signals.explain import StageDecision
from simulators.sumo.faults import FailureKind
from simulators.sumo.loop import InProcessSource, load_network, read_scenario, run
from streams.records import IntersectionFrame

#: a vehicle slower than this (m/s) inside a junction counts as standing there
STANDING_MPS = 0.1


@dataclass(frozen=True)
class StandingVehicle:
    """A vehicle stopped on a junction's internal lane: past the stop line, where no detector is."""

    vehicle: str
    lane: str
    waiting_s: float


def trace_row(
    t_s: float,
    signal: str,
    state: str,
    decision: StageDecision,
    halted_in: Mapping[str, int],
    halted_out: Mapping[str, int],
    in_junction: Iterable[StandingVehicle],
) -> dict[str, Any]:
    """One JSON line: the signal's shown state and rule, and where vehicles stand (zero counts omitted)."""
    return {
        "t_s": round(t_s, 1),
        "signal": signal,
        "state": state,
        "rule": decision.explanation.rule,
        "effect": decision.explanation.expected_effect,
        "halted_in": {lane: n for lane, n in sorted(halted_in.items()) if n > 0},
        "halted_out": {lane: n for lane, n in sorted(halted_out.items()) if n > 0},
        "in_junction": [{"vehicle": v.vehicle, "lane": v.lane, "waiting_s": round(v.waiting_s, 1)} for v in in_junction],
    }


class UnknownSignalError(LookupError):
    """A traced signal id the scenario's net does not have (raised before SUMO starts)."""


class TraceStop(Exception):
    """Raised inside the loop once the trace has reached its end time (the run stops there)."""


class TracingSource(InProcessSource):
    """The in-process control loop, plus a row per traced signal every ``every_s`` seconds."""

    def __init__(
        self,
        traci: ModuleType,
        signals: Iterable[str],
        write: Callable[[dict[str, Any]], None],
        *,
        begin_s: float,
        every_s: float = 1.0,
        from_s: float = 0.0,
        until_s: float | None = None,
    ) -> None:
        super().__init__()
        self.traci = traci
        self.traced = tuple(signals)
        self.write = write
        self.begin_s, self.every_s, self.until_s = begin_s, every_s, until_s
        self._next_s = from_s
        self._lanes: dict[str, tuple[list[str], list[str], tuple[str, ...]]] = {}
        self.rows = 0

    def _lanes_of(self, tid: str) -> tuple[list[str], list[str], tuple[str, ...]]:
        """Approach lanes, exit lanes and the junctions' internal-lane prefixes of one signal."""
        if tid not in self._lanes:
            links = [link for group in self.traci.trafficlight.getControlledLinks(tid) for link in group]
            ins = sorted({a for a, _, _ in links})
            outs = sorted({b for _, b, _ in links})
            prefixes = tuple(sorted({via.rsplit("_", 2)[0] + "_" for _, _, via in links if via.startswith(":")}))
            self._lanes[tid] = (ins, outs, prefixes)
        return self._lanes[tid]

    def decide(self, frames: list[IntersectionFrame]) -> dict[str, StageDecision]:
        decisions = super().decide(frames)
        t = self.traci.simulation.getTime() - self.begin_s
        if self.until_s is not None and t >= self.until_s:
            raise TraceStop
        if t + 1e-9 < self._next_s:
            return decisions
        self._next_s = t + self.every_s
        lane = self.traci.lane
        vehicle = self.traci.vehicle
        inside: dict[str, list[StandingVehicle]] = {tid: [] for tid in self.traced}
        lanes = {tid: self._lanes_of(tid) for tid in self.traced}
        for v in vehicle.getIDList():
            road = vehicle.getRoadID(v)
            if not road.startswith(":") or vehicle.getSpeed(v) >= STANDING_MPS:
                continue
            for tid, (_, _, prefixes) in lanes.items():
                if road.startswith(prefixes):
                    inside[tid].append(StandingVehicle(v, vehicle.getLaneID(v), vehicle.getWaitingTime(v)))
        for tid, (ins, outs, _) in lanes.items():
            self.write(
                trace_row(
                    t,
                    tid,
                    self.traci.trafficlight.getRedYellowGreenState(tid),
                    decisions[tid],
                    {x: lane.getLastStepHaltingNumber(x) for x in ins},
                    {x: lane.getLastStepHaltingNumber(x) for x in outs},
                    sorted(inside[tid], key=lambda s: s.vehicle),
                )
            )
            self.rows += 1
        return decisions


def trace_run(
    sumocfg: Path,
    controller: str,
    seed: int,
    signals: list[str],
    write: Callable[[dict[str, Any]], None],
    *,
    every_s: float = 1.0,
    from_s: float = 0.0,
    until_s: float | None = None,
    failed_detectors: float = 0.0,
    failure_kind: FailureKind = FailureKind.DEAD,
    progress: Callable[[float, float], None] | None = None,
) -> int:
    """Run one seed, writing a row per traced signal every ``every_s`` s from ``from_s`` (seconds
    after the scenario's begin) up to ``until_s`` or the end. Returns the rows written. Unknown
    signal ids raise :class:`UnknownSignalError` naming them, before SUMO starts."""
    import libsumo as traci  # one simulation per process: imported where it is used

    # checked before SUMO starts, so a typo costs no start (run() parses the net again: ~1 s)
    scenario = read_scenario(sumocfg)
    _, known = load_network(scenario)
    unknown = [s for s in signals if s not in known]
    if unknown:
        shown = ", ".join(sorted(known)[:8]) + (" ..." if len(known) > 8 else "")
        raise UnknownSignalError(f"no traffic light {', '.join(u[:64] for u in unknown)} in {scenario.net_file.name} (there: {shown})")
    source = TracingSource(traci, signals, write, begin_s=scenario.begin_s, every_s=every_s, from_s=from_s, until_s=until_s)
    try:
        run(sumocfg, controller, seed, source, progress=progress, failed_detectors=failed_detectors, failure_kind=failure_kind)
    except TraceStop:
        pass
    return source.rows
