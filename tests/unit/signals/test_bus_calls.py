"""Transit priority for the adaptive controllers (signals/priority.py ``BusCall``): a late bus
counts as queued vehicles on its stage in leitstand's and max-pressure's own choice, on the K101
example (stages A: K1 N_in/S_in, B: K2 lefts, C: K3 E_in/W_in; K3 waits at most 100 s)."""

from __future__ import annotations

import math

import hypothesis.strategies as st
import pytest
from hypothesis import given, settings

from signals.controllers import DetectorObservation, FixedTimeController, LaneMeasurement, make_controller
from signals.controllers.base import TakesBusCalls
from signals.controllers.leitstand import LeitstandController
from signals.controllers.priority import PriorityController
from signals.explain import StageDecision
from signals.loader import load_intersection
from signals.priority import BusCall, Grant, PriorityCall, PriorityRules, Refusal, call_for_bus
from signals.validator import SafetyValidator

X = load_intersection("signals/examples/k101_four_arm.json")
T0 = 1_000_000.0


def frame(t: float, queues: dict[str, float]) -> DetectorObservation:
    lanes = {la.id: LaneMeasurement(queue_veh=queues.get(la.id, 0.0), vehicles=queues.get(la.id, 0.0)) for la in X.lanes}
    return DetectorObservation(X.id, T0 + t, 1.0, lanes)


def bus(stage: str, at: float, eta: float, vehicle: str = "bus-7") -> PriorityCall:
    return PriorityCall(f"r-{vehicle}", vehicle, stage, T0 + at, eta, 180.0)


def stage_of(d: StageDecision) -> str:
    return d.plan.phases[-1].stage


def first_change(
    name: str, queues: dict[str, float], calls: dict[float, PriorityCall], until: float = 200.0
) -> tuple[float, list[StageDecision]]:
    """Seconds until the controller first leaves stage A (frames every second), with the calls
    handed to it at the given seconds, and the decisions made."""
    ctl = PriorityController(make_controller(name, X), X)
    decisions = []
    for t in range(int(until)):
        if t in calls:
            assert isinstance(ctl.request(calls[t]), BusCall)
        d = ctl.decide(frame(t, queues))
        decisions.append(d)
        if stage_of(d) != "A":
            return t, decisions
    return math.inf, decisions


def test_a_call_is_the_buses_eta_and_margin_bounded_and_refused_without_a_stage_or_estimate() -> None:
    rules = PriorityRules(margin_s=3.0, max_call_s=60.0)
    near = call_for_bus(X, bus("C", 10, eta=12), rules)
    assert isinstance(near, BusCall) and near.until_s == T0 + 10 + 15 and near.weight_veh == rules.bus_weight_veh
    far = call_for_bus(X, bus("C", 10, eta=400), rules)
    assert isinstance(far, BusCall) and far.until_s == T0 + 10 + 60  # a bus stuck far back biases for a minute at most
    assert "bus bus-7 180 s late" in near.explain() and "counts as 30 waiting vehicles" in near.explain()
    for bad, why in ((bus("Z", 10, 5), "not a stage"), (bus("C", 10, math.nan), "arrival"), (bus("C", 10, math.inf), "arrival")):
        out = call_for_bus(X, bad, rules)
        assert isinstance(out, Refusal) and why in out.reason
    off = call_for_bus(X, bus("C", 10, 5), PriorityRules(bus_weight_veh=0.0))
    assert isinstance(off, Refusal) and "switched off" in off.reason
    with pytest.raises(ValueError, match="bus call"):
        PriorityRules(bus_weight_veh=-1.0)


@pytest.mark.parametrize("name", ["leitstand", "maxpressure"])
def test_a_call_on_a_red_stage_brings_its_green_sooner(name: str) -> None:
    # two vehicles keep A's green paying; nobody waits at C: without a bus C waits for the wait guard
    queues = {"N_in": 2.0}
    alone, _ = first_change(name, queues, {})
    called, decisions = first_change(name, queues, {12: bus("C", 12, eta=20)})
    assert called < alone and called >= 12
    assert stage_of(decisions[-1]) == "C"
    said = decisions[-1].explanation
    assert "transit priority: bus bus-7 (180 s late" in said.expected_effect and dict(said.inputs)["bus_call_veh.C"] == 30.0


@pytest.mark.parametrize("name", ["leitstand", "maxpressure"])
def test_a_call_on_the_green_stage_holds_it_until_the_call_ends_within_the_maximum_green(name: str) -> None:
    # vehicles wait at C, one at A: without a bus the green goes to C soon after A's minimum
    queues = {"N_in": 1.0, "E_in": 3.0, "W_in": 3.0}
    alone, _ = first_change(name, queues, {})
    held, _ = first_change(name, queues, {3: bus("A", 3, eta=20)})
    assert alone < 20 <= held  # the call ends at 3 + 20 + 3 s
    assert held <= X.stage("A").max_green_s
    # a call that would last longer still yields to A's maximum green and the others' maximum waits
    capped, decisions = first_change(name, queues, {3: bus("A", 3, eta=110)})
    assert capped <= X.stage("A").max_green_s + 1 and all(SafetyValidator(X).check(d.plan).ok for d in decisions)


def test_a_call_is_no_reason_to_give_green_into_spillback() -> None:
    """Leitstand: a stage whose every exit is full serves nobody, a bus included (``_can_move``)."""
    queues = {"N_in": 2.0}
    alone, _ = first_change("leitstand", queues, {})
    full = {"W_out": 10.0, "N_out": 10.0, "S_out": 10.0, "E_out": 10.0}  # C's movements all lead into these
    blocked, decisions = first_change("leitstand", queues | full, {12: bus("C", 12, eta=20)})
    assert blocked >= alone or stage_of(decisions[-1]) != "C"
    during = decisions[20].explanation  # the call runs from 12 s to 35 s
    assert "bus_call_veh.C" not in dict(during.inputs)
    assert "bus bus-7" in during.expected_effect and "every exit of stage C is full" in during.expected_effect


@pytest.mark.parametrize("name", ["leitstand", "maxpressure"])
def test_a_flood_of_calls_weighs_no_more_than_two_buses(name: str) -> None:
    """A faulty bus agent, or anyone writing to signals.priority, calls stage A for 50 "buses":
    A is held exactly as for the two due first (``MAX_CALLS_PER_STAGE``), and the explanation says so."""
    queues = {"N_in": 1.0, "E_in": 40.0, "W_in": 40.0}  # 80 waiting at C outweigh two buses in time, not fifty

    def run(n: int) -> tuple[list[str], list[StageDecision]]:
        ctl = PriorityController(make_controller(name, X), X)
        out = []
        for t in range(150):
            if t == 3:
                for k in range(n):
                    ctl.request(bus("A", 3, eta=60, vehicle=f"bus-{k:02d}"))
            out.append(ctl.decide(frame(t, queues)))
        return [stage_of(d) for d in out], out

    two, _ = run(2)
    flood, decisions = run(50)
    assert flood == two
    if name == "leitstand":  # two buses hold A a while against the 80 at C (max-pressure switches at once)
        assert two != run(0)[0]
    assert "48 more calling stage A not weighed (at most 2 a stage)" in decisions[10].explanation.expected_effect


def test_a_call_ends_when_its_time_is_up_and_a_new_call_of_the_same_bus_replaces_it() -> None:
    ctl = LeitstandController(X)
    assert isinstance(ctl, TakesBusCalls)
    ctl.decide(frame(0, {}))
    first = call_for_bus(X, bus("C", 0, eta=10))
    again = call_for_bus(X, bus("B", 5, eta=10))
    assert isinstance(first, BusCall) and isinstance(again, BusCall)
    ctl.take_call(first)
    assert list(ctl.bus_calls(T0 + 5)) == ["C"]
    ctl.take_call(again)  # the same bus, now heading for B
    assert list(ctl.bus_calls(T0 + 6)) == ["B"] and ctl.bus_calls(T0 + 19) == {}


def test_the_wrapper_gives_a_cyclic_program_a_grant_and_an_adaptive_controller_a_call() -> None:
    fixed = PriorityController(FixedTimeController(X), X)
    fixed.decide(DetectorObservation(X.id, T0, 1.0, {}))
    fixed.decide(DetectorObservation(X.id, T0 + 30, 1.0, {}))
    assert isinstance(fixed.request(bus("A", 30, eta=10)), Grant)
    adaptive = PriorityController(make_controller("leitstand", X), X)
    adaptive.decide(frame(0, {}))
    assert isinstance(adaptive.request(bus("C", 0, eta=10)), BusCall)
    assert isinstance(adaptive.request(bus("C", 1, eta=10, vehicle="bus-8")), BusCall)  # several buses at once
    early = adaptive.request(PriorityCall("r-early", "bus-9", "C", T0 + 1, 10.0, -30.0))
    assert isinstance(early, Refusal) and "not late" in early.reason  # a record written by hand, or a faulty agent
    later = adaptive.decide(frame(9, {}))
    assert "bus bus-7" in later.explanation.expected_effect and "bus bus-8" in later.explanation.expected_effect


@settings(max_examples=60, deadline=None)
@given(
    name=st.sampled_from(["leitstand", "maxpressure"]),
    queues=st.lists(st.floats(min_value=0, max_value=30), min_size=6, max_size=6),
    calls=st.lists(st.tuples(st.integers(0, 239), st.sampled_from(["A", "B", "C"]), st.floats(0, 200), st.floats(0, 100)), max_size=12),
)
def test_no_bus_call_breaks_a_safety_bound(name: str, queues: list[float], calls: list[tuple[int, str, float, float]]) -> None:
    """Any calls (stage, ETA, weight up to 100 vehicles) at any time: every plan passes the validator."""
    validator = SafetyValidator(X)
    ctl = PriorityController(make_controller(name, X), X)
    q = dict(zip(["N_in", "S_in", "N_left", "S_left", "E_in", "W_in"], queues, strict=True))
    by_t: dict[int, list[tuple[str, float, float]]] = {}
    for t, stage, eta, weight in calls:
        by_t.setdefault(t, []).append((stage, eta, weight))
    for t in range(240):
        for k, (stage, eta, weight) in enumerate(by_t.get(t, [])):
            ctl.rules = PriorityRules(bus_weight_veh=weight)
            ctl.request(bus(stage, t, eta, vehicle=f"bus-{k}"))
        d = ctl.decide(frame(t, q))
        assert validator.check(d.plan).ok, validator.check(d.plan).violations


def test_leitstand_following_the_program_on_coarse_frames_refuses_a_call_and_says_why() -> None:
    """A call leitstand would not weigh (it runs the shipped program on minute frames) is refused,
    so the audit does not record a grant that changes nothing; fast frames bring calls back."""
    ctl = PriorityController(make_controller("leitstand", X), X)
    for t in range(0, 301, 60):
        d = ctl.decide(DetectorObservation(X.id, T0 + t, 60.0, frame(t, {}).lanes))
    assert "runs the shipped program" in d.explanation.expected_effect
    refused = ctl.request(bus("C", 300, eta=10))
    assert isinstance(refused, Refusal) and "follows the shipped program" in refused.reason
    assert "every 60 s" in refused.reason
    taken = None
    for t in range(301, 400):
        ctl.decide(frame(t, {}))
        if isinstance(taken := ctl.request(bus("C", t, eta=10)), BusCall):
            break
    assert isinstance(taken, BusCall)  # adaptive again: the call is weighed
