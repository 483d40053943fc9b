"""Intersection model: the example loads, inconsistent configurations are refused, transitions
honour intergreens, yellows and red-yellows, and timelines are laid out as RiLSA prescribes."""

from __future__ import annotations

import copy
import json

import pytest

from signals.loader import intersection_from_dict, load_intersection
from signals.model import ModelError, SignalPlan, StagePhase
from signals.timeline import SignalState, build_timeline, runs
from tests.paths import EXAMPLE_INTERSECTION as EXAMPLE


@pytest.fixture()
def doc() -> dict:
    return json.loads(EXAMPLE.read_text())


def test_example_loads_with_pedestrian_groups_and_bounds(doc: dict) -> None:
    x = load_intersection(EXAMPLE)
    assert {g.kind for g in x.groups.values()} == {"vehicle", "pedestrian"}
    assert len(x.stages) == len(doc["stages"])
    assert x.cycle_max_s == doc["cycle"]["max_s"]
    assert x.group_max_wait_s("K3") == 100 and x.group_max_wait_s("K1") == doc["max_wait_s"]
    assert x.conflicting("K1", "K2") and x.conflicting("K2", "K1") and not x.conflicting("K1", "FE")


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: d["stages"][0]["groups"].append("K2"), "conflicting groups"),
        (lambda d: d["intergreen_s"]["K1"].pop("K2"), "no intergreen"),
        (lambda d: d["intergreen_s"]["K1"].update({"FE": 3}), "non-conflicting"),
        (lambda d: d["stages"].pop(1), "in no stage"),
        (
            lambda d: (
                d.update(stages=d["stages"][:1], conflicts=[], intergreen_s={}),
                d["stages"][0].update(groups=[g["id"] for g in d["signal_groups"]]),
            ),
            "two stages",
        ),
        (lambda d: d.update(schema="other/1"), "schema"),
        (lambda d: d["fixed_plan"].append({"stage": "Z", "green_s": 5}), "unknown stage"),
        (lambda d: d["stages"][0].update(min_green_s=70), "min_green <= max_green"),
        (lambda d: d["lane_areas"][0].update(downstream=["nowhere"]), "downstream"),
    ],
)
def test_inconsistent_configurations_are_refused(doc: dict, edit, message: str) -> None:
    bad = copy.deepcopy(doc)
    edit(bad)
    with pytest.raises(ModelError, match=message):
        intersection_from_dict(bad)


def test_transition_is_the_longest_of_intergreens_yellows_and_red_yellows(doc: dict) -> None:
    x = load_intersection(EXAMPLE)
    for a in x.stages:
        for b in x.stages:
            t = x.transition_s(a.id, b.id)
            if a.id == b.id:
                assert t == 0
                continue
            ending, starting = a.groups - b.groups, b.groups - a.groups
            for e in ending:
                assert t >= x.groups[e].yellow_s
                for s in starting:
                    if x.conflicting(e, s):
                        assert t >= x.intergreen_s[(e, s)]
            for s in starting:
                assert t >= x.groups[s].red_yellow_s
    # raising one intergreen above everything else makes it the binding one
    doc["intergreen_s"]["FE"]["K2"] = 30
    assert intersection_from_dict(doc).transition_s("A", "B") == 30


def test_timeline_covers_the_cycle_and_follows_the_rilsa_sequence() -> None:
    x = load_intersection(EXAMPLE)
    plan = x.fixed_plan
    tl = build_timeline(x, plan)
    seq = plan.stage_sequence
    expected = sum(p.green_s for p in plan.phases) + sum(x.transition_s(seq[i], seq[(i + 1) % len(seq)]) for i in range(len(seq)))
    assert tl.duration_s == pytest.approx(expected)
    for g, ivs in tl.intervals.items():
        assert ivs[0].start_s == 0 and ivs[-1].end_s == pytest.approx(tl.duration_s)
        assert all(a.end_s == pytest.approx(b.start_s) for a, b in zip(ivs, ivs[1:]))
        for r in runs(tl, g):
            if r.state is SignalState.YELLOW:
                assert r.duration_s == pytest.approx(x.groups[g].yellow_s)
    for w in tl.stage_windows:
        for g in x.stage(w.stage).groups:
            assert tl.state_at(g, (w.start_s + w.end_s) / 2) is SignalState.GREEN


def test_acyclic_plan_has_open_ends_and_no_final_transition() -> None:
    x = load_intersection(EXAMPLE)
    plan = SignalPlan((StagePhase("A", 10), StagePhase("C", 12)), cyclic=False)
    tl = build_timeline(x, plan)
    assert tl.duration_s == pytest.approx(22 + x.transition_s("A", "C"))
    k1 = runs(tl, "K1")
    assert k1[0].open_start and k1[-1].open_end and k1[-1].state is SignalState.RED


def test_intergreen_binds_across_a_stage_in_between(doc: dict) -> None:
    """FE clears at the end of A; K3 enters only after B, yet still needs FE's intergreen."""
    from signals.timeline import transition_times
    from signals.validator import SafetyValidator

    doc["intergreen_s"]["FE"]["K3"] = 20.0
    x = intersection_from_dict(doc)
    plan = SignalPlan((StagePhase("A", 30), StagePhase("B", 5), StagePhase("C", 20)))
    assert x.transition_s("B", "C") < 20 - 5 - x.transition_s("A", "B")  # neighbours alone are too short
    trans = transition_times(x, plan)
    assert trans[1] == pytest.approx(20 - 5 - trans[0])
    tl = build_timeline(x, plan)
    fe_end = next(iv.end_s for iv in tl.intervals["FE"] if iv.state is SignalState.GREEN)
    k3_start = next(iv.start_s for iv in tl.intervals["K3"] if iv.state is SignalState.GREEN)
    assert k3_start - fe_end == pytest.approx(20.0)
    assert SafetyValidator(x).check(plan).ok
