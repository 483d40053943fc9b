"""A broker that cannot bind its port says so in one line that names the port, so the caller (the
test fixture, a person at the CLI) can choose another, instead of a stack trace's last lines.

The "broker" here is a stand-in (a Python one-liner, a test double for Kafka, which takes
seconds to start): it binds a port the test holds, as Kafka's controller listener met a port an
outgoing connection had taken between our check and its bind (one CI run)."""

from __future__ import annotations

import socket
import sys
from pathlib import Path

import pytest

from streams.broker import BrokerError
from streams.broker.process import launch, read_info


def _held_port() -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    s.listen(1)
    return s


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start(state: Path, program: str) -> None:
    launch(engine="kafka", argv=[sys.executable, "-c", program], state_dir=state, host="127.0.0.1", port=_free_port(), ready_timeout_s=20)


def test_a_port_taken_after_the_check_is_named_as_in_use(tmp_path: Path) -> None:
    held = _held_port()
    try:
        taken = held.getsockname()[1]
        stand_in = f"import socket; socket.socket().bind(('127.0.0.1', {taken}))"
        with pytest.raises(BrokerError) as caught:
            _start(tmp_path, stand_in)
    finally:
        held.close()
    message = str(caught.value)
    assert "already in use" in message and "choose another with --port" in message, message
    assert "Address already in use" in message  # the broker's own line, as evidence
    assert "\n" not in message
    assert read_info(tmp_path, "kafka") is None  # nothing recorded as running


def test_a_broker_that_fails_otherwise_keeps_its_log_tail(tmp_path: Path) -> None:
    stand_in = "import sys; print('config error: no such setting'); sys.exit(3)"
    with pytest.raises(BrokerError) as caught:
        _start(tmp_path, stand_in)
    message = str(caught.value)
    assert "did not become ready" in message and "config error: no such setting" in message, message
    assert "already in use" not in message


def test_an_earlier_start_that_could_not_bind_does_not_mislead_the_next(tmp_path: Path) -> None:
    """The log is appended to across starts: only this start's lines count."""
    held = _held_port()
    try:
        stand_in = f"import socket; socket.socket().bind(('127.0.0.1', {held.getsockname()[1]}))"
        with pytest.raises(BrokerError):
            _start(tmp_path, stand_in)
    finally:
        held.close()
    with pytest.raises(BrokerError) as caught:
        _start(tmp_path, "raise SystemExit(2)")
    assert "already in use" not in str(caught.value), str(caught.value)


def test_servers_get_ports_below_the_range_for_outgoing_connections() -> None:
    """A port from the kernel's range for outgoing connections can be taken by any client while
    the server that had it is down (a broker restarted on its port found its controller port, the
    next one, used by a reconnecting client): ``free_port`` picks below that range, both ports free."""
    from streams.broker.process import port_free
    from streams.stack import SERVER_PORTS_FROM, _ephemeral_range, free_port

    low, _ = _ephemeral_range()
    ports = {free_port() for _ in range(20)}
    assert all(SERVER_PORTS_FROM <= p < low - 1 for p in ports), sorted(ports)
    assert len(ports) > 1  # not one fixed port: parallel test processes would collide
    p = ports.pop()
    assert port_free("127.0.0.1", p) and port_free("127.0.0.1", p + 1)


def test_a_stale_broker_file_naming_a_reused_pid_stops_nothing(tmp_path: Path) -> None:
    """A broker.json left by a crash or a reboot may name a pid another process holds by now;
    ``broker stop`` sent SIGTERM and SIGKILL to it (a probe of stop 55 killed a ``sleep``)."""
    import json
    import subprocess

    from streams.broker.process import broker_dir, process_start, stop

    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        started = process_start(other.pid)
        assert started is not None
        bdir = broker_dir(tmp_path, "tansu")
        bdir.mkdir(parents=True)
        info = {"engine": "tansu", "pid": other.pid, "host": "127.0.0.1", "port": 1, "started_at": 1.0}
        (bdir / "broker.json").write_text(json.dumps({**info, "ready_after_s": 0.1, "log_file": "x", "proc_start": started - 1}))
        assert read_info(tmp_path, "tansu") is None and not (bdir / "broker.json").exists()  # not ours: forgotten
        assert stop(tmp_path, "tansu") is None and other.poll() is None  # and left alive
        # the same file with the process's own start time is ours (and an older file without one is trusted)
        (bdir / "broker.json").write_text(json.dumps({**info, "ready_after_s": 0.1, "log_file": "x", "proc_start": started}))
        assert read_info(tmp_path, "tansu") is not None
        (bdir / "broker.json").write_text(json.dumps({**info, "ready_after_s": 0.1, "log_file": "x"}))
        assert read_info(tmp_path, "tansu") is not None
    finally:
        other.kill()
        other.wait()
