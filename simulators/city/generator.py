"""A deterministic synthetic city with ground truth: the sensor streams Leitstand reads.

A pure generator (no Kafka, no asyncio, no wall clock): the Kafka producer, the demo and the
evaluation are built on top. Same config, start and duration -> byte-identical emissions and
ground truth; every source draws from its own ``random.Random`` derived from the seed.

What it models (details in docs/simulators.md and the helper modules):

* ``calendar``: weekday / Saturday / Sunday demand profiles on the local clock, public
  holidays of a German state (``holidays``), school holidays from a calendar file, rain,
  a football match at the ``stadium`` and a concert at the ``arena``;
* ``traffic``: a street grid of signalised intersections ``K1..Kn`` with four approaches
  of two lanes (detectors ``K3-N1``), a point-queue model per approach, neighbours feeding
  each other; blocked lanes and stuck / silent / noisy detectors;
* ``buses``: lines ``L1..`` with timetables, stochastic running times, headway-driven
  boarding (bunching emerges), GTFS-RT-like positions;
* ``pools``: indoor pools ``hallenbad-1..`` with bathers, chemistry, pump failures,
  pH probe faults and camera events.

The API::

    config = CityConfig(intersections=12, pools=2, bus_lines=2, seed=1)
    city = City(config, start=datetime(2026, 7, 3, 6, tzinfo=timezone.utc), duration_s=10 * 3600)
    for e in city.stream():          # == city_stream(config, start, duration_s)
        produce(topic=prefix + e.topic, key=e.key, value=e.value, timestamp=e.t)
    truth = city.truth()             # == city_truth(config, start, duration_s)
    write_truth(path, truth)         # JSON lines, sorted keys

``city_truth`` does not need the stream to have been consumed: the plan (events, rain,
incidents, faults, pump failures, camera events) is drawn up front, and the two emergent
kinds of truth (water outside its band, bus bunching) come from re-running the cheap pool and
bus simulations. The schedule (``events.schedule``: the run's events, public and school
holidays within the run and the week after it, rain forecasts) is emitted at ``start``,
ahead of what it announces.

Truth kinds and the alarm Leitstand should raise (``expected_alarm``; docs/alarms.md):

=======================  ========================  ========  ===========================
kind                     expected_alarm            severity  subject
=======================  ========================  ========  ===========================
incident                 incident_<N|E|S|W>        major     intersection
detector_stuck           detector_fault_<det id>   minor     intersection
detector_silent          detector_fault_<det id>   minor     intersection
detector_noisy           None                      None      intersection
dosing_failure           None (cause)              None      pool
ph_pump_failure          None (cause)              None      pool
water_violation          water_free_chlorine |     major     pool
                         water_ph | water_redox
sensor_stuck             sensor_ph                 minor     pool
sensor_spike             sensor_ph                 minor     pool
motionless_swimmer       motionless_swimmer        critical  pool
person_in_closed_zone    person_in_closed_zone     critical  pool
bus_bunching             None (scored apart:       None      route
                         run_evaluation.bus_evaluation)
event                    None                      None      venue (stadium, arena)
weather                  None                      None      city
holiday, school_holiday  None                      None      city
=======================  ========================  ========  ===========================
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Iterator
from datetime import date, datetime, timedelta, timezone
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Literal
from zoneinfo import ZoneInfo

from streams.records import ScheduledEvent, WeatherForecast, encode

from .buses import Trip, build_lines, bunching_truth, bus_emissions, simulate_line
from .calendar import (
    RainPeriod,
    VenueEvent,
    demand_profile,
    load_school_holidays,
    plan_events,
    plan_rain,
    public_holiday,
)
from .pools import PoolRun, pool_emissions, pool_ids, simulate_pool
from .traffic import (
    DetectorFault,
    GridJunction,
    LaneBlock,
    build_grid,
    hourly_served,
    injection_truth,
    plan_injections,
    traffic_emissions,
    venue_sites,
)
from .types import CityConfig, Emission, GroundTruth, utc

if TYPE_CHECKING:
    from .signal_plans import ClosedLoop

__all__ = [
    "City",
    "CityHistory",
    "CityConfig",
    "Emission",
    "GroundTruth",
    "city_stream",
    "city_truth",
    "demand_profile",
    "load_school_holidays",
    "truth_jsonl",
    "write_truth",
]

#: the schedule kinds of the calendar's days (public and school holidays)
CalendarKind = Literal["holiday", "school_holiday"]
CITY_VENUE = "city"  # venue id of city-wide schedule entries (holidays, weather)
SCHEDULE_AHEAD_DAYS = 7  # holidays are announced for the run and the week after it


class City:
    """One run of the city: its plan is drawn once, its streams and truth derive from it."""

    def __init__(self, config: CityConfig, start: datetime, duration_s: float) -> None:
        if start.tzinfo is None:
            raise ValueError("start must be timezone-aware (the simulated clock is absolute)")
        if duration_s <= 0:
            raise ValueError("duration_s must be positive")
        self.config = config
        self.t0 = start.timestamp()
        self.t1 = self.t0 + duration_s

    # --- the plan -------------------------------------------------------------------------

    @cached_property
    def grid(self) -> list[GridJunction]:
        return build_grid(self.config)

    @cached_property
    def events(self) -> list[VenueEvent]:
        return plan_events(self.config, self.t0, self.t1, venue_sites(self.grid))

    @cached_property
    def rain(self) -> list[RainPeriod]:
        return plan_rain(self.config, self.t0, self.t1)

    @cached_property
    def traffic_injections(self) -> tuple[list[LaneBlock], list[DetectorFault]]:
        return plan_injections(self.config, self.grid, self.t0, self.t1)

    def _pools(self) -> list[PoolRun]:
        return [simulate_pool(self.config, p, self.t0, self.t1, self.rain) for p in pool_ids(self.config)]

    def _bus_trips(self) -> list[Trip]:
        return [trip for line in build_lines(self.config) for trip in simulate_line(self.config, line, self.t0, self.t1, self.rain)]

    def calendar_days(self) -> list[tuple[CalendarKind, date, str]]:
        """(kind, day, name) of public and school holidays from the run's start to a week after it."""
        tz = ZoneInfo(self.config.timezone)
        first = datetime.fromtimestamp(self.t0, tz).date()
        last = datetime.fromtimestamp(self.t1, tz).date() + timedelta(days=SCHEDULE_AHEAD_DAYS)
        out: list[tuple[CalendarKind, date, str]] = []
        for n in range((last - first).days + 1):
            day = first + timedelta(days=n)
            name = public_holiday(day, self.config.state)
            if name:
                out.append(("holiday", day, name))
        for a, b in self.config.school_holidays:
            if a <= last and b >= first:
                out.append(("school_holiday", a, f"Schulferien bis {b.isoformat()}"))
        return out

    # --- outputs --------------------------------------------------------------------------

    def schedule(self) -> list[ScheduledEvent]:
        """What a city calendar publishes ahead: events, holidays, school holidays, rain."""
        now = utc(self.t0)
        tz = ZoneInfo(self.config.timezone)
        out = [_venue_entry(e, now) for e in self.events]
        for kind, day, name in self.calendar_days():
            if kind == "holiday":
                start, end = _day_bounds(day, day, tz)
            else:
                last = next(b for a, b in self.config.school_holidays if a == day)
                start, end = _day_bounds(day, last, tz)
            out.append(
                ScheduledEvent(
                    schema_version=1,
                    event_time=now,
                    venue_id=CITY_VENUE,
                    event_id=f"{kind}-{day.isoformat()}",
                    kind=kind,
                    starts_at=start,
                    ends_at=end,
                    title=name,
                )
            )
        out += [_rain_entry(r, now) for r in self.rain]
        return _schedule_order(out)

    def stream(self, signals: ClosedLoop | None = None) -> Iterator[Emission]:
        """All records of the run in event-time order (ties: topic, then key).

        ``signals``: the demo's closed loop (``signal_plans.ClosedLoop``): the junctions' green
        shares follow the plans the control worker drives, and the delay against fixed time is
        booked there. Without it (every other use) the constant green shares apply.
        """
        blocks, faults = self.traffic_injections
        sources: list[Iterable[Emission]] = [
            [Emission(self.t0, "events.schedule", s.venue_id, encode(s)) for s in self.schedule()],
            traffic_emissions(self.config, self.grid, self.t0, self.t1, blocks, faults, self.events, self.rain, signals),
            bus_emissions(self.config, self._bus_trips(), self.t0, self.t1),
        ]
        sources += [pool_emissions(run) for run in self._pools()]
        return heapq.merge(*sources, key=lambda e: (e.t, e.topic, e.key))

    def truth(self) -> list[GroundTruth]:
        """Everything injected (and the bunching that emerged), sorted by start, kind, subject."""
        blocks, faults = self.traffic_injections
        tz = ZoneInfo(self.config.timezone)
        out = injection_truth(self.grid, blocks, faults)
        for run in self._pools():
            out += run.truth
        out += bunching_truth(self._bus_trips(), self.t0, self.t1)
        for e in self.events:
            lo, hi = e.influence()
            out.append(
                GroundTruth(
                    "event",
                    e.venue_id,
                    e.start,
                    e.end,
                    None,
                    None,
                    {
                        "event_id": e.event_id,
                        "schedule_kind": e.kind,
                        "attendance": e.attendance,
                        "intersections": list(e.near),
                        "influence_start": lo,
                        "influence_end": hi,
                    },
                )
            )
        for r in self.rain:
            out.append(
                GroundTruth(
                    "weather",
                    CITY_VENUE,
                    r.start,
                    r.end,
                    None,
                    None,
                    {"condition": "rain", "precipitation_mm_h": r.mm_h, "event_id": r.event_id()},
                )
            )
        for kind, day, name in self.calendar_days():
            last = day if kind == "holiday" else next(b for a, b in self.config.school_holidays if a == day)
            a, b = _day_bounds(day, last, tz)
            if a.timestamp() < self.t1 and b.timestamp() > self.t0:
                out.append(GroundTruth(kind, CITY_VENUE, a.timestamp(), b.timestamp(), None, None, {"name": name}))
        return sorted(out, key=GroundTruth.sort_key)


def _day_bounds(first: date, last: date, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """Local midnight before ``first`` to local midnight after ``last``."""
    a = datetime(first.year, first.month, first.day, tzinfo=tz)
    b = datetime(last.year, last.month, last.day, tzinfo=tz) + timedelta(days=1)
    return a.astimezone(timezone.utc), b.astimezone(timezone.utc)


def city_stream(config: CityConfig, start: datetime, duration_s: float) -> Iterator[Emission]:
    """Every record of the run, time-ordered and merged across sources (see ``City.stream``)."""
    return City(config, start, duration_s).stream()


def city_truth(config: CityConfig, start: datetime, duration_s: float) -> list[GroundTruth]:
    """The same run's ground truth; needs no stream to have been consumed (see ``City.truth``)."""
    return City(config, start, duration_s).truth()


def truth_jsonl(truth: Iterable[GroundTruth]) -> bytes:
    """Ground truth as JSON lines (sorted keys, UTF-8): byte-identical for identical runs."""
    return "".join(g.to_line() + "\n" for g in truth).encode("utf-8")


def write_truth(path: Path, truth: Iterable[GroundTruth]) -> None:
    Path(path).write_bytes(truth_jsonl(truth))


def _schedule_order(entries: list[ScheduledEvent]) -> list[ScheduledEvent]:
    return sorted(entries, key=lambda s: (s.venue_id, s.starts_at, s.event_id))


def _venue_entry(e: VenueEvent, announced: datetime) -> ScheduledEvent:
    return ScheduledEvent(
        schema_version=1,
        event_time=announced,
        venue_id=e.venue_id,
        event_id=e.event_id,
        kind=e.kind,
        starts_at=utc(e.start),
        ends_at=utc(e.end),
        title=e.title,
        expected_attendance=e.attendance,
    )


def _rain_entry(r: RainPeriod, announced: datetime) -> ScheduledEvent:
    return ScheduledEvent(
        schema_version=1,
        event_time=announced,
        venue_id=CITY_VENUE,
        event_id=r.event_id(),
        kind="weather",
        starts_at=utc(r.start),
        ends_at=utc(r.end),
        title="Regen",
        weather=WeatherForecast(temperature_c=r.temperature_c, precipitation_mm_h=r.mm_h, condition="rain"),
    )


class CityHistory:
    """The weeks before a run as a city's records hold them: hourly counts per intersection,
    the showers that fell and the matches and concerts that were held.

    The demo imports all three so forecasts exist from the first minute *and* have seen rain and
    events before: a history without them taught the forecaster that rain and a match change
    nothing, and the run's rain hours fell below the 80 % band (0.11 of the scored points inside
    at the rain's peak hour). Its own random streams, so it does not replay the run's draws.
    """

    def __init__(self, city: City, days: int) -> None:
        if days <= 0:
            raise ValueError("history needs at least one day")
        self.city = city
        self.t1 = city.t0 - city.t0 % 3600  # complete hours before the run
        self.t0 = self.t1 - days * 86_400

    @cached_property
    def rain(self) -> list[RainPeriod]:
        return plan_rain(self.city.config, self.t0, self.t1, stream="weather-history")

    @cached_property
    def events(self) -> list[VenueEvent]:
        planned = plan_events(self.city.config, self.t0, self.t1, venue_sites(self.city.grid), stream="events-history")
        return [e for e in planned if e.influence()[1] <= self.t1]  # over before the run plans its own

    def counts(self) -> Iterator[tuple[str, float, int]]:
        """(intersection id, hour start, vehicles the loops counted in that hour), hour by hour."""
        return hourly_served(self.city.config, self.city.grid, self.t0, self.t1, self.events, self.rain, stream="traffic-history")

    def schedule(self) -> list[ScheduledEvent]:
        """The history's events and its weather record, as ``events.schedule`` entries.

        Stamped with the run's start, when they are imported: an entry stamped weeks back would
        set the stream's clock there, and the run's own schedule, weeks later, would then be
        dead-lettered as clock skew (found in the demo)."""
        imported = utc(self.city.t0)
        out = [_venue_entry(e, imported) for e in self.events] + [_rain_entry(r, imported) for r in self.rain]
        return _schedule_order(out)
