"""The Faust app a worker runs: which agents each role gets, and the consumer's fetch wait."""

from __future__ import annotations

import asyncio

import pytest

from streams.app import create_app
from streams.settings import Settings

CRITICAL = {"pool-supervision-events", "alarm-lifecycle", "route-alert-commands", "notify-on-duty"}
TELEMETRY = {"aggregate-detector-frames", "pool-water-watch", "traffic-incident-watch",
             "forecast-history-intersections", "forecast-history-pools", "forecast-events"}


CONTROL = {"signal-control"}


@pytest.mark.parametrize(("role", "agents"), [("all", CRITICAL | TELEMETRY | CONTROL), ("critical", CRITICAL),
                                              ("telemetry", TELEMETRY), ("control", CONTROL)])
def test_roles_split_the_agents(role: str, agents: set[str], tmp_path) -> None:
    s = Settings(_env_file=None, worker_role=role, data_dir=tmp_path)  # type: ignore[call-arg]
    app = create_app(s)
    assert set(app.agents) == agents
    assert app.conf.id == ("leitstand" if role == "all" else f"leitstand-{role}")


def test_worker_consumer_gets_the_configured_fetch_wait(tmp_path) -> None:
    s = Settings(_env_file=None, consumer_fetch_max_wait_ms=37, data_dir=tmp_path)  # type: ignore[call-arg]
    app = create_app(s)

    async def build() -> int:
        thread = app.consumer._new_consumer_thread()
        consumer = thread._create_worker_consumer(app.transport)
        return consumer._fetch_max_wait_ms

    assert asyncio.run(build()) == 37
