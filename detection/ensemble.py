"""Combining detectors, one alarm per incident (the named detectors are in ``detection.registry``).

The default detector is the combination the benchmark evidence chose (docs/detection.md):

* a **daily-profile residual** (``SeasonalResidualDetector``): unusual for this hour of the day;
* a **local-level residual** (the same detector with one slot per day, i.e. an exponentially
  weighted level over the last ``~64`` readings): unusual compared with the last few hours,
  which catches the first minutes of an incident whatever the time of day and is what
  still works while the daily profile is young;
* **alarm episodes** (``AlarmEpisodes``): after a reading scored ``s``, the next
  ``episode_s`` seconds only score in full when they are worse than ``s``; otherwise they are
  damped. One jam is one alarm, not thirty, but a jam that gets worse alarms again.

Both residual scores are tail probabilities of the series' own history, so the max of the two
means "the more surprising of the two views".
"""

from __future__ import annotations

import math
from typing import Any

from .base import Detector, DetectorClass, clamp, usable
from .changepoint import LevelShiftDetector
from .seasonal import DAY_S, SeasonalResidualDetector
from .sensor_faults import SensorFaultDetector


class MaxOf:
    """The most surprised of several detectors (their scores share a meaning: tail probability)."""

    kind = "max_of"

    def __init__(self, members: list[Detector], name: str = "max_of") -> None:
        self.name = name
        self.members = members

    def score_one(self, t: float, x: float) -> float:
        return max(m.score_one(t, x) for m in self.members)

    def learn_one(self, t: float, x: float) -> None:
        for m in self.members:
            m.learn_one(t, x)

    def to_state(self) -> dict[str, Any]:
        return {"kind": self.kind, "name": self.name, "members": [m.to_state() for m in self.members]}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> MaxOf:
        return cls([_restore(s) for s in state["members"]], state["name"])


class AlarmEpisodes:
    """Damp repeats within an incident: score in full only the onset and any escalation.

    A reading scores in full when no reading in the last ``episode_s`` seconds scored higher;
    otherwise its score is multiplied by ``damp``. Causal and monotone per reading, so a threshold
    still means the same thing; what changes is that a long event costs one alarm.
    """

    kind = "alarm_episodes"

    def __init__(self, inner: Detector, episode_s: float = 3600.0, damp: float = 0.5, name: str | None = None) -> None:
        self.inner = inner
        self.episode_s = episode_s
        self.damp = damp
        self.name = name or inner.name
        self.peak = 0.0
        self.peak_t = -math.inf
        self.newest_t = -math.inf
        self._memo: tuple[float, float, float] | None = None  # (t, x, raw) of the last score_one

    def _raw(self, t: float, x: float) -> float:
        memo = self._memo
        if memo is not None and memo[0] == t and memo[1] == x:
            return memo[2]
        raw = self.inner.score_one(t, x)
        self._memo = (t, x, raw)
        return raw

    def _fresh(self, t: float, raw: float) -> bool:
        return raw > self.peak or t - self.peak_t > self.episode_s

    def score_one(self, t: float, x: float) -> float:
        raw = self._raw(t, x)
        if not usable(t, x, self.newest_t):
            return raw
        return raw if self._fresh(t, raw) else raw * self.damp

    def learn_one(self, t: float, x: float) -> None:
        if usable(t, x, self.newest_t):
            raw = self._raw(t, x)
            if self._fresh(t, raw):
                self.peak, self.peak_t = raw, t
            self.newest_t = t
        self._memo = None
        self.inner.learn_one(t, x)

    def to_state(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "name": self.name,
            "episode_s": self.episode_s,
            "damp": self.damp,
            "inner": self.inner.to_state(),
            "peak": [self.peak, self.peak_t if math.isfinite(self.peak_t) else None],
            "newest_t": self.newest_t if math.isfinite(self.newest_t) else None,
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> AlarmEpisodes:
        d = cls(_restore(state["inner"]), state["episode_s"], state["damp"], state["name"])
        d.peak = state["peak"][0]
        d.peak_t = -math.inf if state["peak"][1] is None else state["peak"][1]
        d.newest_t = -math.inf if state["newest_t"] is None else state["newest_t"]
        return d


class RollingZScore:
    """The textbook baseline: |x - mean| / std over an exponentially weighted window, squashed.

    Not robust, not seasonal; kept as the yardstick the other detectors must beat.
    """

    kind = "zscore"

    def __init__(self, memory: float = 288.0) -> None:
        self.name = self.kind
        self.memory = memory
        self.n = 0.0
        self.mean = 0.0
        self.var = 0.0
        self.newest_t = -math.inf

    def score_one(self, t: float, x: float) -> float:
        if not usable(t, x, self.newest_t) or self.n < 2:
            return 0.0
        z = abs(clamp(x) - self.mean) / math.sqrt(self.var + 1e-12)
        return 1.0 - math.exp(-z / 4.0) if z == z else 0.0

    def learn_one(self, t: float, x: float) -> None:
        if not usable(t, x, self.newest_t):
            return
        a = 1.0 / min(self.n + 1.0, self.memory)
        d = clamp(x) - self.mean
        self.mean += a * d
        self.var = (1.0 - a) * (self.var + a * d * d)
        self.n += 1.0
        self.newest_t = t

    def to_state(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "memory": self.memory,
            "n": self.n,
            "mean": self.mean,
            "var": self.var,
            "newest_t": self.newest_t if math.isfinite(self.newest_t) else None,
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> RollingZScore:
        d = cls(state["memory"])
        d.n, d.mean, d.var = state["n"], state["mean"], state["var"]
        d.newest_t = -math.inf if state["newest_t"] is None else state["newest_t"]
        return d


def default_detector() -> AlarmEpisodes:
    """Daily-profile residual + local-level residual, one alarm per episode (see module doc)."""
    return AlarmEpisodes(
        MaxOf([SeasonalResidualDetector(), SeasonalResidualDetector(period_s=DAY_S, slot_s=DAY_S)], name="default"),
        name="default",
    )


#: every detector class by its ``kind``: what a stored state is rebuilt with
_DETECTOR_CLASSES: tuple[DetectorClass, ...] = (
    SeasonalResidualDetector,
    LevelShiftDetector,
    SensorFaultDetector,
    RollingZScore,
    MaxOf,
    AlarmEpisodes,
)
CLASSES: dict[str, DetectorClass] = {cls.kind: cls for cls in _DETECTOR_CLASSES}


def _restore(state: dict[str, Any]) -> Detector:
    """A member detector from its state (``detection.registry.restore`` is the public one)."""
    return CLASSES[state["kind"]].from_state(state)
