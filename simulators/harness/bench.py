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


def _frames_bytes(n: int, detectors: int, intersections: int = 500) -> list[tuple[bytes, bytes]]:
    """``n`` encoded frames (key, value) ending about now."""
    from simulators.city.frames import frames
    from streams.records import encode

    steps = max(1, -(-n // intersections))
    start = datetime.now(timezone.utc) - timedelta(seconds=steps * 15 + 600)
    gen = frames(
        intersections=min(n, intersections),
        start=start,
        interval_s=15.0,
        steps=steps,
        seed=3,
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


def pipeline_benchmark(settings: Settings, *, frames: int, intersections: int, engine: str) -> dict[str, Any]:
    """Frames/s through a fresh broker and a worker, beside a raw consumer draining the same topic.

    The topic is filled first (the producer's rate is reported too), so both the baseline and
    the worker read a backlog: neither waits for a producer.
    """
    from streams.broker import start, stop
    from streams.kafka_io import ensure_topics
    from streams.stack import free_port

    state = Path(tempfile.mkdtemp(prefix="leitstand-bench-"))
    info = start(engine, state, settings.cache_dir, "127.0.0.1", free_port(), progress=True)
    settings = settings.model_copy(update={"kafka_bootstrap_servers": info.bootstrap, "state_dir": state})
    payloads = _frames_bytes(frames, 4, intersections)
    worker = _bench_worker(info.bootstrap, state)
    try:
        asyncio.run(ensure_topics(settings))
        produce_s = asyncio.run(_preload(settings, payloads))
        drain_s = asyncio.run(_drain(settings, len(payloads)))
        ready_s = worker.start()
        worker_s = _wait_processed(worker, settings, len(payloads))
    finally:
        worker.stop()
        stop(state, engine)
    return {
        "benchmark": "pipeline",
        "engine": engine,
        "frames": len(payloads),
        "intersections": intersections,
        "detectors_per_frame": 4,
        "worker_ready_s": round(ready_s, 2),
        "produce_records_per_s": round(len(payloads) / produce_s),
        "leitstand_worker_frames_per_s": round(len(payloads) / worker_s),
        "baseline": "raw aiokafka consumer draining the same topic, no processing",
        "baseline_records_per_s": round(len(payloads) / drain_s),
        "ratio_to_baseline": round(drain_s / worker_s, 3),
        "detector_readings_per_s": round(len(payloads) * 4 / worker_s),
        "machine": _machine(),
    }


def _bench_worker(bootstrap: str, state: Path) -> WorkerProcess:
    """The worker under test, its data and log inside the benchmark's state directory."""
    from streams.stack import WorkerProcess, free_port, settings_env

    return WorkerProcess(
        settings_env(
            {"kafka_bootstrap_servers": bootstrap, "app_id": "leitstand-bench", "data_dir": state / "worker", "log_level": "warning"}
        ),
        log_file=state / "worker.log",
        web_port=free_port(),
    )


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


def _wait_processed(worker: WorkerProcess, settings: Settings, total: int) -> float:
    """Seconds until the worker's decoded-records counter reaches ``total`` (polled every 0.1 s;
    a RuntimeError after 600 s)."""
    t0 = time.perf_counter()
    key = f'leitstand_records_decoded_total{{topic="{settings.topic("sensors.intersection")}"}}'
    done = 0.0
    while done < total:
        if time.perf_counter() - t0 > 600:
            raise RuntimeError(f"worker processed only {done:.0f} of {total} frames in 600 s")
        time.sleep(0.1)
        done = worker.metrics().get(key, 0.0)
    return time.perf_counter() - t0
