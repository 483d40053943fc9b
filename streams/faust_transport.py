"""Faust's aiokafka transport, tuned and watched: fetch wait, broker link, lost broker state;
and its web server, bounded (``LeitstandWeb`` on ``http/capped.py``: at most ``MAX_HTTP_CONNECTIONS`` connections, idle
ones closed after ``HTTP_IDLE_TIMEOUT_S``, so the HTTP side cannot take the worker's descriptors).

**Fetch wait.** faust-streaming hard-codes ``fetch_max_wait_ms=1500`` for the worker's consumer.
Apache Kafka answers a waiting fetch as soon as data arrives, so the value only matters when
topics are idle; Tansu 0.6 holds a fetch for the full wait (measured: a camera alarm took 1.3 s
median through the default worker on Tansu, 65 ms on Kafka). We shorten the wait to
``LEITSTAND_CONSUMER_FETCH_MAX_WAIT_MS`` (default 100 ms): an idle worker then polls ten times a
second, which costs nothing worth measuring on loopback and bounds each hop's wait. The
override sets aiokafka's ``_fetch_max_wait_ms`` before the consumer starts (the fetcher is built
in ``start()``); aiokafka is pinned in requirements.lock and a unit test checks the value
arrives in the fetcher, so an upgrade that moves it fails loudly rather than silently.

**Broker link** (``BrokerLink``). Faust's own state says nothing about the broker: during an
outage the worker kept its assignment and ``/ready`` answered 200 (issue 10, #19). The worker
consumer's client is observed instead: every request it sends (fetches ten times a second when
idle, heartbeats every second) either gets an answer or fails. ``/ready`` is 503 once no request
has been answered for ``link_timeout_s`` (half the group session timeout) or fetches have kept
failing that long.

**Lost broker state** (``BrokerWatch``). Tansu keeps everything in memory: a restart comes back
with no topics, no offsets, no groups. The consumer then re-creates the topics it subscribes to
(empty, by auto-creation), resets to offset 0 and Faust's table recovery either fails with a
``ConsistencyError`` or silently serves tables that no longer match the topics. A watcher polls
the broker's topic list and end offsets once a second with a client of its own (it never names
a topic in a metadata request, so it cannot re-create one): a topic it saw that is gone, a
partition that is gone, or an end offset that went back (Kafka offsets only ever grow) means
the broker lost its state. The worker then logs one line and stops; ``leitstand worker`` exits
with status 1 and that line (``BrokerStateLost``).

**Seek after a rebalance** (``seek_committed_or_reset``). Faust drops records it has fetched
while a rebalance or table recovery stops the flow (``getmany`` abandons the batch, or calls
``perform_seek`` instead of delivering it; ``_drain_messages`` abandons a record it was handing
over), and relies on ``perform_seek`` to put the fetcher back at the committed offsets. That is
aiokafka's ``seek_to_committed``, which seeks only partitions committed past 0: a partition with
no commit (a new group, a worker killed before its first commit) or a commit at 0 kept the
fetcher's position, past the dropped records, and they were never processed (measured: a new
group's first camera events and alarm commands; faust-streaming #216 is the same family). Our
consumer thread's ``seek_to_committed`` seeks every assigned stream partition to its commit, 0
included, and one without a commit to its start (``consumer_auto_offset_reset``, "earliest"),
in every role; changelog partitions keep aiokafka's rule (Faust's recovery positions them).
Records delivered before a rebalance but not yet committed are delivered again, as after any
Kafka rebalance (at least once).

**No commit past a record never acknowledged** (``missing_head``, ``HeadHoles``). Faust commits
the first run of consecutive acknowledged offsets, and ``Consumer._new_offset`` lets that run
start one past the committed offset: if the record *at* the commit was never acknowledged while
later ones were, the commit moves past it and it is lost without a word (faust-streaming #606 is
the same family). Measured on Tansu beside ``stress-ng``: the control role's first command after
a restart (the record at the group's commit) was never applied, and the group committed past it
(``tests/integration/test_control_recovery.py``, 4 of 14 runs; docs/architecture.md). Our
consumer holds such a partition's commit instead, and once the same offset has been held back
``HEAD_HOLE_RESEEK_S`` it seeks the partition back to it and reads again from there (a warning
and ``leitstand_consumer_rereads_total``); what was already applied comes again, which every
role handles as after a rebalance (tracked tables skip by their source offsets; the control role
is at least once). Source topics have no holes of their own here (no transactions: Tansu
refuses them; no compaction); a gap Faust knows of (``_gap``) and records deleted by retention
before they were read are let through, as upstream does.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Collection, Iterable, Mapping
from typing import Any, NamedTuple

import faust
import structlog
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.web.drivers import aiohttp as faust_web_aiohttp

from .broker.backoff import pace_metadata_refresh, quiet_repeats
from .http.capped import HTTP_IDLE_TIMEOUT_S, CappedRunner
from .metrics import HEAD_HOLE_REREADS

log = structlog.get_logger(__name__)

#: how long a partition's commit is held behind a record never acknowledged before it is read again
HEAD_HOLE_RESEEK_S = 5.0

#: requests a broker may hold for seconds on purpose (a group join waits for every member)
_HELD_REQUESTS = ("JoinGroupRequest", "SyncGroupRequest")


def describe(exc: BaseException) -> str:
    """``Type: message`` once (aiokafka's messages often start with the type already)."""
    name, text = type(exc).__name__, str(exc).strip()
    return text if text.startswith(name) else f"{name}: {text}" if text else name


class BrokerLink:
    """What the worker's consumer last heard from the broker.

    Written from Faust's consumer thread, read by ``/ready`` on the main loop: plain attribute
    stores of floats and strings, safe under the GIL.
    """

    def __init__(self, timeout_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.timeout_s = timeout_s
        self.clock = clock
        self.answered_at: float | None = None
        self.failing_since: float | None = None
        self.fetch_failing_since: float | None = None
        self.last_error: str | None = None
        self.held = 0  # group join/sync requests in flight
        #: set once the broker is known to have lost its state (the worker is stopping)
        self.lost: str | None = None

    def observe(self, client: Any) -> None:
        """Wrap ``client.send`` (an ``AIOKafkaClient``) to record every answer and failure."""
        send = client.send

        async def observed_send(node_id: Any, request: Any, *args: Any, **kwargs: Any) -> Any:
            kind = type(request).__name__
            fetch, held = kind.startswith("FetchRequest"), kind.startswith(_HELD_REQUESTS)
            self.held += held
            try:
                response = await send(node_id, request, *args, **kwargs)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.failed(exc, fetch=fetch)
                raise
            finally:
                self.held -= held
            self.answered(fetch=fetch)
            return response

        client.send = observed_send

    def answered(self, *, fetch: bool) -> None:
        self.answered_at = self.clock()
        self.failing_since = None
        if fetch:
            self.fetch_failing_since = None

    def failed(self, exc: BaseException, *, fetch: bool) -> None:
        now = self.clock()
        self.last_error = describe(exc)
        if self.failing_since is None:
            self.failing_since = now
        if fetch and self.fetch_failing_since is None:
            self.fetch_failing_since = now

    def problem(self) -> str | None:
        """Why the consumer cannot be trusted to be consuming now, or None."""
        if self.lost:
            return self.lost
        now = self.clock()
        if self.answered_at is None:
            return "the consumer has had no answer from the broker yet"
        silent = now - self.answered_at
        if silent > self.timeout_s and self.held and self.failing_since is None:
            return "joining the consumer group (the broker holds a join until the group is complete)"
        if silent > self.timeout_s:
            why = f" (last error: {self.last_error})" if self.last_error else ""
            return f"no answer from the broker for {silent:.1f} s{why}"
        if self.fetch_failing_since is not None and now - self.fetch_failing_since > self.timeout_s:
            return f"fetches failing for {now - self.fetch_failing_since:.1f} s (last error: {self.last_error})"
        return None


def readiness(app: faust.App) -> tuple[bool, str | None, list[str]]:
    """(ready, reason when not, assigned partitions) for ``/ready``."""
    from faust.exceptions import ConsumerNotStarted

    try:
        assigned = sorted(f"{tp.topic}:{tp.partition}" for tp in app.consumer.assignment())
    except ConsumerNotStarted:  # the web server starts before the consumer thread
        return False, "the consumer has not started yet", []
    link: BrokerLink | None = getattr(app, "broker_link", None)
    reason = link.problem() if link is not None else None
    if reason is None:
        if not assigned:
            reason = "no partitions assigned yet"
        elif app.rebalancing:
            reason = "rebalancing"
        elif getattr(app, "in_recovery", False):
            reason = "recovering tables from their changelogs"
    return reason is None, reason, assigned


#: how :meth:`BrokerWatch.compare` starts a finding of topics that are gone
VANISHED = "topics vanished from the broker"


class BrokerWatch:
    """Detects a broker that lost its topics or offsets (see the module docstring)."""

    def __init__(self, topics: Callable[[], Iterable[str]], interval_s: float = 1.0) -> None:
        self.topics = topics
        self.interval_s = interval_s
        self.partitions: dict[str, int] = {}  # topic seen -> partition count
        self.end_offsets: dict[tuple[str, int], int] = {}  # highest end offset seen

    def compare(self, present: dict[str, int], ends: dict[tuple[str, int], int]) -> str | None:
        """Record one sample (topic -> partitions, (topic, partition) -> end offset); return
        what shows that the broker lost state, or None."""
        gone = sorted(t for t in self.partitions if t not in present)
        if gone:
            more = f" and {len(gone) - 3} more" if len(gone) > 3 else ""
            return f"{VANISHED}: {', '.join(gone[:3])}{more}"
        for topic, count in present.items():
            if count < self.partitions.get(topic, 0):
                return f"topic {topic} now has {count} partitions, had {self.partitions[topic]}"
        for tp, end in ends.items():
            if end < self.end_offsets.get(tp, 0):
                return f"the end offset of {tp[0]}[{tp[1]}] went back from {self.end_offsets[tp]} to {end}"
        for topic, count in present.items():
            self.partitions[topic] = max(count, self.partitions.get(topic, 0))
        for tp, end in ends.items():
            self.end_offsets[tp] = max(end, self.end_offsets.get(tp, 0))
        return None

    async def sample(self, consumer: Any) -> tuple[dict[str, int], dict[tuple[str, int], int]]:
        """Topic list (all topics: naming none, so nothing is auto-created) and end offsets."""
        from aiokafka import TopicPartition

        existing = await consumer.topics()
        wanted = set(self.topics())
        present = {t: len(consumer.partitions_for_topic(t) or ()) for t in existing if t in wanted}
        tps = [TopicPartition(t, p) for t, n in present.items() for p in range(n)]
        ends = await consumer.end_offsets(tps) if tps else {}
        return present, {(tp.topic, tp.partition): off for tp, off in ends.items()}

    async def run(self, client_options: dict[str, Any], bootstrap: list[str], on_lost: Callable[[str], None]) -> None:
        """Poll until the broker is found to have lost state; then call ``on_lost`` once."""
        from aiokafka import AIOKafkaConsumer

        consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap,
            group_id=None,
            enable_auto_commit=False,
            request_timeout_ms=int(max(2.0, self.interval_s * 2) * 1000),
            **client_options,
        )
        pace_metadata_refresh(consumer._client)
        started, suspected = False, False
        try:
            while True:
                try:
                    if not started:
                        await consumer.start()
                        started = True
                    found = self.compare(*await asyncio.wait_for(self.sample(consumer), self.interval_s * 5))
                except asyncio.CancelledError:
                    raise
                except Exception:  # the broker is away: the BrokerLink reports that
                    found = None
                # topics gone must show in two samples in a row: a broker that is starting up
                # (Apache Kafka restarted with its log dir) must not stop a worker on one early
                # answer. An end offset that went back is acted on at once: a producer may already
                # be refilling the re-created topic, and the next sample would no longer show it.
                if found is not None and (suspected or not found.startswith(VANISHED)):
                    on_lost(found)
                    return
                suspected = found is not None
                await asyncio.sleep(self.interval_s)
        finally:
            if started:
                await consumer.stop()


def stop_on_lost_broker_state(app: faust.App) -> Callable[[str], None]:
    """The action on lost broker state: one log line, then the worker's normal SIGTERM stop."""

    def on_lost(what: str) -> None:
        message = (
            f"the broker lost its topics and offsets ({what}); an in-memory broker such as Tansu "
            "loses everything when it restarts. This worker's tables and positions no longer match it: "
            "stopping. Start the worker again (it re-creates the topics)."
        )
        link: BrokerLink | None = getattr(app, "broker_link", None)  # set by streams.app.create_app
        if link is not None:
            link.lost = message
        log.error(message)
        os.kill(os.getpid(), signal.SIGTERM)
        _exit_unless_stopped_within(LOST_STATE_STOP_S, f"error: {message}")

    return on_lost


#: how long the normal stop may take once the broker lost its state; then the process ends anyway
#: (a clean-clone CI run saw Faust's consumer stop retry its final offset commit against the
#: vanished topics for a minute: the worker stood "stopping" and alarmed nobody of it)
LOST_STATE_STOP_S = 20.0


def _exit_unless_stopped_within(seconds: float, line: str) -> None:
    """A daemon timer, off the event loop (which may be the part that hangs): if the process still
    runs after ``seconds``, print the operator's line and end it with status 1."""

    def give_up() -> None:
        sys.stderr.write(f"{line} (the stop did not finish within {seconds:g} s: ended without it)\n")
        sys.stderr.flush()
        os._exit(1)

    timer = threading.Timer(seconds, give_up)
    timer.daemon = True
    timer.start()


class SeekPlan(NamedTuple):
    """Where ``perform_seek`` puts the fetcher: ``to`` partition -> offset; ``reset`` the
    partitions without a commit (to the start with ``auto_offset_reset="earliest"``)."""

    to: dict[Any, int]
    reset: list[Any]


def seek_plan(committed: Mapping[Any, int | None], skip_topics: Collection[str]) -> SeekPlan:
    """Every partition with a commit to it, 0 included (aiokafka skips 0); every one without to
    the reset. Partitions of ``skip_topics`` (table changelogs, which Faust's recovery positions
    itself) keep aiokafka's rule: sought only when committed past 0."""
    to: dict[Any, int] = {}
    reset: list[Any] = []
    for tp, at in committed.items():
        if tp.topic in skip_topics:
            if at:
                to[tp] = at
        elif at is None:
            reset.append(tp)
        else:
            to[tp] = at
    return SeekPlan(to, reset)


async def seek_committed_or_reset(consumer: Any, skip_topics: Collection[str], reset: str) -> dict[Any, int | None]:
    """Seek every assigned partition as ``seek_plan`` says; ``reset`` is the consumer's
    ``auto_offset_reset`` ("earliest": the start; "latest": the end; anything else: left).

    Returns what aiokafka's ``seek_to_committed`` returns: partition -> committed offset or None.
    Runs in the consumer's thread (``consumer`` is the ``AIOKafkaConsumer``); a seek drops the
    partition's buffered records (``Fetcher.seek_to``).
    """
    assigned = sorted(consumer.assignment())
    if not assigned:
        return {}
    found = await consumer._coordinator.fetch_committed_offsets(assigned)  # one request (aiokafka pinned)
    committed: dict[Any, int | None] = {}
    for tp in assigned:
        offset = found[tp].offset if tp in found else -1
        committed[tp] = offset if offset >= 0 else None
    plan = seek_plan(committed, skip_topics)
    for tp, at in plan.to.items():
        consumer.seek(tp, at)
    if plan.reset and reset == "earliest":
        await consumer.seek_to_beginning(*plan.reset)
    elif plan.reset and reset == "latest":
        await consumer.seek_to_end(*plan.reset)
    if plan.reset:
        log.debug("partitions without a committed offset reset", partitions=len(plan.reset), to=reset)
    return committed


class _ConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    async def seek_to_committed(self) -> Mapping[Any, int]:  # None for no commit, as upstream
        """Faust's ``perform_seek`` (after every recovery and rebalance, and whenever records
        arrive while the flow is stopped): every stream partition to its committed offset, or
        to its start when it has none (see the module docstring, "Seek after a rebalance")."""
        consumer = self._ensure_consumer()
        changelogs = set(self.app.tables.changelog_topics)
        reset = str(self.app.conf.consumer_auto_offset_reset)
        committed: Mapping[Any, int] = await self.call_thread(seek_committed_or_reset, consumer, changelogs, reset)
        return committed

    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        consumer._fetch_max_wait_ms = int(self.app.conf.leitstand.consumer_fetch_max_wait_ms)
        pace_metadata_refresh(consumer._client)
        quiet_repeats()  # after the worker's logging config: a repeated failure logged once per 10 s
        link = getattr(self.app, "broker_link", None)
        if link is not None:
            link.observe(consumer._client)
        return consumer


def missing_head(acked: Collection[int], committed: int | None, gap_covers: Callable[[int], bool]) -> int | None:
    """The committed offset, if records after it were acknowledged but it was not (and it is not
    a known gap in the log); else ``None``. See the module docstring, "No commit past a record
    never acknowledged"."""
    if not acked or committed is None or committed <= 0:
        return None  # upstream keeps no commit at 0 (it stores None); a new group starts at the log's start
    if min(acked) <= committed or gap_covers(committed):
        return None
    return committed


class HeadHoles:
    """Per partition, the offset held back and since when: ``observe`` says what to do."""

    def __init__(self, reseek_after_s: float = HEAD_HOLE_RESEEK_S) -> None:
        self.reseek_after_s = reseek_after_s
        self._since: dict[Any, tuple[int, float, float]] = {}  # tp -> (offset, first seen, last re-read or first seen)

    def observe(self, tp: Any, missing: int | None, now: float) -> tuple[str, float]:
        """Record what ``missing_head`` found. Returns (what, seconds held): ``"new"`` a hole
        first seen, ``"held"`` still waiting, ``"reread"`` held ``reseek_after_s`` since it was
        first seen or last read again (so a failed re-read is retried), ``"filled"`` the hole is
        gone, ``""`` nothing held."""
        held = self._since.get(tp)
        if missing is None:
            if held is None:
                return "", 0.0
            del self._since[tp]
            return "filled", now - held[1]
        if held is None or held[0] != missing:
            self._since[tp] = (missing, now, now)
            return "new", 0.0
        if now - held[2] < self.reseek_after_s:
            return "held", now - held[1]
        self._since[tp] = (missing, held[1], now)
        return "reread", now - held[1]

    def clear(self) -> None:
        self._since.clear()


class _Consumer(faust_aiokafka.Consumer):
    def _new_consumer_thread(self) -> Any:
        return _ConsumerThread(self, loop=self.loop, beacon=self.beacon)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_holes = HeadHoles()
        self._reread_tasks: set[asyncio.Task[None]] = set()

    def _new_offset(self, tp: Any) -> int | None:
        acked = self._acked[tp]
        missing = missing_head(acked, self._committed_offset[tp], self._gap[tp].overlaps_point)
        what, held_s = self._head_holes.observe(tp, missing, time.monotonic())
        where = {"topic": tp.topic, "partition": tp.partition}
        if what == "filled":
            log.info("commit no longer held: the record at the commit was acknowledged", **where, held_s=round(held_s, 3))
        if missing is None:
            offset: int | None = super()._new_offset(tp)
            return offset
        if what == "new":
            log.info(
                "commit held: the record at the commit is not acknowledged, later ones are",
                **where,
                offset=missing,
                acknowledged_from=min(acked),
            )
        elif what == "reread":
            HEAD_HOLE_REREADS.inc()
            log.warning(
                "a record was never acknowledged while later ones were; reading the partition again from it",
                **where,
                offset=missing,
                acknowledged_from=min(acked),
                held_s=round(held_s, 1),
            )
            task = asyncio.ensure_future(self._reread(tp, missing))
            self._reread_tasks.add(task)
            task.add_done_callback(self._reread_tasks.discard)
        return None  # no commit for this partition until the record at its commit is acknowledged

    async def _reread(self, tp: Any, missing: int) -> None:
        """Seek back to the record held back, unless retention deleted it (then it is a gap: the
        commit may pass it, as upstream would have done at once)."""
        try:
            start = (await self.earliest_offsets(tp)).get(tp)
            if start is not None and start > missing:
                log.warning(
                    "records deleted by retention before they were read",
                    topic=tp.topic,
                    partition=tp.partition,
                    offsets=f"{missing}..{start - 1}",
                )
                self._gap[tp].addi(missing, start)
                return
            await self.seek(tp, missing)
        except Exception as exc:  # not assigned any more (a rebalance seeks anyway), broker away: next commit retries
            log.info("re-reading a partition failed; retried at a later commit", topic=tp.topic, partition=tp.partition, error=repr(exc))

    async def perform_seek(self) -> None:
        self._head_holes.clear()  # every partition goes back to its commit anyway
        await super().perform_seek()


class _Producer(faust_aiokafka.Producer):
    def _new_producer(self, transactional_id: str | None = None) -> Any:
        producer = super()._new_producer(transactional_id)
        pace_metadata_refresh(producer.client)
        return producer


class _Transport(faust_aiokafka.Transport):
    Consumer = _Consumer
    Producer = _Producer


class LeitstandWeb(faust_web_aiohttp.Web):
    """Faust's aiohttp web driver with bounded connections: at most ``MAX_HTTP_CONNECTIONS`` at
    once, and a connection that sends no complete request for ``HTTP_IDLE_TIMEOUT_S`` (a new one
    that never finishes its headers included) is closed. aiohttp's defaults (no limit, 3630 s)
    let a local process holding half-open connections take every descriptor of the worker:
    webhook deliveries then failed with ``Too many open files`` (measured)."""

    def __init__(self, app: Any, **kwargs: Any) -> None:
        super().__init__(app, **kwargs)
        self._runner = CappedRunner(self.web_app, access_log=None, keepalive_timeout=HTTP_IDLE_TIMEOUT_S)


class LeitstandApp(faust.App):
    """A Faust app whose consumer uses ``_Transport`` (see the module docstring) and whose web
    server is ``LeitstandWeb``."""

    def _new_web(self) -> Any:
        return LeitstandWeb(self)

    #: set by ``streams.app.create_app``: the consumer's broker link, read by ``/ready``
    broker_link: BrokerLink
    #: what ``/ready`` reports beside readiness: a condition that does not stop this worker from
    #: working but that an operator must hear of (name -> the current finding, or None)
    readiness_warnings: dict[str, Callable[[], str | None]]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.readiness_warnings = {}

    def _new_transport(self) -> Any:
        return _Transport(self.conf.broker_consumer, self)
