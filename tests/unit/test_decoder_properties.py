"""Property tests: no input, however broken, makes a decoder raise; each yields a record or a reason."""

from __future__ import annotations

import time

import json
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streams.codec import DecodeFailure, RawMessage, decode_batch, decoder_for
from streams.records import INPUT_RECORDS, Record, encode

NOW = time.time()
DECODERS = {topic: decoder_for(topic) for topic in INPUT_RECORDS}
REASON_CODES = {
    "oversize", "empty", "not_json", "missing_field", "out_of_range", "unknown_version",
    "invalid", "clock_skew", "key_mismatch", "internal",
}

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=20), children, max_size=6),
    max_leaves=30,
)


def _check(out: object, topic: str) -> None:
    if isinstance(out, DecodeFailure):
        assert out.code in REASON_CODES
        assert out.code != "internal", out  # an internal failure would be a decoder bug
        assert out.reason
    else:
        assert isinstance(out, INPUT_RECORDS[topic])
        # a record that decoded re-encodes to something that decodes to the same record
        again = DECODERS[topic].decode(encode(out), now=NOW)
        assert again == out


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(topic=st.sampled_from(sorted(INPUT_RECORDS)), raw=st.binary(max_size=2_000))
def test_arbitrary_bytes_never_raise(topic: str, raw: bytes) -> None:
    _check(DECODERS[topic].decode(raw, now=NOW), topic)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(topic=st.sampled_from(sorted(INPUT_RECORDS)), value=json_values)
def test_arbitrary_json_never_raises(topic: str, value: object) -> None:
    _check(DECODERS[topic].decode(json.dumps(value).encode(), now=NOW), topic)


_frame_fields = st.fixed_dictionaries(
    {
        "schema_version": st.sampled_from([1, 1, 1, 2, "1", None]),
        "event_time": st.sampled_from(
            ["2026-11-25T10:00:00Z", time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(NOW)), "yesterday", 17, None]
        ),
        "intersection_id": st.text(max_size=70) | st.integers(),
        "interval_s": st.floats(allow_nan=False, allow_infinity=False, min_value=-10, max_value=2000) | st.text(max_size=3),
        "detectors": st.lists(
            st.fixed_dictionaries(
                {
                    "detector_id": st.text(min_size=0, max_size=5),
                    "count": st.integers(-5, 20_000) | st.floats(allow_nan=False) | st.booleans(),
                    "occupancy": st.floats(allow_nan=False, min_value=-1, max_value=2),
                },
                optional={
                    "speed_kmh": st.none() | st.floats(allow_nan=False, min_value=-10, max_value=400),
                    "queue_veh": st.none() | st.floats(allow_nan=False),
                },
            ),
            max_size=4,
        ),
    }
)


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(fields=_frame_fields, key=st.none() | st.binary(max_size=10))
def test_near_valid_frames_either_decode_validly_or_fail_with_reason(fields: dict, key: bytes | None) -> None:
    out = DECODERS["sensors.intersection"].decode(json.dumps(fields).encode(), now=NOW, key=key)
    _check(out, "sensors.intersection")
    if isinstance(out, Record):  # what passes, holds the physical invariants
        assert out.interval_s > 0
        for d in out.detectors:
            assert 0 <= d.occupancy <= 1 and d.count >= 0


@settings(max_examples=100)
@given(raws=st.lists(st.binary(max_size=200), max_size=30))
def test_batches_split_without_loss(raws: list[bytes]) -> None:
    msgs = [RawMessage("t", 0, i, None, r) for i, r in enumerate(raws)]
    batch = decode_batch(DECODERS["sensors.intersection"], msgs, now=NOW)
    assert len(batch.records) + len(batch.dead) == len(raws)
    for dl in batch.dead:
        assert dl.source_topic == "t" and dl.reason and 0 <= dl.offset < len(raws)
