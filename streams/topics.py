"""The topic catalogue (ARCHITECTURE.md): names without prefix, and what keys them."""

from __future__ import annotations

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
SIMULATION_TRUTH = "simulation.truth"
SIGNALS_CONFIG = "signals.config"
SIGNALS_AUDIT = "signals.audit"

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
    TopicSpec(ALERTS_DELIVERIES, "alert id", "webhook delivery log: every attempt and its outcome"),
    TopicSpec(SIGNALS_CONFIG, "intersection id", "intersection model, controller and mode (a new session restarts control)"),
    TopicSpec(SIGNALS_AUDIT, "intersection id", "audit log: decisions, proposals, approvals, expiries, mode changes"),
    TopicSpec(SIMULATION_TRUTH, "subject id", "what a simulator injected (ground truth for scoring)"),
)
