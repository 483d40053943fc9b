"""Property tests: no input, however broken, makes a decoder raise; each yields a record or a reason;
every dead letter fits on the topic and decodes back. Fuzz tests: ``budget(n)`` keeps CI short,
``scripts/fuzz`` runs them longer."""

from __future__ import annotations

import json
import time

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from streams.codec import DEADLETTER_MAX_BYTES, DecodeFailure, RawMessage, dead_letter, decode_batch, decoder_for
from streams.records import INPUT_RECORDS, DeadLetter, IntersectionFrame, encode
from tests.fuzzing import budget

pytestmark = pytest.mark.fuzz

NOW = time.time()
DECODERS = {topic: decoder_for(topic) for topic in INPUT_RECORDS}
REASON_CODES = {
    "oversize",
    "empty",
    "not_json",
    "missing_field",
    "out_of_range",
    "unknown_version",
    "invalid",
    "clock_skew",
    "key_mismatch",
    "key_missing",
    "internal",
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


@budget(200)
@given(topic=st.sampled_from(sorted(INPUT_RECORDS)), raw=st.binary(max_size=2_000))
def test_arbitrary_bytes_never_raise(topic: str, raw: bytes) -> None:
    _check(DECODERS[topic].decode(raw, now=NOW), topic)


@budget(200)
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


@budget(200)
@given(fields=_frame_fields, key=st.none() | st.binary(max_size=10))
def test_near_valid_frames_either_decode_validly_or_fail_with_reason(fields: dict, key: bytes | None) -> None:
    out = DECODERS["sensors.intersection"].decode(json.dumps(fields).encode(), now=NOW, key=key)
    _check(out, "sensors.intersection")
    if isinstance(out, IntersectionFrame):  # what passes, holds the physical invariants
        assert out.interval_s > 0
        for d in out.detectors:
            assert 0 <= d.occupancy <= 1 and d.count >= 0


@budget(60)
@given(raws=st.lists(st.binary(max_size=200), max_size=30))
def test_batches_split_without_loss(raws: list[bytes]) -> None:
    msgs = [RawMessage("t", 0, i, None, r) for i, r in enumerate(raws)]
    batch = decode_batch(DECODERS["sensors.intersection"], msgs, now=NOW)
    assert len(batch.records) + len(batch.dead) == len(raws)
    for dl in batch.dead:
        assert dl.source_topic == "t" and dl.reason and 0 <= dl.offset < len(raws)


def _check_dead_letter(msg: RawMessage, failure: DecodeFailure) -> None:
    wire = encode(dead_letter(msg, failure, NOW))
    assert len(wire) < DEADLETTER_MAX_BYTES < 1_000_000
    back = msgspec.json.decode(wire, type=DeadLetter)
    assert (back.partition, back.offset) == (msg.partition, msg.offset)
    assert back.raw_size == len(msg.value or b"")


#: large inputs: a repeated chunk (cheap to generate) up to twice the record limit, JSON-ish or binary
_big = st.builds(
    lambda chunk, n, head: head + chunk * n,
    st.binary(min_size=1, max_size=64) | st.sampled_from([b"x", b'{"a":', b"\x00\xff", "\u202e".encode()]),
    st.integers(0, 40_000),
    st.sampled_from([b"", b'{"schema_version":1,"detectors":[', b"\xef\xbb\xbf"]),
)


@budget(40)
@given(
    topic=st.sampled_from(sorted(INPUT_RECORDS)),
    value=st.none() | st.binary(max_size=3_000) | _big,
    key=st.none() | st.binary(max_size=100) | _big,
    reason=st.text(max_size=3_000),
)
def test_every_dead_letter_fits_and_decodes_back(topic: str, value: bytes | None, key: bytes | None, reason: str) -> None:
    out = DECODERS[topic].decode(value, now=NOW, key=key)
    _check(out, topic)
    msg = RawMessage(topic, 0, 7, key, value)
    _check_dead_letter(msg, out if isinstance(out, DecodeFailure) else DecodeFailure("internal", reason))
    _check_dead_letter(msg, DecodeFailure("internal", reason * 50))


@pytest.mark.parametrize("size", [999_999, 1_000_001, 2_000_000])
def test_oversize_and_huge_inputs_fail_cheaply_and_dead_letter_small(size: int) -> None:
    value = b'{"schema_version":1' + b" " * (size - 20) + b"}"
    for topic, decoder in DECODERS.items():
        out = decoder.decode(value, now=NOW, key=b"K1")
        assert isinstance(out, DecodeFailure)
        assert out.code == ("oversize" if size > 1_000_000 else "missing_field"), (topic, out)
        _check_dead_letter(RawMessage(topic, 0, 1, b"K1", value), out)
