"""Table recovery that reads nothing is restarted, not waited for.

After a rebalance, Faust rebuilds the tables of the partitions a worker now owns from their
changelog topics, and the worker processes nothing until that is done. In
``tests/integration/test_scale_out.py`` (critical role, a peer SIGKILLed mid-stream) the survivor
sometimes received **no changelog record at all** after the rebalance, on either broker: Faust
logged "No event received for active tp ... since recovery start" for every partition for the two
minutes the test waited, and no camera event of any pool, including the survivor's own, was
alarmed in that time (1 clean-clone CI run on Tansu; 1 of 16 critical runs under stress-ng, on Apache
Kafka). Where the fetch path wedges (a fetch that never completes keeps aiokafka from sending the
next one to that broker; Faust's fetch loop waiting on a suspended flow) was not pinned down.

A group rejoin resets all of it: aiokafka cancels its in-flight fetches with the old assignment,
Faust suspends and resumes its flow and starts recovery afresh. So a worker whose recovery has
had records left to read but received none for ``stall_s`` asks its consumer to rejoin the group,
with one warning line, and again after each further ``stall_s`` while that lasts. A recovery that
is slow but moving (any changelog record received) is left alone.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable
from typing import Any

import structlog

log = structlog.get_logger(__name__)

#: seconds a recovery with records left may go without receiving one before the group is rejoined
RECOVERY_STALL_S = 10.0
#: how often the watch looks
CHECK_EVERY_S = 2.0


def stalled_for(started_at: float | None, received_at: Iterable[float], remaining: int, now: float) -> float:
    """How long a recovery has waited for its next changelog record; 0 when it is not waiting.

    Counted from the last record received, or from the start when none came yet; ``remaining``
    is the number of changelog records recovery still needs (0: done, nothing to wait for).
    """
    if started_at is None or remaining <= 0:
        return 0.0
    return max(0.0, now - max([started_at, *received_at]))


class RecoveryWatch:
    """Restarts a stalled table recovery by rejoining the consumer group."""

    def __init__(self, app: Any, stall_s: float = RECOVERY_STALL_S, clock: Callable[[], float] = time.monotonic) -> None:
        self.app = app
        self.stall_s = stall_s
        self.clock = clock
        #: when we last asked for a rejoin: at most one per ``stall_s``
        self.kicked_at: float | None = None
        self.rejoins = 0

    def waiting_s(self, now: float) -> float:
        recovery = self.app.tables.recovery
        if not recovery.in_recovery:
            return 0.0
        return stalled_for(
            recovery._recovery_started_at,
            recovery._active_events_received_at.values(),
            recovery.active_remaining_total(),
            now,
        )

    def check(self) -> bool:
        """Rejoin if recovery has been stalled for ``stall_s`` since the last rejoin; True if it did."""
        now = self.clock()
        waited = self.waiting_s(now)
        if waited < self.stall_s or (self.kicked_at is not None and now - self.kicked_at < self.stall_s):
            return False
        recovery = self.app.tables.recovery
        log.warning(
            "table recovery has received no changelog record although records remain; rejoining the consumer group to restart it",
            waited_s=round(waited, 1),
            remaining=recovery.active_remaining_total(),
        )
        self.kicked_at = now
        self.rejoins += 1
        thread = self.app.consumer._thread
        coordinator = thread._ensure_consumer()._coordinator
        thread.thread_loop.call_soon_threadsafe(coordinator.request_rejoin)
        return True

    async def run(self) -> None:
        while True:
            await asyncio.sleep(CHECK_EVERY_S)
            try:
                self.check()
            except Exception as exc:  # a watch must never take the worker down
                log.warning("recovery watch failed", error=repr(exc))
