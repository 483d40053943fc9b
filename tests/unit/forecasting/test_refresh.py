"""The forecast refresh rules (forecasting/refresh.py) and the ``Forecast`` record's bytes."""

from __future__ import annotations

import math

import orjson
import pandas as pd

from forecasting.refresh import RECHECK_S, Forecasted, RefreshSchedule, band_outcome, forecast_by_hour, recheck_mark, scheduled
from streams.records import Forecast, ForecastPoint, encode_orjson


def hourly(values: list[float]) -> pd.Series:
    return pd.Series(values, index=pd.date_range("2026-01-01", periods=len(values), freq="1h", tz="UTC"))


def test_scheduled_series_are_those_not_refreshed_for_refresh_s() -> None:
    refreshed = {"a": 1000.0, "b": 100.0}
    assert scheduled(["a", "b", "new"], refreshed, now=1500.0, refresh_s=600.0) == {"b": "schedule", "new": "schedule"}


def test_a_recheck_comes_after_30_s_or_after_the_refresh_period_if_shorter() -> None:
    assert recheck_mark(1000.0, 3600.0) + 3600.0 == 1000.0 + RECHECK_S
    assert recheck_mark(1000.0, 10.0) + 10.0 == 1010.0


def test_triggered_series_are_due_once_whatever_their_schedule() -> None:
    schedule = RefreshSchedule(refresh_s=3600.0, min_history_h=2)
    schedule.refreshed_at["a"] = 1000.0
    schedule.trigger(["a"], "event")
    assert schedule.due(["a"], now=1001.0) == {"a": "event"}
    assert schedule.due(["a"], now=1002.0) == {}


def test_select_fits_long_series_and_rechecks_short_ones_later() -> None:
    schedule = RefreshSchedule(refresh_s=3600.0, min_history_h=3)
    histories = {"long": hourly([1.0, 2.0, 3.0, 4.0]), "gappy": hourly([1.0, math.nan, math.nan, 4.0]), "young": hourly([1.0])}
    recorded = {"long": 4, "gappy": 4, "young": 1}
    looked_at: list[str] = []

    def known_hours(series_id: str) -> int:
        looked_at.append(series_id)
        return int(histories[series_id].notna().sum())

    jobs = schedule.select(schedule.due(histories, now=5000.0), recorded.__getitem__, known_hours, histories.__getitem__, now=5000.0)
    assert list(jobs) == ["long"] and jobs["long"][0] == "schedule" and jobs["long"][1] is histories["long"]
    assert "young" not in looked_at  # the cheap test first: a young series is not counted
    assert schedule.refreshed_at["long"] == 5000.0
    assert schedule.due(histories, now=5000.0 + RECHECK_S) == {"gappy": "schedule", "young": "schedule"}


def test_forecast_by_hour_keys_hours_as_the_history_does() -> None:
    f = Forecasted(4.5, 3.0, 6.0)
    assert forecast_by_hour([("2026-01-01T01:00:00+00:00", f)]) == {"1767229200": f}


def test_an_actual_is_inside_its_band_bounds_included() -> None:
    band = Forecasted(10.0, 8.0, 12.0)
    assert [band_outcome(v, band) for v in (7.99, 8.0, 10.0, 12.0, 12.01)] == ["below", "inside", "inside", "inside", "above"]


def test_a_forecast_record_has_the_bytes_of_the_hand_built_dict_it_replaced() -> None:
    points = [("2026-01-01T01:00:00+00:00", 1.5, 1.0, 2.0), ("2026-01-01T02:00:00+00:00", 1e17, -0.0, math.nan)]
    before = {
        "schema_version": 1,
        "series_id": "intersection/K1",
        "model": "boosted",
        "model_version": "1",
        "origin": "2026-01-01T00:00:00+00:00",
        "event_ids": ["e1"],
        "points": [{"timestamp": ts, "yhat": y, "yhat_lower": lo, "yhat_upper": hi} for ts, y, lo, hi in points],
        "event_time": "2026-01-01T00:00:05.123456+00:00",
        "trigger": "event",
    }
    record = Forecast(
        series_id="intersection/K1",
        model="boosted",
        model_version="1",
        origin="2026-01-01T00:00:00+00:00",
        event_ids=["e1"],
        points=[ForecastPoint(*p) for p in points],
        event_time="2026-01-01T00:00:05.123456+00:00",
        trigger="event",
    )
    assert encode_orjson(record) == orjson.dumps(before)
