"""The timetable as the core sees it: trips, their stops in order, the days they run.

GTFS times are seconds after "noon minus 12 h" of the service day in the agency's time zone
(so a trip at 25:10:00 runs after midnight, and a DST day still counts from the right origin);
:meth:`Timetable.times` turns them into epoch seconds for the service day that fits a moment.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

#: how far before its first stop or after its last one a trip still counts as running (a bus
#: waits at the terminal, or runs very late)
BEFORE_START_S = 2 * 3600.0
AFTER_END_S = 3 * 3600.0


@dataclass(frozen=True)
class ScheduledStop:
    """One stop time of a trip: where and when (seconds after the service day's origin)."""

    stop_id: str
    sequence: int
    arrival_s: int
    lat: float | None = None
    lon: float | None = None


@dataclass(frozen=True)
class ScheduledTrip:
    """One GTFS trip with its stop times in ``stop_sequence`` order and its service dates."""

    trip_id: str
    route_id: str
    direction_id: int
    stops: tuple[ScheduledStop, ...]
    service_dates: frozenset[date]

    def __post_init__(self) -> None:
        if len(self.stops) < 2:
            raise ValueError(f"trip {self.trip_id!r} has fewer than two stops")
        seqs = [s.sequence for s in self.stops]
        if seqs != sorted(set(seqs)):
            raise ValueError(f"trip {self.trip_id!r}: stop_sequence values must increase")
        times = [s.arrival_s for s in self.stops]
        if any(b < a for a, b in zip(times, times[1:])):
            raise ValueError(f"trip {self.trip_id!r}: arrival times go backwards")

    def index_of(self, sequence: int) -> int | None:
        """Index into :attr:`stops` of a ``stop_sequence`` (None: not a stop of this trip)."""
        for k, stop in enumerate(self.stops):
            if stop.sequence == sequence:
                return k
        return None


def service_origin(day: date, tz: ZoneInfo) -> float:
    """Epoch seconds of a service day's GTFS origin: local noon minus 12 hours."""
    return datetime.combine(day, time(12), tz).timestamp() - 43_200.0


@dataclass(frozen=True)
class Timetable:
    """Every trip of a feed by id, and the time zone its times are in."""

    trips: Mapping[str, ScheduledTrip]
    timezone: str = "UTC"
    _zone: ZoneInfo = field(init=False, repr=False, compare=False)
    _origins: dict[date, float] = field(init=False, repr=False, compare=False, default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_zone", ZoneInfo(self.timezone))

    def service_day(self, trip: ScheduledTrip, when: float) -> float | None:
        """The GTFS origin (epoch) of the service day of ``trip`` running around ``when``.

        A trip past midnight belongs to yesterday's service day, so yesterday, today and
        tomorrow (a bus waiting before a trip just after midnight) are candidates; the one whose
        span is nearest to ``when`` wins. None: the trip does not run then.
        """
        if not math.isfinite(when):
            return None
        today = datetime.fromtimestamp(when, self._zone).date()
        best: tuple[float, float] | None = None
        for day in (today - timedelta(days=1), today, today + timedelta(days=1)):
            if day not in trip.service_dates:
                continue
            origin = self._origin(day)
            first, last = origin + trip.stops[0].arrival_s, origin + trip.stops[-1].arrival_s
            if not first - BEFORE_START_S <= when <= last + AFTER_END_S:
                continue
            distance = max(0.0, first - when, when - last)
            if best is None or distance < best[0]:
                best = (distance, origin)
        return None if best is None else best[1]

    def times(self, trip_id: str, when: float) -> tuple[float, ...] | None:
        """Scheduled arrival (epoch seconds) at each stop of the trip's run around ``when``."""
        trip = self.trips.get(trip_id)
        if trip is None:
            return None
        origin = self.service_day(trip, when)
        if origin is None:
            return None
        return tuple(origin + s.arrival_s for s in trip.stops)

    def _origin(self, day: date) -> float:
        origin = self._origins.get(day)
        if origin is None:
            origin = self._origins[day] = service_origin(day, self._zone)
        return origin
