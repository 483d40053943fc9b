"""Seasonal naive baselines: the value one season ago (same hour yesterday / last week).

The weekly seasonal naive is the bar every traffic model must clear: commuter traffic repeats
weekly, so copying last week is hard to beat. It is also the scale of the MASE we report.
"""

from __future__ import annotations

from typing import Unpack

import numpy as np
import pandas as pd

from .base import CommonOptions, Forecaster
from .calendar import positions_back
from .intervals import conformal_offsets

#: how many seasons back to look when the value one season ago is missing (a gap)
_FALLBACK_SEASONS = 4


class SeasonalNaive(Forecaster):
    """Forecast ``y[t - season]``; the interval is conformal on the seasonal differences (its own errors).

    A missing value one season back falls back to two, three, four seasons back, then to the
    mean of the last observed season, so gaps in the input never stop a forecast.
    """

    name = "naive_weekly"
    version = "1"

    def __init__(self, season: str = "7D", **common: Unpack[CommonOptions]) -> None:
        super().__init__(**common)
        self.season = season

    def _fit(self, y: pd.Series, regressors: pd.DataFrame | None) -> None:
        self.m_ = self.steps(self.season)
        back = self._positions(pd.DatetimeIndex(y.index), 1)
        raw = y.to_numpy(dtype=float)
        self.errors_ = (y - np.where(back >= 0, raw[np.maximum(back, 0)], np.nan)).dropna()

    def _positions(self, index: pd.DatetimeIndex, seasons: int) -> np.ndarray:
        """Where the value ``seasons`` seasons before each timestamp sits (-1: not in ``index``):
        the same local time when the season is whole days (calendar.positions_back: daylight
        saving; by position without a zone), else by position."""
        m, day = self.m_, self.steps("1D")
        if m % day == 0:
            return positions_back(index, seasons * (m // day), self.timezone, day)
        pos = np.arange(len(index)) - seasons * m
        return np.where(pos >= 0, pos, -1)

    def _predict(self, future: pd.DatetimeIndex, regressors: pd.DataFrame | None) -> pd.DataFrame:
        y = self.history_
        ext = np.concatenate([y.to_numpy(), np.full(len(future), np.nan)])
        n = len(y)
        m = self.m_
        tail = y.to_numpy()[-m:]
        fallback = float(np.nanmean(tail)) if np.isfinite(tail).any() else float(np.nanmean(y.to_numpy()))
        every = y.index.append(future)
        back = {k: self._positions(every, k) for k in range(1, _FALLBACK_SEASONS + 1 + len(future) // m)}
        yhat = np.empty(len(future))
        for i in range(len(future)):
            t = n + i
            v = np.nan
            for k in range(1, _FALLBACK_SEASONS + 1 + i // m):
                j = back[k][t]
                if j < 0:
                    continue  # before the history, or a local time that did not exist
                v = ext[j]
                if np.isfinite(v):
                    break
            yhat[i] = v if np.isfinite(v) else fallback
            ext[t] = yhat[i]  # forecasts beyond one season repeat the forecast season
        lo, hi = conformal_offsets(self.errors_, future, timezone=self.timezone)
        # beyond one season the errors add up, roughly like a random walk of seasons
        widen = np.sqrt(1 + np.arange(len(future)) // m)
        return pd.DataFrame({"yhat": yhat, "yhat_lower": yhat + lo * widen, "yhat_upper": yhat + hi * widen}, index=future)


class WeeklyNaive(SeasonalNaive):
    """Same time last week: the baseline and the MASE scale."""

    name = "naive_weekly"

    def __init__(self, **common: Unpack[CommonOptions]) -> None:
        super().__init__(season="7D", **common)


class DailyNaive(SeasonalNaive):
    """Same time yesterday: misses the weekday/weekend difference, shown as the weaker baseline."""

    name = "naive_daily"

    def __init__(self, **common: Unpack[CommonOptions]) -> None:
        super().__init__(season="1D", **common)
