"""``leitstand sumo trace`` (simulators/sumo/trace.py): rows per traced signal at the asked
spacing and window, what each row holds, and one clean line for every bad argument."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from signals.explain import Explanation, StageDecision
from signals.model import SignalPlan, StagePhase
from simulators.sumo.trace import StandingVehicle, trace_row
from tests.cli_helpers import leitstand, one_clean_line
from tests.sumo_nets import build

pytestmark = pytest.mark.slow  # runs SUMO through the CLI (tests/unit/test_markers.py)


def test_a_row_omits_empty_lanes_and_keeps_who_stands_in_the_junction() -> None:
    decision = StageDecision(
        "B1",
        10.0,
        SignalPlan((StagePhase("p0", 10.0),)),
        Explanation("leitstand", "1.4", "serve_while_it_pays", (), "holds stage p0"),
    )
    row = trace_row(12.34, "B1", "GGrr", decision, {"a_0": 0, "b_0": 3}, {"c_0": 1}, [StandingVehicle("bus1", ":B1_2_0", 40.04)])
    assert row == {
        "t_s": 12.3,
        "signal": "B1",
        "state": "GGrr",
        "rule": "serve_while_it_pays",
        "effect": "holds stage p0",
        "halted_in": {"b_0": 3},
        "halted_out": {"c_0": 1},
        "in_junction": [{"vehicle": "bus1", "lane": ":B1_2_0", "waiting_s": 40.0}],
    }


def test_trace_writes_rows_at_the_asked_spacing_and_window(tmp_path: Path) -> None:
    cfg = build("single", tmp_path / "net", end_s=300)
    out = tmp_path / "trace.jsonl"
    proc = leitstand("sumo", "trace", str(cfg), "--signals", "B1", "--every", "10", "--from", "20", "--until", "120", "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    times = [r["t_s"] for r in rows]
    assert times[0] >= 20 and times[-1] < 120 and len(rows) == 10
    assert all(b - a == pytest.approx(10, abs=1) for a, b in zip(times, times[1:], strict=False))
    assert {r["signal"] for r in rows} == {"B1"}
    assert all(set(r["state"]) <= set("GgyrRuOos") and r["rule"] for r in rows)
    assert any(r["halted_in"] for r in rows) or any(r["state"] != rows[0]["state"] for r in rows)
    assert f"{len(rows)} rows written" in proc.stderr


def test_trace_refusals_are_one_line(tmp_path: Path) -> None:
    cfg = build("single", tmp_path / "net", end_s=60)
    line = one_clean_line(leitstand("sumo", "trace", str(cfg), "--signals", "B1,Z9"))
    assert "no traffic light Z9" in line and "there: B1" in line
    backwards = leitstand("sumo", "trace", str(cfg), "--signals", "B1", "--from", "50", "--until", "10")
    assert "must come after --from" in one_clean_line(backwards)
    assert "--output" in one_clean_line(leitstand("sumo", "trace", str(cfg), "--signals", "B1", "-o", str(tmp_path / "no" / "dir.jsonl")))
