"""Property: every forecaster's interval contains its point forecast, and non-negative input
gives non-negative output, whatever the (possibly gappy) history."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from forecasting import make_forecaster

# a series from a small description (day profile, weekend factor, noise, gaps): keeps examples small
profiles = st.lists(st.floats(0, 5000, allow_nan=False), min_size=24, max_size=24)
series_specs = st.tuples(profiles, st.floats(0, 2), st.floats(0, 0.5), st.floats(0, 0.3), st.integers(0, 2**31))


def as_series(spec: tuple[list[float], float, float, float, int], days: int = 15) -> pd.Series:
    profile, weekend, noise, gaps, seed = spec
    rng = np.random.default_rng(seed)
    idx = pd.date_range("2024-03-01", periods=24 * days, freq="1h", tz="UTC")
    base = np.tile(np.asarray(profile), days) * np.where(idx.dayofweek >= 5, weekend, 1.0)
    y = np.maximum(base * rng.lognormal(0.0, noise + 1e-9, len(idx)), 0.0)
    y[rng.random(len(idx)) < gaps] = np.nan
    return pd.Series(y, index=idx)


def check(fc: pd.DataFrame, horizon: int) -> None:
    assert len(fc) == horizon
    a = fc.to_numpy()
    assert np.isfinite(a).all()
    assert (fc["yhat_lower"] <= fc["yhat"]).all() and (fc["yhat"] <= fc["yhat_upper"]).all()
    assert (fc["yhat_lower"] >= 0).all()


@settings(max_examples=40, deadline=None)
@given(series_specs, st.sampled_from(["naive_weekly", "naive_daily"]), st.integers(1, 200))
def test_naive_intervals_contain_the_forecast(spec: tuple, name: str, horizon: int) -> None:
    y = as_series(spec)
    if y.notna().sum() < 2:
        return
    check(make_forecaster(name).fit(y).predict(horizon), horizon)


@settings(max_examples=8, deadline=None)
@given(series_specs)
def test_boosted_intervals_contain_the_forecast(spec: tuple) -> None:
    y = as_series(spec, days=36)
    if y.notna().sum() < 2:
        return
    check(make_forecaster("boosted", n_estimators=10).fit(y).predict(24), 24)
