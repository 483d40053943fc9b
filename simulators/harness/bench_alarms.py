"""Alarm benchmarks: a simulated pool day scored against ground truth, and alarm latency.

``pool_day``: simulated days through the pool core (rules, sensor faults, camera events),
scored by ``detection.evaluation``; baseline in the same run: the naive rule a plain PLC would
apply (alarm on the first reading outside the band, no minimum duration, no hysteresis, no
sensor-fault gating), to show what the false-alarm budget costs in delay.

``latency``: a real broker and worker under a background load of water readings; camera events
(motionless swimmer) are produced at a steady rate and each raised alarm on ``alerts`` is
matched to its event. Baseline in the same run: the broker's own produce->consume latency for
a plain record under the same load. ``--with-forecasting N`` gives the telemetry worker N
forecast series refreshing without pause (history imported first), and ``--stress`` runs
Debian's ``stress-ng`` (CPU, memory and disk workers) beside everything: the alarm path must
hold its latency whatever else the machine is doing.
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from streams.settings import Settings

if TYPE_CHECKING:
    from aiokafka import AIOKafkaProducer

    from streams.stack import WorkerProcess

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


#: the issue's mixed load: two CPU spinners, two 1 GiB memory thrashers, one disk writer
STRESS_ARGS = ["--cpu", "2", "--vm", "2", "--vm-bytes", "1G", "--hdd", "1", "--hdd-bytes", "256M"]
#: hours of imported history per forecast series (more than the 48 a series needs to be fitted)
FORECAST_HISTORY_H = 72


def latency_benchmark(
    settings: Settings,
    *,
    engine: str,
    load_per_s: int,
    events: int,
    event_rate_per_s: float,
    split_roles: bool = True,
    forecast_series: int = 0,
    stress: bool = False,
) -> dict[str, Any]:
    """Camera event -> raised alarm latency under a background load, beside the broker's own
    produce -> consume latency for a plain record (see the module text)."""
    stress_bin = _stress_ng() if stress else None
    from streams.broker import start, stop
    from streams.kafka_io import ensure_topics
    from streams.stack import free_port

    state = Path(tempfile.mkdtemp(prefix="leitstand-bench-latency-"))
    info = start(engine, state, settings.cache_dir, "127.0.0.1", free_port(), progress=True)
    settings = settings.model_copy(update={"kafka_bootstrap_servers": info.bootstrap, "state_dir": state})
    roles = ["critical", "water", "telemetry"] if split_roles else ["all"]
    workers = _latency_workers(info.bootstrap, state, roles, forecasting=forecast_series > 0)
    load = _BackgroundLoad(settings, load_per_s)
    probe = _LatencyProbe(settings, events, event_rate_per_s)
    try:
        asyncio.run(ensure_topics(settings))
        if forecast_series:
            asyncio.run(_import_forecast_history(settings, forecast_series))
        ready_s = max(w.start() for w in workers)
        stressor = _start_stress(stress_bin, state) if stress_bin else None
        refitting_after_s = _wait_for_refits(workers[-1]) if forecast_series else None
        forecasts_before = _forecasts_published(workers[-1])
        loader = threading.Thread(target=lambda: asyncio.run(load.run()), daemon=True)
        t0 = time.perf_counter()
        loader.start()
        time.sleep(3.0)  # let the load settle
        asyncio.run(probe.run())
        load.stop.set()
        loader.join(10)
        load_rate = load.sent / (time.perf_counter() - t0)
        readings = sum(w.metrics().get("leitstand_pool_readings_total", 0.0) for w in workers)  # the water role's
        forecasts = _forecasts_published(workers[-1]) - forecasts_before
    finally:
        if stressor is not None:
            stressor.terminate()
            stressor.wait(30)
        for w in workers:
            w.stop()
        stop(state, engine)
    ours, base = _percentiles(probe.alarm_lat), _percentiles(probe.probe_lat)
    return {
        "benchmark": "alarm_latency",
        "engine": engine,
        "worker_roles": roles,
        "worker_ready_s": round(ready_s, 2),
        "background_load_target_per_s": load_per_s,
        "background_load_achieved_per_s": round(load_rate),
        "pool_readings_evaluated": int(readings),
        "forecast_series": forecast_series,
        "forecasts_published_while_measured": int(forecasts),
        "refits_running_after_s": refitting_after_s,
        "stress": " ".join(["stress-ng", *STRESS_ARGS]) if stress else None,
        "events": events,
        "missing_alarms": events - len(probe.alarm_lat),
        "motionless_swimmer_to_alarm": ours,
        "baseline": "plain record produce -> consume through the same broker under the same load",
        "baseline_latency": base,
        "p99_ratio_to_baseline": round(ours["p99_ms"] / base["p99_ms"], 2) if ours["p99_ms"] and base["p99_ms"] else None,
    }


def _stress_ng() -> str:
    """The stress-ng binary, or a one-line error saying how to get it."""
    import shutil

    from streams.errors import CliError

    found = shutil.which("stress-ng")
    if found is None:
        raise CliError("--stress needs stress-ng: apt-get install stress-ng (./scripts/test installs it)")
    return found


def _start_stress(binary: str, state: Path) -> Any:
    """stress-ng beside the benchmark, its temporary files in the benchmark's state directory."""
    import subprocess

    return subprocess.Popen(
        [binary, *STRESS_ARGS, "--temp-path", str(state), "--quiet"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )


def _wait_for_refits(worker: WorkerProcess, bound_s: float = 900.0) -> float:
    """Seconds until the telemetry worker has folded the imported history and published its first
    forecasts: only then is the alarm path measured *while* series are being refitted."""
    from streams.errors import CliError

    t0 = time.perf_counter()
    while _forecasts_published(worker) < 1:
        if time.perf_counter() - t0 > bound_s:
            raise CliError(f"the telemetry worker published no forecast within {bound_s:g} s; see {worker.log_file}")
        time.sleep(1.0)
    return round(time.perf_counter() - t0, 1)


def _forecasts_published(worker: WorkerProcess) -> float:
    try:
        metrics = worker.metrics()
    except OSError:
        return 0.0
    return sum(v for k, v in metrics.items() if k.startswith("leitstand_forecast_refreshes_total{"))


async def _import_forecast_history(settings: Settings, series: int) -> None:
    """``FORECAST_HISTORY_H`` hourly aggregates for each of ``series`` intersections, ending now:
    every series can be fitted from the worker's first refresh on."""
    from datetime import timedelta

    from streams.kafka_io import produce_to
    from streams.records import DetectorAggregate, encode

    end = datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0)

    def aggregates() -> Any:
        for i in range(series):
            iid = f"fc-{i}"
            for h in range(FORECAST_HISTORY_H, 0, -1):
                start = end - timedelta(hours=h)
                vehicles = 300 + 200 * ((start.hour - 6) % 24 < 14) + (i % 50)
                aggregate = DetectorAggregate(
                    aggregate_id=f"{iid}/history/{int(start.timestamp())}",
                    intersection_id=iid,
                    detector_id="history",
                    window_start=start,
                    window_end=start + timedelta(hours=1),
                    frames=0,
                    count_sum=vehicles,
                    occupancy_mean=0.0,
                    speed_kmh_mean=None,
                    event_time=start + timedelta(hours=1),
                )
                yield iid.encode(), encode(aggregate)

    await produce_to(settings, settings.topic("aggregates"), aggregates())


def _latency_workers(bootstrap: str, state: Path, roles: list[str], *, forecasting: bool = False) -> list[WorkerProcess]:
    """One worker per role (critical, water and telemetry apart, as in production, or one for all).
    With ``forecasting`` the telemetry worker refits every series as often as it can."""
    from streams.stack import WorkerProcess, free_port, settings_env

    refits = {"forecast_refresh_s": 5.0, "forecast_min_history_h": 48} if forecasting else {}
    return [
        WorkerProcess(
            settings_env(
                {
                    "kafka_bootstrap_servers": bootstrap,
                    "app_id": "leitstand-bench-latency",
                    "data_dir": state / f"worker-{role}",
                    "log_level": "warning",
                    "worker_role": role,
                    **(refits if role in ("all", "telemetry") else {}),
                }
            ),
            log_file=state / f"worker-{role}.log",
            web_port=free_port(),
        )
        for role in roles
    ]


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, tz=timezone.utc).isoformat()


class _BackgroundLoad:
    """Water readings at ``load_per_s`` for 200 pools, in ticks of 50 ms, until ``stop`` is set.

    Runs in its own thread and event loop, so the measured events do not queue behind it in
    one loop: it competes for the broker and the workers, as real load would.
    """

    def __init__(self, settings: Settings, load_per_s: int) -> None:
        self.settings = settings
        self.load_per_s = load_per_s
        self.stop = threading.Event()
        self.sent = 0

    async def run(self) -> None:
        from streams.kafka_io import producer

        settings = self.settings
        prod = producer(settings)
        await prod.start()
        try:
            tick, pools = 0.05, 200
            per_tick = max(1, int(self.load_per_s * tick))
            nxt = time.perf_counter()
            while not self.stop.is_set():
                now = time.time()
                for i in range(per_tick):
                    pool = f"pool-{(self.sent + i) % pools}"
                    value = orjson.dumps(
                        {
                            "schema_version": 1,
                            "event_time": _iso(now),
                            "pool_id": pool,
                            "ph": {"value": 7.0, "unit": "pH"},
                            "free_chlorine": {"value": 0.45, "unit": "mg/l"},
                        }
                    )
                    await prod.send(settings.topic("sensors.pool"), key=pool.encode(), value=value)
                self.sent += per_tick
                nxt += tick
                await asyncio.sleep(max(0.0, nxt - time.perf_counter()))
        finally:
            await prod.stop()


class _LatencyProbe:
    """Sends ``events`` camera events (motionless swimmer), each followed by a plain probe record
    on a topic no agent reads, and times each to its raised alert and to its consumption."""

    def __init__(self, settings: Settings, events: int, event_rate_per_s: float) -> None:
        self.settings = settings
        self.events = events
        self.event_rate_per_s = event_rate_per_s
        self.sent_at: dict[str, float] = {}  # camera event id -> when it was sent
        self.probe_sent: dict[str, float] = {}  # probe key -> when it was sent
        self.alarm_lat: list[float] = []
        self.probe_lat: list[float] = []
        self.done = asyncio.Event()  # every event has its alert (binds to the loop that first waits)

    async def run(self) -> None:
        """Send the events at the rate asked for; wait up to 60 s for the last alerts."""
        from streams.kafka_io import producer

        prod = producer(self.settings)
        await prod.start()
        watchers = [asyncio.ensure_future(self.watch_alerts()), asyncio.ensure_future(self.watch_probe())]
        await asyncio.sleep(1.0)
        try:
            for i in range(self.events):
                await self.send_event(prod, i)
                await asyncio.sleep(1.0 / self.event_rate_per_s)
            await asyncio.wait_for(self.done.wait(), timeout=60)
        except TimeoutError:
            pass
        finally:
            for w in watchers:
                w.cancel()
            await prod.stop()

    async def send_event(self, prod: AIOKafkaProducer, i: int) -> None:
        """Camera event ``bench-<i>``, then the baseline's probe record ``probe-<i>``."""
        settings = self.settings
        eid = f"bench-{i}"
        now = time.time()
        value = orjson.dumps(
            {
                "schema_version": 1,
                "event_time": _iso(now),
                "pool_id": f"pool-{i % 200}",
                "event_id": eid,
                "kind": "motionless_swimmer",
                "zone": "deep end",
            }
        )
        self.sent_at[eid] = time.time()
        await prod.send(settings.topic("pool.supervision"), key=f"pool-{i % 200}".encode(), value=value)
        # baseline: a plain record through the same broker (a topic no agent reads)
        self.probe_sent[f"probe-{i}"] = time.time()
        await prod.send(settings.topic("events.schedule"), key=f"probe-{i}".encode(), value=b"{}")

    async def watch_alerts(self) -> None:
        """Match each raised alert to its camera event; ``done`` when every event has one."""
        from streams.kafka_io import tail

        async for m in tail(self.settings, self.settings.topic("alerts"), from_beginning=True):
            if m.value is None:  # a tombstone: no alert in it
                continue
            rec = orjson.loads(m.value)
            eid = rec.get("evidence", {}).get("camera_event_id")
            if rec.get("transition") == "raised" and eid in self.sent_at:
                self.alarm_lat.append(time.time() - self.sent_at.pop(eid))
            if len(self.alarm_lat) >= self.events:
                self.done.set()
                return

    async def watch_probe(self) -> None:
        """The baseline: each probe record's produce -> consume time."""
        from streams.kafka_io import tail

        async for m in tail(self.settings, self.settings.topic("events.schedule"), from_beginning=True):
            pid = m.key.decode() if m.key else ""
            if pid in self.probe_sent:
                self.probe_lat.append(time.time() - self.probe_sent.pop(pid))
            if len(self.probe_lat) >= self.events:
                return
