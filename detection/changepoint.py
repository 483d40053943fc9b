"""Level shifts: a sustained move away from the daily profile, caught before any single reading
is extreme (a slow-building jam, a detector recalibrated, a lane closed).

Two-sided CUSUM (Page 1954) on the seasonal z-score: ``S+ = max(0, S+ + z - k)`` and the mirror
for drops. ``k`` is half the smallest shift worth catching (in scales). Each z is clipped to
``±z_clip`` first, so one spike, which the seasonal detector already reports, cannot raise a
level-shift alarm on its own; only persistence can. The statistic ``max(S+, S-)`` is scored
through the series' own tail like every other detector, so shifts are judged against how far
this sensor's CUSUM normally wanders.
"""

from __future__ import annotations

import math
from typing import Any

from .base import clamp, usable
from .seasonal import DAY_S, SeasonalProfile
from .tail import ExceedanceTail


class LevelShiftDetector:
    """CUSUM of seasonal residuals, scored by its own learned tail."""

    kind = "level_shift"

    def __init__(
        self,
        period_s: float = DAY_S,
        slot_s: float = 3600.0,
        memory: float = 64.0,
        k: float = 0.5,
        z_clip: float = 3.0,
        tail_u: float = 4.0,
        tail_memory: float = 2000.0,
    ) -> None:
        self.name = self.kind
        self.k = k
        self.z_clip = z_clip
        self.profile = SeasonalProfile(period_s, slot_s, memory)
        # prior: a CUSUM of unit-variance noise with k = 0.5 exceeds ~4 rarely, by ~1.5 on average
        self.tail = ExceedanceTail(tail_u, tail_memory, 0.02, 1.5)
        self.up = 0.0
        self.down = 0.0
        self.newest_t = -math.inf
        self._memo: tuple[float, float, tuple[float, float]] | None = None

    def _step(self, t: float, x: float) -> tuple[float, float]:
        memo = self._memo
        if memo is not None and memo[0] == t and memo[1] == x:
            return memo[2]
        z = max(-self.z_clip, min(self.z_clip, self.profile.z(t, x)))
        step = (max(0.0, self.up + z - self.k), max(0.0, self.down - z - self.k))
        self._memo = (t, x, step)
        return step

    def score_one(self, t: float, x: float) -> float:
        if not usable(t, x, self.newest_t):
            return 0.0
        up, down = self._step(t, clamp(x))
        return self.tail.score(max(up, down))

    def learn_one(self, t: float, x: float) -> None:
        if not usable(t, x, self.newest_t):
            return
        x = clamp(x)
        self.up, self.down = self._step(t, x)
        self._memo = None
        self.tail.learn(max(self.up, self.down))
        self.profile.learn(t, x)
        self.newest_t = t

    def to_state(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "k": self.k,
            "z_clip": self.z_clip,
            "profile": self.profile.to_state(),
            "tail": self.tail.to_state(),
            "cusum": [self.up, self.down],
            "newest_t": self.newest_t if math.isfinite(self.newest_t) else None,
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> LevelShiftDetector:
        d = cls.__new__(cls)
        d.name = cls.kind
        d.k, d.z_clip = state["k"], state["z_clip"]
        d.profile = SeasonalProfile.from_state(state["profile"])
        d.tail = ExceedanceTail.from_state(state["tail"])
        d.up, d.down = state["cusum"]
        d.newest_t = -math.inf if state["newest_t"] is None else state["newest_t"]
        d._memo = None
        return d
