"""Pools: water readings and camera events -> alarm commands for the lifecycle.

Two agents keyed by pool. Camera events go straight through (a person may be at risk: small
batches, no state). Water readings are folded by ``detection.pool_watch`` with per-pool state
in a table; a timer watches for pools whose sensors went silent. What comes out is a raise or
clear command on ``alerts.lifecycle``; the alarm books decide what it means.

Pool states carry their source offsets (``wiring.track_source``): after a restart a reading the
state already reflects is skipped, and sensor silence is counted from when this worker took the
pool's partition over, so the worker's own downtime never reads as a silent sensor.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable
from datetime import datetime, timezone
from typing import Any

import faust

from detection.alarms import AlarmTrigger
from detection.pool_watch import PoolOutcome, PoolProfile, reading_outcome, supervision_outcome
from detection.water_rules import limits_for

from ..codec import RawMessage
from ..ingest import Positioned, decoded_batches, positioned_batches
from ..metrics import POOL_READINGS, EventClock, raise_times
from ..records import LifecycleCommand, PoolReading, PoolSupervisionEvent
from ..settings import Settings
from ..topics import ALERTS_LIFECYCLE, POOL_SUPERVISION, SENSORS_POOL
from .alarm_commands import lifecycle_commands, to_lifecycle
from .wiring import applied, keyed_table, publish, save, stamped, states, topic_decoder, track_source, value_identity

SILENT = "sensor_silent"


def profiles(settings: Settings) -> dict[str, PoolProfile]:
    return {
        pool: PoolProfile(limits_for(p.basin_type, p.bands, settings.water_min_duration_s), p.capacity)
        for pool, p in settings.pools.items()
    }


def camera_commands(events: Iterable[PoolSupervisionEvent]) -> list[LifecycleCommand]:
    """Each camera event straight into raise / clear commands (no state: a person may be at risk)."""
    commands: list[LifecycleCommand] = []
    for e in events:
        details = {"zone": e.zone, "duration_s": e.duration_s, "confidence": e.confidence, "persons": e.persons}
        outcome = supervision_outcome(e.pool_id, e.event_id, e.kind, e.event_time.timestamp(), details)
        commands += lifecycle_commands(e.pool_id, outcome, e.event_time)
    return commands


class WaterWatch:
    """Water readings folded per pool, and pools whose sensors went silent (pure over a table)."""

    def __init__(self, settings: Settings) -> None:
        self.known = profiles(settings)
        self.default = PoolProfile(limits_for(settings.pool_basin_default, None, settings.water_min_duration_s))
        self.heartbeat_s = settings.sensor_heartbeat_s

    def readings(
        self, table: Any, batch: Iterable[Positioned[PoolReading]], now: float, replayed: Callable[[RawMessage], bool] = lambda raw: False
    ) -> tuple[dict[bytes, Any], list[LifecycleCommand]]:
        """Fold readings in order: the pools' new states and the alarm commands (a reading at or
        below the offset its pool's state reflects was folded before a restart: skipped; one
        ``replayed`` after a restart only rebuilds state: its commands were sent before)."""
        updates: dict[bytes, Any] = {}
        commands: list[LifecycleCommand] = []
        for raw, r in batch:
            key = r.pool_id.encode()
            state = updates.get(key) or table.get(key) or {}
            if raw.offset <= applied(state):
                continue
            profile = self.known.get(r.pool_id, self.default)
            state, outcome = reading_outcome(state, r.pool_id, r.event_time.timestamp(), r.values(), r.visitors, profile)
            if state.get("silent"):
                outcome.clears.append(SILENT)
            state.update(last_seen_wall=now, silent=False, last_event=r.event_time.timestamp())
            updates[key] = stamped(state, raw.offset)
            if not replayed(raw):
                commands += lifecycle_commands(r.pool_id, outcome, r.event_time)
        return updates, commands

    def silences(self, table: Any, now: float, resumed_at: float | None = None) -> tuple[dict[bytes, Any], list[LifecycleCommand]]:
        """Pools with no reading for a heartbeat (on the wall clock, counted from ``resumed_at`` at
        the earliest: this worker's own downtime is not the sensor's silence): marked silent,
        alarm raised once."""
        updates: dict[bytes, Any] = {}
        commands: list[LifecycleCommand] = []
        for key, state in states(table):
            seen = max(state.get("last_seen_wall", now), resumed_at or 0.0)
            if state.get("silent") or now - seen < self.heartbeat_s:
                continue
            pool_id = key.decode()
            commands += lifecycle_commands(
                pool_id, PoolOutcome(triggers=[self._silent(pool_id, state, now)]), datetime.fromtimestamp(now, tz=timezone.utc)
            )
            updates[key] = {**state, "silent": True}
        return updates, commands

    def _silent(self, pool_id: str, state: dict[str, Any], now: float) -> AlarmTrigger:
        last = state.get("last_event", now)
        return AlarmTrigger(
            pool_id,
            SILENT,
            "minor",
            f"silent-after:{last:.3f}",
            now,
            f"no water readings for {now - state['last_seen_wall']:.0f} s",
            {"last_reading_event_time": last, "heartbeat_s": self.heartbeat_s},
        )


def register_camera(app: faust.App, settings: Settings, deadletter: Any) -> None:
    """Camera events: the life-safety path (runs in the ``critical`` worker role)."""
    supervision = app.topic(settings.topic(POOL_SUPERVISION))
    lifecycle = app.topic(settings.topic(ALERTS_LIFECYCLE))
    decoder = topic_decoder(PoolSupervisionEvent, settings)
    clock = EventClock.for_reference(settings.timestamp_reference)

    @app.agent(supervision, name="pool-supervision-events")
    async def camera_events(stream: Any) -> None:
        async for events in decoded_batches(stream, decoder, deadletter, max_batch=500, within_s=0.01):
            received = time.time()
            commands = camera_commands(events)
            await publish(to_lifecycle(lifecycle, commands))
            clock.observe("camera_to_alarm", raise_times(commands), received)


def register_water(app: faust.App, settings: Settings, deadletter: Any) -> None:
    """Water readings and silent sensors (the ``water`` worker role: never behind bulk telemetry)."""
    topic = settings.topic(SENSORS_POOL)
    readings = app.topic(topic)
    lifecycle_name = settings.topic(ALERTS_LIFECYCLE)
    lifecycle = app.topic(lifecycle_name)
    table = keyed_table(app, "pool-watch", settings)
    tracking = track_source(app, table, [topic], settings, outputs={lifecycle_name: value_identity})
    decoder = topic_decoder(PoolReading, settings)
    watch = WaterWatch(settings)
    lock = asyncio.Lock()  # agent and silence timer both read-modify-write pool state
    clock = EventClock.for_reference(settings.timestamp_reference)

    @app.agent(readings, name="pool-water-watch")
    async def water(stream: Any) -> None:
        async for batch in positioned_batches(stream, decoder, deadletter, max_batch=settings.batch_max, within_s=settings.batch_within_s):
            received = time.time()
            tracking.observe(batch.size, settings.batch_max)
            async with lock:
                updates, commands = watch.readings(table, batch.records, time.time(), tracking.replayed)
                await tracking.publish(to_lifecycle(lifecycle, commands))
                save(table, tracking.with_checkpoints(updates, batch.ends))
            POOL_READINGS.inc(len(batch.records))
            clock.observe("reading_to_alarm", raise_times(commands), received)

    @app.timer(interval=max(1.0, min(settings.sensor_heartbeat_s / 4, 30.0)))
    async def silent_sensors() -> None:
        async with lock:
            updates, commands = watch.silences(table, time.time(), tracking.quiet_since())
            await tracking.publish(to_lifecycle(lifecycle, commands))
            save(table, updates)
