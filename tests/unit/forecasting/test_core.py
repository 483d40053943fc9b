"""The forecasting core: cleaning, baselines, the backtest protocol, MASE, the boosted model.

Small synthetic series only (no ../shared data), so the whole file runs in seconds.
"""

from __future__ import annotations

import pickle
from typing import Any

import numpy as np
import pandas as pd
import pytest

from forecasting import DEFAULT_MODEL, FORECASTER_NAMES, clean_series, fit_predict, make_forecaster, process_pool
from forecasting.backtest import origins_between, rolling_origin
from forecasting.metrics import coverage, mase, naive_scale, smape
from forecasting.synthetic import traffic_series


def hourly(values: np.ndarray, start: str = "2024-01-01") -> pd.Series:
    return pd.Series(values, index=pd.date_range(start, periods=len(values), freq="1h", tz="UTC"))


# --- cleaning ---------------------------------------------------------------------------------


def test_clean_series_averages_duplicates_fills_gaps_and_reads_naive_times_as_utc() -> None:
    raw = pd.Series(
        [1.0, 3.0, 5.0, 7.0], index=pd.to_datetime(["2024-01-01 02:00", "2024-01-01 00:00", "2024-01-01 00:00", "2024-01-01 03:00"])
    )
    y = clean_series(raw, "1h")
    assert str(y.index.tz) == "UTC"
    assert list(y.index.hour) == [0, 1, 2, 3]
    assert y.iloc[0] == 4.0  # the two readings at midnight, averaged
    assert np.isnan(y.iloc[1])  # the missing hour stays visible as a gap
    assert y.index.freq == pd.Timedelta("1h")


def test_clean_series_bins_jittered_readings_and_infers_the_step() -> None:
    t = pd.date_range("2024-01-01", periods=50, freq="5min", tz="UTC") + pd.to_timedelta(np.arange(50) % 3, unit="s")
    y = clean_series(pd.Series(np.arange(50.0), index=t))
    assert y.index.freq == pd.Timedelta("5min")
    assert len(y) == 50 and y.notna().all()


# --- baselines ----------------------------------------------------------------------------------


def test_weekly_naive_copies_last_week_and_falls_back_over_gaps() -> None:
    y = traffic_series(days=21, seed=3)
    last_week = y.iloc[-168:-144].to_numpy()
    y.iloc[-168] = np.nan  # last week's value for the first forecast hour is missing
    fc = make_forecaster("naive_weekly").fit(y).predict(24)
    assert fc.index[0] == y.index[-1] + pd.Timedelta("1h")
    assert fc["yhat"].iloc[0] == y.iloc[-2 * 168]  # two weeks back instead
    assert np.allclose(fc["yhat"].to_numpy()[1:], last_week[1:])


def test_daily_naive_copies_yesterday() -> None:
    y = traffic_series(days=10, seed=4)
    fc = make_forecaster("naive_daily").fit(y).predict(48)
    assert np.allclose(fc["yhat"].to_numpy()[:24], y.iloc[-24:].to_numpy())
    assert np.allclose(fc["yhat"].to_numpy()[24:], y.iloc[-24:].to_numpy())  # repeats the season
    width = (fc["yhat_upper"] - fc["yhat_lower"]).to_numpy()
    assert (width[24:] >= width[:24] - 1e-9).all()  # further ahead, no narrower


# --- metrics --------------------------------------------------------------------------------


def test_naive_scale_is_the_weekly_naive_error_before_the_origin_and_skips_gaps() -> None:
    y = hourly(np.arange(24 * 21, dtype=float))  # rises by 168 per week
    y.iloc[200] = np.nan
    origin = y.index[24 * 14]
    assert naive_scale(y, origin) == pytest.approx(168.0)
    y.iloc[24 * 14 :] = 1e9  # nothing at or after the origin counts
    assert naive_scale(y, origin) == pytest.approx(168.0)


def test_mase_smape_coverage() -> None:
    y, f = np.array([10.0, 20.0, 0.0]), np.array([12.0, 16.0, 0.0])
    assert mase(y, f, scale=2.0) == pytest.approx(1.0)
    assert smape(y, f) == pytest.approx(100 * (2 * 2 / 22 + 2 * 4 / 36 + 0) / 3)
    assert coverage(y, f - 3, f + 3) == pytest.approx(2 / 3)


def test_weekly_naive_on_a_weekly_periodic_series_has_zero_mase() -> None:
    week = np.random.default_rng(0).uniform(10, 100, 168)
    y = hourly(np.tile(week, 5) + np.repeat([0.0, 5.0, 0.0, 5.0, 0.0], 168))  # alternating weeks
    y.index.freq = pd.Timedelta("1h")
    origins = origins_between(y.index[24 * 30], y.index[24 * 32], pd.Timedelta("1D"))
    r = rolling_origin(y, origins, 24, "naive_daily" if False else "naive_weekly")
    s = r.summary()
    assert r.scale == pytest.approx(5.0)
    assert s["origins"] == 3 and s["points"] == 72
    assert s["mase"] == pytest.approx(np.mean(np.abs(r.points["y"] - r.points["yhat"])) / 5.0)


# --- the protocol: nothing at or after an origin is seen -----------------------------------


def test_each_fit_sees_only_data_strictly_before_its_origin() -> None:
    y = traffic_series(days=40, seed=1)
    y.index.freq = pd.Timedelta("1h")
    reg = pd.DataFrame({"temp": np.arange(len(y) + 48, dtype=float)}, index=pd.date_range(y.index[0], periods=len(y) + 48, freq="1h"))
    seen: list[dict[str, Any]] = []

    def recording(
        name: str | None,
        history: pd.Series,
        regressors: pd.DataFrame | None,
        horizon: int,
        future_regressors: pd.DataFrame | None,
        **options: Any,
    ) -> pd.DataFrame:
        seen.append({"history": history, "regressors": regressors, "future": future_regressors, "options": options})
        idx = pd.date_range(history.index[-1] + pd.Timedelta("1h"), periods=horizon, freq="1h")
        return pd.DataFrame({"yhat": 1.0, "yhat_lower": 0.0, "yhat_upper": 2.0}, index=idx)

    origins = origins_between(y.index[24 * 20], y.index[24 * 38], pd.Timedelta("3D"))
    r = rolling_origin(y, origins, 24, "whatever", {"holidays": "US"}, reg, pd.Timedelta("14D"), fit_predict_fn=recording)
    assert len(seen) == len(origins)
    for origin, call in zip(origins, seen):
        h = call["history"]
        assert h.index.max() == origin - pd.Timedelta("1h")  # strictly before, and right up to it
        assert h.index.min() >= origin - pd.Timedelta("14D")
        assert call["regressors"].index.equals(h.index)
        assert (call["future"].index == pd.date_range(origin, periods=24, freq="1h")).all()
        assert call["options"] == {"holidays": "US"}
    assert (r.points["timestamp"] >= r.points["origin"]).all()


@pytest.mark.parametrize("name", ["naive_weekly", "boosted"])
def test_changing_the_future_does_not_change_a_backtest_forecast(name: str) -> None:
    y = traffic_series(days=45, seed=2)
    y.index.freq = pd.Timedelta("1h")
    origin = y.index[24 * 44]
    a = rolling_origin(y, [origin], 24, name, {"n_estimators": 20} if name == "boosted" else {})
    poisoned = y.copy()
    poisoned[poisoned.index >= origin] = 1e6
    b = rolling_origin(poisoned, [origin], 24, name, {"n_estimators": 20} if name == "boosted" else {})
    assert np.allclose(a.points["yhat"], b.points["yhat"])


# --- the interface the stream side calls ------------------------------------------------------


def test_registry_and_errors() -> None:
    assert DEFAULT_MODEL in FORECASTER_NAMES
    assert make_forecaster().name == DEFAULT_MODEL
    with pytest.raises(ValueError, match="unknown forecaster"):
        make_forecaster("crystal_ball")
    for name in FORECASTER_NAMES:
        m = make_forecaster(name)
        assert m.name == name and m.version


def test_boosted_forecasts_a_weekly_pattern_better_than_yesterday_and_refuses_longer_horizons() -> None:
    y = traffic_series(days=63, seed=5)
    truth = traffic_series(days=64, seed=5).iloc[-24:]  # same generator: the next day's shape
    m = make_forecaster("boosted", horizon=24, holidays="US").fit(y.iloc[:-24])
    fc = m.predict(24)
    assert list(fc.columns) == ["yhat", "yhat_lower", "yhat_upper"]
    assert fc.index.equals(y.index[-24:])
    err = np.abs(fc["yhat"].to_numpy() - y.iloc[-24:].to_numpy()).mean()
    assert err < 0.5 * y.mean()
    assert truth is not None
    with pytest.raises(ValueError, match="horizon"):
        m.predict(48)


def test_fit_predict_runs_in_a_process_pool_with_regressors() -> None:
    y = traffic_series(days=35, seed=6)
    reg = pd.DataFrame({"rain": np.zeros(len(y) + 24)}, index=pd.date_range(y.index[0], periods=len(y) + 24, freq="1h"))
    pickle.dumps(fit_predict)
    with process_pool(1) as pool:
        fc = pool.submit(fit_predict, "boosted", y, reg.iloc[:-24], 24, reg.iloc[-24:], n_estimators=20).result(timeout=120)
    assert len(fc) == 24 and (fc["yhat"] >= 0).all()


def test_prophet_traffic_is_non_negative_with_holidays_and_regressors() -> None:
    y = traffic_series(days=21, seed=7)
    reg = pd.DataFrame({"event_attendance": 0.0}, index=pd.date_range(y.index[0], periods=len(y) + 24, freq="1h"))
    m = make_forecaster("prophet_traffic", holidays="US", uncertainty_samples=50)
    fc = m.fit(y, reg.iloc[:-24]).predict(24, reg.iloc[-24:])
    assert (fc["yhat_lower"] >= 0).all()
    assert (fc["yhat_lower"] <= fc["yhat"]).all() and (fc["yhat"] <= fc["yhat_upper"]).all()


# --- issue 10 #10: figures are finite or None with a reason; work is known before the run ------


def test_scores_are_finite_or_none_with_a_reason() -> None:
    from forecasting.metrics import scores

    y, f = np.array([10.0, 0.0, 20.0]), np.array([12.0, 0.0, 20.0])
    figures, reasons = scores(y, f, f - 1, f + 1, scale=2.0)
    assert figures == {
        "mae": pytest.approx(2 / 3, abs=1e-4),
        "mase": pytest.approx(1 / 3, abs=1e-4),
        "smape": pytest.approx(100 * (4 / 22) / 3, abs=1e-3),
        "coverage80": pytest.approx(2 / 3, abs=1e-4),
        # widths 2 each; the miss at 10 (interval 11..13) costs 10 * 1: (2 + 12 + 2) / 3
        "winkler80": pytest.approx(16 / 3, abs=1e-4),
        "msis80": pytest.approx(8 / 3, abs=1e-4),
    }
    assert reasons == {}
    # zero scale (a constant history): MASE undefined, not Infinity; the rest is still scored
    figures, reasons = scores(y, f, f - 1, f + 1, scale=0.0)
    assert figures["mase"] is None and "undefined" in reasons["mase"] and figures["mae"] is not None
    # a model that emits Infinity/NaN: nothing is scored, and the reason says why
    figures, reasons = scores(y, np.array([1.0, np.inf, np.nan]), f, f, scale=1.0)
    assert set(figures.values()) == {None} and all("2 non-finite forecasts" in r for r in reasons.values())
    # huge finite values neither overflow sMAPE nor give a 0.0 that hides the error
    big = np.array([1e308, -1e308])
    figures, _ = scores(big, -big, -big, big, scale=1.0)
    assert figures["smape"] == 200.0
    assert figures["mase"] is None or np.isfinite(figures["mase"])
    figures, reasons = scores(np.array([]), np.array([]), np.array([]), np.array([]), scale=1.0)
    assert set(figures.values()) == {None} and "no observed value" in reasons["mase"]


def test_smape_zero_denominator_counts_as_perfect() -> None:
    assert smape(np.array([0.0, 0.0]), np.array([0.0, 0.0])) == 0.0
    assert smape(np.array([0.0, 5.0]), np.array([1.0, 5.0])) == pytest.approx(100.0)  # (200 + 0) / 2


def test_naive_scale_of_a_constant_history_raises_and_the_backtest_reports_why() -> None:
    y = hourly(np.full(24 * 20, 7.0))
    y.index.freq = pd.Timedelta("1h")
    with pytest.raises(ValueError, match="no error"):
        naive_scale(y, y.index[24 * 14])
    r = rolling_origin(y, [y.index[24 * 14]], 24, "naive_weekly")
    s = r.summary()
    assert s["mase"] is None and "no error" in s["not_computed"]["mase"] and s["mae"] == 0.0


def test_estimate_work_matches_the_backtest_it_describes() -> None:
    from forecasting.backtest import count_origins, estimate_work

    y = traffic_series(days=40, seed=2)
    y.index.freq = pd.Timedelta("1h")
    step, every = pd.Timedelta("1h"), pd.Timedelta("1D")
    first, last = y.index[24 * 20], y.index[24 * 38]
    for window in (None, pd.Timedelta("14D"), pd.Timedelta("30D")):
        est = estimate_work(y.index[0], y.index[-1], first, last, every, step, 24, window)
        seen: list[int] = []

        def spy(name: str, hist: pd.Series, *args: Any, seen: list[int] = seen, **kw: Any) -> pd.DataFrame:
            seen.append(len(hist))
            return fit_predict(name, hist, *args, **kw)

        calls: list[tuple[int, int]] = []

        def progress(done: int, total: int, calls: list[tuple[int, int]] = calls) -> None:
            calls.append((done, total))

        r = rolling_origin(
            y,
            origins_between(first, last, every),
            24,
            "naive_weekly",
            train_window=window,
            fit_predict_fn=spy,
            progress=progress,
        )
        assert est.origins == count_origins(first, last, every) == len(seen) == 19
        assert est.history_steps == sum(seen), window
        assert est.points == len(r.points) == 19 * 24
        assert calls == [(i, 19) for i in range(1, 20)]
    far = estimate_work(y.index[0], y.index[-1], first, last, every, step, 1000)
    assert far.grid_steps == int((last - y.index[0]) / step) + 1000
