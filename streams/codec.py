"""The one decoding path for every input topic.

``TopicDecoder.decode`` turns raw message bytes into a record or a ``DecodeFailure`` with a
reason; it never raises (a hypothesis test holds it to that). Agents hand whole batches to
``decode_batch`` and send the failures to the dead-letter topic, so bad input neither crashes
an agent nor vanishes.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Generic, TypeVar

import msgspec

from .records import INPUT_RECORDS, DeadLetter, Record

R = TypeVar("R", bound=Record)


@dataclass(frozen=True, slots=True)
class DecodeFailure:
    """Why a record was refused. ``code`` is a small fixed vocabulary for counting."""

    code: str  # oversize | empty | not_json | missing_field | out_of_range | unknown_version | invalid | clock_skew | key_mismatch | internal
    reason: str


@dataclass(frozen=True, slots=True)
class RawMessage:
    """What the decoder needs of a Kafka message, independent of any client library."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


_RANGE = re.compile(r"[<>]=?|length|Number out of range")


def _classify(err: msgspec.ValidationError) -> str:
    text = str(err)
    if "missing required field" in text:
        return "missing_field"
    if text.endswith("`$.schema_version`"):
        return "unknown_version"
    if _RANGE.search(text.split(" - at ")[0]):
        return "out_of_range"
    return "invalid"


class TopicDecoder(Generic[R]):
    """Decoder for one topic's record type, with its limits.

    ``reference='stream'`` measures clock skew against the newest event time this decoder
    has accepted (replays of historical data); ``'now'`` against the wall clock.
    """

    def __init__(
        self,
        record_type: type[R],
        *,
        max_bytes: int = 1_000_000,
        clock_skew_s: float = 6 * 3600.0,
        reference: str = "now",
    ) -> None:
        self.record_type = record_type
        self.max_bytes = max_bytes
        self.clock_skew_s = clock_skew_s
        self.reference = reference
        self.watermark: float | None = None
        self._decoder = msgspec.json.Decoder(record_type)

    def decode(self, value: bytes | None, *, now: float, key: bytes | None = None) -> R | DecodeFailure:
        try:
            return self._decode(value, now, key)
        except Exception as exc:  # the contract is "never raises": anything unforeseen is data
            return DecodeFailure("internal", f"{type(exc).__name__}: {exc}")

    def _decode(self, value: bytes | None, now: float, key: bytes | None) -> R | DecodeFailure:
        if not value:
            return DecodeFailure("empty", "message has no value")
        if len(value) > self.max_bytes:
            return DecodeFailure("oversize", f"{len(value)} bytes > limit {self.max_bytes}")
        try:
            record = self._decoder.decode(value)
        except msgspec.ValidationError as exc:
            return DecodeFailure(_classify(exc), str(exc))
        except msgspec.DecodeError as exc:
            return DecodeFailure("not_json", str(exc))
        t = record.event_time.timestamp()
        if self.reference == "now":
            ref: float | None = now
        else:  # the first record of a stream sets the reference
            ref = self.watermark
        if ref is not None and abs(t - ref) > self.clock_skew_s:
            what = "now" if self.reference == "now" else "the stream"
            return DecodeFailure(
                "clock_skew",
                f"event_time {record.event_time.isoformat()} is {t - ref:+.0f} s from {what} "
                f"(limit ±{self.clock_skew_s:g} s)",
            )
        if key is not None and record.key_field is not None:
            expected = record.key()
            if key.decode("utf-8", "replace") != expected:
                return DecodeFailure(
                    "key_mismatch",
                    f"message key {key[:64]!r} differs from {record.key_field}={expected!r}",
                )
        if self.watermark is None or t > self.watermark:
            self.watermark = t
        return record


def decoder_for(topic_name: str, **limits: object) -> TopicDecoder[Record]:
    """Decoder for a catalogue input topic (``sensors.intersection`` ...)."""
    return TopicDecoder(INPUT_RECORDS[topic_name], **limits)  # type: ignore[arg-type]


@dataclass(slots=True)
class DecodedBatch(Generic[R]):
    records: list[R]
    dead: list[DeadLetter]


def dead_letter(msg: RawMessage, failure: DecodeFailure, now: float) -> DeadLetter:
    return DeadLetter(
        event_time=datetime.fromtimestamp(now, tz=timezone.utc),
        source_topic=msg.topic,
        partition=msg.partition,
        offset=msg.offset,
        reason_code=failure.code,
        reason=failure.reason,
        raw_b64=base64.b64encode(msg.value or b"").decode("ascii"),
        key_b64=base64.b64encode(msg.key).decode("ascii") if msg.key is not None else None,
    )


def decode_batch(
    decoder: TopicDecoder[R], messages: Iterable[RawMessage], *, now: float
) -> DecodedBatch[R]:
    """Split a batch into valid records and dead letters, preserving order within each."""
    records: list[R] = []
    dead: list[DeadLetter] = []
    for msg in messages:
        out = decoder.decode(msg.value, now=now, key=msg.key)
        if isinstance(out, DecodeFailure):
            dead.append(dead_letter(msg, out, now))
        else:
            records.append(out)
    return DecodedBatch(records, dead)


def reason_counts(dead: Sequence[DeadLetter]) -> dict[tuple[str, str], int]:
    """Dead letters per (source topic, reason code), for the counters."""
    counts: dict[tuple[str, str], int] = {}
    for d in dead:
        k = (d.source_topic, d.reason_code)
        counts[k] = counts.get(k, 0) + 1
    return counts
