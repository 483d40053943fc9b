"""Plain aiokafka helpers for operators and tests: create topics, produce, tail.

The producer never enables idempotence: Tansu 0.6 rejects aiokafka's idempotent producer, and
at-least-once with idempotent effects is the project's delivery model on both brokers.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from .settings import Settings
from .topics import CATALOGUE

logging.getLogger("aiokafka").setLevel(logging.ERROR)


async def ensure_topics(settings: Settings, names: Iterable[str] | None = None) -> list[str]:
    """Create the catalogue topics that do not exist yet; returns those created."""
    wanted = [settings.topic(n) for n in (names or [t.name for t in CATALOGUE])]
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers, **settings.kafka_client_options())
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [t for t in wanted if t not in existing]
        if missing:
            new = [
                NewTopic(t, num_partitions=settings.topic_partitions, replication_factor=settings.topic_replication_factor)
                for t in missing
            ]
            try:
                await admin.create_topics(new)
            except TopicAlreadyExistsError:
                pass
        return missing
    finally:
        await admin.close()


async def list_topics(settings: Settings) -> list[str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers, **settings.kafka_client_options())
    await admin.start()
    try:
        return sorted(await admin.list_topics())
    finally:
        await admin.close()


def producer(settings: Settings, **overrides: Any) -> AIOKafkaProducer:
    opts: dict[str, Any] = {
        "bootstrap_servers": settings.kafka_bootstrap_servers,
        "acks": "all",
        "enable_idempotence": False,
        "linger_ms": 5,
        "max_batch_size": 256 * 1024,
        **settings.kafka_client_options(),
    }
    opts.update(overrides)
    return AIOKafkaProducer(**opts)


async def send_all(
    prod: AIOKafkaProducer,
    topic: str,
    items: Iterable[tuple[bytes | None, bytes]],
    *,
    timestamp_ms: int | None = None,
    on_progress: Any = None,
    window: int = 5_000,
) -> int:
    """Send (key, value) pairs, keeping at most ``window`` un-acknowledged; returns the count."""
    pending: list[asyncio.Future[Any]] = []
    n = 0
    for key, value in items:
        pending.append(await prod.send(topic, value=value, key=key, timestamp_ms=timestamp_ms))
        n += 1
        if len(pending) >= window:
            await asyncio.gather(*pending)
            pending.clear()
            if on_progress:
                on_progress(n)
    if pending:
        await asyncio.gather(*pending)
    if on_progress:
        on_progress(n)
    return n


async def produce_to(settings: Settings, topic: str, items: Iterable[tuple[bytes | None, bytes]]) -> int:
    """Send (key, value) pairs to ``topic`` with a producer of its own; returns the count."""
    prod = producer(settings)
    await prod.start()
    try:
        return await send_all(prod, topic, items)
    finally:
        await prod.stop()


@dataclass(frozen=True)
class TailedMessage:
    topic: str
    partition: int
    offset: int
    timestamp_ms: int
    key: bytes | None
    value: bytes | None


async def tail(
    settings: Settings,
    topic: str,
    *,
    from_beginning: bool = False,
    limit: int | None = None,
    idle_timeout_s: float | None = None,
) -> AsyncIterator[TailedMessage]:
    """Read a topic without joining a consumer group (so it never disturbs the workers)."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest" if from_beginning else "latest",
        **settings.kafka_client_options(),
    )
    await consumer.start()
    try:
        partitions = None
        deadline = time.monotonic() + 10.0
        while not partitions:
            partitions = consumer.partitions_for_topic(topic)
            if partitions:
                break
            if time.monotonic() > deadline:
                raise LookupError(f"topic {topic!r} does not exist")
            await consumer._client.force_metadata_update()  # noqa: SLF001 - no public refresh
            await asyncio.sleep(0.2)
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(tps)
        if from_beginning:
            await consumer.seek_to_beginning(*tps)
        else:
            await consumer.seek_to_end(*tps)
        seen = 0
        last = time.monotonic()
        while limit is None or seen < limit:
            batch = await consumer.getmany(timeout_ms=200, max_records=1000)
            got = False
            for tp_msgs in batch.values():
                for m in tp_msgs:
                    got = True
                    yield TailedMessage(m.topic, m.partition, m.offset, m.timestamp, m.key, m.value)
                    seen += 1
                    if limit is not None and seen >= limit:
                        return
            if got:
                last = time.monotonic()
            elif idle_timeout_s is not None and time.monotonic() - last > idle_timeout_s:
                return
    finally:
        await consumer.stop()
