"""The console's Kafka side: read the state topics into ``ConsoleState``, write people's commands.

The reader joins no consumer group (it must not take partitions from the workers, and every
console needs every partition): it assigns all partitions of the five topics, reads them from the
beginning and then follows them, waking the pages' event streams after each change. Commands are
sent with ``acks=all`` and awaited, so "accepted" on the page means the broker has the command.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import orjson
import structlog
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from ..errors import CliError
from ..kafka_io import TopicsNotListed, all_partitions, ensure_topics, producer
from ..records import Record, encode
from ..settings import Settings
from ..topics import ALERTS_ACKS, ALERTS_SILENCES, SIGNALS_APPROVALS
from .state import TOPICS, ConsoleState

log = structlog.get_logger(__name__)
COMMAND_TOPICS = (ALERTS_ACKS, SIGNALS_APPROVALS, ALERTS_SILENCES)


class Feed:
    """The reader task, the producer, and the condition the event streams wait on."""

    def __init__(self, settings: Settings, state: ConsoleState) -> None:
        self.settings = settings
        self.state = state
        self.changed = asyncio.Condition()
        self.caught_up = asyncio.Event()
        self._names = {settings.topic(t): t for t in TOPICS}
        self._consumer: AIOKafkaConsumer | None = None
        self._producer: Any = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await ensure_topics(self.settings, [*TOPICS, *COMMAND_TOPICS])
        self._producer = producer(self.settings, linger_ms=0)
        await self._producer.start()
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=self.settings.kafka_bootstrap_servers,
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            fetch_max_wait_ms=self.settings.consumer_fetch_max_wait_ms,
            **self.settings.kafka_client_options(),
        )
        await self._consumer.start()
        tps = await self._partitions()
        self._consumer.assign(tps)
        await self._consumer.seek_to_beginning(*tps)
        ends = await self._consumer.end_offsets(tps)
        self._task = asyncio.create_task(self._run(ends))

    async def _partitions(self, timeout_s: float = 30.0) -> list[TopicPartition]:
        """Every partition of the state topics, once the client's metadata knows them all (topics
        created a moment ago may take a refresh or two)."""
        assert self._consumer is not None
        try:
            return await all_partitions(self._consumer, self._names, timeout_s)
        except TopicsNotListed as exc:
            raise CliError(f"the broker does not list the topics {', '.join(exc.topics)} (leitstand topics create)") from None

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._consumer is not None:
            await self._consumer.stop()
        if self._producer is not None:
            await self._producer.stop()

    async def _run(self, ends: dict[TopicPartition, int]) -> None:
        assert self._consumer is not None
        behind = {tp for tp, end in ends.items() if end > 0}
        if not behind:
            self.caught_up.set()
        while True:
            try:
                batch = await self._consumer.getmany(timeout_ms=500, max_records=5000)
            except KafkaError as exc:  # the broker away: keep the last view, try again
                log.warning("console feed: broker error, retrying", error=str(exc))
                await asyncio.sleep(1.0)
                continue
            changed = False
            for tp, messages in batch.items():
                for m in messages:
                    changed |= self._apply(tp.topic, m.value)
                if behind and tp in behind and messages and messages[-1].offset + 1 >= ends[tp]:
                    behind.discard(tp)
            if behind and not self.caught_up.is_set():
                for tp in list(behind):
                    if await self._consumer.position(tp) >= ends[tp]:
                        behind.discard(tp)
            if not behind:
                self.caught_up.set()
            if changed:
                async with self.changed:
                    self.changed.notify_all()

    def _apply(self, topic: str, value: bytes | None) -> bool:
        try:
            record = orjson.loads(value or b"")
        except orjson.JSONDecodeError:
            return False  # not ours to judge: the workers dead-letter what they cannot read
        return self.state.apply(self._names.get(topic, ""), record)

    async def send(self, topic: str, key: str, record: Record) -> None:
        """Send one command and wait for the broker's acknowledgement."""
        await (await self._producer.send(self.settings.topic(topic), key=key.encode(), value=encode(record)))

    async def wait_change(self, version: int, timeout_s: float) -> bool:
        """Wait until the view's version differs from ``version`` (False on timeout)."""
        async with self.changed:
            try:
                await asyncio.wait_for(self.changed.wait_for(lambda: self.state.version != version), timeout_s)
            except TimeoutError:
                return False
        return True
