"""Issue 10 #1 (a): a dead letter always fits, says when it is truncated, and decodes back."""

from __future__ import annotations

import base64
import hashlib

import msgspec
import pytest

from streams.codec import DEADLETTER_MAX_BYTES, DEADLETTER_RAW_BYTES, DecodeFailure, RawMessage, dead_letter, without_raw
from streams.records import DeadLetter, encode

PRODUCER_LIMIT = 1_000_000  # Faust's producer max_request_size


@pytest.mark.parametrize("size", [0, 10, DEADLETTER_RAW_BYTES, DEADLETTER_RAW_BYTES + 1, 800_000, 1_048_576, 5_000_000])
def test_dead_letter_of_any_size_fits_and_carries_size_and_digest(size: int) -> None:
    value = bytes(range(256)) * (size // 256) + b"\xff" * (size % 256)
    key = b"k" * (size // 2)
    dl = dead_letter(RawMessage("sensors.intersection", 3, 42, key, value), DecodeFailure("invalid", "r" * 50_000), 1.7e9)
    wire = encode(dl)
    assert len(wire) < DEADLETTER_MAX_BYTES < PRODUCER_LIMIT
    back = msgspec.json.decode(wire, type=DeadLetter)
    assert back == dl
    assert back.raw_size == size and back.raw_sha256 == hashlib.sha256(value).hexdigest()
    kept = base64.b64decode(back.raw_b64)
    assert value.startswith(kept) and len(kept) == min(size, DEADLETTER_RAW_BYTES)
    assert back.raw_truncated is (size > DEADLETTER_RAW_BYTES)
    assert back.key_truncated is (len(key) > DEADLETTER_RAW_BYTES)
    assert len(back.reason) <= 1_000


def test_a_small_dead_letter_keeps_everything() -> None:
    dl = dead_letter(RawMessage("t", 0, 1, b"K1", b"{bad"), DecodeFailure("not_json", "nope"), 0.0)
    assert base64.b64decode(dl.raw_b64) == b"{bad" and base64.b64decode(dl.key_b64 or "") == b"K1"
    assert not dl.raw_truncated and not dl.key_truncated and dl.raw_size == 4


def test_old_dead_letters_without_the_new_fields_still_decode() -> None:
    old = (
        b'{"schema_version":1,"event_time":"2026-01-01T00:00:00Z","source_topic":"t","partition":0,'
        b'"offset":5,"reason_code":"empty","reason":"message has no value","raw_b64":"","key_b64":null}'
    )
    dl = msgspec.json.decode(old, type=DeadLetter)
    assert dl.raw_size == -1 and dl.raw_sha256 == "" and dl.raw_truncated is False


def test_without_raw_keeps_what_finds_and_verifies_the_original() -> None:
    dl = dead_letter(RawMessage("t", 2, 9, b"K", b"x" * 100), DecodeFailure("invalid", "bad count"), 0.0)
    slim = without_raw(dl, "MessageSizeTooLargeError")
    assert slim.raw_b64 == "" and slim.key_b64 is None and slim.raw_truncated and slim.key_truncated
    assert (slim.partition, slim.offset, slim.raw_size, slim.raw_sha256) == (2, 9, 100, dl.raw_sha256)
    assert "MessageSizeTooLargeError" in slim.reason and "bad count" in slim.reason


def test_reason_with_lone_surrogates_still_encodes() -> None:
    dl = dead_letter(RawMessage("t\udc80", 0, 0, None, b"x"), DecodeFailure("internal", "boom \ud800"), 0.0)
    assert msgspec.json.decode(encode(dl), type=DeadLetter).reason.startswith("boom")


def test_send_errors_are_classified_as_the_client_reports_them() -> None:
    from aiokafka.errors import KafkaConnectionError, KafkaTimeoutError, MessageSizeTooLargeError, NotLeaderForPartitionError
    from faust.exceptions import ProducerSendError

    from streams.ingest import is_retriable

    def wrapped(inner: Exception) -> Exception:
        try:
            raise ProducerSendError(f"Error while sending: {inner!r}") from inner
        except ProducerSendError as exc:
            return exc

    assert not is_retriable(wrapped(MessageSizeTooLargeError()))
    assert not is_retriable(MessageSizeTooLargeError())
    assert is_retriable(KafkaConnectionError()) and is_retriable(KafkaTimeoutError())
    assert is_retriable(wrapped(NotLeaderForPartitionError()))
    assert not is_retriable(ValueError("not a broker error"))
