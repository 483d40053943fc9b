"""The topic catalogue (ARCHITECTURE.md): names without prefix, and what keys them."""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class TopicSpec:
    name: str
    key: str
    purpose: str


SENSORS_INTERSECTION = "sensors.intersection"
SIGNALS_STATE = "signals.state"
SENSORS_BUS = "sensors.bus"
SENSORS_POOL = "sensors.pool"
POOL_SUPERVISION = "pool.supervision"
EVENTS_SCHEDULE = "events.schedule"
SIGNALS_PRIORITY = "signals.priority"
SIGNALS_PLANS = "signals.plans"
SIGNALS_APPROVALS = "signals.approvals"
ALERTS = "alerts"
ALERTS_ACKS = "alerts.acks"
FORECASTS = "forecasts"
AGGREGATES = "aggregates"
DEADLETTER = "deadletter"
ALERTS_LIFECYCLE = "alerts.lifecycle"
ALERTS_DELIVERIES = "alerts.deliveries"
ALERTS_SILENCES = "alerts.silences"
SIMULATION_TRUTH = "simulation.truth"
SIGNALS_CONFIG = "signals.config"
SIGNALS_AUDIT = "signals.audit"
TRANSIT_SCHEDULE = "transit.schedule"
TRANSIT_PASSAGES = "transit.passages"

CATALOGUE: tuple[TopicSpec, ...] = (
    TopicSpec(SENSORS_INTERSECTION, "intersection id", "detector frames of one intersection"),
    TopicSpec(SIGNALS_STATE, "intersection id", "current stage and its start"),
    TopicSpec(SENSORS_BUS, "vehicle id", "GTFS-Realtime-like vehicle positions"),
    TopicSpec(SENSORS_POOL, "pool id", "water quality readings and visitor counts"),
    TopicSpec(POOL_SUPERVISION, "pool id", "camera-system events"),
    TopicSpec(EVENTS_SCHEDULE, "venue id", "planned events, holidays, weather"),
    TopicSpec(SIGNALS_PRIORITY, "intersection id", "transit priority requests"),
    TopicSpec(SIGNALS_PLANS, "intersection id", "validated signal plans"),
    TopicSpec(SIGNALS_APPROVALS, "intersection id", "operator decisions on plans"),
    TopicSpec(ALERTS, "subject id", "alarms with lifecycle state"),
    TopicSpec(ALERTS_ACKS, "alert id", "acknowledgements and resolutions"),
    TopicSpec(FORECASTS, "series id", "forecast points with intervals"),
    TopicSpec(AGGREGATES, "intersection id", "1-minute per-detector aggregates"),
    TopicSpec(DEADLETTER, "source topic", "records that failed to decode, with the reason"),
    TopicSpec(ALERTS_LIFECYCLE, "subject id", "internal: raise/clear/ack/resolve commands for the alarm books"),
    TopicSpec(ALERTS_DELIVERIES, "alert id", "delivery log (webhook, e-mail, MQTT): every attempt and its outcome"),
    TopicSpec(ALERTS_SILENCES, "subject id", "maintenance windows: alarms recorded but not delivered"),
    TopicSpec(SIGNALS_CONFIG, "intersection id", "intersection model, controller and mode (a new session restarts control)"),
    TopicSpec(SIGNALS_AUDIT, "intersection id", "audit log: decisions, proposals, approvals, expiries, mode changes"),
    TopicSpec(TRANSIT_SCHEDULE, "trip id", "static GTFS timetable, one trip per record (compacted; `leitstand gtfs load`)"),
    TopicSpec(TRANSIT_PASSAGES, "route id", "bus stop passages: delay against the timetable, headway (the history's adherence)"),
    TopicSpec(SIMULATION_TRUTH, "subject id", "what a simulator injected (ground truth for scoring)"),
)

#: the names an operator may send to without ``--create``
CATALOGUE_NAMES: frozenset[str] = frozenset(t.name for t in CATALOGUE)
#: Kafka's own rule for topic names (longer names or other characters are refused by the broker)
_LEGAL_NAME = re.compile(r"[A-Za-z0-9._-]{1,249}")
MAX_NAME_LENGTH = 249


class TopicError(ValueError):
    """A topic name the command refuses: one line for the CLI."""


def check_topic(name: str, *, create: bool = False, prefix: str = "") -> str:
    """Return ``name`` if a command may send to it, else raise :class:`TopicError`.

    Brokers create any topic a producer names, so a typo (``sensors.intersections``) would
    silently fill a topic no worker reads. Only catalogue names pass, unless the operator
    asks for a new topic with ``create``; then the name must still be one Kafka accepts.
    """
    if name in CATALOGUE_NAMES:
        return name
    if not create:
        raise TopicError(
            f"unknown topic {name!r}; the catalogue has {', '.join(sorted(CATALOGUE_NAMES))} (pass --create to send to a new topic)"
        )
    full = prefix + name
    if not _LEGAL_NAME.fullmatch(full) or full in (".", ".."):
        raise TopicError(f"{full!r} is not a valid topic name: at most {MAX_NAME_LENGTH} letters, digits, '.', '_' or '-'")
    return name
