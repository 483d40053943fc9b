"""The demo city's closed loop, pure parts: junction models, plan -> green shares, the shadow
fixed-time delay ledger, and the city's traffic model driven by a plan (no broker)."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timezone

import msgspec
import pytest

from signals.controllers import make_controller
from signals.loader import ensure_safe, intersection_from_dict, model_document
from signals.model import ModelError
from simulators.city import City, CityConfig
from simulators.city.signal_plans import ClosedLoop, DelayLedger, green_shares, junction_model, uniform_delay_s
from simulators.city.traffic import build_grid
from streams.records import IntersectionFrame
from streams.signal_codec import observation_from_frame

START = datetime(2026, 7, 2, 5, 0, tzinfo=timezone.utc)


def test_every_junction_model_loads_and_is_safe() -> None:
    grid = build_grid(CityConfig(intersections=12))
    for junction in grid:
        doc = junction_model(junction)
        model = ensure_safe(intersection_from_dict(model_document(json.dumps(doc))))
        assert model.id == junction.intersection_id
        assert {la.id for la in model.lanes} == set(junction.detector_ids())
        assert [p.stage for p in model.fixed_plan.phases] == ["A", "B"]


def test_fixed_plan_reproduces_the_city_constant_shares() -> None:
    grid = build_grid(CityConfig(intersections=12))
    loop = ClosedLoop.for_grid(grid)
    for junction in grid:
        shares = loop.fixed[junction.intersection_id]
        for ap in junction.approaches:
            if ap.green_share + [a for a in junction.approaches if a.name in ("E" if ap.name in "NS" else "N")][0].green_share < 1.0:
                assert shares.by_approach[ap.name] == pytest.approx(ap.green_share, abs=0.002), (junction.intersection_id, ap.name)
            else:  # two main roads: 0.5 / 0.5 leaves no time to change stage; 120 s cycle, 8 s lost
                assert shares.by_approach[ap.name] == pytest.approx(56 / 120)
                assert shares.cycle_s == 120


def test_green_shares_of_a_plan() -> None:
    model = intersection_from_dict(junction_model(build_grid(CityConfig(intersections=4))[0]))
    shares = green_shares(model, [("A", 42.0), ("B", 20.0)])
    assert shares.cycle_s == pytest.approx(70.0)  # two 4 s changes
    assert shares.by_approach == pytest.approx({"E": 20 / 70, "N": 42 / 70, "S": 42 / 70, "W": 20 / 70})
    with pytest.raises(ModelError):
        green_shares(model, [("A", 30.0), ("Z", 30.0)])


def test_closed_loop_keeps_the_last_shares_when_a_plan_does_not_fit() -> None:
    loop = ClosedLoop.for_grid(build_grid(CityConfig(intersections=4)))
    assert loop.current["K1"] == loop.fixed["K1"] and not loop.from_worker
    assert loop.apply("K1", [("A", 50.0), ("B", 12.0)])
    applied = loop.current["K1"]
    assert applied.by_approach["N"] == pytest.approx(50 / 70)
    assert not loop.apply("K1", [("Q", 10.0)]) and not loop.apply("K99", [("A", 10.0), ("B", 10.0)])
    assert loop.current["K1"] is applied and loop.ignored == 2 and loop.from_worker == {"K1"}


def test_uniform_delay() -> None:
    # Webster's first term: C (1 - l)^2 / (2 (1 - x l))
    assert uniform_delay_s(80, 0.5, 0.5) == pytest.approx(80 * 0.25 / (2 * 0.75))
    assert uniform_delay_s(80, 1.0, 0.3) == 0.0
    assert uniform_delay_s(80, 0.4, 3.0) == pytest.approx(80 * 0.36 / (2 * 0.6))  # x capped at 1
    assert uniform_delay_s(60, 0.4, 0.5) < uniform_delay_s(120, 0.4, 0.5)  # shorter cycles, shorter waits


def test_delay_ledger_books_both_queues() -> None:
    ledger = DelayLedger()
    ledger.add(dt=60, arrivals=10, queue_before=(0, 0), queue_after=(2, 4), capacity=(20, 20), shares=(0.5, 0.5), cycles=(80, 80))
    per_vehicle = uniform_delay_s(80, 0.5, 0.5)
    assert ledger.controlled_veh_s == pytest.approx(60 + 10 * per_vehicle)
    assert ledger.fixed_veh_s == pytest.approx(120 + 10 * per_vehicle)
    s = ledger.summary()
    assert s["delay_ratio"] == pytest.approx(round(ledger.controlled_veh_s / ledger.fixed_veh_s, 3)) and s["arrivals"] == 10
    assert DelayLedger().summary()["delay_ratio"] is None


def _frames_hash(city: City, loop: ClosedLoop | None) -> str:
    h = hashlib.sha256()
    for e in city.stream(loop) if loop is not None else city.stream():
        if e.topic == "sensors.intersection":
            h.update(e.value)
    return h.hexdigest()


def test_closed_loop_without_plans_is_the_open_loop_city_and_fixed_time() -> None:
    config = CityConfig(intersections=4, seed=5, pools=0, bus_lines=0)
    city = City(config, START, 2 * 3600)
    assert _frames_hash(city, None) == _frames_hash(City(config, START, 2 * 3600), None)
    loop = ClosedLoop.for_grid(city.grid)
    list(city.stream(loop))  # no plan ever arrives: the fixed plan drives, and the shadow is the same queue
    for delays in loop.delays().values():
        assert delays["controlled_veh_h"] == delays["fixed_veh_h"] and delays["delay_ratio"] == 1.0
        assert delays["frames"] == 120 and delays["frames_on_worker_plan"] == 0


def test_webster_in_process_closed_loop_beats_fixed_time_on_the_city() -> None:
    """The controller the demo runs, in process: every junction's delay below fixed time's."""
    city = City(CityConfig(intersections=4, seed=3, pools=0, bus_lines=0), START, 3 * 3600)
    loop = ClosedLoop.for_grid(city.grid)
    controllers = {iid: make_controller("webster", m) for iid, m in loop.models.items()}
    decoder = msgspec.json.Decoder(IntersectionFrame)
    for e in city.stream(loop):
        if e.topic == "sensors.intersection":
            frame = decoder.decode(e.value)
            d = controllers[frame.intersection_id].decide(observation_from_frame(frame))
            loop.apply(frame.intersection_id, [(p.stage, p.green_s) for p in d.plan.phases], d.plan.cyclic)
    delays = loop.delays()
    assert set(delays) == {"K1", "K2", "K3", "K4"}
    for iid, s in delays.items():
        assert s["frames_on_worker_plan"] == 179 and s["delay_ratio"] is not None and s["delay_ratio"] < 1.0, (iid, s)
