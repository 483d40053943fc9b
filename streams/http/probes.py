"""The pages every worker role serves without a token: ``GET /ready`` (readiness for
orchestrators and tests), ``GET /metrics`` (Prometheus) and ``GET /openapi.yaml`` (the API
description). None of them holds data about alarms, people or plans.

Beside ``/metrics`` run the worker's own measurements, in every role: the build info, an
event-loop ticker (``leitstand_event_loop_lag_seconds``) and the consumer-lag sampler
(``leitstand_consumer_lag``); docs/metrics.md.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import faust
import structlog
from aiohttp import web as aioweb
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from ..metrics import EVENT_LOOP_LAG, LOOP_TICK_S, LOOP_WARN_S, REGISTRY, LagReport, loop_lag, set_build_info

log = structlog.get_logger(__name__)

#: how often the consumer lag is sampled (one ListOffsets request per sample)
LAG_INTERVAL_S = 5.0
#: at most one "event loop lagging" line per this many seconds (the ticker wakes 4 times a second)
LOOP_WARN_EVERY_S = 10.0

#: the API description (docs/openapi.yaml); present in a checkout and an editable install
DESCRIPTION = Path(__file__).resolve().parents[2] / "docs" / "openapi.yaml"


def register(app: faust.App) -> None:
    """Called once per worker from ``streams/app.py``, whatever its role."""
    register_description(app)
    register_runtime_metrics(app)

    @app.page("/metrics")
    async def metrics(web: Any, request: Any) -> Any:
        return aioweb.Response(body=generate_latest(REGISTRY), headers={"Content-Type": CONTENT_TYPE_LATEST})

    @app.page("/ready")
    async def ready(web: Any, request: Any) -> Any:
        """200 while this worker owns partitions, is not rebalancing or recovering, and its consumer
        hears from the broker; else 503 with the reason (docs/brokers.md, "Readiness"). Either way
        ``warnings`` lists what the operator must know (a control worker sharing its topics)."""
        from ..faust_transport import readiness

        ok, reason, assigned = readiness(app)
        body: dict[str, Any] = {"ready": ok, "assigned": assigned}
        if reason is not None:
            body["reason"] = reason
        warnings = [w for w in (finding() for finding in getattr(app, "readiness_warnings", {}).values()) if w]
        if warnings:  # ready all the same: the worker works, but not as the operator may assume
            body["warnings"] = warnings
        return web.json(body, status=200 if ok else 503)


def register_description(app: faust.App) -> None:
    """``GET /openapi.yaml``: the OpenAPI description of every endpoint, no token (it holds no data).

    Read per request, so a missing file is a 404 rather than a failed start.
    """

    @app.page("/openapi.yaml")
    async def description(web: Any, request: Any) -> Any:
        if not DESCRIPTION.is_file():
            return web.json({"error": "docs/openapi.yaml is not installed with this worker"}, status=404)
        return web.bytes(DESCRIPTION.read_bytes(), content_type="application/yaml")


def register_runtime_metrics(app: faust.App) -> None:
    """Build info now; the loop ticker and the consumer-lag sampler as tasks of the worker."""
    set_build_info()
    report = LagReport()

    @app.task
    async def event_loop_ticker() -> None:
        await tick_forever()

    @app.timer(interval=LAG_INTERVAL_S)
    async def sample_consumer_lag() -> None:
        await sample_lag(app, report)


async def tick_forever(tick_s: float = LOOP_TICK_S, warn_s: float = LOOP_WARN_S) -> None:
    """Sleep ``tick_s`` again and again; how late each wake-up is goes into the histogram, and a
    wake-up later than ``warn_s`` is logged (at most once per ``LOOP_WARN_EVERY_S``, with the
    number of late ticks and the worst since the last line)."""
    late, worst, last_warned = 0, 0.0, 0.0
    while True:
        slept_from = time.perf_counter()
        await asyncio.sleep(tick_s)
        lag = loop_lag(slept_from, time.perf_counter(), tick_s)
        EVENT_LOOP_LAG.observe(lag)
        if lag > warn_s:
            late, worst = late + 1, max(worst, lag)
            now = time.monotonic()
            if now - last_warned >= LOOP_WARN_EVERY_S:
                log.warning("event loop lagging", lag_ms=round(worst * 1000, 1), late_ticks=late, threshold_ms=warn_s * 1000)
                late, worst, last_warned = 0, 0.0, now


async def sample_lag(app: faust.App, report: LagReport) -> None:
    """One consumer-lag sample for the source partitions assigned to this worker (changelog
    partitions are left out: Faust reads them to recover tables and commits no offsets there)."""
    from faust.exceptions import ConsumerNotStarted

    consumer: Any = app.consumer
    try:
        changelogs = set(app.tables.changelog_topics)
        tps = [tp for tp in consumer.assignment() if tp.topic not in changelogs]
        if not tps:
            report.update({}, {})
            return
        listed = await consumer.highwaters(*tps)
        # Faust's committed offsets (next offset to read; faust/transport/consumer.py keeps them
        # after each commit and seek); before the first commit the fetch position stands in
        committed = getattr(consumer, "_committed_offset", {})
        done: dict[tuple[str, int], int | None] = {}
        ends: dict[tuple[str, int], int] = {}
        for tp in tps:
            position = await consumer.position(tp)
            done[(tp.topic, tp.partition)] = committed.get(tp) if committed.get(tp) is not None else position
            end = partition_end(listed.get(tp), consumer.highwater(tp), position)
            if end is not None:
                ends[(tp.topic, tp.partition)] = end
    except ConsumerNotStarted:
        return
    except Exception as exc:  # a broker away or a rebalance: the next sample tries again
        log.debug("consumer lag not sampled", error=f"{type(exc).__name__}: {exc}")
        return
    report.update(ends, done)


def partition_end(listed: int | None, fetched: int | None, position: int | None) -> int | None:
    """A partition's end offset: the largest of what ListOffsets says, the high watermark of the
    last fetch and the consumer's own position. Tansu answers ListOffsets with the start of the
    last batch + 1 (8 for offsets 0-9), which alone would under-report the lag; the fetch's high
    watermark is right there, and no end lies before what the consumer has already read."""
    known = [int(v) for v in (listed, fetched, position) if v is not None and v >= 0]
    return max(known) if known else None
