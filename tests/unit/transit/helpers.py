"""A small line for the transit tests: stops 500 m apart eastwards, trips every ``headway_s``."""

from __future__ import annotations

from datetime import date, datetime, timezone
from zoneinfo import ZoneInfo

from transit.adherence import Position
from transit.schedule import ScheduledStop, ScheduledTrip, Timetable, service_origin

DAY = date(2026, 3, 3)
LAT, LON0 = 48.0, 11.0
STEP_LON = 500.0 / (111_320.0 * 0.6691)  # ~500 m at 48 deg N
ORIGIN = service_origin(DAY, ZoneInfo("UTC"))


def stop_place(k: int) -> tuple[float, float]:
    return LAT, LON0 + k * STEP_LON


def line(trips: int = 4, stops: int = 6, headway_s: int = 600, first_s: int = 8 * 3600, run_s: int = 120, route: str = "L1") -> Timetable:
    """``trips`` trips of ``route`` (direction 0), ``run_s`` between stops."""
    out = {}
    for n in range(trips):
        start = first_s + n * headway_s
        st = tuple(ScheduledStop(f"S{k}", k + 1, start + k * run_s, *stop_place(k)) for k in range(stops))
        trip_id = f"{route}-T{n}"
        out[trip_id] = ScheduledTrip(trip_id, route, 0, st, frozenset({DAY}))
    return Timetable(out, "UTC")


def at_stop(trip: str, k: int, t: float, vehicle: str | None = None, route: str = "L1") -> Position:
    """A position STOPPED_AT stop index ``k`` at epoch ``t``."""
    lat, lon = stop_place(k)
    return Position(vehicle or f"v-{trip}", trip, route, t, k + 1, "STOPPED_AT", lat, lon)


def between(trip: str, k: int, f: float, t: float, vehicle: str | None = None, route: str = "L1") -> Position:
    """A position a fraction ``f`` of the way from stop ``k`` to ``k + 1``."""
    lat, lon = stop_place(k)
    return Position(vehicle or f"v-{trip}", trip, route, t, k + 2, "IN_TRANSIT_TO", lat, lon + f * STEP_LON)


def when(seconds_after_origin: float) -> float:
    return ORIGIN + seconds_after_origin


def iso(t: float) -> str:
    return datetime.fromtimestamp(t, timezone.utc).isoformat()
