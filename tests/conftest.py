"""Shared fixtures: real brokers (Tansu and Apache Kafka), isolated settings per test.

When ``CI=true`` a broker that cannot start fails the run; elsewhere a missing Java/Maven skips
the Apache Kafka half with the reason printed (``-ra`` shows it).
"""

from __future__ import annotations

import fcntl
import json
import os
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from streams.broker import BrokerError, BrokerInfo, start, stop
from streams.settings import Settings
from streams.stack import free_port

# fixtures of the real services started on loopback: `postgres`, `prometheus` (tests/services/)
pytest_plugins = ["tests.services.postgres", "tests.services.prometheus"]

REPO = Path(__file__).resolve().parents[1]
IN_CI = os.environ.get("CI", "").lower() == "true"
#: jars fetched once per machine, kept between runs (git-ignored)
CACHE_DIR = Path(os.environ.get("LEITSTAND_CACHE_DIR", REPO / ".leitstand" / "cache"))
#: readiness figures collected for the closing note / CI log
TIMINGS_FILE = REPO / ".leitstand" / "test-timings.json"


#: Integration and browser modules that keep the CPU busy by themselves: simulations (the demo's
#: city, SUMO), model fits, load generators, stress-ng. scripts/test runs the tests outside
#: tests/unit in two processes (pytest-xdist, ``--dist loadscope`` with the scheduler below); these
#: modules form one scope, so they run one after another in one process and never beside each
#: other, while the other process works through the modules that mostly wait on brokers and workers.
CPU_BOUND_MODULES = frozenset(
    {
        "test_demo",
        "test_forecasting",
        "test_sumo_cosim",
        "test_bench_city",
        "test_bench_alarm_latency",
        "test_bench_pipeline",
        "test_pipeline",
        "test_control_recovery",
        "test_simulate_city",
        "test_signal_fairness",
        # not CPU-bound, but its live-update checks count seconds: never beside the ones above
        "test_console",
    }
)


def xdist_scope_of(nodeid: str) -> str:
    """The unit of work one process takes: the test's module (its module-scoped fixtures are set
    up once), or the CPU-bound group."""
    module = nodeid.split("::", 1)[0]
    return "cpu-bound" if Path(module).stem in CPU_BOUND_MODULES else module


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """``--dist loadscope`` with the scopes of ``xdist_scope_of``. (``--dist loadgroup`` with
    ``xdist_group`` marks cannot do it: pytest-xdist 3.8 renames the items through an attribute
    that pytest 9 no longer reads, so the marks are silently ignored.)

    It also refuses tests that share a node id, which pytest-xdist tracks work by: schemathesis
    collects one item per API operation under the test function's id, and in two processes 1 of
    the 12 operations of test_http_api_fuzz.py ran while the run reported success. scripts/test
    runs that module in a process of its own; this keeps the hole from reopening."""
    dist = config.getoption("dist")
    if dist not in ("loadscope", "loadfile"):
        return None
    from xdist.scheduler import LoadFileScheduling, LoadScopeScheduling  # type: ignore[import-untyped]

    class Checked(LoadScopeScheduling):
        def schedule(self) -> None:
            if self.collection is None and self.collection_is_completed:
                ids: list[str] = next(iter(self.registered_collections.values()), [])
                shared = [nodeid for nodeid, n in Counter(ids).items() if n > 1]
                if shared:
                    raise RuntimeError(f"node ids that name more than one test (pytest-xdist would run one of each): {shared[:3]}")
            super().schedule()

    class ByFile(Checked):
        _split_scope = LoadFileScheduling._split_scope

    class ModuleOrCpuBound(Checked):
        def _split_scope(self, nodeid: str) -> str:
            return xdist_scope_of(nodeid)

    return (ByFile if dist == "loadfile" else ModuleOrCpuBound)(config, log)


def _record_timing(name: str, seconds: float) -> None:
    """Add one figure to the timings file; the integration tests run in two processes
    (pytest-xdist), so read-modify-write happens under a lock and each process's figure carries
    its name (``tansu_broker_ready_s@gw1``)."""
    TIMINGS_FILE.parent.mkdir(parents=True, exist_ok=True)
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    key = f"{name}@{worker}" if worker else name
    with open(TIMINGS_FILE.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        data = json.loads(TIMINGS_FILE.read_text()) if TIMINGS_FILE.exists() else {}
        data[key] = round(seconds, 3)
        TIMINGS_FILE.write_text(json.dumps(data, indent=2))


def _start_on_a_free_port(engine: str, state: Path, attempts: int = 3) -> BrokerInfo:
    """``start`` on a port that was free a moment ago; on a busy machine another process (an
    outgoing connection takes an ephemeral port too) can take it before the broker binds it,
    which once cost a CI run every Kafka test: then try another port."""
    for attempt in range(attempts):
        try:
            return start(engine, state, CACHE_DIR, "127.0.0.1", free_port(), progress=False)
        except BrokerError as exc:
            if "already in use" not in str(exc) or attempt == attempts - 1:
                raise
    raise AssertionError("unreachable")


@pytest.fixture(scope="session", params=["tansu", "kafka"])
def broker(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerInfo]:
    """A real broker of each engine, on a free loopback port, for the whole session."""
    engine = request.param
    state = tmp_path_factory.mktemp(f"broker-{engine}")
    try:
        info = _start_on_a_free_port(engine, state)
    except BrokerError as exc:
        if IN_CI:
            pytest.fail(f"{engine} broker could not start in CI: {exc}")
        pytest.skip(f"{engine} broker unavailable here: {exc}")
    _record_timing(f"{engine}_broker_ready_s", info.ready_after_s or 0.0)
    yield info
    stop(state, engine)


def settings_maker(root: Path) -> Any:
    """Settings bound to a broker, with a topic prefix and group of their own, state under ``root``
    (the function behind ``settings_for``, for fixtures of a wider scope)."""

    def make(info: BrokerInfo, **overrides: Any) -> Settings:
        tag = uuid.uuid4().hex[:8]
        base: dict[str, Any] = dict(
            kafka_bootstrap_servers=info.bootstrap,
            topic_prefix=f"t{tag}.",
            app_id=f"test-{tag}",
            state_dir=root / "state",
            data_dir=root / "worker",
            cache_dir=CACHE_DIR,
        )
        base.update(overrides)
        return Settings(_env_file=None, **base)

    return make


@pytest.fixture
def settings_for(tmp_path: Path):
    """Settings bound to a broker, with a topic prefix and group of their own."""
    return settings_maker(tmp_path)


@pytest.fixture
def record_timing():
    return _record_timing
