"""Seeded evaluations of controllers on SUMO scenarios: the figures of ``leitstand sumo ...``.

libsumo holds one simulation per process, so in-process runs go to a pool of fresh spawned
processes (one run each, ``--jobs`` at a time); runs through the broker go one after the other
in this process (they share the worker anyway).
"""

from __future__ import annotations

import dataclasses
import multiprocessing
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from signals import fairness
from signals.controllers import CONTROLLERS
from signals.explain import StageDecision
from simulators.sumo import breakdown as capacity
from simulators.sumo.faults import FailureKind
from simulators.sumo.loop import DecisionSource, InProcessSource, Scenario, run
from simulators.sumo.network import SumoSignals
from streams.records import IntersectionFrame

SUMMED = ("trips", "unfinished", "teleports", "safety_violations", "rejected_decisions", "wait_overrides")
MEANS = ("delay_mean", "timeloss_mean", "duration_mean", "waiting_mean")


def check_controller(name: str) -> str:
    if name not in CONTROLLERS:
        raise ValueError(f"unknown controller {name!r}; known: {', '.join(sorted(CONTROLLERS))}")
    return name


#: SUMO vehicle classes -> the modes the fairness table reports (everything else: "car")
MODES = {"bus": "bus", "coach": "bus", "tram": "tram", "bicycle": "bicycle", "pedestrian": "pedestrian"}
MODES.update(dict.fromkeys(("truck", "trailer", "delivery"), "freight"))


class FairnessSource:
    """A :class:`DecisionSource` that passes decisions through and watches who waits where.

    It runs in the process that holds libsumo (every ``run`` does), so before each decision it
    reads, per approach edge of every traffic light, the vehicles on its incoming lanes, their
    speed and class, and whether a link from the approach shows green; the pure
    :class:`signals.fairness.FairnessTracker` turns that into waits per approach and mode.
    """

    def __init__(self, inner: DecisionSource, cycle_s: float = 90.0) -> None:
        self.inner = inner
        self.tracker = fairness.FairnessTracker(cycle_s)
        self.lanes: dict[str, list[tuple[str, str, list[int]]]] = {}  # tls -> (lane, approach, link indices)
        self.classes: dict[str, str] = {}
        self.raw: dict[str, Any] | None = None

    def start(self, scenario: Scenario, signals: Mapping[str, SumoSignals], controller: str, session: str, epoch_s: float) -> None:
        import libsumo as traci

        for tid in signals:
            links: dict[str, list[int]] = {}
            for index, group in enumerate(traci.trafficlight.getControlledLinks(tid)):
                for incoming, _out, _via in group:
                    links.setdefault(incoming, []).append(index)
            self.lanes[tid] = [(lane, f"{tid}/{traci.lane.getEdgeID(lane)}", idx) for lane, idx in sorted(links.items())]
        self.inner.start(scenario, signals, controller, session, epoch_s)

    def decide(self, frames: list[IntersectionFrame]) -> dict[str, StageDecision]:
        self._observe()
        return self.inner.decide(frames)

    def report_stages(self, shown: Mapping[str, tuple[str, float]], at_s: float) -> None:
        """Passed on to a source that checks the street follows its plans (the broker's)."""
        report = getattr(self.inner, "report_stages", None)
        if report is not None:
            report(shown, at_s)

    def _observe(self) -> None:
        import libsumo as traci

        views: dict[str, tuple[bool, dict[str, tuple[str, bool]]]] = {}
        for tid, lanes in self.lanes.items():
            state = traci.trafficlight.getRedYellowGreenState(tid)
            for lane, approach, idx in lanes:
                green, vehicles = views.get(approach, (False, {}))
                green = green or any(state[i] in "Gg" for i in idx if i < len(state))
                for vid in traci.lane.getLastStepVehicleIDs(lane):
                    if vid not in self.classes:
                        self.classes[vid] = MODES.get(traci.vehicle.getVehicleClass(vid), "car")
                    vehicles[vid] = (self.classes[vid], traci.vehicle.getSpeed(vid) < 0.1)
                views[approach] = (green, vehicles)
        t = traci.simulation.getTime()
        step = traci.simulation.getDeltaT()
        self.tracker.observe(t, step, {a: fairness.ApproachView(g, v) for a, (g, v) in views.items()})

    @property
    def rejections(self) -> int:
        return int(getattr(self.inner, "rejections", 0))

    def close(self) -> None:
        self.raw = self.tracker.finish()
        self.inner.close()


@dataclasses.dataclass(frozen=True)
class RunOptions:
    """What every run of an evaluation is asked for besides scenario, controller and seed."""

    #: add the capacity breakdown (:mod:`simulators.sumo.breakdown`)
    breakdown: bool = False
    #: share of detectors dead for the whole run (drawn per seed, the same for every controller)
    failed_detectors: float = 0.0
    #: how they fail (:mod:`simulators.sumo.faults`)
    failure_kind: FailureKind = FailureKind.DEAD
    #: seconds between the frames the controllers get (0: every simulation step)
    frame_s: float = 0.0
    #: the controller's constants, where they differ from its defaults (``make_controller``'s
    #: keyword arguments, e.g. ``{"wait_scale_s": 60.0}`` for leitstand): sensitivity studies
    params: tuple[tuple[str, float], ...] = ()
    #: control workers the intersections are spread over (``InProcessSource.control_workers``)
    control_workers: int = 1


def run_with_fairness(
    scenario: str | Path, controller: str, seed: int, inner: DecisionSource, options: RunOptions = RunOptions()
) -> dict[str, Any]:
    """One run as a dict (``RunResult`` fields) plus ``fairness_raw``: the waits it observed."""
    source = FairnessSource(inner)
    result = dataclasses.asdict(
        run(
            scenario,
            controller,
            seed,
            source,
            breakdown=options.breakdown,
            failed_detectors=options.failed_detectors,
            failure_kind=options.failure_kind,
            frame_s=options.frame_s,
        )
    )
    result["fairness_raw"] = source.raw or source.tracker.finish()
    return result


T = TypeVar("T")


def in_processes(
    fn: Callable[[T], dict[str, Any]], items: Sequence[T], jobs: int, on_done: Callable[[dict[str, Any]], None] | None = None
) -> list[dict[str, Any]]:
    """``fn`` (a module-level function) over ``items``, each in a fresh spawned process (libsumo
    holds one simulation per process), ``jobs`` at a time, results in input order; in this
    process when there is one item or one job. ``on_done`` sees each result as it comes."""
    if jobs <= 1 or len(items) == 1:
        out = []
        for item in items:
            out.append(fn(item))
            if on_done:
                on_done(out[-1])
        return out
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=jobs, mp_context=ctx, max_tasks_per_child=1) as executor:
        futures = [executor.submit(fn, item) for item in items]
        for f in futures:
            f.add_done_callback(lambda fut: on_done(fut.result()) if on_done and not fut.exception() else None)
        return [f.result() for f in futures]


def _one(args: tuple[str, str, int, RunOptions]) -> dict[str, Any]:
    scenario, controller, seed, options = args
    source = InProcessSource(params=dict(options.params), control_workers=options.control_workers)
    return run_with_fairness(scenario, controller, seed, source, options)


def run_many(
    jobs_list: Sequence[tuple[str, str, int, RunOptions]], jobs: int, on_done: Callable[[dict[str, Any]], None] | None = None
) -> list[dict[str, Any]]:
    """Run (scenario, controller, seed) triples in spawned processes; results in input order."""
    return in_processes(_one, jobs_list, jobs, on_done)


def summarise(scenario: str, controller: str, seeds: Sequence[int], runs: list[dict[str, Any]], wall_s: float) -> dict[str, Any]:
    """One JSON object per (scenario, controller): means over seeds, totals of counts."""
    out: dict[str, Any] = {"scenario": scenario, "controller": controller, "seeds": list(seeds)}
    for k in MEANS:
        out[k] = round(statistics.fmean(r[k] for r in runs), 3)
    for k in SUMMED:
        out[k] = sum(r[k] for r in runs)
    out["delay_per_seed"] = [r["delay_mean"] for r in runs]
    # blocked approaches the control room would have been alarmed about (signals.blockage), per
    # seed, with the first of each run (when and where): a locked junction shows here first
    out["blockages_per_seed"] = [sum(1 for e in r.get("blockages", ()) if e["raised"]) for r in runs]
    firsts = [next((e for e in r.get("blockages", ()) if e["raised"]), None) for r in runs]
    out["first_blockage_per_seed"] = [None if e is None else {k: e[k] for k in ("t_s", "signal", "detector")} for e in firsts]
    raws = [r["fairness_raw"] for r in runs if "fairness_raw" in r]
    if raws:
        out["fairness"] = fairness.summarise(fairness.merge(raws))
    if any(r.get("failed_detectors") for r in runs):
        out["failed_detectors_per_seed"] = [len(r.get("failed_detectors") or ()) for r in runs]
        out["failure_kind"] = runs[0].get("failure_kind", "dead")
    accounts = [r["breakdown"] for r in runs if r.get("breakdown")]
    if accounts:
        out["breakdown"] = capacity.merge(accounts)
    out["wall_s"] = round(wall_s, 2)
    return out


def evaluate(
    scenario: str | Path,
    controller: str,
    seeds: Sequence[int],
    *,
    jobs: int = 1,
    source_factory: Callable[[], Any] | None = None,
    on_done: Callable[[dict[str, Any]], None] | None = None,
    options: RunOptions = RunOptions(),
) -> dict[str, Any]:
    check_controller(controller)
    started = time.perf_counter()
    if source_factory is None:
        runs = run_many([(str(scenario), controller, s, options) for s in seeds], jobs, on_done)
    else:
        runs = []
        for s in seeds:
            runs.append(run_with_fairness(scenario, controller, s, source_factory(), options))
            if on_done:
                on_done(runs[-1])
    return summarise(Path(scenario).stem, controller, seeds, runs, time.perf_counter() - started)


def bar_chart(results: list[dict[str, Any]], path: Path, title: str) -> Path:
    """Delay per controller with the spread over seeds: the picture a planner takes to a meeting."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [r["controller"] for r in results]
    means = [r["delay_mean"] for r in results]
    lows = [r["delay_mean"] - min(r["delay_per_seed"]) for r in results]
    highs = [max(r["delay_per_seed"]) - r["delay_mean"] for r in results]
    fig, ax = plt.subplots(figsize=(6.4, 3.6), dpi=120)
    bars = ax.bar(names, means, yerr=[lows, highs], capsize=4, color="#4c72b0")
    for bar, m in zip(bars, means):
        ax.annotate(
            f"{m:.1f} s",
            (bar.get_x() + bar.get_width() / 2, m),
            ha="center",
            va="bottom",
            xytext=(0, 3),
            textcoords="offset points",
            fontsize=8,
        )
    ax.set_ylabel("mean delay per vehicle [s]")
    ax.set_title(title, fontsize=10)
    ax.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def fairness_table(rows: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """One map's controllers against fixed time: the worst-vs-median summary, the mean and p95
    over approaches, and the issue's target (every approach's p95 <= 1.5 x fixed time's)."""
    fixed = rows["fixed"]["fairness"]
    out: dict[str, Any] = {}
    for name, row in rows.items():
        f = row["fairness"]
        out[name] = {
            "delay_mean": row["delay_mean"],
            **f["summary"],
            "target": fairness.against_fixed(fixed, f) if name != "fixed" else None,
            "approaches": f["approaches"],
        }
    return out


def fairness_benchmark(scenarios: Sequence[Path], seeds: Sequence[int], controllers: Sequence[str], jobs: int) -> dict[str, Any]:
    """Every controller (fixed first: the baseline) on each map with the fairness table."""
    names = ["fixed", *[c for c in controllers if c != "fixed"]]
    result: dict[str, Any] = {"benchmark": "signals-fairness", "seeds": list(seeds), "target_ratio": fairness.TARGET_RATIO, "scenarios": {}}
    for scenario in scenarios:
        rows = {n: evaluate(scenario, n, seeds, jobs=min(jobs, len(seeds))) for n in names}
        result["scenarios"][Path(scenario).stem] = fairness_table(rows)
    return result


def _one_transit(args: tuple[str, int, bool, str]) -> dict[str, Any]:
    from simulators.sumo.transit import run_transit

    scenario, seed, tsp, controller = args
    return dataclasses.asdict(run_transit(scenario, seed, tsp, controller=controller))


def evaluate_transit(
    scenario: str | Path,
    seeds: Sequence[int],
    tsp: bool,
    *,
    controller: str = "fixed",
    jobs: int = 1,
    on_done: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Bus lines on the map under ``controller``, transit priority on or off: bus delay and
    general-traffic delay apart (means over seeds), grants (bus calls for an adaptive
    controller), refusals, safety violations.

    The runs go to spawned processes like :func:`run_many` (libsumo holds one simulation each)."""
    started = time.perf_counter()
    runs = in_processes(_one_transit, [(str(scenario), s, tsp, controller) for s in seeds], jobs, on_done)
    return summarise_transit(Path(scenario).stem, seeds, tsp, runs, time.perf_counter() - started, controller)


def summarise_transit(
    scenario: str, seeds: Sequence[int], tsp: bool, runs: list[dict[str, Any]], wall_s: float, controller: str = "fixed"
) -> dict[str, Any]:
    """One JSON object per (scenario, controller, TSP on/off): bus and other delay means, counts summed."""
    return {
        "scenario": scenario,
        "controller": controller,
        "tsp": tsp,
        "seeds": list(seeds),
        "bus_delay_mean": round(statistics.fmean(r["bus_delay_mean"] for r in runs), 2),
        "other_delay_mean": round(statistics.fmean(r["other_delay_mean"] for r in runs), 2),
        "bus_delay_per_seed": [r["bus_delay_mean"] for r in runs],
        "other_delay_per_seed": [r["other_delay_mean"] for r in runs],
        **{k: sum(r[k] for r in runs) for k in ("buses", "others", "grants", "refusals", "safety_violations")},
        "lines": runs[0]["lines"] if runs else [],
        "wall_s": round(wall_s, 2),
    }
