"""``bench alarm-latency`` end to end on its own Tansu broker, split roles as in production: every
camera event becomes an alarm, and the background water readings are evaluated by the worker
that owns them (the water role, since the water rules left telemetry; the count read only the
telemetry worker's and said 0). The latency figures belong to the benchmark's JSON, not to a test."""

from __future__ import annotations

import pytest

from simulators.harness.bench_alarms import latency_benchmark
from streams.settings import Settings
from tests.conftest import CACHE_DIR

pytestmark = pytest.mark.integration


def test_every_camera_event_is_an_alarm_and_the_background_is_evaluated() -> None:
    result = latency_benchmark(
        Settings(_env_file=None, cache_dir=CACHE_DIR), engine="tansu", load_per_s=300, events=10, event_rate_per_s=5.0
    )
    assert result["worker_roles"] == ["critical", "water", "telemetry"]
    assert result["missing_alarms"] == 0 and result["motionless_swimmer_to_alarm"]["n"] == 10, result
    # a few seconds of 300 readings/s: most of them evaluated before the workers stop
    assert result["pool_readings_evaluated"] >= 0.5 * result["background_load_achieved_per_s"], result
