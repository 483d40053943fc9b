"""The streaming exceedance tail (detection.tail): its excess cap decides how fast large excesses
that keep coming back are accepted, and the cap survives a state round trip."""

from __future__ import annotations

import json
import random

from detection.seasonal import gaussian_abs_tail
from detection.tail import ExceedanceTail


def tail(cap: float) -> ExceedanceTail:
    rate0, excess0 = gaussian_abs_tail(2.0)
    return ExceedanceTail(2.0, 2000.0, rate0, excess0, excess_cap=cap)


def test_a_wider_cap_accepts_recurring_large_excesses_sooner() -> None:
    """A mature tail (3,000 Gaussian |z|) then the same 30-sigma statistic 30 times: the mean
    excess grows about twice as far with cap 5 as with cap 3, and the statistic scores lower."""
    rng = random.Random(3)
    zs = [abs(rng.gauss(0, 1)) for _ in range(3000)]
    narrow, wide = tail(3.0), tail(5.0)
    for t in (narrow, wide):
        for z in zs:
            t.learn(z)
    start = narrow.excess
    for _ in range(30):
        for t in (narrow, wide):
            t.learn(30.0)
    assert wide.excess - start > 1.8 * (narrow.excess - start)
    assert wide.score(30.0) < narrow.score(30.0)


def test_one_huge_excess_moves_neither_far() -> None:
    for cap in (3.0, 5.0):
        t = tail(cap)
        before = t.excess
        t.learn(1e9)
        assert t.excess <= before * (1.0 + cap)  # folded in at most cap mean excesses wide


def test_the_cap_survives_a_round_trip_and_the_default_state_is_unchanged() -> None:
    t = tail(5.0)
    t.learn(7.0)
    again = ExceedanceTail.from_state(json.loads(json.dumps(t.to_state())))
    assert again.excess_cap == 5.0 and again.to_state() == t.to_state()
    assert "excess_cap" not in tail(3.0).to_state()  # states of detectors on the default cap stay as they were
