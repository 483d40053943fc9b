"""`leitstand simulate city` through a real broker: what the generator emits arrives, truth too."""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from pathlib import Path

import orjson
import pytest

from simulators.city import City, CityConfig
from tests.cli_helpers import leitstand

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_simulate_city_publishes_streams_and_truth(broker, settings_for, tmp_path: Path) -> None:
    s = settings_for(broker)
    env = {"LEITSTAND_KAFKA_BOOTSTRAP_SERVERS": s.kafka_bootstrap_servers, "LEITSTAND_TOPIC_PREFIX": s.topic_prefix}
    start = "2026-07-02T06:00:00+00:00"
    truth = tmp_path / "truth.jsonl"
    run = leitstand(
        "simulate",
        "city",
        "--intersections",
        "4",
        "--pools",
        "1",
        "--bus-lines",
        "1",
        "--speed",
        "0",
        "--duration",
        "0.5",
        "--start",
        start,
        "--seed",
        "5",
        "--truth",
        str(truth),
        env=env,
        timeout=180,
    )
    assert run.returncode == 0, run.stderr
    city = City(CityConfig(intersections=4, pools=1, bus_lines=1, seed=5), start=datetime.fromisoformat(start), duration_s=1800)
    expected = Counter(e.topic for e in city.stream())
    assert truth.read_text() == "".join(t.to_line() + "\n" for t in city.truth())
    for topic, n in expected.items():
        got = leitstand("tail", topic, "--from-beginning", "--idle-timeout", "3", env=env, timeout=60)
        assert len(got.stdout.splitlines()) == n, topic
    frames = leitstand("tail", "sensors.intersection", "--from-beginning", "-n", "1", env=env, timeout=60)
    assert orjson.loads(frames.stdout)["intersection_id"].startswith("K")
