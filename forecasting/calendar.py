"""Calendar regressors known years in advance: time of day, weekday, public holidays.

Holidays come from the ``holidays`` package for a country and optional subdivision
("US-MN", "DE-BY"), so the same code serves any city; observed (substitute) days count.
"""

from __future__ import annotations

from datetime import date
from functools import lru_cache

import numpy as np
import pandas as pd


def parse_holiday_spec(spec: str) -> tuple[str, str | None]:
    """``"US-MN"`` -> ``("US", "MN")``; ``"DE"`` -> ``("DE", None)``; unknown codes raise ValueError."""
    import holidays

    country, _, subdiv = spec.strip().partition("-")
    country = country.upper()
    supported = holidays.list_supported_countries()
    if country not in supported:
        raise ValueError(f"unknown holiday country {country!r} (ISO 3166-1 alpha-2, e.g. US, DE)")
    if subdiv:
        subdiv = subdiv.upper()
        if subdiv not in supported[country]:
            raise ValueError(f"unknown subdivision {subdiv!r} of {country}; known: {', '.join(supported[country][:12])} ...")
    return country, subdiv or None


@lru_cache(maxsize=64)
def _holiday_table(spec: str, first_year: int, last_year: int) -> dict[date, str]:
    import holidays

    country, subdiv = parse_holiday_spec(spec)
    return dict(holidays.country_holidays(country, subdiv=subdiv, years=range(first_year, last_year + 1)))


def holiday_dates(spec: str, start: date, end: date) -> dict[date, str]:
    """Public holidays (name by date) between two dates, inclusive."""
    table = _holiday_table(spec, start.year, end.year)
    return {d: n for d, n in table.items() if start <= d <= end}


def local_clock(index: pd.DatetimeIndex, timezone: str | None) -> pd.DatetimeIndex:
    """The wall clock people live by: hour of day and date are read in this zone."""
    return index.tz_convert(timezone) if timezone else index


def positions_back(index: pd.DatetimeIndex, days: int, timezone: str | None, steps_per_day: int) -> np.ndarray:
    """For each timestamp of a regular ``index``, the position of the same *local* time ``days``
    earlier (-1 where the index does not hold it).

    Commuters keep the wall clock: in the week after a daylight-saving change the morning peak
    sits at the same local hour as a week before, one UTC hour away from it. Lags taken by
    position on a UTC index were then an hour off, and day-ahead forecasts of the synthetic city
    were 4-5x worse for that week (docs/forecasting.md, "Daylight saving"). Without a zone this
    is the plain positional lag, and so it is for steps of a day or longer (a daily value has no
    clock time). A local time that did not exist or was ambiguous ``days`` earlier (one or two
    hours a year) has no position.
    """
    n = len(index)
    if timezone is None or index.tz is None or steps_per_day <= 1:
        pos = np.arange(n) - days * steps_per_day
        return np.where(pos >= 0, pos, -1)
    local = index.tz_convert(timezone).tz_localize(None) - pd.Timedelta(days=days)
    source = local.tz_localize(timezone, ambiguous="NaT", nonexistent="NaT").tz_convert(index.tz)
    return np.asarray(index.get_indexer(source), dtype=np.int64)


def values_back(values: pd.Series, days: int, timezone: str | None, steps_per_day: int) -> pd.Series:
    """``values`` at the same local time ``days`` earlier (:func:`positions_back`), NaN where unknown."""
    pos = positions_back(pd.DatetimeIndex(values.index), days, timezone, steps_per_day)
    raw = values.to_numpy(dtype=float)
    return pd.Series(np.where(pos >= 0, raw[np.maximum(pos, 0)], np.nan), index=values.index)


def holiday_flags(index: pd.DatetimeIndex, spec: str | None, timezone: str | None = None, offsets: tuple[int, ...] = (0,)) -> pd.DataFrame:
    """1.0 where the local date ``offset`` days from each timestamp is a public holiday.

    Offset 0 is the holiday itself; -1 / +1 mark the days after / before one (travel days);
    -7 marks "a week ago was a holiday", which tells a model that last week's value is unusual.
    """
    local = local_clock(index, timezone)
    days = local.normalize().tz_localize(None)
    cols: dict[str, np.ndarray] = {}
    if spec and len(index):
        lo = (days.min() + pd.Timedelta(days=min(offsets) - 1)).date()
        hi = (days.max() + pd.Timedelta(days=max(offsets) + 1)).date()
        hol = pd.DatetimeIndex(list(holiday_dates(spec, lo, hi)))
        for off in offsets:
            cols[_offset_name(off)] = np.asarray((days + pd.Timedelta(days=off)).isin(hol), dtype=float)
    else:
        for off in offsets:
            cols[_offset_name(off)] = np.zeros(len(index))
    return pd.DataFrame(cols, index=index)


def _offset_name(off: int) -> str:
    if off == 0:
        return "holiday"
    return f"holiday_in_{off}d" if off > 0 else f"holiday_{-off}d_ago"


def time_features(index: pd.DatetimeIndex, timezone: str | None = None) -> pd.DataFrame:
    """Hour of day (fractional), weekday, weekend flag and day of year on the local clock."""
    local = local_clock(index, timezone)
    return pd.DataFrame(
        {
            "hour": local.hour + local.minute / 60.0,
            "weekday": local.dayofweek.astype(float),
            "weekend": (local.dayofweek >= 5).astype(float),
            "dayofyear": local.dayofyear.astype(float),
        },
        index=index,
    )
