"""aiohttp's server with bounded connections, for every HTTP side of Leitstand (the worker's
and the operator console's): at most ``MAX_HTTP_CONNECTIONS`` at once, and a connection that
sends no complete request for ``HTTP_IDLE_TIMEOUT_S`` (a new one that never finishes its headers
included) is closed. aiohttp's defaults (no limit, 3630 s) let a local process holding
half-open connections take every file descriptor of the process (measured on the worker: its
webhook deliveries then failed with ``Too many open files``; on the console, stop 54: 400 idle
sockets stayed open for good)."""

from __future__ import annotations

import time
from typing import Any

import structlog
from aiohttp import web_runner as aioweb_runner
from aiohttp import web_server as aioweb_server

log = structlog.get_logger(__name__)

#: most HTTP connections a server holds at once; the next ones get a 503 and are closed
MAX_HTTP_CONNECTIONS = 256
#: a connection without a complete request for this long (new or kept alive) is closed
HTTP_IDLE_TIMEOUT_S = 10.0


class CappedServer(aioweb_server.Server):
    """aiohttp's connection manager, refusing connections beyond ``MAX_HTTP_CONNECTIONS``.

    Every connection costs a file descriptor before any token is checked; the worker shares
    its descriptors with the Kafka clients and the webhook deliveries of the alarm path.
    """

    _warned_at = float("-inf")

    def connection_made(self, handler: Any, transport: Any) -> None:
        if len(self._connections) >= MAX_HTTP_CONNECTIONS:
            transport.write(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            # not now: the handler's start() is scheduled after this call and expects its
            # manager; closing at once ran connection_lost first (AssertionError in aiohttp)
            self._loop.call_soon(transport.close)
            now = time.monotonic()
            if now - self._warned_at > 60:
                self._warned_at = now
                log.warning(
                    "HTTP connection limit reached; new connections refused", limit=MAX_HTTP_CONNECTIONS, idle_timeout_s=HTTP_IDLE_TIMEOUT_S
                )
            return
        super().connection_made(handler, transport)


class CappedRunner(aioweb_runner.AppRunner):
    async def _make_server(self) -> Any:
        server = await super()._make_server()
        server.__class__ = CappedServer  # same state, one method more (aiohttp pinned in requirements.lock)
        return server
