"""The pipeline benchmark's bad input: the share asked for, and each bad record refused by the
real decoder with the reason it is counted under."""

from __future__ import annotations

import time

from hypothesis import given, settings
from hypothesis import strategies as st

from simulators.harness.bench import BENCH_MAX_RECORD_BYTES, _frames_bytes, with_bad_records
from streams.codec import DecodeFailure, TopicDecoder
from streams.records import IntersectionFrame

CLEAN = _frames_bytes(600, 4, 50)


@settings(max_examples=25, deadline=None)
@given(share=st.floats(0.0, 0.5), seed=st.integers(0, 1000))
def test_bad_records_are_refused_with_the_reason_they_are_counted_under(share: float, seed: int) -> None:
    mixed, counts = with_bad_records(CLEAN, share, BENCH_MAX_RECORD_BYTES, seed)
    assert len(mixed) == len(CLEAN)
    assert sum(counts.values()) == round(len(CLEAN) * share)
    decoder = TopicDecoder(IntersectionFrame, max_bytes=BENCH_MAX_RECORD_BYTES, clock_skew_s=1e12)
    refused: dict[str, int] = {}
    for key, value in mixed:
        out = decoder.decode(value, now=time.time(), key=key)
        if isinstance(out, DecodeFailure):
            refused[out.code] = refused.get(out.code, 0) + 1
    assert refused == counts
