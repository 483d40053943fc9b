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


def test_the_stages_shown_reach_a_source_that_checks_them_through_the_fairness_wrapper(single: Path) -> None:
    """The broker's source reports every cabinet's stage on ``signals.state``; the evaluation
    wraps every source for fairness, so the wrapper must pass the report on (before stop 42's
    fix, ``sumo eval --via-kafka`` sent none)."""
    from simulators.sumo.evaluation import run_with_fairness
    from simulators.sumo.loop import InProcessSource

    class Reporting(InProcessSource):
        def __init__(self) -> None:
            super().__init__()
            self.reports: list[tuple[float, dict[str, tuple[str, float]]]] = []

        def report_stages(self, shown: dict[str, tuple[str, float]], at_s: float) -> None:
            self.reports.append((at_s, dict(shown)))

    source = Reporting()
    run_with_fairness(single, "leitstand", 1, source)
    assert len(source.reports) == 400  # one per step
    stages = {stage for _t, shown in source.reports for stage, _since in shown.values()}
    known = {st.id for ctl in source.controls.values() for st in ctl.intersection.stages}
    assert len(stages) >= 2 and stages <= known
    assert all(since <= at for at, shown in source.reports for _stage, since in shown.values())
