"""`sumo eval --via-kafka`: frames through a real broker to a worker (role `all`) and plans back give
exactly the in-process result for the same seed (both brokers)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from simulators.sumo.cosim import KafkaSource
from simulators.sumo.loop import run
from streams.kafka_io import ensure_topics
from streams.stack import WorkerProcess, free_port, settings_env
from tests.sumo_nets import build

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_broker_path_gives_the_in_process_result(broker, settings_for, tmp_path: Path) -> None:
    cfg = build("single", tmp_path / "net", end_s=200)
    s = settings_for(broker)
    asyncio.run(ensure_topics(s))
    env = settings_env(
        {
            "kafka_bootstrap_servers": s.kafka_bootstrap_servers,
            "topic_prefix": s.topic_prefix,
            # every agent, as `leitstand worker` runs by default
            "app_id": s.app_id,
            "data_dir": s.data_dir,
            "worker_role": "all",
        }
    )
    worker = WorkerProcess(env, tmp_path / "worker.log", free_port())
    worker.start(timeout_s=90)
    try:
        source = KafkaSource(s)
        via = run(cfg, "leitstand", 7, source)
    finally:
        code = worker.stop()
    assert code == 0, worker.log_tail()
    local = run(cfg, "leitstand", 7)
    assert source.messages >= 200  # one reply per step at least, all through the broker
    assert via.trips == local.trips > 20
    assert (via.delay_mean, via.stage_changes, via.safety_violations) == (local.delay_mean, local.stage_changes, 0)
