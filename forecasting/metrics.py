"""Accuracy measures of the backtest: MAE, MASE (weekly-naive scaled), sMAPE, interval coverage and score.

Every figure the backtest reports is a finite number or ``None`` with a reason (:func:`scores`):
JSON has no NaN or Infinity, and a figure that cannot be computed must say why instead of
printing a misleading 0.0 or ``Infinity``.

Zero denominators, as defined here (docs/forecasting.md):

* **MASE** divides the mean absolute error by the weekly seasonal naive's mean absolute error
  before the first origin. When that is 0 (a constant or exactly weekly-repeating history) or
  cannot be measured (no pair of values a week apart), MASE is undefined: ``None`` with the reason;
  MAE, in the series' own unit, is always reported next to it.
* **sMAPE** is ``200 |y - yhat| / (|y| + |yhat|)`` averaged over points; a point where both are 0
  is a perfect forecast and counts 0 (not 0/0); every other point lies in [0, 200].
* **Interval score** (Winkler; Gneiting & Raftery 2007) of the central 80 % interval [l, u]:
  ``(u - l) + (2 / 0.2) (l - y)+ + (2 / 0.2) (y - u)+``, averaged, in the series' unit
  (``winkler80``); the narrower the better, but every miss costs ten times its distance.
  ``msis80`` divides it by the MASE scale (the M4 competition's MSIS), comparable across series.
  The mean pinball loss of the 10 % and 90 % quantiles is exactly ``0.05 * winkler80``
  (:func:`pinball`), so it is not reported separately.
"""

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
    with np.errstate(over="ignore", invalid="ignore"):
        err = (y / 2 - y.shift(m) / 2).abs().dropna() * 2  # halves: no overflow on huge values
    if err.empty:
        raise ValueError(f"no pair of values {season} apart before {before}: the weekly naive's error is unknown")
    scale = float(err.mean())
    level = float(np.nanmean(np.abs(y.to_numpy()))) if y.notna().any() else 0.0
    if scale == 0.0 or (np.isfinite(level) and scale <= 1e-9 * level):  # float noise on an exactly repeating series is no error either
        raise ValueError(f"the weekly naive makes no error before {before} (the history is constant or repeats exactly every week)")
    if not np.isfinite(scale):
        raise ValueError("the weekly naive's error overflows (values too large)")
    return scale


def mae(y: np.ndarray, yhat: np.ndarray) -> float:
    """Mean absolute error, in the series' unit (computed on halves so huge values do not overflow)."""
    y, yhat = np.asarray(y, dtype=float), np.asarray(yhat, dtype=float)
    with np.errstate(over="ignore", invalid="ignore"):
        return float(2.0 * np.mean(np.abs(y / 2 - yhat / 2)))


def mase(y: np.ndarray, yhat: np.ndarray, scale: float) -> float:
    return mae(y, yhat) / scale


def smape(y: np.ndarray, yhat: np.ndarray) -> float:
    """Symmetric MAPE in percent (0..200); points where both are 0 count as perfect."""
    # 2|y - yhat| / (|y| + |yhat|) written on halves and quarters, so no intermediate overflows
    a, b = np.asarray(y, dtype=float) / 2, np.asarray(yhat, dtype=float) / 2
    half_den = np.abs(a) / 2 + np.abs(b) / 2
    with np.errstate(over="ignore", invalid="ignore"):
        ratio = np.divide(np.abs(a - b), half_den, out=np.zeros_like(half_den), where=half_den > 0)
    return float(100.0 * ratio.mean())


def coverage(y: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> float:
    """Share of observations inside [lower, upper] (target 0.8 for an 80 % interval)."""
    y = np.asarray(y, dtype=float)
    return float(np.mean((y >= np.asarray(lower)) & (y <= np.asarray(upper))))


def interval_score(y: np.ndarray, lower: np.ndarray, upper: np.ndarray, alpha: float = 0.2) -> float:
    """Mean Winkler interval score of the central ``1 - alpha`` interval (lower is better)."""
    y, lo, hi = (np.asarray(a, dtype=float) / 2 for a in (y, lower, upper))  # halves: no overflow
    with np.errstate(over="ignore", invalid="ignore"):
        s = (hi - lo) + (2.0 / alpha) * np.maximum(lo - y, 0.0) + (2.0 / alpha) * np.maximum(y - hi, 0.0)
        return float(2.0 * np.mean(s))


def pinball(y: np.ndarray, q: np.ndarray, tau: float) -> float:
    """Mean pinball (quantile) loss of the forecast ``q`` of the ``tau`` quantile."""
    d = np.asarray(y, dtype=float) - np.asarray(q, dtype=float)
    return float(np.mean(np.maximum(tau * d, (tau - 1.0) * d)))


#: the figures :func:`scores` reports and the decimals each is rounded to
FIGURES = {"mae": 4, "mase": 4, "smape": 3, "coverage80": 4, "winkler80": 4, "msis80": 4}


def scores(
    y: np.ndarray, yhat: np.ndarray, lower: np.ndarray, upper: np.ndarray, scale: float, scale_problem: str | None = None
) -> tuple[dict[str, float | None], dict[str, str]]:
    """The backtest's figures over observed points: each a finite, rounded float or ``None``.

    Returns ``(figures, reasons)``; ``reasons`` says, for every ``None`` figure, why it could
    not be computed. ``scale`` is :func:`naive_scale`'s value (NaN when it raised:
    ``scale_problem`` is then its message).
    """
    y, yhat = np.asarray(y, dtype=float), np.asarray(yhat, dtype=float)
    lower, upper = np.asarray(lower, dtype=float), np.asarray(upper, dtype=float)
    figures: dict[str, float | None] = dict.fromkeys(FIGURES)
    reasons: dict[str, str] = {}

    def none_for_all(why: str) -> tuple[dict[str, float | None], dict[str, str]]:
        return figures, dict.fromkeys(FIGURES, why)

    if len(y) == 0:
        return none_for_all("no observed value at any forecast timestamp")
    if not np.isfinite(y).all():
        return none_for_all(f"{int((~np.isfinite(y)).sum())} observed values are not finite")
    if not np.isfinite(yhat).all():
        return none_for_all(f"the model produced {int((~np.isfinite(yhat)).sum())} non-finite forecasts")
    figures["mae"] = error = mae(y, yhat)
    if np.isfinite(scale) and scale > 0:
        figures["mase"] = error / scale
    else:
        reasons["mase"] = f"undefined: {scale_problem or 'the weekly naive error before the first origin is 0'}"
    figures["smape"] = smape(y, yhat)
    if np.isnan(lower).any() or np.isnan(upper).any():
        for k in ("coverage80", "winkler80", "msis80"):
            reasons[k] = "the model gave no interval at some points"
    else:
        figures["coverage80"] = coverage(y, lower, upper)
        winkler = interval_score(y, lower, upper, 0.2)
        figures["winkler80"] = winkler
        if np.isfinite(scale) and scale > 0:
            figures["msis80"] = winkler / scale
        else:
            reasons["msis80"] = reasons["mase"]
    for name, digits in FIGURES.items():
        v = figures[name]
        if v is None:
            continue
        if not np.isfinite(v):
            figures[name] = None
            reasons[name] = "overflow: the values are too large to score"
        else:
            figures[name] = round(v, digits)
    return figures, reasons
