"""The synthetic frame source is deterministic, valid, and has the intended daily shape."""

from __future__ import annotations

import random
import time
from datetime import datetime, timezone

from simulators.city.frames import MALFORMED_KINDS, demand_factor, frames, malformed
from streams.codec import DecodeFailure, TopicDecoder
from streams.records import IntersectionFrame, encode

START = datetime(2026, 11, 23, 0, 0, tzinfo=timezone.utc)  # a Monday


def test_same_seed_same_bytes_other_seed_other_bytes() -> None:
    a = [encode(f) for f in frames(intersections=3, start=START, interval_s=60, steps=30, seed=7)]
    b = [encode(f) for f in frames(intersections=3, start=START, interval_s=60, steps=30, seed=7)]
    c = [encode(f) for f in frames(intersections=3, start=START, interval_s=60, steps=30, seed=8)]
    assert a == b and a != c


def test_frames_pass_validation() -> None:
    dec = TopicDecoder(IntersectionFrame, clock_skew_s=1e10)
    for f in frames(intersections=5, start=START.replace(hour=7), interval_s=15, steps=40, seed=1):
        assert isinstance(dec.decode(encode(f), now=time.time()), IntersectionFrame)


def test_weekday_peaks_and_quiet_nights_and_weekends() -> None:
    def at(day: int, hour: int) -> float:
        return demand_factor(datetime(2026, 11, day, hour, 0, tzinfo=timezone.utc))

    assert at(24, 8) > 3 * at(24, 3)
    assert at(24, 17) > 2 * at(24, 11) * 0.9
    assert at(28, 8) < 0.6 * at(24, 8)  # Saturday morning vs Tuesday morning


def test_malformed_variants_are_refused() -> None:
    dec = TopicDecoder(IntersectionFrame, clock_skew_s=1e10)
    valid = encode(next(frames(intersections=1, start=START, interval_s=60, steps=1, seed=1)))
    rng = random.Random(0)
    for kind in MALFORMED_KINDS:
        assert isinstance(dec.decode(malformed(kind, valid, rng), now=time.time()), DecodeFailure), kind
