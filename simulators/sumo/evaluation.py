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
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from signals.controllers import CONTROLLERS
from simulators.sumo.loop import InProcessSource, run

SUMMED = ("trips", "unfinished", "teleports", "safety_violations", "rejected_decisions")
MEANS = ("delay_mean", "timeloss_mean", "duration_mean", "waiting_mean")


def check_controller(name: str) -> str:
    if name not in CONTROLLERS:
        raise ValueError(f"unknown controller {name!r}; known: {', '.join(sorted(CONTROLLERS))}")
    return name


def _one(args: tuple[str, str, int]) -> dict[str, Any]:
    scenario, controller, seed = args
    return dataclasses.asdict(run(scenario, controller, seed, InProcessSource()))


def run_many(
    jobs_list: Sequence[tuple[str, str, int]], jobs: int, on_done: Callable[[dict[str, Any]], None] | None = None
) -> list[dict[str, Any]]:
    """Run (scenario, controller, seed) triples in spawned processes; results in input order."""
    if jobs <= 1 or len(jobs_list) == 1:
        out = []
        for item in jobs_list:
            out.append(_one(item))
            if on_done:
                on_done(out[-1])
        return out
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=jobs, mp_context=ctx, max_tasks_per_child=1) as executor:
        futures = [executor.submit(_one, item) for item in jobs_list]
        for f in futures:
            f.add_done_callback(lambda fut: on_done(fut.result()) if on_done and not fut.exception() else None)
        return [f.result() for f in futures]


def summarise(scenario: str, controller: str, seeds: Sequence[int], runs: list[dict[str, Any]], wall_s: float) -> dict[str, Any]:
    """One JSON object per (scenario, controller): means over seeds, totals of counts."""
    out: dict[str, Any] = {"scenario": scenario, "controller": controller, "seeds": list(seeds)}
    for k in MEANS:
        out[k] = round(statistics.fmean(r[k] for r in runs), 3)
    for k in SUMMED:
        out[k] = sum(r[k] for r in runs)
    out["delay_per_seed"] = [r["delay_mean"] for r in runs]
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
) -> dict[str, Any]:
    check_controller(controller)
    started = time.perf_counter()
    if source_factory is None:
        runs = run_many([(str(scenario), controller, s) for s in seeds], jobs, on_done)
    else:
        runs = []
        for s in seeds:
            runs.append(dataclasses.asdict(run(scenario, controller, s, source_factory())))
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
