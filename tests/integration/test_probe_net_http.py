"""Probe of the network surface through a real worker: the HTTP side must not be able to starve
the life-safety path of file descriptors.

aiohttp keeps a connection whose request headers never complete for its keep-alive timeout
(3630 s in aiohttp 3.14) and accepts connections without limit, before any token is checked. A
local process holding ~20,000 such connections (the worker's ``ulimit -n``) left the worker
without descriptors: every webhook delivery failed with ``Too many open files`` (alarms reached
nobody), ``/ready`` stopped answering and new Kafka connections could not be opened. Now the
worker holds at most ``MAX_HTTP_CONNECTIONS`` connections (the next ones get a 503 and are
closed) and closes one that has not sent a complete request within ``HTTP_IDLE_TIMEOUT_S``.
"""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

import pytest

from streams.http.capped import HTTP_IDLE_TIMEOUT_S, MAX_HTTP_CONNECTIONS
from tests.integration.test_http_api_auth import Api, start_api_worker

pytestmark = pytest.mark.integration


def _alive(sock: socket.socket) -> bool:
    """True while the worker keeps the connection open (any answer it sent is read away)."""
    sock.setblocking(False)
    try:
        while sock.recv(65536):
            pass
        return False  # end of stream
    except BlockingIOError:
        return True
    except OSError:
        return False


def _server_side_connections(port: int) -> int:
    """Established TCP connections whose local end is the worker's web port (from ``ss``)."""
    out = subprocess.run(["ss", "-Htn", "state", "established", f"( sport = :{port} )"], capture_output=True, text=True, check=True).stdout
    return len(out.splitlines())


def test_half_open_connections_cannot_exhaust_the_worker(broker, settings_for, tmp_path: Path) -> None:
    worker, _ = start_api_worker(broker, settings_for, tmp_path)
    held: list[socket.socket] = []
    try:
        assert worker.proc is not None
        flood = MAX_HTTP_CONNECTIONS + 300
        for _ in range(flood):
            s = socket.create_connection(("127.0.0.1", worker.web_port), timeout=5)
            s.sendall(b"GET /alerts HTTP/1.1\r\nHost: x\r\n")  # headers never finished
            held.append(s)
        time.sleep(1.0)
        held_by_worker = _server_side_connections(worker.web_port)
        assert held_by_worker <= MAX_HTTP_CONNECTIONS, held_by_worker
        alive = sum(_alive(s) for s in held)
        assert alive <= MAX_HTTP_CONNECTIONS, alive
        # a connection over the limit is told so, not left hanging
        extra = socket.create_connection(("127.0.0.1", worker.web_port), timeout=5)
        extra.settimeout(5)
        assert extra.recv(100).startswith(b"HTTP/1.1 503"), "no 503 over the connection limit"
        extra.close()
        # the held ones are closed once they have idled past the deadline; the API serves again
        deadline = time.monotonic() + HTTP_IDLE_TIMEOUT_S + 10
        while sum(_alive(s) for s in held) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert sum(_alive(s) for s in held) == 0, "half-open connections outlived the idle timeout"
        assert Api(worker.web_port).call("GET", "/ready")[0] == 200
    finally:
        for s in held:
            s.close()
        code = worker.stop()
    assert code == 0, worker.log_tail()


def test_a_worker_listening_beyond_loopback_says_so(broker, settings_for, tmp_path: Path) -> None:
    """``LEITSTAND_WEB_HOST=0.0.0.0`` is allowed (behind a TLS reverse proxy on another host) but
    must not pass silently: tokens and alarm data then cross the network in clear text, and
    /metrics and /ready answer anyone. The worker started without a word about it."""
    worker, _ = start_api_worker(broker, settings_for, tmp_path, web_host="0.0.0.0")
    try:
        deadline = time.monotonic() + 10
        while "not loopback" not in worker.log_file.read_text() and time.monotonic() < deadline:
            time.sleep(0.2)
        log = worker.log_file.read_text()
        line = next((ln for ln in log.splitlines() if "not loopback" in ln), None)
        assert line is not None, log[-3000:]
        assert "0.0.0.0" in line and "TLS" in line, line
    finally:
        code = worker.stop()
    assert code == 0, worker.log_tail()


def test_a_body_naming_a_field_twice_is_refused(broker, settings_for, tmp_path: Path) -> None:
    """``{"by": "alice", "by": "mallory"}`` was read as mallory (the last one wins in orjson) while a
    proxy, WAF or request log that keeps the first shows alice: the audit trail must not depend
    on which parser read the body. Refused with 400 before anything is looked up. (Both routes
    on one worker: a worker per route cost 8 s each.)"""
    from tests.integration.test_http_api_auth import TOKEN

    worker, _ = start_api_worker(broker, settings_for, tmp_path)
    try:
        api = Api(worker.web_port)
        for path in ("/alerts/person_in_closed_zone@P9~000000000000/ack", "/signals/K1/mode"):
            for raw in (
                b'{"by": "alice", "by": "mallory"}',
                b'{"mode": "off", "mode": "automatic"}',
                b'{"actor": "a", "reason": "x", "reason": "y"}',
                b'{"note": "n", "by": "a", "note": "m"}',
            ):
                status, answer = api.call("POST", path, auth=f"Bearer {TOKEN}", body=raw)
                assert status == 400, (path, raw, status, answer)
                assert "more than once" in answer["error"], answer
            status, answer = api.call(
                "POST", path, auth=f"Bearer {TOKEN}", body=b'{"mode": "off", "actor": "a"}' if "mode" in path else b'{"by": "a"}'
            )
            assert status == 404, (path, answer)  # a body without duplicates goes on to the lookup
    finally:
        code = worker.stop()
    assert code == 0, worker.log_tail()
