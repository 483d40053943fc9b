"""Robust seasonal residuals: what is unusual for *this hour of the day* on this sensor.

Traffic is dominated by the daily cycle (rush hours), so a reading is judged against a profile
of its time-of-day slot, learned online: per slot a location and a scale, updated with the
residual clipped at ``clip`` scales (a Huber-type recursive M-estimate), so an incident does not
drag the profile towards itself. Until a slot has seen ``min_visits`` readings it borrows a
fast global level and scale, which makes the detector useful from the first hours on.

``SeasonalResidualDetector`` scores ``|z|`` through the series' own learned tail
(``ExceedanceTail``), so a z of 4 on a heavy-tailed travel time counts less than on a speed.
"""

from __future__ import annotations

import math
from typing import Any

from .base import clamp, usable
from .tail import ExceedanceTail

DAY_S = 86_400.0
_GAUSS_MAD = 1.2533  # sigma / mean absolute deviation of a Gaussian


class SeasonalProfile:
    """Online per-slot robust location and scale; ``z(t, x)`` is the standardised residual.

    ``period_s``: the season (a day); ``slot_s``: slot width (an hour: traffic regimes change on
    that scale); ``memory``: visits a slot remembers (~ a week of 5-minute readings per hour slot
    is 84); ``clip``: residuals beyond this many scales count as this many.
    """

    def __init__(
        self, period_s: float = DAY_S, slot_s: float = 3600.0, memory: float = 64.0, clip: float = 3.0, min_visits: int = 3
    ) -> None:
        self.period_s = period_s
        self.slot_s = slot_s
        self.memory = memory
        self.clip = clip
        self.min_visits = min_visits
        n_slots = max(1, int(round(period_s / slot_s)))
        self.n = [0.0] * n_slots
        self.loc = [0.0] * n_slots
        self.mad = [0.0] * n_slots
        self.g_n = 0.0
        self.g_loc = 0.0
        self.g_mad = 0.0

    def slot(self, t: float) -> int:
        return int((t % self.period_s) // self.slot_s) % len(self.n)

    def expected(self, t: float) -> tuple[float, float]:
        """(location, scale) expected at ``t``: the slot's once it has enough visits."""
        k = self.slot(t)
        floor = 1e-9 + 1e-3 * abs(self.g_loc)
        g_scale = max(self.g_mad * _GAUSS_MAD, floor)
        if self.n[k] >= self.min_visits:
            return self.loc[k], max(self.mad[k] * _GAUSS_MAD, 0.25 * g_scale, floor)
        return self.g_loc, g_scale

    def z(self, t: float, x: float) -> float:
        """Standardised residual; 0 before anything was learned."""
        if self.g_n < 2:
            return 0.0
        loc, scale = self.expected(t)
        return (x - loc) / scale

    def learn(self, t: float, x: float) -> None:
        k = self.slot(t)
        # global fast level: a warm start and the fallback for young slots
        if self.g_n == 0:
            self.g_loc = x
        else:
            a = 1.0 / min(self.g_n + 1.0, 32.0)
            r = x - self.g_loc
            lim = self.clip * self.g_mad * _GAUSS_MAD if self.g_n >= 4 else abs(r)
            r_c = max(-lim, min(lim, r))
            self.g_loc += a * r_c
            self.g_mad += a * (abs(r_c) - self.g_mad)
        self.g_n += 1.0
        if self.n[k] == 0:
            self.loc[k] = x if self.g_n < 2 else self.g_loc + 0.5 * (x - self.g_loc)
            self.mad[k] = self.g_mad
        else:
            a = 1.0 / min(self.n[k] + 1.0, self.memory)
            lim = self.clip * max(self.mad[k], 0.25 * self.g_mad) * _GAUSS_MAD
            r = x - self.loc[k]
            r_c = max(-lim, min(lim, r))
            self.loc[k] += a * r_c
            self.mad[k] += a * (abs(r_c) - self.mad[k])
        self.n[k] += 1.0

    def to_state(self) -> dict[str, Any]:
        return {
            "period_s": self.period_s,
            "slot_s": self.slot_s,
            "memory": self.memory,
            "clip": self.clip,
            "min_visits": self.min_visits,
            "n": list(self.n),
            "loc": list(self.loc),
            "mad": list(self.mad),
            "g": [self.g_n, self.g_loc, self.g_mad],
        }

    @classmethod
    def from_state(cls, s: dict[str, Any]) -> SeasonalProfile:
        p = cls(s["period_s"], s["slot_s"], s["memory"], s["clip"], s["min_visits"])
        p.n, p.loc, p.mad = list(s["n"]), list(s["loc"]), list(s["mad"])
        p.g_n, p.g_loc, p.g_mad = s["g"]
        return p


def gaussian_abs_tail(u: float) -> tuple[float, float]:
    """(P(|Z| > u), mean excess over u) for a standard normal: the tail's prior."""
    rate = math.erfc(u / math.sqrt(2.0))
    return rate, 1.0 / u


class SeasonalResidualDetector:
    """Spikes and dips against the daily profile, scored by the series' own residual tail."""

    kind = "seasonal"

    def __init__(
        self, period_s: float = DAY_S, slot_s: float = 3600.0, memory: float = 64.0, tail_u: float = 2.0, tail_memory: float = 2000.0
    ) -> None:
        self.name = self.kind
        self.profile = SeasonalProfile(period_s, slot_s, memory)
        rate0, excess0 = gaussian_abs_tail(tail_u)
        self.tail = ExceedanceTail(tail_u, tail_memory, rate0, excess0)
        self.newest_t = -math.inf
        self._memo: tuple[float, float, float] | None = None  # (t, x, |z|): score then learn computes z once

    def _abs_z(self, t: float, x: float) -> float:
        memo = self._memo
        if memo is not None and memo[0] == t and memo[1] == x:
            return memo[2]
        z = abs(self.profile.z(t, x))
        self._memo = (t, x, z)
        return z

    def score_one(self, t: float, x: float) -> float:
        if not usable(t, x, self.newest_t):
            return 0.0
        return self.tail.score(self._abs_z(t, clamp(x)))

    def learn_one(self, t: float, x: float) -> None:
        if not usable(t, x, self.newest_t):
            return
        x = clamp(x)
        self.tail.learn(self._abs_z(t, x))
        self._memo = None
        self.profile.learn(t, x)
        self.newest_t = t

    def to_state(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "profile": self.profile.to_state(),
            "tail": self.tail.to_state(),
            "newest_t": self.newest_t if math.isfinite(self.newest_t) else None,
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> SeasonalResidualDetector:
        d = cls.__new__(cls)
        d.name = cls.kind
        d.profile = SeasonalProfile.from_state(state["profile"])
        d.tail = ExceedanceTail.from_state(state["tail"])
        d.newest_t = -math.inf if state["newest_t"] is None else state["newest_t"]
        d._memo = None
        return d
