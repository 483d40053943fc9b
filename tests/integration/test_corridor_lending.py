"""Corridor awareness through a real broker and a `control` worker (issue 13), both brokers.

Two intersections, A and B, share one short link: A's east exit and B's west approach are one
detection zone (``zone`` in both models). B's W_in detector is stuck reading an empty lane while
A's exit detector sees the vehicles on the same stretch come and go. The worker controls both;
B's decisions, published on ``signals.plans``, read A's detector in place of the frozen one and
say so in the operator's sentence. The same frames with a model of A that names no zone lend
nothing. The pure rules are tested in tests/unit/signals/test_corridor.py; this is the path
through topics, codecs and the worker's desk.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from streams.kafka_io import ensure_topics
from streams.stack import WorkerProcess, free_port, same_place, settings_env

from .test_alarm_lifecycle import _send, _wait_for
from .test_signal_control import MODEL, _iso

pytestmark = pytest.mark.integration

LINK = "link-A-B"
STEPS = 40  # one-second frames of each intersection; B's detector is frozen after 3 missed changes
LENT = "W_in (frozen) read by A's detector E_out on the same zone"


def _model(iid: str, zoned_lane: str | None, link_m: float | None = None) -> dict[str, Any]:
    doc = json.loads(json.dumps(MODEL))
    doc["id"] = iid
    for lane in doc["lane_areas"]:
        if lane["id"] == zoned_lane:
            lane["zone"] = LINK
            if link_m is not None:
                lane["length_m"] = link_m
    return doc


def _frame(iid: str, t: float, step: int) -> dict[str, Any]:
    """Live approaches (a vehicle joins every other second); at A a queue on the exit into the
    link, at B that link's approach detector stuck at zero."""
    live = {"detector_id": "", "count": int(step % 4 == 0), "occupancy": 0.2, "queue_veh": 1.0 + step % 2, "vehicles": 2.0 + step % 2}
    detectors = [{**live, "detector_id": d} for d in ("N_in", "S_in", "N_left", "S_left")]
    if iid == "A":
        detectors.append({"detector_id": "E_out", "count": 0, "occupancy": 0.7, "queue_veh": 4.0, "vehicles": 5.0 + step % 2})
    else:
        detectors.append({"detector_id": "W_in", "count": 0, "occupancy": 0.0, "queue_veh": 0.0, "vehicles": 0.0})
    return {"schema_version": 1, "event_time": _iso(t), "intersection_id": iid, "interval_s": 1.0, "detectors": detectors}


def _config(iid: str, zoned_lane: str | None, t: float, session: str, link_m: float | None = None) -> dict[str, Any]:
    return {
        "schema_version": 1,
        "event_time": _iso(t),
        "intersection_id": iid,
        "model": _model(iid, zoned_lane, link_m),
        "controller": "leitstand",
        "mode": "automatic",
        "session": session,
    }


def _summaries(plans: list[dict[str, Any]], session: str, iid: str = "B") -> list[str]:
    mine = [p for p in plans if p["intersection_id"] == iid and p["session"] == session]
    return [p["explanation"]["summary"] for p in mine if p["status"] != "pending"]


def _run(
    s,
    t0: float,
    session: str,
    a_zone: str | None,
    link_m: float | None = None,
    of: str = "B",
    down: str = "B",
    down_shows: str | None = None,
) -> list[str]:
    """Configure A (zoned or not) and ``down`` (the link ``link_m`` long, if given), feed both
    intersections' frames paced about as the detectors send them, and return the decision
    sentences of ``of`` in this session. ``down_shows``: ``down``'s field controller reports
    that stage after every frame, whatever its plan says."""
    configs = [_config("A", a_zone, t0, session, link_m), _config(down, "W_in", t0, session, link_m)]
    asyncio.run(_send(s, "signals.config", configs, "intersection_id"))

    def started(audit: list[dict[str, Any]]) -> set[str]:
        return {a["intersection_id"] for a in audit if a["session"] == session and a["action"] == "control_started"}

    audit = _wait_for(s, "signals.audit", lambda rs: started(rs) == {"A", down}, 30)
    assert started(audit) == {"A", down}, audit
    for step in range(STEPS):
        # each second's pair together: a neighbour's frame is lent only while fresh (5 s)
        asyncio.run(_send(s, "sensors.intersection", [_frame("A", t0 + step, step), _frame(down, t0 + step, step)], "intersection_id"))
        if down_shows is not None:
            report = {"schema_version": 1, "event_time": _iso(t0 + step), "intersection_id": down, "stage": down_shows,
                      "stage_started_at": _iso(t0)}  # fmt: skip
            asyncio.run(_send(s, "signals.state", [report], "intersection_id"))
        time.sleep(0.1)
    plans = _wait_for(s, "signals.plans", lambda rs: len(_summaries(rs, session, of)) >= STEPS, 60)
    summaries = _summaries(plans, session, of)
    if len(summaries) != STEPS:
        seen = Counter((p["intersection_id"], p["session"], p["status"]) for p in plans)
        rejected = [d.get("reason") for d in _wait_for(s, "deadletter", bool, 2)]
        raise AssertionError(f"{len(summaries)} decisions of {of} in session {session}; plans {dict(seen)}; dead letters {rejected[:3]}")
    return summaries


def test_a_frozen_detector_is_read_through_the_neighbour_on_the_same_worker(broker, settings_for, tmp_path: Path) -> None:
    s = settings_for(broker)
    asyncio.run(ensure_topics(s))
    worker = WorkerProcess(settings_env({**same_place(s), "worker_role": "control"}), tmp_path / "worker.log", free_port())
    worker.start(timeout_s=90)
    try:
        t0 = time.time() - 3600.0
        zoned = _run(s, t0, "corridor", a_zone="E_out")
        assert any(LENT in text for text in zoned), zoned[-3:]
        assert any("W_in unchanged while A's E_out saw the same zone change" in text for text in zoned), zoned[-3:]
        # A's model without the zone (a new session): B's stuck detector is nobody's to read
        plain = _run(s, t0 + STEPS + 10, "corridor-plain", a_zone=None)
        assert all("read by" not in text for text in plain), [t for t in plain if "read by" in t][:1]
        # a 12 m link (leitstand 1.5): A learns from B's driven plan when the link leads into red
        short = _run(s, t0 + 2 * (STEPS + 10), "corridor-short", a_zone="E_out", link_m=12.0, of="A")
        assert any("not sent onto the short link E_out: red at the next signal" in text for text in short), short[-3:]
    finally:
        code = worker.stop()
    assert code == 0, worker.log_tail()


def test_neighbours_on_two_control_workers_still_lend_each_other(broker, settings_for, tmp_path: Path) -> None:
    """Two control workers and two partitions: A (partition 0) and D (partition 1) are controlled
    apart. Each worker reads the other's configuration (the control table's changelog), frames
    and driven plans from the topics, so D still reads A's detector in place of its frozen one,
    and on a 12 m link A still learns from D's driven plan that the link leads into red."""
    from streams.stores import key_partition

    assert key_partition(b"A", 2) != key_partition(b"D", 2)
    s = settings_for(broker, topic_partitions=2)
    asyncio.run(ensure_topics(s))
    env = settings_env({**same_place(s), "worker_role": "control"})
    workers = [WorkerProcess(env, tmp_path / f"worker-{i}.log", free_port()) for i in range(2)]
    try:
        for w in workers:
            w.start(timeout_s=90)

        def feeding() -> bool:
            return all("reading neighbours on other control workers" in w.log_file.read_text(errors="replace") for w in workers)

        deadline = time.monotonic() + 60
        while not feeding() and time.monotonic() < deadline:
            time.sleep(0.5)
        assert feeding(), [w.log_tail() for w in workers]
        t0 = time.time() - 3600.0
        zoned = _run(s, t0, "two-workers", a_zone="E_out", down="D", of="D")
        assert any(LENT in text for text in zoned), zoned[-3:]
        short = _run(s, t0 + STEPS + 10, "two-workers-short", a_zone="E_out", link_m=12.0, of="A", down="D")
        red = "not sent onto the short link E_out: red at the next signal"
        assert any(red in text for text in short), short[-3:]
        # D's field controller reports a program of its own ("manual": police control) whatever
        # D's plan says: D's worker finds it not following and flags D's drive records on the
        # topic, which A's worker reads (stop 46; what A's worker then does with the flag, no
        # longer taking D's plan for what the street shows, is tests/unit/streams/agents/
        # test_neighbour_feed.py: which of A's decisions it changes depends on the traffic)
        _run(s, t0 + 2 * (STEPS + 10), "two-workers-ignored", a_zone="E_out", link_m=12.0, of="A", down="D", down_shows="manual")
        plans = _wait_for(s, "signals.plans", lambda rs: any(p.get("not_following") for p in rs), 10)
        d_drives = [p for p in plans if p["intersection_id"] == "D" and p["status"] in ("active", "fallback", "fixed")]
        flagged = {p["session"] for p in d_drives if p.get("not_following")}
        assert flagged == {"two-workers-ignored"}, flagged  # never while the street followed (no reports)
        ignored = [p for p in d_drives if p["session"] == "two-workers-ignored"]
        assert ignored[-1]["not_following"] and not ignored[0]["not_following"], [p["not_following"] for p in ignored]
    finally:
        codes = [w.stop() for w in workers]
    assert codes == [0, 0], [w.log_tail() for w in workers]


def test_a_neighbour_feed_whose_topic_is_missing_says_so_and_starts_once_it_exists(broker, settings_for) -> None:
    """The feed needs all three topics: with one missing it does not read the other two silently
    but fails to start with the topic named (``start_error``, which ``/ready`` shows), and the
    next start, once the topic exists, reads."""
    from signals.desk import ControlDesk
    from streams.agents.neighbour_feed import NeighbourFeed

    s = settings_for(broker)
    asyncio.run(ensure_topics(s))
    changelog = f"leitstand-feed-probe-{time.time_ns()}-changelog"
    feed = NeighbourFeed(
        s, ControlDesk(lambda _: None), changelog=changelog, frames=s.topic("sensors.intersection"),
        plans=s.topic("signals.plans"), topics_timeout_s=1.0,
    )  # fmt: skip

    async def scenario() -> None:
        with pytest.raises(LookupError, match=changelog):
            await feed.start()
        assert not feed.running and feed.start_error is not None and changelog in feed.start_error
        from aiokafka.admin import AIOKafkaAdminClient, NewTopic

        admin = AIOKafkaAdminClient(bootstrap_servers=s.kafka_bootstrap_servers, **s.kafka_client_options())
        await admin.start()
        try:
            await admin.create_topics([NewTopic(changelog, s.topic_partitions, 1)])
        finally:
            await admin.close()
        feed.topics_timeout_s = 30.0
        await feed.start()
        try:
            assert feed.running and feed.start_error is None
        finally:
            await feed.stop()

    asyncio.run(scenario())
