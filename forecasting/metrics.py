"""Accuracy measures of the backtest: MASE (weekly-naive scaled), sMAPE, interval coverage."""

from __future__ import annotations

import numpy as np
import pandas as pd


def naive_scale(series: pd.Series, before: pd.Timestamp, season: str = "7D") -> float:
    """Mean absolute error of the seasonal naive over all data strictly before ``before``.

    The MASE denominator: pairs where either value is missing (gaps) are left out, so a
    308-day gap does not count as error. A series too short or too flat for it raises.
    """
    y = series[series.index < before]
    step = pd.Timedelta(y.index.freq) if y.index.freq is not None else None
    if step is None:
        raise ValueError("naive_scale needs a regular series (clean_series)")
    m = max(1, int(round(pd.Timedelta(season) / step)))
    err = (y - y.shift(m)).abs().dropna()
    if err.empty or float(err.mean()) == 0.0:
        raise ValueError(f"no seasonal naive error before {before}: need more than {season} of varying data")
    return float(err.mean())


def mase(y: np.ndarray, yhat: np.ndarray, scale: float) -> float:
    return float(np.mean(np.abs(np.asarray(y) - np.asarray(yhat))) / scale)


def smape(y: np.ndarray, yhat: np.ndarray) -> float:
    """Symmetric MAPE in percent (0..200); points where both are 0 count as perfect."""
    y, yhat = np.asarray(y, dtype=float), np.asarray(yhat, dtype=float)
    den = np.abs(y) + np.abs(yhat)
    ratio = np.divide(2.0 * np.abs(y - yhat), den, out=np.zeros_like(den), where=den > 0)
    return float(100.0 * ratio.mean())


def coverage(y: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> float:
    """Share of observations inside [lower, upper] (target 0.8 for an 80 % interval)."""
    y = np.asarray(y, dtype=float)
    return float(np.mean((y >= np.asarray(lower)) & (y <= np.asarray(upper))))
