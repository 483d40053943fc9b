"""Pure load forecasting: models, regressors (holidays, events, weather), backtesting.

Functional core: never imports Faust, Kafka or a database. The stream side calls

* :func:`make_forecaster` ``(name=None, **options) -> Forecaster`` with a name from
  :data:`FORECASTER_NAMES` (``None``: :data:`DEFAULT_MODEL`, the best by backtest evidence,
  docs/forecasting.md);
* ``Forecaster.fit(history, regressors=None) -> self`` and
  ``Forecaster.predict(horizon, future_regressors=None) -> DataFrame[yhat, yhat_lower, yhat_upper]``
  (80 % interval) on the future timestamps; ``name`` and ``version`` attributes;
* :func:`fit_predict` — the same in one picklable top-level call for a
  ``concurrent.futures.ProcessPoolExecutor`` worker; :func:`process_pool` makes one that is
  safe here (spawned workers: a forked child of a process that trained LightGBM can hang);
* :func:`clean_series` — the one cleaning path (UTC, duplicates averaged, gaps as NaN);
* :func:`event_regressors` ``(index, events, series_id=None)`` and :class:`Event` — announced
  events as regressor columns for the series they affect.

Heavy libraries (LightGBM, Prophet) are imported when a model is fitted, not on import.
"""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import pandas as pd

from .base import Forecaster, clean_regressors, clean_series
from .boosted import BoostedForecaster
from .events import Event, event_regressors, read_ics
from .naive import DailyNaive, WeeklyNaive
from .prophet_model import ProphetForecaster, TrafficProphet

_MODELS: dict[str, type[Forecaster]] = {
    "boosted": BoostedForecaster,
    "naive_weekly": WeeklyNaive,
    "naive_daily": DailyNaive,
    "prophet": ProphetForecaster,
    "prophet_traffic": TrafficProphet,
}

#: every model make_forecaster knows, the default first
FORECASTER_NAMES: tuple[str, ...] = tuple(_MODELS)

#: the model with the best backtest evidence (docs/forecasting.md): used when no name is given
DEFAULT_MODEL = "boosted"


def make_forecaster(name: str | None = None, **options: Any) -> Forecaster:
    """A fresh, unfitted forecaster; ``options`` are its constructor's (e.g. ``holidays="US-MN"``)."""
    key = DEFAULT_MODEL if name is None else name
    if key not in _MODELS:
        raise ValueError(f"unknown forecaster {key!r}; choose one of {', '.join(FORECASTER_NAMES)}")
    return _MODELS[key](**options)


def fit_predict(
    name: str | None,
    history: pd.Series,
    regressors: pd.DataFrame | None,
    horizon: int,
    future_regressors: pd.DataFrame | None = None,
    **options: Any,
) -> pd.DataFrame:
    """Fit a fresh model and forecast: the picklable unit of work for process pools.

    Models whose features depend on the horizon (``boosted``) get ``horizon`` unless
    ``options`` set it.
    """
    if getattr(_MODELS.get(DEFAULT_MODEL if name is None else name), "horizon_option", False):
        options.setdefault("horizon", horizon)
    return make_forecaster(name, **options).fit(history, regressors).predict(horizon, future_regressors)


def process_pool(workers: int, nice: int = 0) -> ProcessPoolExecutor:
    """A process pool safe for these models: workers start by *spawn*, not fork.

    ``nice`` lowers the workers' CPU priority (``os.nice``): refits are batch work and must yield
    the CPU to the processes that raise alarms on the same machine.

    A forked child of a process that already trained a LightGBM model inherits OpenMP's
    thread-pool state and can hang forever (a known LightGBM/OpenMP limitation on Linux, where
    fork is the default); spawned workers start clean. Use this (or ``mp_context=spawn``)
    for :func:`fit_predict` in a worker.
    """
    return ProcessPoolExecutor(
        max_workers=workers, mp_context=multiprocessing.get_context("spawn"), initializer=lower_priority, initargs=(nice,)
    )


def lower_priority(nice: int) -> None:
    """Runs first in each pool worker: add ``nice`` to its niceness (0 leaves it alone)."""
    if nice > 0:
        os.nice(nice)


__all__ = [
    "DEFAULT_MODEL",
    "FORECASTER_NAMES",
    "Event",
    "Forecaster",
    "clean_regressors",
    "clean_series",
    "event_regressors",
    "fit_predict",
    "make_forecaster",
    "process_pool",
    "read_ics",
]
