"""The demo in under a minute: city -> embedded broker -> worker -> alarms -> evaluation -> report.

Runs on the embedded broker only: that is what the demo is for (no Java, no Docker).
"""

from __future__ import annotations

import re
import socket
from datetime import datetime, timezone
from pathlib import Path

import orjson
import pytest

from simulators.harness.demo import run_demo
from streams.settings import Settings
from streams.stack import free_port

pytestmark = pytest.mark.integration


def test_short_demo_alarms_every_critical_pool_incident(tmp_path: Path) -> None:
    port = free_port()
    s = Settings(_env_file=None, state_dir=tmp_path / "state", cache_dir=tmp_path / "cache")
    city = {"intersections": 6, "pools": 2, "bus_lines": 1, "seed": 3, "camera_incidents_per_pool_day": 24.0}
    summary = run_demo(
        s,
        minutes=0.6,
        speed=500,
        report_dir=tmp_path / "report",
        port=port,
        city=city,
        start_at=datetime(2026, 7, 2, 5, 0, tzinfo=timezone.utc),
    )
    report = tmp_path / "report"
    evaluation = orjson.loads((report / "evaluation.json").read_bytes())
    alarms = evaluation["alarms"]
    assert alarms["critical_incidents"] >= 2, "the seed/rate should inject critical pool incidents"
    assert alarms["critical_alarmed"] == alarms["critical_incidents"], alarms["critical_missed"]
    assert summary["aggregates_received"] > 0 and summary["stopped_cleanly"]
    # the simulated operator acknowledged over the HTTP API: the lifecycle shows it
    assert evaluation["lifecycle"]["acknowledged"] >= 1
    # the report is self-contained: every image it references exists
    page = (report / "index.html").read_text()
    images = re.findall(r"src='(plots/[^']+)'", page)
    assert any("alarm_timeline" in i for i in images)
    assert all((report / i).stat().st_size > 10_000 for i in images)
    # nothing left running: the broker's port is free again
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))
