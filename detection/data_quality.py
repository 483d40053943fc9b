"""Data-quality watch: is a sensor stream still telling the truth? (pure, JSON-able state)

Decoding already refuses what is impossible (``streams/records.py``: occupancy above 1, a pH
as text). This watch judges what decodes but should not be trusted, per stream (one quantity of
one sensor, e.g. ``intersection/K12/det3/occupancy`` or ``pool/hallenbad-1/ph``), against the
stream's *own* history rather than a fleet-wide rule:

* ``missing``: no reading for ``missing_after`` expected intervals (checked by a timer, since a
  silent stream sends nothing to react to);
* ``stuck``: the same non-zero value ``stuck_after`` times in a row (zero is a normal reading
  for counts, occupancy, queues and visitors at night, so zeros never count as stuck);
* ``out_of_range``: outside the plausible range of its quantity (:data:`PLAUSIBLE`), narrower
  than the decoder's physical limits (a 250 km/h car at a crossing decodes, but is not believed);
* ``clock_skew``: the event time is ahead of the arrival time by more than ``skew_limit_s``
  (a device clock running fast), or behind it by more than ``skew_limit_s`` beyond the stream's
  usual latency (a device clock running slow, or a buffered sensor);
* ``drift``: the recent mean (fast EWMA) has left the long-run mean (slow EWMA) by more than
  ``drift_sigmas`` times the stream's own reading-to-reading noise: a probe that slowly loses
  calibration. Judged for water quantities only (:data:`DRIFTING`), which should hold a level.

Known limits, said where they bite: after a worker outage every stream arrives late, so the
backlog shows as ``clock_skew`` until the worker has caught up; a lasting shift is absorbed
into the long-run mean after a few hundred readings and stops being flagged as drift.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

ISSUES: tuple[str, ...] = ("missing", "stuck", "out_of_range", "clock_skew", "drift")

#: the four quantities of a traffic detector, in the order :func:`detector_streams` names their
#: streams; the hot paths that fold frames pass these as the quantity beside each stream id
COUNT_PER_S, OCCUPANCY, SPEED_KMH, QUEUE_VEH = DETECTOR_QUANTITIES = ("count_per_s", "occupancy", "speed_kmh", "queue_veh")

#: plausible ranges per quantity (the last part of a stream id); unknown quantities: no range check
PLAUSIBLE: dict[str, tuple[float, float]] = {
    COUNT_PER_S: (0.0, 1.0),  # one lane passes at most ~0.6 vehicles/s; 1/s is generous
    OCCUPANCY: (0.0, 1.0),
    SPEED_KMH: (0.0, 130.0),
    QUEUE_VEH: (0.0, 200.0),
    "free_chlorine": (0.0, 5.0),
    "combined_chlorine": (0.0, 2.0),
    "ph": (5.0, 9.5),
    "redox": (200.0, 1000.0),
    "temperature": (10.0, 40.0),
    "turbidity": (0.0, 20.0),
    "visitors": (0.0, 5000.0),
}
#: quantities that should hold a level, so a moving mean is drift (traffic follows a daily
#: cycle, so its quantities are not judged for drift: the cycle would look like one)
DRIFTING = frozenset({"free_chlorine", "combined_chlorine", "ph", "redox", "temperature", "turbidity"})
#: quantities for which zero is an everyday reading (never "stuck")
ZERO_IS_NORMAL = frozenset({*DETECTOR_QUANTITIES, "visitors"})


@dataclass(frozen=True)
class QualityLimits:
    """How strict the watch is (settings ``dq_*``); defaults fit 1-minute detector frames."""

    expected_interval_s: float = 60.0
    missing_after: float = 3.0
    stuck_after: int = 30
    skew_limit_s: float = 120.0
    drift_sigmas: float = 4.0
    fast_alpha: float = 0.1
    slow_alpha: float = 0.01
    warmup: int = 50
    ranges: Mapping[str, tuple[float, float]] = field(default_factory=lambda: dict(PLAUSIBLE))


def quantity_of(stream: str) -> str:
    """``intersection/K1/d3/occupancy`` -> ``occupancy``."""
    return stream.rsplit("/", 1)[-1]


def new_stream() -> dict[str, Any]:
    return {
        "n": 0,
        "last_event_s": None,
        "last_value": None,
        "same_run": 0,
        "fast": 0.0,
        "slow": 0.0,
        "noise": 0.0,
        "offset_n": 0,
        "offset_mean": 0.0,
        "issues": [],
        "counts": {k: 0 for k in ISSUES},
    }


#: how many fields a complete stream state has (one with fewer is completed from new_stream)
_FIELDS = len(new_stream())


def _ewma(old: float, x: float, alpha: float) -> float:
    return old + alpha * (x - old)


def _value_issues(s: dict[str, Any], quantity: str, value: float, limits: QualityLimits, found: list[str]) -> None:
    """Append to ``found`` what the value itself says (``s`` is the caller's own copy: updated in place)."""
    lo_hi = limits.ranges.get(quantity)
    if lo_hi is not None and not lo_hi[0] <= value <= lo_hi[1]:
        found.append("out_of_range")
    last = s["last_value"]
    run = s["same_run"] + 1 if last is not None and value == last else 1
    s["same_run"] = run
    s["last_value"] = value
    if run >= limits.stuck_after and not (value == 0.0 and quantity in ZERO_IS_NORMAL):
        found.append("stuck")
    n = s["n"]
    if n == 0:
        s["fast"] = s["slow"] = value
    else:
        fast = s["fast"]
        s["noise"] = _ewma(s["noise"], abs(value - fast), limits.slow_alpha)
        s["slow"] = _ewma(s["slow"], value, limits.slow_alpha)
        s["fast"] = _ewma(fast, value, limits.fast_alpha)
    n += 1
    s["n"] = n
    if quantity in DRIFTING and n >= limits.warmup:
        sigma = 1.25 * s["noise"]  # mean absolute deviation -> standard deviation (normal noise)
        if sigma > 0 and abs(s["fast"] - s["slow"]) > limits.drift_sigmas * sigma:
            found.append("drift")


def _clock_issues(s: dict[str, Any], event_s: float, arrival_s: float, limits: QualityLimits, found: list[str]) -> None:
    offset = arrival_s - event_s  # positive: the reading is this old when it arrives
    n = s["offset_n"]
    if offset < -limits.skew_limit_s or (n >= 10 and offset - s["offset_mean"] > limits.skew_limit_s):
        found.append("clock_skew")
        return
    # learn the usual latency from plausible readings only
    s["offset_mean"] = offset if n == 0 else _ewma(s["offset_mean"], offset, 0.05)
    s["offset_n"] = n + 1


def _fold_into(s: dict[str, Any], quantity: str, event_s: float, arrival_s: float, value: float, limits: QualityLimits) -> None:
    """Fold one reading into ``s``, which the caller owns (a fresh copy, or the watch's own
    state that nobody else holds): the one implementation behind ``observe`` and
    ``DataQualityState``. Issues are replaced (``issues``) and counted as they begin (``counts``)
    by assigning new objects, never by mutating the old ones, so a caller that kept them sees
    what was before."""
    found: list[str] = []
    if math.isfinite(value):
        _value_issues(s, quantity, value, limits, found)
    else:
        found.append("out_of_range")
    _clock_issues(s, event_s, arrival_s, limits, found)
    last = s["last_event_s"]
    if last is None or event_s > last:
        s["last_event_s"] = event_s
    if found or s["issues"]:
        _set_issues(s, set(found))


def _completed(state: Mapping[str, Any] | None) -> dict[str, Any]:
    """A copy of ``state`` with every field (one from an older version is completed)."""
    return dict(state) if state is not None and len(state) == _FIELDS else {**new_stream(), **(state or {})}


def observe(
    state: dict[str, Any] | None, stream: str, event_s: float, arrival_s: float, value: float, limits: QualityLimits
) -> tuple[dict[str, Any], list[str]]:
    """Fold one reading into its stream's state: the new state and the stream's current issues.

    A stream that reports again is no longer ``missing``. Issues that newly appear are counted
    in ``counts`` (the daily summary); ``state`` is not touched, the state is returned anew.
    """
    # a shallow copy: the fields set are numbers and fresh lists; ``counts``, the one nested
    # dict, is copied by _set_issues only when an issue begins
    s = _completed(state)
    _fold_into(s, quantity_of(stream), event_s, arrival_s, value, limits)
    return s, list(s["issues"])


def _set_issues(s: dict[str, Any], found: set[str]) -> dict[str, Any]:
    """``s`` with ``found`` as its issues; an issue that begins is counted in a copy of
    ``counts`` (never in the caller's)."""
    if not found:
        if s["issues"]:
            s["issues"] = []
        return s
    began = found.difference(s["issues"])
    if began:
        counts = dict(s["counts"])
        for issue in began:
            counts[issue] = counts.get(issue, 0) + 1
        s["counts"] = counts
    s["issues"] = sorted(found)
    return s


def check_missing(state: dict[str, Any], arrival_now_s: float, limits: QualityLimits, last_arrival_s: float) -> dict[str, Any]:
    """Mark (or keep) ``missing`` when nothing arrived for ``missing_after`` intervals."""
    silent = arrival_now_s - last_arrival_s > limits.missing_after * limits.expected_interval_s
    issues = set(state.get("issues", []))
    if silent:
        return _set_issues(dict(state), issues | {"missing"})
    return state if "missing" not in issues else {**state, "issues": sorted(issues - {"missing"})}


def summary(states: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """The daily summary: per issue how many streams have it now and how often it began."""
    now = {k: sum(1 for s in states.values() if k in s.get("issues", [])) for k in ISSUES}
    began = {k: sum(int(s.get("counts", {}).get(k, 0)) for s in states.values()) for k in ISSUES}
    return {"streams": len(states), "degraded_now": now, "began": began}


@functools.lru_cache(maxsize=1 << 17)
def detector_streams(intersection_id: str, detector_id: str) -> tuple[str, str, str, str]:
    """The ids of one detector's four streams, one per quantity of ``DETECTOR_QUANTITIES`` (made
    once per detector, not four f-strings per detector and frame: a city's 100,000 fit)."""
    base = f"intersection/{intersection_id}/{detector_id}"
    count, occupancy, speed, queue = (f"{base}/{q}" for q in DETECTOR_QUANTITIES)
    return count, occupancy, speed, queue


def frame_streams(intersection_id: str, interval_s: float, detectors: Sequence[Mapping[str, Any]]) -> dict[str, float]:
    """One detector frame as stream values (count as a rate, so intervals of any length compare)."""
    out: dict[str, float] = {}
    for d in detectors:
        count, occupancy, speed, queue = detector_streams(intersection_id, d["detector_id"])
        out[count] = d["count"] / interval_s
        out[occupancy] = d["occupancy"]
        if d.get("speed_kmh") is not None:
            out[speed] = float(d["speed_kmh"])
        if d.get("queue_veh") is not None:
            out[queue] = float(d["queue_veh"])
    return out


def degraded_inputs(states: Mapping[str, Mapping[str, Any]], prefix: str) -> dict[str, list[str]]:
    """The streams under ``prefix`` (e.g. ``intersection/K12/``) with issues: for explanations."""
    return {k: list(s["issues"]) for k, s in sorted(states.items()) if k.startswith(prefix) and s.get("issues")}


class DataQualityState:
    """Every stream's state in one object: what the agent keeps and what explanations replay."""

    def __init__(self, limits: QualityLimits | None = None) -> None:
        self.limits = limits or QualityLimits()
        self.streams: dict[str, dict[str, Any]] = {}
        self.last_arrival: dict[str, float] = {}
        # per source (the stream id's first part): kept as streams change, so the metrics need
        # no pass over every stream (a city has ~100,000; a pass per second took 13-18 % of a
        # telemetry worker)
        self._streams_of: dict[str, int] = {}
        self._degraded: dict[tuple[str, str], int] = {}
        self._began: dict[tuple[str, str], int] = {}

    def observe(self, stream: str, event_s: float, arrival_s: float, value: float) -> list[str]:
        """Fold one reading; the stream's issues now."""
        return list(self.fold(stream, quantity_of(stream), event_s, arrival_s, value))

    def fold(self, stream: str, quantity: str, event_s: float, arrival_s: float, value: float) -> Sequence[str]:
        """``observe`` for the hot path (48 readings per frame of 12 detectors): the stream's
        state is this object's own, so it is updated in place instead of copied per reading
        (half the watch's cost). Returns the stream's issues as kept in its state: read them,
        never change them (a new list replaces them when they change)."""
        s = self.streams.get(stream)
        if s is None or len(s) != _FIELDS:
            before = s
            s = self.streams[stream] = _completed(s)
            _fold_into(s, quantity, event_s, arrival_s, value, self.limits)
            self._account(stream, before, s)
        else:
            was_issues, was_counts = s["issues"], s["counts"]
            _fold_into(s, quantity, event_s, arrival_s, value, self.limits)
            if s["issues"] is not was_issues or s["counts"] is not was_counts:
                self._account(stream, {"issues": was_issues, "counts": was_counts}, s)
        self.last_arrival[stream] = arrival_s
        issues: list[str] = s["issues"]
        return issues

    def tick(self, now_s: float) -> None:
        """The timer: streams silent too long become ``missing``."""
        for stream, state in self.streams.items():
            after = check_missing(state, now_s, self.limits, self.last_arrival.get(stream, now_s))
            if after is not state:
                self.streams[stream] = after
                self._account(stream, state, after)

    def _account(self, stream: str, before: Mapping[str, Any] | None, after: Mapping[str, Any]) -> None:
        """The per-source tallies after one stream's state changed from ``before`` to ``after``."""
        source = stream.split("/", 1)[0]
        if before is None:
            self._streams_of[source] = self._streams_of.get(source, 0) + 1
        was: Sequence[str] = before.get("issues", ()) if before else ()
        now: Sequence[str] = after.get("issues", ())
        if was is not now and list(was) != list(now):
            for issue in set(was).symmetric_difference(now):
                key = (source, issue)
                self._degraded[key] = self._degraded.get(key, 0) + (1 if issue in now else -1)
        counted: Mapping[str, int] = before.get("counts", {}) if before else {}
        counts: Mapping[str, int] = after.get("counts", {})
        if counts is not counted:
            for issue, n in counts.items():
                if n != counted.get(issue, 0):
                    key = (source, issue)
                    self._began[key] = self._began.get(key, 0) + int(n) - int(counted.get(issue, 0))

    def stream_count(self, source: str) -> int:
        """Streams of ``source`` (``intersection``, ``pool``) seen so far."""
        return self._streams_of.get(source, 0)

    def degraded_count(self, source: str, issue: str) -> int:
        """Streams of ``source`` that have ``issue`` now."""
        return self._degraded.get((source, issue), 0)

    def began_count(self, source: str, issue: str) -> int:
        """How often ``issue`` began on a stream of ``source`` since the start."""
        return self._began.get((source, issue), 0)

    def degraded(self, prefix: str) -> dict[str, list[str]]:
        return degraded_inputs(self.streams, prefix)

    def summary(self) -> dict[str, Any]:
        return summary(self.streams)
