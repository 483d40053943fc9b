"""Controllers: one interface (observation -> decision), each with a name and a version."""

from __future__ import annotations

import math
from collections.abc import Mapping

from signals.controllers.base import Controller, ControllerClass, DetectorObservation, LaneMeasurement
from signals.controllers.fixed import FixedTimeController
from signals.controllers.leitstand import LeitstandController
from signals.controllers.maxpressure import MaxPressureController
from signals.controllers.webster import WebsterController
from signals.model import Intersection

_CONTROLLER_CLASSES: tuple[ControllerClass, ...] = (FixedTimeController, WebsterController, MaxPressureController, LeitstandController)
CONTROLLERS: dict[str, ControllerClass] = {c.name: c for c in _CONTROLLER_CLASSES}


#: the constants a signal config (``params``) or ``sumo eval --param`` may set, per controller:
#: (lowest, whether the lowest itself is allowed, highest). Outside them a controller divides by
#: zero or decides nonsense: a config with leitstand's ``wait_scale_s`` 0 was accepted and then
#: raised ZeroDivisionError on every frame of its intersection (stop 40).
CONSTANT_RANGES: dict[str, dict[str, tuple[float, bool, float]]] = {
    "fixed": {},
    "webster": {
        "recompute_every_cycles": (1.0, True, 100.0),
        "max_cycle_change_s": (0.0, True, 300.0),
        "max_split_change_s": (0.0, True, 300.0),
    },
    "maxpressure": {"decision_interval_s": (0.0, False, 300.0)},
    "leitstand": {
        "decision_interval_s": (0.0, False, 300.0),
        "approach_weight": (0.0, True, 100.0),
        "switch_cost_veh": (0.0, True, 1000.0),
        "wait_scale_s": (0.0, False, 3600.0),
        "spillback_veh": (0.0, False, 1000.0),
        "stranded_weight": (0.0, True, 1000.0),
    },
}


def check_params(name: str, params: Mapping[str, float]) -> None:
    """``ValueError`` naming the first constant ``name`` does not take or that is out of its range
    (or not a finite number); nothing when all are fine."""
    if name not in CONTROLLERS:
        raise ValueError(f"unknown controller {name!r}; known: {sorted(CONTROLLERS)}")
    ranges = CONSTANT_RANGES.get(name, {})
    for key, value in params.items():
        if key not in ranges:
            raise ValueError(f"{name} takes no constant {key!r}; it takes: {', '.join(ranges) or 'none'}")
        low, low_ok, high = ranges[key]
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise ValueError(f"{name} constant {key} must be a finite number, not {value!r}")
        if value > high or value < low or (value == low and not low_ok):
            bound = f">= {low:g}" if low_ok else f"> {low:g}"
            raise ValueError(f"{name} constant {key} must be {bound} and <= {high:g}, not {value:g}")


def make_controller(name: str, intersection: Intersection, **params: float) -> Controller:
    """Build a controller by its name (``fixed``, ``webster``, ``maxpressure``, ``leitstand``),
    its constants checked first (``check_params``)."""
    check_params(name, params)
    return CONTROLLERS[name](intersection, **params)


__all__ = [
    "CONSTANT_RANGES",
    "CONTROLLERS",
    "Controller",
    "ControllerClass",
    "DetectorObservation",
    "FixedTimeController",
    "LaneMeasurement",
    "LeitstandController",
    "MaxPressureController",
    "WebsterController",
    "check_params",
    "make_controller",
]
