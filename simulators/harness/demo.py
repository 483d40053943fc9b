"""``leitstand demo``: embedded broker, worker with every agent, the synthetic city, a report.

What a newcomer sees in one command: the city's streams flow through the broker into the
worker; alarms are raised, a simulated duty operator acknowledges them over the HTTP API (some
too late, so they escalate), and at the end the run is scored against the ground truth the
city recorded and written up as an HTML report. Everything started here is stopped here, on
success, on error and on Ctrl-C.
"""

from __future__ import annotations

import asyncio
import json
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
from rich.console import Console
from rich.live import Live

from streams.broker import read_info, start, stop
from streams.kafka_io import ensure_topics, produce_to, tail
from streams.records import PoolReading
from streams.settings import Settings
from streams.stack import WorkerProcess, free_port, settings_env, terminate_as_interrupt
from streams.topics import SIMULATION_TRUTH as TRUTH

if TYPE_CHECKING:
    from simulators.city import City, CityConfig
    from streams.broker import BrokerInfo

err = Console(stderr=True, highlight=False, soft_wrap=True)

#: how long the simulated operator takes to acknowledge, per severity (wall seconds); minor
#: alarms are left for the morning shift, a third of major ones are acknowledged too late
HISTORY_DAYS = 35  # imported traffic history, so forecasts exist from the first minute
ACK_DELAY_S = {"critical": (2.0, 8.0), "major": (5.0, 40.0)}
DEMO_ACK_TIMEOUTS = {"alarm_ack_timeout_critical_s": 20.0, "alarm_ack_timeout_major_s": 25.0}


def run_demo(
    settings: Settings,
    *,
    minutes: float,
    speed: float,
    report_dir: Path,
    port: int,
    city: dict[str, Any] | None = None,
    start_at: datetime | None = None,
) -> dict[str, Any]:
    """Run the demo; returns the summary (also ``report_dir/summary.json``).

    Ctrl-C, SIGTERM and SIGHUP stop everything it started (broker, worker) before it returns.
    """
    with terminate_as_interrupt():
        return _demo(settings, minutes=minutes, speed=speed, report_dir=report_dir, port=port, city=city, start_at=start_at)


def _demo(
    settings: Settings,
    *,
    minutes: float,
    speed: float,
    report_dir: Path,
    port: int,
    city: dict[str, Any] | None,
    start_at: datetime | None,
) -> dict[str, Any]:
    """Plan the city (its truth written first), a broker, the worker, the run, then the summary
    and the report; the broker and the worker are stopped whatever happens."""
    from simulators.city import City, CityConfig

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
    web_port = free_port()
    worker = _demo_worker(
        settings, the_city, run_id=run_id, token=token, speed=speed, log_file=report_dir / "worker.log", web_port=web_port
    )
    summary = _summary_head(run_id, info.bootstrap, speed=speed, minutes=minutes, sim_start=sim_start, duration_s=duration_s, config=config)
    try:
        asyncio.run(ensure_topics(settings))
        asyncio.run(_import_history(settings, the_city))
        ready = worker.start()
        err.print(f"worker ready after {ready:.2f} s (log: {worker.log_file})")
        summary["worker_ready_s"] = round(ready, 3)
        summary.update(asyncio.run(_run(settings, the_city, speed, report_dir, web_port, token, config.seed)))
    except BaseException:
        # Ctrl-C or a failure: the files written so far stay, marked as an unfinished run that
        # 'leitstand evaluate' refuses to score (it would count every later incident as missed)
        summary.update(stopped_cleanly=False, interrupted=True)
        (report_dir / "summary.json").write_text(json.dumps(summary, indent=2))
        raise
    finally:
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
    for stale in ("summary.json", "evaluation.json", "index.html"):
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


def _demo_worker(settings: Settings, city: City, *, run_id: str, token: str, speed: float, log_file: Path, web_port: int) -> WorkerProcess:
    """A worker with every agent for this run: its own topic prefix and data directory, the
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
                "data_dir": settings.state_dir / "demo-worker" / run_id,
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


async def _import_history(settings: Settings, city: Any) -> None:
    """Previous weeks' hourly counts, as one aggregate per intersection and hour."""
    from simulators.city import traffic_history
    from streams.records import DetectorAggregate, encode

    def aggregates() -> Any:
        for iid, t, vehicles in traffic_history(city, HISTORY_DAYS):
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
    req = urllib.request.Request(
        f"http://127.0.0.1:{web_port}/alerts/{alarm_id}/{action}",
        method="POST",
        data=json.dumps({"by": "demo-duty-operator"}).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(req, timeout=5) as r:  # loopback only
            return r.status
    except OSError:
        return 0


async def _run(settings: Settings, city: Any, speed: float, report_dir: Path, web_port: int, token: str, seed: int) -> dict[str, Any]:
    """Publish the city while reading back alerts, aggregates, dead letters and forecasts, with
    a live status; then 10 s for trailing alarms and acknowledgements. Returns the counts."""
    session = _DemoSession(settings, report_dir, web_port, token, random.Random(seed))
    readers = [
        asyncio.create_task(session.read(t, n))
        for t, n in (("alerts", "alerts"), ("aggregates", "aggregates"), ("deadletter", "deadletters"), ("forecasts", "forecasts"))
    ]
    producer_task = asyncio.create_task(session.produce(city, speed))
    t0 = time.monotonic()
    with Live(console=err, refresh_per_second=2) as live:
        while not session.done.is_set():
            live.update(session.status(time.monotonic() - t0))
            await asyncio.sleep(0.5)
        await producer_task
        settle = time.monotonic() + 10  # trailing alarms and acknowledgements
        while time.monotonic() < settle:
            live.update(session.status(time.monotonic() - t0, " (finishing)"))
            await asyncio.sleep(0.5)
    for task in [*readers, *session.operator_tasks]:
        task.cancel()
    await asyncio.gather(*readers, *session.operator_tasks, return_exceptions=True)
    session.close()
    return {
        "records_sent": dict(session.stats["sent"]),
        "alerts_received": session.seen["alerts"],
        "aggregates_received": session.seen["aggregates"],
        "forecasts_received": session.seen["forecasts"],
        "deadletters_received": session.seen["deadletters"],
    }


class _DemoSession:
    """What one demo run keeps while the city plays: counts for the live view, the open alarms,
    the files the report is made from, and the simulated duty operator's pending tasks."""

    def __init__(self, settings: Settings, report_dir: Path, web_port: int, token: str, rng: random.Random) -> None:
        self.settings = settings
        self.web_port = web_port
        self.token = token
        self.rng = rng  # the operator's reaction times
        self.stats: dict[str, Any] = {"sent": Counter(), "sim_time": "-"}
        self.seen: Counter[str] = Counter()
        self.open_by_severity: Counter[str] = Counter()
        self.done = asyncio.Event()  # the city has been published
        self.files = {name: (report_dir / f"{name}.jsonl").open("wb") for name in ("alerts", "aggregates", "pool_readings", "forecasts")}
        self.operator_tasks: set[asyncio.Task[None]] = set()
        self.decoder = msgspec.json.Decoder(PoolReading)

    async def operator(self, alert: dict[str, Any]) -> None:
        """The simulated person on duty: acknowledges, then resolves what is critical."""
        lo, hi = ACK_DELAY_S[alert["severity"]]
        await asyncio.sleep(self.rng.uniform(lo, hi))
        await asyncio.to_thread(_ack, self.web_port, self.token, alert["alarm_id"], "ack")
        if alert["severity"] == "critical":
            await asyncio.sleep(self.rng.uniform(3.0, 10.0))
            await asyncio.to_thread(_ack, self.web_port, self.token, alert["alarm_id"], "resolve")

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
        """The true-to-the-wire pool readings, for the report's water charts."""
        if e.topic == "sensors.pool":
            r = self.decoder.decode(e.value)
            self.files["pool_readings"].write(orjson.dumps({"t": e.t, "pool_id": r.pool_id, "values": r.values()}) + b"\n")

    async def produce(self, city: Any, speed: float) -> None:
        """Publish the city (truth first), then set ``done``, also on failure."""
        from simulators.producer import produce_city

        try:
            await produce_city(self.settings, city, speed=speed, stats=self.stats, on_emission=self.keep_pool_reading, truth_topic=TRUTH)
        finally:
            self.done.set()

    def status(self, elapsed: float, note: str = "") -> Any:
        return _status(elapsed, self.stats["sim_time"] + note, self.stats["sent"], self.seen, self.open_by_severity)

    def close(self) -> None:
        for f in self.files.values():
            f.close()


def _status(elapsed: float, clock: str, sent: Counter[str], seen: Counter[str], open_alarms: Counter[str]) -> Any:
    total = sum(sent.values())
    return status_table(
        {
            "elapsed": f"{elapsed:,.0f} s",
            "simulated clock": clock,
            "records sent": f"{total:,} ({total / max(elapsed, 1e-9):,.0f}/s): " + ", ".join(f"{k} {v:,}" for k, v in sorted(sent.items())),
            "aggregates received": f"{seen['aggregates']:,}",
            "open alarms": ", ".join(f"{k} {open_alarms[k]}" for k in ("critical", "major", "minor")),
            "alarm transitions": f"{seen['alerts']:,}",
            "forecast refreshes": f"{seen['forecasts']:,}",
            "dead letters": f"{seen['deadletters']:,}",
            "signal decisions": "not run by the demo city (closed loop: leitstand sumo eval)",
        }
    )


def status_table(rows: dict[str, Any]) -> Any:
    from rich.table import Table

    table = Table(show_header=False, box=None)
    for k, v in rows.items():
        table.add_row(k, str(v))
    return table
