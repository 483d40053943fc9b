"""forecasting.intervals: conformal intervals keep their promise on exchangeable errors, adapt to
drift, and are never NaN or inverted whatever the error record (issue 14). No shared data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from forecasting.intervals import (
    ConformalConfig,
    _replay_scores_slow,
    conformal_offsets,
    conformal_quantile,
    replay_scores,
    weekend,
)

HOUR_PROFILE = 0.3 + np.exp(-0.5 * ((np.arange(24) - 8) / 1.5) ** 2) + np.exp(-0.5 * ((np.arange(24) - 17) / 2.0) ** 2)


def record(days: int, seed: int, dist: str = "normal", start: str = "2024-01-01") -> pd.Series:
    """Exchangeable errors with a time-of-day scale (small at night, large in the peaks)."""
    rng = np.random.default_rng(seed)
    idx = pd.date_range(start, periods=24 * days, freq="1h", tz="UTC")
    return pd.Series(draw(rng, len(idx), dist) * np.tile(HOUR_PROFILE, days), index=idx)


def draw(rng: np.random.Generator, n: int, dist: str) -> np.ndarray:
    if dist == "normal":
        return rng.normal(0.0, 1.0, n)
    if dist == "t3":
        return rng.standard_t(3, n)
    return rng.lognormal(0.0, 0.7, n) - np.exp(0.245)  # skewed, mean ~0


def future_day(r: pd.Series) -> pd.DatetimeIndex:
    return pd.date_range(r.index[-1] + pd.Timedelta("1h"), periods=24, freq="1h")


def test_conformal_quantile_is_the_split_conformal_rank_and_inf_when_too_few() -> None:
    s = np.arange(1.0, 20.0)  # 19 scores: rank ceil(20 * 0.8) = 16
    assert conformal_quantile(s, 0.8) == 16.0
    assert conformal_quantile(s[:3], 0.8) == np.inf  # 3 scores cannot give 80 %: (3 + 1) * 0.8 > 3
    assert conformal_quantile(np.array([np.nan, 1.0, 2.0, 3.0, 4.0, 5.0]), 0.5) == 3.0
    # an unseen block of points (one forecast day) needs more scores for the same level
    assert conformal_quantile(s, 0.8, unseen_weight=4.0) == 19.0  # 0.8 * 23 = 18.4: rank 19
    assert conformal_quantile(s, 0.8, unseen_weight=5.0) == np.inf  # 0.8 * 24 > 19
    # recent scores weigh more: old small scores count less, so the quantile rises
    w = np.linspace(0.1, 1.0, len(s))
    assert conformal_quantile(s, 0.8, w) >= 16.0


def test_exchangeable_errors_are_covered_near_nominal_on_average() -> None:
    """Over many calibration records (three error laws), coverage of fresh errors is ~80 %."""
    rng = np.random.default_rng(99)
    covered = []
    for seed in range(60):
        dist = ("normal", "t3", "skewed")[seed % 3]
        r = record(56, seed, dist)
        lo, hi = conformal_offsets(r, future_day(r))
        fresh = draw(rng, 24 * 40, dist).reshape(40, 24) * HOUR_PROFILE
        covered.append(np.mean((fresh >= lo) & (fresh <= hi)))
    assert 0.78 <= np.mean(covered) <= 0.86, np.mean(covered)


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2**31 - 1), st.sampled_from(["normal", "t3", "skewed"]), st.integers(20, 56))
def test_coverage_of_one_calibration_is_near_nominal(seed: int, dist: str, days: int) -> None:
    r = record(days, seed, dist)
    lo, hi = conformal_offsets(r, future_day(r))
    fresh = draw(np.random.default_rng(seed + 1), 24 * 200, dist).reshape(200, 24) * HOUR_PROFILE
    cov = np.mean((fresh >= lo) & (fresh <= hi))
    assert 0.62 <= cov <= 0.97, cov  # one record's conditional coverage scatters around 0.8
    # the shape follows the hour of day: the 8 am peak is wider than 3 am
    assert (hi - lo)[8] > (hi - lo)[3]


def test_interval_widens_when_errors_grow_recently() -> None:
    r = record(56, 3)
    grown = r.copy()
    grown.iloc[-24 * 10 :] *= 3.0  # the last ten days: three times the error
    lo, hi = conformal_offsets(r, future_day(r))
    glo, ghi = conformal_offsets(grown, future_day(r))
    assert np.mean(ghi - glo) > 1.8 * np.mean(hi - lo)


residual_values = st.one_of(
    st.floats(-1e6, 1e6, allow_nan=False),
    st.just(0.0),
    st.just(float("nan")),
    st.just(float("inf")),
    st.just(float("-inf")),
)


@settings(max_examples=80, deadline=None)
@given(
    st.lists(residual_values, min_size=0, max_size=24 * 40),
    st.sampled_from(["1h", "30min", "1D"]),
    st.integers(1, 72),
    st.booleans(),
)
def test_offsets_are_never_nan_or_inverted(values: list[float], freq: str, horizon: int, scaled: bool) -> None:
    idx = pd.date_range("2024-05-01", periods=len(values), freq=freq, tz="UTC")
    r = pd.Series(values, index=idx, dtype=float)
    start = idx[-1] if len(idx) else pd.Timestamp("2024-05-01", tz="UTC")
    future = pd.date_range(start + pd.Timedelta(freq), periods=horizon, freq=freq)
    scale = np.linspace(0.5, 2.0, horizon) if scaled else None
    lo, hi = conformal_offsets(r, future, scale=scale)
    assert lo.shape == hi.shape == (horizon,)
    assert np.isfinite(lo).all() and np.isfinite(hi).all()
    assert (lo <= 0).all() and (hi >= 0).all()


def test_degenerate_records() -> None:
    fut = pd.date_range("2024-02-01", periods=24, freq="1h", tz="UTC")
    lo, hi = conformal_offsets(pd.Series(dtype=float), fut)
    assert (lo == 0).all() and (hi == 0).all()
    zeros = pd.Series(0.0, index=pd.date_range("2024-01-01", periods=24 * 30, freq="1h", tz="UTC"))
    lo, hi = conformal_offsets(zeros, fut)  # a model that never erred: a zero-width interval
    assert (lo == 0).all() and (hi == 0).all()
    short = record(2, 1)  # too short to replay: plain split conformal per hour
    lo, hi = conformal_offsets(short, future_day(short))
    assert (lo <= 0).all() and (hi >= 0).all() and (hi - lo).max() > 0


@settings(max_examples=40, deadline=None)
@given(
    st.integers(0, 2**31 - 1),
    st.integers(2, 40),
    st.floats(0, 0.7),
    st.sampled_from([("28D", "3D", 1), ("7D", "7D", 2), ("14D", "1D", 0)]),
    st.sampled_from([None, weekend]),
)
def test_vectorised_replay_equals_the_block_by_block_reference(
    seed: int, days: int, gaps: float, cfg: tuple[str, str, int], day_type: object
) -> None:
    r = record(days, seed)
    rng = np.random.default_rng(seed)
    r[rng.random(len(r)) < gaps] = np.nan
    r = r.dropna()
    config = ConformalConfig(window=cfg[0], warmup=cfg[1], neighbours=cfg[2])
    a, b = replay_scores(r, config, day_type=day_type), _replay_scores_slow(r, config, day_type=day_type)  # type: ignore[arg-type]
    assert a.index.equals(b.index)
    np.testing.assert_allclose(a.to_numpy(), b.to_numpy())


@pytest.mark.parametrize("name", ["naive_weekly", "naive_daily", "boosted"])
def test_forecasters_cover_a_synthetic_series_near_nominal(name: str) -> None:
    """End to end: the models' own intervals on synthetic traffic cover 70-92 %."""
    from forecasting import make_forecaster
    from forecasting.backtest import origins_between, rolling_origin
    from forecasting.synthetic import traffic_series

    y = traffic_series(days=84, seed=5, level=500.0)
    y.index.freq = pd.Timedelta("1h")
    origins = origins_between(y.index[24 * 70], y.index[24 * 83], pd.Timedelta("1D"))
    options = {"n_estimators": 30} if name == "boosted" else {}
    r = rolling_origin(y, origins, 24, name, options)
    s = r.summary()
    assert 0.7 <= s["coverage80"] <= 0.92, s
    assert s["winkler80"] is not None and s["winkler80"] > 0
    assert make_forecaster(name) is not None


def test_hours_are_read_on_the_given_clock() -> None:
    """Errors peak at 8 am Berlin time, across the change to summer time (31 March 2024): on the
    local clock the peak stays in its hour; on UTC it smears over two, widening 10 am too."""
    idx = pd.date_range("2024-03-05", "2024-04-10 23:00", freq="1h", tz="UTC")
    local_hour = idx.tz_convert("Europe/Berlin").hour.to_numpy()
    rng = np.random.default_rng(4)
    r = pd.Series(rng.normal(0, 1, len(idx)) * np.where(local_hour == 8, 10.0, 1.0), index=idx)
    fut = pd.date_range(idx[-1] + pd.Timedelta("1h"), periods=24, freq="1h")
    at = fut.tz_convert("Europe/Berlin").hour.to_numpy()
    lo, hi = conformal_offsets(r, fut, timezone="Europe/Berlin")
    ulo, uhi = conformal_offsets(r, fut)
    width, uwidth = hi - lo, uhi - ulo
    assert width[at == 10][0] < 0.4 * width[at == 8][0]
    assert uwidth[at == 10][0] > 1.3 * width[at == 10][0]


def test_boosted_band_follows_a_spread_that_depends_on_the_day() -> None:
    """Noise four times larger on weekends: the default (CQR) band is wider on weekend hours and
    covers them near nominal, where the per-hour replay band (one width for all days of an hour)
    misses far more weekend points. It fails if the band stops depending on the calendar."""
    from forecasting.backtest import origins_between, rolling_origin

    rng = np.random.default_rng(11)
    days = 140
    idx = pd.date_range("2024-01-01", periods=24 * days, freq="1h", tz="UTC")
    noisy = np.asarray(weekend(idx), dtype=bool)
    y = pd.Series(500.0 * np.tile(HOUR_PROFILE, days) + rng.normal(0, 1, len(idx)) * np.where(noisy, 80.0, 20.0), index=idx)
    y.index.freq = pd.Timedelta("1h")
    origins = origins_between(idx[24 * 112], idx[24 * 139], pd.Timedelta("1D"))

    def outcome(interval: str) -> tuple[float, float, float, float]:
        r = rolling_origin(y, origins, 24, "boosted", {"n_estimators": 30, "interval": interval})
        p = r.points.dropna(subset=["y"])
        inside = ((p["y"] >= p["yhat_lower"]) & (p["y"] <= p["yhat_upper"])).to_numpy()
        width = (p["yhat_upper"] - p["yhat_lower"]).to_numpy()
        we = np.asarray(weekend(pd.DatetimeIndex(p["timestamp"])), dtype=bool)
        return inside[we].mean(), inside[~we].mean(), width[we].mean(), width[~we].mean()

    cov_we, cov_wd, width_we, width_wd = outcome("cqr")
    assert width_we > 2.0 * width_wd, (width_we, width_wd)
    assert cov_we >= 0.7 and cov_wd >= 0.7, (cov_we, cov_wd)
    replay_we, *_ = outcome("replay")
    assert replay_we < cov_we - 0.1, (replay_we, cov_we)


def test_boosted_refuses_an_unknown_interval_method() -> None:
    from forecasting import make_forecaster

    with pytest.raises(ValueError, match="interval must be one of cqr, replay"):
        make_forecaster("boosted", interval="guess")
