"""``leitstand bench probe-warning``: does the early warning warn of pump failures before the
water leaves its legal band, and how often does it speak when nothing is wrong?

Weeks of the synthetic city's pools (``simulators/city/pools.py``: the water stepped through
bather load, dosing pumps and probe noise; pump failures and probe faults injected at
``rate`` per pool and day after the warm-up, with the true water's band violations as ground
truth). Each threshold runs the real core (``detection.probe_warning.PoolWarnings``). Scored:

* a pump failure (chlorine or acid pump stopped) is *warned* by a warning on one of the
  parameters that pump moves, from its start to 30 min after its end; *lead* is how long before
  the true water left its band that warning came (failures the water survived within the
  band have no lead);
* a *false* warning is one farther than 30 min before / 60 min after every injected incident
  (pump or probe fault), counted per pool and day after the warm-up.

Baseline in the same run: the pre-alarm a pool controller offers (a narrowed band: the legal
band moved inward by 20 % of its width, 20 mV above the redox floor, with the water rules'
30 s minimum duration), on the same probe readings.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from datetime import datetime, timezone
from typing import Any

PUMP_PARAMETERS = {"dosing_failure": ("free_chlorine", "redox"), "ph_pump_failure": ("ph", "redox")}
INCIDENT_KINDS = (*PUMP_PARAMETERS, "sensor_stuck", "sensor_spike")
WARN_AFTER_END_S, FALSE_BEFORE_S, FALSE_AFTER_S = 1800.0, 1800.0, 3600.0


def _pre_alarm_limits() -> Any:
    from detection.water_rules import limits_for

    base = limits_for("swimmer")
    narrowed: dict[str, dict[str, float | None]] = {}
    for parameter in ("free_chlorine", "ph", "redox"):
        band = base.bands[parameter]
        if band.low is not None and band.high is not None:
            margin = 0.2 * (band.high - band.low)
            narrowed[parameter] = {"low": band.low + margin, "high": band.high - margin}
        elif band.low is not None:
            narrowed[parameter] = {"low": band.low + 20.0}
    return limits_for("swimmer", narrowed)


def pre_alarm_warnings(readings: Iterable[tuple[float, dict[str, float], int]]) -> list[tuple[float, str]]:
    """(time, parameter) of every pre-alarm raise on one pool's readings."""
    from detection.water_rules import evaluate

    limits, state, out = _pre_alarm_limits(), None, []
    for t, values, _ in readings:
        state, verdicts = evaluate(state, t, {p: v for p, v in values.items() if p in ("free_chlorine", "ph", "redox")}, limits)
        out += [(t, v.parameter) for v in verdicts if v.violated]
    return out


def detector_warnings(pool_id: str, readings: Iterable[tuple[float, dict[str, float], int]], threshold: float) -> list[tuple[float, str]]:
    from detection.probe_warning import KIND_PREFIX, PoolWarnings, WarningLimits

    w = PoolWarnings(WarningLimits(threshold=threshold))
    out = []
    for t, values, _ in readings:
        out += [(t, tr.kind.removeprefix(KIND_PREFIX)) for tr in w.observe(pool_id, t, values).triggers]
    return out


def score(warnings: Sequence[tuple[float, str]], truth: Sequence[Any], after: float) -> dict[str, Any]:
    """Warned failures, leads before the band violation, false warnings (see the module doc)."""
    pumps = [g for g in truth if g.kind in PUMP_PARAMETERS and g.start >= after]
    incidents = [g for g in truth if g.kind in INCIDENT_KINDS]
    violations = [g for g in truth if g.kind == "water_violation"]
    warned, leads, violated = 0, [], 0
    for g in pumps:
        hits = [t for t, p in warnings if g.start <= t <= g.end + WARN_AFTER_END_S and p in PUMP_PARAMETERS[g.kind]]
        broke = [v.start for v in violations if g.start <= v.start <= g.end + FALSE_AFTER_S]
        violated += bool(broke)
        if hits:
            warned += 1
            if broke and min(hits) < min(broke):
                leads.append((min(broke) - min(hits)) / 60.0)
    false = [t for t, _ in warnings if t >= after and not any(g.start - FALSE_BEFORE_S <= t <= g.end + FALSE_AFTER_S for g in incidents)]
    return {"pump_failures": len(pumps), "failures_the_band_caught": violated, "warned": warned, "warned_before_the_band": len(leads),
            "lead_min_median": round(statistics.median(leads), 1) if leads else None, "false": len(false)}  # fmt: skip


def _merge(rows: list[dict[str, Any]], pool_days: float) -> dict[str, Any]:
    total = {k: sum(r[k] for r in rows) for k in ("pump_failures", "failures_the_band_caught", "warned", "warned_before_the_band", "false")}
    leads = [r["lead_min_median"] for r in rows if r["lead_min_median"] is not None]
    total["lead_min_median_of_pools"] = round(statistics.median(leads), 1) if leads else None
    total["false_per_pool_day"] = round(total["false"] / pool_days, 4) if pool_days else None
    return total


def probe_warning_benchmark(
    days: int,
    pools: int,
    seeds: Sequence[int],
    thresholds: Sequence[float],
    rate: float = 0.2,
    interval_s: float = 60.0,
    progress: Callable[[str], None] = lambda _: None,
) -> dict[str, Any]:
    from detection.probe_warning import WarningLimits
    from simulators.city.pools import simulate_pool
    from simulators.city.types import CityConfig

    warmup_s = WarningLimits().warmup_s
    if days * 86_400 <= warmup_s:
        raise ValueError(f"--days must be more than the {warmup_s / 86_400:g} days of warm-up")
    t0 = datetime(2026, 5, 4, tzinfo=timezone.utc).timestamp()
    pool_days = pools * (days - warmup_s / 86_400)
    per_seed = []
    for seed in seeds:
        config = replace(
            CityConfig(), seed=seed, pools=pools, pool_interval_s=interval_s, dosing_failures_per_pool_day=rate,
            sensor_faults_per_pool_day=rate, warmup_s=warmup_s,
        )  # fmt: skip
        rows: dict[str, list[dict[str, Any]]] = {f"{th:g}": [] for th in thresholds}
        rows["pre_alarm"] = []
        for p in range(pools):
            pool_id = f"pool-{p + 1}"
            progress(f"seed {seed}, {pool_id}")
            run = simulate_pool(config, pool_id, t0, t0 + days * 86_400, [])
            for th in thresholds:
                rows[f"{th:g}"].append(score(detector_warnings(pool_id, run.readings, th), run.truth, t0 + warmup_s))
            rows["pre_alarm"].append(score(pre_alarm_warnings(run.readings), run.truth, t0 + warmup_s))
        baseline = _merge(rows.pop("pre_alarm"), pool_days)
        per_seed.append(
            {
                "seed": seed,
                "pool_days": pool_days,
                "detector": {k: _merge(v, pool_days) for k, v in rows.items()},
                "baseline_pre_alarm": baseline,
            }
        )
    return {
        "benchmark": "probe_warning",
        "days": days,
        "pools": pools,
        "interval_s": interval_s,
        "incidents_per_pool_day": rate,
        "warmup_days": warmup_s / 86_400,
        "threshold_shipped": WarningLimits().threshold,
        "baseline": "pre-alarm on a narrowed band (20 % of the band width inside, redox floor + 20 mV), 30 s minimum duration",
        "seeds": per_seed,
    }
