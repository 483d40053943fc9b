"""``leitstand simulate frames|city``: synthetic sensor streams onto the broker.

``simulators`` is imported inside the commands: the CLI is the only part of ``streams`` that
may import it, and ``leitstand --help`` stays quick.
"""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ..errors import CliError
from ..settings import Settings
from .common import err, reachable_settings

if TYPE_CHECKING:
    from simulators.city import City

app = typer.Typer(help="Produce synthetic sensor streams.", no_args_is_help=True)

#: a simulated month: the whole ground truth is computed before the first record is sent
#: (about two minutes for a month of the largest city), and --duration 1e9 ran past year 9999
MAX_CITY_HOURS = 24.0 * 31


@app.command("frames")
def simulate_frames(
    intersections: Annotated[int, typer.Option(min=1, max=100_000, help="Number of intersections.")] = 20,
    interval: Annotated[float, typer.Option(min=1.0, max=900.0, help="Seconds per detector frame.")] = 15.0,
    duration: Annotated[float, typer.Option(min=0.0, max=MAX_CITY_HOURS * 60, help="Simulated minutes to produce.")] = 60.0,
    speed: Annotated[float, typer.Option(min=0.0, max=1e6, help="Simulated seconds per wall second (0: as fast as possible).")] = 60.0,
    start: Annotated[datetime | None, typer.Option(help="Simulated start (ISO 8601, default: now).")] = None,
    seed: Annotated[int, typer.Option(help="Random seed; the same seed gives the same frames.")] = 1,
    malformed_rate: Annotated[float, typer.Option(min=0.0, max=1.0, help="Share of deliberately broken records.")] = 0.0,
) -> None:
    """Produce synthetic detector frames with daily peaks."""
    settings = reachable_settings()
    first_frame = (start or datetime.now(timezone.utc)).astimezone(timezone.utc)
    steps = max(1, int(duration * 60 / interval))
    from simulators.producer import produce_frames

    stats = asyncio.run(
        produce_frames(
            settings,
            intersections=intersections,
            interval_s=interval,
            steps=steps,
            speed=speed,
            start=first_frame,
            seed=seed,
            malformed_rate=malformed_rate,
            show=True,
        )
    )
    err.print(f"sent {stats['sent']} records ({stats['malformed']} malformed) in {stats['wall_s']:.1f} s")


@app.command("city")
def simulate_city(
    intersections: Annotated[int, typer.Option(min=1, max=500, help="Intersections.")] = 12,
    pools: Annotated[int, typer.Option(min=0, max=50, help="Pools.")] = 2,
    bus_lines: Annotated[int, typer.Option(min=0, max=50, help="Bus lines.")] = 2,
    speed: Annotated[
        float,
        typer.Option(
            min=0.0,
            help="Simulated seconds per wall second (60 = an hour a minute; 0: unpaced).",
        ),
    ] = 60.0,
    duration: Annotated[float, typer.Option(min=0.01, max=MAX_CITY_HOURS, help="Simulated hours.")] = 1.0,
    start: Annotated[datetime | None, typer.Option(help="Simulated start (ISO 8601, UTC if naive; default: now).")] = None,
    seed: Annotated[int, typer.Option(help="Random seed; the same seed gives the same city.")] = 1,
    truth: Annotated[
        Path,
        typer.Option(
            help="Ground truth JSON lines (also sent to simulation.truth).",
        ),
    ] = Path("leitstand-truth.jsonl"),
) -> None:
    """Produce the synthetic city's streams, with ground truth."""
    from simulators.city import City, CityConfig

    if truth.is_dir() or not truth.parent.is_dir():
        raise CliError(f"--truth {truth}: " + ("is a directory" if truth.is_dir() else "its directory does not exist"))
    settings = reachable_settings()
    city_start = start.replace(tzinfo=start.tzinfo or timezone.utc) if start else datetime.now(timezone.utc)
    config = CityConfig(intersections=intersections, pools=pools, bus_lines=bus_lines, seed=seed)
    city = City(config, start=city_start, duration_s=duration * 3600)
    try:
        truth.write_text("".join(t.to_line() + "\n" for t in city.truth()), encoding="utf-8")
    except OSError as exc:
        raise CliError(f"cannot write --truth {truth}: {exc.strerror or exc}") from None
    result = asyncio.run(produce_city_live(settings, city, speed))
    sent = result["sent"]
    err.print(
        f"sent {sum(sent.values()):,} records in {result['wall_s']:.1f} s ("
        + ", ".join(f"{k} {v:,}" for k, v in sorted(sent.items()))
        + f"); ground truth in {truth}"
    )


async def produce_city_live(settings: Settings, city: City, speed: float) -> dict[str, Any]:
    """Send the city's streams, showing the simulated time and the send rate on stderr meanwhile."""
    from rich.live import Live

    from simulators.producer import produce_city

    stats: dict[str, Any] = {}
    task = asyncio.ensure_future(produce_city(settings, city, speed=speed, stats=stats, truth_topic="simulation.truth"))
    began = time.monotonic()
    with Live(console=err, refresh_per_second=4, transient=True) as live:
        while not task.done():
            total = sum(stats.get("sent", {}).values())
            live.update(
                f"simulated {stats.get('sim_time', '-')}   sent {total:,}   {total / max(1e-9, time.monotonic() - began):,.0f} events/s"
            )
            await asyncio.sleep(0.25)
    return await task
