"""The forecaster contract every model follows, and the one cleaning path for input series.

Models follow scikit-learn's contract (constructor takes only options, ``fit`` learns and
stores state in attributes ending in ``_``, ``predict`` does not change the model) so the
backtest and the stream agent treat a seasonal naive, Prophet and a boosted model alike.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar, Self, TypedDict

import numpy as np
import pandas as pd

#: the interval every model reports: 10 % and 90 % quantiles, i.e. a central 80 % interval
INTERVAL_QUANTILES = (0.1, 0.9)
OUTPUT_COLUMNS = ["yhat", "yhat_lower", "yhat_upper"]


def to_utc_index(index: pd.Index) -> pd.DatetimeIndex:
    """Timezone-aware UTC index; naive timestamps are read as UTC wall-clock times.

    Data such as the Metro Interstate CSV carries local wall-clock times without a zone;
    reading them as UTC keeps the hour of day a planner sees and avoids inventing DST gaps.
    """
    idx = pd.DatetimeIndex(pd.to_datetime(index, utc=False, errors="coerce"))
    if idx.tz is None:
        return idx.tz_localize("UTC")
    return idx.tz_convert("UTC")


def infer_freq(index: pd.DatetimeIndex) -> pd.Timedelta:
    """The typical spacing of readings (median gap), robust to gaps and duplicates."""
    diffs = np.diff(index.dropna().unique().sort_values().as_unit("ns").asi8)
    diffs = diffs[diffs > 0]
    if len(diffs) == 0:
        raise ValueError("cannot infer a frequency from fewer than two distinct timestamps")
    step = pd.Timedelta(int(np.median(diffs)), unit="ns")
    # readings jitter by seconds: a 5-minute feed must give 5min, not 5min 1s
    return step.round("1min") if step >= pd.Timedelta("1min") else step.round("1s") or step


def clean_series(series: pd.Series, freq: str | pd.Timedelta | None = None) -> pd.Series:
    """A regular UTC series: duplicates averaged, gaps as NaN, readings binned onto the grid.

    Field data has duplicated timestamps (several weather rows for one hour), missing
    intervals and jittered reading times (every 5-10 minutes); models need one value per
    step so that "the same hour last week" is a fixed number of steps back.
    """
    s = pd.Series(pd.to_numeric(series, errors="coerce").to_numpy(dtype=float), index=to_utc_index(series.index))
    s = s[s.index.notna()].sort_index()
    step = pd.Timedelta(freq) if freq is not None else infer_freq(s.index)
    if step <= pd.Timedelta(0):
        raise ValueError(f"frequency must be positive, got {freq!r}")
    out = s.resample(step).mean()
    out.index.freq = step
    out.name = series.name
    return out


def clean_regressors(frame: pd.DataFrame, index: pd.DatetimeIndex) -> pd.DataFrame:
    """Regressors aligned to ``index``: numeric columns averaged per step, categories one-hot.

    Missing regressor values stay NaN; models decide (the boosted model handles NaN,
    Prophet gets the column mean, since it refuses NaN).
    """
    df = frame.copy()
    df.index = to_utc_index(df.index)
    df = df[df.index.notna()].sort_index()
    text = [c for c in df.columns if not pd.api.types.is_numeric_dtype(df[c])]
    if text:
        df = pd.get_dummies(df, columns=text, dtype=float)
    df = df.astype(float)
    step = index.freq if index.freq is not None else infer_freq(index)
    binned = df.resample(pd.Timedelta(step)).mean() if len(df) else df
    return binned.reindex(index)


def residual_interval(
    residuals: pd.Series, future: pd.DatetimeIndex, scale: np.ndarray | None = None, quantiles: tuple[float, float] = INTERVAL_QUANTILES
) -> tuple[np.ndarray, np.ndarray]:
    """Lower/upper offsets from out-of-sample residuals, per hour of day where data allows.

    Traffic errors are small at night and large in the peaks: one global quantile would be
    too wide at 3 am and too narrow at 5 pm. ``scale`` (>0, per future point) turns
    residuals that were divided by a level back into absolute offsets.
    """
    r = residuals.dropna()
    lo = np.full(len(future), np.nan)
    hi = np.full(len(future), np.nan)
    if len(r) == 0:
        return np.zeros(len(future)), np.zeros(len(future))
    glo, ghi = np.quantile(r.to_numpy(), quantiles)
    step = future.freq or (future[1] - future[0] if len(future) > 1 else pd.Timedelta("1D"))
    if pd.Timedelta(step) < pd.Timedelta("1D"):
        # each hour pools its neighbours (h-1, h, h+1): three times the samples, same shape
        values, hours = r.to_numpy(), r.index.hour.to_numpy()
        for h in np.unique(future.hour):
            near = values[np.abs(((hours - h + 12) % 24) - 12) <= 1]
            if len(near) >= 20:
                lo[future.hour == h], hi[future.hour == h] = np.quantile(near, quantiles)
    lo = np.where(np.isnan(lo), glo, lo)
    hi = np.where(np.isnan(hi), ghi, hi)
    if scale is not None:
        lo, hi = lo * scale, hi * scale
    return np.minimum(lo, 0.0), np.maximum(hi, 0.0)


class CommonOptions(TypedDict, total=False):
    """The options every model accepts (see :class:`Forecaster`); subclasses pass them through."""

    holidays: str | None
    timezone: str | None
    non_negative: bool | None


class Forecaster(ABC):
    """Learn from one series' history, forecast the next ``horizon`` steps with an 80 % interval.

    ``fit(history, regressors)``: ``history`` is a pandas Series on a tz-aware UTC
    DatetimeIndex (pass it through :func:`clean_series` first; fit cleans again, cheaply, so a
    raw series works too); ``regressors`` a DataFrame on the same timestamps with values known in
    advance (calendar, events, weather forecasts). ``predict(horizon, future_regressors)``
    returns a DataFrame with columns ``yhat, yhat_lower, yhat_upper`` on the ``horizon``
    timestamps that follow the history; ``future_regressors`` must cover them with the same
    columns as in ``fit``.

    Options shared by every model: ``holidays`` ("US-MN": country and optional subdivision of
    the ``holidays`` package), ``timezone`` (clock for hour-of-day and dates; default: the
    index's own wall clock), ``non_negative`` (clip forecasts at 0; default: when the history
    is non-negative).
    """

    name: ClassVar[str] = "forecaster"
    version: ClassVar[str] = "1"

    def __init__(self, *, holidays: str | None = None, timezone: str | None = None, non_negative: bool | None = None) -> None:
        self.holidays = holidays
        self.timezone = timezone
        self.non_negative = non_negative

    def fit(self, history: pd.Series, regressors: pd.DataFrame | None = None) -> Self:
        y = clean_series(history, history.index.freq if isinstance(history.index, pd.DatetimeIndex) else None)
        if y.notna().sum() < 2:
            raise ValueError("history has fewer than two observed values")
        self.freq_ = pd.Timedelta(y.index.freq)
        self.history_ = y
        self.clip_ = bool(np.nanmin(y.to_numpy()) >= 0) if self.non_negative is None else self.non_negative
        self.regressor_columns_: list[str] = []
        reg = None
        if regressors is not None and len(regressors.columns):
            reg = clean_regressors(regressors, y.index)
            self.regressor_columns_ = list(reg.columns)
        self._fit(y, reg)
        return self

    def predict(self, horizon: int, future_regressors: pd.DataFrame | None = None) -> pd.DataFrame:
        if horizon < 1:
            raise ValueError("horizon must be at least 1 step")
        future = self.future_index(horizon)
        reg = None
        if self.regressor_columns_:
            if future_regressors is None:
                raise ValueError(f"the model was fitted with regressors {self.regressor_columns_}; pass future_regressors")
            reg = clean_regressors(future_regressors, future).reindex(columns=self.regressor_columns_)
        out = self._predict(future, reg)
        if self.clip_:
            out = out.clip(lower=0.0)
        out["yhat_lower"] = np.minimum(out["yhat_lower"], out["yhat"])
        out["yhat_upper"] = np.maximum(out["yhat_upper"], out["yhat"])
        return out[OUTPUT_COLUMNS]

    def future_index(self, horizon: int) -> pd.DatetimeIndex:
        last = self.history_.index[-1]
        return pd.date_range(last + self.freq_, periods=horizon, freq=self.freq_)

    def steps(self, span: str) -> int:
        """How many steps of this series make ``span`` (at least one)."""
        return max(1, int(round(pd.Timedelta(span) / self.freq_)))

    @abstractmethod
    def _fit(self, y: pd.Series, regressors: pd.DataFrame | None) -> None: ...

    @abstractmethod
    def _predict(self, future: pd.DatetimeIndex, regressors: pd.DataFrame | None) -> pd.DataFrame: ...

    def __repr__(self) -> str:
        opts = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.endswith("_"))
        return f"{type(self).__name__}({opts})"
