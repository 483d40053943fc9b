"""The city's calendar: demand profiles, public and school holidays, rain, events at venues.

Everything that moves demand city-wide is decided here, once per run and before any sensor is
simulated, so the schedule can be published ahead of time (``events.schedule``) exactly as a
city calendar would, and so ground truth never depends on consuming the stream.

Profiles are read on the local wall clock (``CityConfig.timezone``): commuters leave at 07:30
Berlin time whatever UTC says.
"""

from __future__ import annotations

import csv
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from pathlib import Path
from zoneinfo import ZoneInfo

from streams.records import ScheduleKind

from .types import CityConfig, rng_for

# --- holidays -----------------------------------------------------------------------------


@lru_cache(maxsize=32)
def _public_holidays(state: str, year: int) -> dict[date, str]:
    import holidays

    return dict(holidays.country_holidays("DE", subdiv=state, years=[year]))


def public_holiday(day: date, state: str) -> str | None:
    """Name of the public holiday of the German ``state`` on ``day``, or None."""
    return _public_holidays(state, day.year).get(day)


def school_holiday(day: date, ranges: Sequence[tuple[date, date]]) -> bool:
    return any(a <= day <= b for a, b in ranges)


def load_school_holidays(path: Path) -> tuple[tuple[date, date], ...]:
    """School holiday ranges (first and last day, inclusive) from a calendar file.

    Two formats, chosen by suffix:

    * ``.ics`` (what the Kultusministerien and ferienwiki publish): every ``VEVENT``'s
      ``DTSTART``/``DTEND`` as all-day dates, ``DTEND`` exclusive as RFC 5545 says;
    * anything else: CSV lines ``first_day,last_day[,name]`` in ISO dates, both inclusive;
      blank lines and lines starting with ``#`` are ignored, and so is a header line
      ``start,end[,name]``.

    Ranges come back sorted; a range ending before it starts is a ``ValueError``.
    """
    path = Path(path)
    if path.suffix.lower() == ".ics":
        ranges = _ics_ranges(path.read_bytes())
    else:
        ranges = []
        with path.open(newline="", encoding="utf-8") as fh:
            for n, row in enumerate(csv.reader(fh), start=1):
                if not row or not row[0].strip() or row[0].lstrip().startswith("#"):
                    continue
                if row[0].strip().lower() == "start":
                    continue
                try:
                    first, last = date.fromisoformat(row[0].strip()), date.fromisoformat(row[1].strip())
                except (IndexError, ValueError) as exc:
                    raise ValueError(f"{path}:{n}: expected 'YYYY-MM-DD,YYYY-MM-DD[,name]' ({exc})") from None
                ranges.append((first, last))
    for first, last in ranges:
        if last < first:
            raise ValueError(f"{path}: school holiday ends {last} before it starts {first}")
    return tuple(sorted(ranges))


def _ics_ranges(data: bytes) -> list[tuple[date, date]]:
    import icalendar

    out = []
    for comp in icalendar.Calendar.from_ical(data).walk("VEVENT"):
        start = comp.decoded("DTSTART")
        end = comp.decoded("DTEND") if "DTEND" in comp else start
        start = start.date() if isinstance(start, datetime) else start
        last = (end.date() if isinstance(end, datetime) else end - timedelta(days=1)) if end != start else start
        out.append((start, max(start, last)))
    return out


# --- demand profile -----------------------------------------------------------------------


def _bump(h: float, centre: float, width: float) -> float:
    return math.exp(-0.5 * ((h - centre) / width) ** 2)


def _rise(h: float, at: float, width: float) -> float:
    return 1.0 / (1.0 + math.exp(-(h - at) / width))


def day_kind(day: date, config: CityConfig) -> str:
    """``weekday`` | ``saturday`` | ``sunday``; a public holiday is a Sunday for traffic."""
    if day.weekday() == 6 or public_holiday(day, config.state):
        return "sunday"
    return "saturday" if day.weekday() == 5 else "weekday"


def demand_profile(t: datetime, config: CityConfig, *, rain_mm_h: float = 0.0) -> float:
    """Multiplicative demand factor at ``t`` (about 1.0 at a weekday's morning peak).

    Weekdays: a sharp morning peak (07:45, commuters and school run) and a broader evening
    peak (17:00) over a daytime plateau. Saturdays: no morning peak, a broad early-afternoon
    hump. Sundays and public holidays: lower and later still. School holidays take the school
    run out of the morning peak. Rain keeps some trips at home (a few per cent per mm/h,
    at most 15 %), see Koetse & Rietveld 2009 for the order of magnitude.
    """
    if t.tzinfo is None:
        raise ValueError("demand_profile needs a timezone-aware datetime")
    local = t.astimezone(ZoneInfo(config.timezone))
    h = local.hour + local.minute / 60.0 + local.second / 3600.0
    kind = day_kind(local.date(), config)
    if kind == "weekday":
        school_off = school_holiday(local.date(), config.school_holidays)
        day = _rise(h, 5.6, 0.35) * (1.0 - _rise(h, 21.0, 0.8))
        am = 0.55 * _bump(h, 7.75, 0.85) * (0.6 if school_off else 1.0)
        pm = 0.50 * _bump(h, 17.0, 1.35) * (0.92 if school_off else 1.0)
        friday = local.weekday() == 4
        if friday:  # the weekend starts after lunch: an earlier, flatter evening peak
            pm = 0.42 * _bump(h, 15.5, 1.8) * (0.92 if school_off else 1.0)
        value = 0.05 + 0.42 * day * (0.95 if school_off else 1.0) + am + pm
    elif kind == "saturday":
        day = _rise(h, 7.5, 0.6) * (1.0 - _rise(h, 22.5, 0.8))
        value = 0.08 + 0.30 * day + 0.25 * _bump(h, 13.0, 2.6)
    else:
        day = _rise(h, 8.5, 0.7) * (1.0 - _rise(h, 22.0, 0.8))
        value = 0.06 + 0.22 * day + 0.18 * _bump(h, 15.0, 2.6)
    if rain_mm_h > 0:
        value *= 1.0 - min(0.15, 0.04 + 0.02 * rain_mm_h)
    return value


# --- the run's schedule: rain and events ----------------------------------------------------


@dataclass(frozen=True)
class RainPeriod:
    start: float
    end: float
    mm_h: float
    temperature_c: float

    def event_id(self) -> str:
        return f"rain-{int(self.start)}"


@dataclass(frozen=True)
class VenueEvent:
    """A planned event; ``near`` are the intersections whose demand it moves (venue first)."""

    event_id: str
    venue_id: str
    kind: ScheduleKind  # "match" | "concert"
    title: str
    start: float
    end: float
    attendance: int
    capacity: int
    near: tuple[str, ...]

    def influence(self) -> tuple[float, float]:
        """Arrivals begin ~2 h before kick-off; departures are over ~1 h after the end."""
        return self.start - 2.5 * 3600, self.end + 1.25 * 3600

    def demand_factor(self, t: float, at_venue: bool) -> float:
        """1 + extra demand: a spread-out arrival wave, then everybody leaving at once."""
        lo, hi = self.influence()
        if not lo <= t <= hi:
            return 1.0
        level = (0.7 if at_venue else 0.35) * self.attendance / self.capacity
        arrive = 0.55 * math.exp(-0.5 * ((t - (self.start - 45 * 60)) / (35 * 60)) ** 2)
        leave = math.exp(-0.5 * ((t - (self.end + 20 * 60)) / (18 * 60)) ** 2)
        return 1.0 + level * (arrive + leave)


#: venue id -> (schedule kind, title, capacity, attendance range)
VENUES: dict[str, tuple[ScheduleKind, str, int, tuple[int, int]]] = {
    "stadium": ("match", "Fußball: SSV gegen FC", 30_000, (14_000, 29_000)),
    "arena": ("concert", "Konzert in der Arena", 12_000, (4_000, 11_500)),
}


#: local start times tried, in order, when chance left a run without a match or a concert
FALLBACK_SLOTS = {"stadium": ((15, 30), (18, 30), (20, 30), (13, 30)), "arena": ((20, 0), (19, 0), (17, 0), (15, 0))}


def _local_days(t0: float, t1: float, tz: ZoneInfo) -> list[date]:
    first = datetime.fromtimestamp(t0, tz).date()
    last = datetime.fromtimestamp(t1, tz).date()
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


def _at(day: date, hh: int, mm: int, tz: ZoneInfo) -> float:
    return datetime.combine(day, time(hh, mm), tz).timestamp()


def plan_events(
    config: CityConfig, t0: float, t1: float, venue_sites: dict[str, tuple[str, ...]], *, stream: str = "events"
) -> list[VenueEvent]:
    """Matches and concerts whose influence overlaps the run; at least one of each.

    Matches: Saturdays 15:30 (likely), Sundays 17:30, midweek 20:30 (sometimes); concerts at
    20:00 on some evenings. If chance leaves the run without one, one is put into the run
    (a demo and an evaluation need an event to look at). ``stream`` names the random stream:
    the weeks before a run (its imported history) draw from their own.
    """
    tz = ZoneInfo(config.timezone)
    rng = rng_for(config, stream)
    out: list[VenueEvent] = []
    for day in _local_days(t0 - 86_400, t1 + 86_400, tz):
        wd = day.weekday()
        match = {5: (0.8, 15, 30), 6: (0.4, 17, 30), 1: (0.25, 20, 30), 2: (0.25, 20, 30)}.get(wd)
        if match and rng.random() < match[0]:
            s = _at(day, match[1], match[2], tz)
            out.append(_event(config, rng, "stadium", s, s + 105 * 60, venue_sites))
        if rng.random() < 0.4:
            s = _at(day, 20, 0, tz)
            out.append(_event(config, rng, "arena", s, s + 150 * 60, venue_sites))
    out = [e for e in out if e.influence()[1] > t0 and e.influence()[0] < t1]
    span = t1 - t0
    for venue, frac, length in (("stadium", 0.35, 105 * 60), ("arena", 0.65, 150 * 60)):
        if any(e.venue_id == venue for e in out):
            continue
        # the usual hours first (announced well ahead, over before the run ends) ...
        slots = FALLBACK_SLOTS[venue]
        fits = [
            s
            for day in _local_days(t0, t1, tz)
            for hh, mm in slots
            if t0 + 2.5 * 3600 <= (s := _at(day, hh, mm, tz)) and s + length + 1800 <= t1
        ]
        if fits:
            s = fits[0]
        else:  # ... else somewhere in the run, on the quarter hour
            s = t0 + max(2.5 * 3600, frac * span)
            s = s - s % 900
        out.append(_event(config, rng, venue, s, s + length, venue_sites))
    return sorted(out, key=lambda e: (e.start, e.venue_id))


def _event(config: CityConfig, rng: random.Random, venue: str, start: float, end: float, sites: dict[str, tuple[str, ...]]) -> VenueEvent:
    kind, title, capacity, (lo, hi) = VENUES[venue]
    attendance = int(round(rng.uniform(lo, hi), -2))
    return VenueEvent(f"{venue}-{int(start)}", venue, kind, title, start, end, attendance, capacity, sites.get(venue, ()))


def plan_rain(config: CityConfig, t0: float, t1: float, *, stream: str = "weather") -> list[RainPeriod]:
    """One shower period per started day of the run (1-3 h, 0.8-6 mm/h); ``stream`` as in
    :func:`plan_events` (the same stream for the history would rain at the run's hours)."""
    rng = rng_for(config, stream)
    span = t1 - t0
    if span < 3600:
        return []
    out = []
    for d in range(max(1, math.ceil(span / 86_400))):
        lo, hi = t0 + d * 86_400, min(t1, t0 + (d + 1) * 86_400)
        length = min(rng.uniform(3600, 3 * 3600), (hi - lo) / 3)
        start = rng.uniform(lo + 0.1 * (hi - lo), hi - length)
        start -= start % 300
        doy = datetime.fromtimestamp(start, ZoneInfo(config.timezone)).timetuple().tm_yday
        temp = 10.0 - 9.0 * math.cos(2 * math.pi * (doy - 15) / 365) + rng.gauss(0, 2)
        out.append(RainPeriod(start, start + length, round(rng.uniform(0.8, 6.0), 1), round(temp, 1)))
    return out


def rain_at(t: float, periods: Sequence[RainPeriod]) -> float:
    for p in periods:
        if p.start <= t < p.end:
            return p.mm_h
    return 0.0
