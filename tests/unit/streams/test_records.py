"""Each input record type decodes its valid form and refuses each kind of bad input, with a reason."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

import orjson
import pytest

from streams.codec import DecodeFailure, RawMessage, TopicDecoder, decoder_for
from streams.records import (
    INPUT_RECORDS,
    AlertCommand,
    BusPosition,
    IntersectionConfig,
    IntersectionFrame,
    PoolReading,
    PoolSupervisionEvent,
    ScheduledEvent,
    SignalCommand,
    StageShown,
)

NOW = time.time()
TS = datetime.fromtimestamp(NOW, tz=timezone.utc).isoformat()


def frame(**over: object) -> dict:
    base = {
        "schema_version": 1,
        "event_time": TS,
        "intersection_id": "K1",
        "interval_s": 60,
        "detectors": [
            {"detector_id": "D1", "count": 12, "occupancy": 0.2, "speed_kmh": 42.0, "queue_veh": 3},
            {"detector_id": "D2", "count": 0, "occupancy": 0.0},
        ],
    }
    base.update(over)
    return base


VALID = {
    "sensors.intersection": frame(),
    "signals.state": {"schema_version": 1, "event_time": TS, "intersection_id": "K1", "stage": "2", "stage_started_at": TS},
    "sensors.bus": {
        "schema_version": 1,
        "event_time": TS,
        "vehicle_id": "B17",
        "trip_id": "T1",
        "route_id": "42",
        "latitude": 48.76,
        "longitude": 11.42,
        "current_stop_sequence": 3,
        "delay_s": 120,
        "occupancy_status": "FEW_SEATS_AVAILABLE",
    },
    "sensors.pool": {
        "schema_version": 1,
        "event_time": TS,
        "pool_id": "P1",
        "free_chlorine": {"value": 0.45, "unit": "mg/l"},
        "ph": {"value": 7.0, "unit": "pH"},
        "redox": {"value": 0.78, "unit": "V"},
        "temperature": {"value": 301.15, "unit": "K"},
        "visitors": 120,
    },
    "pool.supervision": {
        "schema_version": 1,
        "event_time": TS,
        "pool_id": "P1",
        "event_id": "E1",
        "kind": "motionless_swimmer",
        "zone": "deep end",
        "duration_s": 12,
        "confidence": 0.93,
    },
    "events.schedule": {
        "schema_version": 1,
        "event_time": TS,
        "venue_id": "stadium",
        "event_id": "M1",
        "kind": "match",
        "starts_at": TS,
        "ends_at": (datetime.fromtimestamp(NOW, tz=timezone.utc) + timedelta(hours=2)).isoformat(),
        "expected_attendance": 15000,
    },
    "alerts.acks": {
        "schema_version": 1,
        "event_time": TS,
        "alert_id": "motionless_swimmer@P1~0123456789ab",
        "action": "acknowledge",
        "by": "supervisor-1",
    },
    "signals.approvals": {
        "schema_version": 1,
        "event_time": TS,
        "intersection_id": "K1",
        "action": "approve",
        "plan_id": "K1@1800000000~0123456789",
        "actor": "duty-3",
    },
    "signals.config": {
        "schema_version": 1,
        "event_time": TS,
        "intersection_id": "K1",
        "model": {"id": "K1"},
        "controller": "webster",
        "mode": "advisory",
        "params": {"recompute_every_cycles": 1},
    },
}


@pytest.mark.parametrize("topic", sorted(INPUT_RECORDS))
def test_valid_record_of_every_topic_decodes(topic: str) -> None:
    out = decoder_for(topic).decode(orjson.dumps(VALID[topic]), now=NOW)
    assert isinstance(out, INPUT_RECORDS[topic]), out
    assert out.schema_version == 1
    assert abs(out.event_time.timestamp() - NOW) < 1e-3


def test_every_catalogue_input_topic_has_a_record_type() -> None:
    assert set(INPUT_RECORDS) == {
        "sensors.intersection",
        "signals.state",
        "sensors.bus",
        "sensors.pool",
        "pool.supervision",
        "events.schedule",
        "alerts.acks",
        "signals.approvals",
        "signals.config",
    }
    assert {
        IntersectionFrame,
        StageShown,
        BusPosition,
        PoolReading,
        PoolSupervisionEvent,
        ScheduledEvent,
        AlertCommand,
        SignalCommand,
        IntersectionConfig,
    } == set(INPUT_RECORDS.values())


def test_pool_units_are_converted_to_canonical() -> None:
    out = decoder_for("sensors.pool").decode(orjson.dumps(VALID["sensors.pool"]), now=NOW)
    assert isinstance(out, PoolReading)
    values = out.values()
    assert values["redox"] == pytest.approx(780.0)
    assert values["temperature"] == pytest.approx(28.0)
    assert values["free_chlorine"] == 0.45


def _bad_detector(**d: object) -> dict:
    det = {"detector_id": "D1", "count": 1, "occupancy": 0.1}
    det.update(d)
    return frame(detectors=[det])


@pytest.mark.parametrize(
    "payload, code",
    [
        (b"\x00\xffgarbage", "not_json"),
        (b"", "empty"),
        (b"[1, 2]", "invalid"),
        (orjson.dumps(_bad_detector(occupancy=1.7)), "out_of_range"),
        (orjson.dumps(_bad_detector(count=-1)), "out_of_range"),
        (orjson.dumps(_bad_detector(count="many")), "invalid"),
        (orjson.dumps(_bad_detector(count=True)), "invalid"),
        (orjson.dumps({k: v for k, v in frame().items() if k != "event_time"}), "missing_field"),
        (orjson.dumps(frame(schema_version=2)), "unknown_version"),
        (orjson.dumps(frame(event_time="2026-01-01T00:00:00")), "invalid"),  # no timezone
        (orjson.dumps(frame(detectors=[])), "out_of_range"),
        (orjson.dumps(_bad_detector(count=5000)), "invalid"),  # impossible in 60 s
        (orjson.dumps(frame(detectors=[{"detector_id": "D", "count": 1, "occupancy": 0.1}] * 2)), "invalid"),
    ],
)
def test_bad_frames_fail_with_their_reason(payload: bytes, code: str) -> None:
    out = decoder_for("sensors.intersection").decode(payload, now=NOW)
    assert isinstance(out, DecodeFailure)
    assert out.code == code, out
    assert out.reason


@pytest.mark.parametrize(
    "mutation, fragment",
    [
        ({"ph": {"value": 15.0, "unit": "pH"}}, "ph"),
        ({"free_chlorine": {"value": 0.4, "unit": "g/l"}}, "unit"),
        ({"temperature": {"value": 90.0, "unit": "degC"}}, "temperature"),
    ],
)
def test_pool_physics_and_units_are_checked(mutation: dict, fragment: str) -> None:
    payload = {**VALID["sensors.pool"], **mutation}
    out = decoder_for("sensors.pool").decode(orjson.dumps(payload), now=NOW)
    assert isinstance(out, DecodeFailure) and fragment in out.reason


def test_pool_reading_needs_some_measurement() -> None:
    payload = {"schema_version": 1, "event_time": TS, "pool_id": "P1"}
    out = decoder_for("sensors.pool").decode(orjson.dumps(payload), now=NOW)
    assert isinstance(out, DecodeFailure)


def test_schedule_end_before_start_is_refused() -> None:
    payload = {**VALID["events.schedule"], "ends_at": "2000-01-01T00:00:00+00:00"}
    assert isinstance(decoder_for("events.schedule").decode(orjson.dumps(payload), now=NOW), DecodeFailure)


@pytest.mark.parametrize("end", ["9999-12-31T00:00:00+00:00", "2263-01-01T00:00:00+00:00"])
def test_schedule_beyond_the_forecasts_years_is_refused(end: str) -> None:
    """A weather event ending in 9999 was accepted, and every forecast refit then failed with an
    OverflowError (pandas' nanosecond times end in 2262) for as long as it was kept."""
    payload = {**VALID["events.schedule"], "ends_at": end}
    out = decoder_for("events.schedule").decode(orjson.dumps(payload), now=NOW)
    assert isinstance(out, DecodeFailure) and "1900..2200" in out.reason


@pytest.mark.parametrize("zone", ["\u202eevil", "lane\x1b[2J", "a\u2066b"])
def test_free_text_people_read_holds_no_control_or_direction_override(zone: str) -> None:
    """A camera zone "\u202eevil" reached a critical alarm's text reversed on the console."""
    event = VALID["pool.supervision"]
    ok = decoder_for("pool.supervision").decode(orjson.dumps({**event, "zone": "lane 3\tnorth"}), now=NOW)
    assert isinstance(ok, PoolSupervisionEvent), ok
    out = decoder_for("pool.supervision").decode(orjson.dumps({**event, "zone": zone}), now=NOW)
    assert isinstance(out, DecodeFailure) and out.code == "invalid" and "`$.zone` holds a control" in out.reason


def test_bytes_that_are_not_utf8_are_not_json_not_a_decoder_bug() -> None:
    value = orjson.dumps(VALID["pool.supervision"]).replace(b"deep end", b"\xe9\xff")
    out = decoder_for("pool.supervision").decode(value, now=NOW)
    assert isinstance(out, DecodeFailure) and out.code == "not_json" and "UTF-8" in out.reason


def test_oversize_is_refused_before_parsing() -> None:
    dec = TopicDecoder(IntersectionFrame, max_bytes=300)
    big = orjson.dumps(frame(detectors=[{"detector_id": f"D{i}", "count": 1, "occupancy": 0.1} for i in range(20)]))
    out = dec.decode(big, now=NOW)
    assert isinstance(out, DecodeFailure) and out.code == "oversize"


def test_clock_skew_against_now() -> None:
    dec = TopicDecoder(IntersectionFrame, clock_skew_s=3600)
    old = datetime.fromtimestamp(NOW - 7200, tz=timezone.utc).isoformat()
    out = dec.decode(orjson.dumps(frame(event_time=old)), now=NOW)
    assert isinstance(out, DecodeFailure) and out.code == "clock_skew"
    future = datetime.fromtimestamp(NOW + 7200, tz=timezone.utc).isoformat()
    assert isinstance(dec.decode(orjson.dumps(frame(event_time=future)), now=NOW), DecodeFailure)


def test_clock_skew_against_the_stream_accepts_replays_but_not_outliers() -> None:
    dec = TopicDecoder(IntersectionFrame, clock_skew_s=3600, reference="stream")
    t2017 = datetime(2017, 8, 18, 12, tzinfo=timezone.utc)
    first = dec.decode(orjson.dumps(frame(event_time=t2017.isoformat())), now=NOW)
    assert isinstance(first, IntersectionFrame)
    later = dec.decode(orjson.dumps(frame(event_time=(t2017 + timedelta(minutes=5)).isoformat())), now=NOW)
    assert isinstance(later, IntersectionFrame)
    outlier = dec.decode(orjson.dumps(frame(event_time=(t2017 + timedelta(days=3)).isoformat())), now=NOW)
    assert isinstance(outlier, DecodeFailure) and outlier.code == "clock_skew"


def test_key_must_match_the_entity() -> None:
    dec = decoder_for("sensors.intersection")
    good = dec.decode(orjson.dumps(frame()), now=NOW, key=b"K1")
    assert isinstance(good, IntersectionFrame)
    bad = dec.decode(orjson.dumps(frame()), now=NOW, key=b"K2")
    assert isinstance(bad, DecodeFailure) and bad.code == "key_mismatch"


def test_a_message_off_the_broker_must_carry_its_key() -> None:
    """An unkeyed message lands on any partition, and the per-entity states that remember the
    offset they reflect would skip one pool's records from the others: refused with a reason
    naming the field, the record not passed on even beside a clock-skew refusal."""
    dec = decoder_for("sensors.intersection")
    value = orjson.dumps(frame())
    assert isinstance(dec.decode_message(RawMessage("t", 0, 0, b"K1", value), now=NOW), IntersectionFrame)
    keyless = dec.decode_message(RawMessage("t", 0, 1, None, value), now=NOW)
    assert isinstance(keyless, DecodeFailure) and keyless.code == "key_missing"
    assert "intersection_id" in keyless.reason and "'K1'" in keyless.reason
    ahead = orjson.dumps(frame(event_time=(datetime.now(timezone.utc) + timedelta(days=10)).isoformat()))
    skewed = dec.decode_message(RawMessage("t", 0, 2, None, ahead), now=NOW)
    assert isinstance(skewed, DecodeFailure) and skewed.code == "clock_skew" and skewed.parsed is None
    with_key = dec.decode_message(RawMessage("t", 0, 3, b"K1", ahead), now=NOW)
    assert isinstance(with_key, DecodeFailure) and isinstance(with_key.parsed, IntersectionFrame)
    assert isinstance(dec.decode(value, now=NOW), IntersectionFrame)  # decode alone does not ask


def test_signal_commands_need_what_their_action_needs() -> None:
    base = {"schema_version": 1, "event_time": TS, "intersection_id": "K1", "actor": "duty-3"}
    dec = decoder_for("signals.approvals")
    for bad in ({"action": "set_mode"}, {"action": "approve"}, {"action": "reject"}, {"action": "set_mode", "mode": "manual"}):
        out = dec.decode(orjson.dumps({**base, **bad}), now=NOW)
        assert isinstance(out, DecodeFailure), bad
    assert isinstance(dec.decode(orjson.dumps({**base, "action": "set_mode", "mode": "off"}), now=NOW), SignalCommand)


# --- issue 10 #17: ids are restricted to a documented character set -------------------------

BAD_IDS = ["K1\x00", "K\u202e1", "K 1", "K1\n", "", "\u00c4rger", "-K1", "x" * 65, "K1\t", "K1\u200f"]


@pytest.mark.parametrize("bad", BAD_IDS, ids=repr)
@pytest.mark.parametrize(
    "topic, field",
    [
        ("sensors.intersection", "intersection_id"),
        ("sensors.pool", "pool_id"),
        ("sensors.bus", "vehicle_id"),
        ("sensors.bus", "trip_id"),
        ("pool.supervision", "event_id"),
        ("events.schedule", "venue_id"),
        ("events.schedule", "event_id"),
        ("signals.state", "intersection_id"),
        ("signals.config", "intersection_id"),
    ],
)
def test_ids_outside_the_character_set_are_refused(topic: str, field: str, bad: str) -> None:
    out = decoder_for(topic).decode(orjson.dumps({**VALID[topic], field: bad}), now=NOW)
    assert isinstance(out, DecodeFailure), (field, bad)
    assert out.code in ("invalid", "out_of_range")
    assert field in out.reason


def test_detector_ids_and_alarm_ids_are_restricted_too() -> None:
    out = decoder_for("sensors.intersection").decode(orjson.dumps(_bad_detector(detector_id="D\u202e1")), now=NOW)
    assert isinstance(out, DecodeFailure) and out.code == "invalid"
    assert "detector_id" in out.reason and "not a valid id" in out.reason
    ack = {**VALID["alerts.acks"], "alert_id": "motionless_swimmer@P\x001~0123456789ab"}
    assert isinstance(decoder_for("alerts.acks").decode(orjson.dumps(ack), now=NOW), DecodeFailure)


@pytest.mark.parametrize(
    "good",
    [
        "K1",
        "gneJ5",
        "cluster_1_2",
        "GS_cluster_357187_359543",
        "1863241632",
        "in:-30503246#1_0",
        "in:-30503246#1_0~a1b2c3d4e5f6",
        "pool-17",
        "rain-1700000000",
        "P1-cam-1700000000-3",
        "B17",
        "K1-N1",
        "a.b/c@d+e",
        "x" * 64,
    ],
)
def test_ids_the_simulators_and_sumo_nets_produce_still_decode(good: str) -> None:
    det = {"detector_id": good, "count": 1, "occupancy": 0.1}
    out = decoder_for("sensors.intersection").decode(orjson.dumps(frame(intersection_id=good, detectors=[det])), now=NOW)
    assert isinstance(out, IntersectionFrame), out


@pytest.mark.parametrize("topic", sorted(INPUT_RECORDS))
def test_deeply_nested_json_is_not_json_not_an_internal_error(topic: str) -> None:
    """Found by the decoder fuzzer: msgspec raised RecursionError, reported as code 'internal'."""
    value = b'{"schema_version":1,"x":' + b'{"":' * 20_000 + b"1" + b"}" * 20_001
    out = decoder_for(topic).decode(value, now=NOW)
    assert isinstance(out, DecodeFailure) and out.code == "not_json", out


def test_a_stage_report_says_whether_its_change_time_is_the_cabinets_own() -> None:
    """``stage_started_exact`` defaults to False (a poller's first sighting teaches the desk no
    clock offset), is carried to the desk when set, and a non-boolean is refused."""
    from streams.signal_codec import desk_state

    dec = decoder_for("signals.state")
    plain = dec.decode(orjson.dumps(VALID["signals.state"]), now=NOW)
    exact = dec.decode(orjson.dumps({**VALID["signals.state"], "stage_started_exact": True}), now=NOW)
    assert isinstance(plain, StageShown) and isinstance(exact, StageShown)
    assert not desk_state(plain).exact and desk_state(exact).exact
    bad = dec.decode(orjson.dumps({**VALID["signals.state"], "stage_started_exact": "yes"}), now=NOW)
    assert isinstance(bad, DecodeFailure) and "stage_started_exact" in bad.reason
