"""Publish synthetic detector frames to Kafka, paced to an accelerated clock, with a live line."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from aiokafka.errors import KafkaError
from rich.console import Console
from rich.live import Live

from simulators.city.frames import MALFORMED_KINDS, frames, malformed
from streams.broker.probe import BrokerUnreachable
from streams.kafka_io import producer
from streams.records import encode
from streams.settings import Settings

if TYPE_CHECKING:
    from aiokafka import AIOKafkaProducer

    from simulators.city import City, Emission
    from simulators.city.signal_plans import ClosedLoop

err = Console(stderr=True, highlight=False, soft_wrap=True)


async def produce_frames(
    settings: Settings,
    *,
    intersections: int,
    interval_s: float,
    steps: int,
    speed: float,
    start: datetime,
    seed: int,
    malformed_rate: float = 0.0,
    show: bool = False,
    stats: dict[str, Any] | None = None,
    stop_at: float | None = None,
) -> dict[str, Any]:
    """Send synthetic frames step by step, paced to ``speed`` (0: unpaced)."""
    stats = stats if stats is not None else {}
    stats.update(sent=0, malformed=0, sim_time=start.isoformat(), wall_s=0.0)
    rng = random.Random(seed + 7)
    topic = settings.topic("sensors.intersection")
    prod = producer(settings)
    await prod.start()
    paced = PacedSender(prod, speed)
    live = Live(console=err, refresh_per_second=4, transient=True) if show else None
    try:
        if live:
            live.start()
        last_step = -1
        for i, f in enumerate(frames(intersections=intersections, start=start, interval_s=interval_s, steps=steps, seed=seed)):
            step = i // intersections
            if step != last_step:  # a new interval: pace, maybe stop, show progress
                last_step = step
                stats["sim_time"] = f.event_time.isoformat()
                await paced.pace(step * interval_s)
                if stop_at is not None and time.monotonic() >= stop_at:
                    break
                if live:
                    live.update(_status_line(stats, paced.t0))
            value = _maybe_malformed(encode(f), rng, malformed_rate, stats)
            await paced.send_now(topic, f.intersection_id.encode(), value)
            stats["sent"] += 1
        if paced.pending:
            await paced.flush()
    finally:
        if live:
            live.stop()
        await prod.stop()
    stats["wall_s"] = time.monotonic() - paced.t0
    return stats


def _status_line(stats: dict[str, Any], t0: float) -> str:
    """The live line: simulated time, records sent, records per wall second since ``t0``."""
    return f"simulated {stats['sim_time']}  sent {stats['sent']:,}  {stats['sent'] / max(1e-9, time.monotonic() - t0):,.0f} records/s"


def _maybe_malformed(value: bytes, rng: random.Random, rate: float, stats: dict[str, Any]) -> bytes:
    """With probability ``rate``, a broken version of the frame (to exercise the dead-letter path).

    Draws nothing when ``rate`` is 0, so a run without malformed frames is the same for any seed.
    """
    if rate and rng.random() < rate:
        value = malformed(rng.choice(MALFORMED_KINDS), value, rng)
        stats["malformed"] += 1
    return value


class PacedSender:
    """Sends records so that ``offset_s`` dataset seconds pass per ``1 / speed`` wall seconds.

    Sends are pipelined; before sleeping (and every 5,000 records) it waits for the broker's
    acknowledgements, so a slow broker slows the replay instead of piling up memory.
    """

    def __init__(self, prod: AIOKafkaProducer, speed: float) -> None:
        self.prod, self.speed = prod, speed
        self.t0 = time.monotonic()
        self.pending: list[asyncio.Future[Any]] = []

    async def send(self, offset_s: float, topic: str, key: bytes | None, value: bytes, timestamp_ms: int | None = None) -> None:
        await self.pace(offset_s)
        await self.send_now(topic, key, value, timestamp_ms)

    async def pace(self, offset_s: float) -> None:
        """Wait until ``offset_s`` is due (acknowledgements first); at once when unpaced or late."""
        if self.speed > 0:
            delay = self.t0 + offset_s / self.speed - time.monotonic()
            if delay > 0:
                if self.pending:
                    await self.flush()
                await asyncio.sleep(delay)

    async def send_now(self, topic: str, key: bytes | None, value: bytes, timestamp_ms: int | None = None) -> None:
        """Send without pacing; every 5,000 records, wait for the acknowledgements."""
        try:
            self.pending.append(await self.prod.send(topic, key=key, value=value, timestamp_ms=timestamp_ms))
        except KafkaError as exc:
            raise gave_up(exc) from None
        if len(self.pending) >= 5000:
            await self.flush()

    async def flush(self) -> None:
        """Wait for every acknowledgement. The producer retries through a broker outage for
        ``LEITSTAND_PRODUCER_OUTAGE_S``; a record still unacknowledged then ends the run with
        one line (``BrokerUnreachable``), not a traceback."""
        try:
            await asyncio.gather(*self.pending)
        except KafkaError as exc:
            raise gave_up(exc) from None
        self.pending.clear()


def gave_up(exc: BaseException) -> BrokerUnreachable:
    """The one line for a record the broker did not take within the producer's outage budget."""
    name, text = type(exc).__name__, " ".join(str(exc).split())
    while text.startswith(f"{name}: {name}"):  # aiokafka's messages repeat their type
        text = text[len(name) + 2 :]
    why = text if text.startswith(name) else f"{name}: {text}" if text else name
    return BrokerUnreachable(
        f"the broker did not take records within LEITSTAND_PRODUCER_OUTAGE_S ({why}); "
        "the run stopped and its unacknowledged records may be missing: start the broker again and rerun, or raise that setting"
    )


async def produce_city(
    settings: Settings,
    city: City,
    *,
    speed: float,
    stats: dict[str, Any] | None = None,
    on_emission: Callable[[Emission], None] | None = None,
    truth_topic: str | None = None,
    signals: ClosedLoop | None = None,
) -> dict[str, Any]:
    """Publish a ``simulators.city.City`` run, paced so ``speed`` simulated seconds pass per wall
    second (0: unpaced). The ground truth goes to ``truth_topic`` first (keyed by subject), so
    a scorer listening there knows what to expect before it happens.

    ``stats`` is updated live (``sent`` per topic, ``sim_time``) for a status view.
    ``signals``: the demo's closed loop (``City.stream``): junction green shares from the plans
    the control worker drives, read as each frame is computed.
    """
    from collections import Counter

    stats = stats if stats is not None else {}
    sent: Counter[str] = Counter()
    stats.update(sent=sent, sim_time="-")
    prod = producer(settings)
    await prod.start()
    paced, first = PacedSender(prod, speed), None
    try:
        if truth_topic:
            for t in city.truth():
                await paced.send(0.0, settings.topic(truth_topic), t.subject_id.encode(), t.to_line().encode())
        for e in city.stream(signals) if signals is not None else city.stream():
            first = e.t if first is None else first
            await paced.send(e.t - first, settings.topic(e.topic), e.key.encode(), e.value, int(e.t * 1000))
            sent[e.topic] += 1
            stats["sim_time"] = datetime.fromtimestamp(e.t, tz=timezone.utc).strftime("%a %Y-%m-%d %H:%M")
            if on_emission is not None:
                on_emission(e)
        await paced.flush()
    finally:
        await prod.stop()
    stats["wall_s"] = time.monotonic() - paced.t0
    return stats
