"""Each detector catches what it is for, and stays quiet on what it is not for."""

from __future__ import annotations

import json
import math
import random
import subprocess
import sys
from typing import Any

import numpy as np
import pytest

from detection.base import Detector
from detection.changepoint import LevelShiftDetector
from detection.ensemble import AlarmEpisodes, RollingZScore
from detection.registry import DETECTOR_NAMES, REGISTRY, make_detector, restore, score_series
from detection.seasonal import SeasonalResidualDetector
from detection.sensor_faults import SensorFaultDetector

T0 = 1_735_689_600.0  # 2025-01-01 00:00 UTC
STEP = 300.0


def daily_occupancy(days: int, seed: int = 1) -> tuple[list[float], list[float]]:
    """5-minute occupancy with a morning and an evening rush, 5% noise."""
    rng = random.Random(seed)
    t, x = [], []
    for i in range(int(days * 86400 / STEP)):
        ti = T0 + i * STEP
        h = (ti % 86400) / 3600
        base = 3 + 20 * math.exp(-0.5 * ((h - 8) / 1.0) ** 2) + 15 * math.exp(-0.5 * ((h - 17) / 1.5) ** 2)
        t.append(ti)
        x.append(base * (1 + rng.gauss(0, 0.05)) + rng.gauss(0, 0.2))
    return t, x


def feed(det: Detector, t: list[float], x: list[float]) -> list[float]:
    out = []
    for ti, xi in zip(t, x):
        out.append(det.score_one(ti, xi))
        det.learn_one(ti, xi)
    return out


def test_registry_matches_the_published_names() -> None:
    assert set(REGISTRY) == set(DETECTOR_NAMES)
    for name in DETECTOR_NAMES:
        assert isinstance(make_detector(name), Detector)
    with pytest.raises(KeyError, match="unknown detector"):
        make_detector("oracle")


def test_seasonal_detector_knows_rush_hour_from_night() -> None:
    """A rush-hour occupancy at 3 a.m. is an anomaly only a daily profile can see."""
    t, x = daily_occupancy(days=8)
    seasonal, plain = SeasonalResidualDetector(), RollingZScore()
    normal = feed(seasonal, t, x)
    feed(plain, t, x)
    night = T0 + 8 * 86400 + 3 * 3600
    rush_value = 23.0  # what 8 a.m. looks like
    quiet_q99 = float(np.quantile(normal[len(normal) // 2 :], 0.99))
    assert seasonal.score_one(night, rush_value) > max(0.5, quiet_q99 + 0.2)
    # the same value at 8 a.m. is ordinary
    assert seasonal.score_one(T0 + 8 * 86400 + 8 * 3600, rush_value) < quiet_q99 + 0.05
    # a non-seasonal z-score has seen 23 every morning: at night it finds it unremarkable
    assert plain.score_one(night, rush_value) < seasonal.score_one(night, rush_value) - 0.2


def test_seasonal_detector_scores_a_spike_above_all_ordinary_readings() -> None:
    t, x = daily_occupancy(days=6)
    scores = feed(SeasonalResidualDetector(), t, x[:-1] + [x[-1] + 15.0])
    assert scores[-1] > max(scores[len(scores) // 3 : -1])


def test_level_shift_needs_persistence_not_a_spike() -> None:
    t, x = daily_occupancy(days=5)
    n = len(t)
    spike = x.copy()
    spike[n - 50] += 6.0
    shifted = x[: n - 50] + [v + 3.0 for v in x[n - 50 :]]
    on_spike = feed(LevelShiftDetector(), t, spike)
    on_shift = feed(LevelShiftDetector(), t, shifted)
    before = max(on_shift[n // 3 : n - 50])
    assert max(on_shift[n - 50 : n - 30]) > before + 0.2
    assert max(on_spike[n - 50 : n - 30]) < max(on_shift[n - 50 : n - 30]) - 0.2


def test_alarm_episodes_report_onset_and_escalation_once() -> None:
    class Fixed:
        name = "fixed"

        def __init__(self) -> None:
            self.next = 0.0

        def score_one(self, t: float, x: float) -> float:
            return x  # the "raw score" is the reading itself

        def learn_one(self, t: float, x: float) -> None:
            pass

        def to_state(self) -> dict[str, Any]:
            return {"kind": self.name}

        @classmethod
        def from_state(cls, state: dict[str, Any]) -> Fixed:
            return cls()

    ep = AlarmEpisodes(Fixed(), episode_s=3600.0, damp=0.5)
    raws = [0.1, 0.8, 0.7, 0.7, 0.9, 0.6]
    scores = feed(ep, [T0 + i * 300 for i in range(len(raws))], raws)
    assert scores == pytest.approx([0.1, 0.8, 0.35, 0.35, 0.9, 0.3])
    # an hour after the last peak the episode is over: full score again
    assert ep.score_one(T0 + 4 * 300 + 3601, 0.6) == pytest.approx(0.6)


def test_sensor_faults_give_reasons() -> None:
    ph = SensorFaultDetector(lo=0.0, hi=14.0, max_step=0.5, stuck_after_s=1800.0, heartbeat_s=600.0)
    assert ph.check(T0, 7.2) is None
    assert ph.check(T0 + 60, 15.0) == "out_of_range"
    assert ph.check(T0 + 120, -0.1) == "out_of_range"
    assert ph.check(T0 + 180, 7.3) is None  # out-of-range readings never became the reference
    assert ph.check(T0 + 240, 9.5) == "impossible_jump"
    assert ph.check(T0 + 2000, 7.0) is None  # after a silence a large change may be real
    assert ph.check(T0 + 2060, math.nan) is None
    assert ph.silent(T0 + 2000 + 600) is False
    assert ph.silent(T0 + 2000 + 601) is True
    for k in range(1, 30):
        assert ph.check(T0 + 2000 + 60 * k, 7.0) is None
    assert ph.check(T0 + 2000 + 60 * 30, 7.0) == "stuck"
    assert ph.check(T0 + 2000 + 60 * 31, 7.01) is None


def test_sensor_fault_out_of_order_reading_changes_nothing() -> None:
    d = SensorFaultDetector(lo=0, hi=100, max_step=5, heartbeat_s=600)
    d.check(T0 + 600, 50.0)
    before = d.to_state()
    assert d.check(T0, 52.0) is None
    assert d.check(T0, 500.0) == "out_of_range"
    assert d.to_state() == before


def test_silent_is_false_before_the_first_reading() -> None:
    assert SensorFaultDetector(heartbeat_s=60).silent(T0) is False


@pytest.mark.parametrize("name", DETECTOR_NAMES)
def test_state_survives_json_and_continues_identically(name: str) -> None:
    t, x = daily_occupancy(days=2, seed=5)
    det = make_detector(name)
    feed(det, t[:400], x[:400])
    state = json.loads(json.dumps(det.to_state(), allow_nan=False))
    twin = restore(state)
    assert twin.name == det.name
    assert feed(twin, t[400:], x[400:]) == feed(det, t[400:], x[400:])


def test_score_series_scores_every_reading_in_order() -> None:
    t, x = daily_occupancy(days=2)
    x[300] = math.nan
    s = score_series("default", np.array(t), np.array(x))
    assert s.shape == (len(t),) and s[300] == 0.0
    assert np.all((s >= 0) & (s <= 1))
    assert np.array_equal(s, score_series("default", np.array(t), np.array(x)))  # deterministic


def test_detection_stays_pure() -> None:
    code = (
        "import sys, detection.registry, detection.ensemble, detection.nab, detection.base;"
        "bad = [m for m in ('faust', 'kafka', 'aiokafka', 'streams', 'psycopg', 'asyncpg') if m in sys.modules];"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_default_is_the_general_detector_and_the_old_name_still_works() -> None:
    """Issue 14: the default must serve a sensor type nobody tuned for; ``adaptive`` scripts keep working."""
    from detection.adaptive import AdaptiveDetector
    from detection.ensemble import default_detector

    assert isinstance(make_detector("default"), AdaptiveDetector)
    assert isinstance(make_detector("adaptive"), AdaptiveDetector)
    assert type(make_detector("traffic")) is type(default_detector())
