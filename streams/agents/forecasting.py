"""Load forecasts: hourly history per series in tables, refits in a process pool, `forecasts` out.

Series: ``intersection/<id>`` (vehicles per hour, from the 1-minute aggregates) and
``pool/<id>`` (visitors present, from pool readings). Announced events (``events.schedule``)
are kept per venue; ``LEITSTAND_VENUES`` says which series an event at a venue affects, and a
new or changed event refits exactly those series at once. Every series is refitted every
``LEITSTAND_FORECAST_REFRESH_S``. Fits run in spawned worker processes, so the event loop keeps
consuming while models train. When an hour completes, the forecast made for it is scored
(``leitstand_forecast_abs_error{series}``).

The tables are keyed by the message key (intersection, pool, venue) like every table here, so
their changelogs stay co-partitioned with their sources. Events are read from the local
partitions only: run forecasting in one worker (the telemetry role) or give events one partition.
"""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timezone
from typing import Any

import faust
import msgspec
import orjson
import structlog

from ..codec import TopicDecoder, decoder_limits
from ..ingest import decoded_batches
from ..metrics import FORECAST_ABS_ERROR, FORECAST_FAILURES, FORECAST_REFRESHES, FORECAST_SECONDS
from ..records import DetectorAggregate, PoolReading, ScheduledEvent
from ..settings import Settings
from ..topics import AGGREGATES, EVENTS_SCHEDULE, FORECASTS, SENSORS_POOL

log = structlog.get_logger(__name__)
VENUE_KINDS = ("concert", "match", "fair", "roadworks", "other")  # need a venue -> series mapping


def event_of(e: ScheduledEvent, venues: dict[str, list[str]]) -> dict[str, Any] | None:
    """The stored form of an announced event; None for a venue event nobody mapped to series."""
    affects = venues.get(e.venue_id, [])
    if e.kind in VENUE_KINDS and not affects:
        return None  # an unmapped venue must not move every series in the city
    return {
        "venue_id": e.venue_id,
        "event_id": e.event_id,
        "kind": e.kind,
        "title": e.title,
        "start": e.starts_at.timestamp(),
        "end": e.ends_at.timestamp(),
        "expected_attendance": e.expected_attendance,
        "affects": affects,
    }


def to_events(stored: list[dict[str, Any]]) -> list[Any]:
    from forecasting import Event

    return [
        Event(
            venue_id=d["venue_id"],
            start=datetime.fromtimestamp(d["start"], tz=timezone.utc),
            end=datetime.fromtimestamp(d["end"], tz=timezone.utc),
            expected_attendance=d["expected_attendance"],
            affects=tuple(d["affects"]),
            event_id=d["event_id"],
            title=d["title"],
            kind=d["kind"],
        )
        for d in stored
    ]


def refit(series_id: str, history: Any, events: list[Any], model: str | None, horizon: int, holidays: str | None) -> dict[str, Any]:
    """Runs in a worker process: fit, forecast, return a plain record (pickles cheaply)."""
    import pandas as pd

    from forecasting import event_regressors, make_forecaster

    future = pd.date_range(history.index[-1] + pd.Timedelta("1h"), periods=horizon, freq="1h")
    relevant = [e for e in events if e.affects_series(series_id)]
    regressors = event_regressors(history.index, relevant, series_id) if relevant else None
    future_reg = event_regressors(future, relevant, series_id) if relevant else None
    options: dict[str, Any] = {"holidays": holidays} if holidays else {}
    forecaster = make_forecaster(model, **options)
    if getattr(forecaster, "horizon_option", False):
        forecaster = make_forecaster(model, horizon=horizon, **options)
    out = forecaster.fit(history, regressors).predict(horizon, future_reg)
    used = getattr(forecaster, "chosen_", None) or forecaster.name
    return {
        "schema_version": 1,
        "series_id": series_id,
        "model": used,
        "model_version": forecaster.version,
        "origin": history.index[-1].isoformat(),
        "event_ids": sorted(e.event_id for e in relevant),
        "points": [
            {
                "timestamp": ts.isoformat(),
                "yhat": round(float(r.yhat), 3),
                "yhat_lower": round(float(r.yhat_lower), 3),
                "yhat_upper": round(float(r.yhat_upper), 3),
            }
            for ts, r in out.iterrows()
        ],
    }


def register(app: faust.App, settings: Settings, deadletter: Any) -> None:
    from forecasting import live_history

    aggregates = app.topic(settings.topic(AGGREGATES))
    readings = app.topic(settings.topic(SENSORS_POOL))
    schedule = app.topic(settings.topic(EVENTS_SCHEDULE))
    out_topic = app.topic(settings.topic(FORECASTS))
    tables = {
        kind: app.Table(
            f"forecast-history-{kind}", default=None, use_partitioner=True, key_type=bytes, partitions=settings.topic_partitions
        )
        for kind in ("intersection", "pool")
    }
    events_table = app.Table("announced-events", default=None, use_partitioner=True, key_type=bytes, partitions=settings.topic_partitions)
    keep = settings.forecast_history_days
    dirty: dict[str, str] = {}  # series -> trigger
    last_forecast: dict[str, dict[str, float]] = {}  # series -> {hour epoch: yhat}
    refreshed_at: dict[str, float] = {}
    pool: list[Any] = []  # created lazily, in the worker's process
    agg_decoder = msgspec.json.Decoder(DetectorAggregate)
    reading_decoder = TopicDecoder(PoolReading, max_bytes=settings.max_record_bytes, clock_skew_s=1e12)
    schedule_decoder = TopicDecoder(ScheduledEvent, **decoder_limits(settings))  # type: ignore[arg-type]

    def score(series_id: str, state: dict[str, Any], hour: int | None) -> None:
        if hour is None:
            return
        actual, predicted = live_history.value_of(state, hour), last_forecast.get(series_id, {}).get(str(hour))
        if actual is not None and predicted is not None:
            FORECAST_ABS_ERROR.labels(series_id).set(abs(actual - predicted))

    def fold(kind: str, key: bytes, items: list[tuple[float, float, str | None]], mode: str) -> None:
        table, series_id = tables[kind], f"{kind}/{key.decode()}"
        state = table.get(key) or live_history.empty(mode)
        for t, value, obs_id in items:
            state, completed = live_history.observe(state, t, value, mode=mode, keep_days=keep, obs_id=obs_id)
            score(series_id, state, completed)
        table[key] = state

    @app.agent(aggregates, name="forecast-history-intersections")
    async def intersection_history(stream: Any) -> None:
        async for events in stream.take_events(settings.batch_max, within=settings.batch_within_s):
            grouped: dict[bytes, list[tuple[float, float, str | None]]] = {}
            for e in events:
                try:
                    a = agg_decoder.decode(e.message.value)
                except (msgspec.DecodeError, TypeError):
                    continue  # written by our own aggregation agent
                grouped.setdefault(a.intersection_id.encode(), []).append((a.window_start.timestamp(), float(a.count_sum), a.aggregate_id))
            for key, items in grouped.items():
                fold("intersection", key, items, "sum")

    @app.agent(readings, name="forecast-history-pools")
    async def pool_history(stream: Any) -> None:
        async for batch in decoded_batches(stream, reading_decoder, None, max_batch=settings.batch_max, within_s=settings.batch_within_s):
            grouped: dict[bytes, list[tuple[float, float, str | None]]] = {}
            for r in batch:
                if r.visitors is not None:
                    t = r.event_time.timestamp()
                    grouped.setdefault(r.pool_id.encode(), []).append((t, float(r.visitors), f"{t:.3f}"))
            for key, items in grouped.items():
                fold("pool", key, items, "mean")

    @app.agent(schedule, name="forecast-events")
    async def announced(stream: Any) -> None:
        async for batch in decoded_batches(stream, schedule_decoder, deadletter, max_batch=100, within_s=0.2):
            for e in batch:
                stored = event_of(e, settings.venues)
                if stored is None:
                    log.warning(
                        "event at a venue without series mapping ignored (set LEITSTAND_VENUES)", venue=e.venue_id, event_id=e.event_id
                    )
                    continue
                key = e.venue_id.encode()
                venue = dict(events_table.get(key) or {})
                if venue.get(e.event_id) != stored:
                    venue[e.event_id] = stored
                    events_table[key] = venue
                    for series_id in stored["affects"] or all_series():
                        dirty[series_id] = "event"

    def all_series() -> list[str]:
        return [f"{kind}/{k.decode()}" for kind, table in tables.items() for k in list(table.keys())]

    def state_of(series_id: str) -> dict[str, Any]:
        kind, _, key = series_id.partition("/")
        return (tables[kind].get(key.encode()) if kind in tables else None) or {}

    def history_of(series_id: str) -> Any:
        return live_history.complete_series(state_of(series_id))

    async def publish(record: dict[str, Any], trigger: str) -> None:
        record["event_time"] = datetime.now(timezone.utc).isoformat()
        record["trigger"] = trigger
        await (await out_topic.send(key=record["series_id"].encode(), value=orjson.dumps(record)))
        last_forecast[record["series_id"]] = {
            str(int(datetime.fromisoformat(p["timestamp"]).timestamp())): p["yhat"] for p in record["points"]
        }
        FORECAST_REFRESHES.labels(record["model"], trigger).inc()

    @app.timer(interval=1.0)
    async def refresh() -> None:
        now = time.time()
        due = {s: "schedule" for s in all_series() if now - refreshed_at.get(s, 0.0) >= settings.forecast_refresh_s}
        due.update(dirty)
        dirty.clear()
        jobs = {}
        for series_id, trigger in due.items():
            # a series still too short is looked at again in 30 s, not every second: building
            # pandas series for thousands of young series each second would eat the worker
            recheck = now - settings.forecast_refresh_s + min(settings.forecast_refresh_s, 30.0)
            if len(state_of(series_id).get("b", {})) <= settings.forecast_min_history_h:
                refreshed_at[series_id] = recheck
                continue
            history = history_of(series_id)
            if history.notna().sum() < settings.forecast_min_history_h:
                refreshed_at[series_id] = recheck
                continue
            refreshed_at[series_id] = now
            jobs[series_id] = (trigger, history)
        if not jobs:
            return
        events = to_events([d for _, venue in list(events_table.items()) for d in (venue or {}).values()])
        if not pool:
            from forecasting import process_pool

            pool.append(process_pool(settings.forecast_workers))
        loop = asyncio.get_running_loop()
        t0 = time.monotonic()
        futures = {
            s: loop.run_in_executor(
                pool[0], refit, s, h, events, settings.forecast_model, settings.forecast_horizon_h, settings.forecast_holidays
            )
            for s, (_, h) in jobs.items()
        }
        for series_id, fut in futures.items():
            try:
                record = await fut
            except Exception as exc:  # noqa: BLE001 - one bad series must not stop the others
                FORECAST_FAILURES.inc()
                log.warning("forecast refit failed", series=series_id, error=f"{type(exc).__name__}: {exc}")
                continue
            await publish(record, jobs[series_id][0])
        FORECAST_SECONDS.set(time.monotonic() - t0)
