"""Interval benchmark on the NAB development series long enough for day-ahead forecasts (issue 14).

``leitstand bench forecast-intervals [--data DIR] [--jobs N]`` prints its JSON. Protocol (the one of
docs/forecasting.md's unseen check): each CSV of ``DIR/*/*.csv`` spanning at least
``min_days`` is averaged per hour; day-ahead forecasts (24 steps) from daily origins, the first
9 days after the first midnight, the last one day before the last; the model is refitted on all
data before each origin; ``US-MN`` holidays for realTraffic (Minnesota DOT), none elsewhere.
Each series gets the default model and the weekly naive (the MASE ratio's denominator).

The calibration constants of :mod:`forecasting.intervals` were chosen on the series in
:data:`TUNING` only; the rest (and Metro Interstate) are held out.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

#: the series the interval constants were chosen on (in-sample); every other series is held out
TUNING = ("TravelTime_451", "TravelTime_387", "cpu_utilization_asg_misconfiguration")


def nab_interval_bench(data: Path, jobs: int = 1, min_days: int = 42, models: tuple[str, ...] = ("boosted",)) -> dict[str, Any]:
    import numpy as np
    import pandas as pd

    from forecasting.backtest import mase_ratio, rolling_origin

    from .forecast_input import prepare_backtest, read_table

    rows: list[dict[str, Any]] = []
    pooled: dict[str, list[Any]] = {"tuning": [], "held_out": []}
    for path in sorted(data.glob("*/*.csv")):
        t = read_table(path, "timestamp", ["value"]).index
        if t.max() - t.min() < pd.Timedelta(days=min_days):
            continue
        first = (t.min().normalize() + pd.Timedelta("9D")).isoformat()
        last = (t.max().normalize() - pd.Timedelta("1D")).isoformat()
        holidays = "US-MN" if path.parent.name == "realTraffic" else None
        prep = prepare_backtest(path, "timestamp", "value", "1h", 24, first, last, "1D", holidays, None, [])
        options = {"holidays": holidays} if holidays else {}
        base = rolling_origin(prep.series, prep.origins, 24, "naive_weekly", {}, None, None, jobs=jobs)
        for name in models:
            r = rolling_origin(prep.series, prep.origins, 24, name, options, None, None, jobs=jobs)
            ratio = mase_ratio(r, base)
            role = "tuning" if path.stem in TUNING else "held_out"
            p = r.points.dropna(subset=["y"])
            pooled[role].append(((p["y"] >= p["yhat_lower"]) & (p["y"] <= p["yhat_upper"])).to_numpy())
            rows.append(
                {
                    "series": f"{path.parent.name}/{path.stem}",
                    "role": role,
                    **r.summary(),
                    "mase_ratio_to_weekly_naive": round(ratio, 4) if ratio is not None else None,
                    "naive_weekly_coverage80": base.summary()["coverage80"],
                }
            )
            print(f"{path.stem} {name}: coverage {rows[-1]['coverage80']} ratio {rows[-1]['mase_ratio_to_weekly_naive']}", file=sys.stderr)
    return {
        "protocol": f"NAB series spanning >= {min_days} days, hourly means, day-ahead (24 steps), daily origins "
        "first midnight + 9D .. last midnight - 1D, all history before each origin; US-MN holidays for realTraffic",
        "tuning_series": list(TUNING),
        "pooled_coverage80": {k: round(float(np.concatenate(v).mean()), 4) if v else None for k, v in pooled.items()},
        "results": rows,
    }
