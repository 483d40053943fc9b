"""`sumo eval --via-kafka`: frames through a real broker to a worker (role `all`) and plans back give
exactly the in-process result for the same seed (both brokers), also where two signals 15 m apart
see each other's driven plans (the worker's control desk marks what the neighbour still sends
onto the link, as the in-process source does: leitstand 1.8's ``hold_short_link``). The runner
reports what every simulated cabinet shows on ``signals.state`` each step, and the worker, which
checks the street follows its plans, must never find it not following (``signals.following``)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, cast

import pytest

from simulators.sumo.cosim import KafkaSource
from simulators.sumo.loop import RunResult, run
from streams.kafka_io import ensure_topics
from streams.stack import WorkerProcess, free_port, settings_env
from tests.sumo_nets import build

from .test_alarm_lifecycle import _wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _through_worker(s, tmp_path: Path, cfg: Path, **kw: Any) -> tuple[RunResult, KafkaSource]:
    """A leitstand run of ``cfg`` (seed 7) through the broker and a worker running every agent, as
    `leitstand worker` does by default; the worker must stop cleanly."""
    asyncio.run(ensure_topics(s))
    env = settings_env(
        {
            "kafka_bootstrap_servers": s.kafka_bootstrap_servers,
            "topic_prefix": s.topic_prefix,
            "app_id": s.app_id,
            "data_dir": s.data_dir,
            "worker_role": "all",
        }
    )
    worker = WorkerProcess(env, tmp_path / "worker.log", free_port())
    worker.start(timeout_s=90)
    try:
        source = KafkaSource(s)
        via = run(cfg, "leitstand", 7, source, **kw)
    finally:
        code = worker.stop()
    assert code == 0, worker.log_tail()
    reports = _wait_for(s, "signals.state", lambda rs: True, 0)
    assert len(reports) >= 100, len(reports)  # one per signal and step: the check had its input
    alarms = _wait_for(s, "alerts.lifecycle", lambda rs: True, 0)
    assert [a for a in alarms if a["kind"] == "signal_not_following"] == []
    return via, source


def test_two_signals_on_a_short_link_hold_through_the_broker(broker, settings_for, tmp_path: Path) -> None:
    """Two signals 15 m apart under demand that fills the link: through the broker the worker's
    control desk marks what the neighbour still sends onto it, and B or A holds for it, as in
    process. (The two paths are not compared decision by decision here: in process every signal
    sees its neighbour's plan of the step before, the worker the one it decided last, which may be
    this step's.)"""
    via, _ = _through_worker(settings_for(broker), tmp_path, build("pair", tmp_path / "net", end_s=600), breakdown=True)
    assert via.breakdown is not None and via.safety_violations == 0
    per_signal = cast("dict[str, dict[str, Any]]", via.breakdown["intersections"])
    rules = {tid: x["rules"] for tid, x in per_signal.items()}
    assert sum(r.get("hold_short_link", 0) for r in rules.values()) >= 1, rules


def test_broker_path_gives_the_in_process_result(broker, settings_for, tmp_path: Path) -> None:
    cfg = build("single", tmp_path / "net", end_s=200)
    via, source = _through_worker(settings_for(broker), tmp_path, cfg)
    local = run(cfg, "leitstand", 7)
    assert source.messages >= 200  # one reply per step at least, all through the broker
    assert via.trips == local.trips > 20
    assert (via.delay_mean, via.stage_changes, via.safety_violations) == (local.delay_mean, local.stage_changes, 0)
