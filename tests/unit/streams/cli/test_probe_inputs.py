"""Probe of the command line as a careless user meets it: each case was a traceback, a hang or
a silent wrong answer before; now one line on stderr and a non-zero exit."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.cli_helpers import leitstand, one_clean_line

pytestmark = pytest.mark.slow  # child processes (the CLI) or SUMO runs

# nothing listens here: every case must fail before it needs a broker
NO_BROKER = {"LEITSTAND_KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1", "LEITSTAND_TOPIC_PREFIX": "probecli."}


@pytest.mark.parametrize(
    "truth,extra",
    [
        ("[1]\n", {}),
        ('{"expected_alarm": "x"}\n', {}),
        ("", {"summary.json": "not json"}),
        ("", {"summary.json": "[1, 2]"}),
        ("", {"alerts.jsonl": '{"transition": "raised"}\n'}),
        ('{"subject_id": "pool/1", "kind": "k", "start": "x", "end": 1, "expected_alarm": true}\n', {}),
    ],
)
@pytest.mark.parametrize("command", ["evaluate", "report"])
def test_corrupt_run_directory_is_one_line(tmp_path: Path, command: str, truth: str, extra: dict[str, str]) -> None:
    (tmp_path / "truth.jsonl").write_text(truth)
    for name, text in extra.items():
        (tmp_path / name).write_text(text)
    line = one_clean_line(leitstand(command, str(tmp_path), env=NO_BROKER, timeout=60))
    assert str(tmp_path) in line


def test_interrupted_run_is_not_scored_as_complete(tmp_path: Path) -> None:
    """A demo interrupted before it wrote summary.json: evaluating it as if complete counts
    every incident after the interruption as missed."""
    (tmp_path / "truth.jsonl").write_text("")
    (tmp_path / "alerts.jsonl").write_text("")
    line = one_clean_line(leitstand("evaluate", str(tmp_path), env=NO_BROKER, timeout=60))
    assert "summary.json" in line


def test_interrupted_run_marked_in_summary_is_refused(tmp_path: Path) -> None:
    (tmp_path / "truth.jsonl").write_text("")
    (tmp_path / "summary.json").write_text(json.dumps({"stopped_cleanly": False, "interrupted": True}))
    line = one_clean_line(leitstand("evaluate", str(tmp_path), env=NO_BROKER, timeout=60))
    assert "interrupted" in line


@pytest.mark.parametrize("port", ["0", "70000", "-1"])
def test_broker_start_port_out_of_range(tmp_path: Path, port: str) -> None:
    proc = leitstand("broker", "start", "--port", port, env={**NO_BROKER, "LEITSTAND_STATE_DIR": str(tmp_path)}, timeout=30)
    assert "port" in one_clean_line(proc).lower()


@pytest.mark.parametrize("bootstrap", ["127.0.0.1:70000", "127.0.0.1:abc"])
@pytest.mark.parametrize("args", [("topics", "list"), ("broker", "start")])
def test_bad_bootstrap_port_is_one_line(tmp_path: Path, bootstrap: str, args: tuple[str, ...]) -> None:
    proc = leitstand("-b", bootstrap, *args, env={**NO_BROKER, "LEITSTAND_STATE_DIR": str(tmp_path)}, timeout=30)
    assert bootstrap in one_clean_line(proc)


@pytest.mark.parametrize("value", ["nan", "inf", "-1"])
def test_tail_idle_timeout_must_be_finite(value: str) -> None:
    proc = leitstand("tail", "aggregates", "--idle-timeout", value, env=NO_BROKER, timeout=30)
    assert "idle-timeout" in one_clean_line(proc)


@pytest.mark.parametrize("truth", ["/nonexistent-dir/t.jsonl", "."])
def test_simulate_city_truth_path_checked_before_anything(truth: str) -> None:
    proc = leitstand("simulate", "city", "--truth", truth, "--duration", "0.01", env=NO_BROKER, timeout=30)
    assert "--truth" in one_clean_line(proc)


def test_simulate_city_absurd_duration(tmp_path: Path) -> None:
    proc = leitstand("simulate", "city", "--duration", "1e9", "--truth", str(tmp_path / "t.jsonl"), env=NO_BROKER, timeout=30)
    assert "--duration" in one_clean_line(proc)
    assert not (tmp_path / "t.jsonl").exists()


@pytest.mark.parametrize("source", ["/dev/urandom", "/dev/zero", "fifo", "dir"])
def test_signals_configure_refuses_non_regular_files(tmp_path: Path, source: str) -> None:
    if source == "fifo":
        path = tmp_path / "m.fifo"
        os.mkfifo(path)
        source = str(path)
    elif source == "dir":
        source = str(tmp_path)
    proc = leitstand("signals", "configure", source, "--dry-run", env=NO_BROKER, timeout=30)
    assert source in one_clean_line(proc)


def test_signals_configure_refuses_huge_model(tmp_path: Path) -> None:
    path = tmp_path / "big.json"
    path.write_bytes(b'{"x": "' + b"a" * (3 << 20) + b'"}')
    proc = leitstand("signals", "configure", str(path), "--dry-run", env=NO_BROKER, timeout=30)
    assert "large" in one_clean_line(proc)


@pytest.mark.parametrize(
    "args",
    [
        ("mode", "intersection/1", "automatic", "--actor", ""),
        ("approve", "intersection/1", "p1", "--actor", "x" * 65),
        ("reject", "intersection/1", "p1", "--actor", ""),
    ],
)
def test_signals_commands_the_worker_would_dead_letter_are_refused(args: tuple[str, ...]) -> None:
    """msgspec checks the records' length bounds only when decoding: an empty --actor was
    'sent' with exit 0, and the control agent then dead-lettered the command (no audit entry)."""
    proc = leitstand("signals", *args, "--dry-run", env=NO_BROKER, timeout=30)
    assert "actor" in one_clean_line(proc)
    assert proc.stdout == ""


def test_a_report_escapes_what_the_run_holds_and_writes_only_inside_it(tmp_path: Path) -> None:
    """Stop 54's probe: a number field of summary.json holding markup reached index.html raw, and
    an index.html or evaluation.json that was a symbolic link was followed (a file outside the
    run directory overwritten)."""
    from simulators.harness.report import _safe_name

    run = tmp_path / "run"
    run.mkdir()
    (run / "truth.jsonl").write_text("")
    (run / "alerts.jsonl").write_text("")
    (run / "summary.json").write_text(json.dumps({"stopped_cleanly": True, "run_id": "r1", "speed": "<script>alert(1)</script>"}))
    proc = leitstand("report", str(run), env=NO_BROKER, timeout=120)
    assert proc.returncode == 0, proc.stderr
    page = (run / "index.html").read_text()
    assert "<script>alert(1)" not in page and "&lt;script&gt;alert(1)" in page
    victim = tmp_path / "victim.txt"
    victim.write_text("keep")
    (run / "index.html").unlink()
    os.symlink(victim, run / "index.html")
    line = one_clean_line(leitstand("report", str(run), env=NO_BROKER, timeout=120))
    assert "is a symbolic link" in line and victim.read_text() == "keep"
    assert _safe_name("pool_../../../escaped.png") == "pool_.._.._.._escaped.png"
    assert "/" not in _safe_name("intersection_a/b.png")


def test_a_run_with_a_broken_line_inside_or_no_alerts_file_is_not_scored(tmp_path: Path) -> None:
    """A truth line cut in the middle of the file dropped an incident silently (its alarm then
    counted as false), and a missing alerts.jsonl was scored as "no alarm at all" (stop 54)."""
    summary = {"stopped_cleanly": True, "simulated_from": "2026-01-01T00:00:00+00:00", "simulated_until": "2026-01-01T01:00:00+00:00"}
    (tmp_path / "summary.json").write_text(json.dumps(summary))
    row = {"subject_id": "K1", "kind": "incident", "start": 1767225600, "end": 1767226200, "expected_alarm": "incident_E"}
    good = json.dumps(row)
    (tmp_path / "truth.jsonl").write_text(good + "\n" + good[:20] + "\n" + good + "\n")
    (tmp_path / "alerts.jsonl").write_text("")
    assert "truth.jsonl line 2: not JSON" in one_clean_line(leitstand("evaluate", str(tmp_path), env=NO_BROKER, timeout=60))
    (tmp_path / "truth.jsonl").write_text(good + "\n" + good[:20])  # torn last line: an interrupted write, skipped
    assert leitstand("evaluate", str(tmp_path), env=NO_BROKER, timeout=60).returncode == 0
    (tmp_path / "alerts.jsonl").unlink()
    assert "holds no alerts.jsonl" in one_clean_line(leitstand("evaluate", str(tmp_path), env=NO_BROKER, timeout=60))
