"""The one decoding path for every input topic.

``TopicDecoder.decode`` turns raw message bytes into a record or a ``DecodeFailure`` with a
reason; it never raises (a hypothesis test holds it to that). Agents decode whole batches
(``streams.ingest.decoded_batches``, ``decode_batch`` here) and send the failures to the
dead-letter topic, so bad input neither crashes an agent nor vanishes.

A dead letter is bounded whatever the input (``dead_letter``): at most 64 KiB of the value and
of the key, a reason of at most 1,000 characters, plus the size and SHA-256 of the whole value,
so it always fits the producer's 1 MB request limit (``DEADLETTER_MAX_BYTES`` is the bound the
fuzzers check). ``without_raw`` is the last resort when the broker refuses even that.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Generic, TypedDict, TypeVar, Unpack

import msgspec

from .records import INPUT_RECORDS, DeadLetter, Record

#: bytes of the raw value (and of the key) a dead letter carries at most
DEADLETTER_RAW_BYTES = 64 * 1024
#: characters of the reason (and of the topic name) a dead letter carries at most
DEADLETTER_REASON_CHARS = 1_000
#: an upper bound of any encoded dead letter: two base64 copies of 64 KiB, a reason of 1,000
#: characters JSON-escaped at 6 bytes each, and the fixed fields; far below the 1 MB a request
#: may have (producer ``max_request_size``, broker ``message.max.bytes``)
DEADLETTER_MAX_BYTES = 256 * 1024

R = TypeVar("R", bound=Record)


@dataclass(frozen=True, slots=True)
class DecodeFailure:
    """Why a record was refused. ``code`` is a small fixed vocabulary for counting."""

    # oversize | empty | not_json | missing_field | out_of_range | unknown_version | invalid | clock_skew | key_mismatch |
    # key_missing | internal
    code: str
    reason: str
    #: the record, when it was valid but for its event time (``clock_skew``): a watch of the
    #: device's clock (the data-quality watch) still wants it; None otherwise
    parsed: Any = field(default=None, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class RawMessage:
    """What the decoder needs of a Kafka message, independent of any client library."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


_RANGE = re.compile(r"[<>]=?|length|Number out of range")


_PATTERN_FAILURE = re.compile(r"^Expected `str` matching regex .* - at `(?P<path>[^`]*)`$", re.S)


def _key_twice(value: bytes) -> DecodeFailure | None:
    """``invalid`` when a JSON object of ``value`` holds a key twice (msgspec keeps the last):
    asked only of records that carry safety configuration (``Record.unique_keys``)."""
    from signals.loader import ModelError, unique_keys  # only signal configurations ask: not on every frame's path

    try:
        json.loads(value, object_pairs_hook=unique_keys)
    except ModelError as exc:
        return DecodeFailure("invalid", str(exc))
    except (ValueError, RecursionError):
        return None  # msgspec parsed it; anything json refuses beyond that is not ours to judge here
    return None


def _explain(err: msgspec.ValidationError) -> tuple[str, str]:
    """Code and reason for a validation error; an id outside the id character set says so."""
    text = str(err)
    m = _PATTERN_FAILURE.match(text)
    if m and "x0e-" in text:  # TEXT_PATTERN
        return "invalid", f"`{m['path']}` holds a control or direction-override character (free text may hold tabs and line breaks)"
    if m:
        return "invalid", (
            f"`{m['path']}` is not a valid id: 1-64 characters (alarm and plan ids 160) of "
            "A-Z a-z 0-9 . _ : / @ + # ~ -, the first a letter, digit or _ (no spaces, control "
            "or direction-override characters)"
        )
    return _classify(err), text


def _classify(err: msgspec.ValidationError) -> str:
    text = str(err)
    if "missing required field" in text:
        return "missing_field"
    if text.endswith("`$.schema_version`"):
        return "unknown_version"
    if _RANGE.search(text.split(" - at ")[0]):
        return "out_of_range"
    return "invalid"


#: parses remembered per record type (``_Parses``): enough for every agent of a topic to meet
#: the same message within a few batches of each other
PARSE_CACHE_ENTRIES = 8192
#: values larger than this are parsed afresh each time (hashing and holding them costs more)
PARSE_CACHE_MAX_BYTES = 16 * 1024
#: bytes of values a record type's cache holds at most (with the records, a few times that)
PARSE_CACHE_BUDGET_BYTES = 8 * 1024 * 1024


class _Parses:
    """The outcome of parsing and validating a value, shared by every decoder of one record type.

    Several agents read the same topic (aggregation, incident watch, data quality, signal
    control): each used to parse every message again. The parse depends only on the bytes and
    the type (records are frozen, so one record can be shared); the checks that depend on the
    decoder (size, clock, key) still run per decoder. Faust hands every agent the same message
    object, so the lookup hashes each value once (bytes cache their hash).
    """

    _by_type: dict[type[Any], _Parses] = {}

    def __init__(self, record_type: type[Any]) -> None:
        self._decoder = msgspec.json.Decoder(record_type)
        self._seen: dict[bytes, Any] = {}
        self._bytes = 0

    @classmethod
    def of(cls, record_type: type[Any]) -> _Parses:
        parses = cls._by_type.get(record_type)
        if parses is None:
            parses = cls._by_type[record_type] = cls(record_type)
        return parses

    def parse(self, value: bytes) -> Any:
        """The record, or the ``DecodeFailure`` of a value that does not parse or validate."""
        cacheable = len(value) <= PARSE_CACHE_MAX_BYTES and type(value) is bytes
        if cacheable:
            hit = self._seen.get(value)
            if hit is not None:
                return hit
        out = self._parse(value)
        if cacheable:
            seen = self._seen
            while seen and (len(seen) >= PARSE_CACHE_ENTRIES or self._bytes + len(value) > PARSE_CACHE_BUDGET_BYTES):
                oldest = next(iter(seen))  # dicts keep insertion order
                del seen[oldest]
                self._bytes -= len(oldest)
            seen[value] = out
            self._bytes += len(value)
        return out

    def _parse(self, value: bytes) -> Any:
        try:
            return self._decoder.decode(value)
        except msgspec.ValidationError as exc:
            return DecodeFailure(*_explain(exc))
        except msgspec.DecodeError as exc:
            return DecodeFailure("not_json", str(exc))
        except UnicodeDecodeError as exc:  # bytes that are not UTF-8 inside a string: data, not a decoder bug
            return DecodeFailure("not_json", f"not UTF-8: {exc.reason} at byte {exc.start}")
        except RecursionError:  # found by the fuzzers: '{"":' repeated some thousand times
            return DecodeFailure("not_json", "JSON is nested too deeply")


class TopicDecoder(Generic[R]):
    """Decoder for one topic's record type, with its limits.

    ``reference='stream'`` measures clock skew against the newest event time this decoder
    has accepted (replays of historical data); ``'now'`` against the wall clock, and then an
    event time may lie at most ``clock_ahead_s`` ahead of it (default: as far as behind). The
    asymmetry matters: one frame from a field device whose clock runs hours ahead would move
    its intersection's watermark into the future, and every real frame after it would be
    dropped as late until the wall clock caught up (found by probing).
    """

    def __init__(
        self,
        record_type: type[R],
        *,
        max_bytes: int = 1_000_000,
        clock_skew_s: float = 6 * 3600.0,
        reference: str = "now",
        clock_ahead_s: float | None = None,
    ) -> None:
        self.record_type = record_type
        self.max_bytes = max_bytes
        self.clock_skew_s = clock_skew_s
        self.clock_ahead_s = clock_skew_s if clock_ahead_s is None else min(clock_ahead_s, clock_skew_s)
        self.reference = reference
        self.watermark: float | None = None
        self._parses = _Parses.of(record_type)

    def decode(self, value: bytes | None, *, now: float, key: bytes | None = None, keyless_ok: bool = True) -> R | DecodeFailure:
        try:
            return self._decode(value, now, key, keyless_ok)
        except Exception as exc:  # the contract is "never raises": anything unforeseen is data
            return DecodeFailure("internal", f"{type(exc).__name__}: {exc}")

    def decode_message(self, msg: RawMessage, *, now: float) -> R | DecodeFailure:
        """``decode`` of a message off the broker, where a record keyed by an entity must carry
        that key (``key_missing`` otherwise).

        Why a missing key is refused: an unkeyed message lands on any partition, so one pool's or
        intersection's records end up on several, and the agents that keep per-entity state
        with the offset it reflects (exact recovery, ``agents/wiring.py``) would skip every record
        whose offset is below one already folded from another partition. A pool's readings
        silently half-lost is worse than all of them dead-lettered with a reason (the pool's
        silent-sensor alarm then says so within the heartbeat)."""
        return self.decode(msg.value, now=now, key=msg.key, keyless_ok=False)

    def _decode(self, value: bytes | None, now: float, key: bytes | None, keyless_ok: bool) -> R | DecodeFailure:
        if not value:
            return DecodeFailure("empty", "message has no value")
        if len(value) > self.max_bytes:
            return DecodeFailure("oversize", f"{len(value)} bytes > limit {self.max_bytes}")
        parsed = self._parses.parse(value)
        if isinstance(parsed, DecodeFailure):
            return parsed
        record: R = parsed
        if record.unique_keys:
            twice = _key_twice(value)
            if twice is not None:
                return twice
        t = record.event_time.timestamp()
        skewed = self._skew(record, t, now)
        if skewed is not None:
            # reported before a wrong key, as always; the record rides along only with its right key
            return DecodeFailure(skewed.code, skewed.reason, record if self._key_mismatch(record, key, keyless_ok) is None else None)
        mismatch = self._key_mismatch(record, key, keyless_ok)
        if mismatch is not None:
            return mismatch
        if self.watermark is None or t > self.watermark:
            self.watermark = t
        return record

    def _skew(self, record: R, t: float, now: float) -> DecodeFailure | None:
        if self.reference == "now":
            ref: float | None = now
        else:  # the first record of a stream sets the reference
            ref = self.watermark
        if self.reference == "now" and t - now > self.clock_ahead_s:
            return DecodeFailure(
                "clock_skew",
                f"event_time {record.event_time.isoformat()} is {t - now:+.0f} s ahead of now "
                f"(limit +{self.clock_ahead_s:g} s: a device clock running ahead?)",
            )
        if ref is not None and abs(t - ref) > self.clock_skew_s:
            what = "now" if self.reference == "now" else "the stream"
            return DecodeFailure(
                "clock_skew",
                f"event_time {record.event_time.isoformat()} is {t - ref:+.0f} s from {what} (limit ±{self.clock_skew_s:g} s)",
            )
        return None

    @staticmethod
    def _key_mismatch(record: Record, key: bytes | None, keyless_ok: bool = True) -> DecodeFailure | None:
        if key is None and not keyless_ok and record.key_field is not None:
            return DecodeFailure(
                "key_missing",
                f"message has no key: records of one {record.key_field} must share a partition, "
                f"so send it keyed by {record.key_field} ({record.key()!r})",
            )
        if key is not None and record.key_field is not None:
            expected = record.key()
            if key.decode("utf-8", "replace") != expected:
                return DecodeFailure(
                    "key_mismatch",
                    f"message key {key[:64]!r} differs from {record.key_field}={expected!r}",
                )
        return None


class DecoderLimits(TypedDict, total=False):
    """The keyword arguments of ``TopicDecoder`` that come from the settings."""

    max_bytes: int
    clock_skew_s: float
    clock_ahead_s: float | None
    reference: str


def decoder_limits(settings: Any) -> DecoderLimits:
    """The limits every agent's decoder takes from the settings (one place, not one per agent)."""
    return DecoderLimits(
        max_bytes=settings.max_record_bytes,
        clock_skew_s=settings.clock_skew_s,
        clock_ahead_s=settings.clock_ahead_s,
        reference=settings.timestamp_reference,
    )


def decoder_for(topic_name: str, **limits: Unpack[DecoderLimits]) -> TopicDecoder[Record]:
    """Decoder for a catalogue input topic (``sensors.intersection`` ...)."""
    record_type: type[Record] = INPUT_RECORDS[topic_name]
    return TopicDecoder(record_type, **limits)


@dataclass(slots=True)
class DecodedBatch(Generic[R]):
    records: list[R]
    dead: list[DeadLetter]


def _bounded_text(text: str, limit: int = DEADLETTER_REASON_CHARS) -> str:
    """At most ``limit`` characters, valid UTF-8 (lone surrogates escaped), marked when cut."""
    text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _b64_prefix(data: bytes) -> tuple[str, bool]:
    """Base64 of at most ``DEADLETTER_RAW_BYTES`` of ``data`` and whether that is less than all."""
    return base64.b64encode(data[:DEADLETTER_RAW_BYTES]).decode("ascii"), len(data) > DEADLETTER_RAW_BYTES


def dead_letter(msg: RawMessage, failure: DecodeFailure, now: float) -> DeadLetter:
    """The dead letter of ``msg``: bounded in size whatever ``msg`` holds (see the module doc)."""
    value = msg.value or b""
    raw_b64, raw_truncated = _b64_prefix(value)
    key_b64, key_truncated = _b64_prefix(msg.key) if msg.key is not None else (None, False)
    return DeadLetter(
        event_time=datetime.fromtimestamp(now, tz=timezone.utc),
        source_topic=_bounded_text(msg.topic, 255),
        partition=msg.partition,
        offset=msg.offset,
        reason_code=_bounded_text(failure.code, 32),
        reason=_bounded_text(failure.reason),
        raw_b64=raw_b64,
        key_b64=key_b64,
        raw_size=len(value),
        raw_sha256=hashlib.sha256(value).hexdigest(),
        raw_truncated=raw_truncated,
        key_truncated=key_truncated,
    )


def without_raw(dl: DeadLetter, why: str) -> DeadLetter:
    """``dl`` without the raw value and key: what is left when the broker refused ``dl``.

    Size and digest stay, so the original can still be found and verified on the source topic.
    """
    return msgspec.structs.replace(
        dl,
        raw_b64="",
        key_b64=None,
        raw_truncated=dl.raw_size != 0,
        key_truncated=dl.key_b64 is not None or dl.key_truncated,
        reason=_bounded_text(f"[raw bytes dropped: {_bounded_text(why, 200)}] {dl.reason}"),
    )


def decode_batch(decoder: TopicDecoder[R], messages: Iterable[RawMessage], *, now: float) -> DecodedBatch[R]:
    """Split a batch into valid records and dead letters, preserving order within each."""
    records: list[R] = []
    dead: list[DeadLetter] = []
    for msg in messages:
        out = decoder.decode_message(msg, now=now)
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
