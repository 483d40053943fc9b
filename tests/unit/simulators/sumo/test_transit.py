"""Bus lines in the SUMO closed loop with transit signal priority (simulators/sumo/transit.py),
on a generated 4x4 grid with four controlled traffic lights."""

from __future__ import annotations

from pathlib import Path

import pytest

from simulators.sumo.loop import load_network, read_scenario
from simulators.sumo.transit import plan_lines, run_transit
from tests.sumo_nets import build

pytestmark = pytest.mark.slow  # SUMO runs


def test_lines_cross_controlled_signals_and_priority_is_safe(tmp_path: Path) -> None:
    cfg = build("grid", tmp_path, end_s=900)
    net, signals = load_network(read_scenario(cfg))
    lines = plan_lines(net, signals)
    assert len(lines) == 2 and all(ln.signals >= 1 and not any(e.startswith(":") for e in ln.edges) for ln in lines)
    off = run_transit(cfg, 1, tsp=False, headway_s=60, late_s=0.0)
    on = run_transit(cfg, 1, tsp=True, headway_s=60, late_s=0.0)
    assert off.buses == on.buses > 5 and off.grants == 0
    assert on.grants + on.refusals > 0 and on.safety_violations == off.safety_violations == 0
