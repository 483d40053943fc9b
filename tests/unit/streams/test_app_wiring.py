"""The Faust app a worker runs: which agents each role gets, and the consumer's fetch wait."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from streams.app import create_app
from streams.settings import Settings

CRITICAL = {"pool-supervision-events", "alarm-lifecycle", "route-alert-commands", "notify-on-duty", "notifier-silences"}
WATER = {"pool-water-watch"}
TELEMETRY = {
    "intersection-frames",
    "forecast-history-intersections",
    "forecast-history-pools",
    "forecast-history-buses",
    "forecast-events",
    "data-quality-pool",
    "bus-watch",
    "probe-warnings",
}


CONTROL = {"signal-control"}


@pytest.mark.parametrize(
    ("role", "agents"),
    [
        ("all", CRITICAL | WATER | TELEMETRY | CONTROL),
        ("critical", CRITICAL),
        ("water", WATER),
        ("telemetry", TELEMETRY),
        ("control", CONTROL),
    ],
)
def test_roles_split_the_agents(role: str, agents: set[str], tmp_path) -> None:
    s = Settings(_env_file=None, worker_role=role, data_dir=tmp_path)
    app = create_app(s)
    assert set(app.agents) == agents
    assert app.conf.id == ("leitstand" if role == "all" else f"leitstand-{role}")


def test_the_early_warning_can_be_switched_off(tmp_path) -> None:
    s = Settings(_env_file=None, worker_role="telemetry", data_dir=tmp_path, probe_warning=False)
    assert set(create_app(s).agents) == TELEMETRY - {"probe-warnings"}


def test_worker_consumer_gets_the_configured_fetch_wait(tmp_path) -> None:
    s = Settings(_env_file=None, consumer_fetch_max_wait_ms=37, data_dir=tmp_path)
    app = create_app(s)

    async def build() -> int:
        consumer_of_app: Any = app.consumer  # Faust's private thread API: not in its ConsumerT
        thread = consumer_of_app._new_consumer_thread()
        consumer = thread._create_worker_consumer(app.transport)
        return consumer._fetch_max_wait_ms

    assert asyncio.run(build()) == 37


def test_web_server_binds_where_the_settings_say(tmp_path) -> None:
    """Faust binds 0.0.0.0 unless web_bind is given (issue 10, #5)."""
    default = create_app(Settings(_env_file=None, data_dir=tmp_path))
    assert default.conf.web_bind == "127.0.0.1"
    chosen = create_app(Settings(_env_file=None, data_dir=tmp_path, web_host="127.0.0.2"))
    assert chosen.conf.web_bind == "127.0.0.2"


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_broker_link_tells_when_the_broker_stopped_answering() -> None:
    from streams.faust_transport import BrokerLink

    clock = _Clock()
    link = BrokerLink(timeout_s=3.0, clock=clock)
    assert "no answer from the broker yet" in (link.problem() or "")
    link.answered(fetch=True)
    clock.now += 2.9
    assert link.problem() is None
    link.failed(ConnectionRefusedError("Connect call failed"), fetch=True)
    clock.now += 0.5
    problem = link.problem() or ""
    assert "no answer from the broker for 3.4 s" in problem and "ConnectionRefusedError: Connect call failed" in problem
    link.answered(fetch=False)  # a heartbeat got through, fetches still fail
    assert link.problem() is None
    clock.now += 3.0
    link.answered(fetch=False)
    assert "fetches failing for 3.5 s" in (link.problem() or "")
    link.answered(fetch=True)
    assert link.problem() is None


def test_broker_link_does_not_blame_the_broker_for_a_held_join() -> None:
    from streams.faust_transport import BrokerLink

    clock = _Clock()
    link = BrokerLink(timeout_s=3.0, clock=clock)
    link.answered(fetch=False)
    link.held = 1
    clock.now += 5
    assert "joining the consumer group" in (link.problem() or "")


def test_broker_watch_finds_lost_topics_and_offsets_that_went_back() -> None:
    from streams.faust_transport import BrokerWatch

    watch = BrokerWatch(lambda: ["a", "b"])
    assert watch.compare({"a": 2, "b": 1}, {("a", 0): 5, ("a", 1): 0, ("b", 0): 3}) is None
    assert watch.compare({"a": 2, "b": 1}, {("a", 0): 7, ("a", 1): 1, ("b", 0): 3}) is None  # growth is normal
    assert "topics vanished from the broker: b" in (watch.compare({"a": 2}, {("a", 0): 7, ("a", 1): 1}) or "")
    assert "end offset of a[0] went back from 7 to 0" in (watch.compare({"a": 2, "b": 1}, {("a", 0): 0, ("a", 1): 1, ("b", 0): 3}) or "")
    assert "now has 1 partitions, had 2" in (watch.compare({"a": 1, "b": 1}, {("a", 0): 7, ("b", 0): 3}) or "")
    # topics it never saw (created later) join the watch without complaint
    assert watch.compare({"a": 2, "b": 1, "c": 4}, {("a", 0): 7, ("a", 1): 1, ("b", 0): 3}) is None
    assert "c" in watch.partitions
