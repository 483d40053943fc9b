"""Commands at the root of ``leitstand`` that run for a while or score a run: ``replay``,
``evaluate``, ``report`` and ``demo``.

``simulators`` (the replay, the harness) is imported inside the commands: the CLI is the only
part of ``streams`` that may import it, and ``leitstand --help`` stays quick.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from ..errors import CliError
from ..settings import Settings
from .common import check_catalogue_topic, cli_settings, err, reachable_settings

#: mounted without a name: these commands sit at the root
app = typer.Typer()

Scored = TypeVar("Scored")

RunDir = Annotated[
    Path,
    typer.Argument(
        help="A run directory written by 'leitstand demo'.",
        metavar="DIR",
    ),
]


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
    from simulators.replay import ReplayError

    check_catalogue_topic(topic, create)
    key_col = key_col or default_key_column(csv_file, topic)
    check_replay_file(csv_file, time_col, key_col)
    settings = reachable_settings()
    try:
        result = asyncio.run(replay_live(settings, csv_file, topic, time_col, speed, key_col))
    except (KeyError, ReplayError) as exc:  # the file changed since it was checked
        raise CliError(str(exc.args[0])) from None
    target = settings.topic(topic)
    if result["refused"]:
        raise CliError(
            f"replayed {result['sent']:,} rows to {target}; refused {len(result['refused'])}: " + result["report"].refused_summary()
        )
    err.print(f"replayed {result['sent']:,} rows to {target} in {result['wall_s']:.1f} s")


def default_key_column(csv_file: Path, topic: str) -> str | None:
    """The topic's entity field when the file has a column of that name (``--key-col`` unset):
    the worker refuses unkeyed records of a keyed topic (``key_missing``)."""
    import csv

    from ..records import KEYED_RECORDS

    record = KEYED_RECORDS.get(topic)
    if record is None or record.key_field is None:
        return None
    try:
        with csv_file.open(newline="", encoding="utf-8-sig") as fh:
            header = next(csv.reader(fh), [])
    except (OSError, UnicodeDecodeError, csv.Error):
        return None  # check_replay_file says what is wrong with the file
    return record.key_field if record.key_field in header else None


def check_replay_file(csv_file: Path, time_col: str, key_col: str | None) -> None:
    """Read the whole file once before anything is sent: a bad file fails before the first row."""
    from simulators.replay import ReplayError, check_csv

    if not csv_file.is_file():
        raise CliError(f"no such file: {csv_file}")
    try:
        check_csv(csv_file, time_col, key_col)
    except (KeyError, ReplayError) as exc:
        raise CliError(str(exc.args[0])) from None
    except OSError as exc:
        raise CliError(f"cannot read {csv_file}: {exc.strerror}") from None


async def replay_live(settings: Settings, csv_file: Path, topic: str, time_col: str, speed: float, key_col: str | None) -> dict[str, Any]:
    """Replay the checked file, showing rows sent and the dataset clock on stderr meanwhile."""
    from rich.live import Live

    from simulators.replay import replay_csv

    from ..kafka_io import ensure_topics

    stats: dict[str, Any] = {}
    await ensure_topics(settings, [topic])
    task = asyncio.ensure_future(replay_csv(settings, csv_file, settings.topic(topic), time_col, speed, key_col, stats, checked=True))
    with Live(console=err, refresh_per_second=4, transient=True) as live:
        while not task.done():
            live.update(f"sent {stats.get('sent', 0):,} rows, dataset clock +{stats.get('dataset_offset_s', 0) / 3600:,.1f} h")
            await asyncio.sleep(0.25)
    return await task


@app.command("evaluate")
def evaluate(run_dir: RunDir = Path("leitstand-report")) -> None:
    """Score a run against its ground truth.

    Alarms per kind (recall, precision, delay), the alarm lifecycle and forecasts.
    """
    from simulators.harness.run_evaluation import evaluate_run

    print(json.dumps(scored(run_dir, evaluate_run), indent=2))


@app.command("report")
def report(run_dir: RunDir = Path("leitstand-report")) -> None:
    """Write an HTML report with plots for a run directory."""
    from simulators.harness.report import write_report

    err.print(f"report: {scored(run_dir, write_report)}")


def scored(run_dir: Path, score: Callable[[Path], Scored]) -> Scored:
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
    except (KeyError, TypeError, ValueError, AttributeError, OverflowError) as exc:  # a row check_run does not cover
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
    summary = run_demo(cli_settings(), minutes=minutes, speed=speed, report_dir=report_dir, port=port, city=city)
    err.print(f"report written to {summary['report']}")
    if summary["aggregates_received"] == 0:
        raise CliError("the worker produced no aggregates; see the worker log in the report directory")
