"""``bench pipeline`` on a real broker: a role's worker drains the topic, beside the raw drain,
and every bad record comes back as a dead letter with its reason."""

from __future__ import annotations

import pytest

from simulators.harness.bench import pipeline_run

# the benchmark's harness, not the broker, is under test here (both brokers run the pipeline tests)
pytestmark = [pytest.mark.integration, pytest.mark.parametrize("broker", ["tansu"], indirect=True)]


@pytest.mark.parametrize("role", ["telemetry", "control"])
def test_pipeline_bench_counts_every_bad_record(broker, settings_for, role: str) -> None:
    result = pipeline_run(settings_for(broker), frames=3000, intersections=100, role=role, bad_share=0.1)
    assert result["frames"] == 3000 and result["role"] == role
    assert sum(result["bad_records"].values()) == 300
    assert result["dead_letters"] == result["bad_records"], result
    assert result["every_bad_record_dead_lettered"] is True
    assert result["leitstand_worker_frames_per_s"] > 0 and 0 < result["ratio_to_baseline"] < 1
    if role == "control":  # every intersection configured: the worker decided, not only read
        assert result["signal_controller"] == "leitstand" and result["signal_plans_published"] > 0, result
    else:
        assert result["signal_controller"] is None and result["signal_plans_published"] == 0, result
