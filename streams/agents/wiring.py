"""What every agent wires the same way: keyed tables, decoders, and publish-then-save.

Three rules hold for every agent, so they are written once here:

* **Tables are keyed by the message key's raw bytes** and declared with ``use_partitioner=True``:
  agents write them from ``take_events`` batches and timers, outside Faust's per-event context,
  where a default table refuses writes (faust-streaming #497); the producer's murmur2
  partitioner then puts each changelog entry on the partition matching its source partition,
  exactly as Faust's per-event path would (docs/architecture.md).
* **Decoders take their limits from the settings** (``codec.decoder_limits``), except on topics
  whose event times are not a device's clock: internal command topics written by our own agents
  and configurations a simulation publishes with its own epoch (``Times.ANY``).
* **State is saved only after the broker acknowledged what it produced.** Everything is sent,
  the acknowledgements are awaited together, and only then is the table written: a crash in
  between repeats the messages (idempotent downstream), it never loses one.
* **State carries its source offsets** (``track_source``: exact recovery, docs/architecture.md
  "Exact recovery"). Every state a record changed holds the offset of that record
  (``OFFSET``), and after each batch a checkpoint per source partition (a table entry whose key
  hashes to that partition) says "every state of this partition reflects the records before
  ``next``". The checkpoint is written after the states, on the same changelog partition, so
  whatever prefix of the changelog a restarted worker recovers, its last checkpoint covers
  every state before it. After recovery the source is committed back to that checkpoint (never
  forward), and a record whose offset a state already holds is skipped for that state: the
  recovered tables come back exactly as if the worker had never stopped. Records below the
  offset that *was* committed before the rewind are replayed only to rebuild state: their
  outputs were acknowledged before that commit, so they are not sent again (``replayed``).
  What the stopped worker sent after its last recovered checkpoint is read back from the output
  topics (each checkpoint records how far the outputs had got) and not sent again either
  (``unsent``): an output is on the broker once, whenever the worker stopped.
"""

from __future__ import annotations

import asyncio
import enum
import functools
import hashlib
import itertools
import time
import weakref
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from typing import Any, NamedTuple, Protocol, TypeVar

import faust
import structlog

from ..codec import TopicDecoder, decoder_limits
from ..records import Record
from ..settings import Settings
from ..stores import key_partition

log = structlog.get_logger(__name__)

R = TypeVar("R", bound=Record)

#: clock skew allowed where event times are not checked against a clock (``Times.ANY``)
UNCHECKED_SKEW_S = 1e12


class Times(enum.Enum):
    """Which event times a topic's decoder accepts."""

    #: a device's clock: checked against now (or the stream) with the configured limits
    CHECKED = "checked"
    #: any time: internal topics written by our own agents, simulated epochs (no skew check)
    ANY = "any"


class Sink(Protocol):
    """What publishing needs of a Faust topic: ``send`` returns the future of the broker's ack."""

    async def send(self, *, key: bytes, value: bytes) -> Any: ...


class Outgoing(NamedTuple):
    """One message to publish."""

    topic: Sink
    key: bytes
    value: bytes


def keyed_table(app: faust.App, name: str, settings: Settings) -> Any:
    """A changelogged table keyed by raw message-key bytes, writable from batches and timers."""
    return app.Table(
        name,
        default=None,
        use_partitioner=True,
        key_type=bytes,  # raw key bytes, hashed like the source topic's keys
        partitions=settings.topic_partitions,
    )


def topic_decoder(record_type: type[R], settings: Settings, times: Times = Times.CHECKED) -> TopicDecoder[R]:
    """The decoder of one input topic, with the size limit and the event-time rule it needs."""
    if times is Times.ANY:
        return TopicDecoder(record_type, max_bytes=settings.max_record_bytes, clock_skew_s=UNCHECKED_SKEW_S)
    return TopicDecoder(record_type, **decoder_limits(settings))


async def publish(messages: Iterable[Outgoing]) -> list[Any]:
    """Send every message, then wait until the broker has acknowledged all of them; returns
    the broker's record metadata (topic, partition, offset) of each."""
    pending = [await m.topic.send(key=m.key, value=m.value) for m in messages]
    return list(await asyncio.gather(*pending))


async def publish_until_sent(messages: Sequence[Outgoing], what: str, retry_s: float = 1.0) -> None:
    """``publish``, tried again every ``retry_s`` until the broker has all of them: for records a
    timer made, which no replay would make again (an agent's batch is re-read after a failure,
    a timer's tick is not). A retry may send some twice; cancellation (shutdown) ends it."""
    while True:
        try:
            await publish(messages)
            return
        except Exception as exc:  # noqa: BLE001 - a broker outage: keep trying
            log.warning("could not publish, retrying", what=what, error=str(exc) or type(exc).__name__, records=len(messages))
            await asyncio.sleep(retry_s)


def save(table: Any, updates: Mapping[bytes, Any]) -> None:
    """Write ``updates`` item by item (``Table.update()`` would bypass the changelog)."""
    for key, value in updates.items():
        table[key] = value


async def publish_then_save(messages: Iterable[Outgoing], table: Any, updates: Mapping[bytes, Any]) -> None:
    """The ordering every agent keeps: the broker has the messages before the state that
    produced them is saved (see the module docstring)."""
    await publish(messages)
    save(table, updates)


async def changelog_durable(app: faust.App) -> None:
    """Return once the broker has acknowledged every table write made before the call.

    For tables without source tracking (the notifier's outbox and silences): their agent must
    not acknowledge a batch before its writes are durable. Faust's commit flushes its producer
    buffer first, but that flush gives up after 0.1 s without a send (``ProducerBuffer
    .flush_atmost``), so a commit can overtake a changelog record still in the buffer; a SIGKILL
    then loses the write while the input is committed. Seen as an alarm never delivered in the
    critical scale-out test (1 of 28 runs under ``stress-ng``).

    Faust's buffer is a FIFO queue of ``FutureMessage``s, each resolved when the broker
    acknowledged it, handed to aiokafka by one sender task. So this waits for exactly what was
    queued at the call (or, when nothing was but the sender held one message, for the next
    message behind it), then for aiokafka's flush, which covers what had been handed over. It does
    not wait for the buffer to be empty: other agents' writes (a telemetry burst in a worker of
    every role) keep it filling, and planning alarms must not wait for them.
    """
    producer: Any = app.producer
    pending = producer.buffer.pending  # asyncio.Queue
    queued = list(pending._queue)
    if queued:
        await asyncio.gather(*queued, return_exceptions=True)  # anything held was handed over before
    elif not pending._getters:  # the sender is not waiting on the queue: it holds one message
        while not pending._getters:
            if pending._queue:
                await asyncio.gather(pending._queue[0], return_exceptions=True)  # queued after the held one
                break
            await asyncio.sleep(0.005)
    await producer._ensure_producer().flush()


# --- exact recovery: states that carry their source offsets ---------------------------------

#: the field of a tracked state holding the offset of the last source record applied to it
OFFSET = "_offset"
#: checkpoint keys start with "~", which no entity id may (``records.EntityId``), so no subject
#: or intersection can collide with one
CHECKPOINT_PREFIX = b"~checkpoint:"

TopicPartition = tuple[str, int]
#: Kafka header naming the group and table whose agent sent an output (what read-back trusts)
ORIGIN_HEADER = "leitstand-origin"
#: how long a recovery may spend reading its outputs back (a slow broker: duplicates, not a hang)
READ_BACK_LIMIT_S = 60.0
#: how long a partition's position may stand still below its listed end before reading back
#: gives it up: Tansu, restarted, lists records written to a re-created topic that it never
#: serves, and a recovery waiting the full limit on them held the worker "rebalancing" for a
#: minute (and its stop with it)
READ_BACK_STALL_S = 10.0
#: what makes an output message the same output again: (key, value) -> identity
Identity = Callable[[bytes | None, bytes | None], str]


def value_identity(key: bytes | None, value: bytes | None) -> str:
    """For deterministic outputs (a window's aggregate, a detector's command): the bytes."""
    return hashlib.blake2b((key or b"") + b"\x00" + (value or b""), digest_size=16).hexdigest()


@functools.lru_cache(maxsize=4096)
def checkpoint_key(topic: str, partition: int, partitions: int) -> bytes:
    """The table key of a source partition's checkpoint: the first of a numbered series of keys
    that Kafka's partitioner puts on ``partition``, so the checkpoint shares the changelog
    partition (and its order) with the states it covers."""
    for i in itertools.count():
        key = CHECKPOINT_PREFIX + f"{topic}:{partition}:{i}".encode()
        if key_partition(key, partitions) == partition:
            return key
    raise AssertionError("unreachable")  # pragma: no cover


def is_checkpoint(key: bytes) -> bool:
    return key.startswith(CHECKPOINT_PREFIX)


def states(table: Any) -> list[tuple[bytes, Any]]:
    """The table's states, without the checkpoints: what timers and the HTTP API iterate."""
    return [(k, v) for k, v in list(table.items()) if not is_checkpoint(k) and v is not None]


def applied(state: Mapping[str, Any] | None) -> int:
    """Offset of the last source record a state reflects (-1: none recorded)."""
    if not state:
        return -1
    offset = state.get(OFFSET)
    return offset if isinstance(offset, int) else -1


def stamped(state: Mapping[str, Any], offset: int) -> dict[str, Any]:
    """``state`` marked as reflecting the source record at ``offset`` (a new dict)."""
    return {**state, OFFSET: max(offset, applied(state))}


def checkpoints(ends: Mapping[TopicPartition, int], partitions: int) -> dict[bytes, dict[str, Any]]:
    """Checkpoint entries of a finished batch: per source partition, the offset to resume at."""
    return {checkpoint_key(t, p, partitions): {"topic": t, "partition": p, "next": n} for (t, p), n in ends.items()}


def rewind_targets(
    items: Iterable[tuple[bytes, Any]], topics: Collection[str], assigned: Iterable[TopicPartition], partitions: int
) -> dict[TopicPartition, int]:
    """Where each assigned source partition must resume so a recovered table misses nothing.

    The partition's checkpoint if the table has one. None at all while states of that partition
    exist without offsets: a table written before offsets were tracked (trust the committed
    offset, as before). None and no such state: everything of the partition was lost or never
    written, so resume at its start (states skip what they already hold).
    """
    marks: dict[TopicPartition, int] = {}
    legacy: set[int] = set()
    for key, value in items:
        if is_checkpoint(key):
            if isinstance(value, dict) and isinstance(value.get("next"), int):
                marks[(value["topic"], value["partition"])] = value["next"]
        elif isinstance(value, dict) and OFFSET not in value:
            legacy.add(key_partition(key, partitions))
    targets: dict[TopicPartition, int] = {}
    for topic, p in assigned:
        if topic not in topics:
            continue
        if (topic, p) in marks:
            targets[(topic, p)] = marks[(topic, p)]
        elif p not in legacy:
            targets[(topic, p)] = 0
    return targets


class SourceTracking:
    """One tracked table: after each recovery, commits its source partitions back to their
    checkpoints, and remembers since when this worker holds them (``resumed_at``: wall-clock
    silence is counted from then, never across the worker's own downtime)."""

    def __init__(
        self,
        app: faust.App,
        table: Any,
        topics: Collection[str],
        partitions: int,
        outputs: Mapping[str, Identity] | None = None,
        settings: Settings | None = None,
    ) -> None:
        self.app = app
        self.table = table
        self.topics = frozenset(topics)
        self.partitions = partitions
        #: output topic -> what makes a message on it the same output again
        self.outputs = dict(outputs or {})
        self.settings = settings
        #: per output partition ("topic:partition"), the offset after our last acknowledged output
        self.out: dict[str, int] = {}
        #: identities of outputs read back after a recovery: already on the broker
        self.already_sent: set[str] = set()
        self.resumed_at = time.time()
        #: wall time of the last full batch: the source was behind then (see ``quiet_since``)
        self.behind_at = 0.0
        #: per source partition, the offset committed before the rewind: below it, outputs were sent
        self.replay_until: dict[TopicPartition, int] = {}
        table.on_recover(self.on_recovered)

    def observe(self, batch_size: int, max_batch: int) -> None:
        """Note a batch; a full one means the source still has a backlog."""
        if batch_size >= max_batch:
            self.behind_at = time.time()

    def quiet_since(self) -> float:
        """From when wall-clock silence may count: not across this worker's downtime (it counts
        from the recovery) nor while it works through a backlog (from the last full batch)."""
        return max(self.resumed_at, self.behind_at)

    def replayed(self, raw: Any) -> bool:
        """Was this record processed, and its outputs acknowledged, before the restart?"""
        return bool(raw.offset < self.replay_until.get((raw.topic, raw.partition), 0))

    def with_checkpoints(self, updates: Mapping[bytes, Any], ends: Mapping[TopicPartition, int]) -> dict[bytes, Any]:
        """What to save for a finished batch: the states first, then the checkpoints (with how
        far the outputs had got)."""
        marks = checkpoints(ends, self.partitions)
        if self.outputs:
            marks = {k: {**v, "out": dict(self.out)} for k, v in marks.items()}
        return {**updates, **marks}

    def unsent(self, messages: Iterable[Outgoing]) -> list[Outgoing]:
        """``messages`` without those the stopped worker already sent (read back at recovery)."""
        if not self.already_sent:
            return list(messages)
        return [m for m in messages if self._identity(m) not in self.already_sent]

    def sent(self, metadata: Iterable[Any]) -> None:
        """Note how far the outputs got (the next checkpoint records it)."""
        for md in metadata:
            tp = f"{md.topic}:{md.partition}"
            self.out[tp] = max(self.out.get(tp, 0), md.offset + 1)

    def _identity(self, m: Outgoing) -> str:
        name = m.topic.get_topic_name() if hasattr(m.topic, "get_topic_name") else ""
        return self.outputs.get(name, value_identity)(m.key, m.value)

    @property
    def origin(self) -> bytes:
        """The header value that marks this table's outputs (read back only from this group)."""
        group = self.settings.group_id if self.settings is not None else ""
        return f"{group}/{self.table.name}".encode()

    async def publish(self, messages: Iterable[Outgoing]) -> list[Outgoing]:
        """Publish what was not sent before the restart, marked with our origin, and wait for
        the broker's acknowledgements; returns what was published."""
        todo = self.unsent(messages)
        headers = {ORIGIN_HEADER: self.origin}
        sinks: list[Any] = [m.topic for m in todo]  # faust topics: send takes headers
        pending = [await sink.send(key=m.key, value=m.value, headers=headers) for sink, m in zip(sinks, todo, strict=True)]
        self.sent(await asyncio.gather(*pending))
        return todo

    async def on_recovered(self) -> None:
        assigned = [(tp.topic, tp.partition) for tp in self.app.consumer.assignment()]
        items = list(self.table.items())
        targets = rewind_targets(items, self.topics, assigned, self.partitions)
        rewinder = _rewinder(self.app)
        self.replay_until = await rewinder.rewind(targets, self.table.name)
        changelogs = set(self.app.tables.changelog_topics)
        await rewinder.seek_uncommitted(tp for tp in assigned if tp[0] not in changelogs)
        self.already_sent = set()
        sources = [tp for tp in assigned if tp[0] in self.topics]
        if self.outputs and self.settings is not None and sources:
            starts = readback_starts(items, self.outputs, sources, self.partitions)
            self.already_sent = await read_back(self.settings, starts, self.outputs, self.origin)
            log.info("outputs read back after recovery", table=self.table.name, outputs=len(self.already_sent))
        self.resumed_at = time.time()


class _Rewinder:
    """Commits source partitions back (never forward) before Faust seeks to the committed
    offsets; serialised, so two tables reading one topic end at the older of their checkpoints."""

    def __init__(self, app: faust.App) -> None:
        self.app = app
        self.lock = asyncio.Lock()
        #: per partition: (offset committed before our rewind, the offset we rewound it to)
        self.rewound: dict[TopicPartition, tuple[int, int]] = {}
        #: the consumer generation whose uncommitted partitions were sought to their start
        self.sought_generation: Any = object()
        #: partitions that start at 0 in this generation (no commit, or rewound to 0)
        self.from_start: set[TopicPartition] = set()
        self.tasks: set[asyncio.Task[None]] = set()

    async def seek_uncommitted(self, tps: Iterable[TopicPartition]) -> None:
        """Seek every partition without a committed offset to its start, once per generation.

        Faust seeks to the committed offsets after recovery with aiokafka's
        ``seek_to_committed``, which seeks only partitions committed past 0. A partition with no
        commit keeps the fetcher's position, and records fetched while the tables recovered were
        dropped by Faust (its ``suspend_flow``) after that position had moved past them: a new
        group's first records on a topic (measured: the first camera events and alarm commands
        after a restart) were never processed.
        """
        from aiokafka.structs import TopicPartition as AioTP
        from faust.types import TP

        consumer: Any = self.app.consumer
        thread = consumer._thread
        aio = thread._ensure_consumer()
        generation = getattr(self.app, "consumer_generation_id", None)
        async with self.lock:
            if generation == self.sought_generation:
                return
            self.sought_generation = generation
            for topic, p in sorted(tps):
                if not await thread.call_thread(aio.committed, AioTP(topic, p)):
                    self.from_start.add((topic, p))
                    await consumer.seek(TP(topic, p), 0)
            task = asyncio.ensure_future(self._after_resume(generation))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

    async def _after_resume(self, generation: Any) -> None:
        """Once Faust has resumed the flow: a partition meant to start at 0 from which nothing
        was delivered yet, but whose fetch position moved on, lost those records between the
        seek and the resume (the same drop as above); read them again. Records delivered twice
        by this race are skipped by the states' offsets."""
        from aiokafka.structs import TopicPartition as AioTP
        from faust.types import TP

        consumer: Any = self.app.consumer
        tables: Any = self.app.tables
        await tables.recovery.completed.wait()
        await asyncio.sleep(0)
        if getattr(self.app, "consumer_generation_id", None) != generation:
            return
        thread = consumer._thread
        aio = thread._ensure_consumer()
        for topic, p in sorted(self.from_start):
            if consumer._read_offset.get(TP(topic, p)) is not None:
                continue  # records were delivered: the position is theirs
            position = await thread.call_thread(aio.position, AioTP(topic, p))
            if position:
                log.warning("records fetched while the flow was suspended were dropped; reading them again", topic=topic, partition=p)
                await consumer.seek(TP(topic, p), 0)
        self.from_start = set()

    async def rewind(self, targets: Mapping[TopicPartition, int], table: str) -> dict[TopicPartition, int]:
        """Rewind where needed; returns per partition the offset committed before any rewind."""
        if not targets:
            return {}
        from aiokafka.structs import TopicPartition as AioTP
        from faust.types import TP

        consumer: Any = self.app.consumer
        thread = consumer._thread  # faust's aiokafka driver: the consumer lives in this thread service
        aio = thread._ensure_consumer()
        before: dict[TopicPartition, int] = {}
        async with self.lock:
            for (topic, p), target in sorted(targets.items()):
                committed = await thread.call_thread(aio.committed, AioTP(topic, p))
                if committed is None:
                    continue
                original, ours = self.rewound.get((topic, p), (committed, None))
                # another table reading this topic rewound it already: what was committed before
                before[(topic, p)] = original if committed == ours else committed
                if committed <= target:
                    continue
                self.rewound[(topic, p)] = (before[(topic, p)], target)
                log.warning(
                    "recovered state is older than the committed offset; resuming at its checkpoint",
                    table=table,
                    topic=topic,
                    partition=p,
                    committed=committed,
                    resume_at=target,
                )
                await consumer._commit({TP(topic, p): target})
                if target == 0:  # seek_to_committed does not seek to 0 (see seek_uncommitted)
                    self.from_start.add((topic, p))
                    await consumer.seek(TP(topic, p), 0)
        return before


_rewinders: weakref.WeakKeyDictionary[Any, _Rewinder] = weakref.WeakKeyDictionary()


def _rewinder(app: faust.App) -> _Rewinder:
    if app not in _rewinders:
        _rewinders[app] = _Rewinder(app)
    return _rewinders[app]


def track_source(
    app: faust.App, table: Any, topics: Collection[str], settings: Settings, outputs: Mapping[str, Identity] | None = None
) -> SourceTracking:
    """Make ``table`` an exactly recovering state of ``topics`` whose ``outputs`` (topic ->
    identity of a message on it) are sent once (see the module docstring)."""
    return SourceTracking(app, table, topics, settings.topic_partitions, outputs, settings)


def readback_starts(
    items: Iterable[tuple[bytes, Any]], outputs: Collection[str], assigned: Iterable[TopicPartition], partitions: int
) -> dict[str, int]:
    """Per output partition ("topic:partition"), where to start reading back: the oldest position
    any assigned source partition's recovered checkpoint recorded (0 where one has none)."""
    marks = {(v["topic"], v["partition"]): v.get("out") or {} for k, v in items if is_checkpoint(k) and isinstance(v, dict)}
    starts: dict[str, int] = {}
    for tp in assigned:
        out = marks.get(tp)
        for topic in outputs:
            for p in range(partitions):
                key = f"{topic}:{p}"
                at = out.get(key, 0) if out is not None else 0
                starts[key] = min(starts.get(key, at), at)
    return starts


async def read_back(settings: Settings, starts: Mapping[str, int], outputs: Mapping[str, Identity], origin: bytes) -> set[str]:
    """Identities of every message of ``origin`` (header ``ORIGIN_HEADER``: this group's table)
    from ``starts`` to the end of each output partition (0 where no checkpoint says more: a
    fresh group reads its output topics once, and finds nothing of its own there).

    The end is the largest of the listed end offset, the last fetch's high watermark and the
    position (Tansu lists the start of its last batch + 1), reached and confirmed by an empty
    fetch; nobody else writes these records while the partitions are being recovered.
    """
    from aiokafka import AIOKafkaConsumer
    from aiokafka.structs import TopicPartition as AioTP

    tps = {AioTP(k.rsplit(":", 1)[0], int(k.rsplit(":", 1)[1])): at for k, at in starts.items()}
    if not tps:
        return set()
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        group_id=None,
        enable_auto_commit=False,
        fetch_max_wait_ms=settings.consumer_fetch_max_wait_ms,  # Tansu holds a fetch this long (faust_transport)
        **settings.kafka_client_options(),
    )
    seen: set[str] = set()
    await consumer.start()
    try:
        async with asyncio.timeout(READ_BACK_LIMIT_S):
            await _read_to_end(consumer, tps, outputs, origin, seen)
    except TimeoutError:
        log.warning("reading back outputs took too long; some may be sent twice", read=len(seen), limit_s=READ_BACK_LIMIT_S)
    finally:
        await consumer.stop()
    return seen


async def _read_to_end(consumer: Any, tps: Mapping[Any, int], outputs: Mapping[str, Identity], origin: bytes, seen: set[str]) -> None:
    """Add the identity of every message from each partition's start offset to its end."""
    consumer.assign(list(tps))
    for tp, at in tps.items():
        consumer.seek(tp, at)
    ends = await consumer.end_offsets(list(tps))
    # an empty partition (end 0) holds nothing to read back: no fetch for it (a fresh worker on
    # empty outputs was ready a second later for nothing). A listed end above 0 is not trusted as
    # the end (Tansu lists its last batch's start + 1): those are read until an empty fetch.
    pending = {tp for tp in tps if ends[tp] > 0}
    stall = Stall(READ_BACK_STALL_S)
    while pending:
        batch = await consumer.getmany(*pending, timeout_ms=500, max_records=5000)
        for tp, msgs in batch.items():
            ident = outputs.get(tp.topic, value_identity)
            seen.update(ident(m.key, m.value) for m in msgs if (ORIGIN_HEADER, origin) in (m.headers or ()))
        for tp in list(pending):
            end = max(ends[tp], consumer.highwater(tp) or 0)
            position = await consumer.position(tp)
            if position >= end and not batch.get(tp):
                pending.discard(tp)
            elif stall.stuck(tp, position):
                pending.discard(tp)
                log.warning(
                    "an output partition lists records the broker does not serve; reading back stopped there "
                    "(what a restarted in-memory broker leaves), outputs after it may be sent twice",
                    topic=tp.topic,
                    partition=tp.partition,
                    position=position,
                    end=end,
                )


class Stall:
    """Whether a partition's position has stood still for ``limit_s`` (monotonic ``clock``)."""

    def __init__(self, limit_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit_s = limit_s
        self.clock = clock
        self.last: dict[Any, tuple[int, float]] = {}  # partition -> (position, since when)

    def stuck(self, tp: Any, position: int) -> bool:
        now = self.clock()
        at, since = self.last.get(tp, (None, now))
        if at != position:
            self.last[tp] = (position, now)
            return False
        return now - since >= self.limit_s
