"""``leitstand demo``: embedded broker, the worker roles as separate processes, the synthetic city, a report.

What a newcomer sees in one command: the city's streams flow through the broker into the
worker; alarms are raised, a simulated duty operator acknowledges them over the HTTP API (some
too late, so they escalate), and at the end the run is scored against the ground truth the
city recorded and written up as an HTML report. Everything started here is stopped here, on
success, on error and on Ctrl-C.

The worker runs as one process per role, as in production (``DEMO_ROLES``): camera events,
alarm books and the notifier (``critical``) never share an event loop or a process with the
forecasting refits and the window closing of ``telemetry``, so a busy machine slows forecasts,
not a drowning alarm; the water limits (``water``) do not wait behind detector frames either.
``LEITSTAND_DEMO_ROLES=all`` runs the old single process.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import secrets
import time
import urllib.request
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec
import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from rich.console import Console
from rich.live import Live

from streams.broker import read_info, start, stop
from streams.errors import CliError
from streams.kafka_io import ensure_topics, produce_to, tail
from streams.records import PoolReading
from streams.settings import Settings
from streams.stack import WorkerNotReady, WorkerProcess, free_port, settings_env, terminate_as_interrupt
from streams.topics import SIMULATION_TRUTH as TRUTH

if TYPE_CHECKING:
    from simulators.city import City, CityConfig
    from streams.broker import BrokerInfo

    from .demo_signals import SignalDemo

err = Console(stderr=True, highlight=False, soft_wrap=True)

#: how long the simulated operator takes to acknowledge, per severity (wall seconds); minor
#: alarms are left for the morning shift, a third of major ones are acknowledged too late
HISTORY_DAYS = 35  # imported traffic history, so forecasts exist from the first minute
ACK_DELAY_S = {"critical": (2.0, 8.0), "major": (5.0, 40.0)}
DEMO_ACK_TIMEOUTS = {"alarm_ack_timeout_critical_s": 20.0, "alarm_ack_timeout_major_s": 25.0}
#: how long the demo waits, once the city has been published, for the worker to consume all of
#: it before it judges anyway (and says how far behind the worker was); LEITSTAND_DEMO_LAG_WAIT_S
LAG_WAIT_S = 120.0
#: the worker's consumer lag is sampled this often while the city plays (for the report's chart)
LAG_SAMPLE_S = 5.0
#: trailing alarms and acknowledgements after the worker has caught up
SETTLE_S = 10.0
#: how long a worker may take to become ready (imports and table recovery on a loaded machine)
WORKER_START_S = 180.0
#: one worker process per role; the critical one serves the alarm API the duty operator uses
DEMO_ROLES: tuple[str, ...] = ("critical", "water", "telemetry", "control")


def run_demo(
    settings: Settings,
    *,
    minutes: float,
    speed: float,
    report_dir: Path,
    port: int,
    city: dict[str, Any] | None = None,
    start_at: datetime | None = None,
    lag_wait_s: float | None = None,
) -> dict[str, Any]:
    """Run the demo; returns the summary (also ``report_dir/summary.json``).

    Before it judges, it waits up to ``lag_wait_s`` (default ``LEITSTAND_DEMO_LAG_WAIT_S`` or
    120 s) for the worker to have consumed everything the city sent.

    Ctrl-C, SIGTERM and SIGHUP stop everything it started (broker, worker) before it returns.
    """
    if lag_wait_s is None:
        lag_wait_s = float(os.environ.get("LEITSTAND_DEMO_LAG_WAIT_S", LAG_WAIT_S))
    with terminate_as_interrupt():
        return _demo(
            settings, minutes=minutes, speed=speed, report_dir=report_dir, port=port, city=city, start_at=start_at, lag_wait_s=lag_wait_s
        )


def _demo(
    settings: Settings,
    *,
    minutes: float,
    speed: float,
    report_dir: Path,
    port: int,
    city: dict[str, Any] | None,
    start_at: datetime | None,
    lag_wait_s: float,
) -> dict[str, Any]:
    """Plan the city (its truth written first), a broker, the worker, the run, then the summary
    and the report; the broker and the worker are stopped whatever happens."""
    from simulators.city import City, CityConfig

    roles = demo_roles()  # a bad LEITSTAND_DEMO_ROLES fails before anything starts
    for note in left_out(roles):
        err.print(f"note: {note}")
    _clear_report_dir(report_dir)
    config = CityConfig(**(city or {}))
    sim_start = start_at or datetime.now(timezone.utc).replace(hour=5, minute=0, second=0, microsecond=0) - timedelta(days=1)
    duration_s = minutes * 60 * speed
    the_city = City(config, start=sim_start, duration_s=duration_s)
    (report_dir / "truth.jsonl").write_text("".join(t.to_line() + "\n" for t in the_city.truth()), encoding="utf-8")

    info, own_broker = _broker(settings, port)
    run_id = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S")
    settings = settings.model_copy(update={"kafka_bootstrap_servers": info.bootstrap, "topic_prefix": f"demo{run_id}."})
    token = secrets.token_urlsafe(32)  # the API refuses tokens under 32 bytes
    workers = {
        role: _demo_worker(
            settings,
            the_city,
            run_id=run_id,
            token=token,
            speed=speed,
            role=role,
            log_file=report_dir / worker_log(role),
            web_port=free_port(),
        )
        for role in roles
    }
    summary = _summary_head(run_id, info.bootstrap, speed=speed, minutes=minutes, sim_start=sim_start, duration_s=duration_s, config=config)
    summary["worker_roles"] = list(roles)
    try:
        asyncio.run(ensure_topics(settings))
        asyncio.run(_import_history(settings, the_city))
        signal_demo = asyncio.run(_configure_signals(settings, the_city, roles, run_id, speed, config.seed))
        summary["timetable_trips"] = asyncio.run(_publish_timetable(settings, the_city, report_dir))
        ready = _start_workers(workers)
        summary["worker_ready_s"] = round(max(ready.values()), 3)
        app = settings.model_copy(update={"app_id": f"leitstand-demo-{run_id}"})
        groups = [app.model_copy(update={"worker_role": role}).group_id for role in roles]
        ports = {role: w.web_port for role, w in workers.items() if w.web_port is not None}
        summary.update(asyncio.run(_run(settings, the_city, speed, report_dir, ports, token, config.seed, groups, lag_wait_s, signal_demo)))
        summary["buses"] = bus_figures(workers.get("telemetry") or workers.get("all"))
    except BaseException:
        # Ctrl-C or a failure: the files written so far stay, marked as an unfinished run that
        # 'leitstand evaluate' refuses to score (it would count every later incident as missed)
        summary.update(stopped_cleanly=False, interrupted=True)
        (report_dir / "summary.json").write_text(json.dumps(summary, indent=2))
        raise
    finally:
        for worker in workers.values():
            worker.stop()
        if own_broker:
            stop(settings.state_dir, "tansu")
    summary["stopped_cleanly"] = True
    (report_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    from .report import write_report

    summary["report"] = str(write_report(report_dir))
    return summary


def _summary_head(
    run_id: str, bootstrap: str, *, speed: float, minutes: float, sim_start: datetime, duration_s: float, config: CityConfig
) -> dict[str, Any]:
    """What the run is, written before it starts: an interrupted run's summary still says it."""
    return {
        "run_id": run_id,
        "broker": "tansu",
        "bootstrap": bootstrap,
        "speed": speed,
        "minutes": minutes,
        "simulated_from": sim_start.isoformat(),
        "simulated_until": (sim_start + timedelta(seconds=duration_s)).isoformat(),
        "city": {k: getattr(config, k) for k in ("intersections", "pools", "bus_lines", "seed")},
    }


def _clear_report_dir(report_dir: Path) -> None:
    """Create the report directory and remove a previous run's results: they would describe this one."""
    report_dir.mkdir(parents=True, exist_ok=True)
    for stale in ("summary.json", "evaluation.json", "index.html", "lag.jsonl"):
        (report_dir / stale).unlink(missing_ok=True)


def _broker(settings: Settings, port: int) -> tuple[BrokerInfo, bool]:
    """The embedded broker on ``port``: the one already running there, or a new one (then
    ``True``: the demo stops it at the end)."""
    running = read_info(settings.state_dir, "tansu")
    if running is not None and running.port == port:
        err.print(f"using the running embedded broker on {running.bootstrap}")
        return running, False
    info = start("tansu", settings.state_dir, settings.cache_dir, "127.0.0.1", port)
    err.print(f"embedded broker ready on {info.bootstrap} after {info.ready_after_s:.2f} s")
    return info, True


def demo_roles() -> tuple[str, ...]:
    """The worker roles the demo starts, one process each (``LEITSTAND_DEMO_ROLES``, comma-separated)."""
    raw = os.environ.get("LEITSTAND_DEMO_ROLES", "")
    roles = tuple(r.strip() for r in raw.split(",") if r.strip()) or DEMO_ROLES
    unknown = [r for r in roles if r not in ("all", *DEMO_ROLES)]
    if unknown or ("all" in roles and len(roles) > 1):
        raise CliError(f"LEITSTAND_DEMO_ROLES={raw!r}: give 'all' alone or some of {', '.join(DEMO_ROLES)}")
    return roles


#: what a demo without that role's worker does not do (the report then scores it as missed)
ROLE_DUTIES = {
    "critical": "no alarm is raised, acknowledged or delivered",
    "water": "no water-limit (pH, chlorine, redox) or silent-sensor alarm is raised (the critical worker raises "
    "evaluation_behind for water-rules instead)",
    "telemetry": "no aggregates, traffic incidents, bus figures or forecasts",
    "control": "no signal control",
}


def left_out(roles: tuple[str, ...]) -> list[str]:
    """One line per role a subset of ``LEITSTAND_DEMO_ROLES`` leaves out: a value set for an
    older release (before the water role) must not silently lose the water alarms."""
    if "all" in roles:
        return []
    return [f"LEITSTAND_DEMO_ROLES has no {r} worker: {ROLE_DUTIES[r]} in this run" for r in DEMO_ROLES if r not in roles]


def worker_log(role: str) -> str:
    """The report directory's log file of one worker role (``worker.log`` for a single ``all`` worker)."""
    return "worker.log" if role == "all" else f"worker-{role}.log"


def _start_workers(workers: dict[str, WorkerProcess]) -> dict[str, float]:
    """Start every role's process side by side; seconds until each was ready. On a machine busy
    with other work a worker may need long (``WORKER_START_S``); one that does not come up is a
    one-line error naming its log."""
    for worker in workers.values():
        worker.launch()
    ready: dict[str, float] = {}
    for role, worker in workers.items():
        try:
            ready[role] = worker.wait_ready(WORKER_START_S)
        except WorkerNotReady as exc:
            raise CliError(f"the {role} worker did not start: {exc}") from None
        err.print(f"worker {role} ready after {ready[role]:.2f} s (log: {worker.log_file})")
    return ready


def _demo_worker(
    settings: Settings, city: City, *, run_id: str, token: str, speed: float, role: str, log_file: Path, web_port: int
) -> WorkerProcess:
    """One role's worker for this run: its own topic prefix and data directory, the
    stream's clock (the city runs accelerated), short acknowledgement timeouts, forecasts
    refreshed about every simulated hour, and the venues of the city's events."""
    from simulators.city.traffic import venue_sites

    return WorkerProcess(
        settings_env(
            {
                "kafka_bootstrap_servers": settings.kafka_bootstrap_servers,
                "topic_prefix": settings.topic_prefix,
                "app_id": f"leitstand-demo-{run_id}",
                "timestamp_reference": "stream",  # the city runs on an accelerated clock
                "aggregate_idle_close_s": 5,
                "data_dir": settings.state_dir / "demo-worker" / run_id / role,
                "worker_role": role,
                "state_dir": settings.state_dir,
                "log_level": "info",
                "api_token": token,
                **DEMO_ACK_TIMEOUTS,
                # forecasts refresh every simulated hour or so, events map to the intersections around their venue
                "forecast_refresh_s": max(10.0, 3600.0 / speed),
                "forecast_history_days": HISTORY_DAYS + 7,
                "venues": {venue: [f"intersection/{i}" for i in sites] for venue, sites in venue_sites(city.grid).items()},
            }
        ),
        log_file=log_file,
        web_port=web_port,
    )


async def _publish_timetable(settings: Settings, city: City, report_dir: Path) -> int:
    """The city's timetable as a static GTFS feed (``report_dir/gtfs.zip``), loaded onto
    ``transit.schedule`` the way ``leitstand gtfs load`` loads a real city's: the bus agent
    judges adherence and headways against it. Returns the trips sent."""
    from simulators.city.gtfs import city_trips, write_feed
    from streams.topics import TRANSIT_SCHEDULE
    from streams.transit_codec import encode_schedule, load_feed

    lines, trips = city_trips(city.config, city.t0, city.t1)
    if not trips:  # a city without bus lines (--bus-lines 0) has no timetable to load
        return 0
    feed = report_dir / "gtfs.zip"
    write_feed(feed, city.config, lines, trips)
    loaded = load_feed(feed)
    return await produce_to(settings, settings.topic(TRANSIT_SCHEDULE), encode_schedule(loaded.records))


async def _configure_signals(
    settings: Settings, city: City, roles: tuple[str, ...], run_id: str, speed: float, seed: int
) -> SignalDemo | None:
    """Publish every junction's model on ``signals.config`` (session: the run id) and return the
    demo's side of the closed loop; None when no worker runs the control role."""
    if not ({"control", "all"} & set(roles)) or not city.grid:
        return None
    from streams.records import encode
    from streams.topics import SIGNALS_CONFIG

    from .demo_signals import SignalDemo, signal_configs

    sig = SignalDemo.for_grid(city.grid, run_id, random.Random(f"{seed}:signal-operator"))
    advisory = tuple(i for i, m in sig.modes.items() if m == "advisory")
    configs = signal_configs(city.grid, session=run_id, advisory=advisory, speed=speed, at=datetime.fromtimestamp(city.t0, tz=timezone.utc))
    await produce_to(settings, settings.topic(SIGNALS_CONFIG), ((c.intersection_id.encode(), encode(c)) for c in configs))
    return sig


def bus_figures(worker: WorkerProcess | None) -> dict[str, Any]:
    """What the bus agent measured (its metrics at the end of the run): positions by outcome,
    punctuality, the least regular line's headway variation, priority requests."""
    if worker is None:
        return {}
    try:
        m = worker.metrics()
    except OSError:
        return {}
    outcomes = {k.split('outcome="', 1)[1].split('"', 1)[0]: int(v) for k, v in m.items() if k.startswith("leitstand_bus_positions_total{")}
    return {
        "positions": outcomes,
        "punctuality": m.get("leitstand_bus_punctuality_ratio"),
        "headway_cv_max": m.get("leitstand_bus_headway_cv_max"),
        "priority_requests": int(m.get("leitstand_bus_priority_requests_total", 0.0)),
    }


async def _import_history(settings: Settings, city: Any) -> None:
    """Previous weeks' hourly counts, as one aggregate per intersection and hour, and the rain
    and events of those weeks on ``events.schedule`` (the forecasts learn what they do)."""
    from simulators.city import CityHistory
    from streams.records import DetectorAggregate, encode

    history = CityHistory(city, HISTORY_DAYS)
    await produce_to(settings, settings.topic("events.schedule"), ((e.venue_id.encode(), encode(e)) for e in history.schedule()))

    def aggregates() -> Any:
        for iid, t, vehicles in history.counts():
            start = datetime.fromtimestamp(t, tz=timezone.utc)
            yield (
                iid.encode(),
                encode(
                    DetectorAggregate(
                        aggregate_id=f"{iid}/history/{int(t)}",
                        intersection_id=iid,
                        detector_id="history",
                        window_start=start,
                        window_end=start + timedelta(hours=1),
                        frames=0,
                        count_sum=int(vehicles),
                        occupancy_mean=0.0,
                        speed_kmh_mean=None,
                        event_time=start + timedelta(hours=1),
                    )
                ),
            )

    await produce_to(settings, settings.topic("aggregates"), aggregates())


def _ack(web_port: int, token: str, alarm_id: str, action: str) -> int:
    from .demo_signals import post_as_operator

    return post_as_operator(web_port, token, f"/alerts/{alarm_id}/{action}", {"by": "demo-duty-operator"})


async def _run(
    settings: Settings,
    city: Any,
    speed: float,
    report_dir: Path,
    ports: dict[str, int],
    token: str,
    seed: int,
    groups: list[str],
    lag_wait_s: float,
    signal_demo: SignalDemo | None = None,
) -> dict[str, Any]:
    """Publish the city while reading back alerts, aggregates, dead letters, forecasts and (with
    ``signal_demo``) the signal plans that steer the city, and sampling the worker's consumer
    lag, with a live status; then wait (at most ``lag_wait_s``) until the worker has consumed
    everything, and 10 s for trailing alarms and acknowledgements. Returns the counts and the wait."""
    session = _DemoSession(settings, report_dir, ports, token, random.Random(seed), signal_demo)
    probe = LagProbe(settings, groups)
    await probe.start()
    readers = [
        asyncio.create_task(session.read(t, n))
        for t, n in (("alerts", "alerts"), ("aggregates", "aggregates"), ("deadletter", "deadletters"), ("forecasts", "forecasts"))
    ]
    if signal_demo is not None:
        readers.append(asyncio.create_task(session.read_plans()))
    producer_task = asyncio.create_task(session.produce(city, speed))
    t0 = time.monotonic()
    sampler = asyncio.create_task(session.sample_lag(probe, t0))
    try:
        with Live(console=err, refresh_per_second=2) as live:
            while not session.done.is_set():
                live.update(session.status(time.monotonic() - t0))
                await asyncio.sleep(0.5)
            await producer_task
            session.city_done_s = time.monotonic() - t0
            sampler.cancel()
            await asyncio.gather(sampler, return_exceptions=True)
            wait = await session.wait_for_worker(
                probe, t0, lag_wait_s, lambda note: live.update(session.status(time.monotonic() - t0, note))
            )
    finally:
        # the city's producer too: interrupted mid-send it would be destroyed pending at exit
        tasks = [producer_task, sampler, *readers, *session.operator_tasks]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        session.close()
        await probe.close()
    if not wait["caught_up"]:
        err.print(
            f"[bold red]the worker was still {wait['final_lag_total']:,} records behind after {wait['waited_s']:.0f} s[/]: "
            + ", ".join(f"{t} {n:,}" for t, n in wait["final_lag"].items() if n)
            + f"; judged anyway, incidents after {wait.get('worker_reached') or 'its position'} are marked as judged late"
        )
    else:
        err.print(f"the worker had consumed everything {wait['caught_up_after_s'] or wait['waited_s']:.1f} s after the city finished")
    return {
        "records_sent": dict(session.stats["sent"]),
        "alerts_received": session.seen["alerts"],
        "aggregates_received": session.seen["aggregates"],
        "forecasts_received": session.seen["forecasts"],
        "deadletters_received": session.seen["deadletters"],
        "consumer_groups": groups,
        "lag_wait": wait,
        "lag_samples": session.lag_samples,
        **({"signals": signal_demo.summary()} if signal_demo is not None else {}),
    }


Partition = tuple[str, int]


def by_topic(lags: dict[Partition, int]) -> dict[str, int]:
    """Records behind per topic (summed over its partitions), topics sorted."""
    out: dict[str, int] = {}
    for (topic, _), n in sorted(lags.items()):
        out[topic] = out.get(topic, 0) + n
    return out


class LagProbe:
    """The worker's consumer lag as the broker sees it: for every source partition of the
    worker's consumer groups, the end offset minus the group's committed offset.

    A group's source topics are those of the run (``settings.topic_prefix``, or named after
    the group) on which it has committed an offset above 0, plus any topic named in ``topics``
    (what ``leitstand_consumer_lag`` on ``/metrics`` lists: assigned, maybe not yet committed;
    Tansu answers 0, not -1, for a partition a group never committed). Changelog topics are left
    out (Faust reads them to rebuild tables and commits nothing there). A partition without a
    committed offset counts from offset 0 (the worker reads from the earliest offset).
    """

    def __init__(self, settings: Settings, groups: list[str]) -> None:
        self.groups = groups
        self.prefixes = (settings.topic_prefix, *groups)
        opts = {"bootstrap_servers": settings.kafka_bootstrap_servers, **settings.kafka_client_options()}
        self.admin = AIOKafkaAdminClient(**opts)
        self.consumer = AIOKafkaConsumer(group_id=None, enable_auto_commit=False, **opts)

    async def start(self) -> None:
        await self.admin.start()
        await self.consumer.start()

    async def close(self) -> None:
        await asyncio.gather(self.consumer.stop(), self.admin.close(), return_exceptions=True)

    async def offsets(self, topics: set[str] | frozenset[str] = frozenset()) -> dict[Partition, tuple[int, int]]:
        """(topic, partition) -> (end offset, lowest committed offset of the groups reading it)."""
        names = await self.admin.list_topics()  # fresh metadata: topics created since the last call
        candidates = {n for n in names if n.startswith(self.prefixes) and not n.endswith("-changelog")} | (set(topics) & set(names))
        described = await self.admin.describe_topics(sorted(candidates)) if candidates else []
        tps = [
            TopicPartition(d["topic"], part["partition"])
            for d in described
            if not d.get("error_code")
            for part in sorted(d.get("partitions") or (), key=lambda x: x["partition"])
        ]
        if not tps:
            return {}
        committed: dict[tuple[str, TopicPartition], int] = {}
        readers: dict[str, set[str]] = {t: set() for t in topics}  # topic -> the groups that read it
        for group in self.groups:
            for tp, meta in (await self.admin.list_consumer_group_offsets(group, partitions=tps)).items():
                offset = max(0, meta.offset) if meta is not None else 0
                committed[(group, tp)] = offset
                if offset > 0:
                    readers.setdefault(tp.topic, set()).add(group)
        mine = [tp for tp in tps if tp.topic in readers]
        ends = await self.end_offsets(mine) if mine else {}
        return {
            (tp.topic, tp.partition): (int(ends[tp]), min((committed.get((g, tp), 0) for g in readers[tp.topic]), default=0)) for tp in mine
        }

    async def end_offsets(self, tps: list[TopicPartition], limit_s: float = 5.0) -> dict[TopicPartition, int]:
        """The offset the next record of each partition will get: the high watermark of a fetch
        at the listed end offset. Tansu answers a ListOffsets request for the latest offset with
        the base offset of the last batch plus one (measured: 8 for a partition holding offsets
        0-9 in batches of 7 and 3), so that answer alone under-states the lag; a fetch reports
        the true high watermark on both brokers."""
        listed = await self.consumer.end_offsets(tps)
        self.consumer.assign(tps)  # fresh partition states: no high watermark yet
        for tp in tps:
            self.consumer.seek(tp, max(0, int(listed[tp]) - 1))
        deadline = time.monotonic() + limit_s
        while time.monotonic() < deadline and any(self.consumer.highwater(tp) is None for tp in tps):
            await self.consumer.getmany(*tps, timeout_ms=200, max_records=1000)
        # a high watermark not reported in time: the listed end offset stands in
        ends = {tp: max(int(listed[tp]), self.consumer.highwater(tp) or 0) for tp in tps}
        self.consumer.assign([])
        return ends

    async def lag(self, topics: set[str] | frozenset[str] = frozenset()) -> dict[Partition, int]:
        """(topic, partition) -> records not yet committed."""
        return {tp: max(0, end - done) for tp, (end, done) in (await self.offsets(topics)).items()}

    async def reached(self, positions: dict[Partition, int]) -> float | None:
        """The earliest record timestamp (seconds; the city stamps records with simulated time)
        at the given positions: how far in simulated time the worker had got where it lagged."""
        times = []
        for (topic, partition), offset in positions.items():
            tp = TopicPartition(topic, partition)
            self.consumer.assign([tp])
            self.consumer.seek(tp, offset)
            try:
                batch = await self.consumer.getmany(tp, timeout_ms=3000, max_records=1)
            except Exception:  # a topic gone or a broker away: this partition says nothing
                continue
            times += [m.timestamp / 1000 for m in batch.get(tp, []) if m.timestamp and m.timestamp > 0]
        self.consumer.assign([])
        return min(times) if times else None


def metric_lag(web_ports: list[int]) -> dict[str, int]:
    """``leitstand_consumer_lag`` summed over the workers' /metrics, per topic (an unreachable
    worker adds nothing)."""
    out: dict[str, int] = {}
    for port in web_ports:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as r:  # loopback only
                text = r.read().decode()
        except (OSError, ValueError):
            continue
        _add_lag_lines(out, text)
    return dict(sorted(out.items()))


def _add_lag_lines(out: dict[str, int], text: str) -> None:
    for line in text.splitlines():
        if line.startswith("leitstand_consumer_lag{"):
            labels, _, value = line.rpartition(" ")
            topic = labels.split('topic="', 1)[1].split('"', 1)[0] if 'topic="' in labels else "?"
            out[topic] = out.get(topic, 0) + int(float(value))


class _DemoSession:
    """What one demo run keeps while the city plays: counts for the live view, the open alarms,
    the files the report is made from, and the simulated duty operator's pending tasks."""

    def __init__(
        self, settings: Settings, report_dir: Path, ports: dict[str, int], token: str, rng: random.Random, signals: SignalDemo | None = None
    ) -> None:
        self.settings = settings
        self.ports = ports
        self.signals = signals
        #: the signals API: the control worker's (or the single worker's)
        self.control_port = ports.get("control", ports.get("all", 0))
        #: the alarm API: the critical worker's (or the single worker's)
        self.web_port = ports.get("critical", ports.get("all", 0))
        self.token = token
        self.rng = rng  # the operator's reaction times
        self.stats: dict[str, Any] = {"sent": Counter(), "sim_time": "-"}
        self.seen: Counter[str] = Counter()
        self.open_by_severity: Counter[str] = Counter()
        self.done = asyncio.Event()  # the city has been published
        self.files = {name: (report_dir / f"{name}.jsonl").open("wb") for name in ("alerts", "aggregates", "pool_readings", "forecasts")}
        self.operator_tasks: set[asyncio.Task[None]] = set()
        self.decoder = msgspec.json.Decoder(PoolReading)
        self.prefix = settings.topic_prefix
        self.lag_file = (report_dir / "lag.jsonl").open("wb")
        self.lag_samples = 0
        self.sim_t: float | None = None  # the simulated time of the last record sent
        self.city_done_s: float | None = None
        self.last_lag: dict[str, int] | None = None  # per topic, the latest sample
        self.metric_topics: set[str] = set()

    async def operator(self, alert: dict[str, Any]) -> None:
        """The simulated person on duty: acknowledges, then resolves what is critical."""
        lo, hi = ACK_DELAY_S[alert["severity"]]
        await asyncio.sleep(self.rng.uniform(lo, hi))
        await asyncio.to_thread(_ack, self.web_port, self.token, alert["alarm_id"], "ack")
        if alert["severity"] == "critical":
            await asyncio.sleep(self.rng.uniform(3.0, 10.0))
            await asyncio.to_thread(_ack, self.web_port, self.token, alert["alarm_id"], "resolve")

    async def read_plans(self) -> None:
        """``signals.plans`` from the start: drive messages steer the city's junctions (closed
        loop), proposals the operator will approve go to :meth:`approve_plan`."""
        from streams.records import SignalPlanMessage
        from streams.topics import SIGNALS_PLANS

        assert self.signals is not None
        decoder = msgspec.json.Decoder(SignalPlanMessage)
        async for m in tail(self.settings, self.settings.topic(SIGNALS_PLANS), from_beginning=True):
            if not m.value:
                continue
            try:
                msg = decoder.decode(m.value)
            except msgspec.DecodeError:
                continue
            if self.signals.on_plan(msg):
                task = asyncio.create_task(self.approve_plan(msg.intersection_id, msg.plan_id))
                self.operator_tasks.add(task)
                task.add_done_callback(self.operator_tasks.discard)

    async def approve_plan(self, intersection_id: str, plan_id: str) -> None:
        """The simulated operator approves a proposal over the worker's HTTP API after a short look."""
        from .demo_signals import APPROVE_DELAY_S, approve

        assert self.signals is not None
        await asyncio.sleep(self.signals.rng.uniform(*APPROVE_DELAY_S))  # its own draws: the alarm operator's stay as they were
        junction = self.signals.junctions[intersection_id]
        junction.approvals_sent += 1
        status = await asyncio.to_thread(approve, self.control_port, self.token, intersection_id, plan_id)
        junction.approvals_answered[status] += 1

    async def read(self, topic: str, name: str) -> None:
        """Count a topic's records (keeping them for the report when it has a file) from the start."""
        async for m in tail(self.settings, self.settings.topic(topic), from_beginning=True):
            self.seen[name] += 1
            if name in self.files and m.value:
                self.files[name].write(m.value + b"\n")
            if name == "alerts" and m.value:
                self.on_alert(orjson.loads(m.value))

    def on_alert(self, alert: dict[str, Any]) -> None:
        """Track open alarms; hand raised critical and major ones to the operator."""
        if alert["transition"] in ("raised", "reraised"):
            self.open_by_severity[alert["severity"]] += alert["transition"] == "raised"
            if alert["severity"] in ACK_DELAY_S:
                task = asyncio.create_task(self.operator(alert))
                self.operator_tasks.add(task)
                task.add_done_callback(self.operator_tasks.discard)
        elif alert["transition"] == "resolved":
            self.open_by_severity[alert["severity"]] -= 1

    def keep_pool_reading(self, e: Any) -> None:
        """The true-to-the-wire pool readings, for the report's water charts (and the clock)."""
        self.sim_t = e.t
        if e.topic == "sensors.pool":
            r = self.decoder.decode(e.value)
            self.files["pool_readings"].write(orjson.dumps({"t": e.t, "pool_id": r.pool_id, "values": r.values()}) + b"\n")

    async def produce(self, city: Any, speed: float) -> None:
        """Publish the city (truth first; in closed loop with the signal plans), then set ``done``, also on failure."""
        from simulators.producer import produce_city

        loop = self.signals.loop if self.signals is not None else None
        try:
            await produce_city(
                self.settings, city, speed=speed, stats=self.stats, on_emission=self.keep_pool_reading, truth_topic=TRUTH, signals=loop
            )
        finally:
            self.done.set()

    async def sample(self, probe: LagProbe, t0: float, phase: str) -> dict[Partition, tuple[int, int]]:
        """One lag sample: from the broker (end minus committed offsets) and from the worker's
        own ``leitstand_consumer_lag``; appended to ``lag.jsonl`` for the report."""
        metric = await asyncio.to_thread(metric_lag, list(self.ports.values()))
        self.metric_topics |= set(metric)
        offsets = await probe.offsets(self.metric_topics)
        lags = {tp: max(0, end - done) for tp, (end, done) in offsets.items()}
        self.last_lag = {self.short(t): n for t, n in by_topic(lags).items()}
        row = {
            "t": round(time.monotonic() - t0, 2),
            "phase": phase,
            "sim_t": self.sim_t,
            "lag": self.last_lag,
            "metric": {self.short(t): n for t, n in metric.items()},
        }
        self.lag_file.write(orjson.dumps(row) + b"\n")
        self.lag_file.flush()
        self.lag_samples += 1
        return offsets

    async def sample_lag(self, probe: LagProbe, t0: float) -> None:
        """Every ``LAG_SAMPLE_S`` while the city plays; a failed sample is skipped."""
        while True:
            try:
                await self.sample(probe, t0, "run")
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a broker busy or a group not yet known: the next sample tries
                err.print(f"consumer lag not sampled: {type(exc).__name__}: {exc}")
            await asyncio.sleep(LAG_SAMPLE_S)

    async def wait_for_worker(self, probe: LagProbe, t0: float, bound_s: float, show: Any) -> dict[str, Any]:
        """After the city: wait until the worker's consumer lag reads zero on every input
        topic twice in a row, then ``SETTLE_S`` for trailing alarms and acknowledgements (their
        own records must be consumed too: if the lag is back above zero, wait again); at most
        ``bound_s`` for the lag. Returns what the summary records about the wait."""
        started = time.monotonic()
        deadline = started + bound_s
        zeros, caught_up_s = 0, None
        offsets: dict[Partition, tuple[int, int]] = {}
        while True:
            try:
                offsets = await self.sample(probe, t0, "wait")
            except Exception as exc:  # the broker busy: count it as not caught up
                err.print(f"consumer lag not read: {type(exc).__name__}: {exc}")
                zeros = 0
            else:
                behind = sum(max(0, e - d) for e, d in offsets.values())
                zeros = zeros + 1 if behind == 0 and offsets else 0
            if zeros >= 2:
                caught_up_s = caught_up_s if caught_up_s is not None else time.monotonic() - started
                settle = time.monotonic() + SETTLE_S
                while time.monotonic() < settle:
                    show(" (finishing: trailing alarms and acknowledgements)")
                    await asyncio.sleep(0.5)
                offsets = await self.sample(probe, t0, "wait")
                if all(e <= d for e, d in offsets.values()) or time.monotonic() >= deadline:
                    break
                zeros = 0
            elif time.monotonic() >= deadline:
                break
            else:
                behind_now = sum(self.last_lag.values()) if self.last_lag else 0
                show(f" (city finished; waiting for the worker: {behind_now:,} records behind, {time.monotonic() - started:.0f} s)")
                await asyncio.sleep(1.0)
        lags = {tp: max(0, e - d) for tp, (e, d) in offsets.items()}
        final = {self.short(t): n for t, n in by_topic(lags).items()}
        total = sum(final.values())
        wait: dict[str, Any] = {
            "bound_s": bound_s,
            "city_finished_at_s": round(self.city_done_s, 2) if self.city_done_s is not None else None,
            "waited_s": round(time.monotonic() - started, 2),
            "caught_up": total == 0 and bool(offsets),
            "caught_up_after_s": round(caught_up_s, 2) if caught_up_s is not None else None,
            "final_lag": final,
            "final_lag_total": total,
            "worker_reached": None,
        }
        if total:
            behind_at = {tp: d for tp, (e, d) in offsets.items() if e > d}
            reached = await probe.reached(behind_at)
            wait["worker_reached"] = datetime.fromtimestamp(reached, tz=timezone.utc).isoformat() if reached else None
        return wait

    def short(self, topic: str) -> str:
        """A topic's name without the run's prefix."""
        return topic.removeprefix(self.prefix)

    def status(self, elapsed: float, note: str = "") -> Any:
        signals = self.signals.status_line() if self.signals is not None else "not run (no control worker)"
        return _status(elapsed, self.stats["sim_time"] + note, self.stats["sent"], self.seen, self.open_by_severity, self.last_lag, signals)

    def close(self) -> None:
        for f in [*self.files.values(), self.lag_file]:
            f.close()


def _status(
    elapsed: float,
    clock: str,
    sent: Counter[str],
    seen: Counter[str],
    open_alarms: Counter[str],
    lag: dict[str, int] | None = None,
    signals: str = "not run",
) -> Any:
    total = sum(sent.values())
    behind = (
        "not sampled yet"
        if lag is None
        else f"{sum(lag.values()):,} records" + (": " + ", ".join(f"{t} {n:,}" for t, n in lag.items() if n) if any(lag.values()) else "")
    )
    return status_table(
        {
            "elapsed": f"{elapsed:,.0f} s",
            "simulated clock": clock,
            "records sent": f"{total:,} ({total / max(elapsed, 1e-9):,.0f}/s): " + ", ".join(f"{k} {v:,}" for k, v in sorted(sent.items())),
            "worker behind": behind,
            "aggregates received": f"{seen['aggregates']:,}",
            "open alarms": ", ".join(f"{k} {open_alarms[k]}" for k in ("critical", "major", "minor")),
            "alarm transitions": f"{seen['alerts']:,}",
            "forecast refreshes": f"{seen['forecasts']:,}",
            "dead letters": f"{seen['deadletters']:,}",
            "signal decisions": signals,
        }
    )


def status_table(rows: dict[str, Any]) -> Any:
    from rich.table import Table

    table = Table(show_header=False, box=None)
    for k, v in rows.items():
        table.add_row(k, str(v))
    return table
