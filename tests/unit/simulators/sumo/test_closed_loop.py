"""SUMO closed loop on networks built by netgenerate: models, safety of shown states, benefit."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from signals.explain import StageDecision
from signals.validator import SafetyValidator
from simulators.sumo.loop import InProcessSource, read_scenario, run
from simulators.sumo.network import intersections_from_sumo
from streams.records import IntersectionFrame
from tests.cli_helpers import leitstand as run_cli
from tests.cli_helpers import one_clean_line
from tests.sumo_nets import build

pytestmark = pytest.mark.slow  # child processes (the CLI) or SUMO runs


@pytest.fixture(scope="module")
def single(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build("single", tmp_path_factory.mktemp("single"), end_s=600)


@pytest.fixture(scope="module")
def grid(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build("grid", tmp_path_factory.mktemp("grid"), end_s=400)


def test_model_from_tllogic_and_foes(single: Path) -> None:
    signals = intersections_from_sumo(read_scenario(single).net_file)
    assert list(signals) == ["B1"]
    s = signals["B1"]
    x = s.intersection
    assert len(x.stages) == 2 and x.conflicts, "two stages of a four-arm crossing, with conflicts"
    # crossing movements of the two stages conflict; groups within a stage never do
    a, b = x.stages
    assert any(x.conflicting(g, h) for g in a.groups for h in b.groups)
    assert not any(x.conflicting(g, h) for g in a.groups for h in a.groups)
    assert SafetyValidator(x).check(x.fixed_plan).ok
    # the left turns netgenerate signals permissively (``g``) yield in their stage; nothing else does
    assert [sorted(st.yielding) for st in x.stages] == [sorted(g for g, ch in s.green_chars[st.id].items() if ch == "g") for st in x.stages]
    assert all(len(st.yielding) == 1 for st in x.stages)
    # every approach lane of the crossing has a detector; exits are measured too
    kinds = {kind for _, kind in s.detectors.values()}
    assert kinds == {"in", "out"} and sum(k == "in" for _, k in s.detectors.values()) == 8


def test_adaptive_beats_fixed_without_a_single_violation(single: Path) -> None:
    fixed = run(single, "fixed", 1)
    ours = run(single, "leitstand", 1)
    assert fixed.trips == ours.trips > 100
    assert fixed.safety_violations == ours.safety_violations == 0
    assert ours.delay_mean < 0.6 * fixed.delay_mean, (ours.delay_mean, fixed.delay_mean)
    assert ours.stage_changes > fixed.stage_changes  # it adapts: shorter greens when demand allows


def test_frames_a_minute_apart_reach_the_controller_with_the_minutes_counts(single: Path) -> None:
    """``frame_s`` (``--frame-interval``): the controller hears once a minute, the counts summed
    over the minute; the plans run in between, safely, and the signal adapts less often."""
    heard: list[tuple[float, float, int, int]] = []

    class Listening(InProcessSource):
        def decide(self, frames: list[IntersectionFrame]) -> dict[str, StageDecision]:
            heard.extend(
                (f.event_time.timestamp(), f.interval_s, sum(r.count for r in f.detectors), max(r.count for r in f.detectors))
                for f in frames
            )
            return super().decide(frames)

    every_step = run(single, "leitstand", 1)
    minute = run(single, "leitstand", 1, Listening(), frame_s=60.0)
    assert len(heard) == 10  # 600 s
    assert {round(b - a) for (a, *_), (b, *_) in zip(heard, heard[1:])} == {60}
    assert {iv for _, iv, *_ in heard} == {60.0}  # the first frame too: nothing passed before the start
    assert sum(c for _, _, c, _ in heard[1:]) > 10 * heard[0][2]
    # a stop-line loop passes a vehicle or two a second: tens in one frame are a minute's sum
    assert max(most for *_, most in heard[1:]) > 10
    assert minute.safety_violations == 0 and minute.rejected_decisions == 0 and minute.trips == every_step.trips
    assert minute.stage_changes < every_step.stage_changes


def test_same_seed_same_result_and_seeds_differ(grid: Path) -> None:
    a = run(grid, "maxpressure", 3)
    b = run(grid, "maxpressure", 3, InProcessSource())
    c = run(grid, "maxpressure", 4)
    assert (a.delay_mean, a.trips, a.stage_changes) == (b.delay_mean, b.trips, b.stage_changes)
    assert a.delay_mean != c.delay_mean
    assert a.safety_violations == 0


def test_advisory_mode_holds_the_fixed_program(single: Path) -> None:
    """Nobody approves: the signal must behave exactly like the fixed program."""
    fixed = run(single, "fixed", 2)
    held = run(single, "leitstand", 2, InProcessSource(mode="advisory"))
    assert held.delay_mean == fixed.delay_mean and held.stage_changes == fixed.stage_changes


def test_sumo_eval_cli_prints_the_issue_fields(grid: Path) -> None:
    res = run_cli("sumo", "eval", str(grid), "--controller", "leitstand", "--seeds", "1,2", "--json")
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    for key in (
        "scenario",
        "controller",
        "seeds",
        "delay_mean",
        "timeloss_mean",
        "duration_mean",
        "waiting_mean",
        "trips",
        "unfinished",
        "teleports",
        "safety_violations",
        "wall_s",
    ):
        assert key in out, key
    assert out["seeds"] == [1, 2] and out["teleports"] == 0 and out["safety_violations"] == 0
    assert len(out["delay_per_seed"]) == 2 and out["delay_mean"] == pytest.approx(sum(out["delay_per_seed"]) / 2, abs=1e-3)


def test_sumo_eval_param_changes_the_controllers_constant(grid: Path) -> None:
    """``--param`` reaches every intersection's controller in the run's processes: a leitstand
    that never finds a switch worth its stranded vehicles (stranded_weight 1000) switches only on
    its guards, and the delay moves; the constants are echoed in the JSON."""
    base = json.loads(run_cli("sumo", "eval", str(grid), "--seeds", "1", "--json").stdout)
    res = run_cli("sumo", "eval", str(grid), "--seeds", "1", "--param", "stranded_weight=1000", "--json")
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["params"] == {"stranded_weight": 1000.0} and "params" not in base
    assert out["delay_mean"] != base["delay_mean"]


def test_signals_on_two_control_workers_see_each_others_frames_one_step_late() -> None:
    """``--control-workers``: the frames a worker holds when it decides are its own of this step
    and the other worker's of the step before (what its neighbour feed has delivered by then)."""
    from signals.controllers import DetectorObservation

    source = InProcessSource(control_workers=2)
    source.worker_of = {"a": 0, "b": 1, "c": 0}
    now = {k: DetectorObservation(k, 10.0, 1.0, {}) for k in "abc"}
    assert source._view(0, now) == {"a": now["a"], "c": now["c"]}  # the first step: nothing from b yet
    source.previous = {k: DetectorObservation(k, 9.0, 1.0, {}) for k in "abc"}
    view = source._view(0, now)
    assert (view["a"].time_s, view["b"].time_s, view["c"].time_s) == (10.0, 9.0, 10.0)
    assert source._view(1, now)["a"].time_s == 9.0 and source._view(1, now)["b"].time_s == 10.0


def test_sumo_compare_writes_table_and_chart(grid: Path, tmp_path: Path) -> None:
    chart = tmp_path / "delay.png"
    res = run_cli("sumo", "compare", str(grid), "--controllers", "fixed,leitstand", "--seeds", "1", "--chart", str(chart), "--json")
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    ratios = {r["controller"]: r["ratio_to_fixed"] for r in out["results"]}
    assert ratios["fixed"] == 1.0 and ratios["leitstand"] < 1.0
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_floor_runs_every_signal_green_and_scores_the_signal_share(single: Path, tmp_path: Path) -> None:
    """``sumo compare --floor``: the all-green run waits (almost) nowhere, so its delay is below
    every controller's; the signal share puts fixed time at 1 and leitstand in between, from the
    delays printed beside it; the same trips are counted (same demand, same seed)."""
    res = run_cli(
        "sumo",
        "compare",
        str(single),
        "--controllers",
        "fixed,leitstand",
        "--seeds",
        "1",
        "--floor",
        "--chart",
        str(tmp_path / "c.png"),
        "--json",
    )
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    floor, by = out["floor"], {r["controller"]: r for r in out["results"]}
    assert floor["reference"] == "floor" and floor["signals"] == 1 and floor["seeds"] == [1]
    assert floor["trips"] == by["fixed"]["trips"]
    assert floor["waiting_mean"] < 0.2 * by["fixed"]["waiting_mean"]
    assert floor["delay_mean"] < by["leitstand"]["delay_mean"] < by["fixed"]["delay_mean"]
    assert by["fixed"]["signal_share"] == 1.0
    expected = (by["leitstand"]["delay_mean"] - floor["delay_mean"]) / (by["fixed"]["delay_mean"] - floor["delay_mean"])
    assert by["leitstand"]["signal_share"] == pytest.approx(expected, abs=1e-3) and 0.0 < expected < 1.0


def test_signal_share_needs_room_above_the_floor() -> None:
    from simulators.sumo.floor import signal_share

    assert signal_share(20.0, 40.0, 10.0) == 0.333
    assert signal_share(10.0, 10.0, 10.0) is None  # fixed time at the floor: nothing to win, no share
    assert signal_share(12.0, 9.0, 10.0) is None


@pytest.mark.parametrize(
    "args, message",
    [
        (["sumo", "eval", "missing.sumocfg"], "no such scenario file"),
        (["sumo", "eval", "{grid}", "--controller", "nope"], "unknown controller nope"),
        (["sumo", "eval", "{grid}", "--seeds", "x"], "--seeds"),
        (["sumo", "eval", "{grid}", "--failed-detectors", "0.1", "--failure-kind", "melted"], "known: dead, stuck, noisy"),
        (["sumo", "eval", "{grid}", "--failure-kind", "stuck"], "needs --failed-detectors"),
        (["sumo", "eval", "{grid}", "--frame-interval", "901"], "--frame-interval"),
        (["sumo", "eval", "{grid}", "--param", "wait_scale=60"], "leitstand takes no constant 'wait_scale'; it takes: decision_interval_s"),
        (["sumo", "eval", "{grid}", "--param", "wait_scale_s"], "write KEY=VALUE"),
        (["sumo", "eval", "{grid}", "--param", "wait_scale_s=fast"], "'fast' is not a number"),
        (["sumo", "eval", "{grid}", "--param", "wait_scale_s=nan"], "must be a finite number"),
        (["sumo", "eval", "{grid}", "--param", "wait_scale_s=0"], "wait_scale_s must be > 0 and <= 3600, not 0"),
        (
            ["sumo", "eval", "{grid}", "-c", "fixed", "--param", "stranded_weight=2"],
            "fixed takes no constant 'stranded_weight'",
        ),
        (["sumo", "eval", "{grid}", "--param", "wait_scale_s=60", "--via-kafka"], "--param applies to the in-process path"),
        (["sumo", "eval", "{grid}", "--control-workers", "2", "--via-kafka"], "run that many control workers"),
        (["sumo", "eval", "{grid}", "--control-workers", "0"], "--control-workers"),
        (["sumo", "compare", "{grid}", "--controllers", "leitstand", "--floor"], "add fixed to --controllers"),
    ],
)
def test_bad_arguments_get_one_line(args: list[str], message: str, grid: Path) -> None:
    res = run_cli(*[a.format(grid=grid) for a in args])
    assert message in one_clean_line(res)
