"""Is a Kafka-compatible broker answering? A metadata request is the honest test.

A listening socket is not enough (Kafka binds its port long before it can serve), so
readiness means: a client bootstraps, i.e. a Metadata request got an answer.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any


class BrokerUnreachable(RuntimeError):
    pass


async def metadata_ok(bootstrap: str, *, timeout_s: float = 2.0, **client_options: Any) -> bool:
    from aiokafka.client import AIOKafkaClient

    client = AIOKafkaClient(
        bootstrap_servers=bootstrap, request_timeout_ms=int(timeout_s * 1000), **client_options
    )
    try:
        await asyncio.wait_for(client.bootstrap(), timeout_s)
        return True
    except Exception:
        return False
    finally:
        await client.close()


def _quiet_aiokafka() -> None:
    # each failed attempt would otherwise print a connection traceback
    for name in ("aiokafka", "aiokafka.conn", "aiokafka.client"):
        logging.getLogger(name).setLevel(logging.CRITICAL)


def wait_until_ready(
    bootstrap: str,
    *,
    timeout_s: float,
    alive: Callable[[], bool] = lambda: True,
    interval_s: float = 0.1,
    **client_options: Any,
) -> float:
    """Block until ``bootstrap`` answers a metadata request; returns seconds waited."""
    from .process import BrokerError

    _quiet_aiokafka()
    start = time.monotonic()

    async def poll() -> None:
        while True:
            if not alive():
                raise BrokerError("the broker process exited")
            if await metadata_ok(bootstrap, timeout_s=1.0, **client_options):
                return
            if time.monotonic() - start > timeout_s:
                raise BrokerError(f"no metadata answer from {bootstrap} within {timeout_s:g} s")
            await asyncio.sleep(interval_s)

    asyncio.run(poll())
    return time.monotonic() - start


def check_reachable(bootstrap: str, *, timeout_s: float = 5.0, **client_options: Any) -> None:
    """Raise ``BrokerUnreachable`` with an operator-readable line if nobody answers."""
    _quiet_aiokafka()
    if not asyncio.run(metadata_ok(bootstrap, timeout_s=timeout_s, **client_options)):
        raise BrokerUnreachable(
            f"no Kafka broker answers at {bootstrap} (waited {timeout_s:g} s); start one with "
            "'leitstand broker start' or set LEITSTAND_KAFKA_BOOTSTRAP_SERVERS"
        )
