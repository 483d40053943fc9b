"""City-scale run (issue 12): a city's live load, paced in real time, on N telemetry workers beside
one critical, one water and one control worker, each a process of its own as in production.

The load is what a city sends (the issue's figures are the defaults): one detector frame per
signalised intersection and second, a position per bus every 10 s, 20 water readings per pool
and second, and camera events (motionless swimmer) at a steady rate, every record stamped with
the wall clock so latencies include the broker's hops. After a warm-up the run measures, over the
interval only (differences of the workers' own counters):

* p50 / p99 event-to-output latency per path, from ``leitstand_event_to_output_seconds`` summed
  over the workers (Prometheus' interpolation within a bucket: the buckets bound the precision);
* each worker's CPU share (user + system seconds over wall seconds; 1.0 is one core) and the
  niceness it ran at (the bulk roles lower their own priority: ``Settings.niceness``);
* per consumer group and topic the records behind at the start and at the end: a group that
  keeps up ends about where it started, one that does not falls further behind every second
  (``behind_growth_per_s``);
* what the load generator really sent per second (on a busy machine it can fall short too).

The machine is shared by everything at once (broker, workers, generator), as a small deployment
would be; the figures say what one machine of this size carries, not what one process could.
"""

from __future__ import annotations

import asyncio
import math
import os
import random
import re
import tempfile
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from simulators.harness.bench import _cpu_s, _machine
from simulators.harness.bench_alarms import _iso
from simulators.harness.bench_signal_configs import configure_signals
from streams.settings import Settings

if TYPE_CHECKING:
    from streams.stack import WorkerProcess

APP_ID = "leitstand-bench-city"
LATENCY = "leitstand_event_to_output_seconds"
#: a group keeps up when the oldest record it has not committed is at most this old at the end
#: (Faust commits every 2.8 s; batches wait up to a second more)
KEEP_UP_AGE_S = 10.0
#: without that age: when it ends at most this many seconds of its input further behind than it began
KEEP_UP_SLACK_S = 5.0


@dataclass(frozen=True)
class CityLoad:
    """What the city sends; defaults are the issue's city (Berlin-sized)."""

    intersections: int = 2000
    detectors: int = 12
    buses: int = 1500
    bus_interval_s: float = 10.0
    pools: int = 60
    pool_readings_per_s: float = 20.0
    camera_events_per_s: float = 1.0
    #: every pool's pH leaves the DIN 19643 range for EXCURSION_S of every EXCURSION_EVERY_S
    #: (staggered by pool), so water alarms are raised and timed; False: all readings in range
    ph_excursions: bool = True

    EXCURSION_S = 45.0  # longer than the 30 s a value must stay out of range (water_min_duration_s)
    EXCURSION_EVERY_S = 120.0

    def ph_out_of_range(self, pool: int, now: float) -> bool:
        """Whether pool number ``pool`` is in its pH excursion at wall time ``now``."""
        if not self.ph_excursions or not self.pools:
            return False
        phase = (now + pool * self.EXCURSION_EVERY_S / self.pools) % self.EXCURSION_EVERY_S
        return phase < self.EXCURSION_S

    def offered_per_s(self) -> dict[str, float]:
        """Records per second per input topic."""
        return {
            "sensors.intersection": float(self.intersections),
            "sensors.bus": self.buses / self.bus_interval_s,
            "sensors.pool": self.pools * self.pool_readings_per_s,
            "pool.supervision": self.camera_events_per_s if self.pools else 0.0,
        }


# --- pure: what the counters say ------------------------------------------------------------

_LE = re.compile(r'le="([^"]+)"')
_PATH = re.compile(r'path="([^"]+)"')


def latency_buckets(samples: Mapping[str, float]) -> dict[str, list[tuple[float, float]]]:
    """Per path, the cumulative (upper bound, count) pairs of the latency histogram in one
    worker's samples (``name{labels}`` -> value, as ``WorkerProcess.metrics`` gives them)."""
    out: dict[str, list[tuple[float, float]]] = {}
    for name, value in samples.items():
        if not name.startswith(LATENCY + "_bucket{"):
            continue
        le, path = _LE.search(name), _PATH.search(name)
        if le and path:
            out.setdefault(path.group(1), []).append((float(le.group(1)), value))
    return {p: sorted(b) for p, b in out.items()}


def add_buckets(
    a: Mapping[str, list[tuple[float, float]]], b: Mapping[str, list[tuple[float, float]]], sign: float = 1.0
) -> dict[str, list[tuple[float, float]]]:
    """``a + sign * b`` bucket by bucket (workers summed, or a snapshot subtracted)."""
    out: dict[str, list[tuple[float, float]]] = {}
    for path in sorted(set(a) | set(b)):
        counts: dict[float, float] = {}
        for le, n in a.get(path, []):
            counts[le] = counts.get(le, 0.0) + n
        for le, n in b.get(path, []):
            counts[le] = counts.get(le, 0.0) + sign * n
        out[path] = sorted(counts.items())
    return out


def quantile(q: float, buckets: list[tuple[float, float]]) -> float | None:
    """The ``q`` quantile of a cumulative histogram, interpolated linearly within its bucket as
    Prometheus' ``histogram_quantile`` does; None without observations. Beyond the last finite
    bound it is that bound (the histogram knows no more)."""
    if not buckets or buckets[-1][1] <= 0:
        return None
    total = buckets[-1][1]
    rank = q * total
    lower, below = 0.0, 0.0
    for le, count in buckets:
        if count >= rank:
            if math.isinf(le):
                return lower
            if count == below:
                return le
            return lower + (le - lower) * (rank - below) / (count - below)
        lower, below = (le if not math.isinf(le) else lower), count
    return lower


def latency_summary(buckets: Mapping[str, list[tuple[float, float]]]) -> dict[str, dict[str, float | int | None]]:
    """Per path: outputs observed, p50 and p99 in seconds (rounded to milliseconds)."""

    def r(x: float | None) -> float | None:
        return None if x is None else round(x, 3)

    return {
        path: {"outputs": int(b[-1][1]) if b else 0, "p50_s": r(quantile(0.5, b)), "p99_s": r(quantile(0.99, b))}
        for path, b in buckets.items()
    }


def behind_summary(
    start: Mapping[tuple[str, str], int],
    end: Mapping[tuple[str, str], int],
    rates: Mapping[str, float],
    seconds: float,
    oldest_unread_s: Mapping[tuple[str, str], float] | None = None,
) -> dict[str, dict[str, Any]]:
    """Per ``group/topic``: records behind at the start and the end, the growth per second, the
    age of the oldest record not yet committed at the end, and whether the group kept up: that
    age at most ``KEEP_UP_AGE_S`` (a count alone misleads on a busy output topic, where a commit
    interval holds many records), or, where the age is unknown, at most ``KEEP_UP_SLACK_S`` of
    its input further behind than at the start."""
    out: dict[str, dict[str, Any]] = {}
    for group, topic in sorted(set(start) | set(end)):
        a, b = start.get((group, topic), 0), end.get((group, topic), 0)
        age = (oldest_unread_s or {}).get((group, topic), 0.0 if b == 0 else None)
        if age is not None:
            kept_up = age <= KEEP_UP_AGE_S
        else:
            kept_up = b - a <= KEEP_UP_SLACK_S * max(rates.get(topic, 0.0), 1.0)
        out[f"{group}/{topic}"] = {
            "behind_at_start": a,
            "behind_at_end": b,
            "behind_growth_per_s": round((b - a) / seconds, 1) if seconds > 0 else None,
            "oldest_unread_s": age,
            "kept_up": kept_up,
        }
    return out


async def _configure(settings: Settings, load: CityLoad, controller: str) -> None:
    """One ``signals.config`` record per intersection (automatic mode), before the load starts."""
    from simulators.city.frames import layouts

    await configure_signals(settings, layouts(load.intersections, CityLoadGenerator.SEED, load.detectors), controller, "bench-city")


# --- the load -------------------------------------------------------------------------------


class CityLoadGenerator:
    """Sends ``load`` in ticks of 100 ms until ``stop`` is set, in its own thread and event loop
    (so it competes for the machine as a city's devices would, not inside the measuring loop).
    Every record is stamped with the wall clock when it is made."""

    TICK_S = 0.1
    SEED = 5

    def __init__(self, settings: Settings, load: CityLoad, seed: int = SEED) -> None:
        from simulators.city.frames import layouts

        self.settings = settings
        self.load = load
        self.stop = threading.Event()
        self.sent: dict[str, int] = {t: 0 for t in load.offered_per_s()}
        self.rng = random.Random(seed)
        self.layouts = layouts(load.intersections, seed, load.detectors)
        self._due: dict[str, float] = {t: 0.0 for t in self.sent}  # fractional records carried over

    def _take(self, topic: str) -> int:
        self._due[topic] += self.load.offered_per_s()[topic] * self.TICK_S
        n = int(self._due[topic])
        self._due[topic] -= n
        return n

    def _records(self, topic: str, n: int, now: float) -> Iterable[tuple[bytes, bytes]]:
        from simulators.city.frames import frame_at
        from streams.records import encode

        sent, load, rng = self.sent[topic], self.load, self.rng
        if topic == "sensors.intersection":
            t = datetime.fromtimestamp(now, tz=timezone.utc)
            for i in range(n):
                layout = self.layouts[(sent + i) % len(self.layouts)]
                yield layout.intersection_id.encode(), encode(frame_at(layout, t, 1.0, rng))
        elif topic == "sensors.bus":
            for i in range(n):
                k = (sent + i) % load.buses
                yield (
                    f"bus-{k}".encode(),
                    orjson.dumps(
                        {
                            "schema_version": 1,
                            "event_time": _iso(now),
                            "vehicle_id": f"bus-{k}",
                            "trip_id": f"trip-{k}",
                            "route_id": f"line-{k % 60}",
                            "latitude": 49.87 + (k % 100) * 1e-4,
                            "longitude": 8.65 + (k // 100) * 1e-4,
                            "current_stop_sequence": (sent + i) // load.buses % 40,
                            "delay_s": float(rng.randint(-60, 300)),
                        }
                    ),
                )
        else:  # keyed by pool: water readings, or camera events (a motionless swimmer, each a new event and alarm)
            for i in range(n):
                k = (sent + i) % load.pools
                pool = f"pool-{k}"
                body: dict[str, Any] = {"schema_version": 1, "event_time": _iso(now), "pool_id": pool}
                if topic == "sensors.pool":
                    # the swimmer basin's band is 6.5-7.2; a step of 1.0 or more would be a sensor fault
                    ph = rng.uniform(7.6, 7.7) if load.ph_out_of_range(k, now) else rng.uniform(6.9, 7.1)
                    body["ph"] = {"value": round(ph, 2), "unit": "pH"}
                    body["free_chlorine"] = {"value": round(rng.uniform(0.4, 0.5), 3), "unit": "mg/l"}
                else:
                    body.update(event_id=f"city-{sent + i}", kind="motionless_swimmer", zone="deep end")
                yield pool.encode(), orjson.dumps(body)

    async def run(self) -> None:
        from streams.kafka_io import producer

        prod = producer(self.settings)
        await prod.start()
        try:
            nxt = time.perf_counter()
            while not self.stop.is_set():
                now = time.time()
                for topic in self.sent:
                    n = self._take(topic)
                    name = self.settings.topic(topic)
                    for key, value in self._records(topic, n, now):
                        await prod.send(name, key=key, value=value)
                    self.sent[topic] += n
                nxt += self.TICK_S
                await asyncio.sleep(max(0.0, nxt - time.perf_counter()))
            await prod.flush()
        finally:
            await prod.stop()


# --- the run --------------------------------------------------------------------------------


def _workers(settings: Settings, state: Path, telemetry: int) -> list[tuple[str, WorkerProcess]]:
    from streams.stack import WorkerProcess, free_port, settings_env

    roles = ["critical", "water", "control", *(["telemetry"] * telemetry)]
    out = []
    for i, role in enumerate(roles):
        env = settings_env(
            {
                "kafka_bootstrap_servers": settings.kafka_bootstrap_servers,
                "app_id": APP_ID,
                "topic_partitions": settings.topic_partitions,
                "data_dir": state / f"worker-{i}-{role}",
                "log_level": "warning",
                "worker_role": role,
            }
        )
        out.append((role, WorkerProcess(env, log_file=state / f"worker-{i}-{role}.log", web_port=free_port())))
    return out


def _snapshot(workers: list[tuple[str, WorkerProcess]]) -> tuple[dict[str, list[tuple[float, float]]], list[float]]:
    """Latency buckets summed over the workers, and each worker's CPU seconds so far."""
    from streams.errors import CliError

    total: dict[str, list[tuple[float, float]]] = {}
    cpu = []
    for role, w in workers:
        if w.proc is None or w.proc.poll() is not None:  # a run with a dead worker measures nothing
            raise CliError(f"the {role} worker stopped during the run; its log: {w.log_file}: {w.log_tail()}")
        total = add_buckets(total, latency_buckets(w.metrics()))
        cpu.append(_cpu_s(w))
    return total, cpu


async def _behind(settings: Settings, groups: list[str]) -> tuple[dict[tuple[str, str], int], dict[tuple[str, str], float]]:
    """Records behind per (group, topic), as the broker sees it, and for those behind how old
    the oldest unread record is (seconds): a commit interval's worth is normal, more is a backlog."""
    from simulators.harness.demo import LagProbe

    behind: dict[tuple[str, str], int] = {}
    age: dict[tuple[str, str], float] = {}
    now = time.time()
    for group in groups:
        probe = LagProbe(settings, [group])
        await probe.start()
        try:
            positions: dict[str, dict[tuple[str, int], int]] = {}
            for (topic, partition), (end, done) in (await probe.offsets()).items():
                short = topic.removeprefix(settings.topic_prefix)
                behind[(group, short)] = behind.get((group, short), 0) + max(0, end - done)
                if end > done:
                    positions.setdefault(short, {})[(topic, partition)] = done
            for short, where in positions.items():
                oldest = await probe.reached(where)
                if oldest is not None:
                    age[(group, short)] = round(max(0.0, now - oldest), 1)
        finally:
            await probe.close()
    return behind, age


def city_benchmark(
    settings: Settings,
    *,
    engine: str,
    load: CityLoad,
    telemetry_workers: int,
    partitions: int,
    warmup_s: float,
    measure_s: float,
    controller: str = "leitstand",
    stress: bool = False,
) -> dict[str, Any]:
    """One city-scale run on a fresh broker (see the module text); returns the JSON figures.
    With ``stress`` the issue's mixed load (``stress-ng``: CPU, memory, disk) runs beside it from
    the start of the load to the end of the measurement."""
    from simulators.harness.bench_alarms import STRESS_ARGS, _start_stress, _stress_ng
    from streams.broker import start, stop
    from streams.kafka_io import ensure_topics
    from streams.stack import free_port

    stress_bin = _stress_ng() if stress else None  # a missing stress-ng is one line before anything starts
    state = Path(tempfile.mkdtemp(prefix="leitstand-bench-city-"))
    info = start(engine, state, settings.cache_dir, "127.0.0.1", free_port(), progress=True)
    settings = settings.model_copy(
        update={"kafka_bootstrap_servers": info.bootstrap, "state_dir": state, "app_id": APP_ID, "topic_partitions": partitions}
    )
    workers = _workers(settings, state, telemetry_workers)
    generator = CityLoadGenerator(settings, load)
    groups = sorted({f"{APP_ID}-{role}" for role, _ in workers})
    thread = threading.Thread(target=lambda: asyncio.run(generator.run()), daemon=True)
    stressor = None
    try:
        asyncio.run(ensure_topics(settings))
        asyncio.run(_configure(settings, load, controller))
        for _, w in workers:
            w.launch()
        ready_s = max(w.wait_ready(180) for _, w in workers)
        nice = [os.getpriority(os.PRIO_PROCESS, w.proc.pid) if w.proc else None for _, w in workers]
        thread.start()
        stressor = _start_stress(stress_bin, state) if stress_bin else None
        time.sleep(warmup_s)
        behind0, _ = asyncio.run(_behind(settings, groups))
        sent0 = dict(generator.sent)
        buckets0, cpu0 = _snapshot(workers)
        t0 = time.perf_counter()
        time.sleep(measure_s)
        buckets1, cpu1 = _snapshot(workers)
        seconds = time.perf_counter() - t0
        sent1 = dict(generator.sent)
        behind1, oldest = asyncio.run(_behind(settings, groups))
        generator.stop.set()
        thread.join(30)
    finally:
        generator.stop.set()
        if stressor is not None:
            stressor.terminate()
            stressor.wait(30)
        for _, w in workers:
            w.stop()
        stop(state, engine)
    offered = load.offered_per_s()
    sent = {t: round((sent1[t] - sent0[t]) / seconds, 1) for t in offered}
    behind = behind_summary(behind0, behind1, sent, seconds, oldest)
    cpu = [
        {"role": role, "cpu_share": round((c1 - c0) / seconds, 3), "nice": n}
        for (role, _), c0, c1, n in zip(workers, cpu0, cpu1, nice, strict=True)
    ]
    return {
        "benchmark": "city",
        "engine": engine,
        "load": asdict(load),
        "offered_records_per_s": offered,
        "sent_records_per_s": sent,
        "detector_readings_per_s": round(sent["sensors.intersection"] * load.detectors),
        "workers": cpu,
        "partitions": partitions,
        "controller": controller,
        "stress": " ".join(["stress-ng", *STRESS_ARGS]) if stress else None,
        "worker_ready_s": round(ready_s, 2),
        "warmup_s": warmup_s,
        "measured_s": round(seconds, 1),
        "event_to_output": latency_summary(add_buckets(buckets1, buckets0, -1.0)),
        "behind": behind,
        "kept_up": all(v["kept_up"] for v in behind.values()),
        "note": "one machine carries broker, workers and the load generator; latencies from the workers' histograms "
        "(bucket bounds 0.05/0.1/0.25/0.5/1/2.5/5/10/30/60 s); frame_to_aggregate includes the window's lateness",
        "machine": _machine(),
    }
