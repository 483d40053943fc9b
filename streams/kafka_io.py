"""Plain aiokafka helpers for operators and tests: create topics, produce, tail.

The producer never enables idempotence: Tansu 0.6 rejects aiokafka's idempotent producer, and
at-least-once with idempotent effects is the project's delivery model on both brokers.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError
from aiokafka.record.default_records import DefaultRecordBatchBuilder

from .broker.backoff import pace_metadata_refresh, quiet_repeats
from .settings import Settings
from .topics import CATALOGUE, TRANSIT_SCHEDULE

logging.getLogger("aiokafka").setLevel(logging.ERROR)
quiet_repeats()  # one line per kind of failure every 10 s while the broker is away

#: the producer's max request size (aiokafka's default, set explicitly so the pre-send check
#: below and the producer agree); Apache Kafka's default ``message.max.bytes`` is about the same
MAX_REQUEST_BYTES = 1_048_576
#: catalogue topics that keep only the latest record per key (a timetable reloaded replaces its trips)
COMPACTED = frozenset({TRANSIT_SCHEDULE})


async def ensure_topics(settings: Settings, names: Iterable[str] | None = None) -> list[str]:
    """Create the catalogue topics that do not exist yet; returns those created."""
    wanted = [settings.topic(n) for n in (names or [t.name for t in CATALOGUE])]
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers, **settings.kafka_client_options())
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [t for t in wanted if t not in existing]
        if missing:
            compacted = {settings.topic(n) for n in COMPACTED}
            new = [
                NewTopic(
                    t,
                    num_partitions=settings.topic_partitions,
                    replication_factor=settings.topic_replication_factor,
                    topic_configs={"cleanup.policy": "compact"} if t in compacted else {},
                )
                for t in missing
            ]
            try:
                await admin.create_topics(new)
            except TopicAlreadyExistsError:
                pass
        return missing
    finally:
        await admin.close()


async def recreate_unreadable(settings: Settings, names: Iterable[str], *, read_timeout_s: float = 5.0) -> list[str]:
    """Delete and create again each existing topic of ``names`` (a worker's table changelogs)
    that claims records of which none can be read (``broker.probe.unreadable_topics``: what a
    Tansu restart leaves behind); returns those re-created. Nothing readable is lost by it.
    A changelog is created again compacted, as Faust creates it."""
    from .broker.probe import unreadable_topics

    wanted = set(names)
    existing = set(await list_topics(settings))
    if wanted - existing:  # created here first: Tansu's stale offsets appear only once a topic exists
        await _create_changelogs(settings, {t: settings.topic_partitions for t in wanted - existing})
    topics = sorted(wanted)
    if not topics:
        return []
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap_servers, group_id=None, enable_auto_commit=False, **settings.kafka_client_options()
    )
    await consumer.start()
    try:
        # every partition of every changelog, once the metadata lists them (one created a moment
        # ago may need a refresh; a topic missing from the list would go unchecked)
        tps = await all_partitions(consumer, topics)
        begins, ends = await consumer.beginning_offsets(tps), await consumer.end_offsets(tps)
        claiming = [tp for tp in tps if ends[tp] > begins[tp]]
        readable: set[tuple[str, int]] = set()
        if claiming:
            consumer.assign(claiming)
            for tp in claiming:
                consumer.seek(tp, begins[tp])
            deadline = time.monotonic() + read_timeout_s
            while time.monotonic() < deadline and {tp.topic for tp in claiming} - {t for t, _ in readable}:
                batch = await consumer.getmany(timeout_ms=200)
                readable |= {(tp.topic, tp.partition) for tp, msgs in batch.items() if msgs}
    finally:
        await _stop_quietly(consumer)
    bad = unreadable_topics(
        {(tp.topic, tp.partition): begins[tp] for tp in tps}, {(tp.topic, tp.partition): ends[tp] for tp in tps}, readable
    )
    if bad:
        admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers, **settings.kafka_client_options())
        await admin.start()
        try:
            await admin.delete_topics(bad)
        finally:
            await admin.close()
        await _create_changelogs(settings, {t: sum(1 for tp in tps if tp.topic == t) for t in bad})
    return bad


async def _stop_quietly(consumer: AIOKafkaConsumer) -> None:
    """``consumer.stop()``, minus a CancelledError that is not ours: aiokafka 0.14's consumer
    without a group awaits its own cancelled helper task on close and re-raises its
    cancellation (seen on Apache Kafka right after start-up: the worker exited with it)."""
    try:
        await consumer.stop()
    except asyncio.CancelledError:
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            raise


async def _create_changelogs(settings: Settings, partitions: dict[str, int]) -> None:
    """Create table changelog topics as Faust does: compacted, with the given partition counts."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers, **settings.kafka_client_options())
    await admin.start()
    try:
        new = [
            NewTopic(t, num_partitions=n, replication_factor=settings.topic_replication_factor, topic_configs={"cleanup.policy": "compact"})
            for t, n in partitions.items()
        ]
        try:
            await admin.create_topics(new)
        except TopicAlreadyExistsError:
            pass
    finally:
        await admin.close()


def partition_mismatch(counts: dict[str, int], expected: int) -> str | None:
    """One line naming the catalogue topics whose partition count is not ``expected``
    (``LEITSTAND_TOPIC_PARTITIONS``), or None.

    Why a worker refuses to start on it: its tables (alarm books, signal control, windows) put a
    key's state on changelog partition ``murmur2(key) % expected``; with topics of another count
    that is not the partition the key's records arrive on, so after a rebalance the worker that
    gets the records does not recover the state (measured: every command for a moved
    intersection refused as "not configured here", tests/integration/test_control_recovery.py)."""
    wrong = {t: n for t, n in sorted(counts.items()) if n != expected}
    if not wrong:
        return None
    found = sorted(set(wrong.values()))
    named = ", ".join(f"{t} ({n})" for t, n in list(wrong.items())[:3]) + (f" and {len(wrong) - 3} more" if len(wrong) > 3 else "")
    hint = f"set LEITSTAND_TOPIC_PARTITIONS={found[0]}" if len(found) == 1 and len(wrong) == len(counts) else "recreate them alike"
    return f"topics with another partition count than LEITSTAND_TOPIC_PARTITIONS={expected}: {named}; {hint}"


async def catalogue_partitions(settings: Settings) -> dict[str, int]:
    """Partition count of each existing catalogue topic (with the prefix), from the cluster
    metadata; a topic the broker reports with an error or no partitions is left out (unknown is
    not a mismatch)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers, **settings.kafka_client_options())
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        names = [n for n in (settings.topic(t.name) for t in CATALOGUE) if n in existing]
        described = await admin.describe_topics(names) if names else []
    finally:
        await admin.close()
    counts: dict[str, int] = {}
    for topic in described:
        name, parts = topic.get("topic"), topic.get("partitions") or []
        if isinstance(name, str) and name in names and not topic.get("error_code") and parts:
            counts[name] = len(parts)
    return counts


class TopicsNotListed(LookupError):
    """Topics the broker's metadata still did not list when ``all_partitions`` gave up."""

    def __init__(self, topics: list[str], timeout_s: float) -> None:
        super().__init__(f"topics not listed by the broker after {timeout_s:.0f} s: {', '.join(topics)}")
        self.topics = topics


async def all_partitions(consumer: AIOKafkaConsumer, topics: Iterable[str], timeout_s: float = 30.0) -> list[TopicPartition]:
    """Every partition of each topic, once the client's metadata lists every one of them (topics
    created a moment ago may take a refresh or two); ``TopicsNotListed`` names those still
    missing after ``timeout_s``, so no caller reads some of its topics without saying so."""
    names = list(topics)
    deadline = time.monotonic() + timeout_s
    while True:
        known = {t: sorted(consumer.partitions_for_topic(t) or ()) for t in names}
        if all(known.values()):
            return [TopicPartition(t, p) for t, parts in known.items() for p in parts]
        if time.monotonic() > deadline:
            raise TopicsNotListed([t for t, parts in known.items() if not parts], timeout_s)
        await consumer._client.force_metadata_update()  # no public refresh in aiokafka
        await asyncio.sleep(0.2)


async def list_topics(settings: Settings) -> list[str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers, **settings.kafka_client_options())
    await admin.start()
    try:
        return sorted(await admin.list_topics())
    finally:
        await admin.close()


def producer(settings: Settings, **overrides: Any) -> AIOKafkaProducer:
    """The producer of every command-line sender (produce, replay, simulate, the benchmarks).

    ``request_timeout_ms`` is also aiokafka's batch expiry: a record waits that long for an
    acknowledgement, retried (in order: aiokafka sends one batch per partition at a time) while
    the broker is away. aiokafka's 40 s lost records when a 30 s outage of Apache Kafka plus its
    restart took longer; ``producer_outage_s`` (180 s) rides a restart out, and a record still
    unacknowledged then fails with its reason.
    """
    opts: dict[str, Any] = {
        "bootstrap_servers": settings.kafka_bootstrap_servers,
        "request_timeout_ms": int(settings.producer_outage_s * 1000),
        "acks": "all",
        "enable_idempotence": False,
        "linger_ms": 5,
        "max_batch_size": 256 * 1024,
        "max_request_size": MAX_REQUEST_BYTES,
        **settings.kafka_client_options(),
    }
    opts.update(overrides)
    prod = AIOKafkaProducer(**opts)
    pace_metadata_refresh(prod.client)  # no busy loop while the broker is away (streams/broker/backoff.py)
    return prod


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


def record_size(key: bytes | None, value: bytes | None) -> int:
    """Bytes the record takes in a request, as the producer itself estimates it before sending."""
    return DefaultRecordBatchBuilder.estimate_size_in_bytes(key, value, [])


def _reason(exc: BaseException) -> str:
    """One line, whatever the client put in the message."""
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


@dataclass
class SendReport:
    """What a checked send did: how many records the broker acknowledged, and which it refused why."""

    sent: int = 0
    #: (reference given with the record, e.g. its line number; reason), in reference order
    refused: list[tuple[int, str]] = field(default_factory=list)

    def refused_summary(self, noun: str = "line", limit: int = 20) -> str:
        """``line 4 (reason); line 9 (reason)``, at most ``limit`` of them, then how many more."""
        shown = "; ".join(f"{noun} {ref} ({why})" for ref, why in self.refused[:limit])
        more = len(self.refused) - limit
        return shown + (f"; and {more} more" if more > 0 else "")


class CheckedSender:
    """Sends records one at a time; a record that cannot be sent is refused, never fatal.

    A record over the producer's max request size is refused before it is sent (aiokafka
    would raise in ``send`` and end the command after a partial send); one the broker
    rejects fails only its own future. Either way the records after it are still sent, and
    :attr:`report` says what happened to each. At most ``window`` sends are unacknowledged.
    """

    def __init__(self, prod: AIOKafkaProducer, topic: str, *, max_request_bytes: int = MAX_REQUEST_BYTES, window: int = 5_000) -> None:
        self.prod, self.topic = prod, topic
        self.max_request_bytes, self.window = max_request_bytes, window
        self.report = SendReport()
        self._pending: list[tuple[int, asyncio.Future[Any]]] = []

    @property
    def in_flight(self) -> int:
        """Records sent but not yet acknowledged (for progress displays)."""
        return len(self._pending)

    async def send(self, ref: int, key: bytes | None, value: bytes, timestamp_ms: int | None = None) -> None:
        size = record_size(key, value)
        if size > self.max_request_bytes:
            self.report.refused.append((ref, f"{size:,} bytes, over the producer's limit of {self.max_request_bytes:,}"))
            return
        try:
            fut = await self.prod.send(self.topic, value=value, key=key, timestamp_ms=timestamp_ms)
        except KafkaError as exc:
            self.report.refused.append((ref, _reason(exc)))
            return
        self._pending.append((ref, fut))
        if len(self._pending) >= self.window:
            await self.flush()

    async def flush(self) -> SendReport:
        """Wait for every pending acknowledgement and count it as sent or refused."""
        pending, self._pending = self._pending, []
        results = await asyncio.gather(*(f for _, f in pending), return_exceptions=True)
        for (ref, _), result in zip(pending, results):
            if isinstance(result, KafkaError):
                self.report.refused.append((ref, _reason(result)))
            elif isinstance(result, BaseException):
                raise result
            else:
                self.report.sent += 1
        self.report.refused.sort(key=lambda r: r[0])
        return self.report


async def produce_checked(settings: Settings, topic: str, items: Iterable[tuple[int, bytes | None, bytes]]) -> SendReport:
    """Send (reference, key, value) triples to ``topic``; every record is sent or refused with a reason.

    ``items`` is read in a thread (:func:`read_ahead`): it may block (``leitstand produce`` reading a
    pipe), and a blocking read on the event loop kept the producer from sending or retrying
    anything until the next line came (a slow pipe sent nothing before end of input).
    """
    prod = producer(settings)
    await prod.start()
    try:
        sender = CheckedSender(prod, topic)
        async for ref, key, value in read_ahead(items):
            await sender.send(ref, key, value)
        return await sender.flush()
    finally:
        await prod.stop()


_END = object()


async def read_ahead(items: Iterable[Any], depth: int = 10_000) -> AsyncIterator[Any]:
    """Yield ``items`` as a thread reads them; at most ``depth`` read ahead (backpressure)."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[Any] = asyncio.Queue(depth)
    stop = threading.Event()

    def put(item: Any) -> None:
        asyncio.run_coroutine_threadsafe(queue.put(item), loop).result()

    def read() -> None:
        try:
            for item in items:
                if stop.is_set():
                    return
                put(item)
        except BaseException as exc:  # handed to the reader, raised there
            put(_Failed(exc))
            return
        put(_END)

    # a daemon thread: one blocked reading a pipe that never ends must not hold the exit
    threading.Thread(target=read, name="read-ahead", daemon=True).start()
    try:
        while (item := await queue.get()) is not _END:
            if isinstance(item, _Failed):
                raise item.exc
            yield item
    finally:
        stop.set()
        while not queue.empty():  # a reader waiting on a full queue gets its put, sees stop
            queue.get_nowait()


@dataclass(frozen=True)
class _Failed:
    exc: BaseException


@dataclass(frozen=True)
class TailedMessage:
    topic: str
    partition: int
    offset: int
    timestamp_ms: int
    key: bytes | None
    value: bytes | None


#: how long ``tail`` waits for the broker before it gives up: to connect, assign, read the end
#: offsets and the start positions, and then, while catching up, for any progress at all. Generous
#: on purpose: a loaded machine is slow, not broken; only a broker that never answers hits it.
TAIL_STARTUP_LIMIT_S = 120.0


class TailError(RuntimeError):
    """``tail`` could not read the topic: the broker did not answer (the message says which step)."""


@dataclass
class TailReport:
    """What a ``tail`` saw, filled in as it runs (for the CLI's closing line)."""

    #: partition -> end offset read at start (the offset the next record will get)
    end_offsets: dict[int, int] = field(default_factory=dict)
    #: partition -> the position the consumer started at
    start_positions: dict[int, int] = field(default_factory=dict)
    #: records yielded
    read: int = 0
    #: every partition's position reached the end offsets seen at start (and a fetch confirmed it)
    caught_up: bool = False
    #: it stopped because nothing arrived for ``idle_timeout_s`` after catching up
    idle_stop: bool = False

    @property
    def empty_at_start(self) -> bool:
        """Nothing to read at start: every partition started at its end offset."""
        return all(self.start_positions.get(p, 0) >= end for p, end in self.end_offsets.items())


async def tail(
    settings: Settings,
    topic: str,
    *,
    from_beginning: bool = False,
    limit: int | None = None,
    idle_timeout_s: float | None = None,
    startup_limit_s: float = TAIL_STARTUP_LIMIT_S,
    report: TailReport | None = None,
) -> AsyncIterator[TailedMessage]:
    """Read a topic without joining a consumer group (so it never disturbs the workers).

    The idle timeout counts only once the consumer has caught up: it reads the end offsets of
    the assigned partitions first, and idle time starts when every partition's position has
    reached them (and a fetch response confirmed there is nothing more there). Until then it
    keeps reading however slow the machine is; only if the broker makes no progress at all for
    ``startup_limit_s`` (not connected, not assigned, no records) does it raise ``TailError``.
    """
    rep = report if report is not None else TailReport()
    where = f"the Kafka broker at {settings.kafka_bootstrap_servers}"
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest" if from_beginning else "latest",
        **settings.kafka_client_options(),
    )
    pace_metadata_refresh(consumer._client)
    try:
        try:
            async with asyncio.timeout(startup_limit_s):
                await consumer.start()
                tps = await _assign(consumer, topic, from_beginning)
                ends = await consumer.end_offsets(tps)
                starts = {tp: await consumer.position(tp) for tp in tps}
        except TimeoutError:
            raise TailError(f"{where} did not answer within {startup_limit_s:g} s (tail of {topic!r})") from None
        except KafkaError as exc:
            raise TailError(f"{where} did not answer (tail of {topic!r}): {_reason(exc)}") from None
        rep.end_offsets = {tp.partition: ends[tp] for tp in tps}
        rep.start_positions = {tp.partition: starts[tp] for tp in tps}
        behind = set(tps)  # until a fetch confirmed each position is at the end
        positions = dict(starts)
        last = time.monotonic()  # of the last progress while catching up, of the last record after
        while limit is None or rep.read < limit:
            batch = await consumer.getmany(timeout_ms=200, max_records=1000)
            got = False
            for tp_msgs in batch.values():
                for m in tp_msgs:
                    got = True
                    yield TailedMessage(m.topic, m.partition, m.offset, m.timestamp, m.key, m.value)
                    rep.read += 1
                    if limit is not None and rep.read >= limit:
                        return
            now = time.monotonic()
            if not rep.caught_up:
                moved = await _caught_up(consumer, behind, ends, positions)
                if moved or got:
                    last = now
                if not behind:
                    rep.caught_up = True
                    last = now  # idle time counts from here
                elif now - last > startup_limit_s:
                    left = sum(max(0, ends[tp] - positions[tp]) for tp in behind)
                    raise TailError(
                        f"{where} stopped answering: no progress for {startup_limit_s:g} s with {left:,} offsets of {topic!r} still to read"
                    )
                continue
            if got:
                last = now
            elif idle_timeout_s is not None and now - last > idle_timeout_s:
                rep.idle_stop = True
                return
    finally:
        await consumer.stop()  # also after a start that failed or timed out: closes its connections


async def _assign(consumer: AIOKafkaConsumer, topic: str, from_beginning: bool) -> list[TopicPartition]:
    """Assign every partition of ``topic`` and seek to its beginning or end."""
    partitions = None
    deadline = time.monotonic() + 10.0
    while not partitions:
        partitions = consumer.partitions_for_topic(topic)
        if partitions:
            break
        if time.monotonic() > deadline:
            raise LookupError(f"topic {topic!r} does not exist")
        await consumer._client.force_metadata_update()  # no public refresh
        await asyncio.sleep(0.2)
    tps = [TopicPartition(topic, p) for p in sorted(partitions)]
    consumer.assign(tps)
    if from_beginning:
        await consumer.seek_to_beginning(*tps)
    else:
        await consumer.seek_to_end(*tps)
    return tps


async def _caught_up(
    consumer: AIOKafkaConsumer, behind: set[TopicPartition], ends: dict[TopicPartition, int], positions: dict[TopicPartition, int]
) -> bool:
    """Drop from ``behind`` the partitions whose position reached their end offset at start and
    the high watermark of their last fetch (so the broker has confirmed there is no more to
    read at that position: Tansu 0.6 under-reports end offsets); True on any progress."""
    moved = False
    for tp in list(behind):
        pos = await consumer.position(tp)
        if pos != positions[tp]:
            positions[tp], moved = pos, True
        highwater = consumer.highwater(tp)
        if pos >= ends[tp] and highwater is not None and pos >= highwater:
            behind.discard(tp)
            moved = True
    return moved
