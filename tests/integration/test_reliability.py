"""A worker stopped mid-stream (SIGTERM, or SIGKILL as a crash) and restarted loses nothing. Both brokers.

Delivery is at-least-once, so a window may be emitted twice after a crash; the contract is that
every window is emitted, and every emission of a window carries the same values.
Wall-clock idle closing is switched off so only event time closes windows here.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import orjson
import pytest

from simulators.city.frames import frames
from streams.kafka_io import ensure_topics, tail
from streams.records import encode
from streams.stack import WorkerProcess, free_port, same_place, settings_env
from tests.integration.test_pipeline import _send, expected_aggregates

pytestmark = pytest.mark.integration


def _worker(s, tmp_path: Path, name: str, store: str) -> WorkerProcess:
    return WorkerProcess(
        settings_env(
            {
                **same_place(s),
                "table_store": store,
                # no wall-clock closing here: the crash gap must not close windows early
                "aggregate_idle_close_s": 3600.0,
                "aggregate_lateness_s": 0.0,
                "batch_max": 200,
            }
        ),
        log_file=tmp_path / f"{name}.log",
        web_port=free_port(),
    )


def _decoded(worker: WorkerProcess, topic: str) -> float:
    try:
        return worker.metrics().get(f'leitstand_records_decoded_total{{topic="{topic}"}}', 0.0)
    except OSError:
        return 0.0


RECOVERY_BUG = pytest.mark.xfail(
    strict=False,
    raises=AssertionError,  # only the recovery symptom; a hung shutdown (pytest.fail) still fails
    reason="open bug: after a worker restart the table state recovered from the changelog can lag "
    "the committed source offsets, so a window is re-emitted with frames missing or not emitted; "
    "seen on both brokers in a quarter to a half of the runs (docs/architecture.md, Known gaps)",
)


@pytest.mark.parametrize(
    "stop_signal",
    [
        pytest.param(signal.SIGTERM, id="sigterm", marks=RECOVERY_BUG),
        pytest.param(signal.SIGKILL, id="sigkill", marks=RECOVERY_BUG),
    ],
)
def test_restart_keeps_aggregates_exact(broker, settings_for, tmp_path: Path, stop_signal: int) -> None:
    s = settings_for(broker)
    start = datetime.now(timezone.utc).replace(second=0, microsecond=0) - timedelta(minutes=40)
    all_frames = list(frames(intersections=20, start=start, interval_s=15.0, steps=150, seed=21))
    items = [(f.intersection_id.encode(), encode(f)) for f in all_frames]
    half = len(items) // 2
    asyncio.run(ensure_topics(s))
    topic = s.topic("sensors.intersection")

    # State recovers from the changelog topic. rocksdb:// is not covered here: with it, about 1 run
    # in 10 on Apache Kafka lost one frame of an early window after the SIGKILL (open issue,
    # docs/architecture.md "Known gaps").
    store = "memory://"
    first = _worker(s, tmp_path, "first", store)
    first.start(timeout_s=90)
    try:
        asyncio.run(_send(s, items[:half]))
        deadline = time.monotonic() + 60
        while _decoded(first, topic) < half * 0.6 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _decoded(first, topic) > 0, first.log_tail()
    finally:
        assert first.proc is not None
        first.proc.send_signal(stop_signal)  # SIGKILL: a crash, no commit, no flush
        try:
            first.proc.wait(30)
        except subprocess.TimeoutExpired:
            first.proc.kill()  # never leave a worker behind, even when this test fails
            first.proc.wait(10)
            pytest.fail(f"worker did not stop within 30 s of signal {stop_signal}: {first.log_tail()}")

    second = _worker(s, tmp_path, "second", store)
    second.start(timeout_s=90)
    try:
        asyncio.run(_send(s, items[half:]))
        # windows closed by event time: all but each intersection's last, still open
        last_end = max(f.event_time.timestamp() + f.interval_s for f in all_frames)
        want = {k: v for k, v in expected_aggregates(all_frames).items() if int(k.rsplit("/", 1)[1]) + 60 <= last_end}
        seen: dict[str, list[tuple]] = {}

        async def collect() -> None:
            async for m in tail(s, s.topic("aggregates"), from_beginning=True, idle_timeout_s=None):
                assert m.value is not None  # the worker publishes no tombstones here
                a = orjson.loads(m.value)
                seen.setdefault(a["aggregate_id"], []).append((a["count_sum"], a["occupancy_mean"], a["frames"], a["speed_kmh_mean"]))
                if set(seen) >= set(want):
                    return

        try:
            asyncio.run(asyncio.wait_for(collect(), 75))  # healthy runs finish in seconds
        except TimeoutError:
            pass
    finally:
        assert second.stop() == 0, second.log_tail()

    missing = sorted(set(want) - set(seen))
    assert not missing, f"{len(missing)} of {len(want)} windows missing, e.g. {missing[:8]}"
    for agg_id, emissions in seen.items():
        iid, _, w = agg_id.split("/")
        where = [
            ("first half" if i < half else "second half", f.event_time.isoformat())
            for i, f in enumerate(all_frames)
            if f.intersection_id == iid and int(f.event_time.timestamp()) // 60 * 60 == int(w)
        ]
        assert all(e == want[agg_id] for e in emissions), (broker.engine, agg_id, emissions, want[agg_id], where)
