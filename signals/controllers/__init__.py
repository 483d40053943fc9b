"""Controllers: one interface (observation -> decision), each with a name and a version."""

from __future__ import annotations

from signals.controllers.base import Controller, ControllerClass, DetectorObservation, LaneMeasurement
from signals.controllers.fixed import FixedTimeController
from signals.controllers.leitstand import LeitstandController
from signals.controllers.maxpressure import MaxPressureController
from signals.controllers.webster import WebsterController
from signals.model import Intersection

_CONTROLLER_CLASSES: tuple[ControllerClass, ...] = (FixedTimeController, WebsterController, MaxPressureController, LeitstandController)
CONTROLLERS: dict[str, ControllerClass] = {c.name: c for c in _CONTROLLER_CLASSES}


def make_controller(name: str, intersection: Intersection, **params: float) -> Controller:
    """Build a controller by its name (``fixed``, ``webster``, ``maxpressure``, ``leitstand``)."""
    try:
        cls = CONTROLLERS[name]
    except KeyError:
        raise ValueError(f"unknown controller {name!r}; known: {sorted(CONTROLLERS)}") from None
    return cls(intersection, **params)


__all__ = [
    "CONTROLLERS",
    "Controller",
    "ControllerClass",
    "DetectorObservation",
    "FixedTimeController",
    "LaneMeasurement",
    "LeitstandController",
    "MaxPressureController",
    "WebsterController",
    "make_controller",
]
