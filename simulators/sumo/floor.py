"""The delay no signal timing can remove: a scenario run with every signal green and conflicts
inside signalised junctions not enforced.

Why: a controller's ratio to fixed time says how much better it is, not how much is left to win.
Part of every map's delay is not the signals' at all: unsignalised junctions and merges, turns
taken slowly, vehicles waiting to enter a full network. On ingolstadt1 the busiest approach
(about half of all delay under any controller) never crosses the signal. This run removes every
signal's share at once: each traffic light shows green on every link for the whole run, and
SUMO does not act on the collisions that follow (``--collision.action none``; junction
collisions are not even checked by default). Nothing else changes: same demand, same seed, same
RESCO delay (time loss + insertion delay, unfinished vehicles included), no teleports.

It is a lower bound, not a target: a real junction must separate conflicting flows, which costs
at least the lost time of each change. ``delay - floor`` is the part of a controller's delay the
signals cause; ``(controller - floor) / (fixed - floor)`` the share of fixed time's signal
delay it leaves. Pure reference: no controller, no detectors, no safety monitor (nothing shown
here could be driven on a street).
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from simulators.sumo.evaluation import in_processes
from simulators.sumo.loop import _start_sumo, read_scenario, read_tripinfo

#: SUMO options of the reference run (besides the loop's own: no teleports, tripinfo)
FLOOR_OPTIONS = ("--collision.action", "none", "--ignore-junction-blocker", "1")


def floor_run(sumocfg: str | Path, seed: int) -> dict[str, Any]:
    """One seeded run with every traffic light green on every link (libsumo: one per process)."""
    import libsumo as traci

    scenario = read_scenario(sumocfg)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="leitstand-floor-") as tmp:
        tripinfo = Path(tmp) / "tripinfo.xml"
        _start_sumo(traci, scenario, seed, tripinfo, scenario.additional, FLOOR_OPTIONS)
        try:
            lights = list(traci.trafficlight.getIDList())
            for tid in lights:
                # an online state stays until it is changed: the whole run, programs and offsets ignored
                traci.trafficlight.setRedYellowGreenState(tid, "G" * len(traci.trafficlight.getRedYellowGreenState(tid)))
            while traci.simulation.getTime() < scenario.end_s:
                traci.simulationStep()
        finally:
            traci.close()
        stats = read_tripinfo(tripinfo)
    return {"scenario": scenario.name, "seed": seed, "signals": len(lights), "wall_s": round(time.perf_counter() - started, 2), **stats}


def _floor_one(item: tuple[str, int]) -> dict[str, Any]:
    return floor_run(*item)


def floor(
    sumocfg: str | Path, seeds: Sequence[int], *, jobs: int = 1, on_done: Callable[[dict[str, Any]], None] | None = None
) -> dict[str, Any]:
    """:func:`floor_run` over the seeds (spawned processes, ``jobs`` at a time): means and per seed."""
    started = time.perf_counter()
    runs = in_processes(_floor_one, [(str(sumocfg), s) for s in seeds], jobs, on_done)
    out: dict[str, Any] = {"scenario": Path(sumocfg).stem, "reference": "floor", "seeds": list(seeds), "signals": runs[0]["signals"]}
    for k in ("delay_mean", "timeloss_mean", "waiting_mean"):
        out[k] = round(statistics.fmean(r[k] for r in runs), 3)
    out["trips"] = sum(r["trips"] for r in runs)
    out["unfinished"] = sum(r["unfinished"] for r in runs)
    out["delay_per_seed"] = [r["delay_mean"] for r in runs]
    out["wall_s"] = round(time.perf_counter() - started, 2)
    return out


def signal_share(controller_delay: float, fixed_delay: float, floor_delay: float) -> float | None:
    """The share of fixed time's signal-caused delay (above the floor) a controller leaves; None
    when fixed time is at the floor (nothing for any controller to win)."""
    room = fixed_delay - floor_delay
    if room <= 0:
        return None
    return round((controller_delay - floor_delay) / room, 3)
