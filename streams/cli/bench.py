"""``leitstand bench ...``: every benchmark, one command each, printing JSON with a same-run
baseline. The commands only parse options and print; the work is done by the harness
(``simulators.harness.bench``, ``bench_alarms``) and by the plain functions beside the commands
they measure (``detect.nab_benchmark``, ``forecast.forecast_accuracy_benchmark``,
``sumo.signals_benchmark``, ...), so scripts and tests can call them without the CLI.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from .common import cli_settings, default_shared_dir, fail
from .detect import detector_benchmark, detector_name, find_nab_dir, nab_benchmark, nab_set_benchmark, nab_table_benchmark
from .forecast import forecast_accuracy_benchmark, forecast_refresh_benchmark
from .sumo import FailedDetectors, FailureKindOption, heldout_benchmark, signals_benchmark

#: where ``bench signals`` looks for the real-city maps unless told (``../shared/scenarios``)
DEFAULT_SCENARIOS = default_shared_dir() / "scenarios"

app = typer.Typer(help="Run benchmarks (JSON, with a same-run baseline).", no_args_is_help=True)


def print_json(result: Any, indent: int | None = 2) -> None:
    """A benchmark's result on stdout, the one thing a benchmark prints there."""
    print(json.dumps(result, indent=indent))


@app.command("pool-day")
def bench_pool_day(
    days: Annotated[int, typer.Option(min=1, max=365, help="Simulated days.")] = 7,
    pools: Annotated[int, typer.Option(min=1, max=100, help="Pools per day.")] = 3,
    seed: Annotated[int, typer.Option(help="Seed of the first day.")] = 1,
    min_duration_s: Annotated[float, typer.Option(min=0.0, help="Water rule minimum duration.")] = 30.0,
) -> None:
    """Score pool alarms on simulated pool days."""
    from simulators.harness.bench_alarms import pool_day_benchmark

    print_json(pool_day_benchmark(days, pools, seed, min_duration_s))


@app.command("probe-warning")
def bench_probe_warning(
    days: Annotated[int, typer.Option(min=3, max=365, help="Simulated days per pool (the first two are the warm-up).")] = 28,
    pools: Annotated[int, typer.Option(min=1, max=50, help="Pools per seed.")] = 4,
    seeds: Annotated[str, typer.Option("--seeds", help="City seeds, e.g. 1-3 or 1,4 (about 75 s each).")] = "1-5",
    thresholds: Annotated[str, typer.Option(help="Warning thresholds to score, comma-separated scores in (0, 1].")] = "0.6,0.7,0.8,0.9",
    rate: Annotated[float, typer.Option(min=0.0, max=5.0, help="Pump failures and probe faults per pool and day.")] = 0.2,
) -> None:
    """Score the water early warning (JSON)."""
    from rich.console import Console

    from simulators.harness.bench_probe_warning import probe_warning_benchmark

    from ..errors import CliError
    from .sumo import parse_seeds

    try:
        levels = [float(x) for x in thresholds.split(",") if x.strip()]
    except ValueError:
        raise CliError(f"--thresholds: {thresholds!r} is not a list of numbers like 0.7,0.8") from None
    if not levels or any(not 0.0 < x <= 1.0 for x in levels):
        raise CliError(f"--thresholds: each must be a score in (0, 1], got {thresholds!r}")
    console = Console(stderr=True)
    with console.status("simulating pools") as status:
        result = probe_warning_benchmark(days, pools, parse_seeds(seeds), levels, rate, progress=lambda what: status.update(what))
    print_json(result)


@app.command("alarm-latency")
def bench_alarm_latency(
    engine: Annotated[str, typer.Option(help="tansu or kafka.")] = "tansu",
    load: Annotated[int, typer.Option(min=0, help="Background water readings per second.")] = 5000,
    events: Annotated[int, typer.Option(min=10, help="Motionless-swimmer events to time.")] = 200,
    rate: Annotated[float, typer.Option(min=0.1, help="Camera events per second.")] = 10.0,
    split: Annotated[
        bool,
        typer.Option(
            "--split/--single",
            help="Critical, water and telemetry roles in three workers (default) or all in one.",
        ),
    ] = True,
    with_forecasting: Annotated[
        int, typer.Option(min=0, help="Forecast series the telemetry worker refits without pause while it is measured (0: none).")
    ] = 0,
    stress: Annotated[bool, typer.Option(help="Run stress-ng (CPU, memory, disk) beside everything.")] = False,
) -> None:
    """Time camera event to alarm under load."""
    from simulators.harness.bench_alarms import latency_benchmark

    print_json(
        latency_benchmark(
            cli_settings(),
            engine=engine,
            load_per_s=load,
            events=events,
            event_rate_per_s=rate,
            split_roles=split,
            forecast_series=with_forecasting,
            stress=stress,
        )
    )


def _engine(value: str) -> str:
    """The broker of ``bench recovery``: one clear line for anything else."""
    if value not in ("tansu", "kafka"):
        raise typer.BadParameter(f"{value!r} is not a broker: tansu or kafka")
    return value


@app.command("recovery")
def bench_recovery(
    runs: Annotated[int, typer.Option(min=1, max=1000, help="Stop-and-restart runs.")] = 50,
    broker: Annotated[str, typer.Option(help="tansu or kafka.", callback=_engine)] = "tansu",
    seed: Annotated[int, typer.Option(help="Seed of the stop moments and signals.")] = 1,
) -> None:
    """Kill and restart a worker: exact recovery? (JSON)"""
    from simulators.harness.bench_recovery import recovery_benchmark_with_progress
    from streams.broker import BrokerError

    try:
        result = recovery_benchmark_with_progress(cli_settings(), engine=broker, runs=runs, seed=seed)
    except BrokerError as exc:
        fail(f"bench recovery: the {broker} broker did not start: {exc}")
        raise typer.Exit(1) from None
    print_json(result)


@app.command("decode")
def bench_decode(
    records: Annotated[int, typer.Option(min=100, help="Frames to decode per candidate.")] = 50_000,
    detectors: Annotated[int, typer.Option(min=1, max=256, help="Detectors per frame.")] = 8,
    repeat: Annotated[int, typer.Option(min=1, max=20, help="Repetitions; the best is reported.")] = 3,
) -> None:
    """Measure frame decoding against stdlib json."""
    from simulators.harness.bench import decode_benchmark

    print_json(decode_benchmark(records, detectors, repeat))


@app.command("pipeline")
def bench_pipeline(
    frames: Annotated[int, typer.Option(min=1_000, help="Frames pushed through the worker.")] = 50_000,
    intersections: Annotated[int, typer.Option(min=1, help="Distinct intersections (keys).")] = 500,
    engine: Annotated[str, typer.Option(help="tansu or kafka.")] = "tansu",
    role: Annotated[str, typer.Option(help="Worker role under test, with every agent of it: telemetry, control or all.")] = "all",
    bad_share: Annotated[
        float, typer.Option(min=0.0, max=0.5, help="Share of malformed, oversize and wrongly keyed records (each dead-lettered).")
    ] = 0.0,
    detectors: Annotated[int, typer.Option(min=1, max=64, help="Detectors per frame (cities: 8-16).")] = 4,
    frame_interval: Annotated[
        float,
        typer.Option(
            min=0.1, max=300.0, help="Seconds of event time between two frames of one intersection (1: a frame a second, as in a city)."
        ),
    ] = 1.0,
    controller: Annotated[
        str, typer.Option(help="Signal controller configured on every intersection for the control role; none: the frames only.")
    ] = "leitstand",
) -> None:
    """Frames/s of one worker against a raw consumer (JSON)."""
    from simulators.harness.bench import pipeline_benchmark

    if role not in ("telemetry", "control", "all"):
        raise typer.BadParameter(f"{role!r}: expected telemetry, control or all", param_hint="--role")
    from signals.controllers import CONTROLLERS

    if controller != "none" and controller not in CONTROLLERS:
        raise typer.BadParameter(f"{controller!r}: expected none or one of {', '.join(sorted(CONTROLLERS))}", param_hint="--controller")
    result = pipeline_benchmark(
        cli_settings(),
        frames=frames,
        intersections=intersections,
        engine=engine,
        role=role,
        bad_share=bad_share,
        detectors=detectors,
        frame_interval_s=frame_interval,
        controller=None if controller == "none" else controller,
    )
    print_json(result)


@app.command("city")
def bench_city(
    intersections: Annotated[int, typer.Option(min=1, max=20_000, help="Signalised intersections, one frame per second each.")] = 2000,
    detectors: Annotated[int, typer.Option(min=1, max=64, help="Detectors per frame (cities: 8-16).")] = 12,
    buses: Annotated[int, typer.Option(min=0, max=20_000, help="Buses, a position every 10 s each.")] = 1500,
    pools: Annotated[int, typer.Option(min=0, max=1_000, help="Pools, 20 water readings per second each.")] = 60,
    camera_rate: Annotated[
        float, typer.Option(min=0.0, max=100.0, help="Motionless-swimmer events per second (each raises an alarm).")
    ] = 1.0,
    telemetry_workers: Annotated[
        int, typer.Option("--telemetry", min=1, max=16, help="Telemetry worker processes (one critical, water and control beside them).")
    ] = 2,
    partitions: Annotated[int | None, typer.Option(min=1, max=256, help="Partitions per topic (default: 4 per telemetry worker).")] = None,
    warmup: Annotated[float, typer.Option(min=0.0, max=3600.0, help="Seconds of load before measuring.")] = 30.0,
    seconds: Annotated[float, typer.Option(min=5.0, max=86_400.0, help="Seconds measured.")] = 120.0,
    engine: Annotated[str, typer.Option(help="tansu or kafka.")] = "tansu",
    stress: Annotated[bool, typer.Option(help="Run stress-ng (CPU, memory, disk) beside everything.")] = False,
) -> None:
    """City-scale live load: latency per path, CPU (JSON)."""
    from simulators.harness.bench_city import CityLoad, city_benchmark

    if partitions is not None and partitions < telemetry_workers:
        raise typer.BadParameter(
            f"{partitions} partitions leave {telemetry_workers - partitions} of {telemetry_workers} telemetry workers idle",
            param_hint="--partitions",
        )
    load = CityLoad(intersections=intersections, detectors=detectors, buses=buses, pools=pools, camera_events_per_s=camera_rate)
    print_json(
        city_benchmark(
            cli_settings(),
            engine=_engine(engine),
            load=load,
            telemetry_workers=telemetry_workers,
            partitions=partitions or 4 * telemetry_workers,
            warmup_s=warmup,
            measure_s=seconds,
            stress=stress,
        )
    )


@app.command("nab")
def bench_nab(
    data_dir: Annotated[
        Path | None,
        typer.Option(
            help="NAB data: realTraffic/*.csv and realTraffic_windows.json (default: ../shared/data/nab).",
        ),
    ] = None,
    detector: Annotated[str, typer.Option(callback=detector_name, help="Detector to score.")] = "default",
    compare: Annotated[bool, typer.Option(help="Also score every other registered detector.")] = True,
    nab_set: Annotated[
        str | None,
        typer.Option(
            "--set",
            help="Score one set instead: dev, realTraffic, or files (a,b.csv or a list file), with per-category "
            "and cross-validated figures.",
        ),
    ] = None,
) -> None:
    """NAB realTraffic score with one threshold.

    Standard profile, with null/perfect/random baselines and an unseen check.
    """
    if nab_set is not None:
        print_json(nab_set_benchmark(find_nab_dir(data_dir), nab_set, detector))
        return
    print_json(nab_benchmark(find_nab_dir(data_dir), detector, compare))


@app.command("nab-table")
def bench_nab_table(
    data_dir: Annotated[
        Path | None,
        typer.Option(help="NAB data with dev_windows.json and realTraffic_windows.json (default: ../shared/data/nab)."),
    ] = None,
    grid: Annotated[bool, typer.Option(help="Also cross-validate the adaptive detector's constants (minutes).")] = False,
) -> None:
    """NAB dev set and realTraffic, every detector (JSON).

    In sample, cross-validated by category, per category (JSON).
    """
    print_json(nab_table_benchmark(find_nab_dir(data_dir), grid))


@app.command("detectors")
def bench_detectors(
    points: Annotated[int, typer.Option(min=1_000, help="Readings per detector.")] = 200_000,
    repeat: Annotated[int, typer.Option(min=1, max=10, help="Repetitions; the best is reported.")] = 3,
) -> None:
    """Microseconds per reading for each detector.

    Score + learn per point, against same-run baselines.
    """
    print_json(detector_benchmark(points, repeat))


@app.command("forecast-accuracy")
def bench_forecast_accuracy(
    data: Annotated[
        Path | None,
        typer.Option(
            "--data",
            help="Metro_Interstate_Traffic_Volume.csv (default: ../shared/data/metro-interstate/).",
        ),
    ] = None,
    prophet: Annotated[
        bool,
        typer.Option(
            "--prophet/--no-prophet",
            help="Also run Prophet default and prophet_traffic (minutes).",
        ),
    ] = False,
    jobs: Annotated[int, typer.Option("--jobs", min=1, help="Processes fitting origins in parallel.")] = 2,
) -> None:
    """Metro Interstate day-ahead backtest (JSON).

    52 origins 8 days apart, one year of training before each.
    """
    print_json(forecast_accuracy_benchmark(data, prophet, jobs), indent=1)


@app.command("forecast-intervals")
def bench_forecast_intervals(
    data_dir: Annotated[
        Path | None,
        typer.Option(help="NAB data: */*.csv (default: ../shared/data/nab)."),
    ] = None,
    jobs: Annotated[int, typer.Option("--jobs", min=1, help="Processes fitting origins in parallel.")] = 2,
    min_days: Annotated[int, typer.Option("--min-days", min=14, help="Only series spanning at least this many days.")] = 42,
) -> None:
    """Forecast interval coverage on NAB series (JSON).

    Day-ahead, hourly means; tuning and held-out series reported apart.
    """
    from .forecast_intervals import nab_interval_bench

    print_json(nab_interval_bench(find_nab_dir(data_dir), jobs, min_days))


@app.command("forecast-dst")
def bench_forecast_dst(
    jobs: Annotated[int, typer.Option("--jobs", min=1, help="Processes fitting origins in parallel.")] = 2,
) -> None:
    """Forecasts across a clock change: local vs UTC (JSON).

    The synthetic city's history across the October daylight-saving change, forecast with and
    without the city's zone; needs no ../shared data (~2 min).
    """
    from .forecast_dst import dst_bench

    print_json(dst_bench(jobs), indent=1)


@app.command("forecast-refresh")
def bench_forecast_refresh(
    series: Annotated[int, typer.Option("--series", min=1, help="How many series to refresh.")] = 2000,
    history_days: Annotated[int, typer.Option("--history-days", min=15, help="Hourly history per series.")] = 365,
    workers: Annotated[int, typer.Option("--workers", min=1, help="Process pool size.")] = 2,
    horizon: Annotated[int, typer.Option("--horizon", min=1, help="Hourly steps forecast per series.")] = 24,
) -> None:
    """Time refreshing many series' forecasts (JSON).

    Refits and forecasts SERIES synthetic hourly series with the default model.

    The same run times the weekly seasonal naive as the baseline. Budget: 2,000 series
    within 10 minutes on 2 cores.
    """
    print_json(forecast_refresh_benchmark(series, history_days, workers, horizon), indent=1)


@app.command("signals")
def bench_signals(
    scenarios: Annotated[
        Path,
        typer.Option(
            "--scenarios",
            help="Directory holding <name>/<name>.sumocfg.",
        ),
    ] = DEFAULT_SCENARIOS,
    seeds: Annotated[str, typer.Option("--seeds", help="Seeds per scenario and controller.")] = "1-5",
    controllers: Annotated[
        str,
        typer.Option(
            "--controllers",
            help="Controllers; fixed is the baseline.",
        ),
    ] = "fixed,webster,maxpressure,leitstand",
    jobs: Annotated[int | None, typer.Option("--jobs", min=1, help="Parallel SUMO processes (default: CPUs).")] = None,
    failed_detectors: FailedDetectors = 0.0,
    failure_kind: FailureKindOption = "dead",
    maps: Annotated[
        str | None, typer.Option("--maps", help="Only these maps, comma-separated (default: all four development maps).")
    ] = None,
) -> None:
    """Controllers vs fixed time on real-city maps (JSON)."""
    print(json.dumps(signals_benchmark(scenarios, seeds, controllers, jobs, failed_detectors, maps, failure_kind)))


@app.command("signals-heldout")
def bench_signals_heldout(
    seeds: Annotated[str, typer.Option("--seeds", help="Seeds: each builds its own demand and seeds SUMO.")] = "1-3",
    controllers: Annotated[str, typer.Option("--controllers", help="Controllers; fixed is the baseline.")] = (
        "fixed,webster,maxpressure,leitstand"
    ),
    levels: Annotated[str, typer.Option("--levels", help="Demand levels: low, medium, high.")] = "low,medium,high",
    networks: Annotated[str, typer.Option("--networks", help="Generated networks: grid, arterial.")] = "grid,arterial",
    jobs: Annotated[int | None, typer.Option("--jobs", min=1, help="Parallel SUMO processes (default: CPUs).")] = None,
    failed_detectors: FailedDetectors = 0.0,
    failure_kind: FailureKindOption = "dead",
    keep: Annotated[Path | None, typer.Option("--keep", help="Write the generated scenarios here (default: a temp dir).")] = None,
    end_s: Annotated[int | None, typer.Option("--end", min=300, help="Simulated seconds per run (default 1800).")] = None,
) -> None:
    """Controllers on generated networks (JSON).

    Grids and arterials (SUMO netgenerate, randomTrips) at three demand levels; nobody tuned on them.
    """
    print(json.dumps(heldout_benchmark(seeds, controllers, levels, networks, jobs, failed_detectors, keep, end_s, failure_kind)))


@app.command("fairness")
def bench_fairness(
    scenarios: Annotated[Path, typer.Option("--scenarios", help="Directory holding <name>/<name>.sumocfg.")] = DEFAULT_SCENARIOS,
    seeds: Annotated[str, typer.Option("--seeds", help="Seeds per scenario and controller.")] = "1",
    controllers: Annotated[str, typer.Option("--controllers", help="Controllers; fixed is the baseline.")] = (
        "fixed,webster,maxpressure,leitstand"
    ),
    jobs: Annotated[int | None, typer.Option("--jobs", min=1, help="Parallel SUMO processes (default: CPUs).")] = None,
) -> None:
    """Wait per approach against fixed time (JSON)."""
    from .registry import fairness_benchmark_cli

    print_json(fairness_benchmark_cli(scenarios, seeds, controllers, jobs), indent=1)


@app.command("arrivals")
def bench_arrivals(
    lines: Annotated[int, typer.Option(min=1, max=20, help="Bus lines of the synthetic city.")] = 4,
    hours: Annotated[float, typer.Option(min=1.0, max=24.0, help="Simulated hours from 05:00 of a weekday.")] = 18.0,
    seeds: Annotated[int, typer.Option(min=1, max=20, help="Weekdays (city seeds) to simulate.")] = 3,
) -> None:
    """Bus arrival prediction error vs the timetable (JSON)."""
    from simulators.harness.bench_arrivals import arrivals_benchmark

    print_json(arrivals_benchmark(lines, hours, seeds))


@app.command("tsp")
def bench_tsp(
    scenario: Annotated[str, typer.Option(help="Scenario name under --scenarios (a real-city map).")] = "ingolstadt21",
    scenarios: Annotated[Path, typer.Option("--scenarios", help="Directory holding <name>/<name>.sumocfg.")] = DEFAULT_SCENARIOS,
    seeds: Annotated[int, typer.Option(min=1, max=20, help="Seeds, each run with TSP off and on.")] = 5,
    headway_s: Annotated[float, typer.Option(min=60.0, max=3600.0, help="Bus headway per line.")] = 300.0,
    first_seed: Annotated[int, typer.Option(min=1, help="First seed (tuning runs use others than the reported 1-5).")] = 1,
    late_s: Annotated[float, typer.Option(min=0.0, max=3600.0, help="A bus with more time loss asks for priority.")] = 30.0,
    limit_s: Annotated[float, typer.Option(min=0.0, max=60.0, help="Maximum green extension and early green.")] = 25.0,
    controller: Annotated[
        str, typer.Option("--controller", "-c", help="fixed, webster (grants change the cycle), maxpressure or leitstand (bus calls).")
    ] = "fixed",
    bus_weight: Annotated[
        float | None,
        typer.Option(
            "--bus-weight",
            min=0.0,
            max=100.0,
            help="Vehicles a late bus counts as for leitstand / maxpressure (bus calls; default 30).",
        ),
    ] = None,
) -> None:
    """Bus and car delay, transit priority on/off (JSON)."""
    from signals.priority import PriorityRules
    from simulators.sumo.transit import TspPolicy, tsp_benchmark

    from ..errors import CliError
    from .sumo import controller_names

    name = controller_names(controller)[0]
    cfg = scenarios / scenario / f"{scenario}.sumocfg"
    if not cfg.is_file():
        raise CliError(f"no scenario {scenario!r}: {cfg} does not exist")
    weight = {} if bus_weight is None else {"bus_weight_veh": bus_weight}
    policy = TspPolicy(late_s=late_s, rules=PriorityRules(max_extension_s=limit_s, max_early_s=limit_s, **weight))
    result = tsp_benchmark(cfg, seeds, first_seed, headway_s=headway_s, policy=policy, controller=name)
    print_json(result, indent=1)
