"""Schemathesis against a real worker on a real (Tansu) broker, driven by docs/openapi.yaml.

Every operation of the description is called with generated valid and invalid parameters and
bodies (schemathesis' examples, coverage and fuzzing phases) and every answer checked: no 5xx,
status code, content type, headers and body as the description says, invalid input refused,
and auth enforced (schemathesis repeats calls without and with a wrong token and expects a
refusal). Budget: ``budget(n)`` from tests/fuzzing.py (``LEITSTAND_FUZZ_SCALE`` multiplies it).

The worker holds a real open alarm and a real intersection in advisory mode, so the happy paths
(202, the alarm list with content) are reached too, not only 404s.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis

from streams.broker import BrokerError, start, stop
from streams.kafka_io import ensure_topics
from streams.settings import Settings
from streams.stack import WorkerProcess, free_port, same_place, settings_env
from tests.conftest import CACHE_DIR, IN_CI, REPO
from tests.fuzzing import budget
from tests.integration.test_alarm_lifecycle import _send
from tests.integration.test_http_api_auth import TOKEN, Api, _camera_event, _open_alarm
from tests.integration.test_signal_control import MODEL, _frames, _iso

pytestmark = [pytest.mark.integration, pytest.mark.fuzz]

SPEC = REPO / "docs" / "openapi.yaml"
schema = schemathesis.openapi.from_path(SPEC)


def _real_resources(settings: Settings, api: Api) -> dict[str, list[str]]:
    """Open alarms on three pools and a pending plan at K101 (advisory), so changes can succeed."""
    for pool in ("P1", "P2", "P3"):
        asyncio.run(_camera_event(settings, pool, f"E-{pool}"))
    alarms = [_open_alarm(api, pool)["alarm_id"] for pool in ("P1", "P2", "P3")]
    t0 = time.time() - 600.0
    config = {
        "schema_version": 1,
        "event_time": _iso(t0),
        "intersection_id": "K101",
        "model": MODEL,
        "controller": "webster",
        "mode": "advisory",
        "session": "fuzz",
        "approval_timeout_s": 3600.0,
        "params": {"recompute_every_cycles": 1},
    }
    asyncio.run(_send(settings, "signals.config", [config], "intersection_id"))
    asyncio.run(_send(settings, "sensors.intersection", _frames(t0, range(25)), "intersection_id"))
    deadline = time.monotonic() + 30
    plans: list[str] = []
    while not plans and time.monotonic() < deadline:
        plans = [p["plan_id"] for p in api.bearer("GET", "/signals/plans")[1]["plans"]]
        time.sleep(0.3)
    assert plans, "the advisory intersection proposed no plan"
    return {"alert_id": alarms, "intersection": ["K101"], "plan_id": plans}


@pytest.fixture(scope="module")
def worker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, list[str]]]]:
    """A worker (role all) on its own Tansu broker, holding open alarms and a pending plan."""
    state = tmp_path_factory.mktemp("fuzz-broker")
    try:
        info = start("tansu", state, CACHE_DIR, "127.0.0.1", free_port(), progress=False)
    except BrokerError as exc:
        if IN_CI:
            pytest.fail(f"tansu broker could not start in CI: {exc}")
        pytest.skip(f"tansu broker unavailable here: {exc}")
    tag = uuid.uuid4().hex[:8]
    s = Settings(
        _env_file=None,
        kafka_bootstrap_servers=info.bootstrap,
        topic_prefix=f"f{tag}.",
        app_id=f"fuzz-{tag}",
        data_dir=state / "worker",
        api_token=TOKEN,
    )
    asyncio.run(ensure_topics(s))
    env = settings_env(
        {
            **same_place(s),
            "api_token": TOKEN,
        }
    )
    proc = WorkerProcess(env, state / "worker.log", free_port())
    try:
        proc.start(timeout_s=90)
        yield f"http://127.0.0.1:{proc.web_port}", _real_resources(s, Api(proc.web_port))
    finally:
        code = proc.stop()
        stop(state, "tansu")
    assert code == 0, proc.log_tail(20)


def _aim_at_real_resources(case: Any, real: dict[str, list[str]]) -> None:
    """Point about half of the valid cases at existing alarms/plans (a random id is always a 404).

    Only valid (positive) cases: a negative case's path parameter may be the invalid part.
    The choice is seeded by the generated values, so a failing example replays the same way.
    """
    if case.meta is None or not case.meta.generation.mode.is_positive or not case.path_parameters:
        return
    rng = random.Random(repr(sorted(case.path_parameters.items())))
    if rng.random() < 0.5:
        for name in case.path_parameters:
            if name in real:
                case.path_parameters[name] = rng.choice(real[name])


@schema.parametrize()
@budget(12)  # per operation; scripts/fuzz multiplies it (LEITSTAND_FUZZ_SCALE) for the long run
def test_api_conforms_to_its_description(case, worker: tuple[str, dict[str, list[str]]]) -> None:
    base_url, real = worker
    _aim_at_real_resources(case, real)
    case.call_and_validate(base_url=base_url, headers={"Authorization": f"Bearer {TOKEN}"})


def test_description_lists_every_route_the_worker_serves() -> None:
    """The description and the views registered by streams/http/ must not drift apart."""
    described = {path for path in schema.raw_schema["paths"]}
    registered = set()
    for module in ("streams/http/alerts.py", "streams/http/signals.py", "streams/http/probes.py", "streams/http/explain.py"):
        text = (REPO / module).read_text()
        for line in text.splitlines():
            line = line.strip()
            if line.startswith('@app.page("'):
                registered.add(line.split('"')[1])
    assert registered - {"/openapi.yaml", "/openapi.json"} <= described, registered - described
    assert described <= registered | {"/openapi.yaml"}, described - registered
