"""Static GTFS in, GTFS-Realtime in (streams/transit_codec.py), on feeds the tests build."""

from __future__ import annotations

import zipfile
from datetime import date, datetime, timezone
from pathlib import Path

import msgspec
import pytest
from google.transit import gtfs_realtime_pb2

from streams.codec import DecodeFailure, TopicDecoder
from streams.records import BusPosition, TripSchedule, encode
from streams.transit_codec import FeedError, decode_gtfs_rt, load_feed, position_of, scheduled_trip

FEED = {
    "agency.txt": "agency_id,agency_name,agency_url,agency_timezone\nA,Test,https://example.invalid,Europe/Berlin\n",
    "stops.txt": "stop_id,stop_name,stop_lat,stop_lon\nS1,One,48.1,11.5\nS2,Two,48.11,11.51\nS3,Three,48.12,11.52\n",
    "routes.txt": "route_id,agency_id,route_short_name,route_type\nR1,A,1,3\n",
    "trips.txt": "route_id,service_id,trip_id,direction_id\nR1,WK,T1,0\nR1,SUN,T2,1\nR1,GONE,T3,0\n",
    "stop_times.txt": (
        "trip_id,arrival_time,departure_time,stop_id,stop_sequence\n"
        "T1,07:00:00,07:00:30,S1,1\nT1,,,S2,2\nT1,07:10:00,07:10:00,S3,3\n"
        "T2,24:50:00,24:50:00,S3,1\nT2,25:05:00,25:05:00,S1,5\n"
        "T3,08:00:00,08:00:00,S1,1\nT3,08:05:00,08:05:00,S2,2\n"
    ),
    # weekdays of the first week of March 2026, minus the Wednesday; Sunday by exception only
    "calendar.txt": (
        "service_id,monday,tuesday,wednesday,thursday,friday,saturday,sunday,start_date,end_date\n"
        "WK,1,1,1,1,1,0,0,20260302,20260306\nGONE,1,1,1,1,1,1,1,20250101,20250131\n"
    ),
    "calendar_dates.txt": "service_id,date,exception_type\nWK,20260304,2\nSUN,20260308,1\n",
}


def write(path: Path, files: dict[str, str]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, text in files.items():
            zf.writestr(name, text)
    return path


def test_calendar_exceptions_times_past_midnight_and_timepoints(tmp_path: Path) -> None:
    loaded = load_feed(write(tmp_path / "f.zip", FEED), first=date(2026, 3, 1), days=14, feed_id="v1")
    by_id = {r.trip_id: r for r in loaded.records}
    assert set(by_id) == {"T1", "T2"} and loaded.skipped == {"no service day in the window": 1}
    assert by_id["T1"].service_dates == [date(2026, 3, d) for d in (2, 3, 5, 6)]
    assert by_id["T2"].service_dates == [date(2026, 3, 8)] and by_id["T2"].direction_id == 1
    # S2 has no time (not a timepoint): left out; a time past 24:00 stays past it
    assert [(s.stop_id, s.arrival_s) for s in by_id["T1"].stops] == [("S1", 25_200), ("S3", 25_800)]
    assert by_id["T2"].stops[-1].arrival_s == 25 * 3600 + 300
    assert by_id["T1"].timezone == "Europe/Berlin" and by_id["T1"].feed_id == "v1"
    # records survive the wire and become the core's trips
    again = msgspec.json.decode(encode(by_id["T1"]), type=TripSchedule)
    trip = scheduled_trip(again)
    assert trip.stops[0].lat == 48.1 and date(2026, 3, 4) not in trip.service_dates


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({k: v for k, v in FEED.items() if k != "stop_times.txt"}, "stop_times.txt"),
        ({k: v for k, v in FEED.items() if k not in ("calendar.txt", "calendar_dates.txt")}, "neither calendar.txt"),
    ],
)
def test_incomplete_feeds_are_one_error(tmp_path: Path, files: dict[str, str], message: str) -> None:
    with pytest.raises(FeedError, match=message):
        load_feed(write(tmp_path / "f.zip", files))


@pytest.mark.parametrize("zone", ["Europe/Berlin/", "Europe/Berln", "../etc/passwd"])
def test_a_time_zone_nobody_knows_is_refused_at_load_and_on_the_topic(tmp_path: Path, zone: str) -> None:
    """One such record on transit.schedule crashed the worker at every start (ZoneInfo raised
    in the bus agent's timetable task): the loader refuses the feed, the decoder the record."""
    feed = FEED | {"agency.txt": FEED["agency.txt"].replace("Europe/Berlin", zone)}
    with pytest.raises(FeedError, match="agency_timezone"):
        load_feed(write(tmp_path / "f.zip", feed), first=date(2026, 3, 1), days=14)
    good = load_feed(write(tmp_path / "g.zip", FEED), first=date(2026, 3, 1), days=14).records[0]
    wire = encode(good).replace(b'"Europe/Berlin"', msgspec.json.encode(zone))
    out = TopicDecoder(TripSchedule).decode(wire, now=good.event_time.timestamp())
    assert isinstance(out, DecodeFailure) and "unknown time zone" in out.reason


def test_not_a_feed(tmp_path: Path) -> None:
    (tmp_path / "x.zip").write_bytes(b"not a zip")
    with pytest.raises(FeedError, match="not a readable GTFS feed"):
        load_feed(tmp_path / "x.zip")
    with pytest.raises(FeedError, match="no such file"):
        load_feed(tmp_path / "missing.zip")


def feed_message() -> bytes:
    """A real GTFS-Realtime message built with the bindings: positions, a trip update, junk."""
    msg = gtfs_realtime_pb2.FeedMessage()
    msg.header.gtfs_realtime_version = "2.0"
    msg.header.timestamp = 1_772_500_000
    e = msg.entity.add(id="e1")
    v = e.vehicle
    v.vehicle.id = "bus-7"
    v.trip.trip_id, v.trip.route_id = "T1", "R1"
    v.position.latitude, v.position.longitude, v.position.bearing, v.position.speed = 48.1, 11.5, 370.0, 8.5
    v.current_stop_sequence, v.stop_id = 2, "S2"
    v.current_status = gtfs_realtime_pb2.VehiclePosition.STOPPED_AT
    v.occupancy_status = gtfs_realtime_pb2.VehiclePosition.STANDING_ROOM_ONLY
    v.timestamp = 1_772_499_990
    e2 = msg.entity.add(id="e2")  # no trip: cannot be held against a timetable
    e2.vehicle.vehicle.id = "bus-8"
    e2.vehicle.position.latitude, e2.vehicle.position.longitude = 48.0, 11.0
    e3 = msg.entity.add(id="e3")  # the trip's delay, stated in a TripUpdate
    e3.trip_update.trip.trip_id = "T1"
    stu = e3.trip_update.stop_time_update.add(stop_sequence=2)
    stu.arrival.delay = 95
    e4 = msg.entity.add(id="e4")  # a position with an impossible latitude
    e4.vehicle.trip.trip_id, e4.vehicle.trip.route_id, e4.vehicle.timestamp = "T2", "R1", 1_772_499_990
    e4.vehicle.position.latitude, e4.vehicle.position.longitude = 123.0, 11.0
    return msg.SerializeToString()


def test_gtfs_rt_real_protobuf() -> None:
    out = decode_gtfs_rt(feed_message())
    assert len(out.records) == 1
    r = out.records[0]
    assert (r.vehicle_id, r.trip_id, r.route_id, r.current_stop_sequence, r.stop_id) == ("bus-7", "T1", "R1", 2, "S2")
    assert r.current_status == "STOPPED_AT" and r.occupancy_status == "STANDING_ROOM_ONLY"
    assert r.delay_s == 95 and r.bearing_deg == pytest.approx(10.0) and r.speed_mps == pytest.approx(8.5)
    assert r.event_time == datetime.fromtimestamp(1_772_499_990, timezone.utc)
    assert sum(out.skipped.values()) == 3 and out.skipped["not a vehicle position"] == 1
    # the record decodes as the worker will, and becomes the core's position
    back = msgspec.json.decode(encode(r), type=BusPosition)
    assert position_of(back).status == "STOPPED_AT"


def test_gtfs_rt_garbage_is_one_error() -> None:
    with pytest.raises(FeedError, match="not a GTFS-Realtime FeedMessage"):
        decode_gtfs_rt(b"\xff\xff\xff\x00garbage")
