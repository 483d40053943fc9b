"""Synthetic traffic-like series for benchmarks and tests (no real data needed).

Weekday commuter peaks, flatter weekends, night lows, multiplicative noise and an occasional
missing reading: enough structure that a seasonal model has something to learn.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def traffic_series(
    days: int = 56, freq: str = "1h", seed: int = 0, level: float = 1000.0, start: str = "2024-01-01", missing: float = 0.0
) -> pd.Series:
    """A non-negative series on a UTC grid with weekly structure and noise."""
    rng = np.random.default_rng(seed)
    idx = pd.date_range(start, periods=int(pd.Timedelta(f"{days}D") / pd.Timedelta(freq)), freq=freq, tz="UTC")
    hour = idx.hour.to_numpy() + idx.minute.to_numpy() / 60.0
    weekend = idx.dayofweek.to_numpy() >= 5
    commute = np.exp(-0.5 * ((hour - 8) / 1.3) ** 2) + 0.9 * np.exp(-0.5 * ((hour - 17) / 1.6) ** 2)
    leisure = np.exp(-0.5 * ((hour - 14) / 3.0) ** 2)
    shape = np.where(weekend, 0.15 + 0.6 * leisure, 0.15 + 0.35 * leisure + commute)
    y = level * shape * rng.lognormal(0.0, 0.08, len(idx))
    if missing > 0:
        y[rng.random(len(idx)) < missing] = np.nan
    return pd.Series(y, index=idx, name=f"series-{seed}")
