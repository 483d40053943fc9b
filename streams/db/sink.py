"""The history sink: Kafka topics -> PostgreSQL, exactly once into the database.

Its own process (``leitstand sink``), never on a Faust agent's event loop. An aiokafka consumer
without a consumer group is assigned every partition of the history topics and seeks each to the
``next_offset`` stored in ``sink_offsets`` (the beginning when there is none). Each batch (up to
``sink_batch_max`` records or ``sink_batch_within_s`` seconds) is written in ONE transaction:
the rows with COPY (upserts for ``scheduled_events``: one row per announced event, the newest
announcement) and the partitions' new next offsets upserted into ``sink_offsets``. Kafka's
committed offsets are never used (the Kafka Connect JDBC-sink pattern). So:

* a crash before COMMIT leaves neither rows nor offsets: the restart reads the batch again;
* a crash after COMMIT leaves both: the restart starts after the batch;
* redelivery of a record therefore never makes a second row, and no record is skipped.

A session-level advisory lock lets one sink at a time write to a database (a second one would
read the same offsets and write the same rows); it dies with the connection, so a killed sink
never blocks its successor. Records that do not decode are counted and skipped (their offsets
still advance, in the same transaction): the worker has dead-lettered them already for input
topics; for the worker's own output topics each kind of failure is logged once. A record the
database refuses (a value no check here foresaw) would fail its batch on every retry, so the
batch is then written record by record and only the refused record is skipped, logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import structlog

from ..codec import DecodeFailure, decoder_limits
from ..settings import Settings
from .connect import DatabaseUnavailable, connect_async, one_line
from .migrate import APPLIED_VERSION_SQL, load_migrations
from .rows import FIRST_WINS, INPUT_TOPICS, TABLES, TOPIC_TABLES, UPSERTS, Row, RowMapper

if TYPE_CHECKING:
    import psycopg
    from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

log = structlog.get_logger(__name__)

#: the topics the history is made of (catalogue names)
HISTORY_TOPICS: tuple[str, ...] = tuple(TOPIC_TABLES)
#: arbitrary constant: the advisory lock held by the one sink writing to a database
SINK_LOCK_KEY = 0x1E175_0002
PROGRESS_EVERY_S = 5.0
#: how long a starting sink waits for the advisory lock before it gives up
LOCK_WAIT_S = 15.0
#: how often the sink looks for topics or partitions created after it started
RESCAN_EVERY_S = 30.0
_UPSERT_OFFSET = (
    "INSERT INTO sink_offsets (topic, partition, next_offset) VALUES (%s, %s, %s) "
    "ON CONFLICT (topic, partition) DO UPDATE SET next_offset = EXCLUDED.next_offset, updated_at = now()"
)


@dataclass
class SinkStats:
    """What the sink has done since it started (the progress line, the tests)."""

    records: int = 0
    batches: int = 0
    rows: Counter[str] = field(default_factory=Counter)
    skipped: Counter[tuple[str, str]] = field(default_factory=Counter)
    refused_by_db: int = 0


@dataclass
class Batch:
    """Rows per table and the next offset per (full topic name, partition) they reach."""

    rows: dict[str, list[Row]] = field(default_factory=lambda: defaultdict(list))
    next_offsets: dict[tuple[str, int], int] = field(default_factory=dict)
    records: list[tuple[str, int, int, str, list[Row]]] = field(default_factory=list)
    size: int = 0


class HistorySink:
    """One run of the sink: ``await run()`` until ``stop`` is set (SIGTERM, SIGINT)."""

    def __init__(self, settings: Settings, dsn: str, stop: asyncio.Event | None = None) -> None:
        self.settings, self.dsn = settings, dsn
        self.stop = stop or asyncio.Event()
        self._missing_said: list[str] = []
        self.batch_max, self.batch_within_s = settings.sink_batch_max, settings.sink_batch_within_s
        self.mapper = RowMapper(decoder_limits(settings))
        self.stats = SinkStats()
        #: full topic name -> catalogue name
        self.topics = {settings.topic(name): name for name in HISTORY_TOPICS}
        self.positions: dict[tuple[str, int], int] = {}
        self._logged_kinds: set[tuple[str, str]] = set()
        self._conn: psycopg.AsyncConnection | None = None

    async def run(self) -> SinkStats:
        from aiokafka import AIOKafkaConsumer

        self._conn = await self._connect()
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.settings.kafka_bootstrap_servers,
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_partition_fetch_bytes=4 * 1024 * 1024,
            **self.settings.kafka_client_options(),
        )
        await consumer.start()
        try:
            await self._assign(consumer)
            await self._loop(consumer)
        finally:
            await consumer.stop()
            await self._conn.close()
        log.info("history sink stopped", records=self.stats.records, batches=self.stats.batches, rows=dict(self.stats.rows))
        return self.stats

    async def _connect(self) -> psycopg.AsyncConnection:
        """A connection holding the sink's lock, on a migrated database."""
        conn = await connect_async(self.dsn, application_name="leitstand-sink")
        await conn.execute("SET TIME ZONE 'UTC'")
        row = await (await conn.execute("SELECT to_regclass('sink_offsets') IS NOT NULL")).fetchone()
        if not row or not row[0]:
            await conn.close()
            raise DatabaseUnavailable("the history schema is missing: run `leitstand db migrate` first")
        # a sink newer than its database would have every record of a new table or column refused
        # by PostgreSQL, skipped and its offset committed: history lost without a word. So an
        # upgrade that forgot `db migrate` stops here instead
        row = await (await conn.execute(APPLIED_VERSION_SQL)).fetchone()
        have, want = (int(row[0]) if row else 0), len(load_migrations())
        if have < want:
            await conn.close()
            behind = f"the history schema is version {have}, this sink writes version {want}"
            raise DatabaseUnavailable(f"{behind}: run `leitstand db migrate` first")
        if have > want:  # a newer release migrated it: columns this sink writes may be gone
            await conn.close()
            raise DatabaseUnavailable(f"the history schema is version {have}, newer than this sink's {want}: run the newer release's sink")
        # a sink killed a moment ago may still hold the lock until its server session notices
        deadline = time.monotonic() + LOCK_WAIT_S
        while True:
            got = await (await conn.execute("SELECT pg_try_advisory_lock(%s)", (SINK_LOCK_KEY,))).fetchone()
            await conn.commit()
            if got and got[0]:
                return conn
            if time.monotonic() > deadline or self.stop.is_set():
                await conn.close()
                raise DatabaseUnavailable("another history sink is writing to this database (it holds the sink's advisory lock)")
            await asyncio.sleep(0.5)

    async def _loop(self, consumer: AIOKafkaConsumer) -> None:
        last_log = last_scan = time.monotonic()
        done_at_log = 0
        while not self.stop.is_set():
            batch = await self._collect(consumer)
            if batch.size:
                await self._write_with_retry(batch)
            now = time.monotonic()
            if now - last_log >= PROGRESS_EVERY_S:
                self._log_progress(consumer, (self.stats.records - done_at_log) / (now - last_log))
                last_log, done_at_log = now, self.stats.records
            # with nothing assigned yet (no history topic existed), every round: the workers that
            # create the topics may start after the sink
            if now - last_scan >= RESCAN_EVERY_S or not consumer.assignment():
                await self._assign(consumer)
                last_scan = now

    async def _assign(self, consumer: AIOKafkaConsumer) -> None:
        """Assign every partition of the history topics (again, when new ones appeared) and seek
        each to the stored next offset: the database, not Kafka, knows where the sink stands."""
        from aiokafka import TopicPartition

        await consumer._client.force_metadata_update()  # no public refresh
        tps = [TopicPartition(t, p) for t in sorted(self.topics) for p in sorted(consumer.partitions_for_topic(t) or ())]
        missing = sorted(set(self.topics) - {tp.topic for tp in tps})
        if missing and missing != self._missing_said:  # said once, and again when it changes
            log.warning("history topics missing; looking again later", topics=missing, every_s=RESCAN_EVERY_S)
        self._missing_said = missing
        if set(tps) == consumer.assignment():
            return
        assert self._conn is not None
        cur = await self._conn.execute("SELECT topic, partition, next_offset FROM sink_offsets WHERE topic = ANY(%s)", (list(self.topics),))
        stored = {(t, p): o for t, p, o in await cur.fetchall()}
        await self._conn.commit()
        self.positions = {**stored, **self.positions}
        consumer.assign(tps)
        for tp in tps:
            at = self.positions.get((tp.topic, tp.partition))
            if at is None:
                await consumer.seek_to_beginning(tp)
            else:
                consumer.seek(tp, at)
        log.info("history sink assigned", partitions=len(tps), resumed=sum(1 for tp in tps if (tp.topic, tp.partition) in self.positions))

    async def _collect(self, consumer: AIOKafkaConsumer) -> Batch:
        """Up to ``batch_max`` records, or what arrived within ``batch_within_s`` of the first."""
        batch = Batch()
        if not consumer.assignment():
            # aiokafka's getmany waits for an assignment and ignores its timeout: a sink started
            # before any history topic existed waited there for good, deaf to SIGTERM, and never
            # looked for the topics again (stop 49)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stop.wait(), timeout=self.batch_within_s)
            return batch
        deadline: float | None = None
        while batch.size < self.batch_max and not self.stop.is_set():
            wait = 0.5 if deadline is None else max(0.0, deadline - time.monotonic())
            got = await consumer.getmany(timeout_ms=int(wait * 1000), max_records=self.batch_max - batch.size)
            for tp, messages in got.items():
                for m in messages:
                    self._add(batch, tp, m)
            if batch.size and deadline is None:
                deadline = time.monotonic() + self.batch_within_s
            if deadline is None or time.monotonic() >= deadline:
                break
        return batch

    def _add(self, batch: Batch, tp: TopicPartition, m: ConsumerRecord) -> None:
        name = self.topics[tp.topic]
        batch.size += 1
        batch.next_offsets[(tp.topic, tp.partition)] = m.offset + 1
        rows = self.mapper.rows(name, m.partition, m.offset, m.key, m.value, m.timestamp)
        if isinstance(rows, DecodeFailure):
            self._skip(name, m.partition, m.offset, rows)
            rows = []
        table = TOPIC_TABLES[name]
        batch.rows[table].extend(rows)
        batch.records.append((tp.topic, m.partition, m.offset, table, rows))

    def _skip(self, topic: str, partition: int, offset: int, failure: DecodeFailure) -> None:
        self.stats.skipped[(topic, failure.code)] += 1
        if topic not in INPUT_TOPICS and (topic, failure.code) not in self._logged_kinds:
            self._logged_kinds.add((topic, failure.code))
            log.warning(
                "undecodable record skipped (further ones of this kind are only counted)",
                topic=topic,
                partition=partition,
                offset=offset,
                code=failure.code,
                reason=failure.reason[:300],
            )

    async def _write_with_retry(self, batch: Batch) -> None:
        """Write until it is written; a lost connection is reconnected, a refused batch split."""
        import psycopg

        delay = 0.5
        while True:
            try:
                await self._write(batch)
                break
            except psycopg.Error as exc:
                kind = refusal_kind(exc)
                if kind == "setup":
                    raise DatabaseUnavailable(setup_refusal(exc)) from None
                if kind == "transient":
                    if self.stop.is_set():
                        raise DatabaseUnavailable(f"stopped while the database was unreachable: {one_line(exc)}") from None
                    log.warning("database write failed; retrying", error=one_line(exc), retry_in_s=delay)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 10.0)
                    await self._reconnect()
                    continue
                # data the database refuses: find the record, skip it
                assert self._conn is not None
                await self._conn.rollback()
                log.warning("database refused a batch; writing it record by record", error=one_line(exc))
                await self._write_one_by_one(batch)
                break
        self.stats.records += batch.size
        self.stats.batches += 1
        self.positions.update(batch.next_offsets)

    async def _reconnect(self) -> None:
        if self._conn is not None:
            await self._conn.close()
        try:
            self._conn = await self._connect()
        except DatabaseUnavailable as exc:
            log.warning("reconnect failed", error=str(exc))

    async def _write(self, batch: Batch) -> None:
        """Rows and next offsets in one transaction."""
        assert self._conn is not None
        async with self._conn.transaction():
            cur = self._conn.cursor()
            for table, rows in batch.rows.items():
                if rows:
                    await _insert(cur, table, rows)
            await cur.executemany(_UPSERT_OFFSET, [(t, p, o) for (t, p), o in batch.next_offsets.items()])
        for table, rows in batch.rows.items():
            self.stats.rows[table] += len(rows)

    async def _write_one_by_one(self, batch: Batch) -> None:
        """The slow path after a refused batch: each record with its own offset, in order."""
        import psycopg

        assert self._conn is not None
        for topic, partition, offset, table, rows in batch.records:
            try:
                async with self._conn.transaction():
                    cur = self._conn.cursor()
                    if rows:
                        await _insert(cur, table, rows)
                    await cur.execute(_UPSERT_OFFSET, (topic, partition, offset + 1))
                self.stats.rows[table] += len(rows)
            except psycopg.Error as exc:
                if refusal_kind(exc) != "record":
                    raise  # the outer loop retries or stops; this record's offset stays where it was
                self.stats.refused_by_db += 1
                log.error("database refused a record; skipped", topic=topic, partition=partition, offset=offset, error=one_line(exc))
                async with self._conn.transaction():
                    await self._conn.execute(_UPSERT_OFFSET, (topic, partition, offset + 1))

    def _log_progress(self, consumer: AIOKafkaConsumer, rate: float) -> None:
        lag = 0
        for tp in consumer.assignment():
            high = consumer.highwater(tp)
            if high is not None:
                lag += max(0, high - self.positions.get((tp.topic, tp.partition), 0))
        skipped = {f"{t}:{c}": n for (t, c), n in self.stats.skipped.items()}
        log.info(
            "history sink progress",
            records=self.stats.records,
            records_per_s=round(rate, 1),
            lag=lag,
            rows=dict(self.stats.rows),
            skipped=skipped,
            refused_by_db=self.stats.refused_by_db,
        )


#: SQLSTATE classes of a refusal that is the record's own (its value, a constraint, a size
#: limit such as an index row over 8 KB): skipped with its reason, the rest written
RECORD_CLASSES = ("22", "23", "54")
#: SQLSTATE classes and codes worth waiting out: connection, resources, shutdown, serialization
TRANSIENT_CLASSES = ("08", "40", "53")
TRANSIENT_CODES = ("57P01", "57P02", "57P03", "57014")


def refusal_kind(exc: BaseException) -> str:
    """What a psycopg error means for the sink: ``transient`` (reconnect and retry), ``record``
    (this record's data: skip it) or ``setup`` (the database as set up cannot take the history:
    a missing privilege, a table or column of another schema version; stop, skip nothing).

    Before stop 54 every error not raised as ``OperationalError`` was the record's, so a sink
    without INSERT on a table, or on a newer schema, skipped every record and committed past it
    (history lost); and an index row too large (54000, raised as ``OperationalError``) was retried
    forever, which stopped the sink for good."""
    state = getattr(exc, "sqlstate", None)
    if not state:
        return "transient"  # no answer from the server: the connection
    if state[:2] in RECORD_CLASSES:
        return "record"
    if state[:2] in TRANSIENT_CLASSES or state in TRANSIENT_CODES:
        return "transient"
    return "setup"


def setup_refusal(exc: BaseException) -> str:
    """The one line a sink stops with when the database refuses every write as set up."""
    return (
        f"the database refuses the history's writes ({one_line(exc)}; SQLSTATE {getattr(exc, 'sqlstate', '?')}): "
        "grant the sink's user INSERT and UPDATE on the history tables, or run the release matching the "
        "schema; nothing was skipped, the sink resumes where it stopped"
    )


def upsert_sql(table: str) -> str:
    """INSERT ... ON CONFLICT for a table of :data:`UPSERTS`: the stored row is replaced only by
    a row that is not older (a redelivered record rewrites the same values; an old announcement
    read after a newer one changes nothing)."""
    key, order = UPSERTS[table]
    updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in TABLES[table] if c not in key)
    newer = f"({', '.join(f'EXCLUDED.{c}' for c in order)}) >= ({', '.join(f'{table}.{c}' for c in order)})"
    return f"{_insert_row(table)} ON CONFLICT ({', '.join(key)}) DO UPDATE SET {updates} WHERE {newer}"


def _insert_row(table: str) -> str:
    """INSERT of one row of ``table``, every column, as parameters."""
    columns = TABLES[table]
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join(['%s'] * len(columns))})"


def first_wins_sql(table: str) -> str:
    """INSERT ... ON CONFLICT DO NOTHING for a table of :data:`FIRST_WINS`."""
    return f"{_insert_row(table)} ON CONFLICT ({', '.join(FIRST_WINS[table])}) DO NOTHING"


async def _insert(cur: psycopg.AsyncCursor[Any], table: str, rows: list[Row]) -> None:
    """COPY for the append-only tables; row by row in Kafka order (executemany) for upserts, so
    two announcements of one event in a batch end as the newer one, and for first-wins tables."""
    if table in UPSERTS:
        await cur.executemany(upsert_sql(table), rows)
        return
    if table in FIRST_WINS:
        await cur.executemany(first_wins_sql(table), rows)
        return
    columns = ", ".join(TABLES[table])
    async with cur.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
        for row in rows:
            await copy.write_row(row)


def run_sink(settings: Settings, dsn: str) -> SinkStats:
    """Blocks until SIGTERM or SIGINT, then finishes the batch in hand and returns."""

    async def main() -> SinkStats:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        return await HistorySink(settings, dsn, stop).run()

    return asyncio.run(main())
