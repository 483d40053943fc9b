"""What a pool's readings and camera events mean for the people on duty.

Turns a pool's water readings (through ``water_rules``), its visitor counts (against the
basin's capacity) and its camera-system events into alarm triggers and condition clears.
The stream side only decodes, keeps the returned state, and forwards what comes out.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .alarms import AlarmTrigger, Severity
from .sensor_faults import SensorFaultDetector
from .water_rules import UNITS, WaterLimits, WaterVerdict, evaluate

#: per water parameter: sensor range, largest credible change between readings, how long an
#: unchanged value means a frozen transmitter (None: a steady value is normal, e.g. temperature)
SENSOR_LIMITS: dict[str, tuple[float, float, float, float | None]] = {
    "free_chlorine": (0.0, 10.0, 1.0, 1800.0),
    "combined_chlorine": (0.0, 5.0, 0.5, None),
    "ph": (0.0, 14.0, 1.0, 1800.0),
    "redox": (0.0, 1200.0, 250.0, 1800.0),
    "temperature": (0.0, 45.0, 3.0, None),
    "turbidity": (0.0, 100.0, 5.0, None),
}

#: camera-system event kind -> (alarm kind, severity, message). ``None``: clears ``camera_fault``
SUPERVISION_ALARMS: dict[str, tuple[str, Severity, str] | None] = {
    "motionless_swimmer": ("motionless_swimmer", "critical", "Motionless swimmer detected"),
    "person_in_closed_zone": ("person_in_closed_zone", "critical", "Person in a closed zone"),
    "overcrowding": ("overcrowding", "critical", "Overcrowding reported by the camera system"),
    "camera_fault": ("camera_fault", "minor", "Camera system reports a fault"),
    "camera_restored": None,
}


@dataclass(frozen=True)
class PoolProfile:
    """How one pool is judged: its basin's water limits and how many people it may hold."""

    limits: WaterLimits
    capacity: int | None = None


@dataclass(frozen=True)
class PoolOutcome:
    triggers: list[AlarmTrigger] = field(default_factory=list)
    clears: list[str] = field(default_factory=list)  # alarm kinds whose condition went away


def supervision_outcome(pool_id: str, event_id: str, kind: str, at: float, details: Mapping[str, Any]) -> PoolOutcome:
    """A camera event raises at once: no duration, no hysteresis, a person may be at risk."""
    mapped = SUPERVISION_ALARMS.get(kind)
    if mapped is None:
        return PoolOutcome(clears=["camera_fault"] if kind == "camera_restored" else [])
    alarm_kind, severity, message = mapped
    where = f" in zone {details['zone']}" if details.get("zone") else ""
    evidence = {k: v for k, v in details.items() if v is not None} | {"camera_event_id": event_id}
    return PoolOutcome(triggers=[AlarmTrigger(pool_id, alarm_kind, severity, event_id, at, message + where, evidence)])


def _water_trigger(pool_id: str, v: WaterVerdict) -> AlarmTrigger:
    return AlarmTrigger(
        pool_id,
        f"water_{v.parameter}",
        "major",
        f"{v.since:.3f}",
        v.at,
        f"{v.parameter.replace('_', ' ')} {v.value:g} {v.unit} outside the legal range {v.band} since {v.at - v.since:.0f} s",
        {"parameter": v.parameter, "value": v.value, "unit": v.unit, "band": v.band, "violation_since": v.since, "confirmed_at": v.at},
    )


def reading_outcome(
    state: dict[str, Any] | None,
    pool_id: str,
    at: float,
    values: Mapping[str, float],
    visitors: int | None,
    profile: PoolProfile,
) -> tuple[dict[str, Any], PoolOutcome]:
    """Fold one reading (canonical units) of a pool; state is a JSON-able dict.

    A value its sensor-fault detector rejects (impossible jump, frozen, out of sensor range)
    raises a minor sensor alarm and is kept away from the legal limits: a broken probe must
    send a technician, not close the pool.
    """
    state = dict(state or {})
    out = PoolOutcome()
    trusted = _screen_sensors(state, pool_id, at, values, out)
    _judge_water(state, pool_id, at, trusted, profile.limits, out)
    if visitors is not None and profile.capacity and math.isfinite(at):
        _judge_crowding(state, pool_id, at, visitors, profile.capacity, out)
    return state, out


def fault_detector(parameter: str, faults: Mapping[str, Any]) -> SensorFaultDetector:
    """The parameter's sensor-fault detector as the state left it, or a new one."""
    lo, hi, step, stuck = SENSOR_LIMITS[parameter]  # an unknown parameter is a KeyError either way
    if parameter in faults:
        return SensorFaultDetector.from_state(faults[parameter])
    return SensorFaultDetector(lo, hi, step, stuck, heartbeat_s=900.0)


def _screen_sensors(state: dict[str, Any], pool_id: str, at: float, values: Mapping[str, float], out: PoolOutcome) -> dict[str, float]:
    """Check every value against its sensor-fault detector; returns the values to trust.

    One trigger per fault episode (the parameter stays in ``state["faulty"]`` until its sensor
    reads plausibly again, which clears the alarm); updates ``state["faults"]`` and
    ``state["faulty"]``.
    """
    faults = dict(state.get("faults") or {})
    trusted: dict[str, float] = {}
    for parameter, value in values.items():
        det = fault_detector(parameter, faults)
        why = det.check(at, value)
        if why != "impossible_jump":  # a spike must not become the reference for the next reading
            faults[parameter] = det.to_state()
        kind = f"sensor_{parameter}"
        if why is None:
            trusted[parameter] = value
            if parameter in state.get("faulty", []):
                out.clears.append(kind)
            continue
        if parameter in state.get("faulty", []):
            continue  # already reported; one trigger per fault episode
        out.triggers.append(
            AlarmTrigger(
                pool_id,
                kind,
                "minor",
                f"{why}:{at:.3f}",
                at,
                f"{parameter.replace('_', ' ')} sensor: {why.replace('_', ' ')} ({value:g} {UNITS[parameter]})",
                {"parameter": parameter, "value": value, "reason": why},
            )
        )
    state["faults"] = faults
    recovered = {k.removeprefix("sensor_") for k in out.clears}
    state["faulty"] = sorted((set(state.get("faulty", [])) - recovered) | {t.evidence["parameter"] for t in out.triggers})
    return trusted


def _judge_water(state: dict[str, Any], pool_id: str, at: float, trusted: dict[str, float], limits: WaterLimits, out: PoolOutcome) -> None:
    """The legal limits (``water_rules``) on the trusted values: confirmed violations raise,
    water back in its band clears."""
    rules, verdicts = evaluate(state.get("rules"), at, trusted, limits)
    state["rules"] = rules
    for v in verdicts:
        if v.violated:
            out.triggers.append(_water_trigger(pool_id, v))
        else:
            out.clears.append(f"water_{v.parameter}")


def _judge_crowding(state: dict[str, Any], pool_id: str, at: float, visitors: int, capacity: int, out: PoolOutcome) -> None:
    """More visitors than the basin may hold raises once; back within capacity clears."""
    crowded = visitors > capacity
    if crowded and not state.get("crowded"):
        out.triggers.append(
            AlarmTrigger(
                pool_id,
                "overcrowding",
                "critical",
                f"visitors:{at:.3f}",
                at,
                f"{visitors} visitors, capacity {capacity}",
                {"visitors": visitors, "capacity": capacity},
            )
        )
    elif not crowded and state.get("crowded"):
        out.clears.append("overcrowding")
    state["crowded"] = crowded
