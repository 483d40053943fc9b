"""A real Prometheus on loopback for the tests (Debian's ``prometheus`` package).

``prometheus_for(targets, scrape_interval_s=1)`` starts one server per call with a generated
configuration scraping ``http://<target>/metrics``, its TSDB in a temporary directory and its web
side on a free loopback port, waits until ``/-/ready`` answers and returns the base URL; every
server is stopped at the end of the test. Without the binary the test is skipped, unless
``CI=true`` (then it fails: CI must not go green by skipping the real thing).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from streams.stack import free_port

#: where Debian installs it; PROMETHEUS_BIN overrides (another distribution, a downloaded release)
PROMETHEUS_BIN = os.environ.get("PROMETHEUS_BIN", "/usr/bin/prometheus")
READY_TIMEOUT_S = 30.0

PrometheusFor = Callable[..., str]


def config_text(targets: list[str], scrape_interval_s: float) -> str:
    """A Prometheus configuration scraping ``targets`` (host:port) at /metrics (YAML is a JSON superset)."""
    interval = f"{int(scrape_interval_s * 1000)}ms"
    return json.dumps(
        {
            "global": {"scrape_interval": interval, "evaluation_interval": interval, "scrape_timeout": interval},
            "scrape_configs": [{"job_name": "leitstand", "metrics_path": "/metrics", "static_configs": [{"targets": targets}]}],
        },
        indent=2,
    )


def api_get(base: str, path: str, **params: str) -> dict[str, Any]:
    """A GET on Prometheus's HTTP API; the ``data`` of a successful answer."""
    url = f"{base}{path}" + (f"?{urllib.parse.urlencode(params)}" if params else "")
    with urllib.request.urlopen(url, timeout=5) as r:  # noqa: S310 (loopback)
        body = json.loads(r.read())
    assert body.get("status") == "success", body
    return dict(body)


def query(base: str, promql: str) -> list[dict[str, Any]]:
    """An instant PromQL query: the result vector (``[{"metric": {...}, "value": [t, "v"]}, ...]``)."""
    return list(api_get(base, "/api/v1/query", query=promql)["data"]["result"])


def _ready(base: str) -> bool:
    try:
        with urllib.request.urlopen(f"{base}/-/ready", timeout=1) as r:  # noqa: S310 (loopback)
            return r.status == 200
    except (urllib.error.URLError, OSError):
        return False


class PrometheusServer:
    """One Prometheus process and its temporary directory."""

    def __init__(self, root: Path, targets: list[str], scrape_interval_s: float) -> None:
        self.root = root
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log_file = root / "prometheus.log"
        config = root / "prometheus.yml"
        config.write_text(config_text(targets, scrape_interval_s))
        self.command = [
            PROMETHEUS_BIN,
            f"--config.file={config}",
            f"--storage.tsdb.path={root / 'data'}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            "--log.level=warn",
        ]
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> str:
        with open(self.log_file, "ab") as log:
            self.proc = subprocess.Popen(self.command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"prometheus exited with {self.proc.returncode}: {self.log_tail()}")
            if _ready(self.base):
                return self.base
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"prometheus not ready within {READY_TIMEOUT_S:g} s: {self.log_tail()}")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)

    def log_tail(self, lines: int = 5) -> str:
        try:
            return " | ".join(self.log_file.read_text(errors="replace").strip().splitlines()[-lines:])
        except OSError:
            return ""


def prometheus_available() -> str | None:
    """The binary to run, or None (with the skip/fail rule applied by the fixture)."""
    found = shutil.which(PROMETHEUS_BIN)
    return found


@pytest.fixture
def prometheus_for(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrometheusFor]:
    """Factory: ``prometheus_for(["127.0.0.1:6066"], scrape_interval_s=1)`` -> base URL."""
    if prometheus_available() is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"prometheus not installed at {PROMETHEUS_BIN} (CI=true: the metrics tests must run)")
        pytest.skip(f"prometheus not installed at {PROMETHEUS_BIN} (Debian package 'prometheus')")
    servers: list[PrometheusServer] = []

    def start(targets: list[str], scrape_interval_s: float = 1) -> str:
        server = PrometheusServer(tmp_path_factory.mktemp("prometheus"), list(targets), scrape_interval_s)
        servers.append(server)
        return server.start()

    yield start
    for server in servers:
        server.stop()
