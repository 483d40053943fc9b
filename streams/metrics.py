"""Prometheus metrics of the worker, named ``leitstand_<thing>_<unit>_total``.

Counters are bumped once per batch, never per event, so metrics cost nothing on the hot path.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge

REGISTRY = CollectorRegistry(auto_describe=True)

RECORDS_DECODED = Counter(
    "leitstand_records_decoded_total",
    "Records that decoded and validated, per source topic.",
    ["topic"],
    registry=REGISTRY,
)
DEADLETTERS = Counter(
    "leitstand_deadletter_records_total",
    "Records sent to the dead-letter topic, per source topic and reason code.",
    ["topic", "reason"],
    registry=REGISTRY,
)
DEADLETTER_SEND_FAILURES = Counter(
    "leitstand_deadletter_send_failures_total",
    "Dead letters the broker refused even without their raw bytes (the record stays on its source topic).",
    ["topic", "reason"],
    registry=REGISTRY,
)
AGGREGATES = Counter(
    "leitstand_aggregates_emitted_total",
    "Per-detector window aggregates published.",
    registry=REGISTRY,
)
LATE_FRAMES = Counter(
    "leitstand_late_frames_total",
    "Detector frames dropped because their window had already closed.",
    registry=REGISTRY,
)
OPEN_WINDOWS = Gauge(
    "leitstand_open_windows",
    "Intersections with at least one open aggregation window.",
    registry=REGISTRY,
)
ALARM_TRANSITIONS = Counter(
    "leitstand_alarm_transitions_total",
    "Alarm lifecycle transitions published on the alerts topic.",
    ["transition", "severity"],
    registry=REGISTRY,
)
ALARM_COMMANDS_REJECTED = Counter(
    "leitstand_alarm_commands_rejected_total",
    "Acknowledge/resolve commands for alarms that are not open (unknown id).",
    ["op"],
    registry=REGISTRY,
)
OPEN_ALARMS = Gauge(
    "leitstand_open_alarms",
    "Alarms not yet resolved, in the books this worker holds.",
    registry=REGISTRY,
)
WEBHOOK_DELIVERIES = Counter(
    "leitstand_webhook_deliveries_total",
    "Webhook delivery attempts by outcome (delivered, retry, failed).",
    ["outcome"],
    registry=REGISTRY,
)
WEBHOOK_PENDING = Gauge(
    "leitstand_webhook_pending_deliveries",
    "Deliveries waiting in the outbox (not yet delivered, not yet given up).",
    registry=REGISTRY,
)
POOL_READINGS = Counter(
    "leitstand_pool_readings_total",
    "Pool water readings evaluated against the water rules.",
    registry=REGISTRY,
)
FORECAST_REFRESHES = Counter(
    "leitstand_forecast_refreshes_total",
    "Series forecasts published, by model actually used and trigger (schedule, event).",
    ["model", "trigger"],
    registry=REGISTRY,
)
FORECAST_FAILURES = Counter(
    "leitstand_forecast_failures_total",
    "Series whose refit failed (the previous forecast stays published).",
    registry=REGISTRY,
)
FORECAST_ABS_ERROR = Gauge(
    "leitstand_forecast_abs_error",
    "Absolute error of the newest scored hour: what was forecast for it against what happened.",
    ["series"],
    registry=REGISTRY,
)
FORECAST_SECONDS = Gauge(
    "leitstand_forecast_refresh_seconds",
    "Wall time of the last refresh round (all due series, in the process pool).",
    registry=REGISTRY,
)
SIGNAL_PLANS = Counter(
    "leitstand_signal_plans_total",
    "Messages published on signals.plans, per status (active, fallback, fixed, pending, approved, rejected, expired).",
    ["status"],
    registry=REGISTRY,
)
SIGNAL_COMMANDS = Counter(
    "leitstand_signal_commands_total",
    "Operator commands on signals.approvals (approve, reject, set_mode) by outcome (applied, refused).",
    ["action", "outcome"],
    registry=REGISTRY,
)
SIGNAL_FRAMES_UNCONFIGURED = Counter(
    "leitstand_signal_frames_unconfigured_total",
    "Detector frames the control agent ignored because their intersection has no signals.config.",
    registry=REGISTRY,
)
