"""Apache Kafka stopped for 30 s mid-stream and started again (issue 12, "Broker outage").

The producers of the command line (``simulate frames``, ``replay``, ``produce`` reading a pipe)
and a worker run through the outage and resume by themselves: every frame is in exactly the
windows the oracle computes (a window re-emitted after the outage must carry the same values:
de-duplicated by ``aggregate_id``), every camera event raised its alarm, ``/ready`` answers 503
with the reason while the broker is away and 200 once it is back. Kafka only: Tansu keeps
everything in memory, so its restart is a lost state, tested in test_worker_broker.py (the
worker stops with one line) and below for a worker in the middle of a stream.
"""

from __future__ import annotations

import asyncio
import csv
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import orjson
import pytest

from simulators.city.frames import frames
from streams.broker import BrokerError, BrokerInfo, start, stop
from streams.kafka_io import ensure_topics, tail
from streams.settings import Settings
from streams.stack import WorkerProcess, free_port, ready_state, same_place, settings_env
from tests.conftest import CACHE_DIR, IN_CI
from tests.oracle import detector_windows

pytestmark = [pytest.mark.integration, pytest.mark.slow]

OUTAGE_S = 30.0
INTERSECTIONS, INTERVAL_S, MINUTES, FRAME_SPEED = 8, 15.0, 40, 40.0  # 1,280 frames over ~60 s
EVENTS = 12  # camera events through replay, and as many through produce


def wait_for(predicate: Callable[[], Any], timeout_s: float, step_s: float = 0.25) -> Any:
    """``predicate()`` once it is truthy, else its last value after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step_s)
    return predicate()


@pytest.fixture
def own_kafka(tmp_path: Path) -> Iterator[tuple[BrokerInfo, Path]]:
    """An Apache Kafka of this test's own (durable log dir), which the test stops and restarts."""
    state = tmp_path / "broker-state"
    try:
        info = start("kafka", state, CACHE_DIR, "127.0.0.1", free_port(), progress=False)
    except BrokerError as exc:
        if IN_CI:
            pytest.fail(f"kafka broker could not start in CI: {exc}")
        pytest.skip(f"kafka broker unavailable here: {exc}")
    yield info, state
    stop(state, "kafka")


def _cli(args: list[str], env: dict[str, str], log: Path, stdin: Any = subprocess.DEVNULL) -> subprocess.Popen[bytes]:
    with open(log, "wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "streams.cli", *args], env={**os.environ, **env}, stdout=out, stderr=out, stdin=stdin
        )


def _camera_event(pool: str, when: datetime) -> dict[str, Any]:
    return {
        "schema_version": 1,
        "event_time": when.isoformat(),
        "pool_id": pool,
        "event_id": f"E-{pool}",
        "kind": "motionless_swimmer",
        "zone": "deep end",
        "duration_s": 12.0,
        "confidence": 0.9,
    }


def _replay_file(path: Path, now: datetime) -> list[str]:
    """Camera events one dataset minute apart: at --speed 15 one every 4 s, ~48 s in all."""
    pools = [f"R{i}" for i in range(EVENTS)]
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(_camera_event("x", now)))
        writer.writeheader()
        for i, pool in enumerate(pools):
            writer.writerow(_camera_event(pool, now - timedelta(minutes=EVENTS - i)))
    return pools


def _pipe_events(proc: subprocess.Popen[bytes], now: datetime, every_s: float) -> list[str]:
    """Write camera events into ``leitstand produce``'s stdin, one per ``every_s``, from a thread."""
    pools = [f"S{i}" for i in range(EVENTS)]

    def feed() -> None:
        assert proc.stdin is not None
        try:
            for pool in pools:
                proc.stdin.write(orjson.dumps(_camera_event(pool, now)) + b"\n")
                proc.stdin.flush()
                time.sleep(every_s)
        finally:
            proc.stdin.close()

    threading.Thread(target=feed, daemon=True).start()
    return pools


def _records(s: Settings, topic: str) -> list[dict[str, Any]]:
    async def read() -> list[dict[str, Any]]:
        return [orjson.loads(m.value) async for m in tail(s, s.topic(topic), from_beginning=True, idle_timeout_s=2.0) if m.value]

    return asyncio.run(read())


def test_kafka_outage_of_30_s_loses_nothing_and_ready_tells(own_kafka, tmp_path: Path) -> None:
    info, state = own_kafka
    s = Settings(_env_file=None, kafka_bootstrap_servers=info.bootstrap, topic_prefix="o.", app_id="outage", data_dir=tmp_path / "worker")
    asyncio.run(ensure_topics(s))
    place = settings_env(same_place(s))
    worker = WorkerProcess(
        settings_env({**same_place(s), "aggregate_idle_close_s": 3600.0, "aggregate_lateness_s": 0.0}), tmp_path / "worker.log", free_port()
    )
    worker.start(timeout_s=90)
    now = datetime.now(timezone.utc).replace(microsecond=0)
    first_frame = now.replace(second=0) - timedelta(minutes=MINUTES + 5)
    replay_csv = tmp_path / "camera.csv"
    replay_pools = _replay_file(replay_csv, now)
    producers = {
        "simulate": _cli(
            ["simulate", "frames", "--intersections", str(INTERSECTIONS), "--interval", str(INTERVAL_S), "--duration", str(MINUTES)]
            + ["--speed", str(FRAME_SPEED), "--start", first_frame.isoformat(), "--seed", "5"],
            place,
            tmp_path / "simulate.log",
        ),
        "replay": _cli(
            ["replay", str(replay_csv), "--topic", "pool.supervision", "--time-col", "event_time", "--key-col", "pool_id", "--speed", "15"],
            place,
            tmp_path / "replay.log",
        ),
        "produce": _cli(["produce", "pool.supervision"], place, tmp_path / "produce.log", stdin=subprocess.PIPE),
    }
    pipe_pools = _pipe_events(producers["produce"], now, every_s=4.0)
    try:
        time.sleep(8)  # mid-stream
        assert all(p.poll() is None for p in producers.values()), "a producer finished before the outage"
        stop(state, "kafka")
        down_at = time.monotonic()
        status, body = wait_for(lambda: (r := ready_state(worker.web_port))[0] == 503 and r, timeout_s=15) or ready_state(worker.web_port)
        assert status == 503 and body["ready"] is False, body
        assert "no answer from the broker" in body.get("reason", ""), body
        assert worker.proc is not None
        while time.monotonic() - down_at < OUTAGE_S:  # the outage itself lasts a fixed time
            assert worker.proc.poll() is None, f"the worker exited during the outage: {worker.log_tail()}"
            time.sleep(0.5)
        assert ready_state(worker.web_port)[0] == 503  # still down, still said
        start("kafka", state, CACHE_DIR, "127.0.0.1", info.port, progress=False)
        back = wait_for(lambda: ready_state(worker.web_port)[0] == 200, timeout_s=90)
        assert back, f"/ready did not return to 200 after the restart: {ready_state(worker.web_port)} {worker.log_tail()}"

        for name, proc in producers.items():
            try:
                code = proc.wait(240)
            except subprocess.TimeoutExpired:
                proc.kill()
                code = proc.wait(10)
            assert code == 0, (name, (tmp_path / f"{name}.log").read_text(errors="replace")[-2000:])

        all_frames = list(frames(intersections=INTERSECTIONS, start=first_frame, interval_s=INTERVAL_S, steps=MINUTES * 4, seed=5))
        last_end = max(f.event_time.timestamp() + f.interval_s for f in all_frames)
        want = {k: v for k, v in detector_windows(all_frames, 60).items() if int(k.rsplit("/", 1)[1]) + 60 <= last_end}

        def aggregates() -> dict[str, set[tuple[Any, ...]]]:
            got: dict[str, set[tuple[Any, ...]]] = {}
            for a in _records(s, "aggregates"):
                got.setdefault(a["aggregate_id"], set()).add((a["count_sum"], a["occupancy_mean"], a["frames"], a["speed_kmh_mean"]))
            return got

        got = wait_for(lambda: (g := aggregates()).keys() >= want.keys() and g, timeout_s=120, step_s=2) or aggregates()

        def raised() -> set[str]:
            return {
                a["alarm_id"].split("@", 1)[1].split("~", 1)[0]
                for a in _records(s, "alerts")
                if a.get("transition") == "raised" and a["alarm_id"].startswith("motionless_swimmer@")
            }

        pools = wait_for(lambda: (r := raised()) >= {*replay_pools, *pipe_pools} and r, timeout_s=60, step_s=2) or raised()
        assert worker.proc.poll() is None, worker.log_tail()
    finally:
        for running in producers.values():
            if running.poll() is None:
                running.kill()
                running.wait(10)
        stopped = worker.stop()
    assert stopped == 0, worker.log_tail()

    missing = sorted(set(want) - set(got))
    assert not missing, f"{len(missing)} of {len(want)} windows missing after the outage, e.g. {missing[:5]}"
    differing = {k: (v, want[k]) for k, v in got.items() if k in want and v != {want[k]}}
    assert not differing, f"windows emitted with other values than the oracle's: {list(differing.items())[:3]}"
    assert pools >= set(replay_pools), f"alarms missing for replayed events: {sorted(set(replay_pools) - pools)}"
    assert pools >= set(pipe_pools), f"alarms missing for piped events: {sorted(set(pipe_pools) - pools)}"
    log = (tmp_path / "worker.log").read_text(errors="replace")
    assert "ConsistencyError" not in log and "Traceback" not in log


def _metric(worker: WorkerProcess, name: str) -> float:
    try:
        return worker.metrics().get(name, 0.0)
    except OSError:
        return 0.0


@pytest.fixture
def own_tansu(tmp_path: Path) -> Iterator[tuple[BrokerInfo, Path]]:
    """A Tansu of this test's own, which the test stops and restarts on the same port."""
    state = tmp_path / "broker-state"
    info = start("tansu", state, CACHE_DIR, "127.0.0.1", free_port(), progress=False)
    yield info, state
    stop(state, "tansu")


def test_tansu_restart_mid_stream_ends_the_worker_with_one_line(own_tansu, tmp_path: Path) -> None:
    """Tansu is memory-only: its restart loses every topic and offset. A telemetry worker with
    full tables in the middle of a stream must say so in one line and stop, not crash in table
    recovery (ConsistencyError) or hang; a new worker then starts on the empty broker."""
    info, state = own_tansu
    s = Settings(
        _env_file=None, kafka_bootstrap_servers=info.bootstrap, topic_prefix="m.", app_id="midstream", data_dir=tmp_path / "worker"
    )
    asyncio.run(ensure_topics(s))
    env = settings_env({**same_place(s), "worker_role": "telemetry"})
    worker = WorkerProcess(env, tmp_path / "worker.log", free_port())
    worker.start(timeout_s=90)
    first_frame = datetime.now(timezone.utc).replace(second=0, microsecond=0) - timedelta(minutes=90)
    simulate = _cli(
        ["simulate", "frames", "--intersections", "8", "--duration", "60", "--speed", "60", "--start", first_frame.isoformat()],
        settings_env(same_place(s)),
        tmp_path / "simulate.log",
    )
    try:
        decoded = f'leitstand_records_decoded_total{{topic="{s.topic("sensors.intersection")}"}}'
        assert wait_for(lambda: _metric(worker, decoded) >= 100, timeout_s=60), worker.log_tail()
        stop(state, "tansu")
        time.sleep(3)
        start("tansu", state, CACHE_DIR, "127.0.0.1", info.port, progress=False)
        proc = worker.proc
        assert proc is not None
        assert wait_for(lambda: proc.poll() is not None, timeout_s=40), "the worker did not stop after the broker lost its state"
        assert proc.returncode not in (0, None)
    finally:
        simulate.kill()
        simulate.wait(10)
        worker.stop()
    lines = (tmp_path / "worker.log").read_text(errors="replace").splitlines()
    errors = [line for line in lines if line.startswith("error: ")]
    assert len(errors) == 1 and "the broker lost its topics and offsets" in errors[0], lines[-5:]
    assert "Traceback" not in "\n".join(lines) and "ConsistencyError" not in "\n".join(lines)

    again = WorkerProcess(env, tmp_path / "worker-again.log", free_port())
    again.start(timeout_s=60)
    assert again.stop() == 0, again.log_tail()


def _first_record(s: Settings, topic: str, bound_s: float) -> bool:
    """True once ``topic`` holds a record (polled until ``bound_s``)."""

    async def one() -> bool:
        return [m async for m in tail(s, s.topic(topic), from_beginning=True, limit=1, idle_timeout_s=1.0)] != []

    deadline = time.monotonic() + bound_s
    while time.monotonic() < deadline:
        if asyncio.run(one()):
            return True
        time.sleep(0.5)
    return False


def test_a_producer_gives_up_with_one_line_when_the_broker_stays_away(own_tansu, tmp_path: Path) -> None:
    """Past LEITSTAND_PRODUCER_OUTAGE_S the simulator stops with one line, not a traceback."""
    info, state = own_tansu
    s = Settings(_env_file=None, kafka_bootstrap_servers=info.bootstrap, topic_prefix="g.")
    asyncio.run(ensure_topics(s))
    simulate = _cli(
        ["simulate", "frames", "--intersections", "4", "--duration", "60", "--speed", "60"],
        {**settings_env({"kafka_bootstrap_servers": info.bootstrap, "topic_prefix": "g."}), "LEITSTAND_PRODUCER_OUTAGE_S": "5"},
        tmp_path / "simulate.log",
    )
    try:
        # the broker goes away only once the simulator is sending (on a loaded machine its start
        # took longer than a fixed pause, and it then found no broker at all: another message)
        assert _first_record(s, "sensors.intersection", 90.0), (tmp_path / "simulate.log").read_text()
        assert simulate.poll() is None, (tmp_path / "simulate.log").read_text()
        stop(state, "tansu")
        code = simulate.wait(60)
    finally:
        if simulate.poll() is None:
            simulate.kill()
            simulate.wait(10)
    lines = [line for line in (tmp_path / "simulate.log").read_text(errors="replace").splitlines() if line.strip()]
    assert code == 1, lines[-5:]
    assert "Traceback" not in "\n".join(lines)
    assert lines[-1].startswith("error: the broker did not take records within LEITSTAND_PRODUCER_OUTAGE_S"), lines[-5:]
    assert len(lines) < 20, f"{len(lines)} lines for one outage: {lines[:5]}"
