"""Alarm benchmarks: a simulated pool day scored against ground truth, and alarm latency.

``pool_day``: simulated days through the pool core (rules, sensor faults, camera events),
scored by ``detection.evaluation``; baseline in the same run: the naive rule a plain PLC would
apply (alarm on the first reading outside the band, no minimum duration, no hysteresis, no
sensor-fault gating), to show what the false-alarm budget costs in delay.

``latency``: a real broker and worker under a background load of water readings; camera events
(motionless swimmer) are produced at a steady rate and each raised alarm on ``alerts`` is
matched to its event. Baseline in the same run: the broker's own produce->consume latency for
a plain record under the same load.
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import orjson

from streams.settings import Settings

DAY = 86_400.0


def replay_pool_day_through_core(day: Any, capacity: int, min_duration_s: float, naive: bool = False) -> list[Any]:
    """Every alarm the core raises for one simulated day (``RaisedAlarm`` list)."""
    from detection.evaluation import RaisedAlarm
    from detection.pool_watch import PoolProfile, reading_outcome, supervision_outcome
    from detection.water_rules import limits_for

    limits = limits_for("swimmer", min_duration_s=0.0 if naive else min_duration_s)
    profile = PoolProfile(limits, capacity=capacity)
    states: dict[str, Any] = {}
    raised: list[RaisedAlarm] = []
    for t, pool, values, visitors in day.readings:
        if naive:
            # no sensor gating and no hysteresis: raise whenever a value first steps outside
            rules = states.get(pool)
            for p, v in values.items():
                band = limits.band_for(p, values)
                out = band is not None and band.outside(v)
                was = (rules or {}).get(p, False)
                if out and not was:
                    raised.append(RaisedAlarm(pool, f"water_{p}", "major", t))
                rules = {**(rules or {}), p: out}
            states[pool] = rules
            continue
        states[pool], outcome = reading_outcome(states.get(pool), pool, t, values, visitors, profile)
        raised += [RaisedAlarm(pool, tr.kind, tr.severity, t) for tr in outcome.triggers]
    for t, pool, event_id, kind in day.camera:
        outcome = supervision_outcome(pool, event_id, kind, t, {})
        raised += [RaisedAlarm(pool, tr.kind, tr.severity, t) for tr in outcome.triggers]
    return raised


def pool_day_benchmark(days: int, pools: int, seed: int, min_duration_s: float = 30.0) -> dict[str, Any]:
    from detection.evaluation import Truth, evaluate_alarms
    from simulators.city.pool_day import simulate_pool_day

    start = datetime(2026, 6, 1, tzinfo=timezone.utc).timestamp()
    truth: list[Truth] = []
    ours: list[Any] = []
    naive: list[Any] = []
    readings, core_s = 0, 0.0
    for d in range(days):
        day = simulate_pool_day(start + d * DAY, pools=pools, seed=seed + d)
        truth += [Truth(i.pool_id, i.kind, i.start, i.end, i.expected_alarm, i.severity) for i in day.truth]
        t0 = time.perf_counter()
        ours += replay_pool_day_through_core(day, 200, min_duration_s)
        core_s += time.perf_counter() - t0
        naive += replay_pool_day_through_core(day, 200, min_duration_s, naive=True)
        readings += len(day.readings)
    result = evaluate_alarms(truth, ours, days=days, subjects=pools)
    baseline = evaluate_alarms(truth, naive, days=days, subjects=pools)
    for r in (result, baseline):
        for row in r["per_kind"].values():
            row.pop("delays_s")
    return {
        "benchmark": "pool_day",
        "days": days,
        "pools": pools,
        "seed": seed,
        "min_duration_s": min_duration_s,
        "readings": readings,
        "core_readings_per_s": round(readings / core_s),
        "leitstand": result,
        "baseline": "naive band check: alarm on the first reading outside the band, no duration, no hysteresis, no sensor-fault gating",
        "baseline_result": {k: v for k, v in baseline.items() if k != "critical_missed"},
        "false_water_alarms_ratio_to_baseline": round(
            result["false_water_alarms_per_subject_day"] / max(1e-9, baseline["false_water_alarms_per_subject_day"]), 3
        ),
    }


def _percentiles(xs: list[float]) -> dict[str, float | None]:
    if not xs:
        return {"n": 0, "p50_ms": None, "p99_ms": None, "max_ms": None}
    q = statistics.quantiles(xs, n=100, method="inclusive") if len(xs) > 1 else [xs[0]] * 99
    return {"n": len(xs), "p50_ms": round(q[49] * 1000, 1), "p99_ms": round(q[98] * 1000, 1), "max_ms": round(max(xs) * 1000, 1)}


def latency_benchmark(
    settings: Settings, *, engine: str, load_per_s: int, events: int, event_rate_per_s: float, split_roles: bool = True
) -> dict[str, Any]:
    from streams.broker import start, stop
    from streams.kafka_io import ensure_topics, producer, tail
    from streams.stack import WorkerProcess, free_port, settings_env

    state = Path(tempfile.mkdtemp(prefix="leitstand-bench-latency-"))
    info = start(engine, state, settings.cache_dir, "127.0.0.1", free_port(), progress=True)
    settings = settings.model_copy(update={"kafka_bootstrap_servers": info.bootstrap, "state_dir": state})
    roles = ["critical", "telemetry"] if split_roles else ["all"]
    workers = [
        WorkerProcess(
            settings_env(
                {
                    "kafka_bootstrap_servers": info.bootstrap,
                    "app_id": "leitstand-bench-latency",
                    "data_dir": state / f"worker-{role}",
                    "log_level": "warning",
                    "worker_role": role,
                }
            ),
            log_file=state / f"worker-{role}.log",
            web_port=free_port(),
        )
        for role in roles
    ]
    sent_at: dict[str, float] = {}
    probe_sent: dict[str, float] = {}
    alarm_lat: list[float] = []
    probe_lat: list[float] = []
    stop_load = threading.Event()
    load_sent = [0]

    def iso(t: float) -> str:
        return datetime.fromtimestamp(t, tz=timezone.utc).isoformat()

    async def background_load() -> None:
        prod = producer(settings)
        await prod.start()
        try:
            tick, pools = 0.05, 200
            per_tick = max(1, int(load_per_s * tick))
            nxt = time.perf_counter()
            while not stop_load.is_set():
                now = time.time()
                for i in range(per_tick):
                    pool = f"pool-{(load_sent[0] + i) % pools}"
                    value = orjson.dumps(
                        {
                            "schema_version": 1,
                            "event_time": iso(now),
                            "pool_id": pool,
                            "ph": {"value": 7.0, "unit": "pH"},
                            "free_chlorine": {"value": 0.45, "unit": "mg/l"},
                        }
                    )
                    await prod.send(settings.topic("sensors.pool"), key=pool.encode(), value=value)
                load_sent[0] += per_tick
                nxt += tick
                await asyncio.sleep(max(0.0, nxt - time.perf_counter()))
        finally:
            await prod.stop()

    async def measured() -> None:
        prod = producer(settings)
        await prod.start()
        done = asyncio.Event()

        async def watch_alerts() -> None:
            async for m in tail(settings, settings.topic("alerts"), from_beginning=True):
                if m.value is None:  # a tombstone: no alert in it
                    continue
                rec = orjson.loads(m.value)
                eid = rec.get("evidence", {}).get("camera_event_id")
                if rec.get("transition") == "raised" and eid in sent_at:
                    alarm_lat.append(time.time() - sent_at.pop(eid))
                if len(alarm_lat) >= events:
                    done.set()
                    return

        async def watch_probe() -> None:
            async for m in tail(settings, settings.topic("events.schedule"), from_beginning=True):
                pid = m.key.decode() if m.key else ""
                if pid in probe_sent:
                    probe_lat.append(time.time() - probe_sent.pop(pid))
                if len(probe_lat) >= events:
                    return

        watchers = [asyncio.ensure_future(watch_alerts()), asyncio.ensure_future(watch_probe())]
        await asyncio.sleep(1.0)
        try:
            for i in range(events):
                eid = f"bench-{i}"
                now = time.time()
                value = orjson.dumps(
                    {
                        "schema_version": 1,
                        "event_time": iso(now),
                        "pool_id": f"pool-{i % 200}",
                        "event_id": eid,
                        "kind": "motionless_swimmer",
                        "zone": "deep end",
                    }
                )
                sent_at[eid] = time.time()
                await prod.send(settings.topic("pool.supervision"), key=f"pool-{i % 200}".encode(), value=value)
                # baseline: a plain record through the same broker (a topic no agent reads)
                probe_sent[f"probe-{i}"] = time.time()
                await prod.send(settings.topic("events.schedule"), key=f"probe-{i}".encode(), value=b"{}")
                await asyncio.sleep(1.0 / event_rate_per_s)
            await asyncio.wait_for(done.wait(), timeout=60)
        except TimeoutError:
            pass
        finally:
            for w in watchers:
                w.cancel()
            await prod.stop()

    try:
        asyncio.run(ensure_topics(settings))
        ready_s = max(w.start() for w in workers)
        loader = threading.Thread(target=lambda: asyncio.run(background_load()), daemon=True)
        t0 = time.perf_counter()
        loader.start()
        time.sleep(3.0)  # let the load settle
        asyncio.run(measured())
        stop_load.set()
        loader.join(10)
        load_rate = load_sent[0] / (time.perf_counter() - t0)
        readings = workers[-1].metrics().get("leitstand_pool_readings_total", 0.0)
    finally:
        for w in workers:
            w.stop()
        stop(state, engine)
    ours, base = _percentiles(alarm_lat), _percentiles(probe_lat)
    return {
        "benchmark": "alarm_latency",
        "engine": engine,
        "worker_roles": roles,
        "worker_ready_s": round(ready_s, 2),
        "background_load_target_per_s": load_per_s,
        "background_load_achieved_per_s": round(load_rate),
        "pool_readings_evaluated": int(readings),
        "events": events,
        "missing_alarms": events - len(alarm_lat),
        "motionless_swimmer_to_alarm": ours,
        "baseline": "plain record produce -> consume through the same broker under the same load",
        "baseline_latency": base,
        "p99_ratio_to_baseline": round(ours["p99_ms"] / base["p99_ms"], 2) if ours["p99_ms"] and base["p99_ms"] else None,
    }
