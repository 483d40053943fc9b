"""Pool readings -> early warnings of an unusual water course (``detection/probe_warning.py``).

Telemetry role, not the water role: this is advice (minor alarms), and the legal limits must
never wait behind a learning detector (``docs/capacity.md``: what shares the water role's loop
delays pH alarms). It reads ``sensors.pool`` beside the data-quality watch; the water role owns
the topic's dead letters, so a bad reading is skipped here, not reported twice.

State per pool (a general detector and a sensor-fault screen per watched parameter, ~15 KB)
lives in a table with its source offsets (``wiring.track_source``), so a restart neither loses
what the detectors learnt (days of a pool's daily cycle) nor raises a warning twice; commands
are on the broker before the state is saved. Between saves (``LivePools``: at most once a
minute per pool, and at every warning) the pools stay objects in memory.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from typing import Any

import faust
import structlog

from detection.probe_warning import PoolWarnings, WarningLimits

from ..codec import RawMessage
from ..ingest import Positioned, positioned_batches
from ..records import LifecycleCommand, PoolReading
from ..settings import Settings
from ..topics import ALERTS_LIFECYCLE, SENSORS_POOL
from .alarm_commands import lifecycle_commands, to_lifecycle
from .wiring import applied, keyed_table, save, stamped, topic_decoder, track_source, value_identity


def limits_from(settings: Settings) -> WarningLimits:
    return WarningLimits(threshold=settings.probe_warning_threshold, warmup_s=settings.probe_warning_warmup_s)


log = structlog.get_logger(__name__)

#: a pool's state goes to the table at most this often (wall clock), and whenever a warning was raised
SAVE_EVERY_S = 60.0
#: pools watched at most: a city has dozens; a device sending a new pool id with every reading must
#: not grow the worker by ~15 KB a reading (further pools are logged once and not watched)
MAX_POOLS = 1_000


class LivePools:
    """The pools' ``PoolWarnings`` as objects between batches, saved to the table at most every
    ``save_every_s`` per pool and whenever a warning was raised.

    Why not every batch: a pool's state is ~15 KB, and at a test load of 300 readings a second
    across 200 pools that was ~4.5 MB a second into the changelog (an in-memory broker keeps all
    of it). What a crash costs: the learning of up to ``save_every_s`` of a pool's readings (the
    source resumes at the batch checkpoint, after them); an open stretch is saved when raised, so
    no warning is repeated. An object is used while its offset is at least the table's; a table
    ahead of it (another worker held the pool meanwhile) is read again."""

    def __init__(
        self,
        limits: WarningLimits,
        save_every_s: float = SAVE_EVERY_S,
        clock: Callable[[], float] = time.monotonic,
        max_pools: int = MAX_POOLS,
    ) -> None:
        self.limits = limits
        self.save_every_s = save_every_s
        self.clock = clock
        self.max_pools = max_pools
        self.cached: dict[bytes, tuple[PoolWarnings, int]] = {}
        self.saved_at: dict[bytes, float] = {}
        self.refused: set[bytes] = set()  # pools beyond max_pools, each logged once

    def get(self, table: Any, key: bytes) -> tuple[PoolWarnings, int]:
        """The pool's warnings and the last offset they reflect."""
        warnings, offset, _stored = self._load(table, key)
        return warnings, offset

    def _load(self, table: Any, key: bytes) -> tuple[PoolWarnings, int, int]:
        """``get``, and the offset the table's state reflects (read once: a state is ~15 KB to decode)."""
        before = table.get(key)
        stored = applied(before)
        hit = self.cached.get(key)
        if hit is not None and hit[1] >= stored >= 0:
            return hit[0], hit[1], stored
        try:
            return PoolWarnings.from_state(before, self.limits), stored, stored
        except (KeyError, TypeError, ValueError) as exc:  # a state this code cannot read: learn again, keep running
            log.warning(
                "probe warning state unreadable; the pool's detectors start again", pool=key.decode(errors="replace"), error=repr(exc)
            )
            return PoolWarnings(self.limits), stored, stored

    def fold(
        self, table: Any, batch: Iterable[Positioned[PoolReading]], replayed: Callable[[RawMessage], bool] = lambda raw: False
    ) -> tuple[dict[bytes, Any], list[LifecycleCommand]]:
        """Fold readings in order: the pools' states due for the table and the warning commands
        (a reading at or below the offset its pool's state reflects was folded before: skipped;
        one ``replayed`` after a restart only rebuilds state: its commands went out before)."""
        pools: dict[bytes, tuple[PoolWarnings, int, bool]] = {}  # warnings, offset now, raised
        stored: dict[bytes, int] = {}  # the offset the table's state reflected when read
        commands: list[LifecycleCommand] = []
        for raw, r in batch:
            key = r.pool_id.encode()
            if key not in pools and key not in self.cached and len(self.cached) >= self.max_pools and table.get(key) is None:
                if key not in self.refused:
                    self.refused.add(key)
                    log.warning(
                        "more pools than the early warning watches; this one is not watched", pool=r.pool_id, watched=self.max_pools
                    )
                continue
            if key not in pools:
                warnings, offset, stored[key] = self._load(table, key)
                pools[key] = (warnings, offset, False)
            warnings, last, raised = pools[key]
            if raw.offset <= last:
                continue
            outcome = warnings.observe(r.pool_id, r.event_time.timestamp(), r.values())
            pools[key] = (warnings, raw.offset, raised or bool(outcome.triggers))
            if not replayed(raw):
                commands += lifecycle_commands(r.pool_id, outcome, r.event_time)
        now = self.clock()
        updates: dict[bytes, Any] = {}
        for key, (warnings, last, raised) in pools.items():
            self.cached[key] = (warnings, last)
            due = raised or now - self.saved_at.get(key, -math.inf) >= self.save_every_s
            if due and last > stored[key]:
                updates[key] = stamped(warnings.to_state(), last)
                self.saved_at[key] = now
        return updates, commands


def register(app: faust.App, settings: Settings) -> None:
    topic = settings.topic(SENSORS_POOL)
    lifecycle_name = settings.topic(ALERTS_LIFECYCLE)
    lifecycle = app.topic(lifecycle_name)
    table = keyed_table(app, "probe-warnings", settings)
    tracking = track_source(app, table, [topic], settings, outputs={lifecycle_name: value_identity})
    decoder = topic_decoder(PoolReading, settings)
    live = LivePools(limits_from(settings))

    @app.agent(app.topic(topic), name="probe-warnings")
    async def warn(stream: Any) -> None:
        async for batch in positioned_batches(stream, decoder, None, max_batch=settings.batch_max, within_s=settings.batch_within_s):
            tracking.observe(batch.size, settings.batch_max)
            updates, commands = live.fold(table, batch.records, tracking.replayed)
            await tracking.publish(to_lifecycle(lifecycle, commands))
            save(table, tracking.with_checkpoints(updates, batch.ends))
