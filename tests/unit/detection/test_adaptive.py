"""The general detector (detection.adaptive) on small synthetic series: it finds the daily season
when there is one and not when there is none, its scores do not depend on the sensor's units, and
a spike outscores every ordinary reading. (The protocol itself is held by the property tests.)"""

from __future__ import annotations

import json
import math
import random

from detection.adaptive import AdaptiveDetector
from detection.registry import make_detector, restore

T0 = 1_735_689_600.0
STEP = 300.0


def run(det: AdaptiveDetector, xs: list[float], step: float = STEP) -> list[float]:
    out = []
    for i, x in enumerate(xs):
        t = T0 + i * step
        out.append(det.score_one(t, x))
        det.learn_one(t, x)
    return out


def daily(n: int, noise: float = 1.0, seed: int = 1) -> list[float]:
    rng = random.Random(seed)
    return [50.0 + 20.0 * math.sin(2 * math.pi * i * STEP / 86400.0) + rng.gauss(0, noise) for i in range(n)]


def test_daily_season_is_found_when_present_and_not_assumed() -> None:
    seasonal = AdaptiveDetector()
    run(seasonal, daily(288 * 5))
    assert seasonal.n_bins == 48  # 5-minute data, the daily profile kept at half-hour resolution
    assert seasonal.sel_hw < seasonal.sel_lvl  # Holt-Winters forecasts better: it is the one trusted

    rng = random.Random(2)
    walk = [0.0]
    for _ in range(288 * 5 - 1):
        walk.append(walk[-1] + rng.gauss(0, 1))
    flat = AdaptiveDetector()
    run(flat, walk)
    assert flat.sel_lvl < flat.sel_hw  # no season: the local level is trusted


def test_hourly_data_gets_hour_bins() -> None:
    det = AdaptiveDetector()
    run(det, daily(24 * 5), step=3600.0)
    assert det.n_bins == 24


def test_scores_do_not_depend_on_units() -> None:
    xs = daily(288 * 4, seed=3)
    a = run(AdaptiveDetector(), xs)
    b = run(AdaptiveDetector(), [1000.0 * x for x in xs])
    assert max(abs(p - q) for p, q in zip(a, b)) < 1e-6


def test_spike_outscores_ordinary_readings_and_state_round_trips() -> None:
    xs = daily(288 * 4, seed=4)
    xs[288 * 3 + 100] += 15.0
    det = AdaptiveDetector()
    scores = run(det, xs[: 288 * 3 + 100])
    spike = det.score_one(T0 + (288 * 3 + 100) * STEP, xs[288 * 3 + 100])
    assert spike > max(scores[288:])  # after the first day of warm-up
    copy = restore(json.loads(json.dumps(det.to_state(), allow_nan=False)))
    assert copy.score_one(T0 + (288 * 3 + 100) * STEP, xs[288 * 3 + 100]) == spike


def test_registered() -> None:
    assert isinstance(make_detector("adaptive"), AdaptiveDetector)
