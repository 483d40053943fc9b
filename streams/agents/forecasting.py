"""Load forecasts: hourly history per series in tables, refits in a process pool, `forecasts` out.

Series: ``intersection/<id>`` (vehicles per hour, from the 1-minute aggregates),
``pool/<id>`` (visitors present, from pool readings) and ``bus/<route>`` (a line's mean load,
0 = empty .. 1 = full, from the occupancy status of its buses' positions). Announced events (``events.schedule``)
are kept per venue; ``LEITSTAND_VENUES`` says which series an event at a venue affects, and a
new or changed event refits exactly those series at once. Every series is refitted every
``LEITSTAND_FORECAST_REFRESH_S``. Fits run in spawned worker processes, so the event loop keeps
consuming while models train. When an hour completes, the forecast made for it is scored
(``leitstand_forecast_abs_error{series_kind}``: the mean over a kind's series, a bounded label set).

The refresh rules (what is due, the recheck of series too short to fit) are
``forecasting.refresh``; this module reads the topics into the history tables and runs the
refits. Forecasts go out as ``records.Forecast``.

The tables are keyed by the message key (intersection, pool, venue) like every table here, so
their changelogs stay co-partitioned with their sources. Events are read from the local
partitions only: run forecasting in one worker (the telemetry role) or give events one partition.
Bus positions are keyed by vehicle, the load history by line: like the bus agent's headways, bus
load forecasts need one telemetry worker that holds every partition of ``sensors.bus``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Mapping
from concurrent.futures import Executor
from datetime import datetime, timezone
from typing import Any

import faust
import msgspec
import pandas as pd
import structlog

from forecasting import Event, event_regressors, live_history, make_forecaster, process_pool
from forecasting.refresh import Forecasted, RefreshSchedule, band_outcome, forecast_by_hour

from ..codec import TopicDecoder
from ..ingest import decoded_batches
from ..metrics import FORECAST_FAILURES, FORECAST_REFRESHES, FORECAST_SECONDS, record_forecast_error, record_interval_outcome
from ..records import BusPosition, DetectorAggregate, Forecast, ForecastPoint, PoolReading, ScheduledEvent, encode_orjson
from ..settings import Settings
from ..topics import AGGREGATES, EVENTS_SCHEDULE, FORECASTS, SENSORS_BUS, SENSORS_POOL
from .wiring import Sink, keyed_table, topic_decoder

log = structlog.get_logger(__name__)
VENUE_KINDS = ("concert", "match", "fair", "roadworks", "other")  # need a venue -> series mapping
#: series kinds with a history table, and how their observations make an hour
SERIES_KINDS = {"intersection": "sum", "pool": "mean", "bus": "mean"}
#: GTFS-Realtime occupancy status as a share of a bus's capacity (the middle of each band)
LOAD_SHARE: dict[str, float] = {
    "EMPTY": 0.0,
    "MANY_SEATS_AVAILABLE": 0.25,
    "FEW_SEATS_AVAILABLE": 0.6,
    "STANDING_ROOM_ONLY": 0.85,
    "CRUSHED_STANDING_ROOM_ONLY": 0.95,
    "FULL": 1.0,
    "NOT_ACCEPTING_PASSENGERS": 1.0,
}

Observation = tuple[float, float, str | None]  # (event time, value, observation id)
Stored = dict[str, Any]  # an announced event as the events table keeps it (event_of)
#: due series looked at between two yields to the event loop
SELECT_CHUNK = 200


def event_of(e: ScheduledEvent, venues: dict[str, list[str]]) -> Stored | None:
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
        # a weather entry's rain becomes the forecasts' rain regressor (forecasting.events)
        "precipitation_mm_h": e.weather.precipitation_mm_h if e.weather is not None else None,
    }


def merged_venue(venue: Mapping[str, Stored], stored: Stored, now: float, keep_days: int) -> dict[str, Stored] | None:
    """The venue's entries with ``stored`` added or replaced, less those that ended before the
    oldest hour a history keeps (they can move no forecast); None when nothing changed (no table
    write, no refit). Without the pruning a weather service's hourly entries grew the city's
    entry list for ever, and each new one rewrote all of it to the changelog."""
    cutoff = now - (keep_days + 1) * 86_400
    if stored["end"] < cutoff or venue.get(stored["event_id"]) == stored:
        return None
    kept = {k: d for k, d in venue.items() if d["end"] >= cutoff}
    kept[stored["event_id"]] = stored
    return kept


def to_events(stored: Iterable[Stored]) -> list[Event]:
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
            precipitation_mm_h=d.get("precipitation_mm_h"),  # absent in entries stored before 2026-12-05
        )
        for d in stored
    ]


def refit(
    series_id: str,
    trigger: str,
    state: live_history.State,
    events: list[Event],
    model: str | None,
    horizon: int,
    holidays: str | None,
    timezone_name: str | None = None,
) -> Forecast:
    """Runs in a worker process: build the hourly series from the table state, fit, forecast,
    return the record (pickles cheaply). The pandas work is here, not on the agent's event loop.
    ``event_time`` is set again when the forecast is published."""
    history = live_history.complete_series(state)
    future = pd.date_range(history.index[-1] + pd.Timedelta("1h"), periods=horizon, freq="1h")
    relevant = [e for e in events if e.affects_series(series_id)]
    regressors = event_regressors(history.index, relevant, series_id) if relevant else None
    future_reg = event_regressors(future, relevant, series_id) if relevant else None
    options: dict[str, Any] = {"holidays": holidays} if holidays else {}
    if timezone_name:
        options["timezone"] = timezone_name  # the city's clock: lags a week back at the same local time
    forecaster = make_forecaster(model, **options)
    if getattr(forecaster, "horizon_option", False):
        forecaster = make_forecaster(model, horizon=horizon, **options)
    out = forecaster.fit(history, regressors).predict(horizon, future_reg)
    return Forecast(
        series_id=series_id,
        model=getattr(forecaster, "chosen_", None) or forecaster.name,
        model_version=forecaster.version,
        origin=history.index[-1].isoformat(),
        event_ids=sorted(e.event_id for e in relevant),
        points=[
            ForecastPoint(ts.isoformat(), round(float(r.yhat), 3), round(float(r.yhat_lower), 3), round(float(r.yhat_upper), 3))
            for ts, r in out.iterrows()
        ],
        event_time=datetime.now(timezone.utc).isoformat(),
        trigger=trigger,
    )


class SeriesBook:
    """The live series of this worker: hourly histories in tables, announced events, the
    refresh schedule, and the last forecast of each series (to score it hour by hour)."""

    def __init__(self, app: faust.App, settings: Settings) -> None:
        self.settings = settings
        self.tables = {kind: keyed_table(app, f"forecast-history-{kind}", settings) for kind in SERIES_KINDS}
        self.events = keyed_table(app, "announced-events", settings)
        self.schedule = RefreshSchedule(settings.forecast_refresh_s, settings.forecast_min_history_h)
        self.last_forecast: dict[str, dict[str, Forecasted]] = {}  # series -> {hour epoch: forecast}

    def all_series(self) -> list[str]:
        return [f"{kind}/{k.decode()}" for kind, table in self.tables.items() for k in list(table.keys())]

    def state_of(self, series_id: str) -> dict[str, Any]:
        kind, _, key = series_id.partition("/")
        return (self.tables[kind].get(key.encode()) if kind in self.tables else None) or {}

    def hours_recorded(self, series_id: str) -> int:
        return len(self.state_of(series_id).get("b", {}))

    def history_of(self, series_id: str) -> pd.Series:
        return live_history.complete_series(self.state_of(series_id))

    def known_hours(self, series_id: str) -> int:
        return live_history.known_hours(self.state_of(series_id))

    def snapshot(self, series_id: str) -> live_history.State:
        """A copy of the hours only, for the fit process: the table's value may change while the
        pool's feeder thread pickles it."""
        state = self.state_of(series_id)
        return {"mode": state.get("mode", "sum"), "b": dict(state.get("b", {})), "ids": {}}

    def fold(self, kind: str, grouped: dict[bytes, list[Observation]]) -> None:
        """Observations into their series' hourly histories; each completed hour is scored."""
        table, mode = self.tables[kind], SERIES_KINDS[kind]
        keep_days = self.settings.forecast_history_days
        for key, items in grouped.items():
            series_id = f"{kind}/{key.decode()}"
            state = live_history.thaw(table.get(key), mode)  # one copy per key and batch, not per observation
            for t, value, obs_id in items:
                self.score(series_id, state, live_history.observe_into(state, t, value, keep_days=keep_days, obs_id=obs_id))
            table[key] = state

    def score(self, series_id: str, state: dict[str, Any], hour: int | None) -> None:
        if hour is None:
            return
        actual, predicted = live_history.value_of(state, hour), self.last_forecast.get(series_id, {}).get(str(hour))
        if actual is not None and predicted is not None:
            record_forecast_error(series_id, abs(actual - predicted.yhat))  # by series kind: bounded labels
            record_interval_outcome(series_id, band_outcome(actual, predicted))

    def announce(self, e: ScheduledEvent) -> None:
        """Keep a new or changed event; the series it affects (all, for a city-wide one) are due at once."""
        stored = event_of(e, self.settings.venues)
        if stored is None:
            log.warning("event at a venue without series mapping ignored (set LEITSTAND_VENUES)", venue=e.venue_id, event_id=e.event_id)
            return
        key = e.venue_id.encode()
        venue = merged_venue(self.events.get(key) or {}, stored, e.event_time.timestamp(), self.settings.forecast_history_days)
        if venue is not None:
            self.events[key] = venue
            self.schedule.trigger(stored["affects"] or self.all_series(), "event")

    def announced(self) -> list[Event]:
        return to_events(d for _, venue in list(self.events.items()) for d in (venue or {}).values())

    def forecasted(self, forecast: Forecast) -> None:
        self.last_forecast[forecast.series_id] = forecast_by_hour(
            (p.timestamp, Forecasted(p.yhat, p.yhat_lower, p.yhat_upper)) for p in forecast.points
        )


def aggregates_by_intersection(values: Iterable[bytes | None]) -> dict[bytes, list[Observation]]:
    """Vehicles per aggregate window, grouped by intersection. The topic is written by our own
    aggregation agent: a value that does not decode is skipped, not dead-lettered."""
    decoder = msgspec.json.Decoder(DetectorAggregate)
    grouped: dict[bytes, list[Observation]] = {}
    for value in values:
        try:
            a = decoder.decode(value or b"")
        except (msgspec.DecodeError, TypeError):
            continue
        grouped.setdefault(a.intersection_id.encode(), []).append((a.window_start.timestamp(), float(a.count_sum), a.aggregate_id))
    return grouped


def visitors_by_pool(readings: Iterable[PoolReading]) -> dict[bytes, list[Observation]]:
    grouped: dict[bytes, list[Observation]] = {}
    for r in readings:
        if r.visitors is not None:
            t = r.event_time.timestamp()
            grouped.setdefault(r.pool_id.encode(), []).append((t, float(r.visitors), f"{t:.3f}"))
    return grouped


def load_by_line(positions: Iterable[BusPosition]) -> dict[bytes, list[Observation]]:
    """Each position that says how full its bus is, as a load share, grouped by line. No
    observation ids: a line's buses report every few seconds, and remembering each position for
    the redelivery check would make the history larger than the hours it keeps; a position
    redelivered after a crash only weighs twice in its hour's mean."""
    grouped: dict[bytes, list[Observation]] = {}
    for p in positions:
        share = LOAD_SHARE.get(p.occupancy_status or "")
        if share is not None:
            t = p.event_time.timestamp()
            grouped.setdefault(p.route_id.encode(), []).append((t, share, None))
    return grouped


def history_decoders(settings: Settings) -> tuple[TopicDecoder[BusPosition], TopicDecoder[PoolReading]]:
    """The bus positions' and pool readings' decoders of the histories, with the device-clock
    checks of the agents that own those topics' dead letters (the bus and pool-water agents):
    a reading 50 years ahead that those refuse moved a pool's newest hour to 2076 here, and the
    history then took no reading of that pool for decades (stop 54's probe)."""
    return topic_decoder(BusPosition, settings), topic_decoder(PoolReading, settings)


def register_history(app: faust.App, settings: Settings, book: SeriesBook) -> None:
    """Aggregates, pool readings and bus positions into the hourly histories."""
    aggregates = app.topic(settings.topic(AGGREGATES))
    readings = app.topic(settings.topic(SENSORS_POOL))
    positions = app.topic(settings.topic(SENSORS_BUS))
    position_decoder, reading_decoder = history_decoders(settings)

    @app.agent(aggregates, name="forecast-history-intersections")
    async def intersection_history(stream: Any) -> None:
        async for events in stream.take_events(settings.batch_max, within=settings.batch_within_s):
            book.fold("intersection", aggregates_by_intersection(e.message.value for e in events))

    @app.agent(readings, name="forecast-history-pools")
    async def pool_history(stream: Any) -> None:
        async for batch in decoded_batches(stream, reading_decoder, None, max_batch=settings.batch_max, within_s=settings.batch_within_s):
            book.fold("pool", visitors_by_pool(batch))

    @app.agent(positions, name="forecast-history-buses")
    async def bus_history(stream: Any) -> None:
        async for batch in decoded_batches(stream, position_decoder, None, max_batch=settings.batch_max, within_s=settings.batch_within_s):
            book.fold("bus", load_by_line(batch))


def register_events(app: faust.App, settings: Settings, deadletter: Any, book: SeriesBook) -> None:
    """Announced events: kept per venue; a new or changed one makes its series due."""
    schedule = app.topic(settings.topic(EVENTS_SCHEDULE))
    decoder = topic_decoder(ScheduledEvent, settings)

    @app.agent(schedule, name="forecast-events")
    async def announced(stream: Any) -> None:
        async for batch in decoded_batches(stream, decoder, deadletter, max_batch=100, within_s=0.2):
            for e in batch:
                book.announce(e)


class Refitter:
    """Due series -> refits in a process pool (made on first use, in the worker's process) ->
    forecasts on the topic, one at a time as they finish in order."""

    def __init__(self, settings: Settings, book: SeriesBook, out_topic: Sink) -> None:
        self.settings = settings
        self.book = book
        self.out_topic = out_topic
        self.executor: Executor | None = None

    async def refresh(self, now: float) -> None:
        book = self.book
        due = list(book.schedule.due(book.all_series(), now).items())
        jobs: dict[str, tuple[str, live_history.State]] = {}
        for start in range(0, len(due), SELECT_CHUNK):
            chunk = dict(due[start : start + SELECT_CHUNK])
            jobs.update(book.schedule.select(chunk, book.hours_recorded, book.known_hours, book.snapshot, now))
            await asyncio.sleep(0)  # thousands of series: let camera events and frames in between
        if not jobs:
            return
        t0 = time.monotonic()
        for series_id, forecast in self._submit(jobs, book.announced()).items():
            try:
                done = await forecast
            except Exception as exc:  # noqa: BLE001 - one bad series must not stop the others
                FORECAST_FAILURES.inc()
                log.warning("forecast refit failed", series=series_id, error=f"{type(exc).__name__}: {exc}")
                continue
            await self.publish(done)
        FORECAST_SECONDS.set(time.monotonic() - t0)

    def _submit(self, jobs: dict[str, tuple[str, live_history.State]], events: list[Event]) -> dict[str, asyncio.Future[Forecast]]:
        """Every job at once: the pool runs them in parallel, the caller awaits them in order."""
        if self.executor is None:
            self.executor = process_pool(self.settings.forecast_workers, nice=self.settings.forecast_nice)
        loop, settings = asyncio.get_running_loop(), self.settings
        return {
            series_id: loop.run_in_executor(
                self.executor,
                refit,
                series_id,
                trigger,
                state,
                events,
                settings.forecast_model,
                settings.forecast_horizon_h,
                settings.forecast_holidays,
                settings.forecast_timezone,
            )
            for series_id, (trigger, state) in jobs.items()
        }

    async def publish(self, forecast: Forecast) -> None:
        published = msgspec.structs.replace(forecast, event_time=datetime.now(timezone.utc).isoformat())
        await (await self.out_topic.send(key=published.series_id.encode(), value=encode_orjson(published)))
        self.book.forecasted(published)
        FORECAST_REFRESHES.labels(published.model, published.trigger).inc()


def register(app: faust.App, settings: Settings, deadletter: Any) -> None:
    book = SeriesBook(app, settings)
    register_history(app, settings, book)
    register_events(app, settings, deadletter, book)
    refitter = Refitter(settings, book, app.topic(settings.topic(FORECASTS)))

    @app.timer(interval=1.0)
    async def refresh() -> None:
        await refitter.refresh(time.time())
