"""No commit past a record never acknowledged (streams/faust_transport.py).

The loss itself needs a stressed Tansu broker to appear (``tests/integration/
test_control_recovery.py``); here the decision (``missing_head``, ``HeadHoles``) is checked as
pure code, and ``_Consumer`` (built by ``create_app``, never started) is checked with Faust's own
bookkeeping, its seek and earliest-offset calls replaced by recorders (the broker's side, named
as such)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from faust.types import TP
from hypothesis import given
from hypothesis import strategies as st

from streams.app import create_app
from streams.faust_transport import HeadHoles, missing_head
from streams.metrics import HEAD_HOLE_REREADS
from streams.settings import Settings


def _no_gap(_: int) -> bool:
    return False


@given(acked=st.sets(st.integers(0, 60), max_size=30), committed=st.one_of(st.none(), st.integers(0, 60)), gaps=st.sets(st.integers(0, 60)))
def test_only_a_committed_offset_never_acknowledged_nor_a_gap_is_held(acked: set[int], committed: int | None, gaps: set[int]) -> None:
    got = missing_head(sorted(acked), committed, gaps.__contains__)
    if got is not None:
        assert got == committed and got not in acked and got not in gaps
        assert min(acked) > got  # later records were acknowledged: upstream would commit past it
    elif acked and committed is not None and committed > 0:
        assert min(acked) <= committed or committed in gaps


def test_the_measured_case_is_held_and_the_normal_ones_pass() -> None:
    assert missing_head([28, 29, 30], 27, _no_gap) == 27  # op-R02-9 at offset 27, group at 27
    assert missing_head([27, 28], 27, _no_gap) is None
    assert missing_head([], 27, _no_gap) is None
    assert missing_head([28], 27, lambda o: o == 27) is None  # a gap Faust knows of
    assert missing_head([5], None, _no_gap) is None  # a new group: seek_plan starts it at the log's start


def test_a_hole_is_read_again_after_the_delay_and_retried() -> None:
    holes, tp = HeadHoles(reseek_after_s=5.0), ("t", 1)
    assert holes.observe(tp, None, 99.0) == ("", 0.0)
    assert holes.observe(tp, 27, 100.0) == ("new", 0.0)
    assert holes.observe(tp, 27, 104.5) == ("held", 4.5)
    assert holes.observe(tp, 27, 105.0) == ("reread", 5.0)
    assert holes.observe(tp, 27, 106.0) == ("held", 6.0)  # the clock starts again: a failed re-read is retried later
    assert holes.observe(tp, 27, 110.0) == ("reread", 10.0)
    assert holes.observe(tp, 40, 111.0) == ("new", 0.0)  # another offset: a new hole
    assert holes.observe(tp, None, 112.5) == ("filled", 1.5)
    assert holes.observe(tp, None, 113.0) == ("", 0.0)
    assert holes.observe(("t", 2), 3, 113.0) == ("new", 0.0)  # partitions are independent
    holes.clear()
    assert holes.observe(("t", 2), 3, 200.0) == ("new", 0.0)


class BrokerSide:
    """Recorder standing in for the broker side of ``_Consumer``: the seeks it is asked for, and
    a log that starts at ``start`` (retention)."""

    def __init__(self, start: int) -> None:
        self.start = start
        self.sought: list[tuple[TP, int]] = []

    async def seek(self, partition: TP, offset: int) -> None:
        self.sought.append((partition, offset))

    async def earliest_offsets(self, *partitions: TP) -> dict[TP, int]:
        return {p: self.start for p in partitions}


def _consumer(tmp_path: Path, broker: BrokerSide, tp: TP, committed: int, acked: list[int]) -> Any:
    """The app's real ``_Consumer`` (never started), its broker side replaced by ``broker``, the
    re-read due at the second look."""
    c: Any = create_app(Settings(_env_file=None, data_dir=tmp_path)).consumer
    object.__setattr__(c, "seek", broker.seek)
    object.__setattr__(c, "earliest_offsets", broker.earliest_offsets)
    c._head_holes.reseek_after_s = 0.0
    c._committed_offset[tp] = committed
    c._acked[tp].extend(acked)
    return c


def test_the_consumer_holds_the_commit_and_reads_the_partition_again(tmp_path: Path) -> None:
    tp, broker = TP("signals.approvals", 1), BrokerSide(start=0)

    async def run() -> tuple[int | None, int | None, int | None]:
        c = _consumer(tmp_path, broker, tp, committed=27, acked=[28, 29, 30])
        first = c._new_offset(tp)  # held, first seen
        before = HEAD_HOLE_REREADS._value.get()
        second = c._new_offset(tp)  # held, due: read again
        await asyncio.sleep(0.01)
        assert HEAD_HOLE_REREADS._value.get() == before + 1
        c._acked[tp].insert(0, 27)  # the record read again is acknowledged
        third = c._new_offset(tp)
        return first, second, third

    first, second, third = asyncio.run(run())
    assert (first, second) == (None, None)
    assert broker.sought == [(tp, 27)]
    assert third == 31  # then the commit moves on over all of them


def test_records_deleted_by_retention_are_let_through(tmp_path: Path) -> None:
    tp, broker = TP("sensors.pool", 0), BrokerSide(start=50)  # retention moved the start to 50

    async def run() -> int | None:
        c = _consumer(tmp_path, broker, tp, committed=27, acked=[50, 51])
        c._new_offset(tp)
        c._new_offset(tp)
        await asyncio.sleep(0.01)
        offset: int | None = c._new_offset(tp)
        return offset

    assert asyncio.run(run()) == 52
    assert broker.sought == []
