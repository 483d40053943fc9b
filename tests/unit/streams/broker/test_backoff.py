"""The pause between failed metadata refreshes (streams/broker/backoff.py), and read_ahead."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator

from hypothesis import given
from hypothesis import strategies as st

from streams.broker.backoff import CAP_S, FIRST_S, Backoff, pace_metadata_refresh
from streams.kafka_io import read_ahead


@given(st.lists(st.booleans(), max_size=200))
def test_pauses_grow_to_the_cap_and_start_over_after_a_success(outcomes: list[bool]) -> None:
    backoff, previous = Backoff(), 0.0
    for ok in outcomes:
        if ok:
            backoff.reset()
            previous = 0.0
            continue
        delay = backoff.next_delay()
        assert FIRST_S <= delay <= CAP_S
        assert delay >= previous  # never shorter while failures go on
        assert delay == min(CAP_S, max(FIRST_S, previous * 2))
        previous = delay


class _Client:
    """Stands in for aiokafka's client: only the one method the wrapper replaces."""

    def __init__(self, answers: list[bool]) -> None:
        self.answers = answers
        self.calls: list[float] = []

    async def _metadata_update(self, cluster_metadata: object, topics: object) -> bool:
        self.calls.append(time.monotonic())
        return self.answers.pop(0)


def test_a_failed_refresh_pauses_the_next_and_a_good_one_does_not() -> None:
    client = _Client([False, False, False, True, True])

    async def run() -> list[bool]:
        pace_metadata_refresh(client, Backoff(first_s=0.05, cap_s=0.1))
        return [await client._metadata_update(None, set()) for _ in range(5)]

    t0 = time.monotonic()
    assert asyncio.run(run()) == [False, False, False, True, True]
    gaps = [b - a for a, b in zip(client.calls, client.calls[1:])]
    assert gaps[0] >= 0.05 and gaps[1] >= 0.1 and gaps[2] >= 0.1  # paused after each failure
    assert gaps[3] < 0.05  # none after a success
    assert time.monotonic() - t0 < 5


def test_the_real_aiokafka_client_still_has_the_method_we_wrap() -> None:
    from aiokafka.client import AIOKafkaClient

    assert asyncio.iscoroutinefunction(AIOKafkaClient._metadata_update)


def test_read_ahead_yields_while_the_source_blocks() -> None:
    """A pipe that delivers slowly: each item arrives while the source waits for the next
    (it sent nothing until end of input when the loop itself blocked on the read)."""
    gate = threading.Event()

    def source() -> Iterator[int]:
        yield 1
        assert gate.wait(10), "item 1 was not handed on while the source waited"
        yield 2

    async def run() -> list[int]:
        got = []
        async for item in read_ahead(source()):
            got.append(item)
            if item == 1:
                gate.set()  # reached while the source still blocked
        return got

    assert asyncio.run(run()) == [1, 2]


def test_read_ahead_raises_what_the_source_raised() -> None:
    def source() -> Iterator[int]:
        yield 1
        raise OSError("read failed")

    async def run() -> list[int]:
        return [item async for item in read_ahead(source())]

    try:
        asyncio.run(run())
    except OSError as exc:
        assert "read failed" in str(exc)
    else:
        raise AssertionError("the source's error was swallowed")


def test_a_repeated_failure_is_logged_once_per_interval_with_the_count_held_back() -> None:
    import logging

    from streams.broker.backoff import RepeatFilter

    now = [0.0]
    f = RepeatFilter(every_s=10.0, clock=lambda: now[0])

    def rec(msg: str) -> logging.LogRecord:
        return logging.LogRecord("aiokafka", logging.ERROR, __file__, 1, msg, (1,), None)

    assert f.filter(rec("Unable connect to node with id %s"))
    held = [f.filter(rec("Unable connect to node with id %s")) for _ in range(500)]
    assert not any(held)
    assert f.filter(rec("Unable to update metadata from %s"))  # another kind of line is not held
    now[0] = 10.5
    r = rec("Unable connect to node with id %s")
    assert f.filter(r)
    assert r.getMessage() == "Unable connect to node with id 1 [500 more like this in the last 10 s not logged]"


def test_only_a_topic_with_claimed_but_no_readable_records_is_reported() -> None:
    from streams.broker.probe import unreadable_topics

    begins = {("a", 0): 0, ("a", 1): 0, ("b", 0): 0, ("b", 1): 5, ("c", 0): 0}
    ends = {("a", 0): 1, ("a", 1): 0, ("b", 0): 3, ("b", 1): 9, ("c", 0): 0}
    # a: one partition claims a record nobody can read; b: partition 1 reads; c: empty
    assert unreadable_topics(begins, ends, readable={("b", 1)}) == ["a"]
    assert unreadable_topics(begins, ends, readable={("a", 1), ("b", 0)}) == []


@given(
    st.dictionaries(
        st.tuples(st.sampled_from("xyz"), st.integers(0, 3)),
        st.tuples(st.integers(0, 50), st.integers(0, 50)),
        max_size=12,
    ),
    st.data(),
)
def test_a_topic_with_anything_readable_is_never_reported(offsets: dict, data: st.DataObject) -> None:
    from streams.broker.probe import unreadable_topics

    begins = {tp: b for tp, (b, _) in offsets.items()}
    ends = {tp: b + e for tp, (b, e) in offsets.items()}
    readable = set(data.draw(st.lists(st.sampled_from(sorted(offsets)), max_size=4))) if offsets else set()
    reported = unreadable_topics(begins, ends, readable)
    assert not {tp[0] for tp in readable} & set(reported)
    for topic in reported:  # each claims records somewhere
        assert any(ends[tp] > begins[tp] for tp in ends if tp[0] == topic)
