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
