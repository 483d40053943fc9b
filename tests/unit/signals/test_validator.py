"""The safety validator on the example junction: the shipped plan passes, each kind of violation
is rejected with its code, and the gate falls back to the last safe plan and logs why."""

from __future__ import annotations

import dataclasses
import logging
from typing import Unpack

import pytest

from signals.explain import Explanation, StageDecision
from signals.loader import load_intersection
from signals.model import Intersection, SignalGroupTimings, SignalPlan, StagePhase
from signals.timeline import Interval, SignalState, SignalTimeline, build_timeline
from signals.validator import SafetyGate, SafetyValidator
from tests.paths import EXAMPLE_INTERSECTION as EXAMPLE


@pytest.fixture()
def x() -> Intersection:
    return load_intersection(EXAMPLE)


def _with_group(x: Intersection, gid: str, **changes: Unpack[SignalGroupTimings]) -> Intersection:
    groups = dict(x.groups)
    groups[gid] = dataclasses.replace(groups[gid], **changes)
    return dataclasses.replace(x, groups=groups)


def _plan(*phases: tuple[str, float]) -> SignalPlan:
    return SignalPlan(tuple(StagePhase(s, g) for s, g in phases))


def test_shipped_plan_passes(x: Intersection) -> None:
    assert SafetyValidator(x).check(x.fixed_plan).ok


@pytest.mark.parametrize(
    ("phases", "cycle_min_s", "code"),
    [
        ((("A", 6), ("B", 10), ("C", 28)), 40.0, "stage_min_green"),  # A's minimum is 8 s
        ((("A", 36), ("B", 30), ("C", 28)), 40.0, "stage_max_green"),  # B's maximum is 25 s
        ((("A", 60), ("B", 25), ("C", 40)), 40.0, "cycle_bounds"),  # 146 s > 120 s
        ((("A", 8), ("B", 5), ("C", 8)), 50.0, "cycle_bounds"),  # 42 s < 50 s
        ((("A", 36), ("C", 28)), 40.0, "starved"),  # K2 (protected left turn) never green
        ((("A", 60), ("B", 25), ("A", 8), ("C", 8)), 40.0, "max_wait"),  # K3 waits > 100 s
    ],
)
def test_plan_level_violations_are_rejected(x: Intersection, phases, cycle_min_s: float, code: str) -> None:
    x = dataclasses.replace(x, cycle_min_s=cycle_min_s)
    report = SafetyValidator(x).check(_plan(*phases))
    assert code in report.codes, report.violations


def test_a_stage_repeated_in_a_row_is_one_green_for_its_bounds(x: Intersection) -> None:
    """B's maximum is 25 s. ``B 25, B 25, B 25`` is 75 s of B on the street (no transition in
    between) and was accepted phase by phase; a cyclic plan ending with B runs on into its first
    B. Split the other way, two 4 s phases of A make one 8 s green (A's minimum)."""
    v = SafetyValidator(x)
    acyclic = SignalPlan(tuple(StagePhase(s, g) for s, g in (("B", 25), ("B", 25), ("B", 25), ("A", 8), ("C", 8), ("A", 8))), cyclic=False)
    assert "stage_max_green" in v.check(acyclic).codes
    wrapped = _plan(("B", 15), ("A", 20), ("C", 20), ("B", 15))
    assert "stage_max_green" in v.check(wrapped).codes  # 30 s of B across the cycle's end
    assert "stage_max_green" not in v.check(_plan(("B", 12), ("A", 20), ("C", 20), ("B", 12))).codes
    split = SafetyValidator(x).check(_plan(("A", 4), ("A", 4), ("B", 10), ("C", 28)))
    assert "stage_min_green" not in split.codes, split.violations


def _timeline_with(tl: SignalTimeline, group: str, intervals: list[Interval]) -> SignalTimeline:
    ivs = dict(tl.intervals)
    ivs[group] = tuple(intervals)
    return dataclasses.replace(tl, intervals=ivs)


def test_conflicting_greens_on_the_timeline_are_rejected(x: Intersection) -> None:
    tl = build_timeline(x, x.fixed_plan)
    forged = _timeline_with(tl, "FN", [Interval(0.0, tl.duration_s, SignalState.GREEN)])
    report = SafetyValidator(x).check_timeline(forged)
    assert "conflicting_greens" in report.codes
    assert any(v.subject == "FN/K1" for v in report.violations)


@pytest.mark.parametrize(
    ("built_with", "code"),
    [
        (
            lambda x: dataclasses.replace(x, intergreen_s={**x.intergreen_s, ("FN", "K1"): 2.0, ("FS", "K1"): 2.0, ("K3", "K1"): 2.0}),
            "intergreen",
        ),
        (lambda x: _with_group(x, "K1", yellow_s=4.0), "yellow_duration"),
        (lambda x: _with_group(x, "K1", yellow_s=0.0), "signal_sequence"),
        (lambda x: _with_group(x, "K2", red_yellow_s=2.0), "red_yellow_duration"),
        (lambda x: _with_group(x, "K2", red_yellow_s=0.0), "signal_sequence"),
    ],
)
def test_timelines_built_with_wrong_timings_are_rejected(x: Intersection, built_with, code: str) -> None:
    forged = build_timeline(built_with(x), x.fixed_plan)
    assert code in SafetyValidator(x).check_timeline(forged).codes


def test_group_minimum_green_is_enforced_even_when_the_stage_minimum_is_lower(x: Intersection) -> None:
    # pedestrian FE needs 8 s; give it 12 s and demand a stage A of 10 s
    strict = _with_group(x, "FE", min_green_s=12.0)
    report = SafetyValidator(strict).check(_plan(("A", 10), ("B", 10), ("C", 28)))
    assert "min_green" in report.codes and "stage_min_green" not in report.codes


def _decision(x: Intersection, plan: SignalPlan, who: str) -> StageDecision:
    return StageDecision(x.id, 0.0, plan, Explanation(who, "t", "test_rule", (), "test"))


def test_gate_falls_back_to_last_safe_plan_and_logs_the_reason(x: Intersection, caplog) -> None:
    gate = SafetyGate(SafetyValidator(x), _decision(x, x.fixed_plan, "fixed"))
    good = _decision(x, _plan(("A", 30), ("B", 12), ("C", 30)), "webster")
    assert gate.admit(good).accepted
    bad = _decision(x, _plan(("A", 3), ("B", 12), ("C", 30)), "webster")
    with caplog.at_level(logging.WARNING, logger="signals.validator"):
        out = gate.admit(bad)
    assert not out.accepted and out.applied is good
    assert "stage_min_green" in caplog.text and "K101" in caplog.text


def test_gate_refuses_an_unsafe_fallback(x: Intersection) -> None:
    with pytest.raises(ValueError, match="unsafe"):
        SafetyGate(SafetyValidator(x), _decision(x, _plan(("A", 3), ("B", 10), ("C", 28)), "fixed"))


def test_pedestrian_groups_have_their_own_wait_limit(x: Intersection) -> None:
    strict = _with_group(x, "FN", max_wait_s=40.0)
    report = SafetyValidator(strict).check(x.fixed_plan)
    assert any(v.code == "max_wait" and v.subject == "FN" for v in report.violations)
