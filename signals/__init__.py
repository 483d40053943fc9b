"""Pure signal-timing library: intersection model, signal-state timeline, safety validator,
controllers (fixed, Webster, max-pressure) and explanations.

Functional core: never imports Faust, Kafka or a database; plain values in, plain values out.
See docs/signals.md for the configuration schema and the safety rules.
"""

from signals.controllers import (
    Controller,
    DetectorObservation,
    FixedTimeController,
    LaneMeasurement,
    MaxPressureController,
    WebsterController,
    make_controller,
)
from signals.explain import Explanation, StageDecision
from signals.loader import intersection_from_dict, load_intersection
from signals.model import Intersection, LaneArea, ModelError, SignalGroup, SignalPlan, Stage, StagePhase
from signals.timeline import SignalState, SignalTimeline, build_timeline
from signals.validator import GateOutcome, SafetyGate, SafetyValidator, ValidationReport, Violation

__all__ = [
    "Controller",
    "DetectorObservation",
    "Explanation",
    "FixedTimeController",
    "GateOutcome",
    "Intersection",
    "LaneArea",
    "LaneMeasurement",
    "MaxPressureController",
    "ModelError",
    "SafetyGate",
    "SafetyValidator",
    "SignalGroup",
    "SignalPlan",
    "SignalState",
    "SignalTimeline",
    "Stage",
    "StageDecision",
    "StagePhase",
    "ValidationReport",
    "Violation",
    "WebsterController",
    "build_timeline",
    "intersection_from_dict",
    "load_intersection",
    "make_controller",
]
