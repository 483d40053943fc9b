"""Kafka records -> table rows for the history database (pure: no I/O, no database client).

One function per source topic turns a record's bytes into the rows it adds (a forecast adds one
row per point, everything else one row) or a ``DecodeFailure``. Rows are plain tuples in the
column order of :data:`TABLES`, ending with the record's ``src_partition`` and ``src_offset``;
JSON columns hold JSON text. The sink writes them with COPY, so every value here must be one
PostgreSQL accepts, or one bad record would fail its batch on every retry and stop the history
for good: text loses NUL characters and lone surrogates (PostgreSQL's ``text`` and ``jsonb``
refuse both), integers outside a column's range are refused as ``out_of_range``.

Input topics (``sensors.pool``, ``alerts.acks``, ``events.schedule``) decode through the worker's own decoder
(``streams.codec``), so the history holds what the worker accepted and nothing it dead-lettered;
the clock-skew check is measured against the Kafka message's timestamp (about when the worker
read it), not against the time the sink happens to read it, which may be hours later.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

import msgspec
import orjson

from ..codec import DecodeFailure, DecoderLimits, TopicDecoder, decoder_for
from ..records import BusPassage, DetectorAggregate, Forecast, PoolReading, ScheduledEvent, SignalAuditMessage, SignalPlanMessage
from ..topics import (
    AGGREGATES,
    ALERTS,
    ALERTS_ACKS,
    EVENTS_SCHEDULE,
    FORECASTS,
    SENSORS_POOL,
    SIGNALS_AUDIT,
    SIGNALS_PLANS,
    TRANSIT_PASSAGES,
)

Row = tuple[Any, ...]
_SRC = ("src_partition", "src_offset")

#: table -> its columns in row order (what COPY writes)
TABLES: dict[str, tuple[str, ...]] = {
    "aggregates": (
        "aggregate_id",
        "intersection_id",
        "detector_id",
        "window_start",
        "window_end",
        "frames",
        "count_sum",
        "occupancy_mean",
        "speed_kmh_mean",
        "queue_veh_mean",
        *_SRC,
    ),
    "pool_readings": (
        "pool_id",
        "event_time",
        "free_chlorine",
        "combined_chlorine",
        "ph",
        "redox",
        "temperature",
        "turbidity",
        "visitors",
        *_SRC,
    ),
    "signal_decisions": (
        "event_time",
        "intersection_id",
        "plan_id",
        "session",
        "status",
        "mode",
        "controller",
        "version",
        "rule",
        "cyclic",
        "phases",
        "explanation",
        "violations",
        "expires_at_s",
        "not_following",
        *_SRC,
    ),
    "audit_log": ("event_time", "source", "subject_id", "session", "action", "actor", "detail", *_SRC),
    "alarm_transitions": (
        "event_time",
        "transition",
        "alarm_id",
        "subject_id",
        "subject_type",
        "kind",
        "severity",
        "state",
        "level",
        "message",
        "raised_at",
        "acknowledged_at",
        "acknowledged_by",
        "escalated_at",
        "resolved_at",
        "resolved_by",
        "evidence",
        *_SRC,
    ),
    "forecasts": (
        "series_id",
        "series_kind",
        "model",
        "model_version",
        "origin",
        "published_at",
        "trigger",
        "point_index",
        "ts",
        "yhat",
        "yhat_lower",
        "yhat_upper",
        *_SRC,
    ),
    "bus_passages": (
        "event_time",
        "route_id",
        "direction_id",
        "trip_id",
        "vehicle_id",
        "stop_id",
        "stop_index",
        "scheduled_at",
        "delay_s",
        "punctuality",
        "headway_s",
        "scheduled_headway_s",
        "headway_kind",
        *_SRC,
    ),
    # one row per (venue_id, event_id): the newest announcement (see UPSERTS)
    "scheduled_events": (
        "venue_id",
        "event_id",
        "kind",
        "starts_at",
        "ends_at",
        "title",
        "expected_attendance",
        "announced_at",
        *_SRC,
    ),
}

#: tables whose rows replace an older row with the same key instead of adding one: table ->
#: (the key's columns, the columns that order announcements: a row replaces the stored one only
#: when it is not older). Written with INSERT ... ON CONFLICT, not COPY.
UPSERTS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "scheduled_events": (("venue_id", "event_id"), ("announced_at", "src_partition", "src_offset")),
}

#: tables where a second record of the same thing (its key's columns) adds nothing: the first row
#: stays (INSERT ... ON CONFLICT DO NOTHING, not COPY). A bus passage is made again when the bus
#: agent reads positions a second time after a crash (consumption is at-least-once and its state is
#: in memory), and punctuality per line would count it twice
FIRST_WINS: dict[str, tuple[str, ...]] = {
    "bus_passages": ("trip_id", "stop_index", "scheduled_at"),
}

#: source topic (catalogue name) -> the table its records go to
TOPIC_TABLES: dict[str, str] = {
    AGGREGATES: "aggregates",
    SENSORS_POOL: "pool_readings",
    SIGNALS_PLANS: "signal_decisions",
    SIGNALS_AUDIT: "audit_log",
    ALERTS_ACKS: "audit_log",
    ALERTS: "alarm_transitions",
    FORECASTS: "forecasts",
    EVENTS_SCHEDULE: "scheduled_events",
    TRANSIT_PASSAGES: "bus_passages",
}
#: topics the worker reads (their bad records are dead-lettered there); the others it writes
INPUT_TOPICS = frozenset({SENSORS_POOL, ALERTS_ACKS, EVENTS_SCHEDULE})

_INT32 = (-(2**31), 2**31 - 1)


class AlertRecord(msgspec.Struct, kw_only=True, frozen=True):
    """The ``alerts`` value as ``streams.agents.alarm_lifecycle.alert_record`` writes it (the
    fields the history keeps; the others are ignored)."""

    schema_version: int = 1
    event_time: datetime
    transition: str
    alarm_id: str
    subject_id: str
    subject_type: str
    kind: str
    severity: str
    state: str
    level: int = 0
    message: str
    raised_at: datetime
    acknowledged_at: datetime | None = None
    acknowledged_by: str | None = None
    escalated_at: datetime | None = None
    resolved_at: datetime | None = None
    resolved_by: str | None = None
    evidence: dict[str, Any] = {}


class OutOfRange(ValueError):
    """A value the column cannot hold."""


def clean_text(text: str) -> str:
    """``text`` as PostgreSQL stores it: NUL and lone surrogates replaced by U+FFFD."""
    if text.isascii() and "\x00" not in text:
        return text
    return text.replace("\x00", "\ufffd").encode("utf-8", "replace").decode("utf-8")


def _opt_text(text: str | None) -> str | None:
    return None if text is None else clean_text(text)


def _clean_json(value: Any) -> Any:
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, dict):
        return {clean_text(str(k)): _clean_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean_json(v) for v in value]
    return value


def json_text(value: Any) -> str:
    """JSON text for a ``jsonb`` column (NUL-free: jsonb refuses ``\\u0000``)."""
    return orjson.dumps(_clean_json(value), option=orjson.OPT_NON_STR_KEYS).decode()


def int32(value: int, field: str) -> int:
    if not _INT32[0] <= value <= _INT32[1]:
        raise OutOfRange(f"{field} {value} does not fit a 32-bit integer column")
    return value


def series_kind(series_id: str) -> str:
    """``intersection`` of ``intersection/K1``: the forecasting agent builds ids as kind/key."""
    for sep in "/:-":
        head, found, _ = series_id.partition(sep)
        if found:
            return clean_text(head)
    return clean_text(series_id)


def _aggregate(rec: DetectorAggregate) -> list[Row]:
    return [
        (
            clean_text(rec.aggregate_id),
            clean_text(rec.intersection_id),
            clean_text(rec.detector_id),
            rec.window_start,
            rec.window_end,
            int32(rec.frames, "frames"),
            int32(rec.count_sum, "count_sum"),
            rec.occupancy_mean,
            rec.speed_kmh_mean,
            rec.queue_veh_mean,
        )
    ]


def _pool(rec: PoolReading) -> list[Row]:
    v = rec.values()
    names = ("free_chlorine", "combined_chlorine", "ph", "redox", "temperature", "turbidity")
    return [(rec.pool_id, rec.event_time, *(v.get(n) for n in names), rec.visitors)]


def _plan(rec: SignalPlanMessage) -> list[Row]:
    phases = [{"stage": p.stage, "green_s": p.green_s} for p in rec.phases]
    return [
        (
            rec.event_time,
            clean_text(rec.intersection_id),
            clean_text(rec.plan_id),
            clean_text(rec.session),
            clean_text(rec.status),
            clean_text(rec.mode),
            clean_text(rec.controller),
            clean_text(rec.version),
            clean_text(rec.rule),
            rec.cyclic,
            json_text(phases),
            json_text(rec.explanation),
            json_text(rec.violations),
            rec.expires_at_s,
            rec.not_following,
        )
    ]


def _audit(rec: SignalAuditMessage) -> list[Row]:
    subject, session = clean_text(rec.intersection_id), clean_text(rec.session)
    return [(rec.event_time, SIGNALS_AUDIT, subject, session, clean_text(rec.action), clean_text(rec.actor), json_text(rec.detail))]


def _ack(rec: Any) -> list[Row]:
    detail = {} if rec.note is None else {"note": rec.note}
    return [(rec.event_time, ALERTS_ACKS, rec.alert_id, None, rec.action, clean_text(rec.by), json_text(detail))]


def _alert(rec: AlertRecord) -> list[Row]:
    return [
        (
            rec.event_time,
            clean_text(rec.transition),
            clean_text(rec.alarm_id),
            clean_text(rec.subject_id),
            clean_text(rec.subject_type),
            clean_text(rec.kind),
            clean_text(rec.severity),
            clean_text(rec.state),
            int32(rec.level, "level"),
            clean_text(rec.message),
            rec.raised_at,
            rec.acknowledged_at,
            _opt_text(rec.acknowledged_by),
            rec.escalated_at,
            rec.resolved_at,
            _opt_text(rec.resolved_by),
            json_text(rec.evidence),
        )
    ]


def _forecast(rec: Forecast) -> list[Row]:
    head = (
        clean_text(rec.series_id),
        series_kind(rec.series_id),
        clean_text(rec.model),
        clean_text(rec.model_version),
        datetime.fromisoformat(rec.origin),
        datetime.fromisoformat(rec.event_time),
        clean_text(rec.trigger),
    )
    return [(*head, i, datetime.fromisoformat(p.timestamp), p.yhat, p.yhat_lower, p.yhat_upper) for i, p in enumerate(rec.points)]


def _scheduled(rec: ScheduledEvent) -> list[Row]:
    """An announced event or holiday; ``announced_at`` is the announcement's event time (a later
    announcement of the same event replaces it in the table)."""
    return [
        (
            clean_text(rec.venue_id),
            clean_text(rec.event_id),
            rec.kind,
            rec.starts_at,
            rec.ends_at,
            _opt_text(rec.title),
            rec.expected_attendance,
            rec.event_time,
        )
    ]


def _passage(rec: BusPassage) -> list[Row]:
    """A bus at a stop (``streams.transit_codec.passage_record``)."""
    return [
        (
            rec.event_time,
            clean_text(rec.route_id),
            rec.direction_id,
            clean_text(rec.trip_id),
            clean_text(rec.vehicle_id),
            clean_text(rec.stop_id),
            rec.stop_index,
            rec.scheduled_at,
            rec.delay_s,
            rec.punctuality,
            rec.headway_s,
            rec.scheduled_headway_s,
            rec.headway_kind,
        )
    ]


S = TypeVar("S")


def _plain(record_type: type[S], to_rows: Callable[[S], list[Row]]) -> Callable[[bytes, bytes | None, float], list[Row]]:
    """Rows of an output topic's value: msgspec decoding of its record type, no further checks."""
    decoder = msgspec.json.Decoder(record_type)

    def rows(value: bytes, key: bytes | None, now: float) -> list[Row]:
        return to_rows(decoder.decode(value))

    return rows


def _checked(topic: str, to_rows: Callable[[Any], list[Row]], limits: DecoderLimits) -> Callable[[bytes, bytes | None, float], list[Row]]:
    """Rows of an input topic's value, decoded exactly as the worker decodes it."""
    decoder: TopicDecoder[Any] = decoder_for(topic, **limits)

    def rows(value: bytes, key: bytes | None, now: float) -> list[Row]:
        out = decoder.decode(value, now=now, key=key)
        if isinstance(out, DecodeFailure):
            raise _Refused(out)
        return to_rows(out)

    return rows


class _Refused(Exception):
    def __init__(self, failure: DecodeFailure) -> None:
        self.failure = failure


class RowMapper:
    """Bytes of any history topic -> (table, rows with their source position) | DecodeFailure."""

    def __init__(self, limits: DecoderLimits | None = None) -> None:
        lim = limits if limits is not None else DecoderLimits()
        self._by_topic: dict[str, Callable[[bytes, bytes | None, float], list[Row]]] = {
            AGGREGATES: _plain(DetectorAggregate, _aggregate),
            SENSORS_POOL: _checked(SENSORS_POOL, _pool, lim),
            SIGNALS_PLANS: _plain(SignalPlanMessage, _plan),
            SIGNALS_AUDIT: _plain(SignalAuditMessage, _audit),
            ALERTS_ACKS: _checked(ALERTS_ACKS, _ack, lim),
            ALERTS: _plain(AlertRecord, _alert),
            FORECASTS: _plain(Forecast, _forecast),
            EVENTS_SCHEDULE: _checked(EVENTS_SCHEDULE, _scheduled, lim),
            TRANSIT_PASSAGES: _plain(BusPassage, _passage),
        }

    def rows(
        self, topic: str, partition: int, offset: int, key: bytes | None, value: bytes | None, timestamp_ms: int
    ) -> list[Row] | DecodeFailure:
        """The rows of one record of catalogue topic ``topic`` (table: ``TOPIC_TABLES[topic]``)."""
        if not value:
            return DecodeFailure("empty", "message has no value")
        try:
            rows = self._by_topic[topic](value, key, timestamp_ms / 1000.0)
        except _Refused as exc:
            return exc.failure
        except msgspec.ValidationError as exc:
            return DecodeFailure("invalid", str(exc))
        except msgspec.DecodeError as exc:
            return DecodeFailure("not_json", str(exc))
        except OutOfRange as exc:
            return DecodeFailure("out_of_range", str(exc))
        except (ValueError, TypeError, OverflowError, RecursionError) as exc:  # fromisoformat, orjson
            return DecodeFailure("invalid", f"{type(exc).__name__}: {exc}")
        return [(*r, partition, offset) for r in rows]
