"""Scheduled events (concerts, matches, fairs, school holidays) and the regressors they become.

An event moves load on the series near its venue: arrivals before the start, departures after
the end, in proportion to the expected attendance. Which series a venue affects is
configuration (venue -> intersections, bus lines, pools), kept in a venue map.

ICS files are read with the ``icalendar`` package (RFC 5545: folded lines, time zones,
all-day dates, escaping are easy to get wrong by hand). Recurrence rules are not expanded:
an event with RRULE contributes its first occurrence and is reported as such.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import pandas as pd

#: the kinds streams.records.ScheduledEvent accepts (kept here so the core needs no shell import)
EVENT_KINDS = ("concert", "match", "fair", "holiday", "school_holiday", "weather", "roadworks", "other")

#: how long before the start people arrive and after the end they leave (traffic to a venue)
ARRIVAL_WINDOW = pd.Timedelta("2h")
DEPARTURE_WINDOW = pd.Timedelta("1h")

EVENT_COLUMNS = ["event_attendance", "event_arrival", "event_departure", "school_holiday"]


@dataclass(frozen=True)
class Event:
    """One planned event: where, when, how many people, and which series feel it."""

    venue_id: str
    start: datetime
    end: datetime
    expected_attendance: int | None = None
    affects: tuple[str, ...] = ()
    event_id: str = ""
    title: str | None = None
    kind: str = "other"

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError("event times must be timezone-aware")
        if self.end < self.start:
            raise ValueError(f"event {self.event_id or self.title!r} ends before it starts")

    def affects_series(self, series_id: str) -> bool:
        """An event without a configured series list affects every series (a city-wide event)."""
        return not self.affects or series_id in self.affects


def event_regressors(index: pd.DatetimeIndex, events: Iterable[Event], series_id: str | None = None) -> pd.DataFrame:
    """Regressor columns on ``index`` for the events (of ``series_id``, when given).

    ``event_attendance``: thousands of expected people at events running at that time;
    ``event_arrival`` / ``event_departure``: the same in the two hours before the start and the
    hour after the end (the traffic peaks an event makes); ``school_holiday``: 1.0 inside a
    school-holiday event. Events without an attendance count as 1,000 people.
    """
    idx = index if index.tz is not None else index.tz_localize("UTC")
    ns = idx.as_unit("ns").asi8  # pandas 3 may hold microseconds; event bounds are ns
    out = {c: np.zeros(len(idx)) for c in EVENT_COLUMNS}
    for ev in events:
        if series_id is not None and not ev.affects_series(series_id):
            continue
        start = pd.Timestamp(ev.start).tz_convert("UTC").value
        end = pd.Timestamp(ev.end).tz_convert("UTC").value
        if ev.kind == "school_holiday":
            out["school_holiday"][(ns >= start) & (ns < max(end, start + 1))] = 1.0
            continue
        if ev.kind in ("holiday", "weather"):
            continue  # public holidays come from the holidays package, weather from forecasts
        people = (ev.expected_attendance if ev.expected_attendance is not None else 1000) / 1000.0
        out["event_attendance"][(ns >= start) & (ns < max(end, start + 1))] += people
        out["event_arrival"][(ns >= start - ARRIVAL_WINDOW.value) & (ns < start)] += people
        out["event_departure"][(ns >= end) & (ns < end + DEPARTURE_WINDOW.value)] += people
    return pd.DataFrame(out, index=index)


# --- venue map ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Venue:
    venue_id: str
    names: tuple[str, ...] = ()
    affects: tuple[str, ...] = ()


@dataclass
class VenueMap:
    """Which series each venue affects, and the LOCATION texts that name it in calendars.

    JSON: ``{"arena": {"names": ["Arena am Park"], "affects": ["K101", "bus:12"]}}``.
    """

    venues: dict[str, Venue] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path) -> "VenueMap":
        raw = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(raw, dict):
            raise ValueError("a venue map is a JSON object keyed by venue id")
        venues = {}
        for vid, spec in raw.items():
            spec = spec or {}
            if not isinstance(spec, dict):
                raise ValueError(f"venue {vid!r}: expected an object with 'names' and 'affects'")
            venues[vid] = Venue(str(vid), tuple(map(str, spec.get("names", ()))), tuple(map(str, spec.get("affects", ()))))
        return cls(venues)

    def resolve(self, location: str | None) -> Venue:
        """The configured venue a calendar LOCATION names; unknown places get a slug id."""
        text = (location or "").strip()
        for v in self.venues.values():
            if text.casefold() in {v.venue_id.casefold(), *(n.casefold() for n in v.names)}:
                return v
        return Venue(slug(text) or "unknown-venue")


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.casefold()).strip("-")[:64]


# --- ICS -------------------------------------------------------------------------------------

_ATTENDANCE_PROPS = ("X-EXPECTED-ATTENDANCE", "X-LEITSTAND-ATTENDANCE")
_ATTENDANCE_TEXT = re.compile(r"(?:expected\s+)?attendance\s*[:=]\s*([\d.,' ]+)", re.IGNORECASE)


@dataclass
class IcsImport:
    events: list[Event]
    recurring: int = 0  # events with RRULE: only their first occurrence was imported
    skipped: list[str] = field(default_factory=list)  # why a VEVENT was left out


def read_ics(data: bytes | str, venues: VenueMap | None = None, default_tz: str = "UTC") -> IcsImport:
    """Events of an iCalendar file; raises ValueError when the file is not iCalendar at all.

    Attendance comes from ``X-EXPECTED-ATTENDANCE`` or an "Attendance: N" line in the
    description; the kind from CATEGORIES when it names one of :data:`EVENT_KINDS`. Times
    without a zone are read in ``default_tz``; all-day events span their dates.
    """
    import icalendar

    try:
        cal = icalendar.Calendar.from_ical(data)
    except Exception as exc:  # icalendar raises ValueError and friends with long messages
        raise ValueError(f"not an iCalendar file ({str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__})") from None
    venues = venues or VenueMap()
    result = IcsImport(events=[])
    for comp in cal.walk("VEVENT"):
        uid = str(comp.get("UID", "")).strip()
        title = str(comp.get("SUMMARY", "")).strip() or None
        label = uid or title or "VEVENT"
        if comp.get("DTSTART") is None:
            result.skipped.append(f"{label}: no DTSTART")
            continue
        start = _as_datetime(comp.decoded("DTSTART"), default_tz)
        if comp.get("DTEND") is not None:
            end = _as_datetime(comp.decoded("DTEND"), default_tz)
        elif comp.get("DURATION") is not None:
            end = start + comp.decoded("DURATION")
        elif isinstance(comp.decoded("DTSTART"), date) and not isinstance(comp.decoded("DTSTART"), datetime):
            end = start + timedelta(days=1)
        else:
            end = start
        if end < start:
            result.skipped.append(f"{label}: DTEND before DTSTART")
            continue
        if comp.get("RRULE") is not None:
            result.recurring += 1
        venue = venues.resolve(str(comp.get("LOCATION", "")) or None)
        result.events.append(Event(
            venue_id=venue.venue_id, start=start, end=end,
            expected_attendance=_attendance(comp), affects=venue.affects,
            event_id=slug(uid)[:64] if uid else slug(f"{venue.venue_id}-{start:%Y%m%dT%H%M}"),
            title=title[:200] if title else None, kind=_kind(comp),
        ))
    return result


def _as_datetime(value: date | datetime, default_tz: str) -> datetime:
    if not isinstance(value, datetime):
        value = datetime.combine(value, time())
    if value.tzinfo is None:
        from zoneinfo import ZoneInfo

        value = value.replace(tzinfo=ZoneInfo(default_tz) if default_tz != "UTC" else timezone.utc)
    return value


def _attendance(comp: Any) -> int | None:
    for prop in _ATTENDANCE_PROPS:
        if comp.get(prop) is not None:
            n = _number(str(comp.get(prop)))
            if n is not None:
                return n
    m = _ATTENDANCE_TEXT.search(str(comp.get("DESCRIPTION", "")))
    return _number(m.group(1)) if m else None


def _number(text: str) -> int | None:
    digits = re.sub(r"[^\d]", "", text.split(".")[0])
    return min(int(digits), 1_000_000) if digits else None


def _kind(comp: Any) -> str:
    cats = comp.get("CATEGORIES")
    names: list[str] = []
    for c in cats if isinstance(cats, list) else [cats] if cats is not None else []:
        names += [str(x) for x in getattr(c, "cats", [c])]
    for n in names:
        k = n.strip().lower().replace(" ", "_").replace("-", "_")
        if k in EVENT_KINDS:
            return k
    return "other"
