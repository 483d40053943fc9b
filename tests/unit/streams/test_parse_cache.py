"""The parse shared by every decoder of one record type: the same outcome as a fresh parse,
each decoder's own checks still applied, bounded memory."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams import codec
from streams.codec import DecodeFailure, TopicDecoder
from streams.records import DetectorReading, IntersectionFrame, encode

NOW = datetime(2026, 6, 1, 12, tzinfo=timezone.utc)


def _frame(iid: str, at: datetime) -> bytes:
    det = DetectorReading(detector_id="D1", count=3, occupancy=0.2)
    return encode(IntersectionFrame(schema_version=1, event_time=at, intersection_id=iid, interval_s=15.0, detectors=[det]))


def _fresh(value: bytes) -> object:
    """What an uncached parse gives: the record, or the failure code."""
    try:
        return msgspec.json.decode(value, type=IntersectionFrame)
    except (msgspec.ValidationError, msgspec.DecodeError):
        return "failure"


@settings(max_examples=200, deadline=None)
@given(value=st.one_of(st.binary(min_size=1, max_size=200), st.sampled_from([_frame("INT-1", NOW), _frame("INT-2", NOW)])))
def test_cached_outcome_equals_a_fresh_parse(value: bytes) -> None:
    decoder = TopicDecoder(IntersectionFrame, clock_skew_s=1e12)
    for _ in range(2):  # the second decode is served by the cache
        out = decoder.decode(value, now=NOW.timestamp())
        expected = _fresh(value)
        if expected == "failure":
            assert isinstance(out, DecodeFailure)
        else:
            assert out == expected


def test_each_decoder_applies_its_own_limits_to_a_shared_parse() -> None:
    skewed = _frame("INT-1", NOW - timedelta(days=2))
    lenient = TopicDecoder(IntersectionFrame, clock_skew_s=1e12)
    strict = TopicDecoder(IntersectionFrame, clock_skew_s=3600.0)
    small = TopicDecoder(IntersectionFrame, clock_skew_s=1e12, max_bytes=16)
    assert isinstance(lenient.decode(skewed, now=NOW.timestamp()), IntersectionFrame)
    refused = strict.decode(skewed, now=NOW.timestamp())
    assert isinstance(refused, DecodeFailure) and refused.code == "clock_skew"
    too_big = small.decode(skewed, now=NOW.timestamp())
    assert isinstance(too_big, DecodeFailure) and too_big.code == "oversize"
    wrong_key = lenient.decode(skewed, now=NOW.timestamp(), key=b"INT-9")
    assert isinstance(wrong_key, DecodeFailure) and wrong_key.code == "key_mismatch"


def test_the_cache_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(codec, "PARSE_CACHE_ENTRIES", 50)
    monkeypatch.setattr(codec._Parses.of(IntersectionFrame), "_seen", {})
    decoder = TopicDecoder(IntersectionFrame, clock_skew_s=1e12)
    for i in range(500):
        assert isinstance(decoder.decode(_frame(f"INT-{i}", NOW), now=NOW.timestamp()), IntersectionFrame)
    assert len(codec._Parses.of(IntersectionFrame)._seen) <= 50


def test_the_cache_holds_a_bounded_number_of_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    parses = codec._Parses.of(IntersectionFrame)
    monkeypatch.setattr(parses, "_seen", {})
    monkeypatch.setattr(parses, "_bytes", 0)
    monkeypatch.setattr(codec, "PARSE_CACHE_BUDGET_BYTES", 2_000)
    decoder = TopicDecoder(IntersectionFrame, clock_skew_s=1e12)
    for i in range(200):
        assert isinstance(decoder.decode(_frame(f"INT-{i}", NOW), now=NOW.timestamp()), IntersectionFrame)
    assert 0 < parses._bytes == sum(len(v) for v in parses._seen) <= 2_000
