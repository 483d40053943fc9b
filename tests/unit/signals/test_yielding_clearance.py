"""Yielding clearance: a group whose green ends while it only yielded (turners waiting inside the
junction) keeps conflicting groups red longer than the intergreen matrix says, on that change
only; the model document carries it, the validator enforces it, the bounds refuse nonsense."""

from __future__ import annotations

import copy
import dataclasses
import json
from typing import Any

import pytest

from signals.adapter import StageAdapter
from signals.explain import Explanation, StageDecision
from signals.loader import intersection_from_dict, intersection_to_dict
from signals.model import Intersection, ModelError, SignalGroup, SignalPlan, Stage, StagePhase
from signals.monitor import SafetyMonitor
from signals.timeline import SignalState, build_timeline
from signals.validator import SafetyValidator
from tests.paths import EXAMPLE_INTERSECTION as EXAMPLE

#: longer than every intergreen of the example towards K1 / K2 (the crossings' 9 s included)
CLEARANCE_S = 12.0


def _doc(clearance: float | None = CLEARANCE_S, yielding: bool = True) -> dict[str, Any]:
    """K101 with its E/W group K3 turning permissively in stage C (it yields there)."""
    doc = json.loads(EXAMPLE.read_text())
    if yielding:
        doc["stages"][2]["yielding"] = ["K3"]
    if clearance is not None:
        next(g for g in doc["signal_groups"] if g["id"] == "K3")["yielding_clearance_s"] = clearance
    return doc


def test_only_a_change_out_of_the_stage_where_the_group_yields_waits_for_its_clearance() -> None:
    plain, x = intersection_from_dict(_doc(None)), intersection_from_dict(_doc())
    assert plain.transition_s("C", "A") == 9.0  # the crossings FN/FS -> K1
    assert x.transition_s("C", "A") == CLEARANCE_S
    assert x.transition_s("C", "B") == CLEARANCE_S
    assert x.clearance_s("C", "K3", "K1") == CLEARANCE_S
    # K3 does not end (A -> C) or never yielded where it ends: the matrix as before
    for a, b in (("A", "C"), ("B", "C"), ("A", "B"), ("B", "A")):
        assert x.transition_s(a, b) == plain.transition_s(a, b)
    # a clearance shorter than the matrix changes nothing
    short = intersection_from_dict(_doc(2.0))
    assert short.transition_s("C", "A") == 9.0


def test_the_fixed_plan_and_every_plan_built_from_the_model_keep_the_clearance() -> None:
    x = intersection_from_dict(_doc())
    plain = intersection_from_dict(_doc(None))
    assert build_timeline(x, x.fixed_plan).duration_s == build_timeline(plain, plain.fixed_plan).duration_s + (CLEARANCE_S - 9.0)
    plan = SignalPlan((StagePhase("C", 10.0), StagePhase("A", 10.0), StagePhase("C", 10.0), StagePhase("B", 6.0)), cyclic=False)
    assert SafetyValidator(x).check(plan).ok


def test_the_validator_refuses_a_timeline_that_cuts_waiting_turners_off() -> None:
    x, plain = intersection_from_dict(_doc()), intersection_from_dict(_doc(None))
    for plan in (plain.fixed_plan, SignalPlan((StagePhase("C", 10.0), StagePhase("A", 10.0)), cyclic=False)):
        report = SafetyValidator(x).check_timeline(build_timeline(plain, plan))
        assert not report.ok
        assert report.codes == {"intergreen"}
        assert any("yielded in C" in v.detail and v.subject in ("K3->K1", "K3->K2") for v in report.violations)


def test_the_model_document_carries_the_clearance() -> None:
    x = intersection_from_dict(_doc())
    again = intersection_from_dict(intersection_to_dict(x))
    assert again.groups["K3"].yielding_clearance_s == CLEARANCE_S
    assert again.transition_s("C", "A") == CLEARANCE_S
    assert "yielding_clearance_s" not in json.dumps(intersection_to_dict(intersection_from_dict(_doc(None))))


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        (_doc(yielding=False), "yields in no stage"),
        (_doc(45.0), "yielding_clearance_s 45 s outside"),
        (_doc(-1.0), "yielding_clearance_s"),
        (_doc(float("nan")), "yielding_clearance_s"),
    ],
)
def test_a_clearance_that_cannot_be_is_refused_by_name(doc: dict[str, Any], message: str) -> None:
    with pytest.raises(ModelError, match=message):
        intersection_from_dict(copy.deepcopy(doc))


def _street_gap(x: Intersection, plan: SignalPlan, clearing: str, entering: str) -> int:
    """Seconds between ``clearing``'s last green and ``entering``'s first on the street, the
    plan driven through the stage adapter second by second for a minute."""
    decision = StageDecision(x.id, 0.0, plan, Explanation("test", "0", "yielding", (), "-"), 0.0)
    adapter = StageAdapter(x)
    shown = [adapter.step(decision, float(t)) for t in range(60)]
    end = max(t for t, s in enumerate(shown) if s[clearing] is SignalState.GREEN) + 1
    return min(t for t, s in enumerate(shown) if s[entering] is SignalState.GREEN) - end


def test_the_stage_adapter_keeps_the_clearance_on_the_street() -> None:
    x = intersection_from_dict(_doc())
    plan = SignalPlan((StagePhase("C", 10.0), StagePhase("A", 30.0)), cyclic=False)
    assert _street_gap(x, plan, "K3", "K1") >= CLEARANCE_S


def _three_stages(clearance: float | None) -> Intersection:
    """S1 {G1, yielding} -> S2 {G2} -> S3 {G3}: G2 does not conflict with G1, G3 does."""
    groups = {g: SignalGroup(g, min_green_s=5.0, yellow_s=3.0, red_yellow_s=0.0) for g in ("G1", "G2", "G3")}
    groups["G1"] = dataclasses.replace(groups["G1"], yielding_clearance_s=clearance)
    stages = (
        Stage("S1", frozenset({"G1"}), 5.0, 60.0, yielding=frozenset({"G1"})),
        Stage("S2", frozenset({"G2"}), 5.0, 60.0),
        Stage("S3", frozenset({"G3"}), 5.0, 60.0),
    )
    conflicts = frozenset({frozenset({"G1", "G3"}), frozenset({"G2", "G3"})})
    intergreen = {(a, b): 3.0 for pair in conflicts for a, b in (sorted(pair), sorted(pair)[::-1])}
    plan = SignalPlan((StagePhase("S1", 10.0), StagePhase("S2", 5.0), StagePhase("S3", 10.0)))
    return Intersection("Y", groups, stages, conflicts, intergreen, plan)


def test_a_short_stage_in_between_does_not_cut_the_clearance_short() -> None:
    """S1 -> S2 (5 s, no conflict with G1) -> S3: G3 may not start until G1's clearance is over,
    though no single stage change holds it (found probing the validator)."""
    x, plain = _three_stages(20.0), _three_stages(None)
    plan = SignalPlan((StagePhase("S1", 10.0), StagePhase("S2", 5.0), StagePhase("S3", 10.0)), cyclic=False)
    tl = build_timeline(x, plan)
    s1, _s2, s3 = tl.stage_windows
    assert s3.start_s - s1.end_s >= 20.0 - 1e-9
    assert SafetyValidator(x).check(plan).ok and SafetyValidator(x).check(x.fixed_plan).ok
    cut = SafetyValidator(x).check_timeline(build_timeline(plain, plan))
    assert [v.subject for v in cut.violations] == ["G1->G3"] and "yielded in S1" in cut.violations[0].detail
    assert _street_gap(x, plan, "G1", "G3") >= 20.0  # on the street: the adapter waits for it too


def _monitored(x: Intersection, shown_by: Intersection, plan: SignalPlan) -> list[str]:
    """The violations a safety monitor of ``x`` finds on the street when ``plan`` is laid out by
    ``shown_by``'s model (the intergreen matrix alone when that has no clearance), second by second."""
    timeline = build_timeline(shown_by, plan)
    monitor = SafetyMonitor(x)
    for t in range(int(timeline.duration_s)):
        monitor.observe(float(t), {g: timeline.state_at(g, float(t)) for g in x.groups})
    return [f"{v.code} {v.subject} {v.detail}" for v in monitor.violations if v.code == "intergreen"]


def test_the_safety_monitor_holds_the_street_to_the_clearance_too() -> None:
    """The monitor judges what is shown, whatever drove it: a street that cuts the turners off
    (the plan laid out with the matrix alone) is an intergreen violation once the group's green
    ended while it only yielded, and nothing when the clearance is kept or when the group ended
    in a stage where it was protected."""
    x, plain = intersection_from_dict(_doc()), intersection_from_dict(_doc(None))
    cut = SignalPlan((StagePhase("C", 10.0), StagePhase("A", 10.0)), cyclic=False)
    found = _monitored(x, plain, cut)
    assert found and all("K3->" in f and "only yielded" in f for f in found)
    assert _monitored(x, x, cut) == [] and _monitored(plain, plain, cut) == []
    # a stage D where K3 runs protected (alone): ending there, the matrix alone binds
    with_d, with_d_plain = _doc(), _doc(None)
    for doc in (with_d, with_d_plain):
        doc["stages"].append({"id": "D", "groups": ["K3"], "min_green_s": 5, "max_green_s": 30})
    xd, plain_d = intersection_from_dict(with_d), intersection_from_dict(with_d_plain)
    protected = SignalPlan((StagePhase("D", 10.0), StagePhase("A", 10.0)), cyclic=False)
    assert _monitored(xd, plain_d, protected) == [] and _monitored(xd, plain_d, cut) != []
    # the short stage in between: S2 does not conflict with G1, S3 does
    three, three_plain = _three_stages(20.0), _three_stages(None)
    plan = SignalPlan((StagePhase("S1", 10.0), StagePhase("S2", 5.0), StagePhase("S3", 10.0)), cyclic=False)
    assert [f.split()[1] for f in _monitored(three, three_plain, plan)] == ["G1->G3"] and _monitored(three, three, plan) == []
