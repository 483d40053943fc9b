"""Pools: water readings and camera events -> alarm commands for the lifecycle.

Two agents keyed by pool. Camera events go straight through (a person may be at risk: small
batches, no state). Water readings are folded by ``detection.pool_watch`` with per-pool state
in a table; a timer watches for pools whose sensors went silent. What comes out is a raise or
clear command on ``alerts.lifecycle``; the alarm books decide what it means.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from datetime import datetime, timezone
from typing import Any

import faust

from detection.alarms import AlarmTrigger
from detection.pool_watch import PoolOutcome, PoolProfile, reading_outcome, supervision_outcome
from detection.water_rules import limits_for

from ..codec import TopicDecoder, decoder_limits
from ..ingest import decoded_batches
from ..metrics import POOL_READINGS
from ..records import LifecycleCommand, PoolReading, PoolSupervisionEvent, encode
from ..settings import Settings
from ..topics import ALERTS_LIFECYCLE, POOL_SUPERVISION, SENSORS_POOL
from .alarm_lifecycle import lifecycle_commands as commands

SILENT = "sensor_silent"


def profiles(settings: Settings) -> dict[str, PoolProfile]:
    return {
        pool: PoolProfile(limits_for(p.basin_type, p.bands, settings.water_min_duration_s), p.capacity)
        for pool, p in settings.pools.items()
    }


def _lifecycle_sender(app: faust.App, settings: Settings) -> Any:
    lifecycle = app.topic(settings.topic(ALERTS_LIFECYCLE))

    async def send(cmds: Iterable[LifecycleCommand]) -> None:
        """Commands are on the broker before the state that produced them is saved."""
        pending = [await lifecycle.send(key=c.subject_id.encode(), value=encode(c)) for c in cmds]
        await asyncio.gather(*pending)

    return send


def register_camera(app: faust.App, settings: Settings, deadletter: Any) -> None:
    """Camera events: the life-safety path (runs in the ``critical`` worker role)."""
    supervision = app.topic(settings.topic(POOL_SUPERVISION))
    event_decoder = TopicDecoder(PoolSupervisionEvent, **decoder_limits(settings))  # type: ignore[arg-type]
    send = _lifecycle_sender(app, settings)

    @app.agent(supervision, name="pool-supervision-events")
    async def camera_events(stream: Any) -> None:
        async for events in decoded_batches(stream, event_decoder, deadletter, max_batch=500, within_s=0.01):
            out: list[LifecycleCommand] = []
            for e in events:
                details = {"zone": e.zone, "duration_s": e.duration_s, "confidence": e.confidence, "persons": e.persons}
                outcome = supervision_outcome(e.pool_id, e.event_id, e.kind, e.event_time.timestamp(), details)
                out += commands(e.pool_id, outcome, e.event_time)
            await send(out)


def register_water(app: faust.App, settings: Settings, deadletter: Any) -> None:
    """Water readings and silent sensors (runs in the ``telemetry`` worker role)."""
    readings = app.topic(settings.topic(SENSORS_POOL))
    state_table = app.Table("pool-watch", default=None, use_partitioner=True, key_type=bytes, partitions=settings.topic_partitions)
    known = profiles(settings)
    default = PoolProfile(limits_for(settings.pool_basin_default, None, settings.water_min_duration_s))
    reading_decoder = TopicDecoder(PoolReading, **decoder_limits(settings))  # type: ignore[arg-type]
    send = _lifecycle_sender(app, settings)
    lock = asyncio.Lock()  # agent and silence timer both read-modify-write pool state

    @app.agent(readings, name="pool-water-watch")
    async def water(stream: Any) -> None:
        async for batch in decoded_batches(
            stream, reading_decoder, deadletter, max_batch=settings.batch_max, within_s=settings.batch_within_s
        ):
            async with lock:
                now, updates, out = time.time(), {}, []
                for r in batch:
                    key = r.pool_id.encode()
                    state = updates.get(key) or state_table.get(key) or {}
                    state, outcome = reading_outcome(
                        state, r.pool_id, r.event_time.timestamp(), r.values(), r.visitors, known.get(r.pool_id, default)
                    )
                    if state.get("silent"):
                        outcome.clears.append(SILENT)
                    state.update(last_seen_wall=now, silent=False, last_event=r.event_time.timestamp())
                    updates[key] = state
                    out += commands(r.pool_id, outcome, r.event_time)
                await send(out)
                for key, state in updates.items():
                    state_table[key] = state
            POOL_READINGS.inc(len(batch))

    @app.timer(interval=max(1.0, min(settings.sensor_heartbeat_s / 4, 30.0)))
    async def silent_sensors() -> None:
        async with lock:
            now, updates, out = time.time(), {}, []
            for key, state in list(state_table.items()):
                if state.get("silent") or now - state.get("last_seen_wall", now) < settings.sensor_heartbeat_s:
                    continue
                pool_id = key.decode()
                last = state.get("last_event", now)
                trig = AlarmTrigger(
                    pool_id,
                    SILENT,
                    "minor",
                    f"silent-after:{last:.3f}",
                    now,
                    f"no water readings for {now - state['last_seen_wall']:.0f} s",
                    {"last_reading_event_time": last, "heartbeat_s": settings.sensor_heartbeat_s},
                )
                out += commands(pool_id, PoolOutcome(triggers=[trig]), datetime.fromtimestamp(now, tz=timezone.utc))
                updates[key] = {**state, "silent": True}
            await send(out)
            for key, state in updates.items():
                state_table[key] = state
