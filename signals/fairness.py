"""Fairness of service: who waits how long at a signal, per approach and per mode of transport.

A controller that lowers the average delay by starving a side street, a bus lane or a cycle
track looks good on the mean and bad here. The tracker is fed one observation per simulation
step (which vehicles stand on which approach, which approaches show green) and keeps, per
vehicle and approach, the seconds it stood still (speed under 0.1 m/s, SUMO's own "halting"
threshold). When the vehicle leaves the approach its wait is one sample of that approach and
mode. "Share of cycles served": time is cut into windows of ``cycle_s`` (default 90 s, the
usual urban cycle); a window with demand on an approach counts as served when the approach
showed green at least once in it.

Pure: no SUMO, no Kafka. ``simulators/sumo/evaluation.py`` feeds it from libsumo; the control
desk (``signals/desk.py``) feeds :class:`LiveWaits` from detector frames for the live metrics.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from signals.adapter import StageAdapter
from signals.controllers.base import DetectorObservation
from signals.explain import StageDecision
from signals.model import Intersection
from signals.timeline import SignalState

#: below this many samples an approach's p95 says nothing; it is reported but not ranked
MIN_SAMPLES = 5
#: the issue's target: no approach's p95 wait above this multiple of fixed time's p95 there
TARGET_RATIO = 1.5
#: a p95 under this many seconds is "no real wait": the ratio to it is not judged (one signal
#: step of noise would otherwise fail an approach where fixed time happens to wait 0 s)
FLOOR_S = 5.0


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty sequence: always one of the values."""
    if not values:
        raise ValueError("percentile of no values")
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100.0 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def wait_stats(waits: Sequence[float]) -> dict[str, float | int]:
    """Mean, p95 and max wait in seconds and the number of vehicles they describe."""
    if not waits:
        return {"vehicles": 0, "mean_s": 0.0, "p95_s": 0.0, "max_s": 0.0}
    return {
        "vehicles": len(waits),
        "mean_s": round(statistics.fmean(waits), 2),
        "p95_s": round(percentile(waits, 95), 2),
        "max_s": round(max(waits), 2),
    }


@dataclass(frozen=True)
class ApproachView:
    """One approach at one step: is it green, and who stands or rolls on it (id -> (mode, halted))."""

    green: bool
    vehicles: Mapping[str, tuple[str, bool]]


@dataclass
class _Window:
    index: int = -1
    demand: bool = False
    green: bool = False


@dataclass
class FairnessTracker:
    """Accumulates waits per (approach, mode) and served cycles per approach over one run."""

    cycle_s: float = 90.0
    waits: dict[tuple[str, str], list[float]] = field(default_factory=dict)
    _open: dict[tuple[str, str], tuple[str, float]] = field(default_factory=dict)
    _windows: dict[str, _Window] = field(default_factory=dict)
    _served: dict[str, list[int]] = field(default_factory=dict)

    def observe(self, t: float, step_s: float, approaches: Mapping[str, ApproachView]) -> None:
        """One step: add ``step_s`` to every halted vehicle; close the vehicles that left."""
        present: set[tuple[str, str]] = set()
        for name, view in approaches.items():
            self._window(name, t, bool(view.vehicles), view.green)
            for vid, (mode, halted) in view.vehicles.items():
                key = (name, vid)
                present.add(key)
                _, waited = self._open.get(key, (mode, 0.0))
                self._open[key] = (mode, waited + (step_s if halted else 0.0))
        for key in [k for k in self._open if k not in present]:
            self._close(key)

    def _window(self, name: str, t: float, demand: bool, green: bool) -> None:
        index = int(t // self.cycle_s)
        w = self._windows.setdefault(name, _Window())
        if w.index != index:
            self._count(name, w)
            self._windows[name] = w = _Window(index)
        w.demand |= demand
        w.green |= green

    def _count(self, name: str, w: _Window) -> None:
        served = self._served.setdefault(name, [0, 0])
        if w.index >= 0 and w.demand:
            served[1] += 1
            served[0] += int(w.green)

    def _close(self, key: tuple[str, str]) -> None:
        mode, waited = self._open.pop(key)
        self.waits.setdefault((key[0], mode), []).append(waited)

    def finish(self) -> dict[str, Any]:
        """Close everything still open and return the raw samples (JSON-able, mergeable)."""
        for key in list(self._open):
            self._close(key)
        for name, w in self._windows.items():
            self._count(name, w)
        self._windows = {}
        return {
            "waits": [[a, m, w] for (a, m), w in sorted(self.waits.items())],
            "served": {a: list(v) for a, v in sorted(self._served.items())},
        }


def merge(raws: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Several runs' raw samples (one per seed) as one."""
    waits: dict[tuple[str, str], list[float]] = {}
    served: dict[str, list[int]] = {}
    for raw in raws:
        for approach, mode, w in raw["waits"]:
            waits.setdefault((approach, mode), []).extend(w)
        for approach, (s, d) in raw["served"].items():
            acc = served.setdefault(approach, [0, 0])
            acc[0] += s
            acc[1] += d
    return {"waits": [[a, m, w] for (a, m), w in sorted(waits.items())], "served": served}


def summarise(raw: Mapping[str, Any]) -> dict[str, Any]:
    """Per approach: all vehicles, per mode, share of cycles served; then worst vs median."""
    per: dict[str, dict[str, Any]] = {}
    for approach, mode, w in raw["waits"]:
        entry = per.setdefault(approach, {"all": [], "modes": {}})
        entry["all"].extend(w)
        entry["modes"][mode] = wait_stats(w)
    approaches: dict[str, Any] = {}
    for approach in sorted(set(per) | set(raw["served"])):
        entry = per.get(approach, {"all": [], "modes": {}})
        s, d = raw["served"].get(approach, [0, 0])
        approaches[approach] = {
            **wait_stats(entry["all"]),
            "served_share": round(s / d, 3) if d else None,
            "modes": entry["modes"],
        }
    return {"approaches": approaches, "summary": worst_vs_median(approaches)}


def worst_vs_median(approaches: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """The approach with the highest p95 wait against the median approach (enough samples only)."""
    ranked = [(a, s["p95_s"]) for a, s in approaches.items() if s["vehicles"] >= MIN_SAMPLES]
    if not ranked:
        return {"approaches_ranked": 0, "worst": None, "worst_p95_s": None, "median_p95_s": None, "worst_to_median": None}
    worst, worst_p95 = max(ranked, key=lambda x: x[1])
    median = statistics.median(p for _, p in ranked)
    return {
        "approaches_ranked": len(ranked),
        "worst": worst,
        "worst_p95_s": worst_p95,
        "median_p95_s": round(median, 2),
        "worst_to_median": round(worst_p95 / median, 2) if median > 0 else None,
    }


def against_fixed(fixed: Mapping[str, Any], other: Mapping[str, Any]) -> dict[str, Any]:
    """The issue's target for one controller: every approach's p95 <= 1.5 x fixed time's there.

    Judged on approaches with enough samples under both; a fixed-time p95 below ``FLOOR_S`` is
    raised to it (a 0 s wait cannot be multiplied). Lists the approaches that miss it.
    """
    misses = []
    worst_ratio = 0.0
    judged = 0
    for approach, stats in other["approaches"].items():
        base = fixed["approaches"].get(approach)
        if base is None or stats["vehicles"] < MIN_SAMPLES or base["vehicles"] < MIN_SAMPLES:
            continue
        judged += 1
        ratio = stats["p95_s"] / max(base["p95_s"], FLOOR_S)
        worst_ratio = max(worst_ratio, ratio)
        if ratio > TARGET_RATIO:
            misses.append({"approach": approach, "p95_s": stats["p95_s"], "fixed_p95_s": base["p95_s"], "ratio": round(ratio, 2)})
    return {"approaches_judged": judged, "worst_ratio": round(worst_ratio, 2), "target_met": not misses, "misses": misses}


# --- live: waits estimated from detector frames and the stage shown ------------------------------
#
# The control desk has no vehicle ids, only per-detector frames. So a live wait is the wait of
# the *first* vehicle of a queue: it starts when a red approach first shows demand (a queue or
# vehicles on one of its lane areas) and ends when the approach turns green. That is the longest
# wait of that red period, the figure a starved side street or pedestrian crossing shows first.
# What the signal shows comes from the drive record in force during the frame's interval, stepped
# second by second through ``signals.adapter.StageAdapter`` (minimum greens, transitions) as the
# field controller would. Frames without queue or vehicle counts (count and occupancy only) give
# no samples.

#: an interval longer than this many adapter steps is sampled more coarsely (bounded work per frame)
MAX_STEPS_PER_FRAME = 300
#: served waits kept per approach for the live worst-vs-median figure
RECENT_PER_APPROACH = 100


@dataclass(frozen=True)
class WaitSample:
    """One served wait: the approach (signal group), its mode (the group's kind) and the seconds."""

    intersection_id: str
    approach: str
    mode: str
    wait_s: float
    at_s: float


class LiveWaits:
    """One intersection's approaches: since when each red approach has had demand."""

    def __init__(self, intersection: Intersection) -> None:
        self.intersection = intersection
        self.adapter = StageAdapter(intersection)
        self.detectors: dict[str, tuple[str, ...]] = {}
        for area in intersection.lanes:
            if area.group is not None:
                self.detectors[area.group] = (*self.detectors.get(area.group, ()), area.measured_by)
        self.waiting_since: dict[str, float] = {}
        self.stepped_to: float | None = None
        #: seconds each group showed green during the last frame's interval (for
        #: ``signals.blockage``, which judges what a green moved)
        self.green_s: dict[str, float] = {}

    def observe(self, obs: DetectorObservation, shown: StageDecision | None) -> list[WaitSample]:
        """Fold one frame in; ``shown`` is the decision the signal drove during its interval
        (None before the first drive: nothing is known about the greens, nothing is sampled)."""
        self.green_s = {}
        if shown is None:
            return []
        greens = self._greens(shown, obs.time_s, obs.interval_s)
        end = obs.time_s + obs.interval_s
        out = []
        for group, detectors in sorted(self.detectors.items()):
            first_green, last_green, green_at_end = greens.get(group, (None, None, False))
            since = self.waiting_since.pop(group, None)
            if since is not None and first_green is not None:
                kind = self.intersection.groups[group].kind
                out.append(WaitSample(obs.intersection_id, group, kind, max(0.0, first_green - since), first_green))
                since = None
            demand = any(obs.queue(d) > 0 or obs.vehicles(d) > 0 for d in detectors)
            if demand and not green_at_end:
                start = obs.time_s if last_green is None else min(end, last_green)
                self.waiting_since[group] = since if since is not None else start
        return out

    def _greens(self, shown: StageDecision, t0: float, interval_s: float) -> dict[str, tuple[float | None, float | None, bool]]:
        """Per group: first green step, end of the last green step, green at the interval's end."""
        step = max(1.0, interval_s / MAX_STEPS_PER_FRAME)
        n = max(1, math.ceil(interval_s / step - 1e-9))
        out: dict[str, tuple[float | None, float | None, bool]] = {}
        for i in range(n):
            t = t0 + i * step
            if self.stepped_to is not None and t < self.stepped_to:
                continue  # a frame out of order or overlapping: the adapter only moves forward
            self.stepped_to = t + step
            for group, state in self.adapter.step(shown, t).items():
                first, last, _ = out.get(group, (None, None, False))
                green = state == SignalState.GREEN
                if green:
                    out[group] = (t if first is None else first, t + step, True)
                    self.green_s[group] = self.green_s.get(group, 0.0) + step
                else:
                    out[group] = (first, last, False)
        return out


@dataclass
class RecentWaits:
    """The last served waits per approach of every intersection: the live worst vs median."""

    per_approach: int = RECENT_PER_APPROACH
    samples: dict[tuple[str, str], list[float]] = field(default_factory=dict)
    _p95: dict[tuple[str, str], float] = field(default_factory=dict)

    def add(self, samples: Iterable[WaitSample]) -> None:
        touched = set()
        for s in samples:
            key = (s.intersection_id, s.approach)
            kept = self.samples.setdefault(key, [])
            kept.append(s.wait_s)
            del kept[: -self.per_approach]
            touched.add(key)
        for key in touched:
            self._p95[key] = percentile(self.samples[key], 95)

    def summary(self) -> dict[str, Any]:
        """``worst_vs_median`` over the approaches with at least ``MIN_SAMPLES`` recent waits."""
        approaches = {f"{i}/{a}": {"vehicles": len(w), "p95_s": self._p95[(i, a)]} for (i, a), w in self.samples.items()}
        return worst_vs_median(approaches)
