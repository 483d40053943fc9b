"""Commands that run for a while: ``simulate frames``, ``demo`` and ``bench``.

Kept apart from ``cli.py`` so the quick commands stay quick to read.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.console import Console
from rich.live import Live
from rich.table import Table

err = Console(stderr=True, highlight=False, soft_wrap=True)


def register(app: typer.Typer, simulate_app: typer.Typer, bench_app: typer.Typer) -> None:
    from .cli import CliError, _reachable_settings, settings

    @simulate_app.command("frames")
    def simulate_frames(
        intersections: Annotated[int, typer.Option(min=1, max=100_000, help="Number of intersections.")] = 20,
        interval: Annotated[float, typer.Option(min=1.0, max=900.0, help="Seconds per detector frame.")] = 15.0,
        duration: Annotated[float, typer.Option(min=0.0, help="Simulated minutes to produce.")] = 60.0,
        speed: Annotated[float, typer.Option(min=0.0, help="Simulated seconds per wall second (0: as fast as possible).")] = 60.0,
        start: Annotated[Optional[datetime], typer.Option(help="Simulated start (ISO 8601, default: now).")] = None,
        seed: Annotated[int, typer.Option(help="Random seed; the same seed gives the same frames.")] = 1,
        malformed_rate: Annotated[float, typer.Option(min=0.0, max=1.0, help="Share of deliberately broken records.")] = 0.0,
    ) -> None:
        """Produce synthetic detector frames with daily peaks."""
        s = _reachable_settings()
        t0 = (start or datetime.now(timezone.utc)).astimezone(timezone.utc)
        steps = max(1, int(duration * 60 / interval))
        stats = asyncio.run(
            produce_frames(
                s, intersections=intersections, interval_s=interval, steps=steps, speed=speed,
                start=t0, seed=seed, malformed_rate=malformed_rate, show=True,
            )
        )
        err.print(f"sent {stats['sent']} records ({stats['malformed']} malformed) in {stats['wall_s']:.1f} s")

    @app.command("demo")
    def demo(
        minutes: Annotated[float, typer.Option(min=0.1, max=600.0, help="How long to run.")] = 2.0,
        intersections: Annotated[int, typer.Option(min=1, max=10_000, help="Synthetic intersections.")] = 20,
        speed: Annotated[float, typer.Option(min=1.0, max=3600.0, help="Simulated seconds per wall second.")] = 60.0,
        report_dir: Annotated[Path, typer.Option(help="Where the run's report is written.")] = Path("leitstand-report"),
        port: Annotated[int, typer.Option(help="Port of the embedded broker.")] = 9092,
    ) -> None:
        """Run broker, worker and a synthetic city; write a report.

        Needs no Docker and no Java: the embedded broker starts in milliseconds.
        """
        from .demo import run_demo

        summary = run_demo(settings(), minutes=minutes, intersections=intersections, speed=speed, report_dir=report_dir, port=port)
        err.print(f"report written to {report_dir}/summary.json")
        if summary["aggregates_received"] == 0:
            raise CliError("the worker produced no aggregates; see the worker log in the report directory")

    @bench_app.command("decode")
    def bench_decode(
        records: Annotated[int, typer.Option(min=100, help="Frames to decode per candidate.")] = 50_000,
        detectors: Annotated[int, typer.Option(min=1, max=256, help="Detectors per frame.")] = 8,
        repeat: Annotated[int, typer.Option(min=1, max=20, help="Repetitions; the best is reported.")] = 3,
    ) -> None:
        """Measure frame decoding against stdlib json."""
        from .bench import decode_benchmark

        print(json.dumps(decode_benchmark(records, detectors, repeat), indent=2))

    @bench_app.command("pipeline")
    def bench_pipeline(
        frames: Annotated[int, typer.Option(min=1_000, help="Frames pushed through the worker.")] = 50_000,
        intersections: Annotated[int, typer.Option(min=1, help="Distinct intersections (keys).")] = 500,
        engine: Annotated[str, typer.Option(help="tansu or kafka.")] = "tansu",
    ) -> None:
        """Measure worker throughput against a raw consumer."""
        from .bench import pipeline_benchmark

        s = settings()
        print(json.dumps(pipeline_benchmark(s, frames=frames, intersections=intersections, engine=engine), indent=2))


async def produce_frames(
    s: Any,
    *,
    intersections: int,
    interval_s: float,
    steps: int,
    speed: float,
    start: datetime,
    seed: int,
    malformed_rate: float = 0.0,
    show: bool = False,
    stats: dict[str, Any] | None = None,
    stop_at: float | None = None,
) -> dict[str, Any]:
    """Send synthetic frames step by step, paced to ``speed`` (0: unpaced)."""
    from simulators.frames import MALFORMED_KINDS, frames, malformed

    from .kafka_io import producer
    from .records import encode

    stats = stats if stats is not None else {}
    stats.update(sent=0, malformed=0, sim_time=start.isoformat(), wall_s=0.0)
    rng = random.Random(seed + 7)
    topic = s.topic("sensors.intersection")
    prod = producer(s)
    await prod.start()
    t_wall0 = time.monotonic()
    live = Live(console=err, refresh_per_second=4, transient=True) if show else None
    try:
        if live:
            live.start()
        pending = []
        last_step = -1
        for i, f in enumerate(frames(intersections=intersections, start=start, interval_s=interval_s, steps=steps, seed=seed)):
            step = i // intersections
            if step != last_step:
                last_step = step
                stats["sim_time"] = f.event_time.isoformat()
                if speed > 0:
                    due = t_wall0 + step * interval_s / speed
                    delay = due - time.monotonic()
                    if delay > 0:
                        if pending:
                            await asyncio.gather(*pending)
                            pending.clear()
                        await asyncio.sleep(delay)
                if stop_at is not None and time.monotonic() >= stop_at:
                    break
                if live:
                    live.update(f"simulated {stats['sim_time']}  sent {stats['sent']:,}  "
                                f"{stats['sent'] / max(1e-9, time.monotonic() - t_wall0):,.0f} records/s")
            value = encode(f)
            if malformed_rate and rng.random() < malformed_rate:
                value = malformed(rng.choice(MALFORMED_KINDS), value, rng)
                stats["malformed"] += 1
            pending.append(await prod.send(topic, value=value, key=f.intersection_id.encode()))
            stats["sent"] += 1
            if len(pending) >= 5000:
                await asyncio.gather(*pending)
                pending.clear()
        if pending:
            await asyncio.gather(*pending)
    finally:
        if live:
            live.stop()
        await prod.stop()
    stats["wall_s"] = time.monotonic() - t_wall0
    return stats


def status_table(rows: dict[str, Any]) -> Table:
    table = Table(show_header=False, box=None)
    for k, v in rows.items():
        table.add_row(k, str(v))
    return table

