"""Buses: positions on ``sensors.bus`` -> adherence metrics, bunching and gap alarms, priority
requests for late buses (the ``telemetry`` role).

The timetable is ``transit.schedule`` (``leitstand gtfs load``), read whole from the start
without a consumer group every ``bus_schedule_refresh_s``: every worker needs every trip of its
lines whatever partitions it holds. Positions wait until the first read is complete, so a
position is never judged against a timetable still loading.

Everything decided is decided by :class:`transit.monitor.BusMonitor`; this module translates
records in and commands out:

* a line's bunching or gap episode starts / ends -> ``LifecycleCommand`` raise / clear on
  ``alerts.lifecycle`` (subject type ``bus_line``, subject the route id), so the alarm books give
  it ids, escalation and delivery like any other alarm;
* a bus later than ``bus_priority_late_s`` heading to a stop mapped in ``bus_priority_stops``
  (stop -> intersection and the stage serving the bus) -> one ``PriorityRequest`` on
  ``signals.priority`` per trip and intersection (keyed by intersection, ``approach`` the stage);
  an on-time bus asks for nothing;
* every stop passage -> a ``BusPassage`` on ``transit.passages`` (keyed by route): its delay, its
  punctuality and the headway it closed, which the history sink writes to ``bus_passages`` for
  the dashboards' per-line panels;
* counters and gauges: positions by outcome, passage delays, punctuality, the worst headway CV.

Headways compare buses of one line, so one telemetry worker must see all of a line's vehicles:
run the bus agent in one telemetry worker (as forecasting's events, docs/architecture.md). Its
partitions are read side by side, so passages of two buses are folded in event-time order only
within a batch: live, that is a fraction of a second against headways of minutes; a backlog of
many minutes on several partitions can misorder headways (re-keying by line is the fix). The
monitor's state lives in memory: after a restart, vehicles are picked up again from their next
position, and half an hour of stream time after the first one the lines with no episode open
get a clear of each kind (``HeadwayBook.reconcile``), which ends an alarm raised before the restart.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from datetime import datetime, timezone
from typing import Any, NamedTuple

import faust
import structlog

from transit.adherence import Limits
from transit.headways import AlarmChange, HeadwayRules
from transit.monitor import BusMonitor, MonitorRules, Observed
from transit.schedule import ScheduledTrip, Timetable

from ..ingest import decoded_batches
from ..kafka_io import TailError, tail
from ..metrics import BUS_HEADWAY_CV_MAX, BUS_PASSAGE_DELAY, BUS_POSITIONS, BUS_PRIORITY_REQUESTS, BUS_PUNCTUALITY
from ..records import BusPassage, BusPosition, LifecycleCommand, PriorityRequest, TripSchedule, encode
from ..settings import Settings
from ..topics import ALERTS_LIFECYCLE, SENSORS_BUS, SIGNALS_PRIORITY, TRANSIT_PASSAGES, TRANSIT_SCHEDULE
from ..transit_codec import passage_record, position_of, scheduled_trip
from .wiring import Outgoing, Sink, Times, publish, topic_decoder

log = structlog.get_logger(__name__)

SUBJECT_TYPE = "bus_line"
#: how long the schedule read waits for more after it caught up
SCHEDULE_IDLE_S = 1.0


def rules_of(settings: Settings) -> MonitorRules:
    return MonitorRules(
        limits=Limits(stale_s=settings.bus_stale_s),
        headways=HeadwayRules(bunched_below=settings.bus_bunched_below, gap_above=settings.bus_gap_above),
        on_time=(settings.bus_on_time_early_s, settings.bus_on_time_late_s),
    )


class BusOutcome(NamedTuple):
    """What a batch of positions caused: alarm commands, priority requests, stop passages."""

    commands: list[LifecycleCommand]
    requests: list[PriorityRequest]
    passages: list[BusPassage]


class BusWatch:
    """The monitor and what its outcomes become on the wire (no Faust here: unit-testable)."""

    def __init__(self, settings: Settings, timetable: Timetable | None = None) -> None:
        self.monitor = BusMonitor(timetable or Timetable({}), rules_of(settings))
        self.priority_late_s = settings.bus_priority_late_s
        self.priority_stops = dict(settings.bus_priority_stops)
        self.requested: dict[tuple[str, str], float] = {}  # (trip, intersection) -> when asked
        self.watermark = float("-inf")

    def use(self, timetable: Timetable) -> None:
        self.monitor.timetable = timetable

    def positions(self, records: Iterable[BusPosition], now: float | None = None) -> BusOutcome:
        """Fold positions in event-time order; the alarm commands, priority requests and stop
        passages they cause.

        ``now`` is the wall clock a position's age is judged against (``stale``); None judges
        it against the newest event time seen (replays). A batch holds several partitions'
        records, so it is sorted by event time first (stable: one vehicle keeps its order).
        """
        out = BusOutcome([], [], [])
        for r in sorted(records, key=lambda rec: rec.event_time):
            pos = position_of(r)
            self.watermark = max(self.watermark, pos.t)
            seen = self.monitor.observe(pos, now=self.watermark if now is None else now)
            BUS_POSITIONS.labels(seen.rejected or "accepted").inc()
            if seen.rejected is not None:
                continue
            self._metrics(seen)
            out.commands.extend(alarm_command(a) for a in seen.alarms)
            out.requests.extend(self._priority(r, seen))
            out.passages.extend(self._passages(seen))
        out.commands.extend(alarm_command(a) for a in self.monitor.expire(self.watermark))
        return out

    def _passages(self, seen: Observed) -> list[BusPassage]:
        """The history's rows of what one position passed. A headway belongs to its follower's
        passage of that stop; one whose follower passed in an earlier position (a passage
        estimated late, ``HeadwayBook.add``) is not in the history."""
        closed = {(h.follower_trip, h.stop_id): h for h in seen.headways}
        on_time = self.monitor.rules.on_time
        return [passage_record(p, closed.get((p.trip_id, p.stop_id)), on_time) for p in seen.passages]

    def _metrics(self, seen: Observed) -> None:
        """Network-wide figures only: a label per line would be a series per entity (the house
        rule of docs/metrics.md); per-line punctuality and regularity are in ``line_figures``."""
        for p in seen.passages:
            BUS_PASSAGE_DELAY.observe(p.delay_s)
        if seen.passages:
            books = self.monitor.punctuality.values()
            total = sum(b.total for b in books)
            if total:
                BUS_PUNCTUALITY.set(sum(b.on_time for b in books) / total)
        if seen.headways:
            cvs = [cv for cv in (self.monitor.headways.cv(r, d) for r, d in self.monitor.headways.recent) if cv is not None]
            if cvs:
                BUS_HEADWAY_CV_MAX.set(max(cvs))

    def line_figures(self) -> dict[str, dict[str, Any]]:
        """Per line: passages early / on time / late, punctuality, headway CV per direction."""
        out: dict[str, dict[str, Any]] = {}
        for route, book in self.monitor.punctuality.items():
            out[route] = {"early": book.early, "on_time": book.on_time, "late": book.late, "punctuality": book.share}
        for route, direction in self.monitor.headways.recent:
            out.setdefault(route, {}).setdefault("headway_cv", {})[str(direction)] = self.monitor.headways.cv(route, direction)
        return out

    def _priority(self, r: BusPosition, seen: Observed) -> list[PriorityRequest]:
        """A late bus heading to a mapped stop asks once per trip and intersection."""
        if seen.delay_s is None or seen.delay_s <= self.priority_late_s or not seen.predictions:
            return []
        nxt = seen.predictions[0]
        target = self.priority_stops.get(nxt.stop_id)
        if target is None or (r.trip_id, target[0]) in self.requested:
            return []
        intersection, stage = target
        self.requested[(r.trip_id, intersection)] = self.watermark
        if len(self.requested) > 100_000:  # trips end; forget the oldest half
            for key in sorted(self.requested, key=self.requested.__getitem__)[:50_000]:
                del self.requested[key]
        BUS_PRIORITY_REQUESTS.inc()
        return [
            PriorityRequest(
                schema_version=1,
                event_time=r.event_time,
                intersection_id=intersection,
                vehicle_id=r.vehicle_id,
                trip_id=r.trip_id,
                route_id=r.route_id,
                delay_s=round(min(max(seen.delay_s, -3600.0), 86_400.0), 1),
                eta_s=round(min(3600.0, max(0.0, nxt.eta - r.event_time.timestamp())), 1),
                request_id=f"tsp@{intersection}~{r.trip_id}"[:160],
                approach=stage[:32],
            )
        ]


def alarm_command(a: AlarmChange) -> LifecycleCommand:
    """A line's episode start / end as a command for the alarm books."""
    at = datetime.fromtimestamp(a.t, tz=timezone.utc)
    base: dict[str, Any] = {"schema_version": 1, "event_time": at, "subject_id": a.route_id, "subject_type": SUBJECT_TYPE, "kind": a.kind}
    if a.action == "clear":
        return LifecycleCommand(op="clear", **base)
    what = "buses running together" if a.kind == "bus_bunching" else "a gap in the service"
    return LifecycleCommand(
        op="raise",
        severity="minor",
        trigger=f"{a.kind}:{a.route_id}:{a.t:.0f}",
        message=f"line {a.route_id}: {what} (headway {a.evidence.get('headway_s')} s, scheduled {a.evidence.get('scheduled_headway_s')} s)",
        evidence=dict(a.evidence),
        **base,
    )


def messages(lifecycle: Sink, priority: Sink, passages: Sink, out: BusOutcome) -> list[Outgoing]:
    return (
        [Outgoing(lifecycle, c.subject_id.encode(), encode(c)) for c in out.commands]
        + [Outgoing(priority, r.intersection_id.encode(), encode(r)) for r in out.requests]
        + [Outgoing(passages, p.route_id.encode(), encode(p)) for p in out.passages]
    )


async def read_timetable(settings: Settings) -> Timetable:
    """Every trip on ``transit.schedule`` now (the topic read whole, no consumer group)."""
    decoder = topic_decoder(TripSchedule, settings, Times.ANY)
    trips: dict[str, ScheduledTrip] = {}
    zone = "UTC"
    async for msg in tail(settings, settings.topic(TRANSIT_SCHEDULE), from_beginning=True, idle_timeout_s=SCHEDULE_IDLE_S):
        if msg.value is None:  # a tombstone: the trip was withdrawn
            trips.pop((msg.key or b"").decode(errors="replace"), None)
            continue
        record = decoder.decode(msg.value, now=time.time(), key=msg.key)
        if not isinstance(record, TripSchedule):
            log.warning("bus_schedule_record_skipped", offset=msg.offset, partition=msg.partition, reason=record.reason[:200])
            continue
        try:
            trips[record.trip_id] = scheduled_trip(record)
        except ValueError as exc:
            log.warning("bus_schedule_trip_skipped", trip_id=record.trip_id, reason=str(exc))
            continue
        zone = record.timezone
    return Timetable(trips, zone)


def register(app: faust.App, settings: Settings, deadletter: Any) -> BusWatch:
    """The bus agent and its schedule reader (``telemetry`` role)."""
    positions = app.topic(settings.topic(SENSORS_BUS))
    lifecycle = app.topic(settings.topic(ALERTS_LIFECYCLE))
    priority = app.topic(settings.topic(SIGNALS_PRIORITY))
    passages = app.topic(settings.topic(TRANSIT_PASSAGES))
    decoder = topic_decoder(BusPosition, settings)
    watch = BusWatch(settings)
    ready = asyncio.Event()
    failure: list[str] = []  # why the timetable could not be read the last time (empty: it could)
    warnings = getattr(app, "readiness_warnings", None)
    if warnings is not None:  # positions wait for a first timetable: an operator must hear why they wait
        warnings["bus_schedule"] = lambda: (
            f"bus timetable not loaded ({failure[-1]}): bus positions wait unjudged" if failure and not ready.is_set() else None
        )

    @app.task
    async def bus_schedule() -> None:
        while True:
            try:
                timetable = await read_timetable(settings)
                watch.use(timetable)
                if not ready.is_set():
                    log.info("bus_schedule_loaded", trips=len(timetable.trips))
                ready.set()
                failure.clear()
            except (TailError, OSError, LookupError) as exc:  # LookupError: the topic is gone (a broker that lost it)
                log.warning("bus_schedule_unreadable", error=str(exc))
                failure[:] = [str(exc) or type(exc).__name__]
            except Exception as exc:  # noqa: BLE001 - a bug here must not stop the worker (camera alarms share it)
                log.error("bus_schedule_failed", error=repr(exc)[:300])
                failure[:] = [type(exc).__name__]
            await asyncio.sleep(settings.bus_schedule_refresh_s)

    @app.agent(positions, name="bus-watch")
    async def buses(stream: Any) -> None:
        async for records in decoded_batches(stream, decoder, deadletter, max_batch=settings.batch_max, within_s=settings.batch_within_s):
            await ready.wait()
            started = time.time()
            out = watch.positions(records, started if settings.timestamp_reference == "now" else None)
            await publish(messages(lifecycle, priority, passages, out))
            log.debug("bus_batch", records=len(records), seconds=round(time.time() - started, 4))

    return watch
