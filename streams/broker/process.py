"""Run a broker as a detached child with a pid file and a log file, and stop it again.

Both engines (Tansu, Apache Kafka) share this: the difference is only the command line and
what has to be prepared before it. Every failure an operator can cause (port taken, already
running, binary missing) surfaces as ``BrokerError`` with a one-line message.
"""

from __future__ import annotations

import errno
import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from .errors import BrokerError as BrokerError  # raised here, defined apart (probe raises it too)
from .probe import wait_until_ready


@dataclass(frozen=True)
class BrokerInfo:
    engine: str
    pid: int
    host: str
    port: int
    started_at: float
    ready_after_s: float | None
    log_file: str
    #: the process's start time (clock ticks after boot, /proc/PID/stat): a pid in a stale
    #: broker.json may belong to another process by now (absent in files of older versions)
    proc_start: int | None = None

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"


def broker_dir(state_dir: Path, engine: str) -> Path:
    return Path(state_dir) / f"broker-{engine}"


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie child of ours counts as dead
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
            return fh.read().split(") ", 1)[1][0] != "Z"
    except (OSError, IndexError):
        return True


def process_start(pid: int) -> int | None:
    """When process ``pid`` started (clock ticks after boot), None where /proc cannot say."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
            return int(fh.read().rsplit(") ", 1)[1].split()[19])  # field 22, starttime
    except (OSError, IndexError, ValueError):
        return None


def read_info(state_dir: Path, engine: str) -> BrokerInfo | None:
    """The running broker of this engine, or None (stale pid files are cleaned up).

    A pid whose process started at another time than the broker we launched is not ours any
    more (a reboot or crash left the file, the pid was reused): ``broker stop`` used to send
    SIGTERM and SIGKILL to whatever process held it (stop 55's probe killed a ``sleep``)."""
    info_file = broker_dir(state_dir, engine) / "broker.json"
    try:
        info = BrokerInfo(**json.loads(info_file.read_text()))
    except (OSError, ValueError, TypeError):
        return None
    started = process_start(info.pid)
    if not pid_alive(info.pid) or (info.proc_start is not None and started is not None and started != info.proc_start):
        info_file.unlink(missing_ok=True)
        (info_file.parent / "broker.pid").unlink(missing_ok=True)
        return None
    return info


def port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                return False
            raise
    return True


def launch(
    *,
    engine: str,
    argv: Sequence[str],
    state_dir: Path,
    host: str,
    port: int,
    env: dict[str, str] | None = None,
    ready_timeout_s: float = 60.0,
    extra_ports: Sequence[int] = (),
) -> BrokerInfo:
    """Start ``argv`` detached, wait until it answers a Kafka metadata request, record it."""
    running = read_info(state_dir, engine)
    if running is not None:
        raise BrokerError(f"{engine} broker is already running (pid {running.pid}, {running.bootstrap}); use 'leitstand broker stop' first")
    for p in (port, *extra_ports):
        if not port_free(host, p):
            raise BrokerError(f"port {p} on {host} is already in use by another process; choose another with --port or stop that process")
    bdir = broker_dir(state_dir, engine)
    bdir.mkdir(parents=True, exist_ok=True)
    log_file = bdir / "broker.log"
    started = time.time()
    with open(log_file, "ab") as log:
        started_marker = f"--- leitstand: starting {engine} at {time.ctime(started)}"
        log.write(f"\n{started_marker}\n".encode())
        log.flush()
        proc = subprocess.Popen(  # argv is built by us, never by a shell
            list(argv),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, **(env or {})},
            start_new_session=True,  # outlives the CLI; not killed by the terminal's Ctrl-C
        )
    (bdir / "broker.pid").write_text(str(proc.pid))
    try:
        wait_until_ready(f"{host}:{port}", timeout_s=ready_timeout_s, alive=lambda: proc.poll() is None)
    except KeyboardInterrupt:  # Ctrl-C while waiting: no broker left running that no file names
        _terminate(proc.pid)
        (bdir / "broker.pid").unlink(missing_ok=True)
        raise
    except BrokerError as exc:
        _terminate(proc.pid)
        (bdir / "broker.pid").unlink(missing_ok=True)
        taken = _bind_failure(log_file, started_marker)
        if taken:
            ports = ", ".join(str(q) for q in (port, *extra_ports))
            raise BrokerError(
                f"{engine} broker could not bind its port: a port of {host} ({ports}) is already in use by another process "
                f"(taken after the check: {taken}); choose another with --port or stop that process"
            ) from None
        tail = _tail(log_file, marker=started_marker)
        raise BrokerError(f"{engine} broker did not become ready: {exc}{tail}") from None
    info = BrokerInfo(
        engine=engine,
        pid=proc.pid,
        host=host,
        port=port,
        started_at=started,
        ready_after_s=round(time.time() - started, 3),
        log_file=str(log_file),
        proc_start=process_start(proc.pid),
    )
    (bdir / "broker.json").write_text(json.dumps(asdict(info)))
    return info


def stop(state_dir: Path, engine: str, timeout_s: float = 20.0) -> BrokerInfo | None:
    """Stop the broker of this engine; returns what was stopped, None if nothing ran."""
    info = read_info(state_dir, engine)
    if info is None:
        return None
    _terminate(info.pid, timeout_s)
    bdir = broker_dir(state_dir, engine)
    (bdir / "broker.json").unlink(missing_ok=True)
    (bdir / "broker.pid").unlink(missing_ok=True)
    return info


def _terminate(pid: int, timeout_s: float = 20.0) -> None:
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        _reap(pid)
        if not pid_alive(pid):
            return
        time.sleep(0.05)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    _reap(pid)


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def _bind_failure(log_file: Path, marker: str) -> str | None:
    """The line of this start's log (after ``marker``) saying a port could not be bound, if any.
    The port check before the start cannot hold the port: on a busy machine an outgoing
    connection's ephemeral port can take it in between (one CI run: Kafka's controller port)."""
    try:
        text = log_file.read_text(errors="replace")
    except OSError:
        return None
    _, _, this_start = text.rpartition(marker)
    for line in this_start.splitlines():
        if "Address already in use" in line or "BindException" in line or "AddrInUse" in line:
            return line.strip()[:200]
    return None


def _tail(log_file: Path, lines: int = 3, marker: str = "") -> str:
    """The last lines of the log, of this start only when ``marker`` is its first line (the log
    is appended to across starts: an earlier failure must not stand for this one)."""
    try:
        whole = log_file.read_text(errors="replace")
        text = (whole.rpartition(marker)[2] if marker else whole).strip().splitlines()[-lines:]
    except OSError:
        return ""
    return (" (log: " + " | ".join(t.strip() for t in text) + ")") if text else ""
