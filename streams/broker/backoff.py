"""A pause between failed metadata refreshes of an aiokafka client while the broker is away.

Measured in a 30 s Apache Kafka outage: a worker wrote 122,000 log lines ("Unable connect to
node", "Unable to update metadata") and spun its CPU. aiokafka 0.14 refreshes metadata when a
connection fails (``AIOKafkaClient._get_conn`` calls ``force_metadata_update``), the refresh
connects again, fails at once on a refused loopback port, and every waiting fetcher, sender or
coordinator asks for the next refresh right away: a loop without a pause, ~4,000 attempts per
second per process. :func:`pace_metadata_refresh` puts a growing pause (0.1 s doubling to 1 s)
after each failed refresh and none after a good one, so a broker that is back is used at once
(at most 1 s later) and an absent one costs a few attempts per second.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

#: first pause after a failed metadata refresh (aiokafka's own retry_backoff_ms default)
FIRST_S = 0.1
#: longest pause: how much later than possible a client notices a broker that is back
CAP_S = 1.0


@dataclass
class Backoff:
    """Pauses that double from ``first_s`` up to ``cap_s``; ``reset`` after a success."""

    first_s: float = FIRST_S
    cap_s: float = CAP_S
    failures: int = 0

    def next_delay(self) -> float:
        """The pause after one more failure."""
        delay = min(self.cap_s, self.first_s * 2 ** min(self.failures, 32))
        self.failures += 1
        return delay

    def reset(self) -> None:
        self.failures = 0


def pace_metadata_refresh(client: Any, backoff: Backoff | None = None) -> None:
    """Wrap ``client._metadata_update`` (an ``AIOKafkaClient``) so a failed refresh is followed
    by a pause before the next one can start (aiokafka is pinned in requirements.lock; a unit
    test checks the method still exists, so an upgrade that renames it fails loudly)."""
    pace = backoff or Backoff()
    update = client._metadata_update

    async def paced_update(cluster_metadata: Any, topics: Any) -> Any:
        ok = await update(cluster_metadata, topics)
        if ok:
            pace.reset()
        else:
            await asyncio.sleep(pace.next_delay())
        return ok

    client._metadata_update = paced_update


#: the aiokafka loggers that repeat themselves while the broker is away
AIOKAFKA_LOGGERS = (
    "aiokafka",
    "aiokafka.conn",
    "aiokafka.client",
    "aiokafka.consumer.fetcher",
    "aiokafka.consumer.group_coordinator",
    "aiokafka.producer.sender",
)


class RepeatFilter(logging.Filter):
    """Lets one warning or error per (logger, message template) through every ``every_s``; the
    next one let through says how many like it were held back. Debug and info lines all pass.

    Even with the pause above, a worker's clients wrote about 1,300 lines in a 30 s outage and a
    command-line producer printed a hundred "Unable connect to node" lines on the terminal: the
    first line says what is wrong, the rest bury it.
    """

    def __init__(self, every_s: float = 10.0, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.every_s, self.clock = every_s, clock
        self.seen: dict[tuple[str, str], tuple[float, int]] = {}  # key -> (last let through, held since)

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return True  # debug and info are asked for explicitly: an operator debugging wants every line
        key = (record.name, str(record.msg))
        now = self.clock()
        last, held = self.seen.get(key, (None, 0))
        if last is not None and now - last < self.every_s:
            self.seen[key] = (last, held + 1)
            return False
        self.seen[key] = (now, 0)
        if held and last is not None:
            record.msg = f"{record.msg} [{held} more like this in the last {now - last:.0f} s not logged]"
        return True


def quiet_repeats(names: tuple[str, ...] = AIOKAFKA_LOGGERS, every_s: float = 10.0) -> None:
    """Attach one :class:`RepeatFilter` to each logger in ``names`` (again: nothing changes)."""
    for name in names:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RepeatFilter) for f in logger.filters):
            logger.addFilter(RepeatFilter(every_s))
