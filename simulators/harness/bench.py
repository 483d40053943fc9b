"""Benchmarks: each reports its figure beside a baseline measured in the same run.

``decode``: validated frame decoding (msgspec, schema + ranges) against stdlib ``json.loads``
that only parses and checks nothing, so the ratio shows what validation costs or saves.
``pipeline``: frames/s through a real broker and the worker (decode, dead-letter check,
windowed aggregation, changelog) against a raw aiokafka consumer draining the same topic.
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from streams.settings import Settings

if TYPE_CHECKING:
    from streams.stack import WorkerProcess


def _machine() -> dict[str, Any]:
    return {"python": platform.python_version(), "cpus": os.cpu_count(), "machine": platform.machine()}


#: the seed of the benchmark's intersections (their ids and detectors) and readings
FRAMES_SEED = 3


def _frames_bytes(n: int, detectors: int, intersections: int = 500, interval_s: float = 15.0) -> list[tuple[bytes, bytes]]:
    """``n`` encoded frames (key, value) ending about now, ``interval_s`` apart per intersection."""
    from simulators.city.frames import frames
    from streams.records import encode

    steps = max(1, -(-n // intersections))
    start = datetime.now(timezone.utc) - timedelta(seconds=steps * interval_s + 600)
    gen = frames(
        intersections=min(n, intersections),
        start=start,
        interval_s=interval_s,
        steps=steps,
        seed=FRAMES_SEED,
        detectors_per_intersection=detectors,
    )
    return [(f.intersection_id.encode(), encode(f)) for f in gen][:n]


def decode_benchmark(n: int, detectors: int, repeat: int) -> dict[str, Any]:
    from streams.codec import TopicDecoder
    from streams.records import IntersectionFrame

    payloads = [v for _, v in _frames_bytes(n, detectors)]
    decoder = TopicDecoder(IntersectionFrame, clock_skew_s=1e9)

    def best(fn: Any) -> float:
        times = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        return min(times)

    now = time.time()
    ours = best(lambda: [decoder.decode(p, now=now) for p in payloads])
    stdlib = best(lambda: [json.loads(p) for p in payloads])
    return {
        "benchmark": "decode",
        "records": len(payloads),
        "detectors_per_frame": detectors,
        "leitstand_records_per_s": round(len(payloads) / ours),
        "baseline": "stdlib json.loads, parse only, no validation",
        "baseline_records_per_s": round(len(payloads) / stdlib),
        "ratio_to_baseline": round(stdlib / ours, 3),
        "machine": _machine(),
    }


def pipeline_benchmark(
    settings: Settings,
    *,
    frames: int,
    intersections: int,
    engine: str,
    role: str = "all",
    bad_share: float = 0.0,
    detectors: int = 4,
    frame_interval_s: float = 1.0,
    controller: str | None = "leitstand",
) -> dict[str, Any]:
    """Frames/s through a fresh broker and a worker of ``role`` (every agent of that role), beside
    a raw consumer draining the same topic in the same run (``pipeline_run``)."""
    from streams.broker import start, stop
    from streams.stack import free_port

    state = Path(tempfile.mkdtemp(prefix="leitstand-bench-"))
    info = start(engine, state, settings.cache_dir, "127.0.0.1", free_port(), progress=True)
    settings = settings.model_copy(
        update={"kafka_bootstrap_servers": info.bootstrap, "state_dir": state, "data_dir": state / "worker", "app_id": "leitstand-bench"}
    )
    try:
        run = pipeline_run(
            settings,
            frames=frames,
            intersections=intersections,
            role=role,
            bad_share=bad_share,
            detectors=detectors,
            frame_interval_s=frame_interval_s,
            controller=controller,
        )
        return {"engine": engine, **run}
    finally:
        stop(state, engine)


def pipeline_run(
    settings: Settings,
    *,
    frames: int,
    intersections: int,
    role: str,
    bad_share: float,
    detectors: int = 4,
    frame_interval_s: float = 1.0,
    controller: str | None = "leitstand",
) -> dict[str, Any]:
    """The pipeline benchmark on the broker ``settings`` name (its topic prefix and group).

    The topic is filled first (the producer's rate is reported too), so both the baseline and
    the worker read a backlog: neither waits for a producer. The worker is done when its group
    has committed every record: Faust commits an offset only once every agent of the role
    reading the topic has acknowledged it, so the figure is the slowest agent's. ``bad_share``
    of the records are malformed, oversize or wrongly keyed; each must come back as a dead
    letter with its reason (counted from the dead-letter topic). ``frame_interval_s`` is the
    event time between two frames of one intersection: 1 s is the issue's city load; at 15 s
    (the synthetic city's loops) every fourth frame closes a minute window, so the worker
    publishes one aggregate per detector every 4 frames instead of every 60. For the control
    role (and ``all``) every intersection is configured with ``controller`` first (``None``: none
    is, and the control agent only reads the frames: an upper bound, not a city).
    """
    from streams.kafka_io import ensure_topics

    settings = settings.model_copy(update={"worker_role": role})
    payloads, bad = with_bad_records(_frames_bytes(frames, detectors, intersections, frame_interval_s), bad_share, BENCH_MAX_RECORD_BYTES)
    worker = _bench_worker(settings, role)
    try:
        asyncio.run(ensure_topics(settings))
        configs = _configure_signals(settings, role, controller, min(frames, intersections), detectors)
        if configs:
            # every configuration applied before the first frame: the worker starts on an empty frame
            # topic, and its time runs from the first frame sent (the producer needs ~0.4 s)
            ready_s = worker.start(120)
            asyncio.run(_wait_committed(settings, configs, topic="signals.config", limit_s=120.0))
            cpu0, t0 = _cpu_s(worker), time.perf_counter()
            produce_s = asyncio.run(_preload(settings, payloads))
            asyncio.run(_wait_committed(settings, len(payloads)))
            worker_s, cpu_s = time.perf_counter() - t0, _cpu_s(worker) - cpu0
            drain_s = asyncio.run(_drain(settings, len(payloads)))
        else:
            produce_s = asyncio.run(_preload(settings, payloads))
            drain_s = asyncio.run(_drain(settings, len(payloads)))
            ready_s = worker.start(120)
            cpu0 = _cpu_s(worker)
            worker_s = asyncio.run(_wait_committed(settings, len(payloads)))
            cpu_s = _cpu_s(worker) - cpu0
        letters = asyncio.run(_dead_letter_codes(settings, sum(bad.values())))
        plans = _plans_published(worker)
    finally:
        worker.stop()
    return {
        "benchmark": "pipeline",
        "role": role,
        "frames": len(payloads),
        "intersections": intersections,
        "detectors_per_frame": detectors,
        "frame_interval_s": frame_interval_s,
        "signal_controller": controller if configs else None,
        "signal_plans_published": plans,
        "bad_records": bad,
        "dead_letters": letters,
        "every_bad_record_dead_lettered": all(letters.get(code, 0) == n for code, n in bad.items()),
        "worker_ready_s": round(ready_s, 2),
        "produce_records_per_s": round(len(payloads) / produce_s),
        "leitstand_worker_frames_per_s": round(len(payloads) / worker_s),
        "measured_until": "the worker's group committed every record (all agents of the role acknowledged it)",
        "baseline": "raw aiokafka consumer draining the same topic, no processing",
        "baseline_records_per_s": round(len(payloads) / drain_s),
        "ratio_to_baseline": round(drain_s / worker_s, 4),
        "worker_cpu_s": round(cpu_s, 2),
        "frames_per_worker_cpu_s": round(len(payloads) / cpu_s) if cpu_s > 0 else None,
        "cpu_note": "the worker process's own CPU time while it worked: its rate with a core to itself, "
        "whatever else the machine was doing (wall-clock figures on a shared machine are lower)",
        "detector_readings_per_s": round(len(payloads) * detectors / worker_s),
        "machine": _machine(),
    }


def _configure_signals(settings: Settings, role: str, controller: str | None, intersections: int, detectors: int) -> int:
    """Configure ``controller`` on every intersection of the frames when the role runs signal
    control; how many configurations were sent (0: none)."""
    if role not in ("control", "all") or not controller:
        return 0
    from simulators.city.frames import layouts
    from simulators.harness.bench_signal_configs import configure_signals

    asyncio.run(configure_signals(settings, layouts(intersections, FRAMES_SEED, detectors), controller, "bench-pipeline"))
    return intersections


#: the worker's record size limit in the benchmark (the oversize records exceed it)
BENCH_MAX_RECORD_BYTES = 16_384


def with_bad_records(
    payloads: list[tuple[bytes, bytes]], share: float, max_bytes: int, seed: int = 7
) -> tuple[list[tuple[bytes, bytes]], dict[str, int]]:
    """``payloads`` with ``share`` of them replaced by bad records, in turn malformed JSON, an
    oversize value and a valid frame under another intersection's key; and how many of each
    (by the reason code the decoder gives them)."""
    import random

    rng = random.Random(seed)
    out = list(payloads)
    counts = {"not_json": 0, "oversize": 0, "key_mismatch": 0}
    picks = sorted(rng.sample(range(len(out)), round(len(out) * share))) if share > 0 else []
    for n, i in enumerate(picks):
        key, value = out[i]
        kind = ("not_json", "oversize", "key_mismatch")[n % 3]
        if kind == "not_json":
            out[i] = (key, value[: len(value) // 2])
        elif kind == "oversize":
            out[i] = (key, value + b" " * (max_bytes + 1 - len(value)))
        else:
            out[i] = (b"wrong-" + key, value)
        counts[kind] += 1
    return out, {k: v for k, v in counts.items() if v}


def _bench_worker(settings: Settings, role: str = "all") -> WorkerProcess:
    """The worker under test on ``settings``' broker, topics and group, its data and log in the
    settings' state directory."""
    from streams.stack import WorkerProcess, free_port, settings_env

    return WorkerProcess(
        settings_env(
            {
                "kafka_bootstrap_servers": settings.kafka_bootstrap_servers,
                "topic_prefix": settings.topic_prefix,
                "app_id": settings.app_id,
                "worker_role": role,
                "data_dir": settings.data_dir,
                "log_level": "warning",
                "max_record_bytes": BENCH_MAX_RECORD_BYTES,
            }
        ),
        log_file=settings.state_dir / "worker.log",
        web_port=free_port(),
    )


def _plans_published(worker: WorkerProcess) -> int:
    """Signal plans the worker published (its ``leitstand_signal_plans_total``, every status):
    that the control role did decide, not only read the frames."""
    return round(sum(v for k, v in worker.metrics().items() if k.startswith("leitstand_signal_plans_total{")))


def _cpu_s(worker: WorkerProcess) -> float:
    """User + system CPU seconds of the worker process so far (Linux ``/proc``; 0 elsewhere)."""
    assert worker.proc is not None
    try:
        fields = Path(f"/proc/{worker.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _preload(settings: Settings, payloads: list[tuple[bytes, bytes]]) -> float:
    """Fill the frame topic; seconds from the first send until the producer has stopped (all acknowledged)."""
    from streams.kafka_io import producer, send_all

    prod = producer(settings)
    await prod.start()
    t0 = time.perf_counter()
    await send_all(prod, settings.topic("sensors.intersection"), payloads)
    await prod.stop()
    return time.perf_counter() - t0


async def _drain(settings: Settings, limit: int) -> float:
    """The baseline: seconds a raw consumer takes to read ``limit`` records from the start."""
    from streams.kafka_io import tail

    t0 = time.perf_counter()
    n = 0
    async for _ in tail(settings, settings.topic("sensors.intersection"), from_beginning=True, limit=limit):
        n += 1
    return time.perf_counter() - t0


async def _wait_committed(settings: Settings, total: int, limit_s: float = 900.0, topic: str = "sensors.intersection") -> float:
    """Seconds until the worker's group has committed ``total`` records of ``topic`` (polled
    every 0.1 s; includes up to one commit interval, 2.8 s by Faust's default)."""
    from aiokafka.admin import AIOKafkaAdminClient
    from aiokafka.structs import TopicPartition

    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers, **settings.kafka_client_options())
    await admin.start()
    tps = [TopicPartition(settings.topic(topic), p) for p in range(settings.topic_partitions)]
    t0 = time.perf_counter()
    done = 0
    try:
        while done < total:
            if time.perf_counter() - t0 > limit_s:
                raise RuntimeError(f"worker committed only {done} of {total} records in {limit_s:.0f} s")
            await asyncio.sleep(0.1)
            offsets = await admin.list_consumer_group_offsets(settings.group_id, partitions=tps)
            done = sum(m.offset for m in offsets.values() if m.offset > 0)
    finally:
        await admin.close()
    return time.perf_counter() - t0


async def _dead_letter_codes(settings: Settings, expected: int) -> dict[str, int]:
    """Dead letters on the topic by reason code (read until ``expected`` arrived, or idle for 5 s)."""
    import msgspec

    from streams.kafka_io import tail
    from streams.records import DeadLetter

    codes: dict[str, int] = {}
    if expected == 0:
        return codes
    async for msg in tail(settings, settings.topic("deadletter"), from_beginning=True, limit=expected, idle_timeout_s=5.0):
        code = msgspec.json.decode(msg.value or b"{}", type=DeadLetter).reason_code
        codes[code] = codes.get(code, 0) + 1
    return codes
