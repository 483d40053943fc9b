"""Day-ahead forecasts around a daylight-saving change, on the synthetic city (stop 44).

``leitstand bench forecast-dst [--jobs N]`` prints its JSON. The city's demand follows the local
clock (Europe/Berlin); its history (``simulators.city.CityHistory``, counts from the same queue
model as the frames) spans the October change. For two intersections, daily origins in three
windows (the week after the change, weeks 2-4, after that) are forecast 24 h ahead by ``boosted``
and the weekly naive, each with the zone (lags at the same local time) and without (UTC
positions, what the worker did before ``LEITSTAND_FORECAST_TIMEZONE``). Needs no ``../shared``.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

ZONE = "Europe/Berlin"
#: (name, first hour, end) in UTC; the change was at 01:00 UTC on 25 October 2026
WINDOWS = (
    ("week after the change", "2026-10-25 23:00", "2026-11-01 23:00"),
    ("weeks 2-4 after", "2026-11-01 23:00", "2026-11-22 23:00"),
    ("after that", "2026-11-22 23:00", "2026-12-04 04:00"),
)


def dst_bench(jobs: int = 2, intersections: tuple[str, ...] = ("K1", "K5"), history_days: int = 120) -> dict[str, Any]:
    import pandas as pd

    from forecasting.backtest import rolling_origin
    from simulators.city import City, CityConfig, CityHistory

    city = City(CityConfig(intersections=12, pools=0, bus_lines=0, seed=1), datetime(2026, 12, 4, 5, tzinfo=timezone.utc), 3600)
    counts = list(CityHistory(city, history_days).counts())
    rows: list[dict[str, Any]] = []
    for iid in intersections:
        y = pd.Series({pd.Timestamp(t, unit="s", tz="UTC"): float(n) for i, t, n in counts if i == iid}).asfreq("1h")
        for window, lo, hi in WINDOWS:
            start, end = pd.Timestamp(lo, tz="UTC"), pd.Timestamp(hi, tz="UTC")
            origins = list(pd.date_range(start + pd.Timedelta("6h"), end - pd.Timedelta("24h"), freq="1D"))
            for model in ("boosted", "naive_weekly"):
                for zone in (ZONE, None):
                    options: dict[str, Any] = {"holidays": "DE-BY", **({"timezone": zone} if zone else {})}
                    figures = rolling_origin(y, origins, 24, model, options, jobs=jobs).summary()
                    rows.append(
                        {
                            "series": f"intersection/{iid}",
                            "window": window,
                            "model": model,
                            "clock": zone or "UTC",
                            "origins": figures["origins"],
                            "mae": round(figures["mae"], 1),
                            "coverage80": round(figures["coverage80"], 3),
                        }
                    )
    local = {(r["series"], r["window"], r["model"]): r["mae"] for r in rows if r["clock"] == ZONE}
    ratios = {
        f"{r['series']} {r['window']} {r['model']}": round(local[(r["series"], r["window"], r["model"])] / r["mae"], 3)
        for r in rows
        if r["clock"] == "UTC" and r["mae"]
    }
    return {
        "benchmark": "forecast-dst",
        "zone": ZONE,
        "history_days": history_days,
        "rows": rows,
        "mae_ratio_local_to_utc": ratios,
        "baseline": "the same forecasts with lags by UTC position (no zone), in the same run",
    }
