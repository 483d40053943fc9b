"""The default table store across a rebalance (streams/stores.py, ``HeldMemoryStore``).

A real Faust app and table with our store; changelog events are what Faust's recovery hands the
store. The defect it guards against: after a rebalance, Faust re-read the survivor's *own*
changelog partitions into the live dictionary, and an agent's newer state was replaced by an
older changelog record (tests/integration/test_scale_out.py, 1 run in 4 on Apache Kafka).
"""

from __future__ import annotations

import asyncio
from typing import Any

import faust
from faust.types import TP
from hypothesis import given
from hypothesis import strategies as st

from streams.stores import HeldMemoryStore, foreign_keys, held_after_rebalance, key_partition, store_url

PARTITIONS = 4


def _table() -> Any:
    app = faust.App("held-store-test", broker="kafka://127.0.0.1:1", store=store_url("memory://"), topic_partitions=PARTITIONS)
    table = app.Table("windows", default=None, use_partitioner=True, key_type=bytes, partitions=PARTITIONS)
    assert isinstance(table.data, HeldMemoryStore)
    return table


def _changelog(table: Any, partition: int) -> TP:
    return TP(table.changelog_topic.get_topic_name(), partition)


def _event(table: Any, tp: TP, offset: int, key: bytes, value: bytes) -> Any:
    message = faust.types.Message(tp.topic, tp.partition, offset, 0.0, 0, [], key, value, None)
    return faust.Event(table.app, key, value, [], message)


def _key_on(partition: int, n: int = 0) -> bytes:
    keys = (f"INT-{i:04d}".encode() for i in range(10_000))
    return [k for k in keys if key_partition(k, PARTITIONS) == partition][n]


def _apply(table: Any, events: list[Any]) -> None:
    table.data.apply_changelog_batch(events, table._to_key, table._to_value)


def _rebalance(table: Any, assigned: set[TP], newly: set[TP], revoked: set[TP] = frozenset()) -> None:  # type: ignore[assignment]
    asyncio.run(table.data.on_rebalance(assigned, set(revoked), newly, 1))


def _recovered(table: Any, active: set[TP]) -> None:
    asyncio.run(table.data.on_recovery_completed(active, set()))


def test_a_kept_partition_keeps_the_agents_newer_state_during_recovery() -> None:
    table = _table()
    tp0, tp1 = _changelog(table, 0), _changelog(table, 1)
    key = _key_on(0)
    _rebalance(table, {tp0, tp1}, {tp0, tp1})
    _apply(table, [_event(table, tp0, 0, key, b"first")])
    _recovered(table, {tp0, tp1})
    table.data[key] = b"newest"  # the agent, after recovery
    # the peer dies: tp2 is new here, tp0 and tp1 are kept; recovery re-reads tp0 from its start
    tp2 = _changelog(table, 2)
    _rebalance(table, {tp0, tp1, tp2}, {tp2})
    other = _key_on(2)
    _apply(table, [_event(table, tp0, 0, key, b"first"), _event(table, tp2, 0, other, b"peer's")])
    _recovered(table, {tp0, tp1, tp2})
    assert table.data[key] == b"newest"
    assert table.data[other] == b"peer's"  # a partition taken over is recovered as before


def test_a_partition_that_went_away_is_recovered_again_and_foreign_keys_are_dropped() -> None:
    table = _table()
    tp0, tp1 = _changelog(table, 0), _changelog(table, 1)
    k0, k1 = _key_on(0), _key_on(1)
    _rebalance(table, {tp0, tp1}, {tp0, tp1})
    _recovered(table, {tp0, tp1})
    table.data[k0] = b"mine"
    table.data[k1] = b"mine too"
    _rebalance(table, {tp0}, set(), revoked={tp1})
    _recovered(table, {tp0})
    assert k1 not in table.data, "a revoked partition's state must not stay for timers to act on"
    assert table.data[k0] == b"mine"
    _rebalance(table, {tp0, tp1}, {tp1})
    _apply(table, [_event(table, tp1, 0, k1, b"written by the other worker")])
    _recovered(table, {tp0, tp1})
    assert table.data[k1] == b"written by the other worker"


tps = st.sets(st.builds(TP, st.sampled_from(["a-changelog", "b-changelog"]), st.integers(0, 5)), max_size=8)


@given(held=tps, assigned=tps, newly=tps)
def test_held_is_only_what_stayed_assigned(held: set[TP], assigned: set[TP], newly: set[TP]) -> None:
    kept = held_after_rebalance(held, assigned, newly)
    assert kept <= held and kept <= assigned and not kept & newly


@given(keys=st.lists(st.binary(min_size=1, max_size=12), max_size=30), owned=st.sets(st.integers(0, PARTITIONS - 1)))
def test_foreign_keys_are_exactly_those_of_partitions_not_owned(keys: list[bytes], owned: set[int]) -> None:
    foreign = set(foreign_keys(keys, owned, PARTITIONS))
    assert all((key_partition(k, PARTITIONS) in owned) != (k in foreign) for k in keys)
