"""The shell's half of the decoding path: Faust batches in, records out, failures dead-lettered.

Every agent that reads an input topic iterates ``decoded_batches``; that is how "nothing fails
silently" holds for all topics at once.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Sequence
from typing import Any

from .codec import DecodedBatch, RawMessage, TopicDecoder, decode_batch, reason_counts
from .metrics import DEADLETTERS, RECORDS_DECODED
from .records import Record, encode


def raw_message(event: Any) -> RawMessage:
    m = event.message
    return RawMessage(m.topic, m.partition, m.offset, m.key, m.value)


async def decoded_batches(
    stream: Any,
    decoder: TopicDecoder[Any],
    deadletter_topic: Any | None,
    *,
    max_batch: int,
    within_s: float,
) -> AsyncIterator[Sequence[Record]]:
    """Yield batches of valid records; send each failure to ``deadletter_topic``.

    Uses ``take_events`` so the partition and offset of each failure are known. Offsets are
    acknowledged only after the caller has processed the batch (at-least-once). When a second
    agent reads the same topic it passes ``deadletter_topic=None``: one agent per topic owns
    the dead letters and the counters, so each bad record is reported exactly once.
    """
    async for events in stream.take_events(max_batch, within=within_s):
        batch: DecodedBatch[Any] = decode_batch(
            decoder, (raw_message(e) for e in events), now=time.time()
        )
        if deadletter_topic is not None:
            for dl in batch.dead:
                await deadletter_topic.send(key=dl.source_topic.encode(), value=encode(dl))
            for (topic, reason), n in reason_counts(batch.dead).items():
                DEADLETTERS.labels(topic, reason).inc(n)
            if batch.records:
                RECORDS_DECODED.labels(events[0].message.topic).inc(len(batch.records))
        if batch.records:
            yield batch.records
