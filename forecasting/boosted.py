"""Gradient boosting on seasonal lags, calendar, holidays and known-in-advance regressors.

Why this shape: traffic repeats by week, so "the same time last week" is the strongest single
predictor; the model learns when to trust it (a holiday a week ago, a holiday today, snow
forecast) and blends it with yesterday and the last four weeks. One direct model covers every
step of the horizon: it only uses lags at least ``horizon`` steps back, which are all known at
the forecast origin, so nothing has to be forecast recursively.

The target is the deviation from the median of the same time over the last four weeks,
relative to that median: trees cannot extrapolate levels, ratios to a seasonal base travel
between quiet and busy series and between night and peak.

The 80 % interval is conformalised quantile regression (``interval="cqr"``, the default): the
last ``calibration`` of the history is held out; a point model and two quantile models (10 %,
90 %, LightGBM's quantile objective on the same features) are fitted before it. Each error there
scores by how far the quantile band around the point forecast must be stretched to hold it, and
the stretch factor is the weighted conformal 80 % quantile of those scores. All three models are
then refitted on all history (``refit=True``) and the future band is the refitted quantile band
stretched by that factor. Why quantile models: the spread depends on the same things as the
level (weekends, holidays, weather, the hour), and a band per hour of day alone covered weekdays
0.90 and weekends 0.63 on Metro Interstate. ``interval="replay"`` keeps the earlier band
(:func:`forecasting.intervals.conformal_offsets`: per hour of day, stretched by day-ahead
replays), at about half the fitting cost on long histories.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Unpack

import numpy as np
import pandas as pd

from .base import INTERVAL_QUANTILES, CommonOptions, Forecaster
from .calendar import holiday_flags, time_features, values_back
from .intervals import DEFAULT_CONFIG, conformal_offsets, recency_weights, stretch_factor, stretch_scores
from .naive import SeasonalNaive

if TYPE_CHECKING:  # lightgbm is imported where a model is trained: the CLI stays quick to start
    import lightgbm as lgb

_WEEKS_BACK = 4
#: how the 80 % interval is made (module docstring)
INTERVAL_METHODS = ("cqr", "replay")


class BoostedForecaster(Forecaster):
    """LightGBM on seasonal lags + calendar + holidays + regressors (see module docstring)."""

    name = "boosted"
    version = "2"  # 2: conditional (CQR) intervals
    #: fit_predict passes the horizon in: lags must reach at least that far back
    horizon_option = True

    def __init__(
        self,
        *,
        horizon: str | int = "1D",
        calibration: str = "56D",
        refit: bool = True,
        n_estimators: int = 150,
        learning_rate: float = 0.1,
        num_leaves: int = 15,
        min_child_samples: int = 40,
        max_bin: int = 63,
        min_history: str = "28D",
        seed: int = 0,
        interval: str = "cqr",
        **common: Unpack[CommonOptions],
    ) -> None:
        super().__init__(**common)
        self.horizon = horizon
        self.calibration = calibration
        self.refit = refit
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.min_child_samples = min_child_samples
        self.max_bin = max_bin
        self.min_history = min_history
        self.seed = seed
        if interval not in INTERVAL_METHODS:
            raise ValueError(f"interval must be one of {', '.join(INTERVAL_METHODS)}, got {interval!r}")
        self.interval = interval

    # -- features ------------------------------------------------------------------------

    def _lags(self) -> list[int]:
        """Lags (in steps) known ``horizon`` steps ahead: whole days back, and whole weeks."""
        h = self.horizon if isinstance(self.horizon, int) else self.steps(self.horizon)
        day, week = self.steps("1D"), self.steps("7D")
        lags = [k * day for k in range(1, 8) if k * day >= h]
        lags += [k * week for k in range(2, _WEEKS_BACK + 1) if k * week >= h]
        return sorted(set(lags)) or [h]

    def _features(self, y: pd.Series, index: pd.DatetimeIndex, regressors: pd.DataFrame | None) -> tuple[pd.DataFrame, np.ndarray]:
        """Features for the timestamps ``index`` from values of ``y`` (NaN where unknown)."""
        full = y.reindex(y.index.union(index))
        full = full.asfreq(self.freq_)
        day, week = self.steps("1D"), self.steps("7D")
        feats: dict[str, pd.Series] = {}
        for lag in self._lags_:  # whole days back on the local clock (calendar.positions_back)
            feats[f"lag_{lag}"] = values_back(full, lag // day, self.timezone, day) if lag % day == 0 else full.shift(lag)
        weeks = [values_back(full, 7 * k, self.timezone, day) for k in range(1, _WEEKS_BACK + 1) if k * week >= self._h_]
        weekly = pd.concat(weeks, axis=1) if weeks else pd.DataFrame(index=full.index)
        base = weekly.median(axis=1) if weekly.shape[1] else full.shift(self._lags_[0])
        feats["weeks_median"] = base
        feats["weeks_spread"] = weekly.max(axis=1) - weekly.min(axis=1) if weekly.shape[1] > 1 else base * 0
        X = pd.DataFrame(feats).reindex(index)
        base_at = X["weeks_median"].to_numpy()
        scale = np.maximum(np.nan_to_num(base_at, nan=self.level_), self.floor_)
        for c in [c for c in X.columns if c.startswith("lag_") or c == "weeks_spread"]:
            X[c] = X[c] / scale  # lags relative to the base: comparable across levels
        X["base_level"] = base_at / self.level_
        cal = time_features(index, self.timezone)
        if self.freq_ >= pd.Timedelta("1D"):
            cal = cal.drop(columns=["hour"])
        X = X.join(cal)
        if self.holidays:
            X = X.join(holiday_flags(index, self.holidays, self.timezone, offsets=(0, 1, -1, -7)))
        if regressors is not None:
            X = X.join(regressors.reindex(index).add_prefix("reg_"))
        return X, scale

    # -- fit / predict ---------------------------------------------------------------------

    def _params(self, alpha: float | None = None) -> dict[str, object]:
        return {
            "objective": "regression" if alpha is None else "quantile",
            "alpha": 0.5 if alpha is None else alpha,
            "learning_rate": self.learning_rate,
            "num_leaves": self.num_leaves,
            "min_data_in_leaf": self.min_child_samples,
            "bagging_fraction": 0.8,
            "bagging_freq": 1,
            "feature_fraction": 0.8,
            "lambda_l2": 1.0,
            "seed": self.seed,
            "num_threads": 1,
            "verbose": -1,
            "deterministic": True,
            "max_bin": self.max_bin,
        }

    def _design(self, y: pd.Series, regressors: pd.DataFrame | None, upto: int) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
        """Features, target and usable rows of the first ``upto`` steps, built once per fit.

        The point model and both quantile models train on the same rows: building the lag
        frame is most of a small model's cost, so it is not done three times.
        """
        if upto not in self._designs:
            X, scale = self._features(y.iloc[:upto], y.index[:upto], None if regressors is None else regressors.iloc[:upto])
            target = (y.iloc[:upto].to_numpy() - X["base_level"].to_numpy() * self.level_) / scale
            ok = np.isfinite(target) & np.isfinite(X["base_level"].to_numpy())
            self._designs[upto] = (X, target, ok)
        return self._designs[upto]

    def _train(self, y: pd.Series, regressors: pd.DataFrame | None, upto: int, alpha: float | None = None) -> lgb.Booster | None:
        X, target, ok = self._design(y, regressors, upto)
        if ok.sum() < 50:
            return None
        import lightgbm as lgb  # imported here: the CLI stays quick to start

        data = lgb.Dataset(X[ok], target[ok], params={"verbose": -1})
        return lgb.train(self._params(alpha), data, num_boost_round=self.n_estimators)

    def _fit(self, y: pd.Series, regressors: pd.DataFrame | None) -> None:
        self._designs: dict[int, tuple[pd.DataFrame, np.ndarray, np.ndarray]] = {}
        try:
            self._fit_models(y, regressors)
        finally:
            del self._designs  # training frames are not kept with the fitted model

    def _fit_models(self, y: pd.Series, regressors: pd.DataFrame | None) -> None:
        self._h_ = self.horizon if isinstance(self.horizon, int) else self.steps(self.horizon)
        self._lags_ = self._lags()
        observed = y.dropna().to_numpy()
        self.level_ = float(np.mean(np.abs(observed))) or 1.0
        self.floor_ = 0.05 * self.level_  # keeps night-time ratios from exploding
        self.regressors_ = regressors
        self.fallback_: SeasonalNaive | None = None
        n = len(y)
        cal = min(self.steps(self.calibration), n // 4)
        if y.index[-1] - y.index[0] < pd.Timedelta(self.min_history) or y.notna().sum() < 200:
            self._fall_back(y, cal)  # too little history to learn corrections from: a naive is better
            return
        early = self._train(y, regressors, n - cal) if cal > 0 else None
        if early is not None:
            X, scale = self._features(y, y.index[n - cal :], regressors)
            pred = self._predict_with(early, X, scale)
            self.residuals_ = (y.iloc[n - cal :] - pred) / scale
            self.residuals_.index = y.index[n - cal :]
            boosted_mae = float(np.nanmean(np.abs(self.residuals_.to_numpy() * scale)))
            if self._fall_back(y, cal, unless_worse_than=boosted_mae):
                return
        else:
            self.residuals_ = pd.Series(dtype=float)
        self.model_ = self._train(y, regressors, n) if (self.refit or early is None) else early
        self.chosen_ = "boosted"
        self.quantile_models_: tuple[lgb.Booster, lgb.Booster] | None = None
        if self.interval == "cqr" and early is not None:
            self._fit_cqr(y, regressors, n, cal, early, X)

    def _fit_cqr(self, y: pd.Series, regressors: pd.DataFrame | None, n: int, cal: int, early: lgb.Booster, X: pd.DataFrame) -> None:
        """Conditional spread: quantile models, their band stretched by a conformal factor.

        Quantile models fitted before the calibration window give each calibration hour its own
        band around the point forecast; each calibration error scores by how far that band must
        be stretched to hold it, and the stretch factor is the weighted conformal quantile of the
        scores (recent days weigh more, with the half-life of
        :data:`forecasting.intervals.DEFAULT_CONFIG`; the unseen forecast counts as one point).
        """
        e = self.residuals_.to_numpy(dtype=float)
        ok = np.isfinite(e)
        if ok.sum() < DEFAULT_CONFIG.min_scores:
            return  # too few calibration errors: the replay band (conformal_offsets) takes over
        lo_q, hi_q = INTERVAL_QUANTILES
        q_lo, q_hi = (self._train(y, regressors, n - cal, alpha=a) for a in (lo_q, hi_q))
        if q_lo is None or q_hi is None:
            return
        point = _raw(early, X)
        raw_lo = np.minimum(_raw(q_lo, X) - point, 0.0)
        raw_hi = np.maximum(_raw(q_hi, X) - point, 0.0)
        # a side floored at a tenth of its median width on the calibration window: a quantile
        # model that crosses the point forecast at one hour would otherwise make that side zero
        # and any error there infinitely surprising
        self.band_floor_ = (min(0.1 * float(np.median(raw_lo)), -1e-9), max(0.1 * float(np.median(raw_hi)), 1e-9))
        lo, hi = self._band(raw_lo, raw_hi)
        s = stretch_scores(e[ok], lo[ok], hi[ok])
        idx = pd.DatetimeIndex(self.residuals_.index[ok])
        weights = recency_weights(idx, idx[-1], DEFAULT_CONFIG.half_life)
        # the unseen forecast counts as one point, not a day-long block: on the tuning series the
        # block count over-covered with these conditional bands (docs/forecasting.md)
        self.stretch_ = stretch_factor(s, DEFAULT_CONFIG.coverage, weights, 1.0, DEFAULT_CONFIG)
        if self.refit:
            again = [self._train(y, regressors, n, alpha=a) for a in (lo_q, hi_q)]
            if again[0] is not None and again[1] is not None:
                q_lo, q_hi = again[0], again[1]
        self.quantile_models_ = (q_lo, q_hi)

    def _band(self, lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Quantile offsets around the point forecast: never inverted, never narrower than the floor."""
        return np.minimum(lo, self.band_floor_[0]), np.maximum(hi, self.band_floor_[1])

    def _fall_back(self, y: pd.Series, cal: int, unless_worse_than: float = np.inf) -> bool:
        """Use the better seasonal naive (on the calibration window) when it beats the boosting.

        Chosen per series: on short or gappy histories (a new detector, a feed with holes) the
        lag features are mostly missing and the boosted model is worse than copying the past.
        """
        best, best_mae = None, unless_worse_than
        tail = y.iloc[-max(cal, self.steps("7D")) :]
        for season in ("7D", "1D"):
            m = self.steps(season)
            lag = max(m, int(np.ceil(self._h_ / m)) * m)  # the value a naive forecast at this horizon copies
            mae = float(np.nanmean(np.abs((y - y.shift(lag)).reindex(tail.index).to_numpy())))
            if np.isfinite(mae) and mae < best_mae:
                best, best_mae = season, mae
        if best is None:
            if np.isfinite(unless_worse_than):
                return False
            best = "1D"
        self.fallback_ = SeasonalNaive(season=best, non_negative=self.clip_).fit(y)
        self.chosen_ = "naive_weekly" if best == "7D" else "naive_daily"
        return True

    def _predict_with(self, model: lgb.Booster | None, X: pd.DataFrame, scale: np.ndarray) -> np.ndarray:
        base = np.nan_to_num(X["base_level"].to_numpy() * self.level_, nan=self.level_)
        if model is None:
            return base
        return base + model.predict(X) * scale

    def _predict(self, future: pd.DatetimeIndex, regressors: pd.DataFrame | None) -> pd.DataFrame:
        if len(future) > self._h_:
            raise ValueError(
                f"fitted for a horizon of {self._h_} steps, asked for {len(future)}; make_forecaster('boosted', horizon={len(future)})"
            )
        if self.fallback_ is not None:
            return self.fallback_.predict(len(future))
        reg = None
        if regressors is not None:
            reg = pd.concat([self.regressors_, regressors])
        X, scale = self._features(self.history_, future, reg)
        yhat = self._predict_with(self.model_, X, scale)
        if self.quantile_models_ is not None:
            point = _raw(self.model_, X) if self.model_ is not None else np.zeros(len(future))
            lo, hi = self._band(_raw(self.quantile_models_[0], X) - point, _raw(self.quantile_models_[1], X) - point)
            lo, hi = lo * self.stretch_ * scale, hi * self.stretch_ * scale
        else:
            lo, hi = conformal_offsets(self.residuals_, future, scale=scale, timezone=self.timezone)
        return pd.DataFrame({"yhat": yhat, "yhat_lower": yhat + lo, "yhat_upper": yhat + hi}, index=future)


def _raw(model: lgb.Booster, X: pd.DataFrame) -> np.ndarray:
    """A model's prediction in the target's relative units, as a float array."""
    return np.asarray(model.predict(X), dtype=float)
