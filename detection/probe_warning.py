"""Early warning: a water probe's course turns unusual before the water leaves its legal band.

The legal limits (``water_rules``) alarm once the water *is* outside DIN 19643's band. A pump
that stops shows earlier, as a course the pool has not shown before: pH climbing at an hour it
usually holds, chlorine falling while the pool is quiet. The general detector
(``detection/adaptive.py``, the registry's ``default``: it learns each series' daily cycle, scale
and tail online, nothing tuned to pools) scores every reading of the parameters the dosing pumps
move; a score at or above ``threshold`` raises a **minor** alarm ``unusual_<parameter>`` ("check
the dosing"). It never clears itself: the detector stops finding a course unusual once it has
learnt it (its scores fell back while a stopped pump's pH went on climbing, in the unit test),
which says nothing about whether the pump runs again; the person on duty resolves it after
checking, and the water rules alarm the limit in any case.

Why minor and why a high threshold: this is advice to the person on duty, not a legal alarm,
and a warning that is mostly wrong teaches people to ignore the bell. The threshold was chosen
on the simulated city's pools (seed 1: the lowest of 0.6-0.9 with at most one false warning per
pool-month gives 0.8) and run once on two unseen seeds: 0 and 5 false warnings in 104 pool-days,
about a third to a half of the pump failures warned, 30-37 min median lead before the band
broke (docs/alarms.md, "Early warning"; ``leitstand bench probe-warning``).

What it does not do: warn during ``warmup_s`` after the pool's first reading (the detector needs
days to learn a daily cycle), judge a value the sensor-fault screen rejects (a spike or a frozen
probe is a ``sensor_*`` alarm of the water rules, not unusual water), or read a reading older
than the pool's newest (a device replaying old data would teach the detector a wrong past).
State per pool is a JSON-able dict, as the stream side keeps it in a table.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .adaptive import AdaptiveDetector
from .alarms import AlarmTrigger
from .pool_watch import PoolOutcome, fault_detector
from .water_rules import UNITS

#: what the dosing pumps move (chlorine pump: free chlorine and redox; acid pump: pH and redox)
WATCHED: tuple[str, ...] = ("free_chlorine", "ph", "redox")
KIND_PREFIX = "unusual_"

#: which pump to check first when a parameter's course turns unusual
ADVICE: dict[str, str] = {
    "free_chlorine": "check the chlorine dosing",
    "ph": "check the acid (pH) dosing",
    "redox": "check the chlorine and pH dosing",
}


NAMES: dict[str, str] = {"ph": "pH", "free_chlorine": "free chlorine", "redox": "redox"}


@dataclass(frozen=True)
class WarningLimits:
    threshold: float = 0.8
    warmup_s: float = 2 * 86_400.0
    calm_s: float = 3 * 3_600.0  # longer than the detector's alarm episode (150 readings) at one reading a minute
    watched: tuple[str, ...] = WATCHED

    def __post_init__(self) -> None:
        if not 0.0 < self.threshold <= 1.0:
            raise ValueError(f"the warning threshold is a score in (0, 1], not {self.threshold}")
        if self.warmup_s < 0 or self.calm_s <= 0:
            raise ValueError("warm-up must be >= 0 s and calm time > 0 s")
        unknown = [p for p in self.watched if p not in UNITS]
        if unknown:
            raise ValueError(f"cannot watch {', '.join(unknown)}: the pool parameters are {', '.join(UNITS)}")


def warning_kind(parameter: str) -> str:
    return f"{KIND_PREFIX}{parameter}"


class PoolWarnings:
    """One pool's warning state: a general detector and a sensor-fault screen per watched
    parameter, and the unusual stretches open. ``to_state`` / ``from_state`` give the JSON-able
    dict a table keeps; the stream side keeps the object between saves (at most one a minute)."""

    def __init__(self, limits: WarningLimits) -> None:
        self.limits = limits
        self.first: float | None = None
        self.last: float | None = None
        self.detectors: dict[str, AdaptiveDetector] = {}
        self.screens: dict[str, Any] = {}  # parameter -> SensorFaultDetector state
        self.open: dict[str, dict[str, float]] = {}  # parameter -> {"since", "high"}

    def observe(self, pool_id: str, at: float, values: Mapping[str, float]) -> PoolOutcome:
        """Fold one reading (canonical units): the warnings it raises or clears."""
        out = PoolOutcome()
        if not math.isfinite(at) or (self.last is not None and at <= self.last):
            return out  # a repeat or an older reading: nothing learnt, nothing said
        if self.first is None:
            self.first = at
        self.last = at
        warmed_up = at - self.first >= self.limits.warmup_s
        for parameter in self.limits.watched:
            value = values.get(parameter)
            if value is None or not math.isfinite(value):
                continue
            screen = fault_detector(parameter, self.screens)
            rejected = screen.check(at, value)
            if rejected != "impossible_jump":  # as the water rules: a spike must not become the reference
                self.screens[parameter] = screen.to_state()
            if rejected is not None:
                continue
            det = self.detectors.get(parameter)
            if det is None:
                det = self.detectors[parameter] = AdaptiveDetector()
            score = det.score_one(at, value)
            det.learn_one(at, value)
            _judge(pool_id, parameter, at, value, score, warmed_up, self.open, self.limits, out)
        return out

    def to_state(self) -> dict[str, Any]:
        return {
            "first": self.first,
            "last": self.last,
            "detectors": {p: d.to_state() for p, d in self.detectors.items()},
            "faults": dict(self.screens),
            "open": {p: dict(s) for p, s in self.open.items()},
        }

    @classmethod
    def from_state(cls, state: Mapping[str, Any] | None, limits: WarningLimits) -> PoolWarnings:
        w = cls(limits)
        if state:
            w.first, w.last = state.get("first"), state.get("last")
            w.detectors = {p: AdaptiveDetector.from_state(s) for p, s in (state.get("detectors") or {}).items()}
            w.screens = dict(state.get("faults") or {})
            w.open = {p: dict(s) for p, s in (state.get("open") or {}).items()}
        return w


def _judge(
    pool_id: str,
    parameter: str,
    at: float,
    value: float,
    score: float,
    warmed_up: bool,
    open_: dict[str, dict[str, float]],
    limits: WarningLimits,
    out: PoolOutcome,
) -> None:
    """Raise once per unusual stretch; a stretch ends after ``calm_s`` without a score at the
    threshold, and the next one raises again (another occurrence while the alarm is open)."""
    stretch = open_.get(parameter)
    if score >= limits.threshold and warmed_up:
        if stretch is None:
            open_[parameter] = {"since": at, "high": at}
            out.triggers.append(_trigger(pool_id, parameter, at, value, score, limits))
        else:
            stretch["high"] = at
    elif stretch is not None and at - stretch["high"] >= limits.calm_s:
        del open_[parameter]  # the stretch is over; the alarm stays for a person to resolve (module doc)


def _trigger(pool_id: str, parameter: str, at: float, value: float, score: float, limits: WarningLimits) -> AlarmTrigger:
    name, unit = NAMES.get(parameter, parameter.replace("_", " ")), UNITS[parameter]
    return AlarmTrigger(
        pool_id,
        warning_kind(parameter),
        "minor",
        f"{at:.3f}",
        at,
        f"unusual {name} course ({value:g} {unit}, score {score:.2f}): {ADVICE.get(parameter, 'check the probe and the water treatment')}",
        {
            "parameter": parameter,
            "value": value,
            "unit": unit,
            "score": round(score, 4),
            "threshold": limits.threshold,
            "detector": "default",
        },
    )
