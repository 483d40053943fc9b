"""Prophet, as planners know it, and Prophet configured for traffic-like load.

Measured on Metro Interstate, default Prophet is far worse than copying last week: one daily
profile shared by weekdays and weekends, additive seasonality, negative night forecasts.
``prophet_traffic`` fixes what can be fixed inside Prophet: separate daily profiles for working
days and for weekends *and public holidays* (a holiday looks like a Sunday), non-negative
output, holidays of the configured country/subdivision, regressors for events, school holidays
and weather forecasts, and optionally multiplicative seasonality.
"""

from __future__ import annotations

import logging
from typing import Literal, Unpack

import numpy as np
import pandas as pd

from .base import INTERVAL_QUANTILES, CommonOptions, Forecaster
from .calendar import holiday_dates, local_clock

#: how Prophet combines trend and seasonality (its own two choices)
SeasonalityMode = Literal["additive", "multiplicative"]


class ProphetOptions(CommonOptions, total=False):
    """The options of :class:`ProphetForecaster` that :class:`TrafficProphet` passes through."""

    conditional_daily: bool
    uncertainty_samples: int
    seed: int


def _quiet() -> None:
    for name in ("cmdstanpy", "prophet", "prophet.plot"):
        logging.getLogger(name).setLevel(logging.ERROR)


class ProphetForecaster(Forecaster):
    """Prophet with its defaults; holidays and regressors are added only when given."""

    name = "prophet"
    version = "1"

    def __init__(
        self,
        *,
        conditional_daily: bool = False,
        seasonality_mode: SeasonalityMode = "additive",
        uncertainty_samples: int = 200,
        seed: int = 0,
        **common: Unpack[CommonOptions],
    ) -> None:
        super().__init__(**common)
        self.conditional_daily = conditional_daily
        self.seasonality_mode = seasonality_mode
        self.uncertainty_samples = uncertainty_samples
        self.seed = seed

    def _frame(self, index: pd.DatetimeIndex, regressors: pd.DataFrame | None) -> pd.DataFrame:
        # Prophet wants naive timestamps: give it the local wall clock people live by
        ds = local_clock(index, self.timezone).tz_localize(None)
        df = pd.DataFrame({"ds": ds})
        if self.conditional_daily:
            working = (ds.dayofweek < 5) & ~self._holiday_mask(ds)
            df["working_day"] = np.asarray(working)
            df["rest_day"] = ~df["working_day"]
        if regressors is not None:
            for c in self.regressor_columns_:
                df[f"r_{c}"] = regressors[c].fillna(self.regressor_means_[c]).to_numpy()
        return df

    def _holiday_mask(self, ds: pd.DatetimeIndex) -> np.ndarray:
        if not self.holidays or not len(ds):
            return np.zeros(len(ds), dtype=bool)
        days = ds.normalize()
        hol = pd.DatetimeIndex(list(holiday_dates(self.holidays, days.min().date(), days.max().date())))
        return np.asarray(days.isin(hol))

    def _fit(self, y: pd.Series, regressors: pd.DataFrame | None) -> None:
        _quiet()
        from prophet import Prophet

        self.regressor_means_ = {} if regressors is None else regressors.mean().fillna(0.0).to_dict()
        holidays_df = None
        if self.holidays:
            ds = local_clock(y.index, self.timezone).tz_localize(None)
            start, end = ds.min().date(), (ds.max() + pd.Timedelta(days=400)).date()
            table = holiday_dates(self.holidays, start, end)
            holidays_df = pd.DataFrame({"holiday": list(table.values()), "ds": pd.to_datetime(list(table.keys()))})
        interval = INTERVAL_QUANTILES[1] - INTERVAL_QUANTILES[0]
        m = Prophet(
            holidays=holidays_df,
            seasonality_mode=self.seasonality_mode,
            interval_width=interval,
            uncertainty_samples=self.uncertainty_samples,
            daily_seasonality=False if self.conditional_daily else "auto",
        )
        if self.conditional_daily:
            m.add_seasonality("daily_working", period=1, fourier_order=10, condition_name="working_day")
            m.add_seasonality("daily_rest", period=1, fourier_order=10, condition_name="rest_day")
        for c in self.regressor_columns_:
            m.add_regressor(f"r_{c}")
        df = self._frame(y.index, regressors)
        df["y"] = y.to_numpy()
        np.random.seed(self.seed)  # Prophet samples its intervals with numpy's global generator
        self.model_ = m.fit(df.dropna(subset=["y"]))

    def _predict(self, future: pd.DatetimeIndex, regressors: pd.DataFrame | None) -> pd.DataFrame:
        np.random.seed(self.seed)
        fc = self.model_.predict(self._frame(future, regressors))
        return pd.DataFrame(
            {"yhat": fc["yhat"].to_numpy(), "yhat_lower": fc["yhat_lower"].to_numpy(), "yhat_upper": fc["yhat_upper"].to_numpy()},
            index=future,
        )


class TrafficProphet(ProphetForecaster):
    """Prophet for traffic-like load: working-day / rest-day daily profiles, see module doc."""

    name = "prophet_traffic"

    def __init__(self, *, seasonality_mode: SeasonalityMode = "additive", **options: Unpack[ProphetOptions]) -> None:
        options.setdefault("conditional_daily", True)
        super().__init__(seasonality_mode=seasonality_mode, **options)
