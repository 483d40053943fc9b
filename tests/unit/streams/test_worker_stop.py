"""The worker's last wait before its event loop closes: until the tasks cancelled at shutdown have
run their cancellation, never longer than the fixed 1 s mode slept there before."""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

import faust

from streams.worker import _until_other_tasks_done, _worker_class


def test_nothing_left_returns_at_once() -> None:
    async def main() -> float:
        t0 = time.monotonic()
        await _until_other_tasks_done(limit_s=1.0)
        return time.monotonic() - t0

    assert asyncio.run(main()) < 0.5


def test_a_cancelled_task_finishes_its_cleanup_first() -> None:
    cleaned: list[str] = []

    async def busy() -> None:
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            await asyncio.sleep(0.2)  # e.g. a consumer leaving its group
            cleaned.append("done")
            raise

    async def main() -> None:
        task = asyncio.create_task(busy())
        await asyncio.sleep(0)
        task.cancel()  # what mode's _gather_all does before its sentinel
        await _until_other_tasks_done(limit_s=1.0)
        assert task.done()

    asyncio.run(main())
    assert cleaned == ["done"]


def test_a_task_that_never_ends_is_given_the_same_1_s_as_before() -> None:
    async def main() -> float:
        stuck = asyncio.create_task(asyncio.sleep(60))
        t0 = time.monotonic()
        await _until_other_tasks_done(limit_s=1.0)
        waited = time.monotonic() - t0
        stuck.cancel()
        return waited

    assert 1.0 <= asyncio.run(main()) < 2.0


def test_the_worker_uses_it_as_mode_s_sentinel() -> None:
    worker_class = _worker_class()
    assert issubclass(worker_class, faust.Worker)
    assert worker_class._sentinel_task is not faust.Worker._sentinel_task


def test_the_configured_log_level_holds_after_faust_sets_up_logging(tmp_path) -> None:
    """Faust's worker lowered the root logger to DEBUG at level WARN (for a terminal spinner):
    every library debug call then built a log record, ~4 % of a telemetry worker's CPU."""
    import logging

    from streams.app import create_app
    from streams.logs import logging_config
    from streams.settings import Settings

    app = create_app(Settings(_env_file=None, data_dir=tmp_path))
    root = logging.getLogger()
    saved = (root.level, list(root.handlers))
    try:
        config = logging_config("warning", "console")
        worker = _worker_class()(app, loglevel="warn", logging_config=config, quiet=True, redirect_stdouts=False)
        worker._setup_logging()
        assert root.level == logging.WARNING
        assert not logging.getLogger("faust.topics").isEnabledFor(logging.DEBUG)
    finally:
        root.setLevel(saved[0])
        root.handlers[:] = saved[1]


def test_the_telemetry_role_gathers_records_the_alarm_roles_do_not(tmp_path) -> None:
    from streams.app import create_app
    from streams.settings import Settings

    def linger(**kw: Any) -> float:
        return float(create_app(Settings(_env_file=None, data_dir=tmp_path, **kw)).conf.producer_linger)

    assert linger(worker_role="telemetry") == 0.010
    assert linger(worker_role="critical") == linger(worker_role="all") == linger(worker_role="control") == 0.0
    assert linger(worker_role="critical", producer_linger_ms=3) == 0.003


def test_the_bulk_roles_lower_their_priority_and_never_raise_it(tmp_path) -> None:
    """Under CPU contention the kernel must serve camera events and water limits first: the
    telemetry and control workers raise their own niceness before any thread starts. Run in a
    child process (niceness cannot be taken back), once from 0 and once from an already higher
    niceness, which is kept."""
    import subprocess
    import sys

    from streams.settings import BULK_NICE, Settings

    def nice(**kw: Any) -> int:
        return Settings(_env_file=None, data_dir=tmp_path, **kw).niceness

    assert nice(worker_role="telemetry") == nice(worker_role="control") == BULK_NICE
    assert nice(worker_role="critical") == nice(worker_role="water") == nice(worker_role="all") == 0
    assert nice(worker_role="critical", worker_nice=3) == 3

    probe = "import os, sys; from streams.worker import _lower_priority; _lower_priority(int(sys.argv[1])); print(os.nice(0))"
    start = os.nice(0)
    lowered = subprocess.run([sys.executable, "-c", probe, str(start + 5)], capture_output=True, text=True, check=True)
    assert int(lowered.stdout) == start + 5
    kept = subprocess.run(["nice", "-n", "9", sys.executable, "-c", probe, str(start + 5)], capture_output=True, text=True, check=True)
    assert int(kept.stdout) == min(start + 9, 19)
