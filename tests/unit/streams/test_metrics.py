"""The worker's metrics: latencies start where docs/metrics.md says, label sets stay bounded,
every metric has HELP text, runtime samplers write what they measured."""

from __future__ import annotations

import asyncio
import subprocess
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from structlog.testing import capture_logs

from streams import metrics
from streams.http import probes
from streams.metrics import REGISTRY, EventClock, LagReport

#: label names whose values come from a small fixed set (topics and partitions: the catalogue)
BOUNDED_LABELS = {
    "channel",
    "topic",
    "partition",
    "reason",
    "transition",
    "severity",
    "op",
    "outcome",
    "model",
    "trigger",
    "status",
    "action",
    "series_kind",
    "transport_mode",
    "path",
    "version",
    "commit",
}


def sample(name: str, **labels: str) -> float:
    """The current value of one sample of the worker's registry (0 when absent)."""
    value = REGISTRY.get_sample_value(name, labels)
    return 0.0 if value is None else value


def count_sum(name: str, **labels: str) -> tuple[float, float]:
    return sample(f"{name}_count", **labels), sample(f"{name}_sum", **labels)


def test_every_metric_has_help_text_and_only_bounded_labels() -> None:
    families = list(text_string_to_metric_families(generate_latest(REGISTRY).decode()))
    names = {f.name for f in families}
    assert {"leitstand_event_to_output_seconds", "leitstand_consumer_lag", "leitstand_build_info"} <= names
    assert any(n.startswith("process_") for n in names) and any(n.startswith("python_") for n in names)
    for family in families:
        assert family.documentation.strip(), f"{family.name} has no HELP text"
        if family.name.startswith("leitstand_"):
            for s in family.samples:
                unbounded = set(s.labels) - BOUNDED_LABELS - {"le"}
                assert not unbounded, f"{family.name} has labels {unbounded} that could take an id per entity"


def test_latency_series_exist_before_the_first_observation() -> None:
    text = generate_latest(REGISTRY).decode()
    for path in metrics.PATHS:
        assert f'leitstand_event_to_output_seconds_bucket{{le="+Inf",path="{path}"}}' in text
    for severity in metrics.SEVERITIES:
        assert f'leitstand_alarm_ack_seconds_count{{severity="{severity}"}}' in text


def test_wall_clock_events_start_at_the_event_time_never_after_receipt() -> None:
    clock = EventClock.for_reference("now")
    before = count_sum("leitstand_event_to_output_seconds", path="camera_to_alarm")
    received, now = 1000.0, 1000.3
    # one event 2 s old, one whose device clock runs 5 s ahead (starts at receipt instead)
    assert clock.observe("camera_to_alarm", [998.0, 1005.0], received, now=now) == 2
    after = count_sum("leitstand_event_to_output_seconds", path="camera_to_alarm")
    assert after[0] - before[0] == 2
    assert after[1] - before[1] == pytest.approx(2.3 + 0.3)


def test_simulated_event_times_start_at_receipt() -> None:
    clock = EventClock.for_reference("stream")
    before = count_sum("leitstand_event_to_output_seconds", path="reading_to_alarm")
    clock.observe("reading_to_alarm", [5.0, 1e9], received=2000.0, now=2000.25)  # epochs of a simulation
    after = count_sum("leitstand_event_to_output_seconds", path="reading_to_alarm")
    assert after[1] - before[1] == pytest.approx(0.5)
    # a quarter second lands at or below the 0.25 s bucket: nothing hid in +Inf
    assert sample("leitstand_event_to_output_seconds_bucket", path="reading_to_alarm", le="0.25") >= 2


def test_aggregates_are_timed_from_the_newest_frame_of_their_intersection() -> None:
    clock = EventClock(wall_clock_events=True)
    frames = [("K1", 90.0), ("K1", 95.0), ("K2", 50.0)]
    before = count_sum("leitstand_event_to_output_seconds", path="frame_to_aggregate")
    n = clock.observe_keyed("frame_to_aggregate", frames, ["K1", "K1", "K2", "K9"], received=100.0, now=100.0)
    after = count_sum("leitstand_event_to_output_seconds", path="frame_to_aggregate")
    assert n == 3  # K9 had no frame in the batch: not observed
    assert after[1] - before[1] == pytest.approx(5 + 5 + 50)


@dataclass
class Frame:
    event_time: datetime
    interval_s: float


@dataclass
class Command:
    op: str
    event_time: datetime


def test_frame_end_and_raise_times() -> None:
    t = datetime(2026, 5, 1, 12, 0, tzinfo=timezone.utc)
    assert metrics.frame_end(Frame(t, 15.0)) == t.timestamp() + 15.0
    commands = [Command("raise", t), Command("clear", t + timedelta(seconds=1)), Command("raise", t + timedelta(seconds=2))]
    assert metrics.raise_times(commands) == [t.timestamp(), t.timestamp() + 2]


@dataclass
class Alarm:
    alarm_id: str
    severity: str
    raised_at: float
    acknowledged_at: float | None = None


@dataclass
class Change:
    transition: str
    alarm: Alarm


def test_ack_latency_from_the_alarm_times_with_wall_clock_events() -> None:
    clock = EventClock(wall_clock_events=True)
    before = count_sum("leitstand_alarm_ack_seconds", severity="critical")
    clock.observe_alarms([Change("raised", Alarm("a@P1~1", "critical", 100.0))], now=101.0)
    clock.observe_alarms([Change("acknowledged", Alarm("a@P1~1", "critical", 100.0, acknowledged_at=142.0))], now=143.0)
    after = count_sum("leitstand_alarm_ack_seconds", severity="critical")
    assert after[0] - before[0] == 1 and after[1] - before[1] == pytest.approx(42.0)


def test_ack_latency_on_the_wall_clock_with_simulated_event_times() -> None:
    clock = EventClock(wall_clock_events=False)
    before = count_sum("leitstand_alarm_ack_seconds", severity="major")
    clock.observe_alarms([Change("raised", Alarm("b@P1~1", "major", 5.0))], now=1000.0)
    clock.observe_alarms([Change("acknowledged", Alarm("b@P1~1", "major", 5.0, acknowledged_at=9e9))], now=1030.0)
    # an ack of an alarm raised before this worker started is not guessed at
    clock.observe_alarms([Change("acknowledged", Alarm("c@P1~1", "major", 5.0, acknowledged_at=9e9))], now=1031.0)
    after = count_sum("leitstand_alarm_ack_seconds", severity="major")
    assert after[0] - before[0] == 1 and after[1] - before[1] == pytest.approx(30.0)


def test_remembered_raises_are_bounded() -> None:
    clock = EventClock(wall_clock_events=False)
    clock.MAX_RAISES = 3
    clock.observe_alarms([Change("raised", Alarm(f"x@P~{i}", "minor", 0.0)) for i in range(10)], now=1.0)
    assert list(clock.raised_wall) == ["x@P~7", "x@P~8", "x@P~9"]


def test_webhook_latency_only_for_final_outcomes() -> None:
    before = {o: count_sum("leitstand_webhook_delivery_seconds", outcome=o) for o in ("delivered", "failed")}
    metrics.observe_delivery("retry", 10.0, 11.0)
    metrics.observe_delivery("delivered", 10.0, 10.5)
    metrics.observe_delivery("failed", 10.0, 70.0)
    metrics.observe_delivery("delivered", None, 70.0)  # planned by a version without created_at
    delivered = count_sum("leitstand_webhook_delivery_seconds", outcome="delivered")
    failed = count_sum("leitstand_webhook_delivery_seconds", outcome="failed")
    assert delivered[0] - before["delivered"][0] == 1 and delivered[1] - before["delivered"][1] == pytest.approx(0.5)
    assert failed[0] - before["failed"][0] == 1 and failed[1] - before["failed"][1] == pytest.approx(60.0)
    assert REGISTRY.get_sample_value("leitstand_webhook_delivery_seconds_count", {"outcome": "retry"}) is None


def test_forecast_error_is_labelled_by_series_kind_and_averaged_over_its_series() -> None:
    assert metrics.FORECAST_ABS_ERROR._labelnames == ("series_kind",)
    for i in range(200):  # a city's worth of series: still one label value per kind
        metrics.record_forecast_error(f"intersection/K{i}", 10.0 if i % 2 else 20.0)
    metrics.record_forecast_error("pool/P1", 3.0)
    metrics.record_forecast_error("bus/L7", 0.2)
    metrics.record_forecast_error("weather/x", 1.0)
    assert sample("leitstand_forecast_abs_error", series_kind="intersection") == pytest.approx(15.0)
    assert sample("leitstand_forecast_abs_error", series_kind="pool") == pytest.approx(3.0)
    assert sample("leitstand_forecast_abs_error", series_kind="bus") == pytest.approx(0.2)
    assert sample("leitstand_forecast_abs_error", series_kind="other") == pytest.approx(1.0)
    kinds = {s.labels["series_kind"] for s in list(metrics.FORECAST_ABS_ERROR.collect())[0].samples}
    assert kinds == {"intersection", "pool", "bus", "other"}
    assert metrics.series_kind("intersection/a/b") == "intersection" and metrics.series_kind("nokind") == "other"


def test_interval_outcomes_are_counted_per_series_kind() -> None:
    def count(kind: str, outcome: str) -> float:
        return REGISTRY.get_sample_value("leitstand_forecast_interval_total", {"series_kind": kind, "outcome": outcome}) or 0.0

    before = {o: count("pool", o) for o in ("inside", "below", "above")}
    for outcome in ("inside", "inside", "inside", "below", "above"):
        metrics.record_interval_outcome("pool/P1", outcome)
    after = {o: count("pool", o) - before[o] for o in before}
    assert after == {"inside": 3.0, "below": 1.0, "above": 1.0}


def test_consumer_lag_per_partition_and_revoked_partitions_removed() -> None:
    report = LagReport()
    lags = report.update({("t.sensors", 0): 120, ("t.sensors", 1): 7, ("t.alerts", 0): 3}, {("t.sensors", 0): 100, ("t.sensors", 1): None})
    assert lags == {("t.sensors", 0): 20, ("t.sensors", 1): 7, ("t.alerts", 0): 3}
    assert sample("leitstand_consumer_lag", topic="t.sensors", partition="0") == 20
    report.update({("t.sensors", 0): 130}, {("t.sensors", 0): 130})  # partition 1 and t.alerts went to another worker
    assert sample("leitstand_consumer_lag", topic="t.sensors", partition="0") == 0
    assert REGISTRY.get_sample_value("leitstand_consumer_lag", {"topic": "t.sensors", "partition": "1"}) is None
    assert REGISTRY.get_sample_value("leitstand_consumer_lag", {"topic": "t.alerts", "partition": "0"}) is None
    report.update({}, {})


def test_event_loop_ticker_measures_a_blocked_loop_and_warns() -> None:
    before = count_sum("leitstand_event_loop_lag_seconds")
    late_before = sample("leitstand_event_loop_lag_seconds_count") - sample("leitstand_event_loop_lag_seconds_bucket", le="0.05")

    async def run() -> None:
        ticker = asyncio.ensure_future(probes.tick_forever(tick_s=0.02, warn_s=0.05))
        await asyncio.sleep(0.05)
        time.sleep(0.15)  # something hogs the loop: the next wake-up is ~150 ms late
        await asyncio.sleep(0.1)
        ticker.cancel()

    with capture_logs() as logs:
        asyncio.run(run())
    after = count_sum("leitstand_event_loop_lag_seconds")
    late_after = sample("leitstand_event_loop_lag_seconds_count") - sample("leitstand_event_loop_lag_seconds_bucket", le="0.05")
    assert after[0] - before[0] >= 4
    assert late_after - late_before >= 1 and after[1] - before[1] >= 0.1
    warnings = [e for e in logs if e["event"] == "event loop lagging"]
    assert len(warnings) == 1 and warnings[0]["lag_ms"] >= 100 and warnings[0]["log_level"] == "warning"


def test_loop_lag_is_never_negative() -> None:
    assert metrics.loop_lag(10.0, 10.3, 0.25) == pytest.approx(0.05)
    assert metrics.loop_lag(10.0, 10.2, 0.25) == 0.0


def test_build_info_names_version_and_commit(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("LEITSTAND_BUILD_COMMIT", raising=False)
    version, commit = metrics.set_build_info()
    head = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], capture_output=True, text=True, check=False).stdout.strip()
    assert version != "unknown" and commit == (head or "unknown")
    assert sample("leitstand_build_info", version=version, commit=commit) == 1
    assert metrics.build_commit(tmp_path) == "unknown"  # not a checkout
    monkeypatch.setenv("LEITSTAND_BUILD_COMMIT", "abc123def456")
    assert metrics.set_build_info()[1] == "abc123def456"
    families = [f for f in REGISTRY.collect() if f.name == "leitstand_build_info"]
    assert [s.labels["commit"] for s in families[0].samples] == ["abc123def456"]  # one series, the current build


def test_partition_end_takes_the_largest_known_end() -> None:
    from streams.http.probes import partition_end

    assert partition_end(8, 10, 9) == 10  # Tansu's ListOffsets under-reports; the fetch's high watermark does not
    assert partition_end(8, None, 10) == 10  # no end before what the consumer already read
    assert partition_end(12, 10, 10) == 12
    assert partition_end(None, None, None) is None
    assert partition_end(-1, None, 3) == 3  # -1: unknown
