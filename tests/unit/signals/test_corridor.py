"""Corridor awareness: two intersections whose detectors cover one short link lend each other
their readings (signals/corridor.py), and leitstand uses a neighbour's reading only where its own
detector is silent or frozen."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from signals.controllers import DetectorObservation, LaneMeasurement, make_controller
from signals.controllers.base import NeighbourReading
from signals.controllers.leitstand import MISSED_CHANGES
from signals.corridor import (
    FEED_TRAVEL_S,
    FRESH_S,
    SHORT_LINK_M,
    Corridor,
    Peers,
    ShownGreens,
    crowded_zones,
    into_red,
    short_drains,
    short_feeds,
    with_exits_into_red,
    with_fed_now,
    with_neighbours,
    zone_peers,
)
from signals.desk import ControlDesk, DeskConfig, PlanOut
from signals.explain import Explanation, StageDecision
from signals.loader import intersection_from_dict, intersection_to_dict, load_intersection
from signals.model import Intersection, ModelError, SignalPlan, Stage, StagePhase
from signals.timeline import build_timeline
from tests.paths import EXAMPLE_INTERSECTION as EXAMPLE

LINK = "link-A-B"


def _pair() -> tuple[Intersection, Intersection]:
    """A and B, copies of the example crossing: A's east exit is B's west approach (one zone)."""
    base = load_intersection(EXAMPLE)

    def zoned(iid: str, lane: str) -> Intersection:
        lanes = tuple(dataclasses.replace(la, zone=LINK) if la.id == lane else la for la in base.lanes)
        return dataclasses.replace(base, id=iid, lanes=lanes)

    return zoned("A", "E_out"), zoned("B", "W_in")


def test_zone_peers_pair_detectors_of_different_intersections_on_one_zone() -> None:
    a, b = _pair()
    peers = zone_peers([a, b])
    assert peers == {"A": {"E_out": (("B", "W_in"),)}, "B": {"W_in": (("A", "E_out"),)}}
    # two detectors of one intersection on one zone are not neighbours
    twice = dataclasses.replace(a, lanes=tuple(dataclasses.replace(la, zone=LINK) if la.id == "W_out" else la for la in a.lanes))
    assert zone_peers([twice]) == {"A": {}}


def test_a_neighbours_reading_is_lent_only_when_fresh_and_present() -> None:
    peers: Peers = {"W_in": (("A", "E_out"),)}
    own = DetectorObservation("B", 100.0, 1.0, {})
    jam = LaneMeasurement(queue_veh=4.0, vehicles=5.0)
    lent = with_neighbours(own, peers, {"A": DetectorObservation("A", 99.0, 1.0, {"E_out": jam})})
    assert lent.neighbours == {"W_in": NeighbourReading("A", "E_out", jam)} and lent.lanes == own.lanes
    stale = DetectorObservation("A", 100.0 - FRESH_S - 1.0, 1.0, {"E_out": jam})
    assert with_neighbours(own, peers, {"A": stale}).neighbours == {}
    assert with_neighbours(own, peers, {"A": DetectorObservation("A", 100.0, 1.0, {})}).neighbours == {}  # its detector is dead too
    slow = DetectorObservation("A", 40.0, 60.0, {"E_out": jam})  # a 60 s frame is fresh for 90 s
    assert with_neighbours(own, peers, {"A": slow}).neighbours != {}


def _live(t: int) -> dict[str, LaneMeasurement]:
    """Approaches with a live, changing queue (a vehicle joins every other second)."""
    return {
        k: LaneMeasurement(count=float(t % 4 == 0), queue_veh=1.0 + t % 2, vehicles=2.0 + t % 2)
        for k in ("N_in", "S_in", "N_left", "S_left")
    }


def _run_b(
    b: Intersection, own_w: LaneMeasurement | None, neighbour: LaneMeasurement | None, seconds: int, own_moves: bool = False
) -> list[tuple[float, str, str, dict[str, Any], str]]:
    """Leitstand at B on 1 s frames: E_in really empty, W_in reading ``own_w`` (None: dead; with
    ``own_moves`` a vehicle joins every other second, as the neighbour sees), A's exit on the same
    zone reading ``neighbour`` (None: not lent). Per decision: time, rule, stage, inputs, summary."""
    c = make_controller("leitstand", b)
    out = []
    for t in range(seconds):
        lanes = _live(t) | {"E_in": LaneMeasurement()}
        if own_w is not None:
            lanes["W_in"] = dataclasses.replace(own_w, vehicles=own_w.vehicles + t % 2) if own_moves else own_w
        nb = (
            {}
            if neighbour is None
            else {"W_in": NeighbourReading("A", "E_out", dataclasses.replace(neighbour, vehicles=neighbour.vehicles + t % 2))}
        )
        d = c.decide(DetectorObservation("B", float(t), 1.0, lanes, nb))
        out.append((float(t), d.explanation.rule, d.plan.phases[-1].stage, dict(d.explanation.inputs), d.explanation.summary()))
    return out


def test_a_detector_stuck_empty_is_replaced_by_the_neighbour_that_sees_the_queue() -> None:
    """From inside B, W_in stuck reading an empty lane is an empty lane: stage C (which alone
    serves E_in and W_in) only gets green when its maximum wait forces it. Beside A's exit
    detector, which sees the same 12 m of road change every second, W_in's unchanged reading is
    frozen once A saw three changes it missed, A's reading stands in, and C is served because it
    pays."""
    _, b = _pair()
    after = float(MISSED_CHANGES)
    seconds = 300
    queue = LaneMeasurement(count=0.0, occupancy=0.6, queue_veh=6.0, vehicles=6.0)
    blind = _run_b(b, LaneMeasurement(), None, seconds)
    seen = _run_b(b, LaneMeasurement(), queue, seconds)
    lent = [t for t, _, _, _, text in seen if "W_in (frozen) read by A's detector E_out on the same zone" in text]
    # at the first decision after the third missed change (the start holds its first green 7 s)
    assert lent and after <= min(lent) <= after + 10
    assert any(f"W_in unchanged while A's E_out saw the same zone change {MISSED_CHANGES}+ times" in text for *_, text in seen)

    def c_served_because_it_pays(run: list[tuple[float, str, str, dict[str, Any], str]]) -> bool:
        return any(stage == "C" and rule == "switch_pays" for t, rule, stage, _, _ in run if t > after)

    assert c_served_because_it_pays(seen) and not c_served_because_it_pays(blind)
    assert all("read by" not in text for *_, text in blind)


def test_an_empty_lane_that_the_neighbour_also_sees_empty_is_not_frozen() -> None:
    _, b = _pair()
    run = _run_b(b, LaneMeasurement(), None, int(2 * b.max_wait_s) + 60)
    assert all("unchanged" not in text for *_, text in run)
    c = make_controller("leitstand", b)
    for t in range(int(2 * b.max_wait_s) + 60):  # A's exit is as empty and as still as B's approach
        lanes = _live(t) | {"E_in": LaneMeasurement(), "W_in": LaneMeasurement()}
        d = c.decide(DetectorObservation("B", float(t), 1.0, lanes, {"W_in": NeighbourReading("A", "E_out", LaneMeasurement())}))
        assert "unchanged" not in d.explanation.summary() and "read by" not in d.explanation.summary()


def test_a_dead_detector_keeps_its_estimate_and_a_working_one_is_read() -> None:
    """Read through its neighbour, a dead approach did worse than its zone-bounded estimate where
    measured (ingolstadt21 seed 2, docs/signals.md): only frozen readings are replaced."""
    _, b = _pair()
    queue = LaneMeasurement(occupancy=0.5, queue_veh=3.0, vehicles=4.0)
    dead = _run_b(b, None, queue, 60)
    assert any("estimated_veh.W_in" in inputs for *_, inputs, _ in dead)
    assert all("read by" not in text for *_, text in dead)
    # a working detector of its own is read, whatever the neighbour says
    working = _run_b(b, LaneMeasurement(queue_veh=1.0, vehicles=2.0), queue, 60, own_moves=True)
    assert all("read by" not in text for *_, text in working)
    # ... unless it stands still while the neighbour's reading of the same vehicles moves
    still = _run_b(b, LaneMeasurement(queue_veh=1.0, vehicles=2.0), queue, 60)
    assert "W_in (frozen) read by A's detector E_out" in still[-1][4]


def _gain_b(a: Intersection, neighbour: LaneMeasurement | None) -> float:
    """At A, a queue only on N_left (stage B, whose one exit is E_out, stuck reading empty), B's
    approach on that link reading ``neighbour`` give or take a vehicle: what serving B is worth."""
    c = make_controller("leitstand", a)
    gain = None
    for t in range(30):
        lanes = {
            k: LaneMeasurement(queue_veh=5.0 if k == "N_left" else 0.0, vehicles=5.0 + t % 2 if k == "N_left" else 0.0)
            for k in ("N_in", "S_in", "N_left", "S_left", "E_in", "W_in", "E_out")
        }
        nb = {}
        if neighbour is not None:
            nb["E_out"] = NeighbourReading("B", "W_in", dataclasses.replace(neighbour, vehicles=neighbour.vehicles + t % 2))
        inputs = dict(c.decide(DetectorObservation("A", float(t), 1.0, lanes, nb)).explanation.inputs)
        gain = inputs.get("gain.B", gain)
    assert gain is not None
    return float(gain)


def test_a_frozen_exit_detector_is_read_through_the_next_signals_approach() -> None:
    """An exit detector frozen empty shows a free exit; the next signal's approach detector on the
    same link, whose reading moves, shows it covered by standing vehicles: green into that exit
    moves nobody."""
    a, _ = _pair()
    assert _gain_b(a, None) > 0
    assert _gain_b(a, LaneMeasurement(queue_veh=3.0, vehicles=3.0, occupancy=0.8)) == 0
    assert _gain_b(a, LaneMeasurement(queue_veh=0.0, vehicles=1.0, occupancy=0.1)) > 0


def test_a_zone_survives_the_model_document_and_must_be_a_name() -> None:
    a, _ = _pair()
    assert intersection_from_dict(intersection_to_dict(a)).lanes == a.lanes
    doc = intersection_to_dict(a)
    doc["lane_areas"][0]["zone"] = 12
    with pytest.raises(ModelError, match=r"lane_areas\[0\]\.zone"):
        intersection_from_dict(doc)


def _config(x: Intersection, t0: float) -> DeskConfig:
    return DeskConfig(x.id, json.loads(json.dumps(intersection_to_dict(x))), datetime.fromtimestamp(t0, tz=UTC), session="corridor")


def test_the_control_desk_lends_a_neighbours_latest_frame() -> None:
    """B's W_in detector is stuck reading empty; the worker also controls A, whose exit sees the
    same link change: B's decision reads A's latest frame, and says so. Once A's model no longer
    names the zone, nothing is lent."""
    a, b = _pair()
    t0 = 1_800_000_000.0
    desk = ControlDesk(lambda _: None)
    desk.on_config(_config(a, t0))
    desk.on_config(_config(b, t0))

    def b_summary(t: float, a_model: Intersection | None = None) -> str:
        jam = {"E_out": LaneMeasurement(queue_veh=4.0, vehicles=5.0 + int(t) % 2, occupancy=0.7)}
        desk.on_observation(DetectorObservation("A", t, 1.0, _live(int(t)) | jam))
        box = desk.on_observation(DetectorObservation("B", t, 1.0, _live(int(t)) | {"W_in": LaneMeasurement()}))
        assert box is not None
        [drive] = [p for p in box.plans if isinstance(p, PlanOut) and p.record.status != "pending"]
        return drive.record.decision.explanation.summary()

    texts = [b_summary(t0 + i) for i in range(30)]
    assert any("W_in (frozen) read by A's detector E_out" in s for s in texts)
    plain = dataclasses.replace(a, lanes=tuple(dataclasses.replace(la, zone=None) for la in a.lanes))
    desk.on_config(dataclasses.replace(_config(plain, t0 + 30), session="corridor-2"))
    assert all("read by" not in b_summary(t0 + 31 + i) for i in range(30))


# -- a very short link: the two stop lines work as one junction (leitstand 1.5) ------------------


def _short_pair(length_m: float = 12.0) -> tuple[Intersection, Intersection]:
    """``_pair`` with the shared link ``length_m`` long, as both models' zones say."""
    a, b = _pair()

    def sized(x: Intersection) -> Intersection:
        lanes = tuple(dataclasses.replace(la, length_m=length_m) if la.zone == LINK else la for la in x.lanes)
        return dataclasses.replace(x, lanes=lanes)

    return sized(a), sized(b)


def test_short_drains_name_the_exit_and_the_groups_that_drain_it() -> None:
    a, b = _short_pair()
    assert short_drains([a, b]) == {"A": {"E_out": ("B", frozenset({"K3"}))}, "B": {}}
    assert short_drains(_short_pair(SHORT_LINK_M + 1.0)) == {"A": {}, "B": {}}
    assert short_drains([a]) == {"A": {}}  # the neighbour is not controlled here


def test_an_exit_leads_into_red_only_while_the_far_signal_shows_no_draining_group_green() -> None:
    drains = {"E_out": ("B", frozenset({"K3"}))}
    assert into_red(drains, lambda _: frozenset({"K1", "FN"})) == {"E_out"}
    assert into_red(drains, lambda _: frozenset({"K3"})) == frozenset()
    assert into_red(drains, lambda _: None) == frozenset()  # B's plan unknown: nothing claimed
    obs = DetectorObservation("A", 0.0, 1.0, {})
    assert with_exits_into_red(obs, drains, lambda _: frozenset()).exits_into_red == {"E_out"}
    assert with_exits_into_red(obs, drains, lambda _: frozenset({"K3"})) is obs


def test_short_feeds_name_the_approach_and_the_upstream_groups_that_send_onto_it() -> None:
    a, b = _short_pair()
    lag = a.groups["K1"].yellow_s + FEED_TRAVEL_S
    # A's groups whose lanes exit onto the link: S_in (K1), N_left (K2), W_in (K3)
    assert short_feeds([a, b]) == {"A": {}, "B": {"W_in": ("A", frozenset({"K1", "K2", "K3"}), lag)}}
    assert short_feeds(_short_pair(SHORT_LINK_M + 1.0)) == {"A": {}, "B": {}}
    assert short_feeds([b]) == {"B": {}}  # the neighbour is not controlled here


def test_a_zone_two_models_claim_to_serve_is_ignored_not_mixed() -> None:
    """A copied model (C, a second upstream signal whose exit is the same 12 m zone, and D, a
    second downstream one) must not have its group names read against A's or B's state:
    nothing is claimed about such a zone, whatever else the models say."""
    a, b = _short_pair()
    c, d = dataclasses.replace(a, id="C"), dataclasses.replace(b, id="D")
    assert short_feeds([a, b, c]) == {"A": {}, "B": {}, "C": {}}
    assert short_drains([a, b, d]) == {"A": {}, "B": {}, "D": {}}


def test_an_approach_is_fed_while_a_feeding_group_is_green_and_for_its_yellow_and_travel_after() -> None:
    feeds = {"W_in": ("A", frozenset({"K3"}), 4.0)}
    obs = DetectorObservation("B", 100.0, 1.0, {})

    def green_until(end_s: float) -> Callable[[str, float], frozenset[str] | None]:
        return lambda _nb, t: frozenset({"K3"}) if t < end_s else frozenset({"K1"})

    assert with_fed_now(obs, feeds, green_until(200.0)).fed_now == {"W_in"}  # green now
    assert with_fed_now(obs, feeds, green_until(97.0)).fed_now == {"W_in"}  # ended 3 s ago: still entering
    assert with_fed_now(obs, feeds, green_until(95.0)) is obs  # ended 5 s ago
    assert with_fed_now(obs, feeds, lambda _nb, _t: None) is obs  # A's plan unknown: nothing claimed


def _leaving_c(
    fed: bool, on_link: float, seconds: int = 90, *, neighbour_sees: float | None = None, own_dead: bool = False
) -> list[tuple[float, str, str, str]]:
    """Leitstand at B, the downstream end of the 12 m link from A (its approach W_in, stage C):
    W_in's queue first brings C, then from 20 s a long queue on N_in makes leaving C pay while
    ``on_link`` vehicles stay on the link and A feeds it (``fed``): (time, rule, stage, summary)
    of every decision from 20 s until the first that leaves C. A's detector of the link reads
    ``neighbour_sees`` vehicles from 20 s (default: the same as B's); ``own_dead``: B's W_in
    detector sends nothing from 20 s."""
    _, b = _short_pair()
    c = make_controller("leitstand", b)
    out = []
    for t in range(seconds):
        lanes = {k: LaneMeasurement() for k in ("N_in", "S_in", "N_left", "S_left", "E_in", "N_out", "S_out", "E_out", "W_out")}
        lanes["W_in"] = LaneMeasurement(queue_veh=4.0 if t < 20 else on_link, vehicles=5.0 if t < 20 else on_link)
        seen = lanes["W_in"] if t < 20 or neighbour_sees is None else LaneMeasurement(queue_veh=neighbour_sees, vehicles=neighbour_sees)
        if t >= 20:
            lanes["N_in"] = LaneMeasurement(queue_veh=12.0, vehicles=13.0 + t % 2)
            if own_dead:
                del lanes["W_in"]
        nb = {"W_in": NeighbourReading("A", "E_out", seen)}
        d = c.decide(DetectorObservation("B", float(t), 1.0, lanes, nb, fed_now=frozenset({"W_in"}) if fed and t >= 20 else frozenset()))
        if t >= 20:
            out.append((float(t), d.explanation.rule, d.plan.phases[-1].stage, d.explanation.summary()))
            if out[-1][2] != "C":
                break
    assert out[0][2] == "C" or out[0][1] == "switch_pays"  # C was running when N_in's queue came
    return out


def test_leitstand_does_not_stop_at_red_what_the_previous_signal_still_sends_onto_a_short_link() -> None:
    """Stopping the link's stage while A still sends vehicles onto it leaves the last of them
    standing in A's junction, where they locked a 12 m pair on ingolstadt21 (docs/signals.md):
    B holds C while A feeds the link and someone is on it, up to C's maximum green, and says
    why; not fed, or nobody on the link, it changes for N_in at once."""
    held = _leaving_c(fed=True, on_link=1.0)
    holds = [d for d in held if d[1] == "hold_short_link"]
    assert holds and holds[0][0] < 25.0 and all(d[2] == "C" for d in holds)
    assert "A is still sending vehicles onto the short link W_in" in holds[0][3]
    assert held[-1][2] != "C" and held[-1][1] == "max_green_switch"  # the hold never breaks C's maximum green
    for fed, on_link in ((False, 1.0), (True, 0.0)):
        free = _leaving_c(fed=fed, on_link=on_link)
        assert free[-1][1] == "switch_pays" and free[-1][0] < 25.0 and not [d for d in free if d[1] == "hold_short_link"]


def test_the_hold_believes_its_own_detector_of_the_link_and_the_neighbours_only_when_its_own_is_dead() -> None:
    """A's detector of the link stuck with a vehicle in it must not outvote B's working one that
    sees the link empty (ingolstadt21 seed 4 with 10 % stuck detectors: a 38 s hold for an empty
    link, then a lock); with B's detector dead, A's reading is all there is and B holds."""
    stuck_neighbour = _leaving_c(fed=True, on_link=0.0, neighbour_sees=1.0)
    assert stuck_neighbour[-1][1] == "switch_pays" and stuck_neighbour[-1][0] < 25.0
    assert not [d for d in stuck_neighbour if d[1] == "hold_short_link"]
    dead_own = _leaving_c(fed=True, on_link=0.0, neighbour_sees=1.0, own_dead=True)
    assert [d for d in dead_own if d[1] == "hold_short_link"]
    assert [d for d in _leaving_c(fed=True, on_link=1.0, neighbour_sees=0.0) if d[1] == "hold_short_link"]  # own sees someone


def test_the_control_desk_tells_the_downstream_signal_what_the_upstream_one_still_feeds() -> None:
    """A runs its fixed program, every stage of which sends traffic onto the 12 m link to B (S_in,
    N_left and W_in all exit there); B serves its end of the link (W_in, one vehicle on it) when
    a long queue on N_in makes leaving pay: the desk marks W_in fed from A's driven plan, and B
    holds, saying so. Without A configured here nothing is claimed, and B leaves at once."""
    a, b = _short_pair()
    t0 = 1_800_000_000.0

    def rules(with_a: bool) -> list[str]:
        desk = ControlDesk(lambda _: None)
        if with_a:
            desk.on_config(dataclasses.replace(_config(a, t0), controller="fixed"))
        desk.on_config(_config(b, t0))
        out = []
        for i in range(60):
            t = t0 + i
            if with_a:
                desk.on_observation(DetectorObservation("A", t, 1.0, {}))
            lanes = {k: LaneMeasurement() for k in ("N_in", "S_in", "N_left", "S_left", "E_in", "N_out", "S_out", "E_out", "W_out")}
            lanes["W_in"] = LaneMeasurement(queue_veh=4.0 if i < 20 else 1.0, vehicles=5.0 if i < 20 else 1.0)
            if i >= 20:
                lanes["N_in"] = LaneMeasurement(queue_veh=12.0, vehicles=13.0 + i % 2)
            box = desk.on_observation(DetectorObservation("B", t, 1.0, lanes))
            assert box is not None
            [drive] = [p for p in box.plans if isinstance(p, PlanOut) and p.record.status != "pending"]
            out.append(drive.record.decision.explanation.rule)
        return out

    assert "hold_short_link" in rules(with_a=True)
    assert "hold_short_link" not in rules(with_a=False)


def test_shown_greens_follow_the_driven_plan() -> None:
    _, b = _short_pair()
    shown = StageDecision("B", 1000.0, b.fixed_plan, Explanation("fixed", "1.0", "fixed_program", (), ""), origin_s=1000.0)
    windows = {w.stage: w for w in build_timeline(b, b.fixed_plan).stage_windows}
    greens = ShownGreens()
    assert greens.green(b, shown, 1001.0) == b.stage("A").groups
    assert greens.green(b, shown, 1000.0 + windows["C"].start_s + 1.0) == b.stage("C").groups
    cycle = build_timeline(b, b.fixed_plan).duration_s
    assert greens.green(b, shown, 1001.0 + cycle) == b.stage("A").groups  # a cyclic plan repeats
    # the same plan under a reconfigured model (longer intergreens) is laid out again
    slower = dataclasses.replace(b, intergreen_s={k: v + 4.0 for k, v in b.intergreen_s.items()})
    at_c = 1000.0 + windows["C"].start_s + 1.0
    assert greens.green(slower, shown, at_c) == ShownGreens().green(slower, shown, at_c) != b.stage("C").groups


def test_an_acyclic_window_holds_its_first_and_last_states_outside_it() -> None:
    """A committed window (or a neighbour's driven plan) shows its first stage before it starts
    and its last stage after it ends, as the signal does until the next plan arrives."""
    _, b = _short_pair()
    window = SignalPlan((StagePhase("A", 10.0), StagePhase("C", 12.0)), cyclic=False)
    tl = build_timeline(b, window)
    assert tl.green_at(-30.0) == tl.green_at(1.0) == b.stage("A").groups
    assert tl.green_at(tl.duration_s + 100.0) == b.stage("C").groups
    cyclic = build_timeline(b, b.fixed_plan)
    assert cyclic.green_at(1.0) == cyclic.green_at(1.0 + 3 * cyclic.duration_s) == b.stage("A").groups


def test_leitstand_sends_nobody_onto_a_short_link_into_red() -> None:
    """At A only N_left has a queue, and its one exit is the short link to B: with B red for
    that link, serving it is worth nothing (a vehicle sent in would stop in the link and block
    A's junction); with B green it is worth the queue."""
    a, _ = _short_pair()

    def gain_b(into_red_: frozenset[str]) -> tuple[float, str]:
        c = make_controller("leitstand", a)
        out: tuple[float, str] = (0.0, "")
        for t in range(30):
            lanes = {
                k: LaneMeasurement(queue_veh=5.0 if k == "N_left" else 0.0, vehicles=5.0 + t % 2 if k == "N_left" else 0.0)
                for k in ("N_in", "S_in", "N_left", "S_left", "E_in", "W_in", "E_out")
            }
            d = c.decide(DetectorObservation("A", float(t), 1.0, lanes, exits_into_red=into_red_))
            out = (float(dict(d.explanation.inputs).get("gain.B", out[0])), d.explanation.summary())
        return out

    red_gain, red_text = gain_b(frozenset({"E_out"}))
    green_gain, green_text = gain_b(frozenset())
    assert red_gain == 0 and green_gain > 0
    assert "not sent onto the short link E_out: red at the next signal" in red_text
    assert "short link" not in green_text


def _permissive_left(length_m: float | None = 12.0) -> Intersection:
    """The example crossing with its left turns K2 *permissive* beside the through traffic K1
    (stage A), protected alone in B, and N_left a ``length_m`` link from the previous signal."""
    base = load_intersection(EXAMPLE)
    pair = frozenset({"K1", "K2"})
    stages = (
        Stage("A", frozenset({"K1", "K2"}), 8.0, 60.0, yielding=frozenset({"K2"})),
        Stage("B", frozenset({"K2"}), 5.0, 25.0),
        Stage("C", frozenset({"K3", "FN", "FS"}), 8.0, 50.0),
        Stage("D", frozenset({"K1", "FE", "FW"}), 8.0, 50.0),
    )
    plan = SignalPlan((StagePhase("A", 30.0), StagePhase("B", 6.0), StagePhase("C", 28.0), StagePhase("D", 10.0)))
    lanes = tuple(dataclasses.replace(la, length_m=length_m) if la.id == "N_left" else la for la in base.lanes)
    return dataclasses.replace(
        base,
        stages=stages,
        conflicts=frozenset(c for c in base.conflicts if c != pair),
        intergreen_s={k: v for k, v in base.intergreen_s.items() if frozenset(k) != pair},
        fixed_plan=plan,
        lanes=lanes,
    )


def _stage_changes(
    x: Intersection, seconds: int, lanes_at: Callable[[int], dict[str, LaneMeasurement]], shared: bool
) -> list[tuple[str, str, str]]:
    """Leitstand fed ``lanes_at(t)`` each second (``shared``: the previous signal's exit detector
    on the link N_left reads the same vehicles): (rule, stage, summary) of every stage change."""
    c = make_controller("leitstand", x)
    changes = []
    stage = None
    for t in range(seconds):
        lanes = lanes_at(t)
        nb = {"N_left": NeighbourReading("P", "S_out", lanes["N_left"])} if shared else {}
        d = c.decide(DetectorObservation(x.id, float(t), 1.0, lanes, nb))
        last = d.plan.phases[-1].stage
        if last != stage:
            changes.append((d.explanation.rule, last, d.explanation.summary()))
            stage = last
    return changes


def _leaving_a(x: Intersection, turners: float, shared: bool = True) -> list[tuple[str, str, str]]:
    """Leitstand from stage A with ``turners`` standing on N_left and a long queue on the side
    road (stage C) that makes it leave A: (rule, stage, summary) of every stage change."""

    def lanes_at(t: int) -> dict[str, LaneMeasurement]:
        lanes = {k: LaneMeasurement() for k in ("N_in", "S_in", "S_left", "W_in", "N_out", "S_out", "E_out", "W_out")}
        lanes["N_left"] = LaneMeasurement(queue_veh=turners, vehicles=turners)
        lanes["E_in"] = LaneMeasurement(queue_veh=8.0, vehicles=9.0 + t % 2)
        return lanes

    return _stage_changes(x, 90, lanes_at, shared)


def test_a_permissive_turn_off_a_short_link_is_protected_before_it_is_cut_off() -> None:
    """Turners off a 12 m link wait for a gap *inside* the junction; cutting them off with the
    side road's green deadlocked ingolstadt21. Leaving A, leitstand runs B (the turn protected)
    first while vehicles stand on the link, and says why; without them, on a long approach, or
    on a short one that no neighbouring signal shares (a stub from an unsignalised junction), it
    goes straight to the side road."""
    x = _permissive_left()
    changes = _leaving_a(x, turners=2.0)
    leaving = [c for c in changes if c[0] != "start"]
    assert leaving[0][:2] == ("clear_short_link", "B")
    assert "short link N_left turn permissively in A" in leaving[0][2]
    assert _leaving_a(x, turners=0.0)[1][:2] != ("clear_short_link", "B")
    assert all(rule != "clear_short_link" for rule, _, _ in _leaving_a(_permissive_left(length_m=None), turners=2.0))
    assert all(rule != "clear_short_link" for rule, _, _ in _leaving_a(_permissive_left(length_m=SHORT_LINK_M + 5), turners=2.0))
    assert all(rule != "clear_short_link" for rule, _, _ in _leaving_a(x, turners=2.0, shared=False))


def _holding_a(x: Intersection, turners: float, occupancy: float, shared: bool = True) -> list[tuple[str, str, str]]:
    """Leitstand in stage A with a steady through queue on N_in (A keeps paying) and ``turners``
    standing on the 12 m link N_left at ``occupancy`` behind its permissive turn; nobody waits
    elsewhere: (rule, stage, summary) of every stage change."""

    def lanes_at(t: int) -> dict[str, LaneMeasurement]:
        lanes = {k: LaneMeasurement() for k in ("S_in", "S_left", "E_in", "W_in", "N_out", "S_out", "E_out", "W_out")}
        lanes["N_in"] = LaneMeasurement(queue_veh=6.0, vehicles=7.0 + t % 2)
        lanes["N_left"] = LaneMeasurement(queue_veh=turners, vehicles=turners, occupancy=occupancy)
        return lanes

    return _stage_changes(x, 40, lanes_at, shared)


def test_a_short_link_full_behind_a_permissive_turn_is_cleared_without_waiting_for_the_stage_to_end() -> None:
    """A holds for its through traffic; the turners off the 12 m link wait inside the junction
    for a gap that does not come. Once standing vehicles fill the link (two cars: the next
    vehicle from the neighbour would stop in *its* junction), leitstand runs B at once and says
    why; one car on the link, a link no neighbouring signal shares, or a long approach: A holds."""
    x = _permissive_left()
    changes = [c for c in _holding_a(x, turners=2.0, occupancy=0.8) if c[0] != "start"]
    assert changes and changes[0][:2] == ("clear_short_link", "B")
    assert "short link N_left is full behind a permissive turn in A" in changes[0][2]
    assert "backs up into P" in changes[0][2]
    assert [c for c in _holding_a(x, turners=1.0, occupancy=0.4) if c[0] != "start"] == []
    assert [c for c in _holding_a(x, turners=2.0, occupancy=0.8, shared=False) if c[0] != "start"] == []
    long_link = _permissive_left(length_m=SHORT_LINK_M + 5)
    assert [c for c in _holding_a(long_link, turners=2.0, occupancy=0.8) if c[0] != "start"] == []


def test_yielding_groups_survive_the_model_document_and_must_be_green_in_their_stage() -> None:
    x = _permissive_left()
    assert intersection_from_dict(intersection_to_dict(x)).stages == x.stages
    doc = intersection_to_dict(x)
    doc["stages"][2]["yielding"] = ["K2"]
    with pytest.raises(ModelError, match="yielding groups"):
        intersection_from_dict(doc)


def test_the_control_desk_tells_a_signal_which_short_link_leads_into_red() -> None:
    """A and B on one worker, joined by a 12 m link that B's stage C drains: A's decisions say
    while B shows red there, and never once the link is long, or when B's frames stop."""
    t0 = 1_800_000_000.0

    def a_summaries(a: Intersection, b: Intersection, b_reports: bool = True) -> list[str]:
        desk = ControlDesk(lambda _: None)
        desk.on_config(_config(a, t0))
        desk.on_config(_config(b, t0))
        out = []
        for i in range(20):
            t = t0 + i
            if b_reports or i < 2:
                desk.on_observation(DetectorObservation("B", t, 1.0, _live(i)))
            box = desk.on_observation(DetectorObservation("A", t, 1.0, _live(i)))
            assert box is not None
            [drive] = [p for p in box.plans if isinstance(p, PlanOut) and p.record.status != "pending"]
            out.append(drive.record.decision.explanation.summary())
        return out

    a, b = _short_pair()
    assert any("short link E_out: red at the next signal" in s for s in a_summaries(a, b))
    assert not any("short link" in s for s in a_summaries(*_short_pair(40.0)))
    assert not any("short link" in s for s in a_summaries(a, b, b_reports=False)[10:])


def test_a_zone_named_by_more_models_than_a_road_has_ends_lends_nothing_and_is_reported() -> None:
    """A third model naming the link (a copied model, one name reused along a corridor) would
    have the first peer's reading lent to everyone: such a zone is ignored, for peers, drains and
    feeds alike, and the desk warns once per change."""
    a, b = _short_pair()
    c = dataclasses.replace(b, id="C")
    assert crowded_zones([a, b]) == {} and zone_peers([a, b])["B"]
    assert crowded_zones([a, b, c]) == {LINK: ("A", "B", "C")}
    assert zone_peers([a, b, c]) == {"A": {}, "B": {}, "C": {}}
    assert short_drains([a, b, c]) == {"A": {}, "B": {}, "C": {}}
    assert short_feeds([a, b, c]) == {"A": {}, "B": {}, "C": {}}
    assert Corridor.of([a, b, c]).crowded == {LINK: ("A", "B", "C")}

    t0 = 1_800_000_000.0
    desk = ControlDesk(lambda _: None)
    for x in (a, b, c):
        desk.on_config(_config(x, t0))
    warnings = []
    for i in range(3):
        for x in (a, b, c):
            box = desk.on_observation(DetectorObservation(x.id, t0 + i, 1.0, _live(i)))
            assert box is not None
            drive = box.plans[-1]
            assert isinstance(drive, PlanOut) and "read by" not in drive.record.decision.explanation.summary()
            warnings += [n for n in box.notes if "zone named by more intersections" in n.event]
    assert len(warnings) == 1 and warnings[0].fields["zones"] == {LINK: ["A", "B", "C"]}
    desk.on_config(dataclasses.replace(_config(c, t0 + 3), session="again"))  # the same crowd: no new warning
    box = desk.on_observation(DetectorObservation("A", t0 + 4, 1.0, _live(4)))
    assert box is not None and not [n for n in box.notes if "zone named" in n.event]
