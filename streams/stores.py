"""Table stores of the worker: what Faust's two stores get wrong for tables written from batches
and timers, and across a rebalance.

**RocksDB** (``KeyPartitionedRocksDBStore``). Faust's RocksDB store picks the local partition
database from the *current event*; writes from a ``take_events`` batch or a timer have none and
fail an assertion (the store-side twin of faust-streaming #497). Our tables use
``use_partitioner=True``: the producer puts each changelog record on ``murmur2(key) %
partitions``, so the store derives the same partition from the key. Recovery writes changelog
records to the partition they came from, which is that one.

**Memory** (``HeldMemoryStore``, the default ``memory://``). Faust's in-memory store has no
persisted offset, so after *every* rebalance Faust re-reads each assigned changelog partition
from its start into the live dictionary, including the partitions this worker kept and has been
writing all along. The worker does not wait for its agents at a rebalance
(``stream_wait_empty=False``, see streams/app.py), so an agent that finishes a batch while that
re-read runs has its new state overwritten by an older changelog record, and the write it just
made lies beyond the high watermark recovery stops at: the state goes back while the source's
committed offset moves on. Measured in ``tests/integration/test_scale_out.py`` (the survivor's
own partitions, after its peer was killed): windows emitted with 3 of their 4 frames in 1 of 4
runs on Apache Kafka. This store keeps what it **holds**, the changelog partitions it recovered
and has owned without interruption since: their changelog records are its own writes, and
recovery skips them. A partition revoked, or assigned anew, is recovered from its start as
before. After each recovery the store also drops the keys of partitions it no longer owns (Faust
only drops keys it recovered itself), so a timer never acts on another worker's intersections.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from aiokafka.partitioner import murmur2
from faust.stores import STORES
from faust.stores.memory import Store as MemoryStore
from faust.stores.rocksdb import Store as RocksDBStore
from faust.streams import current_event
from faust.types import TP, EventT

SCHEME = "rocksdb-keyed"
MEMORY_SCHEME = "memory-held"


def key_partition(key: bytes, partitions: int) -> int:
    """The partition Kafka's default (Java-compatible) partitioner gives ``key``."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions


def _partitions(store: Any) -> int:
    return int(store.table.partitions or store.app.conf.topic_partitions)


class KeyPartitionedRocksDBStore(RocksDBStore):
    def _set(self, key: bytes, value: Any) -> None:
        if current_event() is not None and not self.table.use_partitioner:
            return super()._set(key, value)
        partition = key_partition(key, _partitions(self))
        self._key_index[key] = partition
        self._db_for_partition(partition).put(key, value)


def held_after_rebalance(held: Iterable[TP], assigned: Iterable[TP], newly_assigned: Iterable[TP]) -> set[TP]:
    """The changelog partitions still held without interruption: held before, assigned again,
    and not new in this assignment (a partition that went away and came back between two
    rebalances Faust saw is new)."""
    return (set(held) & set(assigned)) - set(newly_assigned)


def foreign_keys(keys: Iterable[Any], owned: Iterable[int], partitions: int) -> list[bytes]:
    """Keys of a key-partitioned table whose partition this worker does not own."""
    mine = set(owned)
    return [k for k in keys if isinstance(k, bytes) and key_partition(k, partitions) not in mine]


class HeldMemoryStore(MemoryStore):
    """Faust's in-memory store that does not overwrite live state with its own changelog."""

    def __post_init__(self) -> None:
        super().__post_init__()
        #: changelog partitions recovered here and owned since: the dictionary is their truth
        self.held: set[TP] = set()

    def _own_topics(self) -> set[str]:
        return set(self.table.changelog_topic.topics)

    def apply_changelog_batch(self, batch: Iterable[EventT], to_key: Callable[[Any], Any], to_value: Callable[[Any], Any]) -> None:
        held = self.held
        fresh = [e for e in batch if TP(e.message.topic, e.message.partition) not in held]
        super().apply_changelog_batch(fresh, to_key, to_value)

    async def on_rebalance(self, assigned: set[TP], revoked: set[TP], newly_assigned: set[TP], generation_id: int = 0) -> None:
        self.held = held_after_rebalance(self.held, assigned, newly_assigned)
        await super().on_rebalance(assigned, revoked, newly_assigned, generation_id)

    async def on_recovery_completed(self, active_tps: set[TP], standby_tps: set[TP]) -> None:
        mine = {tp for tp in active_tps if tp.topic in self._own_topics()}
        if self.table.use_partitioner:
            for key in foreign_keys(list(self.data), (tp.partition for tp in mine), _partitions(self)):
                self.data.pop(key, None)
                self._key_partition.pop(key, None)
        await super().on_recovery_completed(active_tps, standby_tps)
        self.held = mine


STORES.aliases[SCHEME] = f"{__name__}:KeyPartitionedRocksDBStore"
STORES.aliases[MEMORY_SCHEME] = f"{__name__}:HeldMemoryStore"


def store_url(table_store: str) -> str:
    """Faust store URL for the configured ``memory://`` or ``rocksdb://``."""
    if table_store.startswith("rocksdb://"):
        return SCHEME + table_store[len("rocksdb") :]
    if table_store.startswith("memory://"):
        return MEMORY_SCHEME + table_store[len("memory") :]
    return table_store
