"""Buses between the wire and the core: static GTFS feeds -> ``TripSchedule`` records ->
``transit.schedule`` types; GTFS-Realtime protobuf -> ``BusPosition`` records -> core positions.

The static feed is read with gtfs-kit (maintained, pandas based; it applies calendar.txt and
calendar_dates.txt for us through ``get_active_services``). GTFS-Realtime is decoded with
Google's gtfs-realtime-bindings, the reference protobuf classes. Both libraries are imported
inside the functions that need them: the worker that only reads records never loads them.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import msgspec

from transit.adherence import Passage, Position
from transit.headways import Headway
from transit.monitor import punctuality_of
from transit.schedule import ScheduledStop, ScheduledTrip, Timetable

from .records import BusPassage, BusPosition, TripSchedule, encode, known_time_zone


class FeedError(ValueError):
    """A static feed that cannot be loaded: one line for the CLI."""


@dataclass
class FeedLoad:
    """What a static feed gave: the records, and what was left out and why."""

    records: list[TripSchedule] = field(default_factory=list)
    skipped: dict[str, int] = field(default_factory=dict)
    dates: tuple[date, date] | None = None

    def skip(self, reason: str) -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + 1


def _read(path: Path) -> Any:
    import gtfs_kit

    if not (path.is_file() or path.is_dir()):  # a zip, or the folder it unpacks to (gtfs-kit reads both)
        raise FeedError(f"no such file or folder: {path}")
    try:
        feed = gtfs_kit.read_feed(path, dist_units="km")
    except Exception as exc:  # gtfs-kit raises anything from zipfile, pandas or its own checks
        raise FeedError(
            f"{path}: not a readable GTFS feed ({type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''})"
        ) from None
    for table in ("agency", "stops", "routes", "trips", "stop_times"):
        if getattr(feed, table, None) is None:
            raise FeedError(f"{path}: the feed has no {table}.txt")
    if getattr(feed, "calendar", None) is None and getattr(feed, "calendar_dates", None) is None:
        raise FeedError(f"{path}: the feed has neither calendar.txt nor calendar_dates.txt")
    return feed


def _service_dates(feed: Any, first: date | None, days: int) -> tuple[dict[str, list[date]], tuple[date, date] | None]:
    import gtfs_kit

    all_dates = [d for d in gtfs_kit.get_dates(feed, as_date_obj=True)]
    start = first or (all_dates[0] if all_dates else None)
    if start is None:
        return {}, None
    end = start + timedelta(days=days - 1)
    out: dict[str, list[date]] = defaultdict(list)
    for day in all_dates:
        if start <= day <= end:
            for service in gtfs_kit.get_active_services(feed, f"{day:%Y%m%d}"):
                out[str(service)].append(day)
    return out, (start, end)


def load_feed(path: Path, *, first: date | None = None, days: int = 366, feed_id: str = "") -> FeedLoad:
    """Every trip of the feed that runs in the window, as checked ``TripSchedule`` records."""
    feed = _read(path)
    tz = str(feed.agency["agency_timezone"].iloc[0])
    if not known_time_zone(tz):
        raise FeedError(f"{path}: agency_timezone {tz!r} is not an IANA time zone name (such as Europe/Berlin)")
    services, window = _service_dates(feed, first, days)
    places = {str(r.stop_id): (float(r.stop_lat), float(r.stop_lon)) for r in feed.stops.itertuples() if r.stop_lat == r.stop_lat}
    times = feed.stop_times.sort_values(["trip_id", "stop_sequence"])
    by_trip = {str(k): g for k, g in times.groupby("trip_id", sort=False)}
    result = FeedLoad(dates=window)
    now = datetime.now(timezone.utc)
    for trip in feed.trips.itertuples():
        dates = services.get(str(trip.service_id))
        if not dates:
            result.skip("no service day in the window")
            continue
        rows = by_trip.get(str(trip.trip_id))
        if rows is None:
            result.skip("no stop times")
            continue
        direction = getattr(trip, "direction_id", 0)
        obj = {
            "schema_version": 1,
            "event_time": now,
            "trip_id": str(trip.trip_id),
            "route_id": str(trip.route_id),
            "direction_id": int(direction) if direction == direction and direction is not None else 0,
            "timezone": tz,
            "feed_id": feed_id[:64],
            "service_dates": dates[:1000],
            "stops": _stops(rows, places),
        }
        try:
            record = msgspec.convert(obj, TripSchedule)
        except (msgspec.ValidationError, ValueError) as exc:
            result.skip(f"invalid trip: {str(exc).splitlines()[0][:120]}")
            continue
        result.records.append(record)
    return result


def _stops(rows: Any, places: dict[str, tuple[float, float]]) -> list[dict[str, Any]]:
    """A trip's stop times; a stop without an arrival time takes its departure (GTFS allows
    times only at timepoints: such a stop without either is left out)."""
    import gtfs_kit

    out = []
    for r in rows.itertuples():
        text = r.arrival_time if isinstance(r.arrival_time, str) and r.arrival_time else r.departure_time
        if not isinstance(text, str) or not text:
            continue
        place = places.get(str(r.stop_id), (None, None))
        out.append(
            {
                "stop_id": str(r.stop_id),
                "sequence": int(r.stop_sequence),
                "arrival_s": int(gtfs_kit.timestr_to_seconds(text)),
                "lat": place[0],
                "lon": place[1],
            }
        )
    return out


def scheduled_trip(record: TripSchedule) -> ScheduledTrip:
    """The core's trip of a ``transit.schedule`` record."""
    stops = tuple(ScheduledStop(s.stop_id, s.sequence, s.arrival_s, s.lat, s.lon) for s in record.stops)
    return ScheduledTrip(record.trip_id, record.route_id, record.direction_id, stops, frozenset(record.service_dates))


def timetable_of(records: list[TripSchedule]) -> Timetable:
    """A timetable of records (the time zone of the first; a feed has one agency zone)."""
    tz = records[0].timezone if records else "UTC"
    return Timetable({r.trip_id: scheduled_trip(r) for r in records}, tz)


def position_of(record: BusPosition) -> Position:
    """The core's view of a ``sensors.bus`` record."""
    return Position(
        record.vehicle_id,
        record.trip_id,
        record.route_id,
        record.event_time.timestamp(),
        record.current_stop_sequence,
        record.current_status,
        record.latitude,
        record.longitude,
        record.occupancy_status,
    )


#: a passage delay beyond a day is clamped to it on the wire (the record's bound): such a bus is
#: judged against the wrong service day, and the history should still take the row
_DAY_S = 86_400.0


def passage_record(p: Passage, headway: Headway | None, on_time: tuple[float, float]) -> BusPassage:
    """The ``transit.passages`` record of a stop passage; ``headway`` when it closed one (the
    follower's passage of the same stop)."""
    delay = min(max(p.delay_s, -_DAY_S), _DAY_S)
    record = BusPassage(
        schema_version=1,
        event_time=datetime.fromtimestamp(p.t, tz=timezone.utc),
        route_id=p.route_id,
        direction_id=p.direction_id,
        trip_id=p.trip_id,
        vehicle_id=p.vehicle_id,
        stop_id=p.stop_id,
        stop_index=p.index,
        scheduled_at=datetime.fromtimestamp(p.scheduled, tz=timezone.utc),
        delay_s=round(delay, 1),
        punctuality=punctuality_of(p.delay_s, on_time),
    )
    if headway is None:
        return record
    return msgspec.structs.replace(
        record,
        headway_s=round(min(max(headway.observed_s, 0.0), _DAY_S), 1),
        scheduled_headway_s=round(min(headway.scheduled_s, _DAY_S), 1),
        headway_kind=headway.kind,
    )


def encode_schedule(records: list[TripSchedule]) -> list[tuple[bytes, bytes]]:
    """(key, value) pairs for ``transit.schedule``: keyed by trip id, so compaction keeps each
    trip's latest version."""
    return [(r.trip_id.encode(), encode(r)) for r in records]


# --- GTFS-Realtime ------------------------------------------------------------------------

#: VehiclePosition.VehicleStopStatus and OccupancyStatus numbers -> the record's names
_STATUS = {0: "INCOMING_AT", 1: "STOPPED_AT", 2: "IN_TRANSIT_TO"}
_OCCUPANCY = {
    0: "EMPTY",
    1: "MANY_SEATS_AVAILABLE",
    2: "FEW_SEATS_AVAILABLE",
    3: "STANDING_ROOM_ONLY",
    4: "CRUSHED_STANDING_ROOM_ONLY",
    5: "FULL",
    6: "NOT_ACCEPTING_PASSENGERS",
}


@dataclass
class RealtimeDecode:
    """The positions of one FeedMessage, and the entities left out by reason."""

    records: list[BusPosition] = field(default_factory=list)
    skipped: dict[str, int] = field(default_factory=dict)

    def skip(self, reason: str) -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + 1


def decode_gtfs_rt(data: bytes) -> RealtimeDecode:
    """A GTFS-Realtime ``FeedMessage`` -> ``BusPosition`` records, each checked by decoding it as
    the worker will. An entity without a vehicle position, trip, route or timestamp is skipped
    and counted (a position without a trip cannot be held against a timetable)."""
    from google.protobuf.message import DecodeError
    from google.transit import gtfs_realtime_pb2

    message = gtfs_realtime_pb2.FeedMessage()
    try:
        message.ParseFromString(data)
    except DecodeError:
        raise FeedError("not a GTFS-Realtime FeedMessage (protobuf did not parse)") from None
    delays = _trip_delays(message)
    out = RealtimeDecode()
    for entity in message.entity:
        if not entity.HasField("vehicle"):
            out.skip("not a vehicle position")
            continue
        v = entity.vehicle
        stamp = v.timestamp or message.header.timestamp
        if not (v.HasField("position") and v.trip.trip_id and v.trip.route_id and stamp):
            out.skip("no position, trip, route or timestamp")
            continue
        obj: dict[str, Any] = {
            "schema_version": 1,
            "event_time": datetime.fromtimestamp(stamp, timezone.utc),
            "vehicle_id": v.vehicle.id or entity.id,
            "trip_id": v.trip.trip_id,
            "route_id": v.trip.route_id,
            "latitude": v.position.latitude,
            "longitude": v.position.longitude,
            "current_stop_sequence": v.current_stop_sequence,
            "delay_s": delays.get(v.trip.trip_id),
            "stop_id": v.stop_id or None,
            "current_status": _STATUS.get(v.current_status) if v.HasField("current_status") or v.current_stop_sequence else None,
            "bearing_deg": v.position.bearing % 360.0 if v.position.HasField("bearing") else None,
            "speed_mps": v.position.speed if v.position.HasField("speed") else None,
            "occupancy_status": _OCCUPANCY.get(v.occupancy_status) if v.HasField("occupancy_status") else None,
        }
        try:
            out.records.append(msgspec.convert(obj, BusPosition))
        except (msgspec.ValidationError, ValueError) as exc:
            out.skip(f"invalid: {str(exc).splitlines()[0][:100]}")
    return out


def _trip_delays(message: Any) -> dict[str, float]:
    """Delays the same feed states in TripUpdates (trip delay, else the first stop update's)."""
    out: dict[str, float] = {}
    for entity in message.entity:
        if not entity.HasField("trip_update"):
            continue
        tu = entity.trip_update
        if tu.HasField("delay"):
            out[tu.trip.trip_id] = float(tu.delay)
            continue
        for stu in tu.stop_time_update:
            event = stu.arrival if stu.HasField("arrival") else stu.departure
            if event.HasField("delay"):
                out[tu.trip.trip_id] = float(event.delay)
                break
    return out
