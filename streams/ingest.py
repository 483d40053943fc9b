"""The shell's half of the decoding path: Faust batches in, records out, failures dead-lettered.

Every agent that reads an input topic iterates ``decoded_batches``, and every agent that sends
dead letters sends them with ``send_dead_letters``; that is how "nothing fails silently" holds
for all topics at once.

Why a failed dead letter used to cost valid records (read in faust-streaming 0.15.3:
``faust/streams.py`` ``Stream.take_events``, ``faust/agents/agent.py`` ``_execute_actor``,
``faust/app/base.py`` ``_on_agent_error``, ``faust/transport/consumer.py`` ``_new_offset``):

1. ``take_events`` yields each batch inside ``try/finally`` and the ``finally`` acknowledges
   every event of the batch. When the code consuming the batch raises (a dead letter over the
   producer's 1 MB limit: ``MessageSizeTooLargeError``), the generator is left suspended and is
   finalised later (``aclose``: ``GeneratorExit`` at the ``yield``); the ``finally`` then
   acknowledges the whole batch, processed or not.
2. ``Agent._execute_actor`` catches the agent's exception, calls ``App._on_agent_error`` ->
   ``Consumer.on_task_error``, which *commits* at once, and the supervisor restarts the agent on
   the same stream: the unprocessed rest of the batch is never seen again.
3. Not acknowledging alone would not be enough in a worker that keeps running: ``_new_offset``
   commits the next run of acknowledged offsets past an unacknowledged one when the group has no
   committed offset yet, or when the hole is the single offset right after the committed one
   (that second case our consumer now holds and reads again: ``streams/faust_transport.py``, "No
   commit past a record never acknowledged"; the fail-stop below covers both).

So ``decoded_batches`` holds one extra reference on each message of a batch (``Message.incref``)
until the caller comes back for the next batch, i.e. until the batch is done. If anything
escapes a batch instead (an exception in this module, the caller's loop body raising, a
cancellation), the reference stays: ``take_events``' acknowledgement cannot mark the batch's
offsets done, so no commit covers them. Unless the worker is stopping anyway, it then crashes
the app (fail-stop): the worker exits non-zero rather than restarting the agent past the hole
(point 3), and the next start re-reads from the last commit (at-least-once; every effect is
idempotent). A record that crashes an agent's own code therefore stops the worker loudly instead
of vanishing; what is merely *bad* never gets that far, it is dead-lettered.

``send_dead_letters`` itself does not raise on a refused dead letter: it waits for the broker's
acknowledgement of each one, retries retriable errors (broker unavailable, leader moving) with a
bounded backoff for as long as it takes, and replaces a dead letter the broker refuses for good
(too large, or any other non-retriable error) by one without the raw bytes. The dead-letter
counter rises only for dead letters the broker accepted, so ``/metrics`` and the topic agree.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Container, Iterable, Mapping, Sequence
from contextlib import aclosing
from typing import Any, Generic, NamedTuple, TypeVar, overload

import structlog
from aiokafka.errors import KafkaConnectionError, KafkaError, KafkaTimeoutError, ProducerClosed

from .codec import DecodeFailure, RawMessage, TopicDecoder, dead_letter, without_raw
from .metrics import DEADLETTER_SEND_FAILURES, DEADLETTERS, RECORDS_DECODED
from .records import DeadLetter, Record, encode

log = structlog.get_logger(__name__)
R = TypeVar("R", bound=Record)

#: first and longest wait between rounds of retrying dead letters the broker did not take
RETRY_FIRST_S = 0.2
RETRY_MAX_S = 5.0


def raw_message(event: Any) -> RawMessage:
    m = event.message
    return RawMessage(m.topic, m.partition, m.offset, m.key, m.value)


# --- sending dead letters -------------------------------------------------------------------


def _causes(exc: BaseException) -> list[BaseException]:
    """``exc`` and what it wraps (Faust wraps client errors in ``ProducerSendError``)."""
    chain: list[BaseException] = []
    seen: BaseException | None = exc
    while seen is not None and seen not in chain and len(chain) < 8:
        chain.append(seen)
        seen = seen.__cause__ or seen.__context__
    return chain


def is_retriable(exc: BaseException) -> bool:
    """Will sending the same dead letter again succeed once the broker is back?"""
    for e in _causes(exc):
        if isinstance(e, (KafkaTimeoutError, KafkaConnectionError, asyncio.TimeoutError, ConnectionError)):
            return True
        if isinstance(e, KafkaError):
            return bool(getattr(e, "retriable", False))
    return False


def _is_shutdown(exc: BaseException) -> bool:
    return any(isinstance(e, ProducerClosed) for e in _causes(exc))


async def _send_round(topic: Any, dead: Sequence[DeadLetter]) -> list[BaseException | None]:
    """Send all, then wait for every acknowledgement: per dead letter, None or the error."""
    futures: list[Any] = []
    for dl in dead:
        try:
            futures.append(await topic.send(key=dl.source_topic.encode(), value=encode(dl)))
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # refused before it left (size check in the client)
            futures.append(exc)
    outcomes: list[BaseException | None] = []
    for fut in futures:
        if isinstance(fut, BaseException):
            outcomes.append(fut)
            continue
        try:
            await fut
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # refused by the broker, or never delivered
            outcomes.append(exc)
        else:
            outcomes.append(None)
    return outcomes


async def send_dead_letters(topic: Any, dead: Sequence[DeadLetter]) -> None:
    """Put ``dead`` on ``topic`` and return once the broker has acknowledged each one.

    Retriable errors are retried with a backoff of at most ``RETRY_MAX_S``, without end: the
    caller must not go on to acknowledge its batch while a dead letter is missing. A dead
    letter refused for good is sent again without its raw bytes (``without_raw``); if even that
    is refused it is logged and counted in ``leitstand_deadletter_send_failures_total``. Only
    accepted dead letters raise ``leitstand_deadletter_records_total``. A closed producer
    (worker shutting down) raises, so the batch is not acknowledged and is read again later.
    """
    pending = list(dead)
    delay, attempt = RETRY_FIRST_S, 0
    while pending:
        attempt += 1
        outcomes = await _send_round(topic, pending)
        retry: list[DeadLetter] = []
        backoff = False
        for dl, exc in zip(pending, outcomes, strict=True):
            if exc is None:
                DEADLETTERS.labels(dl.source_topic, dl.reason_code).inc()
            elif _is_shutdown(exc):
                raise exc
            elif is_retriable(exc):
                retry.append(dl)
                backoff = True
            elif dl.raw_b64 or dl.key_b64:
                log.warning(
                    "dead letter refused, sending it without the raw bytes",
                    topic=dl.source_topic,
                    partition=dl.partition,
                    offset=dl.offset,
                    error=repr(exc)[:300],
                )
                retry.append(without_raw(dl, type(exc).__name__))
            else:
                log.error(
                    "dead letter refused even without the raw bytes; the record stays on its source topic",
                    topic=dl.source_topic,
                    partition=dl.partition,
                    offset=dl.offset,
                    raw_sha256=dl.raw_sha256,
                    error=repr(exc)[:300],
                )
                DEADLETTER_SEND_FAILURES.labels(dl.source_topic, dl.reason_code).inc()
        pending = retry
        if pending and backoff:
            log.warning("dead letters not acknowledged, retrying", pending=len(pending), attempt=attempt, retry_in_s=delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, RETRY_MAX_S)


# --- batches --------------------------------------------------------------------------------


def _hold(events: Sequence[Any]) -> None:
    """One more reference per message: ``take_events`` cannot acknowledge it while held."""
    for e in events:
        e.message.incref()


def _release(events: Sequence[Any]) -> None:
    for e in events:
        e.message.decref()


def _stopping(stream: Any) -> bool:
    app = getattr(stream, "app", None)
    return bool(getattr(stream, "should_stop", False) or getattr(app, "should_stop", False))


async def _fail_stop(stream: Any, events: Sequence[Any], exc: BaseException) -> None:
    """A batch was left unfinished while the worker runs on: stop the worker (see module doc)."""
    positions = sorted({(e.message.topic, e.message.partition) for e in events})
    first = min((e.message.offset for e in events), default=-1)
    log.error(
        "a batch was left unfinished; stopping the worker so no commit passes its records",
        partitions=[f"{t}:{p}" for t, p in positions],
        first_offset=first,
        records=len(events),
        error=repr(exc)[:300],
    )
    app = getattr(stream, "app", None)
    if app is not None:
        reason = (
            exc
            if isinstance(exc, Exception)
            else RuntimeError(f"batch of {len(events)} records from {positions} abandoned unfinished ({type(exc).__name__})")
        )
        await app.crash(reason)


class Decoded(NamedTuple):
    """One batch through the decoders."""

    records: list[tuple[RawMessage, Any]]  # valid, in arrival order (across topics), with their messages
    dead: list[DeadLetter]  # of the reported topics
    decoded: dict[str, int]  # per reported topic, records decoded (for the counter)
    refused: list[tuple[RawMessage, Any]]  # refused for their event time only (``DecodeFailure.parsed``)


def _decode(
    decoder_of: Callable[[str], TopicDecoder[Any]], raws: Iterable[RawMessage], now: float, reported: Callable[[str], bool]
) -> Decoded:
    records: list[tuple[RawMessage, Any]] = []
    dead: list[DeadLetter] = []
    decoded: dict[str, int] = {}
    refused: list[tuple[RawMessage, Any]] = []
    for raw in raws:
        out = decoder_of(raw.topic).decode_message(raw, now=now)
        if isinstance(out, DecodeFailure):
            if reported(raw.topic):
                dead.append(dead_letter(raw, out, now))
            if out.parsed is not None:
                refused.append((raw, out.parsed))
            continue
        if reported(raw.topic):
            decoded[raw.topic] = decoded.get(raw.topic, 0) + 1
        records.append((raw, out))
    return Decoded(records, dead, decoded, refused)


class Positioned(NamedTuple, Generic[R]):
    """A decoded record with the message it came from (its partition and offset, and the raw
    bytes for a dead letter the agent may still decide on, such as a frame that came too late)."""

    raw: RawMessage
    record: R


class Batch(NamedTuple, Generic[R]):
    """One batch: its valid records with their positions, and per ``(topic, partition)`` the
    offset after the last message of the batch (dead-lettered ones included), which is what a
    checkpoint records once the batch is done."""

    records: Sequence[Positioned[R]]
    ends: Mapping[tuple[str, int], int]
    #: messages in the batch, dead letters included (a full batch: the consumer is behind)
    size: int
    #: records refused only for their event time (dead-lettered ``clock_skew``), in arrival order:
    #: a watch of the devices' clocks (data quality) reads them beside ``records``
    refused: Sequence[Positioned[R]] = ()

    def every_parsed(self) -> list[Positioned[R]]:
        """``records`` and ``refused`` in arrival order (per partition, by offset)."""
        if not self.refused:
            return list(self.records)
        return sorted((*self.records, *self.refused), key=lambda p: (p.raw.topic, p.raw.partition, p.raw.offset))


#: what one reader of a topic hands each of several folds of the same batch (``intersection_frames.py``)
BatchHandler = Callable[[Batch[R]], Awaitable[None]]


def batch_ends(raws: Iterable[RawMessage]) -> dict[tuple[str, int], int]:
    """Per topic partition, the offset after the last of ``raws``."""
    ends: dict[tuple[str, int], int] = {}
    for r in raws:
        tp = (r.topic, r.partition)
        ends[tp] = max(ends.get(tp, 0), r.offset + 1)
    return ends


async def positioned_batches(
    stream: Any,
    decoder: TopicDecoder[R],
    deadletter_topic: Any | None,
    *,
    max_batch: int,
    within_s: float,
) -> AsyncIterator[Batch[R]]:
    """``decoded_batches`` for agents whose state carries its source offsets
    (``agents/wiring.py``, exact recovery): each record with its message, and every batch, even
    one of dead letters only, so the batch's checkpoint can be written."""
    inner = _batches(stream, lambda _: decoder, deadletter_topic, lambda _: deadletter_topic is not None, max_batch, within_s)
    async with aclosing(inner):  # an exception at our yield reaches the batch loop's fail-stop at once
        async for raws, out in inner:
            refused = [Positioned(raw, rec) for raw, rec in out.refused]
            yield Batch([Positioned(raw, rec) for raw, rec in out.records], batch_ends(raws), len(raws), refused)


@overload
def decoded_batches(
    stream: Any,
    decoder: TopicDecoder[R],
    deadletter_topic: Any | None,
    *,
    max_batch: int,
    within_s: float,
    silent_topics: Container[str] = ...,
) -> AsyncIterator[Sequence[R]]: ...


@overload
def decoded_batches(
    stream: Any,
    decoder: Mapping[str, TopicDecoder[Any]],
    deadletter_topic: Any | None,
    *,
    max_batch: int,
    within_s: float,
    silent_topics: Container[str] = ...,
) -> AsyncIterator[Sequence[Record]]: ...


async def decoded_batches(
    stream: Any,
    decoder: TopicDecoder[Any] | Mapping[str, TopicDecoder[Any]],
    deadletter_topic: Any | None,
    *,
    max_batch: int,
    within_s: float,
    silent_topics: Container[str] = (),
) -> AsyncIterator[Sequence[Any]]:
    """Yield batches of valid records; send each failure to ``deadletter_topic``.

    ``decoder`` is one topic's decoder, or for an agent reading several topics a decoder per
    topic name; records come out in arrival order either way. Uses ``take_events`` so the
    partition and offset of each failure are known. A batch's offsets are acknowledged only
    after its dead letters are on the broker and the caller has come back for the next batch
    (at-least-once); a batch left unfinished is never acknowledged (see the module docstring).

    One agent per topic owns its dead letters and counters, so each bad record is reported
    exactly once: an agent reading a topic another agent already reports passes that topic in
    ``silent_topics`` (its failures are dropped, its records not counted), or
    ``deadletter_topic=None`` when it reports none of its topics.
    """
    decoder_of: Callable[[str], TopicDecoder[Any]] = (lambda _: decoder) if isinstance(decoder, TopicDecoder) else decoder.__getitem__

    def reported(topic: str) -> bool:
        return deadletter_topic is not None and topic not in silent_topics

    inner = _batches(stream, decoder_of, deadletter_topic, reported, max_batch, within_s)
    async with aclosing(inner):  # an exception at our yield reaches the batch loop's fail-stop at once
        async for _, out in inner:
            if out.records:
                yield [rec for _, rec in out.records]


async def _batches(
    stream: Any,
    decoder_of: Callable[[str], TopicDecoder[Any]],
    deadletter_topic: Any | None,
    reported: Callable[[str], bool],
    max_batch: int,
    within_s: float,
) -> AsyncGenerator[tuple[list[RawMessage], Decoded], None]:
    """Every batch's messages and its valid records (with their messages), dead letters sent
    first; the batch is held until the caller asks for the next one (see the module doc)."""
    batches = stream.take_events(max_batch, within=within_s)
    events: Sequence[Any] = ()
    try:
        async for events in batches:
            _hold(events)
            raws = [raw_message(e) for e in events]
            out = _decode(decoder_of, raws, time.time(), reported)
            if deadletter_topic is not None:
                await send_dead_letters(deadletter_topic, out.dead)
            for topic, count in out.decoded.items():
                RECORDS_DECODED.labels(topic).inc(count)
            yield raws, out
            _release(events)  # done: take_events acknowledges it when asked for the next batch
            events = ()
    except BaseException as exc:
        if events and not isinstance(exc, asyncio.CancelledError) and not _stopping(stream):
            await _fail_stop(stream, events, exc)
        raise
    finally:
        # unhooks take_events' processor from the stream now (a restarted agent reuses the
        # stream); its acknowledgement of a held batch only drops take_events' own reference
        await batches.aclose()
