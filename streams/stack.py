"""A worker in a child process, for the demo, the benchmarks and the integration tests.

Running the worker as its own process is what production does; it also keeps Faust's event
loop and signal handling away from the caller's.
"""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .broker.engines import CONTROLLER_PORT_OFFSET
from .broker.process import port_free


@contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    """SIGTERM and SIGHUP end a long command like Ctrl-C does.

    Python dies on SIGTERM without running ``finally`` blocks, which would leave the broker and
    worker a command started running; raised as ``KeyboardInterrupt`` they are stopped.
    """

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, interrupt) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


#: the lowest port a server of ours is put on (below: well-known and registered services)
SERVER_PORTS_FROM = 10_000


def _ephemeral_range() -> tuple[int, int]:
    """The ports the kernel hands to outgoing connections (Linux: 32768-60999 by default)."""
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32_768, 60_999


def free_port() -> int:
    """A free port on loopback whose controller port is free too: Apache Kafka's KRaft controller
    listens on the broker's port + ``CONTROLLER_PORT_OFFSET`` (1), and a port picked alone
    once collided with a connection already on its neighbour (a CI run's broker-outage test).

    Taken below the kernel's range for outgoing connections when there is room: a port from that
    range (what binding to port 0 gives) can be taken by any client's connection while the
    server that had it is down, and a broker restarted on its own port then found its controller
    port in use (the broker-outage test, stop 49: 30 s of clients reconnecting)."""
    low, _high = _ephemeral_range()
    rng = random.Random()
    if low - 2 > SERVER_PORTS_FROM:
        for _ in range(50):
            port = rng.randrange(SERVER_PORTS_FROM, low - 1)
            if port_free("127.0.0.1", port) and port_free("127.0.0.1", port + CONTROLLER_PORT_OFFSET):
                return port
    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        # the same check the broker's launch makes before it starts
        if port + CONTROLLER_PORT_OFFSET <= 65535 and port_free("127.0.0.1", port + CONTROLLER_PORT_OFFSET):
            return port
    return port


def settings_env(values: dict[str, Any]) -> dict[str, str]:
    """``LEITSTAND_*`` environment for a child process from settings field values."""

    def text(v: Any) -> str:
        # complex settings (lists, dicts) are read back as JSON by pydantic-settings
        return json.dumps(v) if isinstance(v, (list, dict)) else str(v)

    return {f"LEITSTAND_{k.upper()}": text(v) for k, v in values.items() if v is not None}


def same_place(settings: Any) -> dict[str, Any]:
    """The settings that put a child process on the same broker, topics, consumer group and
    state directory as ``settings`` (a worker, a sink or a CLI started by the demo or a test)."""
    return {
        "kafka_bootstrap_servers": settings.kafka_bootstrap_servers,
        "topic_prefix": settings.topic_prefix,
        "app_id": settings.app_id,
        "data_dir": settings.data_dir,
        # the tables' changelogs must have the source topics' partition count: with another,
        # a key's saved state sits on a changelog partition another worker recovers
        "topic_partitions": settings.topic_partitions,
    }


class WorkerNotReady(RuntimeError):
    """A worker child that exited or never became ready; the message names its log."""


def ready_state(port: int | None, timeout_s: float = 2.0) -> tuple[int, dict[str, Any]]:
    """A worker's ``GET /ready``: (HTTP status, JSON body). A 503 carries the reason in its body;
    no answer at all (not listening yet, gone, not JSON) is (0, {})."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/ready", timeout=timeout_s) as r:
            status, raw = r.status, r.read()
    except urllib.error.HTTPError as exc:
        status, raw = exc.code, exc.read() or b"{}"
    except (urllib.error.URLError, OSError):
        return 0, {}
    try:
        body = json.loads(raw)
    except ValueError:
        return 0, {}
    return status, body if isinstance(body, dict) else {}


class WorkerProcess:
    """``leitstand worker`` as a child; ``start`` returns once ``/ready`` says so."""

    def __init__(self, env: dict[str, str], log_file: Path, web_port: int) -> None:
        self.env = env
        self.log_file = log_file
        self.web_port = web_port
        self.proc: subprocess.Popen[bytes] | None = None
        self.ready_after_s: float | None = None
        self.not_ready_because: str | None = None
        self._t0 = 0.0

    def start(self, timeout_s: float = 60.0) -> float:
        """Launch and wait until ready; seconds it took. Raises :class:`WorkerNotReady`."""
        self.launch()
        return self.wait_ready(timeout_s)

    def launch(self) -> None:
        """Start the process without waiting (several roles then start side by side)."""
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, **self.env, "LEITSTAND_WEB_PORT": str(self.web_port)}
        self._t0 = time.monotonic()
        with open(self.log_file, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "streams.cli", "worker"],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
            )

    def wait_ready(self, timeout_s: float = 60.0) -> float:
        """Seconds from launch until ``/ready``; stops the worker and raises :class:`WorkerNotReady`
        if it exits or is not ready within ``timeout_s`` of its launch."""
        assert self.proc is not None, "launch() first"
        while time.monotonic() - self._t0 < timeout_s:
            if self.proc.poll() is not None:
                raise WorkerNotReady(f"worker exited with {self.proc.returncode}; see {self.log_file}: {self.log_tail()}")
            if self.ready():
                self.ready_after_s = time.monotonic() - self._t0
                return self.ready_after_s
            time.sleep(0.1)
        self.stop()
        why = f" (/ready said: {self.not_ready_because})" if self.not_ready_because else ""
        raise WorkerNotReady(f"worker not ready within {timeout_s:g} s{why}; see {self.log_file}: {self.log_tail()}")

    def ready(self) -> bool:
        """True once ``/ready`` says so; the reason it gave last is kept for the error."""
        status, body = ready_state(self.web_port, timeout_s=1.0)
        if status == 0:
            return False
        self.not_ready_because = body.get("reason")
        return bool(body.get("ready"))

    def metrics(self) -> dict[str, float]:
        """Current Prometheus samples of the worker, ``name{labels}`` -> value."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.web_port}/metrics", timeout=2) as r:
            text = r.read().decode()
        samples: dict[str, float] = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                name, _, value = line.rpartition(" ")
                samples[name] = float(value)
        return samples

    def stop(self, timeout_s: float = 20.0) -> int | None:
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait(5)

    def log_tail(self, lines: int = 5) -> str:
        try:
            return " | ".join(self.log_file.read_text(errors="replace").strip().splitlines()[-lines:])
        except OSError:
            return ""
