"""``leitstand forecast backtest`` and the forecasting benchmarks that ``leitstand bench
forecast-accuracy`` / ``bench forecast-refresh`` run (:func:`forecast_accuracy_benchmark`,
:func:`forecast_refresh_benchmark`).

The models live in the pure ``forecasting`` package and the checked input in
``forecast_input``; this module runs backtests and prints their figures. pandas, LightGBM and
Prophet are imported inside the functions, so ``leitstand --help`` stays quick.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

from ..errors import CliError
from .common import err, not_an_input
from .forecast_input import find_metro, parse_duration, prepare_backtest, write_points

if TYPE_CHECKING:
    import pandas as pd

    from forecasting.backtest import BacktestResult

app = typer.Typer(help="Load forecasts: backtests of the forecasting models.", no_args_is_help=True)

METRO_WEATHER = ["temp", "rain_1h", "snow_1h", "clouds_all", "weather_main"]

Freq = Annotated[
    str,
    typer.Option(
        "--freq",
        help="Step of the series (pandas style: 1h, 30min, 1D); readings are averaged per step.",
    ),
]
Holidays = Annotated[
    str | None,
    typer.Option(
        "--holidays",
        help="Public holidays: country[-subdivision], e.g. US-MN, DE-BY.",
    ),
]
Zone = Annotated[
    str | None,
    typer.Option(
        "--timezone",
        help="The city's clock (IANA zone, e.g. Europe/Berlin) for hour of day, holidays and lags across "
        "daylight-saving changes, as the worker uses it (LEITSTAND_FORECAST_TIMEZONE). Times without an "
        "offset are read as UTC first.",
    ),
]
Regressors = Annotated[
    str | None,
    typer.Option(
        "--regressors",
        help="Comma-separated CSV columns known in advance (e.g. a weather forecast).",
    ),
]
TrainWindow = Annotated[
    str | None,
    typer.Option(
        "--train-window",
        help="Only this much history before each origin (e.g. 365D).",
    ),
]
MaxWork = Annotated[
    int | None,
    typer.Option(
        "--max-work",
        min=1,
        help="Refuse runs estimated above this many steps (history fitted + points forecast, summed over origins; "
        "default 5,000,000, about 5 minutes of the default model).",
    ),
]


@contextmanager
def _origin_progress(console: Console, total: int, label: str) -> Iterator[Callable[[int, int], None] | None]:
    """A rich progress bar over the origins on a terminal (nothing when stderr is a file or pipe)."""
    if not console.is_terminal or total < 2:
        yield None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    with Progress(
        TextColumn(f"{label}: fitting origins"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(), console=console, transient=True
    ) as bar:
        task = bar.add_task("origins", total=total)
        yield lambda done, _total: bar.update(task, completed=done)


@app.command("backtest")
def backtest(
    input_csv: Annotated[Path, typer.Argument(metavar="INPUT.csv", help="CSV with a header row.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Where origin,timestamp,y,yhat,yhat_lower,yhat_upper is written.")],
    first_origin: Annotated[str, typer.Option("--first-origin", help="First forecast origin (ISO 8601; no zone = UTC).")],
    last_origin: Annotated[str, typer.Option("--last-origin", help="Last forecast origin (inclusive).")],
    time_col: Annotated[str, typer.Option("--time-col", help="Column with ISO 8601 times or POSIX seconds.")] = "timestamp",
    value_col: Annotated[str, typer.Option("--value-col", help="Column to forecast.")] = "value",
    freq: Freq = "1h",
    horizon: Annotated[int, typer.Option("--horizon", help="Steps forecast from each origin.")] = 24,
    every: Annotated[str, typer.Option("--every", help="Distance between origins (e.g. 8D).")] = "7D",
    model: Annotated[str | None, typer.Option("--model", help="Forecaster name (default: the project's default model).")] = None,
    holidays: Holidays = None,
    timezone: Zone = None,
    events: Annotated[Path | None, typer.Option("--events", help="ICS file of scheduled events (regressors).")] = None,
    regressors: Regressors = None,
    train_window: TrainWindow = None,
    jobs: Annotated[int, typer.Option("--jobs", min=1, help="Processes fitting origins in parallel.")] = 1,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object with the figures.")] = False,
    max_work: MaxWork = None,
) -> None:
    """Rolling-origin backtest of a forecaster on a CSV.

    Refits before each origin, forecasts HORIZON steps, scores.

    Each model sees only data strictly before the origin (and regressors, which must be known
    in advance). MASE is scaled by the weekly seasonal naive's mean absolute error over all
    data before the first origin. A figure that cannot be computed is null, with the reason
    under not_computed.
    """
    from forecasting import DEFAULT_MODEL, FORECASTER_NAMES
    from forecasting.backtest import rolling_origin

    not_an_input(output, input_csv, events)

    name = model or DEFAULT_MODEL
    if name not in FORECASTER_NAMES:
        raise CliError(f"unknown model {name!r}; choose one of {', '.join(FORECASTER_NAMES)}")
    options: dict[str, Any] = {"holidays": holidays} if holidays else {}
    if timezone:
        from forecasting.events import resolve_zone

        try:
            resolve_zone(timezone)
        except ValueError as exc:
            raise CliError(f"--timezone: {exc}") from None
        options["timezone"] = timezone
    window = parse_duration(train_window, "--train-window") if train_window else None
    columns = [c.strip() for c in (regressors or "").split(",") if c.strip()]
    prepared = prepare_backtest(
        input_csv, time_col, value_col, freq, horizon, first_origin, last_origin, every, holidays, events, columns, window, max_work
    )
    for why in prepared.skipped_events[:5]:
        err.print(f"warning: {events}: {why}; event skipped", markup=False)
    try:
        with _origin_progress(err, len(prepared.origins), name) as progress:
            result = rolling_origin(
                prepared.series, prepared.origins, horizon, name, options, prepared.regressors, window, jobs=jobs, progress=progress
            )
    except ValueError as exc:
        raise CliError((str(exc).splitlines() or ["the backtest failed"])[0]) from None
    write_points(result.points, output)
    print_summary(result.summary(), name, output, as_json)


def print_summary(summary: dict[str, Any], name: str, output: Path, as_json: bool) -> None:
    """The backtest's figures: one JSON object on stdout, or one line on stderr (n/a with the reason)."""
    if as_json:
        print(json.dumps(summary, allow_nan=False))
        return

    def figure(key: str, unit: str = "") -> str:
        value = summary[key]
        return f"{value}{unit}" if value is not None else f"n/a ({summary['not_computed'][key]})"

    err.print(
        f"{name}: MASE {figure('mase')}, MAE {figure('mae')}, sMAPE {figure('smape', ' %')}, 80 % interval "
        f"coverage {figure('coverage80')}, interval score {figure('winkler80')} (MSIS {figure('msis80')}) "
        f"over {summary['points']} points from {summary['origins']} "
        f"origins -> {output}"
    )


# --- the benchmarks (plain functions, so tests and scripts can call them) -----------------------


def _accuracy_runs(default_model: str, weather: pd.DataFrame | None, prophet: bool) -> list[tuple[str, str, dict[str, Any], Any]]:
    """(label, model, options, regressors) of each run: naives, the default model with and
    without holidays and weather, and optionally Prophet."""
    runs: list[tuple[str, str, dict[str, Any], Any]] = [
        ("naive_weekly", "naive_weekly", {}, None),
        ("naive_daily", "naive_daily", {}, None),
        (f"{default_model} (holidays US-MN + observed weather)", default_model, {"holidays": "US-MN"}, weather),
        (f"{default_model} without weather", default_model, {"holidays": "US-MN"}, None),
        (f"{default_model} without holidays", default_model, {}, weather),
        (f"{default_model} without holidays and weather", default_model, {}, None),
    ]
    if prophet:
        runs += [
            ("prophet (defaults)", "prophet", {}, None),
            ("prophet + holidays + observed weather", "prophet", {"holidays": "US-MN"}, weather),
            ("prophet_traffic (holidays, working/rest-day daily profiles)", "prophet_traffic", {"holidays": "US-MN"}, None),
        ]
    return runs


def forecast_accuracy_benchmark(data: Path | None, prophet: bool, jobs: int) -> dict[str, Any]:
    """The Metro Interstate day-ahead backtest of every run, each with its MASE ratio to the
    weekly seasonal naive; one line per run on stderr as it finishes."""
    import pandas as pd

    from forecasting import DEFAULT_MODEL
    from forecasting.backtest import mase_ratio, rolling_origin

    path = find_metro(data)
    prepared = prepare_backtest(
        path, "date_time", "traffic_volume", "1h", 24, "2017-08-18", "2018-09-30", "8D", "US-MN", None, METRO_WEATHER
    )
    window = pd.Timedelta("365D")
    results: dict[str, BacktestResult] = {}
    rows: list[dict[str, Any]] = []
    for label, name, options, regressors in _accuracy_runs(DEFAULT_MODEL, prepared.regressors, prophet):
        started = time.perf_counter()
        result = rolling_origin(prepared.series, prepared.origins, 24, name, options, regressors, window, jobs=jobs)
        results[label] = result
        rows.append({"label": label, **result.summary(), "seconds": round(time.perf_counter() - started, 1)})
        err.print(f"{label}: MASE {rows[-1]['mase']} ({rows[-1]['seconds']} s)")
    for row in rows:
        ratio = mase_ratio(results[row["label"]], results["naive_weekly"])
        row["mase_ratio_to_weekly_naive"] = round(ratio, 4) if ratio is not None else None
    return {
        "protocol": "Metro Interstate I-94, hourly, day-ahead (24 steps), 52 origins every 8D "
        "2017-08-18..2018-09-30, train window 365D; weather = observed (stands in for a forecast)",
        "data": str(path),
        "default_model": DEFAULT_MODEL,
        "results": rows,
    }


def forecast_refresh_benchmark(series: int, history_days: int, workers: int, horizon: int) -> dict[str, Any]:
    """Refresh ``series`` synthetic series with the weekly naive (the baseline), then with the
    default model, and compare with the budget of 2,000 series in 10 minutes."""
    from forecasting import DEFAULT_MODEL

    baseline = _time_refresh("naive_weekly", series, history_days, workers, horizon)
    err.print(f"naive_weekly: {baseline['seconds']} s")
    default = _time_refresh(DEFAULT_MODEL, series, history_days, workers, horizon)
    err.print(f"{DEFAULT_MODEL}: {default['seconds']} s")
    return {
        "series": series,
        "history_days": history_days,
        "freq": "1h",
        "horizon": horizon,
        "workers": workers,
        "cpus": os.cpu_count(),
        "default_model": default,
        "baseline": baseline,
        "budget_seconds": 600 * series / 2000,
        "within_budget": default["seconds"] <= 600 * series / 2000,
    }


def _refresh_chunk(name: str, seeds: list[int], history_days: int, horizon: int) -> int:
    """Worker body: make each series (as a feed would deliver it) and refresh its forecast."""
    from forecasting import fit_predict
    from forecasting.synthetic import traffic_series

    for seed in seeds:
        y = traffic_series(days=history_days, seed=seed, level=200.0 + 10.0 * (seed % 100), missing=0.002)
        forecast = fit_predict(name, y, None, horizon, holidays="US")
        if len(forecast) != horizon:
            raise RuntimeError("short forecast")
    return len(seeds)


def _time_refresh(name: str, n: int, history_days: int, workers: int, horizon: int) -> dict[str, Any]:
    """Seconds to refresh ``n`` series with ``name`` in a spawned process pool of ``workers``."""
    from forecasting import process_pool

    chunks = [list(range(i, min(n, i + 25))) for i in range(0, n, 25)]
    started = time.perf_counter()
    with process_pool(workers) as executor:
        done = sum(executor.map(_refresh_chunk, [name] * len(chunks), chunks, [history_days] * len(chunks), [horizon] * len(chunks)))
    seconds = time.perf_counter() - started
    return {"model": name, "series": done, "seconds": round(seconds, 1), "series_per_s": round(done / seconds, 2)}
