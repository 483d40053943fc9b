"""Controllers: one interface (observation -> decision), each with a name and a version."""

from __future__ import annotations

from signals.controllers.base import Controller, DetectorObservation, LaneMeasurement
from signals.controllers.fixed import FixedTimeController
from signals.controllers.leitstand import LeitstandController
from signals.controllers.maxpressure import MaxPressureController
from signals.controllers.webster import WebsterController
from signals.model import Intersection

CONTROLLERS = {c.name: c for c in (FixedTimeController, WebsterController, MaxPressureController, LeitstandController)}


def make_controller(name: str, intersection: Intersection, **params: float) -> Controller:
    """Build a controller by its name (``fixed``, ``webster``, ``maxpressure``, ``leitstand``)."""
    try:
        cls = CONTROLLERS[name]
    except KeyError:
        raise ValueError(f"unknown controller {name!r}; known: {sorted(CONTROLLERS)}") from None
    return cls(intersection, **params)  # type: ignore[arg-type]


__all__ = [
    "CONTROLLERS",
    "Controller",
    "DetectorObservation",
    "FixedTimeController",
    "LaneMeasurement",
    "LeitstandController",
    "MaxPressureController",
    "WebsterController",
    "make_controller",
]
