"""``leitstand registry export``, ``leitstand explain`` and ``leitstand bench fairness`` as a user
runs them: output files, and one clean line for every bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli_helpers import leitstand, one_clean_line
from tests.sumo_nets import build

pytestmark = pytest.mark.slow  # child processes (the CLI) and SUMO


def test_registry_export_writes_both_files(tmp_path: Path) -> None:
    bench = tmp_path / "bench"
    bench.mkdir()
    (bench / "nab-table.json").write_text(json.dumps({"detectors": {"default": {"dev_in_sample": 75.62}}}))
    proc = leitstand(
        "registry", "export", str(tmp_path / "reg"), "--bench", str(bench), env={"LEITSTAND_TRANSPARENCY_CONTACT": "a@b.example"}
    )
    assert proc.returncode == 0, proc.stderr
    register = json.loads((tmp_path / "reg" / "register.json").read_text())
    assert {r["tier_1"]["contact_email"] for r in register["records"]} == {"a@b.example"}
    assert (tmp_path / "reg" / "register.html").read_text().startswith("<!doctype html>")


def test_registry_export_refusals(tmp_path: Path) -> None:
    assert "--bench" in one_clean_line(leitstand("registry", "export", str(tmp_path), "--bench", str(tmp_path / "nope")))
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert "cannot write the register" in one_clean_line(leitstand("registry", "export", str(blocker / "sub")))


def test_explain_refusals_are_one_line() -> None:
    assert "neither ISO 8601 nor epoch" in one_clean_line(leitstand("explain", "signals", "K1", "--at", "yesterday"))
    env = {"LEITSTAND_POSTGRES_DSN": ""}
    assert "no database configured" in one_clean_line(leitstand("explain", "alarm", "a@P1~x", "--db", env=env))
    env = {"LEITSTAND_KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1"}
    line = one_clean_line(leitstand("explain", "signals", "K1", "--at", "2026-01-01T00:00:00", env=env))
    assert "127.0.0.1:1" in line


def test_bench_fairness_on_a_small_network(tmp_path: Path) -> None:
    cfg = build("single", tmp_path / "single", end_s=300)
    proc = leitstand("bench", "fairness", "--scenarios", str(cfg), "--controllers", "leitstand", "--seeds", "1")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    row = out["scenarios"]["single"]["leitstand"]
    assert set(row) >= {"delay_mean", "worst", "worst_p95_s", "median_p95_s", "worst_to_median", "target", "approaches"}
    assert "no scenarios under" in one_clean_line(leitstand("bench", "fairness", "--scenarios", str(tmp_path / "none")))


def test_bench_signals_refuses_a_map_it_cannot_find(tmp_path: Path) -> None:
    build("single", tmp_path / "single", end_s=60)
    line = one_clean_line(leitstand("bench", "signals", "--scenarios", str(tmp_path), "--maps", "single,singel", "--seeds", "1"))
    assert "--maps: no singel" in line and "there: single" in line
