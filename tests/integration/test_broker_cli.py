"""`leitstand broker` against the real embedded binary: start, status, refusals, stop."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from streams.stack import free_port
from tests.cli_helpers import leitstand, one_clean_line

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_start_twice_busy_port_and_stop(tmp_path: Path) -> None:
    port = free_port()
    env = {"LEITSTAND_STATE_DIR": str(tmp_path), "LEITSTAND_KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{port}"}
    first = leitstand("broker", "start", env=env)
    try:
        assert first.returncode == 0, first.stderr
        assert "ready on" in first.stdout
        assert (tmp_path / "broker-tansu" / "broker.pid").exists()
        assert (tmp_path / "broker-tansu" / "broker.log").exists()
        status = leitstand("broker", "status", env=env)
        assert status.returncode == 0 and "answers metadata requests" in status.stdout
        again = one_clean_line(leitstand("broker", "start", env=env))
        assert "already running" in again
    finally:
        stopped = leitstand("broker", "stop", env=env)
    assert stopped.returncode == 0 and "stopped tansu broker" in stopped.stdout
    assert leitstand("broker", "status", env=env).returncode == 1


def test_busy_port_is_refused(tmp_path: Path) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        line = one_clean_line(leitstand("--state-dir", str(tmp_path), "broker", "start", "--port", str(port)))
    assert f"port {port}" in line and "in use" in line


def test_missing_binary_is_refused(tmp_path: Path) -> None:
    env = {"CALF_TANSU_BIN": str(tmp_path / "no-such-tansu"), "LEITSTAND_STATE_DIR": str(tmp_path)}
    line = one_clean_line(leitstand("broker", "start", "--port", str(free_port()), env=env))
    assert "binary not found" in line
