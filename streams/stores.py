"""A RocksDB table store that can be written outside Faust's per-event context.

Faust's RocksDB store picks the local partition database from the *current event*; writes from
a ``take_events`` batch or a timer have none and fail an assertion (the store-side twin of
faust-streaming #497). Our tables use ``use_partitioner=True``: the producer puts each
changelog record on ``murmur2(key) % partitions``, so the store derives the same partition from
the key. Recovery writes changelog records to the partition they came from, which is that one.
"""

from __future__ import annotations

from typing import Any

from aiokafka.partitioner import murmur2
from faust.stores import STORES
from faust.stores.rocksdb import Store as RocksDBStore
from faust.streams import current_event

SCHEME = "rocksdb-keyed"


def key_partition(key: bytes, partitions: int) -> int:
    """The partition Kafka's default (Java-compatible) partitioner gives ``key``."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions


class KeyPartitionedRocksDBStore(RocksDBStore):
    def _set(self, key: bytes, value: Any) -> None:
        if current_event() is not None and not self.table.use_partitioner:
            return super()._set(key, value)
        partitions = self.table.partitions or self.app.conf.topic_partitions
        partition = key_partition(key, partitions)
        self._key_index[key] = partition
        self._db_for_partition(partition).put(key, value)


STORES.aliases[SCHEME] = f"{__name__}:KeyPartitionedRocksDBStore"


def store_url(table_store: str) -> str:
    """Faust store URL for the configured ``memory://`` or ``rocksdb://``."""
    if table_store.startswith("rocksdb://"):
        return SCHEME + table_store[len("rocksdb") :]
    return table_store
