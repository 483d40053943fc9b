"""Fairness in the SUMO evaluation (simulators/sumo/evaluation.py) on the small test networks:
waits per approach and mode are measured in the closed loop, and starving an approach shows."""

from __future__ import annotations

from pathlib import Path

import pytest

from simulators.sumo.evaluation import evaluate, fairness_benchmark
from tests.sumo_nets import FLOWS, build

pytestmark = pytest.mark.slow  # SUMO runs


@pytest.fixture(scope="module")
def single(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build("single", tmp_path_factory.mktemp("single"), end_s=400)


def test_every_approach_with_demand_is_measured(single: Path) -> None:
    row = evaluate(single, "fixed", [1, 2], jobs=2)
    approaches = row["fairness"]["approaches"]
    fed = {f"B1/{src}" for src, _dst, _v in FLOWS["single"]}  # every flow enters B1 on its own edge
    assert fed <= set(approaches)
    for name in fed:
        a = approaches[name]
        assert a["vehicles"] > 0 and set(a["modes"]) == {"car"}
        assert 0 <= a["mean_s"] <= a["max_s"] and a["p95_s"] <= a["max_s"]
        assert a["served_share"] == 1.0  # fixed time serves every approach every cycle
    # the main road carries ~5x the side road's vehicles (the flows' asymmetry)
    assert approaches["B1/A1B1"]["vehicles"] > 3 * approaches["B1/B2B1"]["vehicles"]
    assert row["fairness"]["summary"]["worst"] in fed


def test_the_benchmark_judges_each_controller_against_fixed_time(single: Path) -> None:
    out = fairness_benchmark([single], [1], ["maxpressure", "leitstand"], 1)
    table = out["scenarios"]["single"]
    assert list(table) == ["fixed", "maxpressure", "leitstand"] and out["target_ratio"] == 1.5
    assert table["fixed"]["target"] is None
    for name in ("maxpressure", "leitstand"):
        t = table[name]["target"]
        assert t["approaches_judged"] >= 3
        assert t["target_met"] == (not t["misses"]) and (t["worst_ratio"] <= 1.5) == t["target_met"]
        assert table[name]["delay_mean"] < table["fixed"]["delay_mean"]
