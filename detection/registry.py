"""The named detectors: what ``leitstand detect --detector NAME``, the benchmarks and the stream
side ask for by name, and rebuilding any detector from its stored state."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .adaptive import AdaptiveDetector
from .base import Detector
from .changepoint import LevelShiftDetector
from .ensemble import CLASSES, RollingZScore, default_detector
from .seasonal import SeasonalResidualDetector
from .sensor_faults import SensorFaultDetector

#: registry names. ``default`` is the general detector (detection/adaptive.py): seasonality, scale
#: and tails learned per series, so a sensor type nobody tuned for gets a working detector; it was
#: chosen over ``traffic`` on NAB scores cross-validated by category (docs/detection.md).
#: ``traffic`` is the per-kind detector for traffic detector series (hour-of-day profiles, one-hour
#: alarm episodes, constants fit to realTraffic): better there, below random on other kinds.
DETECTOR_NAMES: tuple[str, ...] = ("default", "traffic", "seasonal", "level_shift", "sensor_fault", "zscore")

REGISTRY: dict[str, Callable[[], Detector]] = {
    "default": AdaptiveDetector,
    "traffic": default_detector,
    "seasonal": SeasonalResidualDetector,
    "level_shift": LevelShiftDetector,
    # without physical limits only a frozen value is a fault; the stream side sets limits per quantity
    "sensor_fault": lambda: SensorFaultDetector(stuck_after_s=3 * 3600.0),
    "zscore": RollingZScore,
}
#: names kept from earlier releases: ``adaptive`` is today's ``default``
ALIASES: dict[str, str] = {"adaptive": "default"}

#: every restorable class by ``kind`` (the ensemble's plus the general detector)
_CLASSES: dict[str, Any] = {**CLASSES, AdaptiveDetector.kind: AdaptiveDetector}


def make_detector(name: str) -> Detector:
    """A fresh detector by registry name (see ``DETECTOR_NAMES``); ``KeyError`` if unknown."""
    name = ALIASES.get(name, name)
    if name not in REGISTRY:
        raise KeyError(f"unknown detector {name!r}; choose one of {', '.join(DETECTOR_NAMES)}")
    return REGISTRY[name]()


def restore(state: dict[str, Any]) -> Detector:
    """Rebuild whichever detector produced ``state`` (its ``to_state()`` names its class)."""
    return _CLASSES[state["kind"]].from_state(state)


def score_series(detector_name: str, t: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Score a whole series in order with a fresh detector: score each reading, then learn it."""
    det = make_detector(detector_name)
    ts = np.asarray(t, dtype=float).tolist()
    xs = np.asarray(x, dtype=float).tolist()
    out = np.empty(len(ts))
    score, learn = det.score_one, det.learn_one
    for i, (ti, xi) in enumerate(zip(ts, xs)):
        out[i] = score(ti, xi)
        learn(ti, xi)
    return out
