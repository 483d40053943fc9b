"""Rolling-origin backtest: refit at each origin on data strictly before it, forecast ahead.

This is the protocol every figure in docs/forecasting.md comes from. The model sees the
history ``[origin - train_window, origin)`` and the regressors on those timestamps plus the
regressors of the forecast timestamps (values known in advance: calendar, events, weather
*forecasts*); never a target value at or after the origin.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterable

import numpy as np
import pandas as pd

from .metrics import coverage, mase, naive_scale, smape


@dataclass
class BacktestResult:
    """One row per forecast point (``origin, timestamp, y, yhat, yhat_lower, yhat_upper``)."""

    model: str
    points: pd.DataFrame
    scale: float

    def summary(self) -> dict[str, Any]:
        """The figures the CLI prints; points without an observation are left out of them."""
        p = self.points.dropna(subset=["y"])
        return {
            "model": self.model,
            "mase": round(mase(p["y"], p["yhat"], self.scale), 4) if len(p) else None,
            "smape": round(smape(p["y"], p["yhat"]), 3) if len(p) else None,
            "coverage80": round(coverage(p["y"], p["yhat_lower"], p["yhat_upper"]), 4) if len(p) else None,
            "origins": int(self.points["origin"].nunique()),
            "points": int(len(p)),
        }


def origins_between(first: pd.Timestamp, last: pd.Timestamp, every: pd.Timedelta) -> list[pd.Timestamp]:
    if every <= pd.Timedelta(0):
        raise ValueError("--every must be a positive duration")
    out, t = [], first
    while t <= last:
        out.append(t)
        t = t + every
    return out


def rolling_origin(series: pd.Series, origins: Iterable[pd.Timestamp], horizon: int, model: str,
                   options: dict[str, Any] | None = None, regressors: pd.DataFrame | None = None,
                   train_window: pd.Timedelta | None = None, jobs: int = 1,
                   fit_predict_fn: Callable[..., pd.DataFrame] | None = None) -> BacktestResult:
    """Backtest ``model`` (a name from FORECASTER_NAMES) on a cleaned series (:func:`clean_series`).

    ``regressors``, if given, must cover the series' index and the forecast steps after the
    last origin. ``jobs`` > 1 fits origins in a process pool (each fit is independent).
    """
    from . import fit_predict, process_pool

    run = fit_predict_fn or fit_predict
    options = dict(options or {})
    origins = list(origins)
    if not origins:
        raise ValueError("no forecast origins")
    step = pd.Timedelta(series.index.freq)
    tasks = []
    for origin in origins:
        lo = origin - train_window if train_window is not None else series.index[0]
        hist = series[(series.index >= lo) & (series.index < origin)]
        if hist.notna().sum() < 2:
            raise ValueError(f"no history before origin {origin.isoformat()}")
        # the model's future starts right after its history: pad the history to origin - 1 step
        hist = hist.reindex(pd.date_range(hist.index[0], origin - step, freq=step))
        future = pd.date_range(origin, periods=horizon, freq=step)
        reg_hist = reg_future = None
        if regressors is not None:
            reg_hist, reg_future = regressors.reindex(hist.index), regressors.reindex(future)
        tasks.append((model, hist, reg_hist, horizon, reg_future, options))
    if jobs > 1 and len(tasks) > 1:
        with process_pool(jobs) as pool:
            forecasts = list(pool.map(_star, [(run, t) for t in tasks]))
    else:
        forecasts = [run(*t[:5], **t[5]) for t in tasks]
    frames = []
    for origin, fc in zip(origins, forecasts):
        f = fc.copy()
        f.insert(0, "y", series.reindex(f.index).to_numpy())
        f.insert(0, "timestamp", f.index)
        f.insert(0, "origin", origin)
        frames.append(f.reset_index(drop=True))
    points = pd.concat(frames, ignore_index=True)
    scale = naive_scale(series, origins[0])
    return BacktestResult(model=model, points=points, scale=scale)


def _star(args: tuple[Callable[..., pd.DataFrame], tuple[Any, ...]]) -> pd.DataFrame:
    fn, t = args
    return fn(*t[:5], **t[5])


def mase_ratio(result: BacktestResult, baseline: BacktestResult) -> float:
    """MASE of ``result`` over that of ``baseline`` on the points both observed."""
    a, b = result.points, baseline.points
    keep = a["y"].notna().to_numpy() & b["y"].notna().to_numpy()
    return float(np.mean(np.abs(a["y"][keep] - a["yhat"][keep])) / np.mean(np.abs(b["y"][keep] - b["yhat"][keep])))
