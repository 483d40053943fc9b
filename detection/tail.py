"""How rare is a deviation of this size *for this series*? A streaming peaks-over-threshold tail.

A robust z-score means different things on different sensors: travel times have heavy right
tails, speeds have light ones. One threshold for many series needs scores with one meaning, so
each detector passes its deviation statistic through ``ExceedanceTail``: the fraction of past
statistics above ``u`` and an exponential fit of the excesses over ``u`` (the peaks-over-threshold
model of extreme value theory, as in Siffer et al., KDD 2017, "SPOT") give the probability of
seeing a statistic at least this large; the score is a monotone squash of that probability.

Learning is robust: an excess is folded in at most ``excess_cap`` mean excesses wide (3 unless a
detector says otherwise), so one huge event does not teach the tail that huge events are normal;
the wider the cap, the faster a tail accepts large excesses that keep coming back.
"""

from __future__ import annotations

import math
from typing import Any

_EXCESS_CAP = 3.0


class ExceedanceTail:
    """Tail probability of a non-negative statistic, learned online.

    ``u``: where the tail starts (in the statistic's units); ``memory``: how many past
    statistics the exceedance rate remembers; ``rate0``/``excess0``: the prior (what a Gaussian
    |z| would give), weighted like ``prior_n`` observations so a young tail is not overconfident.
    """

    def __init__(
        self,
        u: float,
        memory: float,
        rate0: float,
        excess0: float,
        prior_n: float = 50.0,
        squash: float = 8.0,
        excess_cap: float = _EXCESS_CAP,
    ) -> None:
        self.u = u
        self.excess_cap = excess_cap
        self.memory = memory
        self.squash = squash
        self.n = prior_n  # effective observation count (prior included)
        self.rate = rate0
        self.excess = excess0
        self.n_exc = prior_n * rate0  # effective exceedance count

    def p_value(self, stat: float) -> float:
        """P(statistic >= stat) under the learned tail; 1 in the bulk, linear down to the tail."""
        if stat <= self.u:
            return 1.0 - (1.0 - self.rate) * max(stat, 0.0) / self.u
        return self.rate * math.exp(-(stat - self.u) / self.excess)

    def score(self, stat: float) -> float:
        """``1 - p ** (1 / squash)``: 0 for unremarkable, towards 1 for ever rarer (never saturating
        at moderate p, so a corpus threshold can still tell a 1e-6 event from a 1e-12 one)."""
        if stat != stat:  # NaN
            return 0.0
        if stat <= self.u:
            return 1.0 - self.p_value(stat) ** (1.0 / self.squash)
        # in log space: exp(-(stat - u) / excess) underflows for huge statistics
        log_p = math.log(self.rate) - (stat - self.u) / self.excess
        return -math.expm1(log_p / self.squash)

    def learn(self, stat: float) -> None:
        if stat != stat:
            return
        a = 1.0 / min(self.n + 1.0, self.memory)
        self.n += 1.0
        exceeded = stat > self.u
        self.rate += a * ((1.0 if exceeded else 0.0) - self.rate)
        if exceeded:
            b = 1.0 / min(self.n_exc + 1.0, self.memory * 0.1 + 1.0)
            self.n_exc += 1.0
            e = min(stat - self.u, self.excess_cap * self.excess)
            self.excess += b * (e - self.excess)
        self.rate = min(max(self.rate, 1e-6), 1.0)

    def to_state(self) -> dict[str, Any]:
        st = {
            "u": self.u,
            "memory": self.memory,
            "squash": self.squash,
            "n": self.n,
            "rate": self.rate,
            "excess": self.excess,
            "n_exc": self.n_exc,
        }
        if self.excess_cap != _EXCESS_CAP:  # states of the detectors that keep the default stay as they were
            st["excess_cap"] = self.excess_cap
        return st

    @classmethod
    def from_state(cls, s: dict[str, Any]) -> ExceedanceTail:
        tail = cls(s["u"], s["memory"], s["rate"], s["excess"], squash=s["squash"], excess_cap=s.get("excess_cap", _EXCESS_CAP))
        tail.n, tail.n_exc = s["n"], s["n_exc"]
        return tail
