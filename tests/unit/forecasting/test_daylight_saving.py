"""Lags on the city's clock: the week after a daylight-saving change (forecasting.calendar.positions_back)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from forecasting import make_forecaster
from forecasting.calendar import positions_back

BERLIN = "Europe/Berlin"


def test_a_week_back_is_the_same_local_hour_across_both_changes() -> None:
    idx = pd.date_range("2026-03-20", "2026-11-05", freq="1h", tz="UTC")
    back = positions_back(idx, 7, BERLIN, 24)
    local = idx.tz_convert(BERLIN)
    ok = back >= 0
    src = local[back[ok]]
    days = local[ok].tz_localize(None).normalize() - src.tz_localize(None).normalize()
    assert (src.hour == local[ok].hour).all() and (days == pd.Timedelta(days=7)).all()
    # a UTC week back is an hour off in the week after each change: 168 vs 167 / 169 hours
    after_spring = idx.get_loc(pd.Timestamp("2026-03-30 06:00", tz="UTC"))
    after_autumn = idx.get_loc(pd.Timestamp("2026-10-26 06:00", tz="UTC"))
    assert after_spring - back[after_spring] == 167 and after_autumn - back[after_autumn] == 169
    # the hour that did not exist a week back (02:30 local on 29 March) has no source
    missing = idx.get_loc(pd.Timestamp("2026-04-05 00:00", tz="UTC"))  # 02:00 local, a week after the gap
    assert back[missing] == -1
    # without a zone: the positional lag, -1 before the start
    plain = positions_back(idx, 7, None, 24)
    assert plain[168] == 0 and plain[167] == -1 and (plain[200:] == np.arange(200, len(idx)) - 168).all()
    # daily values have no clock time: a week back is seven positions, across the change too
    days = pd.date_range("2026-10-01", "2026-11-10", freq="1D", tz="UTC")
    assert (positions_back(days, 7, BERLIN, 1)[7:] == np.arange(len(days) - 7)).all()


def _commuters(start: str, end: str) -> pd.Series:
    """Vehicles per hour with a sharp 07:30 peak on the *local* clock, weekdays only, some noise."""
    idx = pd.date_range(start, end, freq="1h", tz="UTC", inclusive="left")
    local = idx.tz_convert(BERLIN)
    h = local.hour + 0.5
    weekday = local.dayofweek < 5
    level = 80 + 900 * np.exp(-0.5 * ((h - 7.5) / 0.8) ** 2) * weekday + 500 * np.exp(-0.5 * ((h - 17) / 1.5) ** 2) * weekday
    rng = np.random.default_rng(4)
    return pd.Series(level * np.exp(rng.normal(0, 0.03, len(idx))), index=idx)


@pytest.mark.parametrize("model", ["boosted", "naive_weekly"])
def test_the_week_after_the_autumn_change_is_forecast_on_the_local_clock(model: str) -> None:
    """Day-ahead forecasts on the Monday after the change; with the city's zone the morning peak
    stays at 07:30 local, without it the forecast puts it an hour late (the synthetic city's
    figures: docs/forecasting.md)."""
    y = _commuters("2026-08-20", "2026-10-27 05:00")
    truth = _commuters("2026-10-27 05:00", "2026-10-28 05:00")  # Tuesday after the change
    errors = {}
    for zone in (BERLIN, None):
        options: dict[str, Any] = {"timezone": zone} if zone else {}
        if model == "boosted":
            options["horizon"] = 24
        fc = make_forecaster(model, **options).fit(y).predict(24)
        errors[zone] = float(np.mean(np.abs(fc["yhat"].to_numpy() - truth.to_numpy())))
    assert errors[BERLIN] < 0.4 * errors[None], errors


@settings(max_examples=60, deadline=None)
@given(
    zone=st.sampled_from(["Europe/Berlin", "America/Chicago", "Australia/Lord_Howe", "Asia/Kolkata", "America/Sao_Paulo", "UTC"]),
    start=st.datetimes(min_value=datetime(2015, 1, 1), max_value=datetime(2030, 1, 1)),
    freq=st.sampled_from([("15min", 96), ("30min", 48), ("1h", 24)]),
    days=st.integers(min_value=1, max_value=28),
)
def test_a_lag_is_the_same_wall_time_or_none(zone: str, start: datetime, freq: tuple[str, int], days: int) -> None:
    """Invariant: a found source shows exactly the wall time ``days`` earlier; where none is
    found, that wall time is before the index, or did not exist or was ambiguous in the zone."""
    idx = pd.date_range(pd.Timestamp(start).floor("1h").tz_localize("UTC"), periods=90 * freq[1], freq=freq[0])
    back = positions_back(idx, days, zone, freq[1])
    wall = idx.tz_convert(zone).tz_localize(None)
    want = wall - pd.Timedelta(days=days)
    found = back >= 0
    assert (wall[back[found]] == want[found]).all()
    for i in np.nonzero(~found)[0]:  # the zone has no one instant for that wall time, or the index lacks it
        (source,) = pd.DatetimeIndex([want[i]]).tz_localize(zone, ambiguous="NaT", nonexistent="NaT")
        assert pd.isna(source) or source.tz_convert("UTC") not in idx, (str(idx[i]), str(want[i]))
