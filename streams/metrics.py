"""Prometheus metrics of the worker, after Prometheus's naming conventions
(``leitstand_<thing>_<unit>``, ``_total`` on counters, durations in seconds); docs/metrics.md
says what each one means for an operator.

Counters are bumped once per batch, never per event, so metrics cost nothing on the hot path.
Every label takes its values from a small fixed set (a topic, a reason code, a severity, a
path), never an entity id: a label value per intersection, pool or forecast series would grow
the worker's memory and Prometheus's index with the city, and such a series is never removed.

Latency histograms are observed once the output is acknowledged by the broker (from then on a
screen can show it); ``EventClock`` decides where such a latency starts.
"""

from __future__ import annotations

import importlib.metadata
import os
import subprocess
import time
from collections import OrderedDict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector

REGISTRY = CollectorRegistry(auto_describe=True)

# process_* (CPU, resident memory, open descriptors, start time) and python_* (GC, version) on
# the worker's own registry, which is the one /metrics serves (the default registry is not)
ProcessCollector(registry=REGISTRY)
PlatformCollector(registry=REGISTRY)
GCCollector(registry=REGISTRY)

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
# --- recovery / time (issue 12) ---
LATE_RECORDS = Counter(
    "leitstand_late_records_total",
    "Records behind their stream's watermark: outcome merged (out of order, window still open) or "
    "deadlettered (window already closed; on the dead-letter topic with reason late).",
    ["topic", "outcome"],
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
HEAD_HOLE_REREADS = Counter(
    "leitstand_consumer_rereads_total",
    "Times a partition was read again from its commit because the record there was never acknowledged "
    "while later ones were (a record Faust dropped; streams/faust_transport.py). Should stay 0.",
    registry=REGISTRY,
)
WATER_RULES_BEHIND_SECONDS = Gauge(
    "leitstand_water_rules_behind_seconds",
    "Critical role: how long the oldest pool reading has waited unread by the water worker's group "
    "(0 when it keeps up; LEITSTAND_WATER_WATCH_AFTER_S raises the system alarm evaluation_behind).",
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
ALARM_DELIVERIES = Counter(  # delivery: every channel (streams/delivery/, docs/delivery.md)
    "leitstand_alarm_deliveries_total",
    "Alarm delivery attempts by channel (webhook, email, mqtt) and outcome (delivered, retry, failed, silenced).",
    ["channel", "outcome"],
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
    "Mean over the series of one kind (intersection: vehicles/h, pool: visitors, bus: occupancy share) of the absolute error "
    "of each series' newest scored hour: what was forecast for it against what happened.",
    ["series_kind"],
    registry=REGISTRY,
)
FORECAST_INTERVAL = Counter(
    "leitstand_forecast_interval_total",
    "Scored forecast hours by where what happened fell against the forecast's 80 % interval "
    "(outcome: inside, below, above), per series kind. inside / all is the live coverage of the "
    "band planners read; well under 0.8 means the band is too narrow to trust.",
    ["series_kind", "outcome"],
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
# --- signal fairness (live; signals/fairness.py LiveWaits, fed by the control desk) ---
#: the modes of transport of the wait histogram: a signal group's kind (bounded by the model)
TRANSPORT_MODES = ("vehicle", "cyclist", "pedestrian")
SIGNAL_APPROACH_WAIT = Histogram(
    "leitstand_signal_approach_wait_seconds",
    "Wait for green of the first vehicle (or pedestrian, cyclist) of a queue on a red approach, from the first "
    "demand the detectors showed to the green, per transport_mode (the signal group's kind), all intersections.",
    ["transport_mode"],
    buckets=(5.0, 10.0, 20.0, 30.0, 45.0, 60.0, 90.0, 120.0, 180.0, 300.0, 600.0),
    registry=REGISTRY,
)
SIGNAL_CONTROL_SPLIT = Gauge(
    "leitstand_signal_control_split",
    "1 while this control worker holds some but not all partitions of the frames topic: another control worker "
    "holds the rest, and neighbours controlled there are read from the topics (docs/signals.md, 'Several control "
    "workers').",
    registry=REGISTRY,
)
SIGNAL_WAIT_WORST_TO_MEDIAN = Gauge(
    "leitstand_signal_wait_worst_to_median_ratio",
    "p95 wait of the worst-served approach over the median approach's p95 (last 100 waits of each approach with "
    "at least 5; all intersections); 0 until an approach has enough waits. 1: even service; high: one approach starved.",
    registry=REGISTRY,
)
for _mode in TRANSPORT_MODES:
    SIGNAL_APPROACH_WAIT.labels(_mode)

# --- buses (streams/agents/buses.py) ---
BUS_POSITIONS = Counter(
    "leitstand_bus_positions_total",
    "Bus positions by outcome: accepted, or the rejection (duplicate, out_of_order, unknown_trip, teleport, stale).",
    ["outcome"],
    registry=REGISTRY,
)
BUS_PASSAGE_DELAY = Histogram(
    "leitstand_bus_passage_delay_seconds",
    "Delay of buses at each stop passage against the timetable (negative: early), all lines.",
    buckets=(-300, -120, -60, 0, 60, 180, 300, 600, 900, 1800),
    registry=REGISTRY,
)
BUS_PUNCTUALITY = Gauge(
    "leitstand_bus_punctuality_ratio",
    "Share of all stop passages within the on-time window (default -1..+3 min) since the worker started.",
    registry=REGISTRY,
)
BUS_HEADWAY_CV_MAX = Gauge(
    "leitstand_bus_headway_cv_max",
    "Coefficient of variation of the recent headways of the least regular line and direction (0: regular; about 1: random).",
    registry=REGISTRY,
)
BUS_PRIORITY_REQUESTS = Counter(
    "leitstand_bus_priority_requests_total",
    "Priority requests sent on signals.priority for late buses.",
    registry=REGISTRY,
)

# --- latency histograms ---------------------------------------------------------------------

#: the paths of leitstand_event_to_output_seconds (a fixed set: bounded label values)
PATHS = ("frame_to_aggregate", "camera_to_alarm", "reading_to_alarm", "frame_to_decision")
SEVERITIES = ("critical", "major", "minor")
FINAL_OUTCOMES = ("delivered", "failed")

EVENT_TO_OUTPUT = Histogram(
    "leitstand_event_to_output_seconds",
    "Wall-clock time from an input to the output it caused, once the broker acknowledged the output, per path "
    "(frame_to_aggregate, camera_to_alarm, reading_to_alarm, frame_to_decision). Starts at the input's event time "
    "(a frame's at the end of its interval) when event times are wall-clock times (LEITSTAND_TIMESTAMP_REFERENCE=now), "
    "at the time the agent received the input otherwise (replays, accelerated simulations).",
    ["path"],
    # life-safety paths are judged between 50 ms and 10 s; aggregates wait for their window's lateness
    buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0),
    registry=REGISTRY,
)
ALARM_ACK = Histogram(
    "leitstand_alarm_ack_seconds",
    "Time from an alarm being raised to a person acknowledging it, per severity (the alarm's own times when "
    "event times are wall-clock times; else the wall time between this worker publishing the raise and applying the ack).",
    ["severity"],
    buckets=(1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 900.0, 1800.0, 3600.0),
    registry=REGISTRY,
)
WEBHOOK_SECONDS = Histogram(
    "leitstand_webhook_delivery_seconds",
    "Time from a delivery being planned (alarm transition received) to its final outcome, retries included, "
    "per outcome (delivered, failed).",
    ["outcome"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0),
    registry=REGISTRY,
)
for _path in PATHS:  # every series exists from the start: dashboards and alerts see 0, not "no data"
    EVENT_TO_OUTPUT.labels(_path)
for _severity in SEVERITIES:
    ALARM_ACK.labels(_severity)
for _outcome in FINAL_OUTCOMES:
    WEBHOOK_SECONDS.labels(_outcome)


def frame_end(frame: Any) -> float:
    """When a detector frame's data was complete: the end of its interval (POSIX seconds)."""
    return float(frame.event_time.timestamp() + frame.interval_s)


def raise_times(commands: Iterable[Any]) -> list[float]:
    """Event times of the raise commands among alarm ``LifecycleCommand``s (the trigger's time)."""
    return [c.event_time.timestamp() for c in commands if c.op == "raise"]


class EventClock:
    """Where an event-to-output latency starts, and the observations of one worker.

    With wall-clock event times (``LEITSTAND_TIMESTAMP_REFERENCE=now``) a latency starts at the
    input's event time (never later than its receipt: a device clock running ahead would make it
    negative), so it includes the device's and the broker's share. With ``stream`` the event
    times are simulated or historical and say nothing about now: the latency starts when the
    agent received the batch holding the input, which covers this worker's processing and the
    broker round trip of the output, not the hop in.
    """

    #: raise times remembered for the ack latency under simulated event times (oldest dropped)
    MAX_RAISES = 10_000

    def __init__(self, wall_clock_events: bool) -> None:
        self.wall = wall_clock_events
        self.raised_wall: OrderedDict[str, float] = OrderedDict()

    @classmethod
    def for_reference(cls, timestamp_reference: str) -> EventClock:
        """The clock for a worker's ``timestamp_reference`` setting (``now`` | ``stream``)."""
        return cls(timestamp_reference == "now")

    def start(self, event_time: float, received: float) -> float:
        return min(event_time, received) if self.wall else received

    def observe(self, path: str, event_times: Iterable[float], received: float, now: float | None = None) -> int:
        """One observation per output, each caused by the input with that event time; returns how many."""
        now = time.time() if now is None else now
        child = EVENT_TO_OUTPUT.labels(path)
        n = 0
        for t in event_times:
            child.observe(max(0.0, now - self.start(t, received)))
            n += 1
        return n

    def observe_keyed(
        self, path: str, inputs: Iterable[tuple[str, float]], outputs: Iterable[str], received: float, now: float | None = None
    ) -> int:
        """Outputs named by subject (an aggregate's intersection): each caused by the newest input
        of its subject in the batch (the frame that moved its window's watermark past the end)."""
        newest: dict[str, float] = {}
        for subject, t in inputs:
            newest[subject] = max(t, newest.get(subject, t))
        return self.observe(path, (newest[s] for s in outputs if s in newest), received, now)

    def observe_alarms(self, changes: Iterable[Any], now: float | None = None) -> None:
        """``leitstand_alarm_ack_seconds`` from published alarm transitions (``AlarmChange``)."""
        now = time.time() if now is None else now
        for c in changes:
            alarm = c.alarm
            if c.transition in ("raised", "reraised"):
                self.raised_wall[alarm.alarm_id] = now
                self.raised_wall.move_to_end(alarm.alarm_id)
                while len(self.raised_wall) > self.MAX_RAISES:
                    self.raised_wall.popitem(last=False)
            elif c.transition == "acknowledged":
                raised = self.raised_wall.pop(alarm.alarm_id, None)
                if self.wall and alarm.acknowledged_at is not None:
                    ALARM_ACK.labels(alarm.severity).observe(max(0.0, alarm.acknowledged_at - alarm.raised_at))
                elif not self.wall and raised is not None:
                    ALARM_ACK.labels(alarm.severity).observe(max(0.0, now - raised))


def observe_delivery(outcome: str, planned_at: float | None, now: float) -> None:
    """``leitstand_webhook_delivery_seconds`` for a delivery that reached a final outcome."""
    if outcome in FINAL_OUTCOMES and planned_at is not None:
        WEBHOOK_SECONDS.labels(outcome).observe(max(0.0, now - planned_at))


# --- forecast error by series kind --------------------------------------------------------------

#: the kinds of forecast series (the part of a series id before '/'); anything else is "other"
SERIES_KINDS = ("intersection", "pool", "bus")
_latest_error: dict[str, dict[str, float]] = {}


def series_kind(series_id: str) -> str:
    """``intersection/K1`` -> ``intersection``: a bounded label value for any series id."""
    kind = series_id.partition("/")[0]
    return kind if kind in SERIES_KINDS else "other"


def record_forecast_error(series_id: str, abs_error: float) -> None:
    """A scored hour of one series: the gauge of its kind becomes the mean of every series'
    newest error (kept here per series id, in memory; Prometheus sees one series per kind)."""
    kind = series_kind(series_id)
    errors = _latest_error.setdefault(kind, {})
    errors[series_id] = abs_error
    FORECAST_ABS_ERROR.labels(kind).set(sum(errors.values()) / len(errors))


def record_interval_outcome(series_id: str, outcome: str) -> None:
    """A scored hour against its forecast interval (``forecasting.refresh.band_outcome``)."""
    FORECAST_INTERVAL.labels(series_kind(series_id), outcome).inc()


# --- the worker's runtime: event loop, consumer lag, build -------------------------------------------

LOOP_TICK_S = 0.25
LOOP_WARN_S = 0.05

EVENT_LOOP_LAG = Histogram(
    "leitstand_event_loop_lag_seconds",
    f"How late a {LOOP_TICK_S} s ticker on the worker's event loop wakes up: time the loop was busy with "
    "something else (every agent, timer and HTTP request of the worker shares it).",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
    registry=REGISTRY,
)
CONSUMER_LAG = Gauge(
    "leitstand_consumer_lag",
    "Records on a partition this worker consumes that it has not yet committed: end offset minus committed "
    "offset (the fetch position before the first commit), sampled every few seconds.",
    ["topic", "partition"],
    registry=REGISTRY,
)
BUILD_INFO = Gauge(
    "leitstand_build_info",
    "Always 1; the labels say which release (version) and source (commit) this worker runs.",
    ["version", "commit"],
    registry=REGISTRY,
)


class LagReport:
    """Writes ``leitstand_consumer_lag`` from a sample and removes the series of partitions this
    worker no longer owns (after a rebalance they belong to another worker's /metrics)."""

    def __init__(self) -> None:
        self.shown: set[tuple[str, str]] = set()

    def update(self, ends: dict[tuple[str, int], int], done: dict[tuple[str, int], int | None]) -> dict[tuple[str, int], int]:
        """``ends``: end offsets; ``done``: committed (next to read) or position per partition."""
        lags: dict[tuple[str, int], int] = {}
        for tp, end in ends.items():
            position = done.get(tp)
            lags[tp] = max(0, end - (position or 0))
        current = {(t, str(p)) for t, p in lags}
        for labels in self.shown - current:
            CONSUMER_LAG.remove(*labels)
        for (topic, partition), lag in lags.items():
            CONSUMER_LAG.labels(topic, str(partition)).set(lag)
        self.shown = current
        return lags


def loop_lag(slept_from: float, woke_at: float, tick_s: float = LOOP_TICK_S) -> float:
    """How much later than asked a ``sleep(tick_s)`` started at ``slept_from`` returned."""
    return max(0.0, woke_at - slept_from - tick_s)


def build_commit(checkout: Path | None = None) -> str:
    """The source commit: ``LEITSTAND_BUILD_COMMIT`` (an image built without .git sets it), else
    ``git rev-parse`` in the checkout, else ``unknown``."""
    env = os.environ.get("LEITSTAND_BUILD_COMMIT", "").strip()
    if env:
        return env[:40]
    checkout = checkout or Path(__file__).resolve().parents[1]
    try:
        out = subprocess.run(
            ["git", "-C", str(checkout), "rev-parse", "--short=12", "HEAD"], capture_output=True, text=True, timeout=2.0, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    commit = out.stdout.strip()
    return commit if out.returncode == 0 and commit else "unknown"


def set_build_info() -> tuple[str, str]:
    """``leitstand_build_info{version,commit} 1``; returns the two labels."""
    try:
        version = importlib.metadata.version("leitstand")
    except importlib.metadata.PackageNotFoundError:
        version = "unknown"
    commit = build_commit()
    BUILD_INFO.clear()
    BUILD_INFO.labels(version, commit).set(1)
    return version, commit


# --- data quality (detection/data_quality.py, streams/agents/data_quality.py) -----------------------

DQ_SOURCES = ("intersection", "pool")
DQ_READINGS = Counter(
    "leitstand_data_quality_readings_total",
    "Sensor values the data-quality watch judged, per series kind (intersection, pool).",
    ["series_kind"],
    registry=REGISTRY,
)
DQ_ISSUES = Counter(
    "leitstand_data_quality_issues_total",
    "Times a sensor stream began to show an issue; reason: missing, stuck, out_of_range, clock_skew, drift.",
    ["series_kind", "reason"],
    registry=REGISTRY,
)
DQ_DEGRADED = Gauge(
    "leitstand_data_quality_degraded_streams",
    "Sensor streams showing an issue now, per series kind (intersection, pool) and reason (the issue).",
    ["series_kind", "reason"],
    registry=REGISTRY,
)
DQ_STREAMS = Gauge(
    "leitstand_data_quality_streams",
    "Sensor streams (one quantity of one sensor) the data-quality watch knows, per series kind (intersection, pool).",
    ["series_kind"],
    registry=REGISTRY,
)
