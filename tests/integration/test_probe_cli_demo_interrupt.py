"""Ctrl-C in the middle of ``leitstand demo``: broker and worker stop, the command says
"interrupted" and exits 130, and the partial run directory is marked so that ``evaluate``
refuses to score it (it scored it as complete, counting every later incident as missed; a
stale summary.json of an earlier run in the same directory was even taken as this run's)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from streams.broker import read_info
from streams.stack import free_port
from tests.cli_helpers import leitstand, one_clean_line

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_ctrl_c_in_demo_stops_everything_and_marks_the_run(tmp_path: Path) -> None:
    report, state = tmp_path / "report", tmp_path / "state"
    report.mkdir()
    (report / "summary.json").write_text(json.dumps({"stopped_cleanly": True, "run_id": "an-earlier-run"}))
    env = {**os.environ, "LEITSTAND_STATE_DIR": str(state), "LEITSTAND_CACHE_DIR": str(tmp_path / "cache")}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "streams.cli",
            "demo",
            "--minutes",
            "2",
            "--intersections",
            "2",
            "--pools",
            "1",
            "--bus-lines",
            "0",
            "--report-dir",
            str(report),
            "--port",
            str(free_port()),
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # as a terminal's foreground job has it
    )
    try:
        # the broker first, then the workers (after the history and the timetable are loaded);
        # generous bounds: on a loaded machine the imports alone took over a minute
        deadline = time.monotonic() + 120
        broker = None
        while time.monotonic() < deadline and (broker := read_info(state, "tansu")) is None:
            time.sleep(0.2)
        assert broker is not None, "the demo never started its broker"
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and not any(report.glob("worker*.log")):
            time.sleep(0.2)
        time.sleep(12)  # the worker is up and the city runs
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr.decode(), stderr
    assert stderr.decode().rstrip().endswith("interrupted"), stderr  # after the live status, when piped
    assert not _alive(broker.pid), "the demo's broker outlived Ctrl-C"
    assert read_info(state, "tansu") is None
    summary = json.loads((report / "summary.json").read_text())
    assert summary["interrupted"] is True and summary["stopped_cleanly"] is False
    assert summary["run_id"] != "an-earlier-run"
    assert "interrupted" in one_clean_line(leitstand("evaluate", str(report), timeout=60))
