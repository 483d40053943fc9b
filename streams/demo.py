"""``leitstand demo``: embedded broker, worker and a synthetic city, with a live view and a report.

Everything started here is stopped here, on success, on error and on Ctrl-C.
"""

from __future__ import annotations

import asyncio
import json
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.live import Live

from .broker import read_info, start, stop
from .kafka_io import ensure_topics, tail
from .settings import Settings
from .stack import WorkerProcess, free_port, settings_env

err = Console(stderr=True, highlight=False, soft_wrap=True)


def run_demo(
    s: Settings, *, minutes: float, intersections: int, speed: float, report_dir: Path, port: int
) -> dict[str, Any]:
    report_dir.mkdir(parents=True, exist_ok=True)
    own_broker = False
    running = read_info(s.state_dir, "tansu")
    if running is not None and running.port == port:
        info = running
        err.print(f"using the running embedded broker on {info.bootstrap}")
    else:
        info = start("tansu", s.state_dir, s.cache_dir, "127.0.0.1", port)
        own_broker = True
        err.print(f"embedded broker ready on {info.bootstrap} after {info.ready_after_s:.2f} s")
    bootstrap = info.bootstrap
    s = s.model_copy(update={"kafka_bootstrap_servers": bootstrap})
    run_id = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S")
    worker = WorkerProcess(
        settings_env(
            {
                "kafka_bootstrap_servers": bootstrap,
                "topic_prefix": s.topic_prefix,
                "app_id": f"leitstand-demo-{run_id}",
                "timestamp_reference": "stream",  # the city runs on an accelerated clock
                "aggregate_idle_close_s": 5,
                "data_dir": s.state_dir / "demo-worker",
                "state_dir": s.state_dir,
                "log_level": "info",
            }
        ),
        log_file=report_dir / "worker.log",
        web_port=free_port(),
    )
    summary: dict[str, Any] = {"run_id": run_id, "broker": "tansu", "bootstrap": bootstrap}
    try:
        asyncio.run(ensure_topics(s))
        ready = worker.start()
        err.print(f"worker ready after {ready:.2f} s (log: {worker.log_file})")
        summary["worker_ready_s"] = round(ready, 3)
        summary.update(asyncio.run(_run_city(s, minutes, intersections, speed, report_dir)))
    finally:
        worker.stop()
        if own_broker:
            stop(s.state_dir, "tansu")
    summary["stopped_cleanly"] = True
    (report_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary


async def _run_city(s: Settings, minutes: float, intersections: int, speed: float, report_dir: Path) -> dict[str, Any]:
    from simulators.producer import produce_frames

    from .cli_run import status_table

    today = datetime.now(timezone.utc).replace(hour=6, minute=0, second=0, microsecond=0)
    counts = {"aggregates": 0, "deadletters": 0}
    aggregates_file = (report_dir / "aggregates.jsonl").open("wb")
    stop_flag = asyncio.Event()

    async def count(topic: str, field: str, sink: Any = None) -> None:
        async for m in tail(s, s.topic(topic), from_beginning=False, idle_timeout_s=None):
            counts[field] += 1
            if sink is not None and m.value:
                sink.write(m.value + b"\n")
            if stop_flag.is_set():
                return

    readers = [
        asyncio.create_task(count("aggregates", "aggregates", aggregates_file)),
        asyncio.create_task(count("deadletter", "deadletters")),
    ]
    await asyncio.sleep(1.0)  # let the readers seek to the end before the first frame
    stats: dict[str, Any] = {}
    t0 = time.monotonic()
    deadline = t0 + minutes * 60
    producer = asyncio.create_task(
        produce_frames(
            s, intersections=intersections, interval_s=15.0, steps=10**9, speed=speed,
            start=today, seed=1, malformed_rate=0.01, stats=stats, stop_at=deadline,
        )
    )
    with Live(console=err, refresh_per_second=2) as live:
        while not producer.done() or time.monotonic() < deadline + 8:
            elapsed = time.monotonic() - t0
            live.update(
                status_table(
                    {
                        "elapsed": f"{elapsed:,.0f} s of {minutes * 60:,.0f} s",
                        "simulated clock": stats.get("sim_time", "-"),
                        "frames sent": f"{stats.get('sent', 0):,} ({stats.get('malformed', 0)} malformed on purpose)",
                        "throughput": f"{stats.get('sent', 0) / max(elapsed, 1e-9):,.0f} frames/s",
                        "aggregates received": f"{counts['aggregates']:,}",
                        "dead letters": f"{counts['deadletters']:,}",
                    }
                )
            )
            if producer.done() and time.monotonic() >= deadline + 8:
                break
            await asyncio.sleep(0.5)
    await producer
    stop_flag.set()
    for r in readers:
        r.cancel()
    await asyncio.gather(*readers, return_exceptions=True)
    aggregates_file.close()
    return {
        "minutes": minutes,
        "intersections": intersections,
        "speed": speed,
        "frames_sent": stats.get("sent", 0),
        "frames_malformed": stats.get("malformed", 0),
        "simulated_until": stats.get("sim_time"),
        "aggregates_received": counts["aggregates"],
        "deadletters_received": counts["deadletters"],
    }
