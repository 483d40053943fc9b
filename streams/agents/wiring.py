"""What every agent wires the same way: keyed tables, decoders, and publish-then-save.

Three rules hold for every agent, so they are written once here:

* **Tables are keyed by the message key's raw bytes** and declared with ``use_partitioner=True``:
  agents write them from ``take_events`` batches and timers, outside Faust's per-event context,
  where a default table refuses writes (faust-streaming #497); the producer's murmur2
  partitioner then puts each changelog entry on the partition matching its source partition,
  exactly as Faust's per-event path would (docs/architecture.md).
* **Decoders take their limits from the settings** (``codec.decoder_limits``), except on topics
  whose event times are not a device's clock: internal command topics written by our own agents
  and configurations a simulation publishes with its own epoch (``Times.ANY``).
* **State is saved only after the broker acknowledged what it produced.** Everything is sent,
  the acknowledgements are awaited together, and only then is the table written: a crash in
  between repeats the messages (idempotent downstream), it never loses one.
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple, Protocol, TypeVar

import faust

from ..codec import TopicDecoder, decoder_limits
from ..records import Record
from ..settings import Settings

R = TypeVar("R", bound=Record)

#: clock skew allowed where event times are not checked against a clock (``Times.ANY``)
UNCHECKED_SKEW_S = 1e12


class Times(enum.Enum):
    """Which event times a topic's decoder accepts."""

    #: a device's clock: checked against now (or the stream) with the configured limits
    CHECKED = "checked"
    #: any time: internal topics written by our own agents, simulated epochs (no skew check)
    ANY = "any"


class Sink(Protocol):
    """What publishing needs of a Faust topic: ``send`` returns the future of the broker's ack."""

    async def send(self, *, key: bytes, value: bytes) -> Any: ...


class Outgoing(NamedTuple):
    """One message to publish."""

    topic: Sink
    key: bytes
    value: bytes


def keyed_table(app: faust.App, name: str, settings: Settings) -> Any:
    """A changelogged table keyed by raw message-key bytes, writable from batches and timers."""
    return app.Table(
        name,
        default=None,
        use_partitioner=True,
        key_type=bytes,  # raw key bytes, hashed like the source topic's keys
        partitions=settings.topic_partitions,
    )


def topic_decoder(record_type: type[R], settings: Settings, times: Times = Times.CHECKED) -> TopicDecoder[R]:
    """The decoder of one input topic, with the size limit and the event-time rule it needs."""
    if times is Times.ANY:
        return TopicDecoder(record_type, max_bytes=settings.max_record_bytes, clock_skew_s=UNCHECKED_SKEW_S)
    return TopicDecoder(record_type, **decoder_limits(settings))


async def publish(messages: Iterable[Outgoing]) -> None:
    """Send every message, then wait until the broker has acknowledged all of them."""
    pending = [await m.topic.send(key=m.key, value=m.value) for m in messages]
    await asyncio.gather(*pending)


def save(table: Any, updates: Mapping[bytes, Any]) -> None:
    """Write ``updates`` item by item (``Table.update()`` would bypass the changelog)."""
    for key, value in updates.items():
        table[key] = value


async def publish_then_save(messages: Iterable[Outgoing], table: Any, updates: Mapping[bytes, Any]) -> None:
    """The ordering every agent keeps: the broker has the messages before the state that
    produced them is saved (see the module docstring)."""
    await publish(messages)
    save(table, updates)
