"""Neighbours on another control worker (signals/remote.py, the desk's ``on_remote_*``).

The property that matters: a short-link pair split over two desks decides exactly as it does on
one desk, when each desk hears the other's frame and drive (what the shell's neighbour feed
delivers); and a desk that hears nothing of the other lends nothing, as before.
"""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime
from typing import Any

from signals.controllers import DetectorObservation, LaneMeasurement
from signals.desk import ControlDesk, DeskConfig, PlanOut
from signals.loader import intersection_to_dict, load_intersection
from signals.model import Intersection
from signals.remote import RemoteNeighbours, model_zones
from tests.paths import EXAMPLE_INTERSECTION as EXAMPLE

LINK = "link-A-B"
T0 = 1_800_000_000.0


def _pair(length_m: float = 12.0) -> tuple[Intersection, Intersection]:
    """A and B, copies of the example crossing: A's east exit is B's west approach, one zone of
    ``length_m`` (a very short link: lending, not into red, the hold all apply)."""
    base = load_intersection(EXAMPLE)

    def zoned(iid: str, lane: str) -> Intersection:
        lanes = tuple(dataclasses.replace(la, zone=LINK, length_m=length_m) if la.id == lane else la for la in base.lanes)
        return dataclasses.replace(base, id=iid, lanes=lanes)

    return zoned("A", "E_out"), zoned("B", "W_in")


def _doc(x: Intersection) -> dict[str, Any]:
    return json.loads(json.dumps(intersection_to_dict(x)))


def _config(x: Intersection) -> DeskConfig:
    return DeskConfig(x.id, _doc(x), datetime.fromtimestamp(T0, tz=UTC), session="split")


def _frames(t: int) -> tuple[DetectorObservation, DetectorObservation]:
    """A with a queue on its exit into the link; B with that link's approach detector stuck empty
    and live approaches elsewhere (so both sides have something to decide)."""
    live = {k: LaneMeasurement(count=float(t % 4 == 0), queue_veh=1.0 + t % 2, vehicles=2.0 + t % 2) for k in ("N_in", "S_in", "E_in")}
    a = DetectorObservation("A", T0 + t, 1.0, live | {"E_out": LaneMeasurement(queue_veh=2.0, vehicles=2.0 + t % 2, occupancy=0.6)})
    b = DetectorObservation("B", T0 + t, 1.0, live | {"W_in": LaneMeasurement()})
    return a, b


def _drive(box: Any) -> PlanOut:
    assert box is not None
    [drive] = [p for p in box.plans if isinstance(p, PlanOut) and p.record.status in ("active", "fallback", "fixed")]
    return drive


def _key(p: PlanOut) -> tuple[Any, ...]:
    d = p.record.decision
    return (d.time_s, d.plan, d.origin_s, d.explanation.rule, d.explanation.summary())


def test_a_pair_split_over_two_desks_decides_as_on_one_desk() -> None:
    a, b = _pair()
    one = ControlDesk(lambda _: None)
    here, there = ControlDesk(lambda _: None), ControlDesk(lambda _: None)
    for cfg in (_config(a), _config(b)):
        one.on_config(cfg)
    there.on_config(_config(a))
    here.on_config(_config(b))
    # each worker learns the other's intersection from its saved configuration
    here.on_remote_config("A", _doc(a))
    there.on_remote_config("B", _doc(b))
    joint: dict[str, list[tuple[Any, ...]]] = {"A": [], "B": []}
    split: dict[str, list[tuple[Any, ...]]] = {"A": [], "B": []}
    for t in range(90):
        fa, fb = _frames(t)
        joint["A"].append(_key(_drive(one.on_observation(fa))))
        joint["B"].append(_key(_drive(one.on_observation(fb))))
        da = _drive(there.on_observation(fa))
        split["A"].append(_key(da))
        here.on_remote_frame(fa)
        here.on_remote_drive("A", da.record.decision)
        db = _drive(here.on_observation(fb))
        split["B"].append(_key(db))
        there.on_remote_frame(fb)
        there.on_remote_drive("B", db.record.decision)
    assert split == joint
    summaries = [k[-1] for k in split["B"]]
    assert any("W_in (frozen) read by A's detector E_out" in s for s in summaries)  # lent across workers
    assert here.remote.lending == frozenset({"A"}) and there.remote.lending == frozenset({"B"})


def test_a_desk_that_hears_nothing_of_the_other_worker_lends_nothing() -> None:
    a, b = _pair()
    alone = ControlDesk(lambda _: None)
    alone.on_config(_config(b))
    alone.on_remote_config("A", _doc(a))  # the model is known, but no frame of A arrives
    summaries = [_drive(alone.on_observation(_frames(t)[1])).record.decision.explanation.summary() for t in range(60)]
    assert all("read by" not in s for s in summaries)
    # a frame of A older than FRESH_S is not lent either
    alone.on_remote_frame(dataclasses.replace(_frames(0)[0], time_s=T0))
    late = _drive(alone.on_observation(_frames(60)[1])).record.decision.explanation.summary()
    assert "read by" not in late


def test_frames_and_drives_of_intersections_that_neighbour_none_of_ours_are_not_kept() -> None:
    a, b = _pair()
    desk = ControlDesk(lambda _: None)
    desk.on_config(_config(b))
    far = dataclasses.replace(a, id="Z", lanes=tuple(dataclasses.replace(la, zone="elsewhere" if la.zone else None) for la in a.lanes))
    desk.on_remote_config("Z", _doc(far))
    desk.on_observation(_frames(0)[1])
    assert desk.remote.lending == frozenset()
    desk.on_remote_frame(dataclasses.replace(_frames(1)[0], intersection_id="Z"))
    assert "Z" not in desk.latest
    # a record about an intersection controlled here is never taken from another worker
    desk.on_remote_config("B", _doc(b))
    desk.on_remote_frame(_frames(5)[1])
    assert desk.latest["B"].time_s == T0


def test_a_new_model_naming_a_zone_of_ours_lays_the_corridor_out_again() -> None:
    a, b = _pair()
    plain = dataclasses.replace(a, lanes=tuple(dataclasses.replace(la, zone=None) for la in a.lanes))
    desk = ControlDesk(lambda _: None)
    desk.on_config(_config(b))
    desk.on_remote_config("A", _doc(plain))  # no zone: not even kept
    assert "A" not in desk.remote.known
    desk.on_observation(_frames(0)[1])
    assert desk.remote.lending == frozenset()
    desk.on_remote_config("A", _doc(a))
    desk.on_observation(_frames(1)[1])
    assert desk.remote.lending == frozenset({"A"})


def test_a_model_that_does_not_build_is_never_lent() -> None:
    _, b = _pair()
    broken = _doc(b) | {"id": "A"}
    broken["groups"] = "not a list"
    remote = RemoteNeighbours()
    assert remote.configure("A", broken) is False  # nothing of ours laid out yet
    assert remote.lay_out({"B": b}) == [] and remote.known["A"].broken
    remote.configure("C", _doc(b))  # says it is B, arrives as C
    a, _ = _pair()
    assert remote.lay_out({"A": a}) == [] and remote.known["C"].broken
    remote.configure("D", _doc(b) | {"id": "D"})
    assert [x.id for x in remote.lay_out({"A": a})] == ["D"]


def test_model_zones_reads_the_raw_document_and_never_raises() -> None:
    a, _ = _pair()
    assert model_zones(_doc(a)) == frozenset({LINK})
    for junk in ({}, {"lane_areas": None}, {"lane_areas": [1, "x", {"zone": 3}, {"zone": ""}]}):
        assert model_zones(junk) == frozenset()
