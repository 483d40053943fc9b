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


# --- the slow-shift score (``shift_memory``; 0 turns it off) -----------------------------------


def slow_rise(seed: int, before: int = 3000, after: int = 900) -> list[float]:
    """White noise, then the mean creeps up by 1.5 noise sds over 300 readings and stays there:
    no single reading is unusual, so the forecasters follow it and the point score stays quiet."""
    rng = random.Random(seed)
    xs = [10.0 + rng.gauss(0, 1) for _ in range(before)]
    return xs + [10.0 + 1.5 * min(i / 300.0, 1.0) + rng.gauss(0, 1) for i in range(after)]


def test_a_slow_level_rise_is_seen_by_the_shift_score_only() -> None:
    for seed in (0, 1, 2):
        xs = slow_rise(seed)
        plain = run(AdaptiveDetector(shift_memory=0), xs)
        shift = run(AdaptiveDetector(shift_memory=64), xs)
        quiet = max(shift[600:3000])
        assert max(plain[3000:]) < max(plain[600:3000]) + 0.1  # the point score does not see it
        assert max(shift[3000:]) > quiet + 0.15  # the slow mean does
        assert quiet == max(plain[600:3000])  # and it is silent while nothing changes (seed-checked)


def test_a_creeping_shift_score_alarms_a_few_times_not_on_every_reading() -> None:
    """While the slow mean creeps up, each reading's shift score is a little higher than the last;
    only an order-of-magnitude rarer one escalates the episode, so a handful of readings score
    above the quiet part's maximum (with "any higher score escalates": 24-27 of them)."""
    for seed in (0, 1, 2):
        scores = run(AdaptiveDetector(shift_memory=64), slow_rise(seed))
        quiet = max(scores[600:3000])
        assert 1 <= sum(1 for s in scores[3000:] if s > quiet) <= 10


def test_single_spikes_do_not_move_the_shift_score() -> None:
    """A spike is winsorised at 6 spreads before it enters the slow mean: with a fifty-sigma spike
    every 250 readings the shift score is no higher than on the same noise without spikes."""

    def worst_shift(xs: list[float]) -> float:
        det = AdaptiveDetector(shift_memory=64)
        worst = 0.0
        for i, x in enumerate(xs):
            if det.sh_n >= 4 * 64:
                worst = max(worst, det._shift_score(x))
            det.learn_one(T0 + i * STEP, x)
        return worst

    rng = random.Random(7)
    xs = [10.0 + rng.gauss(0, 1) for _ in range(3000)]
    spiky = [x + 50.0 if i >= 400 and i % 250 == 150 else x for i, x in enumerate(xs)]
    assert worst_shift(spiky) < worst_shift(xs) + 0.05
    assert worst_shift(spiky) < 0.6  # below every NAB threshold the detector was run at (0.56-0.62)


def test_shift_scores_do_not_depend_on_units_and_state_round_trips() -> None:
    xs = slow_rise(3, before=800, after=200)
    a = run(AdaptiveDetector(shift_memory=32), xs)
    det = AdaptiveDetector(shift_memory=32)
    b = run(det, [1000.0 * x for x in xs])
    assert max(abs(p - q) for p, q in zip(a, b)) < 1e-6
    copy = AdaptiveDetector.from_state(json.loads(json.dumps(det.to_state(), allow_nan=False)))
    assert copy.to_state() == det.to_state()
    later = [(T0 + (len(xs) + i) * STEP, 1000.0 * x) for i, x in enumerate(xs[-50:])]
    for t, x in later:  # the copy goes on exactly like the original, shift score included
        assert copy.score_one(t, x) == det.score_one(t, x) and det._shift_score(x) > 0.0
        copy.learn_one(t, x)
        det.learn_one(t, x)


def test_a_state_from_before_the_shift_score_goes_on_without_it() -> None:
    det = AdaptiveDetector(shift_memory=0)
    run(det, daily(300))
    old = det.to_state()
    for f in ("sh_mean", "sh_n", "sh_mu", "sh_var"):
        del old[f]
    del old["params"]["shift_memory"], old["params"]["shift_weight"]
    assert restore(old).to_state() == det.to_state()


def test_the_registered_detector_has_the_shift_score_and_the_wider_cap() -> None:
    det = make_detector("adaptive")
    assert isinstance(det, AdaptiveDetector) and det.shift_memory == 256 and det.tail_cap == 5


def test_a_state_from_before_tail_cap_goes_on_with_the_old_cap() -> None:
    det = AdaptiveDetector(tail_cap=3.0, shift_memory=0)
    run(det, daily(300))
    old = json.loads(json.dumps(det.to_state()))
    del old["params"]["tail_cap"], old["params"]["shift_memory"]  # states written before the parameters existed
    for tail in [old["tail"], *(v["tail"] for v in old["views"])]:
        tail.pop("excess_cap", None)  # a cap of 3 is not written (the default detector's states stay as they were)
    assert restore(old).to_state() == det.to_state()


def test_a_wider_tail_cap_learns_a_recurring_spike_sooner() -> None:
    """A 20-sigma spike every 100 readings on a quiet series (episodes shorter than the spacing, so
    no spike is damped): with the wider cap the tail learns that spikes are part of this series and
    the twentieth scores clearly lower than the first; with the old cap it hardly moves."""
    rng = random.Random(11)
    xs = [rng.gauss(0, 1) + (20.0 if i % 100 == 50 else 0.0) for i in range(2000)]
    narrow = run(AdaptiveDetector(tail_cap=3.0, episode_rows=10, shift_memory=0), xs)
    wide = run(AdaptiveDetector(tail_cap=5.0, episode_rows=10, shift_memory=0), xs)
    assert wide[1950] < wide[50] - 0.08 and wide[1950] < narrow[1950] - 0.08
    assert narrow[1950] > narrow[50] - 0.03
    assert wide[1950] > 0.7  # still a clear deviation, only no longer a first-time surprise
