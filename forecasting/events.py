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
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone, tzinfo
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

#: the kinds streams.records.ScheduledEvent accepts (kept here so the core needs no shell import)
EVENT_KINDS = ("concert", "match", "fair", "holiday", "school_holiday", "weather", "roadworks", "other")

#: how long before the start people arrive and after the end they leave (traffic to a venue)
ARRIVAL_WINDOW = pd.Timedelta("2h")
DEPARTURE_WINDOW = pd.Timedelta("1h")

EVENT_COLUMNS = ["event_attendance", "event_arrival", "event_departure", "school_holiday", "rain_mm_h"]


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
    #: a weather forecast's (or record's) rain; None for every other kind
    precipitation_mm_h: float | None = None

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
    ``rain_mm_h``: the rain a weather entry forecasts (or records), times the share of each step
    it covers, so a shower from 12:25 to 14:35 weighs 0.58 / 1 / 0.58 on the hours 12, 13, 14
    (rain keeps trips at home; an hour a shower only touches is not a wet hour). Overlapping
    weather entries take the larger value, not the sum: two sources for one shower are one shower.
    """
    idx = index if index.tz is not None else index.tz_localize("UTC")
    ns = idx.as_unit("ns").asi8  # pandas 3 may hold microseconds; event bounds are ns
    out = {c: np.zeros(len(idx)) for c in EVENT_COLUMNS}
    step = _step_ns(ns)
    ordered = bool(len(ns) < 2 or (np.diff(ns) > 0).all())
    for ev in events:
        if series_id is not None and not ev.affects_series(series_id):
            continue
        start, end = _ns(ev.start), _ns(ev.end)
        if len(ns) and (end + DEPARTURE_WINDOW.value < ns[0] - step or start - ARRIVAL_WINDOW.value > ns[-1] + step):
            continue  # touches no step of the index (most of a long-kept schedule)
        if ev.kind == "school_holiday":
            out["school_holiday"][(ns >= start) & (ns < max(end, start + 1))] = 1.0
            continue
        if ev.kind == "weather":
            if ev.precipitation_mm_h:
                # only the steps it touches: a weather service's entries (hourly, kept for years)
                # outnumber every other kind, and most lie outside any one history
                lo, hi = (
                    (int(np.searchsorted(ns, start - step, "right")), int(np.searchsorted(ns, end, "left"))) if ordered else (0, len(ns))
                )
                part = ns[lo:hi]
                covered = np.clip(np.minimum(part + step, max(end, start + 1)) - np.maximum(part, start), 0, None) / step
                out["rain_mm_h"][lo:hi] = np.maximum(out["rain_mm_h"][lo:hi], ev.precipitation_mm_h * covered)
            continue
        if ev.kind == "holiday":
            continue  # public holidays come from the holidays package
        people = (ev.expected_attendance if ev.expected_attendance is not None else 1000) / 1000.0
        out["event_attendance"][(ns >= start) & (ns < max(end, start + 1))] += people
        out["event_arrival"][(ns >= start - ARRIVAL_WINDOW.value) & (ns < start)] += people
        out["event_departure"][(ns >= end) & (ns < end + DEPARTURE_WINDOW.value)] += people
    return pd.DataFrame(out, index=index)


def _ns(t: datetime) -> int:
    """POSIX nanoseconds of an aware datetime (to the microsecond it holds), without pandas'
    per-call cost: a city's schedule holds thousands of weather entries."""
    return round(t.timestamp() * 1_000_000) * 1000


def _step_ns(ns: np.ndarray) -> int:
    """The index's step in ns (the smallest gap; an hour for a single timestamp)."""
    gaps = np.diff(ns)
    gaps = gaps[gaps > 0]
    return int(gaps.min()) if len(gaps) else int(pd.Timedelta("1h").value)


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
    def load(cls, path: Path) -> VenueMap:
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


#: events outside these years are refused: nothing forecast here lies there, and pandas' time
#: range (1677..2262) must hold every event time plus the arrival/departure windows
EVENT_YEARS = (1900, 2200)


class EventProblem(ValueError):
    """Why one VEVENT cannot be imported exactly; ``prop`` names the property at fault."""

    def __init__(self, message: str, prop: str | None = None) -> None:
        super().__init__(message)
        self.prop = prop


@dataclass
class IcsImport:
    events: list[Event]
    recurring: int = 0  # events with RRULE: only their first occurrence was imported
    skipped: list[str] = field(default_factory=list)  # why a VEVENT was left out: "line N, event 'uid': problem"


def resolve_zone(name: str) -> tzinfo:
    """The IANA zone ``name`` (``UTC``, ``Europe/Berlin``); ValueError naming it otherwise."""
    if name == "UTC":
        return timezone.utc
    from zoneinfo import ZoneInfo

    try:
        return ZoneInfo(name)
    except Exception:  # ZoneInfoNotFoundError (a KeyError), ValueError, IsADirectoryError, OSError
        raise ValueError(f"unknown time zone {name!r}") from None


def read_ics(data: bytes | str, venues: VenueMap | None = None, default_tz: str = "UTC") -> IcsImport:
    """Events of an iCalendar file; raises ValueError when the file is not iCalendar at all.

    Attendance comes from ``X-EXPECTED-ATTENDANCE`` or an "Attendance: N" line in the
    description; the kind from CATEGORIES when it names one of :data:`EVENT_KINDS`. Times
    without a zone are read in ``default_tz``; all-day events span their dates. A TZID must be an
    IANA zone (or a name icalendar maps to one, e.g. Windows zone names) or be defined by a
    VTIMEZONE in the file. A VEVENT that cannot be read exactly (a broken date, an unknown TZID,
    a negative duration, a time outside :data:`EVENT_YEARS`) is left out and listed in
    ``skipped`` with its line and the problem: one bad event does not cost the others, and no
    time is guessed.
    """
    import warnings

    import icalendar

    zone = resolve_zone(default_tz)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            cal = icalendar.Calendar.from_ical(data)
    except Exception as exc:  # icalendar raises ValueError and friends with long messages
        raise ValueError(f"not an iCalendar file ({str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__})") from None
    venues = venues or VenueMap()
    result = IcsImport(events=[])
    comps = list(cal.walk("VEVENT"))
    blocks = _vevent_lines(data)
    if len(blocks) != len(comps):
        blocks = [{} for _ in comps]  # the text does not match the parse: name events by number
    for n, (comp, lines) in enumerate(zip(comps, blocks), 1):
        label = _text(comp, "UID") or _text(comp, "SUMMARY") or f"VEVENT #{n}"
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                event, recurring = _event(comp, venues, zone)
        except EventProblem as exc:
            where = lines.get(exc.prop or "", lines.get("BEGIN"))
            result.skipped.append(f"{f'line {where}, ' if where else ''}event {label[:80]!r}: {exc}")
            continue
        except (ValueError, TypeError, OverflowError, AttributeError, KeyError, IndexError) as exc:
            where = lines.get("BEGIN")
            result.skipped.append(
                f"{f'line {where}, ' if where else ''}event {label[:80]!r}: cannot be read "
                f"({type(exc).__name__}: {(str(exc).splitlines() or [''])[0][:120]})"
            )
            continue
        result.recurring += recurring
        result.events.append(event)
    return result


def _event(comp: Any, venues: VenueMap, zone: tzinfo) -> tuple[Event, int]:
    """One VEVENT as an Event (and 1 if it recurs), or EventProblem naming the property."""
    uid, title = _text(comp, "UID"), _text(comp, "SUMMARY") or None
    start_prop = _single(comp, "DTSTART")
    if start_prop is None:
        raise EventProblem("no DTSTART")
    start = _when(start_prop, "DTSTART", zone)
    all_day = not isinstance(_dt(start_prop), datetime)
    end_prop, dur_prop = _single(comp, "DTEND"), _single(comp, "DURATION")
    if end_prop is not None:
        end = _when(end_prop, "DTEND", zone)
    elif dur_prop is not None:
        dur = _dt(dur_prop)
        if not isinstance(dur, timedelta):
            raise EventProblem(f"DURATION {_raw(dur_prop)!r} is not a duration such as PT2H", "DURATION")
        if dur < timedelta(0):
            raise EventProblem("DURATION is negative", "DURATION")
        try:
            end = _in_range(start + dur, "DTSTART + DURATION", "DURATION")
        except OverflowError:
            raise EventProblem(f"DTSTART + DURATION lies outside the years {EVENT_YEARS[0]}..{EVENT_YEARS[1]}", "DURATION") from None
    elif all_day:
        end = start + timedelta(days=1)
    else:
        end = start
    if end < start:
        raise EventProblem("DTEND before DTSTART", "DTEND")
    venue = venues.resolve(_text(comp, "LOCATION") or None)
    event = Event(
        venue_id=venue.venue_id,
        start=start,
        end=end,
        expected_attendance=_attendance(comp),
        affects=venue.affects,
        event_id=slug(uid)[:64] if slug(uid) else slug(f"{venue.venue_id}-{start:%Y%m%dT%H%M}"),
        title=title[:200] if title else None,
        kind=_kind(comp),
    )
    return event, int(comp.get("RRULE") is not None)


def _single(comp: Any, name: str) -> Any:
    """The property, or None; a time property given twice is ambiguous and refused."""
    prop = comp.get(name)
    if isinstance(prop, list):
        raise EventProblem(f"{name} appears {len(prop)} times", name)
    return prop


def _text(comp: Any, name: str) -> str:
    """A text property as a string (the first, when repeated)."""
    prop = comp.get(name)
    if isinstance(prop, list):
        prop = prop[0] if prop else None
    return str(prop).strip() if prop is not None else ""


def _dt(prop: Any) -> Any:
    """A property's decoded value; None for a broken one (icalendar raises on ``.dt`` of those)."""
    try:
        return prop.dt
    except Exception:  # BrokenCalendarProperty, AttributeError on plain text values
        return None


def _raw(prop: Any) -> str:
    try:
        return (prop.to_ical().decode("utf-8", "replace") if hasattr(prop, "to_ical") else str(prop))[:60]
    except Exception:  # a vBroken or odd value: its text is all we need
        return str(prop)[:60]


def _when(prop: Any, name: str, zone: tzinfo) -> datetime:
    """A DTSTART/DTEND as an aware datetime: its TZID's zone, or ``zone`` for a floating time/date."""
    value = _dt(prop)
    if not isinstance(value, date):  # vBroken text, a duration, a period or a bare time
        raise EventProblem(f"{name} {_raw(prop)!r} is not a date or date-time", name)
    if not isinstance(value, datetime):
        value = datetime.combine(value, time())
    tzid = getattr(prop, "params", {}).get("TZID")
    if value.tzinfo is None:
        if tzid:  # icalendar found no such zone: reading it as UTC would be silently wrong
            raise EventProblem(
                f"{name} has an unknown time zone TZID={str(tzid)[:60]!r} (not an IANA zone and no VTIMEZONE in the file defines it)", name
            )
        value = value.replace(tzinfo=zone)
    return _in_range(value, name, name)


def _in_range(value: datetime, what: str, prop: str) -> datetime:
    try:
        year = value.astimezone(timezone.utc).year
    except (OverflowError, ValueError):
        year = value.year
    if not EVENT_YEARS[0] <= year <= EVENT_YEARS[1] or not EVENT_YEARS[0] <= value.year <= EVENT_YEARS[1]:
        raise EventProblem(f"{what} {value.isoformat()} lies outside the years {EVENT_YEARS[0]}..{EVENT_YEARS[1]}", prop)
    return value


def _vevent_lines(data: bytes | str) -> list[dict[str, int]]:
    """Per VEVENT in file order: the line of its BEGIN and of each of its own properties.

    Lines count physical lines from 1 (a folded property is named by its first line), so a
    warning points where an editor shows the problem.
    """
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
    blocks: list[dict[str, int]] = []
    stack: list[dict[str, int] | None] = []  # open components; None for components that are not VEVENTs
    for no, line in enumerate(text.split("\n"), 1):
        line = line.rstrip("\r")
        if not line or line[0] in " \t":
            continue  # a continuation of the previous (folded) line
        name = re.split(r"[;:]", line, maxsplit=1)[0].strip().upper()
        value = line.split(":", 1)[1].strip().upper() if ":" in line else ""
        if name == "BEGIN":
            block = {"BEGIN": no} if value == "VEVENT" else None
            if block is not None:
                blocks.append(block)
            stack.append(block)
        elif name == "END":
            if stack:
                stack.pop()
        elif stack and stack[-1] is not None:
            stack[-1].setdefault(name, no)
    return blocks


def _attendance(comp: Any) -> int | None:
    for prop in _ATTENDANCE_PROPS:
        if comp.get(prop) is not None:
            n = _number(_text(comp, prop))
            if n is not None:
                return n
    m = _ATTENDANCE_TEXT.search(_text(comp, "DESCRIPTION"))
    return _number(m.group(1)) if m else None


def _number(text: str) -> int | None:
    """Digits of the integer part, capped at 1,000,000 (also before int(): 5,000 digits would raise)."""
    digits = re.sub(r"[^\d]", "", text.split(".")[0]).lstrip("0") or ("0" if re.search(r"\d", text.split(".")[0]) else "")
    if not digits:
        return None
    return 1_000_000 if len(digits) > 7 else min(int(digits), 1_000_000)


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
