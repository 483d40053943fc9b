"""``leitstand events import``: an iCalendar file's events onto ``events.schedule``.

Each event is checked by decoding it as the worker will, so the worker never dead-letters an
imported event; an event that cannot be read exactly is skipped with a warning (or, with
``--strict``, refuses the whole file).
"""

from __future__ import annotations

import asyncio
import json
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ..errors import CliError
from .common import err, input_file, reachable_settings

if TYPE_CHECKING:
    from forecasting.events import Event, IcsImport, VenueMap

app = typer.Typer(help="Import scheduled events for forecasting.", no_args_is_help=True)

#: skipped events named one per line on stderr before the summary; the rest are counted
MAX_WARNINGS = 10


def scheduled_event_lines(events: list[Event], announced: datetime) -> tuple[list[Event], list[bytes], list[str]]:
    """ScheduledEvent JSON lines, each checked by decoding it as the worker will.

    Returns ``(events, lines, problems)``: an event that does not make a valid record is left
    out with the reason (like a VEVENT read_ics could not read), not the whole file.
    """
    import msgspec

    from ..records import ScheduledEvent

    kept, lines, problems = [], [], []
    for event in events:
        obj = {
            "schema_version": 1,
            "event_time": announced.isoformat(),
            "venue_id": event.venue_id[:64],
            "event_id": (event.event_id or f"{event.venue_id}-{event.start:%Y%m%dT%H%M}")[:64],
            "kind": event.kind,
            "starts_at": event.start.isoformat(),
            "ends_at": event.end.isoformat(),
        }
        if event.title:
            obj["title"] = event.title[:200]
        if event.expected_attendance is not None:
            obj["expected_attendance"] = event.expected_attendance
        try:
            raw = msgspec.json.encode(obj)
            msgspec.json.decode(raw, type=ScheduledEvent)
        except (msgspec.ValidationError, msgspec.EncodeError, ValueError) as exc:
            problems.append(f"event {obj['event_id']!r} is not a valid ScheduledEvent: {str(exc).splitlines()[0][:160]}")
            continue
        kept.append(event)
        lines.append(raw)
    return kept, lines, problems


VenueMapOption = Annotated[
    Path | None,
    typer.Option(
        "--venue-map",
        help='JSON: {"venue_id": {"names": [LOCATION, ...], "affects": [series, ...]}}.',
    ),
]
DefaultTz = Annotated[
    str,
    typer.Option(
        "--default-tz",
        help="IANA zone of times given without one (floating times, all-day dates).",
    ),
]
Strict = Annotated[
    bool,
    typer.Option(
        "--strict",
        help="Refuse the whole file if any event cannot be read (default: skip it with a warning).",
    ),
]


@app.command("import")
def import_events(
    ics_file: Annotated[Path, typer.Argument(metavar="FILE.ics", help="iCalendar file with VEVENTs.")],
    venue_map: VenueMapOption = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the ScheduledEvent JSON lines instead of publishing.")] = False,
    default_tz: DefaultTz = "UTC",
    strict: Strict = False,
) -> None:
    """Publish an ICS file's events on events.schedule.

    A VEVENT that cannot be read exactly (a broken date, an unknown TZID, a negative
    DURATION) is skipped with a warning naming its line and counted in the summary; with
    --strict the file is refused instead and nothing is sent.
    """
    imported = read_events(ics_file, venue_map, default_tz)
    events, lines, invalid = scheduled_event_lines(imported.events, datetime.now(timezone.utc))
    skipped = imported.skipped + invalid
    if skipped and strict:
        more = f" (and {len(skipped) - 1} more)" if len(skipped) > 1 else ""
        raise CliError(f"{ics_file}: {skipped[0]}{more}; nothing imported (--strict)")
    for why in skipped[:MAX_WARNINGS]:
        err.print(f"warning: {ics_file}: {why}; event skipped", markup=False)
    note = (f"; {imported.recurring} recurring event(s): first occurrence only" if imported.recurring else "") + (
        f"; skipped {len(skipped)} that could not be read exactly"
        + (f" (first {MAX_WARNINGS} named above)" if len(skipped) > MAX_WARNINGS else "")
        if skipped
        else ""
    )
    if dry_run:
        for line in lines:
            sys.stdout.write(line.decode() + "\n")
        err.print(f"{len(lines)} events (dry run, nothing sent){note}", markup=False)
        return
    publish_events(events, lines, note)


def read_events(ics_file: Path, venue_map: Path | None, default_tz: str) -> IcsImport:
    """The file's events with venues mapped; a bad zone, file or venue map is one line."""
    from forecasting.events import read_ics, resolve_zone

    try:
        resolve_zone(default_tz)
    except ValueError as exc:
        raise CliError(f"--default-tz: {exc}") from None
    input_file(ics_file)
    venues = read_venue_map(venue_map) if venue_map is not None else None
    try:
        return read_ics(ics_file.read_bytes(), venues, default_tz=default_tz)
    except ValueError as exc:
        raise CliError(f"{ics_file}: {exc}") from None
    except OSError as exc:
        raise CliError(f"cannot read {ics_file}: {exc.strerror or exc}") from None


def read_venue_map(venue_map: Path) -> VenueMap:
    """The ``--venue-map`` file, or one line naming what is wrong with it."""
    from forecasting.events import VenueMap

    input_file(venue_map)
    try:
        return VenueMap.load(venue_map)
    except (ValueError, json.JSONDecodeError) as exc:
        raise CliError(f"{venue_map}: {str(exc).splitlines()[0]}") from None


def publish_events(events: list[Event], lines: list[bytes], note: str) -> None:
    """Send the checked lines to events.schedule, keyed by venue."""
    from ..kafka_io import produce_to

    settings = reachable_settings()
    keyed = [(event.venue_id[:64].encode(), line) for event, line in zip(events, lines)]
    sent = asyncio.run(produce_to(settings, settings.topic("events.schedule"), keyed))
    err.print(f"sent {sent} events to {settings.topic('events.schedule')}{note}", markup=False)
