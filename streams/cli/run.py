"""Commands that run for a while: ``simulate frames``, ``demo`` and ``bench``.

Kept apart from ``main.py`` so the quick commands stay quick to read. These entry points are the
only part of ``streams`` that imports ``simulators`` (lazily, inside the commands); the runtime
(app, agents, codec, records) never does.
"""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

err = Console(stderr=True, highlight=False, soft_wrap=True)

#: a simulated month: the whole ground truth is computed before the first record is sent
#: (about two minutes for a month of the largest city), and --duration 1e9 ran past year 9999
MAX_CITY_HOURS = 24.0 * 31


def register(app: typer.Typer, simulate_app: typer.Typer, bench_app: typer.Typer) -> None:
    from ..errors import CliError
    from .common import _reachable_settings, settings

    register_alarm_benchmarks(bench_app)

    @simulate_app.command("frames")
    def simulate_frames(
        intersections: Annotated[int, typer.Option(min=1, max=100_000, help="Number of intersections.")] = 20,
        interval: Annotated[float, typer.Option(min=1.0, max=900.0, help="Seconds per detector frame.")] = 15.0,
        duration: Annotated[float, typer.Option(min=0.0, help="Simulated minutes to produce.")] = 60.0,
        speed: Annotated[float, typer.Option(min=0.0, help="Simulated seconds per wall second (0: as fast as possible).")] = 60.0,
        start: Annotated[datetime | None, typer.Option(help="Simulated start (ISO 8601, default: now).")] = None,
        seed: Annotated[int, typer.Option(help="Random seed; the same seed gives the same frames.")] = 1,
        malformed_rate: Annotated[float, typer.Option(min=0.0, max=1.0, help="Share of deliberately broken records.")] = 0.0,
    ) -> None:
        """Produce synthetic detector frames with daily peaks."""
        s = _reachable_settings()
        t0 = (start or datetime.now(timezone.utc)).astimezone(timezone.utc)
        steps = max(1, int(duration * 60 / interval))
        from simulators.producer import produce_frames

        stats = asyncio.run(
            produce_frames(
                s,
                intersections=intersections,
                interval_s=interval,
                steps=steps,
                speed=speed,
                start=t0,
                seed=seed,
                malformed_rate=malformed_rate,
                show=True,
            )
        )
        err.print(f"sent {stats['sent']} records ({stats['malformed']} malformed) in {stats['wall_s']:.1f} s")

    @simulate_app.command("city")
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
        from rich.live import Live

        from simulators.city import City, CityConfig
        from simulators.producer import produce_city

        if truth.is_dir() or not truth.parent.is_dir():
            raise CliError(f"--truth {truth}: " + ("is a directory" if truth.is_dir() else "its directory does not exist"))
        s = _reachable_settings()
        t0 = start.replace(tzinfo=start.tzinfo or timezone.utc) if start else datetime.now(timezone.utc)
        city = City(
            CityConfig(intersections=intersections, pools=pools, bus_lines=bus_lines, seed=seed), start=t0, duration_s=duration * 3600
        )
        try:
            truth.write_text("".join(t.to_line() + "\n" for t in city.truth()), encoding="utf-8")
        except OSError as exc:
            raise CliError(f"cannot write --truth {truth}: {exc.strerror or exc}") from None
        stats: dict[str, Any] = {}

        async def run() -> dict[str, Any]:
            import time

            task = asyncio.ensure_future(produce_city(s, city, speed=speed, stats=stats, truth_topic="simulation.truth"))
            began = time.monotonic()
            with Live(console=err, refresh_per_second=4, transient=True) as live:
                while not task.done():
                    total = sum(stats.get("sent", {}).values())
                    live.update(
                        f"simulated {stats.get('sim_time', '-')}   sent {total:,}   "
                        f"{total / max(1e-9, time.monotonic() - began):,.0f} events/s"
                    )
                    await asyncio.sleep(0.25)
            return await task

        result = asyncio.run(run())
        sent = result["sent"]
        err.print(
            f"sent {sum(sent.values()):,} records in {result['wall_s']:.1f} s ("
            + ", ".join(f"{k} {v:,}" for k, v in sorted(sent.items()))
            + f"); ground truth in {truth}"
        )

    @app.command("replay")
    def replay(
        csv_file: Annotated[Path, typer.Argument(help="CSV with a header row.", metavar="CSV")],
        topic: Annotated[str, typer.Option(help="Catalogue topic name, e.g. sensors.pool (the prefix is added).")],
        time_col: Annotated[str, typer.Option(help="Column with the event time (ISO 8601 or epoch seconds).")] = "timestamp",
        speed: Annotated[float, typer.Option(min=0.0, help="Dataset seconds per wall second (0: as fast as possible).")] = 3600.0,
        key_col: Annotated[str | None, typer.Option(help="Column whose value becomes the message key.")] = None,
        create: Annotated[bool, typer.Option("--create", help="Allow a topic outside the catalogue (created if missing).")] = False,
    ) -> None:
        """Replay a CSV dataset into a topic, time-compressed."""

        from simulators.replay import ReplayError, check_csv, replay_csv

        from ..kafka_io import ensure_topics
        from ..topics import TopicError, check_topic

        try:
            check_topic(topic, create=create, prefix=settings().topic_prefix)
        except TopicError as exc:
            raise CliError(str(exc)) from None
        if not csv_file.is_file():
            raise CliError(f"no such file: {csv_file}")
        try:  # the whole file is read once before anything is sent: a bad file fails before the first row
            check_csv(csv_file, time_col, key_col)
        except (KeyError, ReplayError) as exc:
            raise CliError(str(exc.args[0])) from None
        except OSError as exc:
            raise CliError(f"cannot read {csv_file}: {exc.strerror}") from None
        s = _reachable_settings()
        stats: dict[str, Any] = {}

        async def run() -> dict[str, Any]:
            await ensure_topics(s, [topic])
            task = asyncio.ensure_future(replay_csv(s, csv_file, s.topic(topic), time_col, speed, key_col, stats, checked=True))
            from rich.live import Live

            with Live(console=err, refresh_per_second=4, transient=True) as live:
                while not task.done():
                    live.update(f"sent {stats.get('sent', 0):,} rows, dataset clock +{stats.get('dataset_offset_s', 0) / 3600:,.1f} h")
                    await asyncio.sleep(0.25)
            return await task

        try:
            result = asyncio.run(run())
        except (KeyError, ReplayError) as exc:  # the file changed since it was checked
            raise CliError(str(exc.args[0])) from None
        if result["refused"]:
            raise CliError(
                f"replayed {result['sent']:,} rows to {s.topic(topic)}; refused "
                f"{len(result['refused'])}: " + result["report"].refused_summary()
            )
        err.print(f"replayed {result['sent']:,} rows to {s.topic(topic)} in {result['wall_s']:.1f} s")

    @app.command("evaluate")
    def evaluate(
        run_dir: Annotated[
            Path,
            typer.Argument(
                help="A run directory written by 'leitstand demo'.",
                metavar="DIR",
            ),
        ] = Path("leitstand-report"),
    ) -> None:
        """Score a run against its ground truth.

        Alarms per kind (recall, precision, delay), the alarm lifecycle and forecasts.
        """
        from simulators.harness.run_evaluation import evaluate_run

        print(json.dumps(_scored(run_dir, evaluate_run), indent=2))

    @app.command("report")
    def report(
        run_dir: Annotated[
            Path,
            typer.Argument(
                help="A run directory written by 'leitstand demo'.",
                metavar="DIR",
            ),
        ] = Path("leitstand-report"),
    ) -> None:
        """Write an HTML report with plots for a run directory."""
        from simulators.harness.report import write_report

        err.print(f"report: {_scored(run_dir, write_report)}")

    def _scored(run_dir: Path, score: Any) -> Any:
        """``score(run_dir)`` for a finished, readable run; anything else is one line."""
        from simulators.harness.run_evaluation import RunError, check_run

        if not (run_dir / "truth.jsonl").is_file():
            raise CliError(f"{run_dir} holds no truth.jsonl: run 'leitstand demo --report-dir {run_dir}' first")
        try:
            check_run(run_dir)
            return score(run_dir)
        except RunError as exc:
            raise CliError(str(exc)) from None
        except OSError as exc:
            raise CliError(f"{run_dir}: {exc.strerror or exc}: {exc.filename or ''}") from None
        except (KeyError, TypeError, ValueError, AttributeError) as exc:  # a row check_run does not cover
            raise CliError(f"{run_dir}: a file of this run is malformed ({type(exc).__name__}: {exc})") from None

    @app.command("demo")
    def demo(
        minutes: Annotated[float, typer.Option(min=0.1, max=600.0, help="Wall-clock minutes to run.")] = 3.0,
        speed: Annotated[float, typer.Option(min=1.0, max=3600.0, help="Simulated seconds per wall second.")] = 200.0,
        intersections: Annotated[int, typer.Option(min=1, max=500, help="Synthetic intersections.")] = 12,
        pools: Annotated[int, typer.Option(min=0, max=50, help="Synthetic pools.")] = 2,
        bus_lines: Annotated[int, typer.Option(min=0, max=50, help="Synthetic bus lines.")] = 2,
        seed: Annotated[int, typer.Option(help="Seed of the city; the same seed gives the same run.")] = 1,
        report_dir: Annotated[Path, typer.Option(help="Where the run's report is written.")] = Path("leitstand-report"),
        port: Annotated[int, typer.Option(min=1, max=65535, help="Port of the embedded broker.")] = 9092,
    ) -> None:
        """Run broker, worker and a synthetic city; write a report.

        Needs no Docker and no Java: the embedded broker starts in milliseconds.
        """
        from simulators.harness.demo import run_demo

        # a demo should show the rare, important things: camera incidents more often than a real pool has them
        city = {"intersections": intersections, "pools": pools, "bus_lines": bus_lines, "seed": seed, "camera_incidents_per_pool_day": 6.0}
        summary = run_demo(settings(), minutes=minutes, speed=speed, report_dir=report_dir, port=port, city=city)
        err.print(f"report written to {summary['report']}")
        if summary["aggregates_received"] == 0:
            raise CliError("the worker produced no aggregates; see the worker log in the report directory")

    @bench_app.command("decode")
    def bench_decode(
        records: Annotated[int, typer.Option(min=100, help="Frames to decode per candidate.")] = 50_000,
        detectors: Annotated[int, typer.Option(min=1, max=256, help="Detectors per frame.")] = 8,
        repeat: Annotated[int, typer.Option(min=1, max=20, help="Repetitions; the best is reported.")] = 3,
    ) -> None:
        """Measure frame decoding against stdlib json."""
        from simulators.harness.bench import decode_benchmark

        print(json.dumps(decode_benchmark(records, detectors, repeat), indent=2))

    @bench_app.command("pipeline")
    def bench_pipeline(
        frames: Annotated[int, typer.Option(min=1_000, help="Frames pushed through the worker.")] = 50_000,
        intersections: Annotated[int, typer.Option(min=1, help="Distinct intersections (keys).")] = 500,
        engine: Annotated[str, typer.Option(help="tansu or kafka.")] = "tansu",
    ) -> None:
        """Measure worker throughput against a raw consumer."""
        from simulators.harness.bench import pipeline_benchmark

        s = settings()
        print(json.dumps(pipeline_benchmark(s, frames=frames, intersections=intersections, engine=engine), indent=2))


def register_alarm_benchmarks(bench_app: typer.Typer) -> None:
    from .common import settings

    @bench_app.command("pool-day")
    def bench_pool_day(
        days: Annotated[int, typer.Option(min=1, max=365, help="Simulated days.")] = 7,
        pools: Annotated[int, typer.Option(min=1, max=100, help="Pools per day.")] = 3,
        seed: Annotated[int, typer.Option(help="Seed of the first day.")] = 1,
        min_duration_s: Annotated[float, typer.Option(min=0.0, help="Water rule minimum duration.")] = 30.0,
    ) -> None:
        """Score pool alarms on simulated pool days."""
        from simulators.harness.bench_alarms import pool_day_benchmark

        print(json.dumps(pool_day_benchmark(days, pools, seed, min_duration_s), indent=2))

    @bench_app.command("alarm-latency")
    def bench_alarm_latency(
        engine: Annotated[str, typer.Option(help="tansu or kafka.")] = "tansu",
        load: Annotated[int, typer.Option(min=0, help="Background water readings per second.")] = 5000,
        events: Annotated[int, typer.Option(min=10, help="Motionless-swimmer events to time.")] = 200,
        rate: Annotated[float, typer.Option(min=0.1, help="Camera events per second.")] = 10.0,
        split: Annotated[
            bool,
            typer.Option(
                "--split/--single",
                help="Critical and telemetry roles in two workers (default) or all in one.",
            ),
        ] = True,
    ) -> None:
        """Time camera event to alarm under load."""
        from simulators.harness.bench_alarms import latency_benchmark

        result = latency_benchmark(settings(), engine=engine, load_per_s=load, events=events, event_rate_per_s=rate, split_roles=split)
        print(json.dumps(result, indent=2))
