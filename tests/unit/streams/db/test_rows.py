"""Records -> history rows (streams/db/rows.py): what each topic's record becomes, and what is
refused rather than handed to PostgreSQL (where it would fail its batch on every retry)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import msgspec
import orjson

from detection.alarms import Alarm, AlarmChange
from streams.agents.alarm_lifecycle import alert_record
from streams.codec import DecodeFailure, DecoderLimits
from streams.db.rows import TABLES, TOPIC_TABLES, RowMapper, clean_text, json_text, series_kind
from streams.records import (
    DetectorAggregate,
    Forecast,
    ForecastPoint,
    PlanPhase,
    SignalAuditMessage,
    SignalPlanMessage,
    encode,
    encode_orjson,
)

T0 = datetime(2026, 6, 1, 8, 0, tzinfo=timezone.utc)
TS_MS = int(T0.timestamp() * 1000)


def _rows(topic: str, value: bytes, key: bytes | None = None, mapper: RowMapper | None = None):
    return (mapper or RowMapper()).rows(topic, 3, 42, key, value, TS_MS)


def _check_shape(topic: str, rows) -> None:
    assert not isinstance(rows, DecodeFailure), rows
    for row in rows:
        assert len(row) == len(TABLES[TOPIC_TABLES[topic]])
        assert row[-2:] == (3, 42)


def test_aggregate_row_keeps_every_field_and_its_source_position() -> None:
    agg = DetectorAggregate(
        aggregate_id="K1:d1:1",
        intersection_id="K1",
        detector_id="d1",
        window_start=T0,
        window_end=T0 + timedelta(minutes=1),
        frames=4,
        count_sum=37,
        occupancy_mean=0.25,
        speed_kmh_mean=None,
        event_time=T0,
    )
    rows = _rows("aggregates", encode(agg))
    _check_shape("aggregates", rows)
    assert rows == [("K1:d1:1", "K1", "d1", T0, T0 + timedelta(minutes=1), 4, 37, 0.25, None, None, 3, 42)]


def test_an_aggregate_keeps_its_queue_and_one_written_before_queues_still_maps() -> None:
    agg = DetectorAggregate(
        aggregate_id="K1/A1/1",
        intersection_id="K1",
        detector_id="A1",
        window_start=T0,
        window_end=T0 + timedelta(minutes=1),
        frames=4,
        count_sum=12,
        occupancy_mean=0.5,
        speed_kmh_mean=18.0,
        event_time=T0,
        queue_veh_mean=7.25,
    )
    (row,) = _rows("aggregates", encode(agg))
    assert row[TABLES["aggregates"].index("queue_veh_mean")] == 7.25
    old = orjson.loads(encode(agg))
    del old["queue_veh_mean"]  # a record of the release before queues were aggregated
    (row,) = _rows("aggregates", orjson.dumps(old))
    assert row[TABLES["aggregates"].index("queue_veh_mean")] is None and row[7:9] == (0.5, 18.0)


def test_a_scheduled_event_or_holiday_becomes_one_row_with_its_announcement_time() -> None:
    holiday = {
        "schema_version": 1,
        "event_time": T0.isoformat(),
        "venue_id": "city",
        "event_id": "pfingstmontag-2026",
        "kind": "holiday",
        "starts_at": "2026-05-25T00:00:00+02:00",
        "ends_at": "2026-05-26T00:00:00+02:00",
        "title": "Pfingstmontag",
    }
    rows = _rows("events.schedule", orjson.dumps(holiday), key=b"city")
    _check_shape("events.schedule", rows)
    (row,) = rows
    starts = datetime(2026, 5, 24, 22, tzinfo=timezone.utc)
    assert row[:8] == ("city", "pfingstmontag-2026", "holiday", starts, starts + timedelta(days=1), "Pfingstmontag", None, T0)
    # an input topic: decoded as the worker decodes it (key = venue id; ends before it starts)
    assert isinstance(_rows("events.schedule", orjson.dumps(holiday), key=b"stadium"), DecodeFailure)
    backwards = {**holiday, "ends_at": "2026-05-24T00:00:00+02:00"}
    assert isinstance(_rows("events.schedule", orjson.dumps(backwards), key=b"city"), DecodeFailure)


def test_scheduled_events_are_upserted_keeping_the_newest_announcement() -> None:
    from streams.db.sink import upsert_sql

    sql = upsert_sql("scheduled_events")
    assert "ON CONFLICT (venue_id, event_id) DO UPDATE" in sql
    assert "WHERE (EXCLUDED.announced_at, EXCLUDED.src_partition, EXCLUDED.src_offset) >= (" in sql
    assert sql.count("%s") == len(TABLES["scheduled_events"])


def test_a_bus_passage_made_again_is_not_written_twice() -> None:
    from streams.db.sink import first_wins_sql

    sql = first_wins_sql("bus_passages")
    assert sql.endswith("ON CONFLICT (trip_id, stop_index, scheduled_at) DO NOTHING")
    assert sql.count("%s") == len(TABLES["bus_passages"])


def test_an_aggregate_count_beyond_the_int_column_is_refused_not_written() -> None:
    value = orjson.loads(
        encode(
            DetectorAggregate(
                aggregate_id="a",
                intersection_id="K1",
                detector_id="d",
                window_start=T0,
                window_end=T0,
                frames=1,
                count_sum=1,
                occupancy_mean=0.0,
                speed_kmh_mean=None,
                event_time=T0,
            )
        )
    )
    value["count_sum"] = 2**40
    out = _rows("aggregates", orjson.dumps(value))
    assert isinstance(out, DecodeFailure) and out.code == "out_of_range"


def test_pool_reading_is_stored_in_canonical_units() -> None:
    value = {
        "schema_version": 1,
        "event_time": T0.isoformat(),
        "pool_id": "bad-1",
        "temperature": {"value": 300.15, "unit": "K"},
        "redox": {"value": 0.75, "unit": "V"},
        "visitors": 12,
    }
    rows = _rows("sensors.pool", orjson.dumps(value), key=b"bad-1")
    _check_shape("sensors.pool", rows)
    (row,) = rows
    assert row[0] == "bad-1" and row[1] == T0
    assert row[5] == 750.0 and abs(row[6] - 27.0) < 1e-9 and row[2] is None and row[8] == 12


def test_input_records_are_refused_exactly_as_the_worker_refuses_them() -> None:
    good = {"schema_version": 1, "event_time": T0.isoformat(), "pool_id": "bad-1", "visitors": 3}
    assert isinstance(_rows("sensors.pool", orjson.dumps(good), key=b"other"), DecodeFailure)  # key mismatch
    assert _rows("sensors.pool", b"{nope").code == "not_json"
    # clock skew is measured against the message's timestamp, not the time the sink reads it
    stale = {**good, "event_time": (T0 - timedelta(hours=7)).isoformat()}
    mapper = RowMapper(DecoderLimits(clock_skew_s=6 * 3600.0))
    out = _rows("sensors.pool", orjson.dumps(stale), key=b"bad-1", mapper=mapper)
    assert isinstance(out, DecodeFailure) and out.code == "clock_skew"
    assert not isinstance(_rows("sensors.pool", orjson.dumps(good), key=b"bad-1", mapper=mapper), DecodeFailure)


def test_an_acknowledgement_goes_to_the_audit_log() -> None:
    ack = {
        "schema_version": 1,
        "event_time": T0.isoformat(),
        "alert_id": "water_ph@bad-1~0123456789ab",
        "action": "acknowledge",
        "by": "aufsicht-1",
        "note": "on it\tnow",
    }
    rows = _rows("alerts.acks", orjson.dumps(ack), key=b"water_ph@bad-1~0123456789ab")
    _check_shape("alerts.acks", rows)
    (row,) = rows
    assert row[:6] == (T0, "alerts.acks", "water_ph@bad-1~0123456789ab", None, "acknowledge", "aufsicht-1")
    assert orjson.loads(row[6]) == {"note": "on it\tnow"}
    # a NUL (which jsonb refuses) in a note: the worker dead-letters such an ack since stop 54, so
    # the history does not hold it either
    nul = _rows("alerts.acks", orjson.dumps({**ack, "note": "on it\u0000"}), key=b"water_ph@bad-1~0123456789ab")
    assert isinstance(nul, DecodeFailure) and "control" in nul.reason


def test_plan_and_audit_messages() -> None:
    plan = SignalPlanMessage(
        event_time=T0,
        intersection_id="K1",
        plan_id="p@K1~x",
        session="s1",
        time_s=0.0,
        origin_s=0.0,
        cyclic=True,
        phases=[PlanPhase("A", 30.0), PlanPhase("B", 20.0)],
        mode="advisory",
        status="pending",
        controller="leitstand",
        version="1",
        rule="max-pressure",
        explanation={"why": "queue", "n": 3},
        violations=[],
        expires_at_s=123.0,
    )
    rows = _rows("signals.plans", encode(plan))
    _check_shape("signals.plans", rows)
    (row,) = rows
    assert row[4:10] == ("pending", "advisory", "leitstand", "1", "max-pressure", True)
    assert orjson.loads(row[10]) == [{"stage": "A", "green_s": 30.0}, {"stage": "B", "green_s": 20.0}]
    assert orjson.loads(row[11]) == {"why": "queue", "n": 3} and row[13] == 123.0
    column = TABLES["signal_decisions"].index("not_following")
    assert row[column] is None  # a record that does not say (a worker from before stop 46)
    driven = msgspec.structs.replace(plan, status="active", not_following=True)
    assert _rows("signals.plans", encode(driven))[0][column] is True
    audit = SignalAuditMessage(event_time=T0, intersection_id="K1", session="s1", action="set_mode", actor="vlz-1", detail={"mode": "off"})
    rows = _rows("signals.audit", encode(audit))
    _check_shape("signals.audit", rows)
    assert rows[0][:6] == (T0, "signals.audit", "K1", "s1", "set_mode", "vlz-1")


def test_alert_records_as_the_lifecycle_agent_writes_them() -> None:
    alarm = Alarm(
        alarm_id="water_ph@bad-1~0123456789ab",
        subject_id="bad-1",
        subject_type="pool",
        kind="water_ph",
        severity="major",
        state="acknowledged",
        message="pH out of range",
        raised_at=T0.timestamp(),
        evidence={"ph": 8.1},
        level=1,
        acknowledged_at=T0.timestamp() + 60,
        acknowledged_by="aufsicht-1",
    )
    rows = _rows("alerts", alert_record(AlarmChange("acknowledged", alarm), T0.timestamp() + 61))
    _check_shape("alerts", rows)
    (row,) = rows
    assert row[1:9] == ("acknowledged", "water_ph@bad-1~0123456789ab", "bad-1", "pool", "water_ph", "major", "acknowledged", 1)
    assert row[10] == T0 and row[11] == T0 + timedelta(seconds=60) and row[12] == "aufsicht-1" and row[13] is None
    assert orjson.loads(row[16]) == {"ph": 8.1}


def test_a_forecast_becomes_one_row_per_point() -> None:
    points = [ForecastPoint((T0 + timedelta(hours=h)).isoformat(), 10.0 + h, 8.0, 14.0) for h in range(3)]
    fc = Forecast(
        series_id="intersection/K1",
        model="lightgbm",
        model_version="4.6",
        origin=T0.isoformat(),
        event_ids=[],
        points=points,
        event_time=T0.isoformat(),
        trigger="schedule",
    )
    rows = _rows("forecasts", encode_orjson(fc))
    _check_shape("forecasts", rows)
    assert [r[7] for r in rows] == [0, 1, 2]
    assert rows[2][:6] == ("intersection/K1", "intersection", "lightgbm", "4.6", T0, T0)
    assert rows[2][8:12] == (T0 + timedelta(hours=2), 12.0, 8.0, 14.0)


def test_output_topic_garbage_and_tombstones_are_failures_not_rows() -> None:
    for topic in ("aggregates", "signals.plans", "signals.audit", "alerts", "forecasts"):
        assert isinstance(_rows(topic, b"not json"), DecodeFailure)
        assert isinstance(_rows(topic, b'{"schema_version": 1}'), DecodeFailure)
        assert RowMapper().rows(topic, 0, 0, None, None, TS_MS) == DecodeFailure("empty", "message has no value")
    bad_time = {"schema_version": 1, "series_id": "pool/x", "model": "m", "model_version": "1", "origin": "yesterday"}
    bad_time |= {"event_ids": [], "points": [], "event_time": T0.isoformat(), "trigger": "schedule"}
    assert isinstance(_rows("forecasts", orjson.dumps(bad_time)), DecodeFailure)


def test_text_and_json_lose_only_what_postgresql_refuses() -> None:
    assert clean_text("K1") == "K1"
    assert clean_text("a\u0000b") == "a\ufffdb"
    assert clean_text("Bäderaufsicht") == "Bäderaufsicht"
    assert clean_text("x\ud800y") == "x?y"  # a lone surrogate cannot be encoded as UTF-8
    assert orjson.loads(json_text({"k\u0000": ["v\u0000", 1, None]})) == {"k\ufffd": ["v\ufffd", 1, None]}


def test_series_kind_is_the_part_before_the_separator() -> None:
    assert series_kind("intersection/K1") == "intersection"
    assert series_kind("pool/bad-1") == "pool"
    assert series_kind("plain") == "plain"
