"""A batch fetched before a seek is not handed over after it (streams/faust_transport.py,
``_Consumer.getmany``): the read offsets stay where the seek put them, so the records from the
commit on are read again instead of being dropped as already read."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import AsyncIterator
from typing import Any

import pytest
from faust.transport.drivers import aiokafka as faust_aiokafka

from streams.faust_transport import _Consumer


def _consumer() -> Any:
    c: Any = object.__new__(_Consumer)  # no app, no broker: only the batch logic under test
    c._seeks, c._sought, c._sought_tps = 0, {}, set()
    c._read_offset = defaultdict(lambda: None)
    return c


async def _drain(c: Any, seek_after: int | None) -> list[int]:
    """What Faust's ``_drain_messages`` does: hand over, then record the read offset; a seek to
    the commit (27) lands while the record at ``seek_after`` is being handed over."""
    handed = []
    async for tp, message in c.getmany(timeout=1.0):
        handed.append(message)
        if message == seek_after:  # perform_seek of this partition: back to the committed offset
            c._read_offset[tp] = 27
            c._seeks += 1
            c._sought[tp] = (c._seeks, 27)
        c._read_offset[tp] = message  # set_read_offset after the handover
    return handed


def test_the_rest_of_a_batch_is_dropped_at_a_seek_and_the_read_offset_restored(monkeypatch: pytest.MonkeyPatch) -> None:
    async def batch(self: Any, timeout: float) -> AsyncIterator[tuple[str, int]]:
        for offset in range(27, 36):
            yield "approvals-1", offset

    monkeypatch.setattr(faust_aiokafka.Consumer, "getmany", batch)
    c = _consumer()
    c._read_offset["frames-0"] = 500  # a partition the seek did not move
    c._sought["frames-0"] = (0, 400)  # ... sought long before this batch
    handed = asyncio.run(_drain(c, seek_after=28))
    assert handed == [27, 28]  # 29.. are not handed over after the seek
    assert c._read_offset["approvals-1"] == 27  # not 28: the next fetch's 27 and 28 are read again
    assert c._read_offset["frames-0"] == 500  # untouched: lower, Faust would count 401-499 as a gap
    c2 = _consumer()
    assert asyncio.run(_drain(c2, seek_after=None)) == list(range(27, 36))  # no seek: the whole batch
    assert c2._read_offset["approvals-1"] == 35
