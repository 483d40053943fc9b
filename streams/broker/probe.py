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

from .errors import BrokerError


class BrokerUnreachable(RuntimeError):
    """No usable broker at the bootstrap address; the message says what failed, for operators."""


class BrokerStateLost(BrokerUnreachable):
    """The broker a running worker used came back without its topics or offsets (an in-memory
    broker restarted). A subclass of ``BrokerUnreachable`` so the CLI reports it in one line."""


async def metadata_ok(bootstrap: str, *, timeout_s: float = 2.0, **client_options: Any) -> bool:
    from aiokafka.client import AIOKafkaClient

    client = AIOKafkaClient(bootstrap_servers=bootstrap, request_timeout_ms=int(timeout_s * 1000), **client_options)
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


def _error_text(exc: BaseException) -> str:
    text = str(exc).split(": <AIOKafkaConnection", 1)[0].strip()
    return f"{type(exc).__name__}: {text}" if text and type(exc).__name__ not in text else text or type(exc).__name__


async def _tcp_open(host: str, port: int, timeout_s: float) -> bool:
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout_s)
    except (TimeoutError, OSError):
        return False
    writer.close()
    return True


async def _handshake_error(host: str, port: int, timeout_s: float, **client_options: Any) -> BaseException | None:
    """Open one Kafka connection with ``client_options``; the error it fails with, or None."""
    from aiokafka.conn import create_conn

    try:
        conn = await asyncio.wait_for(create_conn(host, port, request_timeout_ms=int(timeout_s * 1000), **client_options), timeout_s)
    except Exception as exc:  # the error is the answer
        return exc
    conn.close()
    return None


async def diagnose(bootstrap: str, *, timeout_s: float = 2.0, **client_options: Any) -> str:
    """Why a metadata request to ``bootstrap`` failed, in one line (issue 10, #18).

    A client's bootstrap reports every failure as "unable to bootstrap"; here each address is
    tried step by step: TCP, then the configured security (TLS/SASL), then, when that failed,
    plain Kafka without it, to tell "nobody listens" from "a broker answered but the handshake
    failed" and "the broker wants security the client does not use".
    """
    from aiokafka.conn import collect_hosts

    protocol = client_options.get("security_protocol", "PLAINTEXT")
    notes: list[str] = []
    for host, port, _family in collect_hosts(bootstrap):
        where = f"{host}:{port}"
        if not await _tcp_open(host, port, timeout_s):
            notes.append(f"nothing accepts connections at {where}")
            continue
        failed = await _handshake_error(host, port, timeout_s, **client_options)
        if failed is None:
            notes.append(f"the broker at {where} accepted a {protocol} connection but did not answer a metadata request")
            continue
        plain = protocol != "PLAINTEXT" and await _handshake_error(host, port, timeout_s) is None
        if protocol.startswith("SASL") and plain:
            mechanism = client_options.get("sasl_mechanism") or "PLAIN"
            notes.append(
                f"the broker at {where} answered but the SASL handshake failed ({mechanism}, "
                f"{_error_text(failed)}): it does not offer SASL on this port; check "
                "LEITSTAND_KAFKA_SECURITY_PROTOCOL and LEITSTAND_KAFKA_SASL_MECHANISM"
            )
        elif protocol.startswith("SASL"):
            notes.append(f"the broker at {where} answered but the {protocol} connection failed: {_error_text(failed)}")
        elif protocol != "PLAINTEXT" and plain:
            notes.append(f"the broker at {where} speaks plain Kafka, not {protocol}: {_error_text(failed)}")
        else:
            notes.append(f"a Kafka connection to {where} ({protocol}) failed: {_error_text(failed)}")
    return "; ".join(notes) or f"no broker address in {bootstrap!r}"


class BadBootstrap(BrokerUnreachable):
    """A bootstrap address that no client could connect to: not host:port, or a port out of range."""


def check_bootstrap(bootstrap: str) -> list[tuple[str, int]]:
    """``host:port[,host:port]`` as (host, port) pairs, or :class:`BadBootstrap` naming the
    address (a port of 70000 reached the socket layer as an ``OverflowError`` traceback)."""
    pairs = []
    for entry in (e.strip() for e in bootstrap.split(",")):
        if not entry:
            continue
        host, sep, port = entry.rpartition(":") if ":" in entry else (entry, ":", "9092")  # Kafka's default port
        if not host or not port.isdigit() or not 1 <= int(port) <= 65535:
            raise BadBootstrap(f"bad Kafka bootstrap address {entry!r} in {bootstrap!r}: expected host:port with a port from 1 to 65535")
        pairs.append((host.strip("[]"), int(port)))
    if not pairs:
        raise BadBootstrap(f"no Kafka bootstrap address in {bootstrap!r}: expected host:port[,host:port]")
    return pairs


def check_reachable(bootstrap: str, *, timeout_s: float = 5.0, **client_options: Any) -> None:
    """Raise ``BrokerUnreachable`` with an operator-readable line if no usable broker answers."""
    check_bootstrap(bootstrap)
    _quiet_aiokafka()
    if asyncio.run(metadata_ok(bootstrap, timeout_s=timeout_s, **client_options)):
        return
    why = asyncio.run(diagnose(bootstrap, timeout_s=min(timeout_s, 2.0), **client_options))
    if all(note.startswith("nothing accepts") for note in why.split("; ")):
        raise BrokerUnreachable(
            f"no Kafka broker answers at {bootstrap} (waited {timeout_s:g} s); start one with "
            "'leitstand broker start' or set LEITSTAND_KAFKA_BOOTSTRAP_SERVERS"
        )
    raise BrokerUnreachable(f"no usable Kafka broker at {bootstrap}: {why}")


def unreadable_topics(begins: dict[tuple[str, int], int], ends: dict[tuple[str, int], int], readable: set[tuple[str, int]]) -> list[str]:
    """Topics that claim records (end offset past the beginning) none of which can be read.

    Tansu 0.6 keeps no topics over a restart, but a producer that still holds the old metadata
    writes on into a topic that no longer exists; Tansu acknowledges those writes, lists no
    topic, and once the topic is created again its end offset counts them while a fetch returns
    nothing (measured: end offset 1, no record at 0). Faust's table recovery then waits for
    offsets it can never read: the worker hung at 503. A topic is reported only when *no*
    partition yields a record, so one that holds data, however little, is never touched.
    """
    claims: dict[str, bool] = {}
    for tp, end in ends.items():
        claims[tp[0]] = claims.get(tp[0], False) or end > begins.get(tp, 0)
    topics_read = {tp[0] for tp in readable}
    return sorted(topic for topic, claimed in claims.items() if claimed and topic not in topics_read)
