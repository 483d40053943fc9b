"""The input of the forecasting commands, checked: durations and instants from options, a CSV
read onto a UTC time index, and a backtest's series, regressors and origins
(:func:`prepare_backtest`), sized before anything large is built.

Every operator mistake ends as a one-line ``CliError`` naming the option, file, column or rows.
pandas is imported inside the functions, so ``leitstand --help`` stays quick.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import CliError
from .common import find_shared, input_file

if TYPE_CHECKING:
    import pandas as pd

    from forecasting.backtest import WorkEstimate
    from forecasting.events import IcsImport

METRO_FILE = "Metro_Interstate_Traffic_Volume.csv"

#: values beyond this magnitude are refused: float64 stops holding integers exactly at 2**53
#: (9e15), no count or measurement forecast here comes near it, and sums and squares of larger
#: values in the models and metrics overflow towards Infinity
MAX_ABS_VALUE = 1e15
#: a text regressor column (weather_main) is one-hot encoded: at most this many distinct values
MAX_CATEGORIES = 100


def parse_duration(text: str, option: str) -> pd.Timedelta:
    """A positive pandas duration or frequency (``1h``, ``30min``, ``8D``) given to ``option``."""
    import pandas as pd

    try:
        duration = pd.Timedelta(text)
    except (ValueError, TypeError, OverflowError):
        raise CliError(f"{option}: {text!r} is not a duration/frequency such as 1h, 30min, 1D, 8D") from None
    if duration is pd.NaT or pd.isna(duration):
        raise CliError(f"{option}: {text!r} is not a duration/frequency such as 1h, 30min, 1D, 8D")
    if duration <= pd.Timedelta(0):
        raise CliError(f"{option}: {text!r} must be positive")
    return duration


def parse_instant(text: str, option: str) -> pd.Timestamp:
    """ISO 8601; a time without a zone is read as UTC (as the input's own timestamps are)."""
    import pandas as pd

    try:
        instant = pd.Timestamp(text)
    except (ValueError, TypeError, OverflowError):
        raise CliError(f"{option}: {text!r} is not an ISO 8601 time") from None
    if instant is pd.NaT or pd.isna(instant):
        raise CliError(f"{option}: {text!r} is not an ISO 8601 time")
    return instant.tz_localize("UTC") if instant.tzinfo is None else instant.tz_convert("UTC")


def _read_csv(path: Path, **kwargs: Any) -> pd.DataFrame:
    """pandas' read_csv with every parse failure of a hostile or broken file as a CliError."""
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
        values = pd.to_numeric(df[col], errors="coerce").to_numpy(dtype=float)
        with np.errstate(invalid="ignore"):
            bad = np.flatnonzero(np.isinf(values) | (np.abs(values) > MAX_ABS_VALUE))
        if len(bad):
            shown = ", ".join(f"row {i + 1} ({str(times.iloc[i]).strip()[:40]!r}: {values[i]:g})" for i in bad[:3])
            more = f" and {len(bad) - 3} more" if len(bad) > 3 else ""
            raise CliError(
                f"{path}: column {col!r} has {len(bad)} value(s) that are infinite or beyond "
                f"±{MAX_ABS_VALUE:g}: {shown}{more} (rows count data rows after the header; "
                "leave a cell empty or write NaN for a missing value)"
            )


def _check_header(path: Path, time_col: str, columns: list[str]) -> None:
    """Each wanted column present exactly once (read from the header alone, before the data)."""
    head = _read_csv(path, nrows=0)
    header = [str(c).strip() for c in head.columns]
    for column in [time_col, *columns]:
        if column not in header:
            raise CliError(f"{path} has no column {column!r} (columns: {', '.join(header)[:300]})")
        if header.count(column) > 1:
            raise CliError(f"{path} has the column {column!r} {header.count(column)} times")


def _check_categories(df: pd.DataFrame, regressor_cols: list[str], path: Path) -> None:
    """A text regressor becomes one column per distinct value: keep that small."""
    import pandas as pd

    for column in regressor_cols:
        if not pd.api.types.is_numeric_dtype(df[column]) and df[column].nunique() > MAX_CATEGORIES:
            raise CliError(
                f"{path}: regressor column {column!r} is text with {df[column].nunique():,} distinct values "
                f"(a category regressor may have at most {MAX_CATEGORIES}); is it meant to be numeric?"
            )


def _utc_times(raw_times: pd.Series) -> pd.DatetimeIndex:
    """POSIX seconds or ISO 8601 text as a UTC index; what does not parse is NaT."""
    import pandas as pd

    from forecasting.base import to_utc_index

    if pd.api.types.is_numeric_dtype(raw_times):
        parsed = pd.to_datetime(raw_times, unit="s", utc=True, errors="coerce")
    else:
        # utc=True: naive times are UTC wall-clock times (as to_utc_index reads them), and a file
        # mixing offsets (+01:00 / +02:00 across a DST change) is one series, not an error
        parsed = pd.to_datetime(raw_times.astype(str).str.strip(), errors="coerce", format="ISO8601", utc=True)
    return to_utc_index(pd.DatetimeIndex(parsed))


def read_table(path: Path, time_col: str, columns: list[str]) -> pd.DataFrame:
    """The CSV's columns on a UTC DatetimeIndex; unparseable times are dropped.

    Empty, NaN and non-numeric cells in the value and regressor columns are missing values;
    infinite values and values beyond ±MAX_ABS_VALUE are refused with the rows named.
    """
    input_file(path)
    _check_header(path, time_col, columns)
    wanted = {time_col, *columns}
    df = _read_csv(path, usecols=lambda c: str(c).strip() in wanted)
    df.columns = [str(c).strip() for c in df.columns]
    raw_times = df[time_col]
    _check_finite(df, columns, raw_times, path)
    _check_categories(df, columns[1:], path)
    df.index = _utc_times(raw_times)
    df = df[df.index.notna()].drop(columns=[time_col])
    if df.empty:
        raise CliError(f"{path}: no parseable time in column {time_col!r}")
    return df


def _work_error(what: str, max_work: int) -> CliError:
    return CliError(
        f"{what}: over the limit of {max_work:,} (--max-work; a backtest costs roughly "
        "one second of one core per 10,000 steps with the default model)"
    )


@dataclass
class BacktestInput:
    """What :func:`forecasting.backtest.rolling_origin` is given, checked and sized."""

    series: pd.Series  # on the --freq grid, from the data's start to the last point forecast
    regressors: pd.DataFrame | None  # CSV regressor columns and event regressors on the same grid
    origins: list[pd.Timestamp]
    events: int  # events read from the ICS file
    skipped_events: list[str]  # why each unreadable VEVENT was skipped
    work: WorkEstimate


@dataclass
class _Schedule:
    """The backtest's grid and origins from the options alone."""

    step: pd.Timedelta
    every: pd.Timedelta
    first: pd.Timestamp
    last: pd.Timestamp


def _check_schedule(
    freq: str, horizon: int, first_origin: str, last_origin: str, every: str, holidays: str | None, limit: int
) -> _Schedule:
    """The options that need no data: grid step, horizon, origins, their count and the holidays."""
    import pandas as pd

    from forecasting.backtest import MAX_HORIZON, count_origins
    from forecasting.calendar import parse_holiday_spec

    step = parse_duration(freq, "--freq")
    if horizon < 1:
        raise CliError("--horizon must be at least 1 step")
    if horizon > MAX_HORIZON:
        raise CliError(f"--horizon {horizon:,} is more than {MAX_HORIZON:,} steps")
    every_d = parse_duration(every, "--every")
    if every_d % step != pd.Timedelta(0):
        raise CliError(f"--every {every} is not a whole number of --freq {freq} steps (origins must lie on the data's grid)")
    first, last = parse_instant(first_origin, "--first-origin"), parse_instant(last_origin, "--last-origin")
    if last < first:
        raise CliError("--last-origin lies before --first-origin")
    n_origins = count_origins(first, last, every_d)
    if n_origins * horizon > limit:
        raise _work_error(f"{n_origins:,} origins x horizon {horizon:,} = {n_origins * horizon:,} forecast points", limit)
    if holidays:
        try:
            parse_holiday_spec(holidays)
        except ValueError as exc:
            raise CliError(f"--holidays: {exc}") from None
    return _Schedule(step, every_d, first, last)


def _check_origins_in_data(y: pd.Series, schedule: _Schedule, freq: str) -> None:
    """Both origins inside the data, on its grid, the first after a week of history."""
    import pandas as pd

    start, end = y.index[0], y.index[-1]
    for name, instant in (("--first-origin", schedule.first), ("--last-origin", schedule.last)):
        if not (start < instant <= end):
            raise CliError(f"{name} {instant.isoformat()} lies outside the data ({start.isoformat()} .. {end.isoformat()})")
        if (instant - start) % schedule.step != pd.Timedelta(0):
            raise CliError(f"{name} {instant.isoformat()} is not on the {freq} grid of the data (starting {start.isoformat()})")
    if schedule.first - start < pd.Timedelta("7D"):
        raise CliError(f"--first-origin needs at least 7 days of data before it (the MASE scale); data starts {start.isoformat()}")


def _read_events(events_file: Path) -> IcsImport:
    """The ICS file's events, or one line on why not."""
    from forecasting.events import read_ics

    input_file(events_file)
    try:
        return read_ics(events_file.read_bytes())
    except ValueError as exc:
        raise CliError(f"{events_file}: {exc}") from None


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
) -> BacktestInput:
    """Everything the backtest needs, checked, or a CliError naming the first problem.

    The size of the run is estimated from the options (and, once the file is read, the data's
    first and last time) before anything large is built: a run over ``max_work`` steps
    (history fitted + points forecast, see :func:`forecasting.backtest.estimate_work`) is refused.
    """
    import pandas as pd

    from forecasting import clean_series
    from forecasting.backtest import DEFAULT_MAX_WORK, estimate_work, origins_between

    limit = DEFAULT_MAX_WORK if max_work is None else max_work
    schedule = _check_schedule(freq, horizon, first_origin, last_origin, every, holidays, limit)
    step = schedule.step
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
    _check_origins_in_data(y, schedule, freq)
    start, end = y.index[0], y.index[-1]
    try:
        work = estimate_work(start, end, schedule.first, schedule.last, schedule.every, step, horizon, train_window)
        last_forecast = schedule.last + (horizon - 1) * step
    except (OverflowError, ValueError):
        raise CliError(f"--horizon {horizon:,} steps of {freq} after {schedule.last.isoformat()} runs past the year 2262") from None
    if work.work > limit or work.grid_steps > limit:
        raise _work_error(f"the backtest would do {work.describe()} on a grid of {work.grid_steps:,} steps", limit)
    origins = origins_between(schedule.first, schedule.last, schedule.every)
    full = pd.date_range(start, max(end, last_forecast), freq=step)
    y = y.reindex(full)
    y.index.freq = step
    regressors, n_events, skipped = _regressors_on(full, df, regressor_cols, events_file)
    return BacktestInput(y, regressors, origins, n_events, skipped, work)


def _regressors_on(
    grid: pd.DatetimeIndex, df: pd.DataFrame, regressor_cols: list[str], events_file: Path | None
) -> tuple[pd.DataFrame | None, int, list[str]]:
    """The CSV's regressor columns and the events' regressors on the backtest's grid (None when
    there are neither), with the number of events read and why any were skipped."""
    import pandas as pd

    from forecasting import clean_regressors
    from forecasting.events import event_regressors

    parts = [clean_regressors(df[regressor_cols], grid)] if regressor_cols else []
    n_events, skipped = 0, []
    if events_file is not None:
        imported = _read_events(events_file)
        n_events, skipped = len(imported.events), imported.skipped
        parts.append(event_regressors(grid, imported.events))
    return (pd.concat(parts, axis=1) if parts else None), n_events, skipped


def write_points(points: pd.DataFrame, output: Path) -> None:
    """The backtest's points as CSV, times in ISO 8601, figures to four decimals."""
    table = points.copy()
    table["origin"] = table["origin"].map(lambda t: t.isoformat())
    table["timestamp"] = table["timestamp"].map(lambda t: t.isoformat())
    try:
        table.to_csv(output, index=False, columns=["origin", "timestamp", "y", "yhat", "yhat_lower", "yhat_upper"], float_format="%.4f")
    except OSError as exc:
        raise CliError(f"cannot write {output}: {exc.strerror or exc}") from None


def find_metro(explicit: Path | None) -> Path:
    """The Metro Interstate CSV: as given, else under ``../shared`` (see :func:`common.find_shared`)."""
    return find_shared(f"data/metro-interstate/{METRO_FILE}", explicit, Path.is_file, "Metro Interstate data", "pass --data FILE")
