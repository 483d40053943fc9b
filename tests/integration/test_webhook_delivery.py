"""Webhook delivery over real HTTP: a real aiohttp receiver on loopback (allowed explicitly), a
redirecting receiver, refused targets, replays; and a real worker that delivers an alarm to a
URL with a token in its query without writing that token anywhere.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp import web

from streams import webhooks
from streams.kafka_io import ensure_topics, producer, tail
from streams.stack import WorkerProcess, free_port, same_place, settings_env

pytestmark = pytest.mark.integration

SECRET = "whsec_" + "c2VjcmV0LWtleS1mb3ItdGVzdHMtMDEyMzQ1Njc4OQ=="
BODY = b'{"delivery": "d1", "level": 0, "alert": {"alarm_id": "a"}}'


class Receiver:
    """A real HTTP receiver: records what arrives, verifies it the way integrators are told to."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []

    async def hook(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.received.append(
            {
                "path": request.path,
                "query": request.query_string,
                "headers": dict(request.headers),
                "body": body,
                "verified": webhooks.verify(SECRET, request.headers, body, now=time.time()),
            }
        )
        return web.Response(status=204)

    async def redirect(self, request: web.Request) -> web.Response:
        raise web.HTTPFound("/duty?moved=1")


@asynccontextmanager
async def serving(receiver: Receiver) -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_post("/duty", receiver.hook)
    app.router.add_post("/moved", receiver.redirect)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


def deliver(
    path: str, allowed: tuple[str, ...] = ("127.0.0.1",), url_of: Callable[[str], str] | None = None
) -> tuple[webhooks.Attempt, Receiver]:
    receiver = Receiver()

    async def go() -> webhooks.Attempt:
        async with serving(receiver) as base:
            url = url_of(base) if url_of else base + path
            async with webhooks.session(allowed) as client:
                return await webhooks.post(client, "d1", url, BODY, SECRET, 5.0, allowed)

    return asyncio.run(go()), receiver


def test_signed_delivery_verifies_and_a_replay_with_a_new_timestamp_does_not() -> None:
    attempt, receiver = deliver("/duty?token=QueryTok")
    assert attempt == webhooks.Attempt(True, "HTTP 204")
    [got] = receiver.received
    assert got["verified"] and got["body"] == BODY and got["query"] == "token=QueryTok"
    h = {k.lower(): v for k, v in got["headers"].items()}
    assert h["webhook-id"] == "d1" and h["webhook-signature"].startswith("v1,")
    assert abs(int(h["webhook-timestamp"]) - time.time()) < 10
    # an attacker who captured it replays it later, with a fresh timestamp: refused
    replayed = {**h, "webhook-timestamp": str(int(time.time()) + 3600)}
    assert not webhooks.verify(SECRET, replayed, got["body"], now=time.time() + 3600)
    # ... or unchanged, once the tolerance window has passed
    assert not webhooks.verify(SECRET, h, got["body"], now=time.time() + 301)


def test_a_redirect_is_a_failed_attempt_and_is_not_followed() -> None:
    attempt, receiver = deliver("/moved")
    assert not attempt.ok and attempt.retry
    assert "HTTP 302" in attempt.detail and "not followed" in attempt.detail
    assert receiver.received == []  # body and signature never reached the redirect's target


def test_loopback_without_an_allowance_is_refused_before_connecting() -> None:
    attempt, receiver = deliver("/duty", allowed=())
    assert not attempt.ok and not attempt.retry and attempt.detail.startswith("refused:")
    assert receiver.received == []


def test_a_name_resolving_to_an_internal_address_is_refused_after_dns() -> None:
    """Only 127.0.0.1 is allowed; this machine's own name passes the start-up check (it is a
    name) and is refused on the address it resolves to at delivery, as a public name re-pointed
    at an internal address would be."""
    name = socket.gethostname()
    try:
        address = str(socket.getaddrinfo(name, None)[0][4][0])
    except OSError:
        pytest.skip(f"{name} does not resolve here")
    if webhooks.address_refusal(address, allowed=False) is None:
        pytest.skip(f"{name} resolves to a public address here")
    webhooks.check_url(f"https://{name}/duty", ["127.0.0.1"])  # passes the static check
    attempt, receiver = deliver(
        "", allowed=("127.0.0.1",), url_of=lambda base: base.replace("http://127.0.0.1", f"https://{name}") + "/duty"
    )
    assert not attempt.ok and not attempt.retry and f"{name} resolves to" in attempt.detail, attempt
    assert receiver.received == []


def test_metadata_address_is_refused_even_when_allowed() -> None:
    async def go() -> webhooks.Attempt:
        async with webhooks.session(["169.254.169.254"]) as client:
            return await webhooks.post(client, "d1", "http://169.254.169.254/latest/meta-data/", BODY, SECRET, 2.0, ["169.254.169.254"])

    attempt = asyncio.run(go())
    assert not attempt.ok and not attempt.retry and "metadata" in attempt.detail


def test_a_failure_detail_does_not_quote_the_url() -> None:
    port = free_port()  # nothing listens

    async def go() -> webhooks.Attempt:
        async with webhooks.session(["127.0.0.1"]) as client:
            return await webhooks.post(client, "d1", f"http://u:UserPw@127.0.0.1:{port}/x?token=QueryTok", BODY, SECRET, 2.0, ["127.0.0.1"])

    attempt = asyncio.run(go())
    assert not attempt.ok and attempt.retry
    assert "QueryTok" not in attempt.detail and "UserPw" not in attempt.detail


# --- through a real worker -------------------------------------------------------------------


def test_worker_delivers_signed_and_records_no_url_secret(broker, settings_for, tmp_path: Path) -> None:
    receiver = Receiver()
    box: dict[str, Any] = {}
    # the receiver runs in its own thread and loop, the worker in a child process
    loop = asyncio.new_event_loop()
    ready = threading.Event()

    async def serve() -> None:
        async with serving(receiver) as base:
            box["base"] = base
            box["stop"] = asyncio.Event()
            ready.set()
            await box["stop"].wait()

    thread = threading.Thread(target=lambda: loop.run_until_complete(serve()), daemon=True)
    thread.start()
    assert ready.wait(10)
    s = settings_for(broker)
    asyncio.run(ensure_topics(s))
    env = settings_env(
        {
            **same_place(s),
            "webhook_secret": SECRET,
            "webhook_allowed_hosts": "127.0.0.1",
            "alarm_contact_levels": [[box["base"] + "/duty?token=QueryTok"]],
            "webhook_backoff_s": 0.2,
        }
    )
    web_port = free_port()
    worker = WorkerProcess(env, tmp_path / "worker.log", web_port)
    worker.start(timeout_s=90)
    try:
        event = {
            "schema_version": 1,
            "event_time": datetime.now(timezone.utc).isoformat(),
            "pool_id": "P1",
            "event_id": "E1",
            "kind": "motionless_swimmer",
            "zone": "deep end",
            "duration_s": 11.0,
            "confidence": 0.9,
        }

        async def send() -> None:
            p = producer(s)
            await p.start()
            try:
                await p.send_and_wait(s.topic("pool.supervision"), orjson.dumps(event), key=b"P1")
            finally:
                await p.stop()

        asyncio.run(send())
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not receiver.received:
            time.sleep(0.2)
        assert receiver.received, worker.log_tail()
        got = receiver.received[0]
        assert got["verified"] and json.loads(got["body"])["alert"]["kind"] == "motionless_swimmer"

        async def read(topic: str) -> list[bytes]:
            return [m.value async for m in tail(s, s.topic(topic), from_beginning=True, idle_timeout_s=1.0) if m.value is not None]

        deliveries: list[bytes] = []
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not deliveries:
            deliveries = asyncio.run(read("alerts.deliveries"))
        assert deliveries
        record = orjson.loads(deliveries[0])
        assert record["outcome"] == "delivered" and record["target"] == box["base"]
        assert all(b"QueryTok" not in v for v in deliveries)

        # the outbox is changelogged to Kafka: it names the target, never the URL
        async def outbox() -> list[bytes]:
            return [
                m.value or b"" async for m in tail(s, f"{s.group_id}-webhook-outbox-changelog", from_beginning=True, idle_timeout_s=1.0)
            ]

        changelog = asyncio.run(outbox())
        assert changelog and any(b"target_id" in v for v in changelog)
        assert all(b"QueryTok" not in v for v in changelog)
    finally:
        code = worker.stop()
        loop.call_soon_threadsafe(box["stop"].set)
        thread.join(5)
    assert code == 0, worker.log_tail()
    assert "QueryTok" not in (tmp_path / "worker.log").read_text(errors="replace")
