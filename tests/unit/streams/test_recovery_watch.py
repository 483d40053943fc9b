"""The recovery watch (streams/recovery_watch.py): when a table recovery has waited long enough
for a changelog record to rejoin the group, and when it must leave it alone.

A wedged recovery cannot be produced on demand (it appeared in 1 of 16 critical scale-out runs under
load), so ``check`` runs against a stand-in of Faust's recovery state and consumer thread, named
as such; the decision itself is the pure ``stalled_for``."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from streams.recovery_watch import RecoveryWatch, stalled_for

times = st.floats(0, 1e6, allow_nan=False)


@given(started=times, received=st.lists(times, max_size=5), remaining=st.integers(-3, 50), now=times)
def test_stalled_for_counts_from_the_last_record_and_only_while_records_remain(
    started: float, received: list[float], remaining: int, now: float
) -> None:
    waited = stalled_for(started, received, remaining, now)
    assert waited >= 0
    if remaining <= 0:
        assert waited == 0
    else:
        assert waited == max(0.0, now - max([started, *received]))


def test_no_recovery_started_is_no_stall() -> None:
    assert stalled_for(None, [], 10, 100.0) == 0


class StandInApp:
    """Test double of the parts of a Faust app the watch reads: recovery state and the consumer
    thread's loop and group coordinator."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.rejoins = 0
        self.remaining = 5
        recovery = SimpleNamespace(in_recovery=True, _recovery_started_at=0.0, _active_events_received_at={})
        recovery.active_remaining_total = lambda: self.remaining
        self.tables = SimpleNamespace(recovery=recovery)
        coordinator = SimpleNamespace(request_rejoin=self._rejoin)
        consumer = SimpleNamespace(_coordinator=coordinator)
        self.consumer = SimpleNamespace(_thread=SimpleNamespace(thread_loop=loop, _ensure_consumer=lambda: consumer))

    def _rejoin(self) -> None:
        self.rejoins += 1


def test_a_stalled_recovery_rejoins_once_per_stall_period_and_a_moving_one_never() -> None:
    loop = asyncio.new_event_loop()
    try:
        app: Any = StandInApp(loop)
        now = [0.0]
        watch = RecoveryWatch(app, stall_s=20.0, clock=lambda: now[0])
        recovery = app.tables.recovery
        for t in (5.0, 10.0, 15.0):  # records keep arriving: never a rejoin
            now[0] = t
            recovery._active_events_received_at["tp"] = t - 1.0
            assert not watch.check()
        now[0] = 14.0 + 20.0  # last record at 14.0, 20 s of silence
        assert watch.check()
        now[0] = 40.0
        assert not watch.check(), "one rejoin per stall period, not one per check"
        now[0] = 54.5
        assert watch.check()
        app.remaining = 0  # caught up: nothing to wait for
        now[0] = 200.0
        assert not watch.check()
        recovery.in_recovery = False
        app.remaining = 5
        assert not watch.check()
        loop.run_until_complete(asyncio.sleep(0))  # the rejoins were scheduled on the consumer's loop
        assert app.rejoins == 2 == watch.rejoins
    finally:
        loop.close()
