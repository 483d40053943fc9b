"""``bench city`` end to end at village scale: its own Tansu broker, a critical, a water, a control and a
telemetry worker, paced load on every input topic. What is checked is that each path's outputs
are counted from the workers' own histograms over the measured interval only, and that the
groups' positions are read; the latency figures themselves belong to the benchmark's JSON, not
to a test."""

from __future__ import annotations

import os

import pytest

from simulators.harness.bench_city import CityLoad, city_benchmark
from streams.settings import Settings
from tests.conftest import CACHE_DIR

pytestmark = pytest.mark.integration


def test_a_small_city_is_measured_on_every_path() -> None:
    load = CityLoad(intersections=20, detectors=8, buses=20, pools=2, camera_events_per_s=2.0)
    seconds = 12.0
    result = city_benchmark(
        Settings(_env_file=None, cache_dir=CACHE_DIR),
        engine="tansu",
        load=load,
        telemetry_workers=1,
        partitions=2,
        warmup_s=4.0,
        measure_s=seconds,
    )
    assert [w["role"] for w in result["workers"]] == ["critical", "water", "control", "telemetry"]
    assert all(w["cpu_share"] > 0 for w in result["workers"]), result["workers"]
    # the bulk roles lower their own priority; the alarm roles keep the one they were started with
    assert [w["nice"] for w in result["workers"]] == [os.nice(0), os.nice(0), max(5, os.nice(0)), max(5, os.nice(0))]
    for topic, offered in load.offered_per_s().items():
        assert result["sent_records_per_s"][topic] == pytest.approx(offered, rel=0.15), topic
    paths = result["event_to_output"]
    # each camera event is one alarm, each frame one decision of its intersection's controller;
    # counted over the interval only (the warm-up's are subtracted), give or take the edges
    cameras, decisions = paths["camera_to_alarm"]["outputs"], paths["frame_to_decision"]["outputs"]
    assert 0.6 * 2.0 * seconds <= cameras <= 1.4 * 2.0 * seconds, paths
    assert 0.6 * 20 * seconds <= decisions <= 1.4 * 20 * seconds, paths
    assert paths["camera_to_alarm"]["p99_s"] is not None
    behind = result["behind"]
    for group_topic in ("leitstand-bench-city-telemetry/sensors.intersection", "leitstand-bench-city-control/sensors.intersection"):
        assert group_topic in behind, sorted(behind)
    assert "leitstand-bench-city-critical/pool.supervision" in behind
    assert "leitstand-bench-city-water/sensors.pool" in behind
