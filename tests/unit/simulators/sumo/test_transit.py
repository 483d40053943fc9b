"""Bus lines in the SUMO closed loop with transit signal priority (simulators/sumo/transit.py),
on a generated 4x4 grid with four controlled traffic lights, and `leitstand sumo eval --tsp`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from simulators.sumo.loop import load_network, read_scenario
from simulators.sumo.transit import TspPolicy, plan_lines, run_transit
from tests.cli_helpers import leitstand as run_cli
from tests.cli_helpers import one_clean_line
from tests.sumo_nets import build

pytestmark = pytest.mark.slow  # SUMO runs, child processes (the CLI)


@pytest.fixture(scope="module")
def grid(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build("grid", tmp_path_factory.mktemp("grid"), end_s=900)


def test_lines_cross_controlled_signals_and_priority_is_safe(grid: Path) -> None:
    net, signals = load_network(read_scenario(grid))
    lines = plan_lines(net, signals)
    assert len(lines) == 2 and all(ln.signals >= 1 and not any(e.startswith(":") for e in ln.edges) for ln in lines)
    off = run_transit(grid, 1, tsp=False, headway_s=60, policy=TspPolicy(late_s=0.0))
    on = run_transit(grid, 1, tsp=True, headway_s=60, policy=TspPolicy(late_s=0.0))
    assert off.buses == on.buses > 5 and off.grants == 0
    assert on.grants > 0 and on.safety_violations == off.safety_violations == 0
    # the controllers are wrapped before the first frame: no request meets "no plan driven yet"
    assert "no plan driven yet" not in on.refusal_reasons
    assert sum(on.grant_kinds.values()) == on.grants and sum(on.refusal_reasons.values()) == on.refusals


def test_an_adaptive_controller_takes_bus_calls_and_buses_gain(grid: Path) -> None:
    """Leitstand re-plans every second: a late bus becomes demand on its stage (a bus call), not
    a changed cycle; every bus late here (late_s 0, a bus a minute per line)."""
    off = run_transit(grid, 1, tsp=False, headway_s=60, policy=TspPolicy(late_s=0.0), controller="leitstand")
    on = run_transit(grid, 1, tsp=True, headway_s=60, policy=TspPolicy(late_s=0.0), controller="leitstand")
    assert on.controller == "leitstand" and on.grants > 0 and on.grant_kinds == {"bus_call": on.grants}
    assert on.bus_delay_mean < off.bus_delay_mean and on.safety_violations == off.safety_violations == 0


def test_a_refused_bus_asks_again_only_when_the_policy_says_so(grid: Path) -> None:
    once = run_transit(grid, 1, tsp=True, headway_s=60, policy=TspPolicy(late_s=0.0, retry_s=0.0))
    again = run_transit(grid, 1, tsp=True, headway_s=60, policy=TspPolicy(late_s=0.0, retry_s=2.0))
    assert again.grants + again.refusals > once.grants + once.refusals
    nobody_late = run_transit(grid, 1, tsp=True, headway_s=60, policy=TspPolicy(late_s=10_000.0))
    assert nobody_late.grants == nobody_late.refusals == 0  # conditional: on-time buses ask for nothing


def test_sumo_eval_tsp_reports_buses_and_general_traffic_apart(grid: Path) -> None:
    res = run_cli("sumo", "eval", str(grid), "--tsp", "off", "--seeds", "1,2", "--json", timeout=300)
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["tsp"] is False and out["controller"] == "fixed" and out["seeds"] == [1, 2]
    assert out["grants"] == out["refusals"] == 0 and out["safety_violations"] == 0 and out["buses"] > 0
    assert out["bus_delay_mean"] == pytest.approx(sum(out["bus_delay_per_seed"]) / 2, abs=0.01)
    assert out["other_delay_mean"] == pytest.approx(sum(out["other_delay_per_seed"]) / 2, abs=0.01)
    res = run_cli("sumo", "eval", str(grid), "--tsp", "on", "--seeds", "1", timeout=300)
    assert res.returncode == 0, res.stderr
    assert "TSP on" in res.stdout and "bus delay" in res.stdout and "general traffic" in res.stdout


@pytest.mark.parametrize(
    "args, message",
    [
        (["--tsp", "maybe"], "neither on nor off"),
        (["--tsp", "on", "--controller", "nope"], "unknown controller nope"),
        (["--tsp", "on", "--via-kafka"], "--via-kafka is not supported"),
    ],
)
def test_bad_tsp_arguments_get_one_line(args: list[str], message: str, grid: Path) -> None:
    assert message in one_clean_line(run_cli("sumo", "eval", str(grid), *args))


def test_bench_tsp_runs_other_seeds_under_the_given_policy(tmp_path: Path) -> None:
    build("grid", tmp_path / "grid", end_s=600)
    args = ("--scenario", "grid", "--scenarios", str(tmp_path), "--seeds", "1", "--first-seed", "11", "--late-s", "0", "--limit-s", "20")
    res = run_cli("bench", "tsp", *args, "--headway-s", "60", "--controller", "maxpressure", "--bus-weight", "5", timeout=300)
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["seeds"] == [11] and [r["seed"] for r in out["runs"]] == [11, 11] and out["controller"] == "maxpressure"
    assert out["policy"]["late_s"] == 0 and out["policy"]["rules"]["max_early_s"] == 20
    assert out["policy"]["rules"]["bus_weight_veh"] == 5 and out["runs"][1]["grant_kinds"] == {"bus_call": out["grants"]}
    assert out["safety_violations"] == 0 and out["grants"] == out["runs"][1]["grants"] > 0
