"""The early-warning agent's fold (streams/agents/probe_warnings.py): the pools' states with their
source offsets, a warning once even when a restart reads the readings again, and the objects it
keeps between batches used only while the table holds what they last saved."""

from __future__ import annotations

import math
import random
from datetime import datetime, timezone
from typing import Any

from detection.probe_warning import WarningLimits
from streams.agents.probe_warnings import LivePools
from streams.agents.wiring import OFFSET, applied
from streams.codec import RawMessage
from streams.ingest import Positioned
from streams.records import PoolReading, Quantity, encode

T0 = 1_780_000_000.0
LIMITS = WarningLimits(warmup_s=86_400.0)


def _readings(pool: str, minutes: range, climb_from: int, seed: int = 1) -> list[PoolReading]:
    """A pool's minutes; from ``climb_from`` its acid pump has stopped (pH climbs 0.24 / h)."""
    rng = random.Random(seed)
    out = []
    for i in minutes:
        drift = 0.004 * (i - climb_from) if i >= climb_from else 0.0
        out.append(
            PoolReading(
                schema_version=1,
                event_time=datetime.fromtimestamp(T0 + 60 * i, timezone.utc),
                pool_id=pool,
                ph=Quantity(7.0 + 0.03 * math.sin(2 * math.pi * i / 1440) + drift + rng.gauss(0, 0.01), "pH"),
                free_chlorine=Quantity(0.45 + rng.gauss(0, 0.008), "mg/l"),
                redox=Quantity(780 + rng.gauss(0, 3), "mV"),
            )
        )
    return out


def _positioned(readings: list[PoolReading]) -> list[Positioned[PoolReading]]:
    return [Positioned(RawMessage("sensors.pool", 0, i, r.pool_id.encode(), encode(r)), r) for i, r in enumerate(readings)]


def _run(table: dict[bytes, Any], live: LivePools, items: list[Positioned[PoolReading]], batch: int, replayed: Any = None) -> list[Any]:
    commands = []
    for i in range(0, len(items), batch):
        updates, cmds = live.fold(table, items[i : i + batch], replayed or (lambda raw: False))
        table.update(updates)
        commands += cmds
    return commands


def test_a_climb_is_warned_once_with_the_offsets_in_the_state() -> None:
    items = _positioned(_readings("P1", range(2 * 1440 + 120), climb_from=2 * 1440))
    table: dict[bytes, Any] = {}
    commands = _run(table, LivePools(LIMITS, save_every_s=0.0), items, batch=500)
    assert [(c.op, c.kind, c.severity, c.subject_id) for c in commands] == [("raise", "unusual_ph", "minor", "P1")]
    assert applied(table[b"P1"]) == len(items) - 1


def test_a_restart_reading_everything_again_warns_nothing_twice_and_learns_the_same() -> None:
    items = _positioned(_readings("P1", range(2 * 1440 + 120), climb_from=2 * 1440))
    whole: dict[bytes, Any] = {}
    first = _run(whole, LivePools(LIMITS, save_every_s=0.0), items, batch=300)
    table: dict[bytes, Any] = {}
    _run(table, LivePools(LIMITS, save_every_s=0.0), items[:1000], batch=300)
    # a new worker (nothing cached) reads from offset 0 again: the first 1000 are skipped by offset
    again = _run(table, LivePools(LIMITS, save_every_s=0.0), items, batch=250)
    assert [c.kind for c in again] == [c.kind for c in first] == ["unusual_ph"]
    assert table[b"P1"] == whole[b"P1"]


def test_replayed_readings_rebuild_the_state_but_send_nothing() -> None:
    items = _positioned(_readings("P1", range(2 * 1440 + 120), climb_from=2 * 1440))
    table: dict[bytes, Any] = {}
    assert _run(table, LivePools(LIMITS, save_every_s=0.0), items, batch=400, replayed=lambda raw: True) == []
    assert applied(table[b"P1"]) == len(items) - 1


def test_a_kept_object_is_dropped_when_the_table_holds_another_state() -> None:
    """After a rebalance the table may hold a state another worker wrote: the cached object,
    which knows nothing of those readings, must not be used."""
    items = _positioned(_readings("P1", range(2 * 1440 + 120), climb_from=2 * 1440))
    table: dict[bytes, Any] = {}
    live = LivePools(LIMITS, save_every_s=0.0)
    _run(table, live, items[:1000], batch=500)
    other: dict[bytes, Any] = {}
    _run(other, LivePools(LIMITS, save_every_s=0.0), items[:2000], batch=500)  # "another worker" went further
    table[b"P1"] = other[b"P1"]
    warnings, offset = live.get(table, b"P1")
    assert offset == 1999 and warnings.last == T0 + 60 * 1999


def test_a_pool_is_saved_at_most_once_a_minute_and_whenever_it_warned() -> None:
    """A pool's ~15 KB state every batch filled the changelog (module doc); between saves the
    object in memory is used, and a restart loses at most a minute of learning, never a warning."""
    items = _positioned(_readings("P1", range(2 * 1440 + 120), climb_from=2 * 1440))
    now = [0.0]
    live = LivePools(LIMITS, save_every_s=60.0, clock=lambda: now[0])
    table: dict[bytes, Any] = {}
    saved: list[int] = []
    commands = []
    for i in range(0, len(items), 100):  # a batch every 10 s
        updates, cmds = live.fold(table, items[i : i + 100])
        table.update(updates)
        commands += cmds
        if b"P1" in updates:
            saved.append(applied(updates[b"P1"]))
        now[0] += 10.0
    assert [c.kind for c in commands] == ["unusual_ph"]
    assert len(saved) <= len(items) // 600 + 2, saved  # once a minute of batches, plus the warning's
    warned_at = next(i for i, p in enumerate(items) if p.record.event_time == commands[0].event_time)
    assert min(len(items), (warned_at // 100 + 1) * 100) - 1 in saved, (warned_at, saved)  # saved with the batch that warned
    # the object in memory is ahead of the table and is what the next batch uses
    warnings, offset = live.get(table, b"P1")
    assert offset == len(items) - 1 >= applied(table[b"P1"])


def test_a_state_it_cannot_read_starts_the_pool_again_instead_of_stopping_the_agent() -> None:
    table: dict[bytes, Any] = {b"P1": {"first": 1.0, "last": 2.0, "detectors": {"ph": {"no": "such state"}}, OFFSET: 5}}
    warnings, offset = LivePools(LIMITS).get(table, b"P1")
    assert warnings.detectors == {} and warnings.last is None


def test_pools_beyond_the_limit_are_not_watched_and_the_known_ones_are() -> None:
    """A device that sends a new pool id with every reading must not grow the worker without end."""
    table: dict[bytes, Any] = {}
    live = LivePools(LIMITS, save_every_s=0.0, max_pools=3)
    readings = [r for i in range(5) for r in _readings(f"P{i}", range(3), climb_from=10**6, seed=i)]
    items = [Positioned(RawMessage("sensors.pool", 0, i, r.pool_id.encode(), encode(r)), r) for i, r in enumerate(readings)]
    _run(table, live, items, batch=4)
    assert sorted(table) == [b"P0", b"P1", b"P2"] and len(live.cached) == 3
    assert live.refused == {b"P3", b"P4"}
    more = [
        Positioned(RawMessage("sensors.pool", 0, 100 + i, r.pool_id.encode(), encode(r)), r)
        for i, r in enumerate(_readings("P1", range(3, 6), 10**6))
    ]
    _run(table, live, more, batch=10)
    assert applied(table[b"P1"]) == 102  # a watched pool goes on being watched
