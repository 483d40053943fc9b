"""``leitstand gtfs load|city``: static GTFS timetables onto ``transit.schedule``.

Why a topic and not the database: the bus agent is a stream processor that must work where only
a broker runs (tests, the demo, a small deployment), and the dashboards database is written by
the sink from topics anyway. The topic is compacted and keyed by trip, so it always holds every
trip's latest version; the agent reads it whole, from the start, without a consumer group (every
worker needs every trip of its lines, whatever partitions it holds).
"""

from __future__ import annotations

import asyncio
import json
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ..errors import CliError
from .common import err, reachable_settings

if TYPE_CHECKING:
    from ..records import TripSchedule
    from ..settings import Settings

app = typer.Typer(help="Load static GTFS timetables for the bus agent.", no_args_is_help=True)


def _date(value: str | None) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not a date (YYYY-MM-DD)") from None


@app.command("load")
def load(
    feed: Annotated[Path, typer.Argument(metavar="FEED.zip", help="Static GTFS feed (zip or folder).")],
    first: Annotated[str | None, typer.Option("--from", help="First service day (YYYY-MM-DD; default: the feed's first).")] = None,
    days: Annotated[int, typer.Option(min=1, max=1000, help="Service days from --from.")] = 366,
    feed_id: Annotated[str, typer.Option(help="Name of this feed version (kept on every record).")] = "",
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Read and check the feed, print the summary, send nothing.")] = False,
) -> None:
    """Read a static GTFS feed and publish every trip on transit.schedule (keyed by trip id)."""
    from ..transit_codec import FeedError, load_feed

    try:
        loaded = load_feed(feed, first=_date(first), days=days, feed_id=feed_id)
    except FeedError as exc:
        raise CliError(str(exc)) from None
    if not loaded.records:
        raise CliError(f"{feed}: no trip runs in the window" + (f" ({', '.join(loaded.skipped)})" if loaded.skipped else ""))
    summary = {
        "trips": len(loaded.records),
        "routes": len({r.route_id for r in loaded.records}),
        "window": [d.isoformat() for d in loaded.dates] if loaded.dates else None,
        "skipped": loaded.skipped,
    }
    if not dry_run:
        summary["sent"] = publish_schedule(loaded.records)
    print(json.dumps(summary))


def publish_schedule(records: list[TripSchedule]) -> int:
    """Send the trips to transit.schedule, creating it compacted if it is missing."""
    from ..kafka_io import produce_to
    from ..topics import TRANSIT_SCHEDULE
    from ..transit_codec import encode_schedule

    settings = reachable_settings()
    topic = settings.topic(TRANSIT_SCHEDULE)
    asyncio.run(ensure_compacted(settings, topic))
    sent = asyncio.run(produce_to(settings, topic, encode_schedule(records)))
    err.print(f"sent {sent} trips to {topic}", markup=False)
    return sent


async def ensure_compacted(settings: Settings, topic: str) -> None:
    """Create ``topic`` with ``cleanup.policy=compact`` unless it exists (then left as it is)."""
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic
    from aiokafka.errors import TopicAlreadyExistsError

    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers, **settings.kafka_client_options())
    await admin.start()
    try:
        if topic in set(await admin.list_topics()):
            return
        new = NewTopic(
            topic,
            num_partitions=settings.topic_partitions,
            replication_factor=settings.topic_replication_factor,
            topic_configs={"cleanup.policy": "compact"},
        )
        try:
            await admin.create_topics([new])
        except TopicAlreadyExistsError:
            pass
    finally:
        await admin.close()


@app.command("city")
def city(
    out: Annotated[Path, typer.Argument(metavar="OUT.zip", help="Where to write the feed.")],
    start: Annotated[str, typer.Option(help="Start of the run (ISO 8601 with zone).")] = "",
    hours: Annotated[float, typer.Option(min=0.1, max=24 * 31, help="Length of the run.")] = 24.0,
    lines: Annotated[int, typer.Option(min=1, max=50, help="Bus lines.")] = 2,
    seed: Annotated[int, typer.Option(help="City seed (the same as the simulation's).")] = 1,
) -> None:
    """Write the synthetic city's timetable as a static GTFS feed (the demo loads its own the same way)."""
    from simulators.city.gtfs import city_trips, write_feed
    from simulators.city.types import CityConfig

    try:
        t0 = datetime.fromisoformat(start) if start else datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0)
    except ValueError:
        raise typer.BadParameter(f"{start!r} is not an ISO 8601 time", param_hint="--start") from None
    if t0.tzinfo is None:
        raise typer.BadParameter("needs a zone (2026-03-03T05:00+01:00)", param_hint="--start")
    config = CityConfig(bus_lines=lines, seed=seed)
    city_lines, trips = city_trips(config, t0.timestamp(), (t0 + timedelta(hours=hours)).timestamp())
    try:
        n = write_feed(out, config, city_lines, trips)
    except OSError as exc:
        raise CliError(f"cannot write {out}: {exc.strerror or exc}") from None
    err.print(f"wrote {n} trips of {lines} lines to {out}", markup=False)
