"""Rolling-origin backtest: refit at each origin on data strictly before it, forecast ahead.

This is the protocol every figure in docs/forecasting.md comes from. The model sees the
history ``[origin - train_window, origin)`` and the regressors on those timestamps plus the
regressors of the forecast timestamps (values known in advance: calendar, events, weather
*forecasts*); never a target value at or after the origin.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from .metrics import FIGURES, naive_scale, scores

#: default bound of a backtest's work (see :func:`estimate_work`): about five minutes of the
#: default model on one core, a few hundred MB at most; ``--max-work`` raises it
DEFAULT_MAX_WORK = 5_000_000
#: no forecast is longer than this many steps (11 years of hours), whatever the work limit
MAX_HORIZON = 100_000


@dataclass
class BacktestResult:
    """One row per forecast point (``origin, timestamp, y, yhat, yhat_lower, yhat_upper``)."""

    model: str
    points: pd.DataFrame
    scale: float
    #: why ``scale`` is NaN (the weekly naive's error before the first origin is 0 or unknown)
    scale_problem: str | None = None

    def summary(self) -> dict[str, Any]:
        """The figures the CLI prints; points without an observation are left out of them.

        Every figure is a finite number or ``None``; ``not_computed`` gives the reason for
        each ``None`` (empty when all were computed), so the JSON is always strict JSON.
        """
        p = self.points.dropna(subset=["y"])
        figures, reasons = scores(p["y"], p["yhat"], p["yhat_lower"], p["yhat_upper"], self.scale, self.scale_problem)
        return {
            "model": self.model,
            **{k: figures[k] for k in FIGURES},
            "origins": int(self.points["origin"].nunique()),
            "points": int(len(p)),
            "not_computed": reasons,
        }


@dataclass(frozen=True)
class WorkEstimate:
    """What a backtest will do, known before anything is fitted."""

    origins: int
    history_steps: int  # summed over origins: the steps each model is fitted on
    points: int  # forecast points: origins x horizon
    grid_steps: int  # the series on the --freq grid, from the data's start to the last forecast

    @property
    def work(self) -> int:
        """The measure bounded by ``--max-work``: steps fitted plus steps forecast."""
        return self.history_steps + self.points

    def describe(self) -> str:
        return (
            f"{self.origins:,} origins x ({self.history_steps // max(1, self.origins):,} history steps on average"
            f" + horizon) = {self.work:,} steps of work ({self.points:,} forecast points)"
        )


def count_origins(first: pd.Timestamp, last: pd.Timestamp, every: pd.Timedelta) -> int:
    """How many origins :func:`origins_between` makes, without making them."""
    if every <= pd.Timedelta(0):
        raise ValueError("--every must be a positive duration")
    return 0 if last < first else int((last - first) // every) + 1


def estimate_work(
    start: pd.Timestamp,
    end: pd.Timestamp,
    first: pd.Timestamp,
    last: pd.Timestamp,
    every: pd.Timedelta,
    step: pd.Timedelta,
    horizon: int,
    train_window: pd.Timedelta | None = None,
) -> WorkEstimate:
    """The size of a rolling-origin backtest from its parameters alone (closed form, no loop).

    The cost of a backtest grows with the steps each origin's model is fitted on plus the steps
    it forecasts, and its memory with the grid of the whole series; all three follow from the
    data's first/last time, the origins, ``every``, ``step``, ``horizon`` and the train window.
    """
    n = count_origins(first, last, every)
    a = max(0, int((first - start) // step))  # history steps of the first origin
    b = int(every // step)  # each next origin sees this many more
    if train_window is None:
        hist = n * a + b * n * (n - 1) // 2
    else:
        w = max(1, int(train_window // step))
        if a >= w:
            hist = n * w
        else:
            k = min(n, -(-(w - a) // b) if b > 0 else n)  # origins before the window is full
            hist = k * a + b * k * (k - 1) // 2 + (n - k) * w
    last_forecast = max(end, last + (horizon - 1) * step) if n else end
    grid = int((last_forecast - start) // step) + 1
    return WorkEstimate(origins=n, history_steps=hist, points=n * horizon, grid_steps=grid)


def origins_between(first: pd.Timestamp, last: pd.Timestamp, every: pd.Timedelta) -> list[pd.Timestamp]:
    """``first, first + every, ...`` up to ``last`` (check :func:`estimate_work` first: this is a list)."""
    if every <= pd.Timedelta(0):
        raise ValueError("--every must be a positive duration")
    out, t = [], first
    while t <= last:
        out.append(t)
        t = t + every
    return out


def rolling_origin(
    series: pd.Series,
    origins: Iterable[pd.Timestamp],
    horizon: int,
    model: str,
    options: dict[str, Any] | None = None,
    regressors: pd.DataFrame | None = None,
    train_window: pd.Timedelta | None = None,
    jobs: int = 1,
    fit_predict_fn: Callable[..., pd.DataFrame] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> BacktestResult:
    """Backtest ``model`` (a name from FORECASTER_NAMES) on a cleaned series (:func:`clean_series`).

    ``regressors``, if given, must cover the series' index and the forecast steps after the
    last origin. ``jobs`` > 1 fits origins in a process pool (each fit is independent).
    Each origin's history is cut when it is fitted, not all up front, so memory holds a few
    histories at a time, not one per origin. ``progress(done, total)`` is called after each
    origin.
    """
    from . import fit_predict

    run = fit_predict_fn or fit_predict
    options = dict(options or {})
    origins = list(origins)
    if not origins:
        raise ValueError("no forecast origins")
    histories = _Histories(series, train_window)
    histories.check(origins)  # cheap checks first: a bad origin fails before any fit
    tasks = _fit_tasks(histories, origins, horizon, model, options, regressors)
    frames = []
    for done, (origin, fc) in enumerate(zip(origins, _forecasts(run, tasks, len(origins), jobs)), 1):
        frames.append(_origin_points(series, origin, fc))
        if progress is not None:
            progress(done, len(origins))
    points = pd.concat(frames, ignore_index=True)
    scale, problem = _scale(series, origins[0])
    return BacktestResult(model=model, points=points, scale=scale, scale_problem=problem)


class _Histories:
    """Where each origin's history lies in the series: ``[origin - train_window, origin)``."""

    def __init__(self, series: pd.Series, train_window: pd.Timedelta | None) -> None:
        self.series = series
        self.train_window = train_window
        self.step = pd.Timedelta(series.index.freq)
        self.observed = np.concatenate([[0], np.cumsum(series.notna().to_numpy())])  # observed values before position i

    def bounds(self, origin: pd.Timestamp) -> tuple[int, int]:
        """Positions of the history ``[origin - train_window, origin)`` (the index is sorted)."""
        index = self.series.index
        lo = origin - self.train_window if self.train_window is not None else index[0]
        return int(index.searchsorted(lo, "left")), int(index.searchsorted(origin, "left"))

    def check(self, origins: list[pd.Timestamp]) -> None:
        """Every origin needs at least two observed values before it (raises ValueError)."""
        for origin in origins:
            i, j = self.bounds(origin)
            if self.observed[j] - self.observed[i] < 2:
                raise ValueError(f"no history before origin {origin.isoformat()}")

    def cut(self, origin: pd.Timestamp) -> pd.Series:
        """The origin's history, padded to ``origin - step``: the model's future starts right
        after its history."""
        i, j = self.bounds(origin)
        hist = self.series.iloc[i:j]
        return hist.reindex(pd.date_range(hist.index[0], origin - self.step, freq=self.step))


def _fit_tasks(
    histories: _Histories,
    origins: list[pd.Timestamp],
    horizon: int,
    model: str,
    options: dict[str, Any],
    regressors: pd.DataFrame | None,
) -> Iterator[tuple[Any, ...]]:
    """The arguments of each origin's fit, made lazily (a few histories in memory at a time)."""
    step = histories.step
    for origin in origins:
        hist = histories.cut(origin)
        future = pd.date_range(origin, periods=horizon, freq=step)
        reg_hist = reg_future = None
        if regressors is not None:
            reg_hist, reg_future = regressors.reindex(hist.index), regressors.reindex(future)
        yield (model, hist, reg_hist, horizon, reg_future, options)


def _origin_points(series: pd.Series, origin: pd.Timestamp, fc: pd.DataFrame) -> pd.DataFrame:
    """One origin's forecast as rows ``origin, timestamp, y`` (the observation, NaN if none), then the forecast's columns."""
    f = fc.copy()
    f.insert(0, "y", series.reindex(f.index).to_numpy())
    f.insert(0, "timestamp", f.index)
    f.insert(0, "origin", origin)
    return f.reset_index(drop=True)


def _scale(series: pd.Series, first_origin: pd.Timestamp) -> tuple[float, str | None]:
    """The MASE scale before the first origin, or NaN and why (the other figures still hold)."""
    try:
        return naive_scale(series, first_origin), None
    except ValueError as exc:  # MASE is undefined; the other figures still are
        return float("nan"), str(exc)


def _forecasts(run: Callable[..., pd.DataFrame], tasks: Iterator[tuple[Any, ...]], n: int, jobs: int) -> Iterator[pd.DataFrame]:
    """Forecasts in origin order; the process pool gets at most ``2 * jobs`` tasks in flight (bounded memory)."""
    if jobs <= 1 or n <= 1:
        for t in tasks:
            yield run(*t[:5], **t[5])
        return
    from collections import deque

    from . import process_pool

    with process_pool(jobs) as executor:
        pending: deque[Any] = deque()
        for t in tasks:
            pending.append(executor.submit(_star, (run, t)))
            if len(pending) >= 2 * jobs:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


def _star(args: tuple[Callable[..., pd.DataFrame], tuple[Any, ...]]) -> pd.DataFrame:
    fn, t = args
    return fn(*t[:5], **t[5])


def mase_ratio(result: BacktestResult, baseline: BacktestResult) -> float | None:
    """MASE of ``result`` over that of ``baseline`` on the points both observed (None: undefined)."""
    a, b = result.points, baseline.points
    keep = a["y"].notna().to_numpy() & b["y"].notna().to_numpy()
    den = float(np.mean(np.abs(b["y"][keep] - b["yhat"][keep]))) if keep.any() else 0.0
    ratio = float(np.mean(np.abs(a["y"][keep] - a["yhat"][keep]))) / den if den > 0 else float("nan")
    return ratio if np.isfinite(ratio) else None
