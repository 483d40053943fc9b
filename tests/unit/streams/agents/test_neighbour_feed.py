"""The neighbour feed's reading of records (streams/agents/neighbour_feed.py), without a broker:
the path through two real control workers is tests/integration/test_corridor_lending.py."""

from __future__ import annotations

import dataclasses
import json

import msgspec

from signals.controllers import LaneMeasurement
from signals.desk import ControlDesk, PlanOut
from signals.loader import intersection_to_dict
from streams.agents.neighbour_feed import NeighbourFeed
from streams.records import DetectorReading, IntersectionFrame, SignalPlanMessage, encode
from streams.settings import Settings
from streams.signal_codec import at, plan_out_message
from tests.unit.signals.test_remote import T0, _config, _frames, _pair

CHANGELOG, FRAMES, PLANS = "app-signal-control-changelog", "sensors.intersection", "signals.plans"


def _feed() -> tuple[ControlDesk, NeighbourFeed]:
    _, b = _pair()
    desk = ControlDesk(lambda _: None)
    desk.on_config(_config(b))
    return desk, NeighbourFeed(Settings(_env_file=None), desk, changelog=CHANGELOG, frames=FRAMES, plans=PLANS)


def _saved_value(iid: str) -> bytes:
    """A's table value as the control worker saves it (only ``config`` is read here)."""
    a, _ = _pair()
    model = json.loads(json.dumps(intersection_to_dict(a)))
    return json.dumps({"config": {"intersection_id": iid, "model": model}, "mode": "automatic", "pending": []}).encode()


def _frame_bytes(t: int) -> bytes:
    obs = _frames(t)[0]
    readings = [
        DetectorReading(detector_id=k, count=int(v.count or 0), occupancy=v.occupancy, queue_veh=v.queue_veh, vehicles=v.vehicles)
        for k, v in obs.lanes.items()
    ]
    return encode(IntersectionFrame(schema_version=1, event_time=at(obs.time_s), intersection_id="A", interval_s=1.0, detectors=readings))


def test_the_feed_learns_a_neighbour_from_the_changelog_then_keeps_its_frames_and_drives() -> None:
    desk, feed = _feed()
    feed.apply(CHANGELOG, b"A", _saved_value("A"))
    feed.apply(CHANGELOG, b"~checkpoint:x", json.dumps({"topic": "t", "partition": 0, "next": 3}).encode())  # skipped
    desk.on_observation(_frames(0)[1])  # B's frame lays the corridor out: A neighbours it
    assert desk.remote.lending == frozenset({"A"}) and feed.read == 1
    feed.apply(FRAMES, b"A", _frame_bytes(1))
    assert desk.latest["A"].time_s == T0 + 1 and desk.latest["A"].lanes["E_out"] == LaneMeasurement(
        count=0.0, occupancy=0.6, queue_veh=2.0, vehicles=3.0
    )
    a_desk = ControlDesk(lambda _: None)
    a, _ = _pair()
    a_desk.on_config(_config(a))
    box = a_desk.on_observation(_frames(1)[0])
    assert box is not None
    [drive] = [p for p in box.plans if isinstance(p, PlanOut) and p.record.status in ("active", "fixed", "fallback")]
    feed.apply(PLANS, b"A", encode(plan_out_message(drive)))
    shown = desk.remote.shown("A")
    assert shown is not None and shown[1].plan == drive.record.decision.plan
    assert feed.read == 3


def test_a_neighbour_whose_street_does_not_follow_its_plan_lends_no_plan() -> None:
    """A's worker found A's field controller showing another stage and flags its drive records
    (``not_following``): B's worker then does not take A's plan for what the street shows, as it
    would not for a neighbour on its own desk; a drive record without the flag lends it again."""
    desk, feed = _feed()
    feed.apply(CHANGELOG, b"A", _saved_value("A"))
    desk.on_observation(_frames(0)[1])
    a, _ = _pair()
    a_desk = ControlDesk(lambda _: None)
    a_desk.on_config(_config(a))
    box = a_desk.on_observation(_frames(0)[0])
    assert box is not None
    drive = [p for p in box.plans if isinstance(p, PlanOut)][-1]
    flagged = dataclasses.replace(drive, not_following=True)
    assert msgspec.json.decode(encode(plan_out_message(flagged)), type=SignalPlanMessage).not_following
    feed.apply(PLANS, b"A", encode(plan_out_message(flagged)))
    assert desk.remote.shown("A") is None
    feed.apply(PLANS, b"A", encode(plan_out_message(drive)))
    assert desk.remote.shown("A") is not None


def test_what_is_not_a_neighbours_or_cannot_be_read_is_skipped() -> None:
    desk, feed = _feed()
    feed.apply(CHANGELOG, b"A", _saved_value("A"))
    desk.on_observation(_frames(0)[1])
    for topic, key, value in [
        (FRAMES, b"Z", _frame_bytes(1)),  # not a neighbour: not even decoded
        (FRAMES, b"A", b"{not json"),
        (FRAMES, b"A", json.dumps({"schema_version": 1}).encode()),
        (FRAMES, b"A", None),
        (PLANS, b"A", b"[]"),
        (CHANGELOG, b"A", b"\xff\xfe"),
        (CHANGELOG, b"Q", json.dumps({"config": {"intersection_id": 5, "model": {}}}).encode()),
        ("another.topic", b"A", _frame_bytes(1)),
        (FRAMES, None, _frame_bytes(1)),
    ]:
        feed.apply(topic, key, value)
    assert "A" not in desk.latest and desk.remote.shown("A") is None and feed.read == 1
    # a pending proposal is not what A drives
    a, _ = _pair()
    a_desk = ControlDesk(lambda _: None)
    a_desk.on_config(dataclasses.replace(_config(a), mode="advisory"))
    pending = [p for t in range(40) if (box := a_desk.on_observation(_frames(t)[0])) for p in box.plans if isinstance(p, PlanOut)]
    proposals = [p for p in pending if p.record.status == "pending"]
    assert proposals
    for p in proposals:
        feed.apply(PLANS, b"A", encode(plan_out_message(p)))
    assert desk.remote.shown("A") is None
    # a record keyed A that says it is about another intersection is not believed
    drive = next(p for p in pending if p.record.status == "fixed")
    message = msgspec.structs.replace(plan_out_message(drive), intersection_id="B")
    feed.apply(PLANS, b"A", encode(message))
    assert desk.remote.shown("A") is None


def test_stopping_a_feed_that_never_started_does_nothing_and_a_finished_task_is_not_running() -> None:
    import asyncio

    _, feed = _feed()

    async def scenario() -> None:
        await feed.stop()  # nothing to stop: no error
        assert not feed.running

        async def ended() -> None:
            return None

        feed._task = asyncio.create_task(ended())
        await feed._task
        assert not feed.running  # the worker's timer would start it again
        await feed.stop()
        assert feed._task is None

    asyncio.run(scenario())
