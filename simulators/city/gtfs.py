"""The synthetic city's bus lines as a static GTFS feed, so the demo loads its timetable the way
a real city's is loaded (``leitstand gtfs load``), and the timetable the core sees directly.

Every simulated trip is a GTFS trip on its own service day: the city's timetable follows the
day kind (weekday, Saturday, holiday), so each service day gets a ``service_id`` of its own
(``D20260302``) in ``calendar_dates.txt`` instead of weekly patterns in ``calendar.txt``. Times
are seconds after the service day's noon minus 12 h, past 24:00 for trips after midnight, as
GTFS defines them. Stop ids are the ones the positions carry (``L1-S03``).
"""

from __future__ import annotations

import csv
import io
import zipfile
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from transit.schedule import ScheduledStop, ScheduledTrip, Timetable, service_origin

from .buses import Line, Trip, build_lines, simulate_line
from .calendar import plan_rain
from .types import CityConfig

AGENCY_ID = "leitstand-city"


def stop_id(route_id: str, original_index: int) -> str:
    """The id of a line's stop by its index in direction 0 (shared by both directions)."""
    return f"{route_id}-S{original_index + 1:02d}"


def city_trips(config: CityConfig, t0: float, t1: float) -> tuple[list[Line], list[Trip]]:
    """The lines and every trip of a run, as the city simulates them."""
    lines = build_lines(config)
    rain = plan_rain(config, t0, t1)
    return lines, [trip for line in lines for trip in simulate_line(config, line, t0, t1, rain)]


def _service_day(config: CityConfig, trip: Trip) -> date:
    # the trip id carries the local date of its departure, which is its service day
    return datetime.strptime(trip.trip_id.rsplit("-", 2)[1], "%Y%m%d").date()


def _stop_times(config: CityConfig, trip: Trip) -> list[tuple[str, int, int]]:
    """(stop_id, stop_sequence, seconds after the service day's origin) of a trip."""
    tz = ZoneInfo(config.timezone)
    origin = service_origin(_service_day(config, trip), tz)
    n = len(trip.stops)
    out = []
    for k, when in enumerate(trip.scheduled):
        original = k if trip.direction == 0 else n - 1 - k
        out.append((stop_id(trip.route_id, original), k + 1, round(when - origin)))
    return out


def timetable_of(config: CityConfig, lines: list[Line], trips: list[Trip]) -> Timetable:
    """The core's timetable of the trips, equal to what loading :func:`write_feed`'s zip gives."""
    places = {stop_id(line.route_id, k): place for line in lines for k, place in enumerate(line.stops)}
    out = {}
    for trip in trips:
        stops = tuple(ScheduledStop(sid, seq, sec, *places[sid]) for sid, seq, sec in _stop_times(config, trip))
        out[trip.trip_id] = ScheduledTrip(trip.trip_id, trip.route_id, trip.direction, stops, frozenset({_service_day(config, trip)}))
    return Timetable(out, config.timezone)


def _table(header: list[str], rows: list[list[object]]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buf.getvalue()


def _hms(seconds: int) -> str:
    return f"{seconds // 3600:02d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def feed_tables(config: CityConfig, lines: list[Line], trips: list[Trip]) -> dict[str, str]:
    """The feed's files (name -> CSV text), deterministic for the same run."""
    stops: list[list[object]] = [
        [stop_id(line.route_id, k), f"{line.route_id} stop {k + 1}", lat, lon] for line in lines for k, (lat, lon) in enumerate(line.stops)
    ]
    routes: list[list[object]] = [[line.route_id, AGENCY_ID, line.route_id, f"City line {line.route_id}", 3] for line in lines]
    days = sorted({_service_day(config, trip) for trip in trips})
    trip_rows: list[list[object]] = []
    time_rows: list[list[object]] = []
    for trip in sorted(trips, key=lambda tr: tr.trip_id):
        trip_rows.append([trip.route_id, f"D{_service_day(config, trip):%Y%m%d}", trip.trip_id, trip.direction, trip.vehicle_id])
        for sid, seq, sec in _stop_times(config, trip):
            time_rows.append([trip.trip_id, _hms(sec), _hms(sec), sid, seq])
    return {
        "agency.txt": _table(
            ["agency_id", "agency_name", "agency_url", "agency_timezone"],
            [[AGENCY_ID, "Leitstand synthetic city", "https://example.invalid/", config.timezone]],
        ),
        "stops.txt": _table(["stop_id", "stop_name", "stop_lat", "stop_lon"], stops),
        "routes.txt": _table(["route_id", "agency_id", "route_short_name", "route_long_name", "route_type"], routes),
        "trips.txt": _table(["route_id", "service_id", "trip_id", "direction_id", "block_id"], trip_rows),
        "stop_times.txt": _table(["trip_id", "arrival_time", "departure_time", "stop_id", "stop_sequence"], time_rows),
        "calendar_dates.txt": _table(["service_id", "date", "exception_type"], [[f"D{d:%Y%m%d}", f"{d:%Y%m%d}", 1] for d in days]),
    }


def write_feed(path: Path, config: CityConfig, lines: list[Line], trips: list[Trip]) -> int:
    """Write the feed as a zip (fixed timestamps: the same run gives the same bytes); trips written."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, text in feed_tables(config, lines, trips).items():
            zf.writestr(zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0)), text)
    return len(trips)
