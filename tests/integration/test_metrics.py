"""A real worker's /metrics, checked by promtool and scraped by a real Prometheus. Both brokers.

Live traffic with wall-clock event times (frames, camera events, water readings, one
acknowledgement over HTTP, one webhook delivery to a real local receiver) goes through a worker
of role ``all``; then its /metrics must pass ``promtool check metrics``, every latency path must
have been observed, the consumer lag must be there per partition, and Prometheus, scraping the
worker once a second, must answer ``leitstand_build_info`` and the histograms' ``_bucket``
series through its HTTP API. The figures seen are printed (``-s``) and kept in
.leitstand/test-timings.json.
"""

from __future__ import annotations

import asyncio
import subprocess
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from streams.kafka_io import ensure_topics
from streams.stack import WorkerProcess, free_port, same_place, settings_env
from tests.services.prometheus import query

from .test_alarm_lifecycle import Receiver, _http, _send, _wait_for
from .test_signal_control import COUNTS, MODEL

pytestmark = pytest.mark.integration

TOKEN = "metrics-token-" + "x" * 32
PROMTOOL = "/usr/bin/promtool"
PATHS = ("frame_to_aggregate", "camera_to_alarm", "reading_to_alarm", "frame_to_decision")


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, tz=timezone.utc).isoformat()


def _frame(t: float, iid: str = "K101") -> dict[str, Any]:
    """A 1 s frame that ended at ``t`` (sent at once: wall-clock event time)."""
    return {
        "schema_version": 1,
        "event_time": _iso(t - 1.0),
        "intersection_id": iid,
        "interval_s": 1.0,
        "detectors": [{"detector_id": k, "count": v, "occupancy": 0.1} for k, v in COUNTS.items()],
    }


def _reading(t: float, ph: float) -> dict[str, Any]:
    return {"schema_version": 1, "event_time": _iso(t), "pool_id": "P1", "ph": {"value": ph, "unit": "pH"}}


def _metrics_text(port: int) -> str:
    import urllib.request

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:  # noqa: S310 (loopback)
        return str(r.read().decode())


def _live_traffic(s: Any, seconds: int) -> None:
    """Once a second: a frame of K101 and a water reading, both stamped now; pH out of band."""
    for i in range(seconds):
        now = time.time()
        asyncio.run(_send(s, "sensors.intersection", [_frame(now)], "intersection_id"))
        asyncio.run(_send(s, "sensors.pool", [_reading(now, 7.9 if i >= 2 else 7.2)], "pool_id"))
        time.sleep(max(0.0, 1.0 - (time.time() - now)))


def _camera_alarm_acked(s: Any, base: str, token: str) -> None:
    """A motionless swimmer now; the alarm acknowledged over HTTP a moment later (and seen acked)."""
    event = {"schema_version": 1, "event_time": _iso(time.time()), "pool_id": "P1", "event_id": "E1", "kind": "motionless_swimmer"}
    asyncio.run(_send(s, "pool.supervision", [event], "pool_id"))
    raised = _wait_for(s, "alerts", lambda rs: any(r["kind"] == "motionless_swimmer" for r in rs), 30)
    aid = next(r["alarm_id"] for r in raised if r["kind"] == "motionless_swimmer")
    time.sleep(1.0)
    status, answer = _http("POST", f"{base}/alerts/{aid}/ack", token=token, body={"by": "supervisor-1"})
    assert status == 202, answer
    _wait_for(s, "alerts", lambda rs: any(r["transition"] == "acknowledged" for r in rs), 20)


def _promtool(text: str) -> subprocess.CompletedProcess[str]:
    if not Path(PROMTOOL).exists():
        pytest.skip("promtool not installed (Debian package 'prometheus')")
    return subprocess.run([PROMTOOL, "check", "metrics"], input=text, capture_output=True, text=True, timeout=30, check=False)


def _poll(base: str, promql: str, timeout_s: float = 20.0) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout_s
    while True:
        result = query(base, promql)
        if result or time.monotonic() > deadline:
            return result
        time.sleep(0.5)


def _quantiles(base: str, metric: str, by: str) -> dict[str, tuple[float, float]]:
    """p50 and p99 per label value, from the buckets Prometheus scraped."""
    out: dict[str, list[float]] = {}
    for q in (0.5, 0.99):
        for r in query(base, f"histogram_quantile({q}, sum by (le, {by}) ({metric}_bucket))"):
            out.setdefault(r["metric"].get(by, ""), []).append(round(float(r["value"][1]), 4))
    return {k: (v[0], v[-1]) for k, v in out.items()}


def test_worker_metrics_pass_promtool_and_reach_prometheus(
    broker, settings_for, tmp_path: Path, prometheus_for, record_timing, receiver: Receiver
) -> None:
    s = settings_for(broker, api_token=TOKEN)
    asyncio.run(ensure_topics(s))
    env = settings_env(
        {
            **same_place(s),
            "api_token": TOKEN,
            "aggregate_window_s": 2,
            "aggregate_lateness_s": 0.0,
            "water_min_duration_s": 1.0,
            "pools": {"P1": {"basin_type": "swimmer", "capacity": 100}},
            "alarm_contact_levels": [[receiver.url + "/duty"]],
            "webhook_allowed_hosts": "127.0.0.1",
            "webhook_backoff_s": 0.2,
        }
    )
    web_port = free_port()
    worker = WorkerProcess(env, tmp_path / "worker.log", web_port)
    worker.start(timeout_s=90)
    try:
        prometheus = prometheus_for([f"127.0.0.1:{web_port}"], scrape_interval_s=1)
        time.sleep(5.0)  # an idle worker first: what the loop ticker sees with nothing to do
        idle = worker.metrics()
        idle_ticks = idle["leitstand_event_loop_lag_seconds_count"]
        idle_mean_ms = 1000 * idle["leitstand_event_loop_lag_seconds_sum"] / idle_ticks
        assert idle_ticks >= 10  # 4 a second since start

        config = {
            "schema_version": 1,
            "event_time": _iso(time.time() - 60),
            "intersection_id": "K101",
            "model": MODEL,
            "controller": "webster",
            "mode": "advisory",
            "session": "metrics-run",
        }
        asyncio.run(_send(s, "signals.config", [config], "intersection_id"))
        _live_traffic(s, seconds=10)
        _camera_alarm_acked(s, f"http://127.0.0.1:{web_port}", TOKEN)
        deadline = time.monotonic() + 20
        while not receiver.received and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(6.0)  # one more consumer-lag sample and a few scrapes

        text = _metrics_text(web_port)
        checked = _promtool(text)
        assert checked.returncode == 0 and not checked.stdout.strip() and not checked.stderr.strip(), checked
        samples = worker.metrics()
        for path in PATHS:
            assert samples[f'leitstand_event_to_output_seconds_count{{path="{path}"}}'] >= 1, path
        assert samples['leitstand_alarm_ack_seconds_count{severity="critical"}'] == 1
        assert samples['leitstand_webhook_delivery_seconds_count{outcome="delivered"}'] >= 1
        frames_topic = s.topic("sensors.intersection")
        lag = {k: v for k, v in samples.items() if k.startswith("leitstand_consumer_lag{") and f'topic="{frames_topic}"' in k}
        assert lag and all(v >= 0 for v in lag.values()), samples
        assert not any("changelog" in k for k in samples if k.startswith("leitstand_consumer_lag{"))

        build = _poll(prometheus, "leitstand_build_info")
        assert len(build) == 1 and build[0]["value"][1] == "1"
        assert build[0]["metric"]["version"] and build[0]["metric"]["commit"]
        buckets = _poll(prometheus, 'leitstand_event_to_output_seconds_bucket{path="camera_to_alarm"} > 0')
        assert {b["metric"]["le"] for b in buckets} >= {"10.0", "+Inf"}
        assert _poll(prometheus, "process_resident_memory_bytes") and _poll(prometheus, "python_gc_objects_collected_total")

        latency = _quantiles(prometheus, "leitstand_event_to_output_seconds", "path")
        loop = _quantiles(prometheus, "leitstand_event_loop_lag_seconds", "job")
        print(f"\n[{broker.engine}] idle loop lag mean {idle_mean_ms:.2f} ms over {idle_ticks:.0f} ticks")
        print(f"[{broker.engine}] event-to-output p50/p99 s: {latency}; loop lag p50/p99 s under traffic: {loop}")
        print(f"[{broker.engine}] consumer lag {frames_topic}: {lag}")
        record_timing(f"{broker.engine}_idle_loop_lag_mean_ms", idle_mean_ms)
        for path, (p50, p99) in latency.items():
            record_timing(f"{broker.engine}_{path}_p50_s", p50)
            record_timing(f"{broker.engine}_{path}_p99_s", p99)
    finally:
        worker.stop()


@pytest.fixture
def receiver():
    r = Receiver(fail_first=0)
    yield r
    r.close()
