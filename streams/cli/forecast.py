"""``leitstand forecast backtest``, ``leitstand events import`` and the forecasting benchmarks.

The models live in the pure ``forecasting`` package; this module reads files, turns operator
mistakes into one-line errors, publishes imported events and prints benchmark JSON. pandas,
LightGBM and Prophet are imported inside the commands, so ``leitstand --help`` stays quick.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ..errors import CliError

if TYPE_CHECKING:
    import pandas as pd

REPO = Path(__file__).resolve().parents[2]
METRO_FILE = "Metro_Interstate_Traffic_Volume.csv"
METRO_WEATHER = ["temp", "rain_1h", "snow_1h", "clouds_all", "weather_main"]


# --- input ------------------------------------------------------------------------------------


#: values beyond this magnitude are refused: float64 stops holding integers exactly at 2**53
#: (9e15), no count or measurement forecast here comes near it, and sums and squares of larger
#: values in the models and metrics overflow towards Infinity
MAX_ABS_VALUE = 1e15
#: a text regressor column (weather_main) is one-hot encoded: at most this many distinct values
MAX_CATEGORIES = 100


def parse_duration(text: str, option: str) -> pd.Timedelta:
    import pandas as pd

    try:
        d = pd.Timedelta(text)
    except (ValueError, TypeError, OverflowError):
        raise CliError(f"{option}: {text!r} is not a duration/frequency such as 1h, 30min, 1D, 8D") from None
    if d is pd.NaT or pd.isna(d):
        raise CliError(f"{option}: {text!r} is not a duration/frequency such as 1h, 30min, 1D, 8D")
    if d <= pd.Timedelta(0):
        raise CliError(f"{option}: {text!r} must be positive")
    return d


def parse_instant(text: str, option: str) -> pd.Timestamp:
    """ISO 8601; a time without a zone is read as UTC (as the input's own timestamps are)."""
    import pandas as pd

    try:
        t = pd.Timestamp(text)
    except (ValueError, TypeError, OverflowError):
        raise CliError(f"{option}: {text!r} is not an ISO 8601 time") from None
    if t is pd.NaT or pd.isna(t):
        raise CliError(f"{option}: {text!r} is not an ISO 8601 time")
    return t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")


def _read_csv(path: Path, **kwargs: Any) -> pd.DataFrame:
    """pandas' read_csv with every parse failure of a hostile or broken file as a CliError."""
    import csv

    import pandas as pd

    try:
        return pd.read_csv(path, encoding_errors="replace", **kwargs)
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError, ValueError, OverflowError, csv.Error) as exc:
        first = (str(exc).splitlines() or [type(exc).__name__])[0][:200]
        raise CliError(f"{path} is not a CSV with a header row ({first})") from None
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror or exc}") from None


def _check_finite(df: pd.DataFrame, columns: list[str], times: pd.Series, path: Path) -> None:
    """Refuse Infinity and values beyond ±MAX_ABS_VALUE, naming the rows (empty/NaN = missing is fine)."""
    import numpy as np
    import pandas as pd

    for col in columns:
        v = pd.to_numeric(df[col], errors="coerce").to_numpy(dtype=float)
        with np.errstate(invalid="ignore"):
            bad = np.flatnonzero(np.isinf(v) | (np.abs(v) > MAX_ABS_VALUE))
        if len(bad):
            shown = ", ".join(f"row {i + 1} ({str(times.iloc[i]).strip()[:40]!r}: {v[i]:g})" for i in bad[:3])
            more = f" and {len(bad) - 3} more" if len(bad) > 3 else ""
            raise CliError(
                f"{path}: column {col!r} has {len(bad)} value(s) that are infinite or beyond "
                f"±{MAX_ABS_VALUE:g}: {shown}{more} (rows count data rows after the header; "
                "leave a cell empty or write NaN for a missing value)"
            )


def read_table(path: Path, time_col: str, columns: list[str]) -> pd.DataFrame:
    """The CSV's columns on a UTC DatetimeIndex; unparseable times are dropped.

    Empty, NaN and non-numeric cells in the value and regressor columns are missing values;
    infinite values and values beyond ±MAX_ABS_VALUE are refused with the rows named.
    """
    import pandas as pd

    from forecasting.base import to_utc_index

    if not path.is_file():
        raise CliError(f"no such file: {path}")
    head = _read_csv(path, nrows=0)
    header = [str(c).strip() for c in head.columns]
    for c in [time_col, *columns]:
        if c not in header:
            raise CliError(f"{path} has no column {c!r} (columns: {', '.join(header)[:300]})")
        if header.count(c) > 1:
            raise CliError(f"{path} has the column {c!r} {header.count(c)} times")
    wanted = {time_col, *columns}
    df = _read_csv(path, usecols=lambda c: str(c).strip() in wanted)
    df.columns = [str(c).strip() for c in df.columns]
    raw_t = df[time_col]
    _check_finite(df, columns, raw_t, path)
    for c in columns[1:]:  # a text regressor becomes one column per distinct value: keep that small
        if not pd.api.types.is_numeric_dtype(df[c]) and df[c].nunique() > MAX_CATEGORIES:
            raise CliError(
                f"{path}: regressor column {c!r} is text with {df[c].nunique():,} distinct values "
                f"(a category regressor may have at most {MAX_CATEGORIES}); is it meant to be numeric?"
            )
    if pd.api.types.is_numeric_dtype(raw_t):
        idx = pd.to_datetime(raw_t, unit="s", utc=True, errors="coerce")
    else:
        # utc=True: naive times are UTC wall-clock times (as to_utc_index reads them), and a file
        # mixing offsets (+01:00 / +02:00 across a DST change) is one series, not an error
        idx = pd.to_datetime(raw_t.astype(str).str.strip(), errors="coerce", format="ISO8601", utc=True)
    df.index = to_utc_index(pd.DatetimeIndex(idx))
    df = df[df.index.notna()].drop(columns=[time_col])
    if df.empty:
        raise CliError(f"{path}: no parseable time in column {time_col!r}")
    return df


def _work_error(what: str, max_work: int) -> CliError:
    return CliError(
        f"{what}: over the limit of {max_work:,} (--max-work; a backtest costs roughly "
        "one second of one core per 10,000 steps with the default model)"
    )


def prepare_backtest(
    input_csv: Path,
    time_col: str,
    value_col: str,
    freq: str,
    horizon: int,
    first_origin: str,
    last_origin: str,
    every: str,
    holidays: str | None,
    events_file: Path | None,
    regressor_cols: list[str],
    train_window: pd.Timedelta | None = None,
    max_work: int | None = None,
) -> dict[str, Any]:
    """Everything the backtest needs, checked, or a CliError naming the first problem.

    The size of the run is estimated from the options (and, once the file is read, the data's
    first and last time) before anything large is built: a run over ``max_work`` steps
    (history fitted + points forecast, see :func:`forecasting.backtest.estimate_work`) is refused.
    """
    import pandas as pd

    from forecasting import clean_regressors, clean_series
    from forecasting.backtest import DEFAULT_MAX_WORK, MAX_HORIZON, count_origins, estimate_work, origins_between
    from forecasting.calendar import parse_holiday_spec
    from forecasting.events import event_regressors, read_ics

    limit = DEFAULT_MAX_WORK if max_work is None else max_work
    step = parse_duration(freq, "--freq")
    if horizon < 1:
        raise CliError("--horizon must be at least 1 step")
    if horizon > MAX_HORIZON:
        raise CliError(f"--horizon {horizon:,} is more than {MAX_HORIZON:,} steps")
    every_d = parse_duration(every, "--every")
    if every_d % step != pd.Timedelta(0):
        raise CliError(f"--every {every} is not a whole number of --freq {freq} steps (origins must lie on the data's grid)")
    t1, t2 = parse_instant(first_origin, "--first-origin"), parse_instant(last_origin, "--last-origin")
    if t2 < t1:
        raise CliError("--last-origin lies before --first-origin")
    n_origins = count_origins(t1, t2, every_d)
    if n_origins * horizon > limit:
        raise _work_error(f"{n_origins:,} origins x horizon {horizon:,} = {n_origins * horizon:,} forecast points", limit)
    if holidays:
        try:
            parse_holiday_spec(holidays)
        except ValueError as exc:
            raise CliError(f"--holidays: {exc}") from None
    df = read_table(input_csv, time_col, [value_col, *regressor_cols])
    if value_col in regressor_cols:
        raise CliError(f"--regressors must not contain the value column {value_col!r}")
    span = int((df.index.max() - df.index.min()) // step) + 1
    if span > limit:
        raise _work_error(
            f"the data spans {span:,} steps of --freq {freq} ({df.index.min().isoformat()} .. {df.index.max().isoformat()})", limit
        )
    y = clean_series(df[value_col], step)
    if y.notna().sum() < 2:
        raise CliError(f"{input_csv}: column {value_col!r} has fewer than two numeric values")
    start, end = y.index[0], y.index[-1]
    for name, t in (("--first-origin", t1), ("--last-origin", t2)):
        if not (start < t <= end):
            raise CliError(f"{name} {t.isoformat()} lies outside the data ({start.isoformat()} .. {end.isoformat()})")
        if (t - start) % step != pd.Timedelta(0):
            raise CliError(f"{name} {t.isoformat()} is not on the {freq} grid of the data (starting {start.isoformat()})")
    if t1 - start < pd.Timedelta("7D"):
        raise CliError(f"--first-origin needs at least 7 days of data before it (the MASE scale); data starts {start.isoformat()}")
    try:
        work = estimate_work(start, end, t1, t2, every_d, step, horizon, train_window)
        last_forecast = t2 + (horizon - 1) * step
    except (OverflowError, ValueError):
        raise CliError(f"--horizon {horizon:,} steps of {freq} after {t2.isoformat()} runs past the year 2262") from None
    if work.work > limit or work.grid_steps > limit:
        raise _work_error(f"the backtest would do {work.describe()} on a grid of {work.grid_steps:,} steps", limit)
    origins = origins_between(t1, t2, every_d)
    full = pd.date_range(start, max(end, last_forecast), freq=step)
    y = y.reindex(full)
    y.index.freq = step
    parts = []
    if regressor_cols:
        parts.append(clean_regressors(df[regressor_cols], full))
    n_events, skipped = 0, []
    if events_file is not None:
        if not events_file.is_file():
            raise CliError(f"no such file: {events_file}")
        try:
            imported = read_ics(events_file.read_bytes())
        except ValueError as exc:
            raise CliError(f"{events_file}: {exc}") from None
        n_events, skipped = len(imported.events), imported.skipped
        parts.append(event_regressors(full, imported.events))
    regressors = pd.concat(parts, axis=1) if parts else None
    return {"series": y, "regressors": regressors, "origins": origins, "events": n_events, "skipped_events": skipped, "work": work}


def write_points(points: pd.DataFrame, output: Path) -> None:
    out = points.copy()
    out["origin"] = out["origin"].map(lambda t: t.isoformat())
    out["timestamp"] = out["timestamp"].map(lambda t: t.isoformat())
    try:
        out.to_csv(output, index=False, columns=["origin", "timestamp", "y", "yhat", "yhat_lower", "yhat_upper"], float_format="%.4f")
    except OSError as exc:
        raise CliError(f"cannot write {output}: {exc.strerror or exc}") from None


def find_metro(explicit: Path | None) -> Path:
    candidates = (
        [explicit]
        if explicit is not None
        else [
            Path.cwd().parent / "shared" / "data" / "metro-interstate" / METRO_FILE,
            REPO.parent / "shared" / "data" / "metro-interstate" / METRO_FILE,
        ]
    )
    for c in candidates:
        if c is not None and c.is_file():
            return c
    raise CliError(f"Metro Interstate data not found (looked in {', '.join(map(str, candidates))}); pass --data FILE")


@contextmanager
def _origin_progress(console: Any, total: int, label: str) -> Iterator[Callable[[int, int], None] | None]:
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


# --- events ------------------------------------------------------------------------------------


def scheduled_event_lines(events: list[Any], announced: datetime) -> tuple[list[Any], list[bytes], list[str]]:
    """ScheduledEvent JSON lines, each checked by decoding it as the worker will.

    Returns ``(events, lines, problems)``: an event that does not make a valid record is left
    out with the reason (like a VEVENT read_ics could not read), not the whole file.
    """
    import msgspec

    from ..records import ScheduledEvent

    kept, lines, problems = [], [], []
    for ev in events:
        obj = {
            "schema_version": 1,
            "event_time": announced.isoformat(),
            "venue_id": ev.venue_id[:64],
            "event_id": (ev.event_id or f"{ev.venue_id}-{ev.start:%Y%m%dT%H%M}")[:64],
            "kind": ev.kind,
            "starts_at": ev.start.isoformat(),
            "ends_at": ev.end.isoformat(),
        }
        if ev.title:
            obj["title"] = ev.title[:200]
        if ev.expected_attendance is not None:
            obj["expected_attendance"] = ev.expected_attendance
        try:
            raw = msgspec.json.encode(obj)
            msgspec.json.decode(raw, type=ScheduledEvent)
        except (msgspec.ValidationError, msgspec.EncodeError, ValueError) as exc:
            problems.append(f"event {obj['event_id']!r} is not a valid ScheduledEvent: {str(exc).splitlines()[0][:160]}")
            continue
        kept.append(ev)
        lines.append(raw)
    return kept, lines, problems


#: skipped events named one per line on stderr before the summary; the rest are counted
MAX_WARNINGS = 10


# --- commands ----------------------------------------------------------------------------------


def register(app: typer.Typer, bench_app: typer.Typer) -> None:
    from .common import err

    forecast_app = typer.Typer(help="Load forecasts: backtests of the forecasting models.", no_args_is_help=True)
    events_app = typer.Typer(help="Import scheduled events for forecasting.", no_args_is_help=True)
    app.add_typer(forecast_app, name="forecast")
    app.add_typer(events_app, name="events")

    @forecast_app.command("backtest")
    def backtest(
        input_csv: Annotated[Path, typer.Argument(metavar="INPUT.csv", help="CSV with a header row.")],
        output: Annotated[Path, typer.Option("--output", "-o", help="Where origin,timestamp,y,yhat,yhat_lower,yhat_upper is written.")],
        first_origin: Annotated[str, typer.Option("--first-origin", help="First forecast origin (ISO 8601; no zone = UTC).")],
        last_origin: Annotated[str, typer.Option("--last-origin", help="Last forecast origin (inclusive).")],
        time_col: Annotated[str, typer.Option("--time-col", help="Column with ISO 8601 times or POSIX seconds.")] = "timestamp",
        value_col: Annotated[str, typer.Option("--value-col", help="Column to forecast.")] = "value",
        freq: Annotated[
            str,
            typer.Option(
                "--freq",
                help="Step of the series (pandas style: 1h, 30min, 1D); readings are averaged per step.",
            ),
        ] = "1h",
        horizon: Annotated[int, typer.Option("--horizon", help="Steps forecast from each origin.")] = 24,
        every: Annotated[str, typer.Option("--every", help="Distance between origins (e.g. 8D).")] = "7D",
        model: Annotated[str | None, typer.Option("--model", help="Forecaster name (default: the project's default model).")] = None,
        holidays: Annotated[
            str | None,
            typer.Option(
                "--holidays",
                help="Public holidays: country[-subdivision], e.g. US-MN, DE-BY.",
            ),
        ] = None,
        events: Annotated[Path | None, typer.Option("--events", help="ICS file of scheduled events (regressors).")] = None,
        regressors: Annotated[
            str | None,
            typer.Option(
                "--regressors",
                help="Comma-separated CSV columns known in advance (e.g. a weather forecast).",
            ),
        ] = None,
        train_window: Annotated[
            str | None,
            typer.Option(
                "--train-window",
                help="Only this much history before each origin (e.g. 365D).",
            ),
        ] = None,
        jobs: Annotated[int, typer.Option("--jobs", min=1, help="Processes fitting origins in parallel.")] = 1,
        as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object with the figures.")] = False,
        max_work: Annotated[
            int | None,
            typer.Option(
                "--max-work",
                min=1,
                help="Refuse runs estimated above this many steps (history fitted + points forecast, summed over origins; "
                "default 5,000,000, about 5 minutes of the default model).",
            ),
        ] = None,
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

        name = model or DEFAULT_MODEL
        if name not in FORECASTER_NAMES:
            raise CliError(f"unknown model {name!r}; choose one of {', '.join(FORECASTER_NAMES)}")
        window = parse_duration(train_window, "--train-window") if train_window else None
        cols = [c.strip() for c in (regressors or "").split(",") if c.strip()]
        prep = prepare_backtest(
            input_csv, time_col, value_col, freq, horizon, first_origin, last_origin, every, holidays, events, cols, window, max_work
        )
        for why in prep["skipped_events"][:5]:
            err.print(f"warning: {events}: {why}; event skipped", markup=False)
        options: dict[str, Any] = {"holidays": holidays} if holidays else {}
        try:
            with _origin_progress(err, len(prep["origins"]), name) as progress:
                result = rolling_origin(
                    prep["series"], prep["origins"], horizon, name, options, prep["regressors"], window, jobs=jobs, progress=progress
                )
        except ValueError as exc:
            raise CliError((str(exc).splitlines() or ["the backtest failed"])[0]) from None
        write_points(result.points, output)
        summary = result.summary()
        if as_json:
            print(json.dumps(summary, allow_nan=False))
        else:

            def fig(key: str, unit: str = "") -> str:
                v = summary[key]
                return f"{v}{unit}" if v is not None else f"n/a ({summary['not_computed'][key]})"

            err.print(
                f"{name}: MASE {fig('mase')}, MAE {fig('mae')}, sMAPE {fig('smape', ' %')}, 80 % interval "
                f"coverage {fig('coverage80')} over {summary['points']} points from {summary['origins']} "
                f"origins -> {output}"
            )

    @events_app.command("import")
    def import_events(
        ics_file: Annotated[Path, typer.Argument(metavar="FILE.ics", help="iCalendar file with VEVENTs.")],
        venue_map: Annotated[
            Path | None,
            typer.Option(
                "--venue-map",
                help='JSON: {"venue_id": {"names": [LOCATION, ...], "affects": [series, ...]}}.',
            ),
        ] = None,
        dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the ScheduledEvent JSON lines instead of publishing.")] = False,
        default_tz: Annotated[
            str,
            typer.Option(
                "--default-tz",
                help="IANA zone of times given without one (floating times, all-day dates).",
            ),
        ] = "UTC",
        strict: Annotated[
            bool,
            typer.Option(
                "--strict",
                help="Refuse the whole file if any event cannot be read (default: skip it with a warning).",
            ),
        ] = False,
    ) -> None:
        """Publish an ICS file's events on events.schedule.

        A VEVENT that cannot be read exactly (a broken date, an unknown TZID, a negative
        DURATION) is skipped with a warning naming its line and counted in the summary; with
        --strict the file is refused instead and nothing is sent.
        """
        from forecasting.events import VenueMap, read_ics, resolve_zone

        try:
            resolve_zone(default_tz)
        except ValueError as exc:
            raise CliError(f"--default-tz: {exc}") from None
        if not ics_file.is_file():
            raise CliError(f"no such file: {ics_file}")
        venues = None
        if venue_map is not None:
            if not venue_map.is_file():
                raise CliError(f"no such file: {venue_map}")
            try:
                venues = VenueMap.load(venue_map)
            except (ValueError, json.JSONDecodeError) as exc:
                raise CliError(f"{venue_map}: {str(exc).splitlines()[0]}") from None
        try:
            imported = read_ics(ics_file.read_bytes(), venues, default_tz=default_tz)
        except ValueError as exc:
            raise CliError(f"{ics_file}: {exc}") from None
        except OSError as exc:
            raise CliError(f"cannot read {ics_file}: {exc.strerror or exc}") from None
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
        import asyncio

        from ..kafka_io import produce_to
        from .common import _reachable_settings

        s = _reachable_settings()
        keyed = [(ev.venue_id[:64].encode(), line) for ev, line in zip(events, lines)]

        n = asyncio.run(produce_to(s, s.topic("events.schedule"), keyed))
        err.print(f"sent {n} events to {s.topic('events.schedule')}{note}", markup=False)

    @bench_app.command("forecast-accuracy")
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
        from forecasting import DEFAULT_MODEL
        from forecasting.backtest import mase_ratio, rolling_origin

        path = find_metro(data)
        prep = prepare_backtest(
            path, "date_time", "traffic_volume", "1h", 24, "2017-08-18", "2018-09-30", "8D", "US-MN", None, METRO_WEATHER
        )
        y, weather, origins = prep["series"], prep["regressors"], prep["origins"]
        import pandas as pd

        window = pd.Timedelta("365D")
        runs: list[tuple[str, str, dict[str, Any], Any]] = [
            ("naive_weekly", "naive_weekly", {}, None),
            ("naive_daily", "naive_daily", {}, None),
            (f"{DEFAULT_MODEL} (holidays US-MN + observed weather)", DEFAULT_MODEL, {"holidays": "US-MN"}, weather),
            (f"{DEFAULT_MODEL} without weather", DEFAULT_MODEL, {"holidays": "US-MN"}, None),
            (f"{DEFAULT_MODEL} without holidays", DEFAULT_MODEL, {}, weather),
            (f"{DEFAULT_MODEL} without holidays and weather", DEFAULT_MODEL, {}, None),
        ]
        if prophet:
            runs += [
                ("prophet (defaults)", "prophet", {}, None),
                ("prophet + holidays + observed weather", "prophet", {"holidays": "US-MN"}, weather),
                ("prophet_traffic (holidays, working/rest-day daily profiles)", "prophet_traffic", {"holidays": "US-MN"}, None),
            ]
        results, rows = {}, []
        for label, name, options, reg in runs:
            t0 = time.perf_counter()
            r = rolling_origin(y, origins, 24, name, options, reg, window, jobs=jobs)
            results[label] = r
            rows.append({"label": label, **r.summary(), "seconds": round(time.perf_counter() - t0, 1)})
            err.print(f"{label}: MASE {rows[-1]['mase']} ({rows[-1]['seconds']} s)")
        base = results["naive_weekly"]
        for row in rows:
            ratio = mase_ratio(results[row["label"]], base)
            row["mase_ratio_to_weekly_naive"] = round(ratio, 4) if ratio is not None else None
        print(
            json.dumps(
                {
                    "protocol": "Metro Interstate I-94, hourly, day-ahead (24 steps), 52 origins every 8D "
                    "2017-08-18..2018-09-30, train window 365D; weather = observed (stands in for a forecast)",
                    "data": str(path),
                    "default_model": DEFAULT_MODEL,
                    "results": rows,
                },
                indent=1,
            )
        )

    @bench_app.command("forecast-refresh")
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
        from forecasting import DEFAULT_MODEL

        base = _time_refresh("naive_weekly", series, history_days, workers, horizon)
        err.print(f"naive_weekly: {base['seconds']} s")
        main = _time_refresh(DEFAULT_MODEL, series, history_days, workers, horizon)
        err.print(f"{DEFAULT_MODEL}: {main['seconds']} s")
        print(
            json.dumps(
                {
                    "series": series,
                    "history_days": history_days,
                    "freq": "1h",
                    "horizon": horizon,
                    "workers": workers,
                    "cpus": os.cpu_count(),
                    "default_model": main,
                    "baseline": base,
                    "budget_seconds": 600 * series / 2000,
                    "within_budget": main["seconds"] <= 600 * series / 2000,
                },
                indent=1,
            )
        )


def _refresh_chunk(name: str, seeds: list[int], history_days: int, horizon: int) -> int:
    """Worker body: make each series (as a feed would deliver it) and refresh its forecast."""
    from forecasting import fit_predict
    from forecasting.synthetic import traffic_series

    for seed in seeds:
        y = traffic_series(days=history_days, seed=seed, level=200.0 + 10.0 * (seed % 100), missing=0.002)
        fc = fit_predict(name, y, None, horizon, holidays="US")
        if len(fc) != horizon:
            raise RuntimeError("short forecast")
    return len(seeds)


def _time_refresh(name: str, n: int, history_days: int, workers: int, horizon: int) -> dict[str, Any]:
    from forecasting import process_pool

    chunks = [list(range(i, min(n, i + 25))) for i in range(0, n, 25)]
    t0 = time.perf_counter()
    with process_pool(workers) as pool:
        done = sum(pool.map(_refresh_chunk, [name] * len(chunks), chunks, [history_days] * len(chunks), [horizon] * len(chunks)))
    seconds = time.perf_counter() - t0
    return {"model": name, "series": done, "seconds": round(seconds, 1), "series_per_s": round(done / seconds, 2)}
