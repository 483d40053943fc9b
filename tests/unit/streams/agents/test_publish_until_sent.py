"""``wiring.publish_until_sent``: what a timer made is sent again until the broker has it."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from streams.agents.wiring import Outgoing, publish_until_sent


class FlakyTopic:
    """A topic whose acknowledgements fail ``failures`` times (a broker away), then succeed."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.acked: list[bytes] = []
        self.attempts = 0

    async def send(self, *, key: bytes, value: bytes) -> Any:
        self.attempts += 1
        loop = asyncio.get_running_loop()
        ack: asyncio.Future[Any] = loop.create_future()
        if self.failures > 0:
            self.failures -= 1
            ack.set_exception(TimeoutError("no answer from the broker"))
        else:
            self.acked.append(value)
            ack.set_result(("topic", 0, len(self.acked)))
        return ack


def test_records_of_a_tick_are_sent_again_until_acknowledged() -> None:
    topic = FlakyTopic(failures=3)
    messages = [Outgoing(topic, b"K1", b"expired-1"), Outgoing(topic, b"K1", b"expired-2")]
    asyncio.run(publish_until_sent(messages, "test", retry_s=0.0))
    assert topic.acked[-2:] == [b"expired-1", b"expired-2"]  # the last round sent both
    assert topic.attempts > len(messages)


def test_shutdown_ends_the_retrying() -> None:
    topic = FlakyTopic(failures=10**9)

    async def scenario() -> None:
        task = asyncio.create_task(publish_until_sent([Outgoing(topic, b"K1", b"x")], "test", retry_s=0.01))
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(scenario())
    assert topic.acked == [] and topic.attempts >= 2
