"""A field controller that stops following its plan reaches the alarm books through a real broker
and a `control` worker, both brokers.

K101 runs its fixed program. Its controller reports on ``signals.state`` every frame: stage A,
whatever the plan says, for the first 300 s (a cabinet switched to local control), then the stage
the program shows (modelled by the same stage adapter the SUMO loop drives, from the program's
start at the first frame). Reports and frames go out on their own topics, each all at once, so
the worker meets them in any interleaving. There must be exactly one raise of
``signal_not_following`` for K101 on ``alerts.lifecycle`` (while it is stuck, at least the grace
after the plan first asked for another stage) and one clear after it follows again, both
decodable by the alarm books' reader. Under leitstand (stop 48), the drive plans published while
it is raised start from the stage the cabinet shows, green since it said.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import msgspec
import pytest

from signals.adapter import StageAdapter
from signals.explain import Explanation, StageDecision
from signals.following import GRACE_S, KIND
from signals.loader import load_intersection
from streams.kafka_io import ensure_topics
from streams.records import LifecycleCommand, SignalPlanMessage
from streams.settings import Settings
from streams.stack import WorkerProcess, free_port, same_place, settings_env
from tests.paths import EXAMPLE_INTERSECTION

from .test_alarm_lifecycle import _send, _wait_for
from .test_signal_control import _configured, _frames, _iso, k101_config

pytestmark = pytest.mark.integration

STEP_S = 5.0  # test_signal_control's frames come every 5 s
STUCK = 60  # frames (300 s) reported as stage A
FRAMES = 180


def _reports(t0: float, skew_s: float = 0.0) -> list[dict]:
    """What the cabinet says at each frame time: A while stuck, then the program's stage. With a
    ``skew_s`` its clock runs that far ahead and it reports its own change times
    (``stage_started_exact``); without, a change is stamped with the frame it was first seen at."""
    x = load_intersection(EXAMPLE_INTERSECTION)
    program = StageDecision(x.id, t0, x.fixed_plan, Explanation("fixed", "1.0", "fixed_program", (), "-"), t0)
    adapter, shown = StageAdapter(x), {}
    for k in range(int(STEP_S * FRAMES)):  # the cabinet runs second by second
        adapter.step(program, t0 + k)
        shown[k] = (adapter.stage, adapter.green_start_s)
    out: list[dict] = []
    started = t0
    for i in range(FRAMES):
        t = t0 + STEP_S * i
        stage, green = ("A", t0) if i < STUCK else shown[int(STEP_S * i)]
        if out and stage != out[-1]["stage"]:
            started = green if skew_s else t
        record = {"schema_version": 1, "event_time": _iso(t + skew_s), "intersection_id": "K101", "stage": stage}
        out.append({**record, "stage_started_at": _iso(started + skew_s), **({"stage_started_exact": True} if skew_s else {})})
    return out


@contextmanager
def _k101_under(s: Settings, tmp_path: Path, controller: str, t0: float) -> Iterator[WorkerProcess]:
    """A `control` worker with K101 configured under ``controller`` (automatic), stopped after."""
    asyncio.run(ensure_topics(s))
    env = settings_env({**same_place(s), "worker_role": "control"})
    worker = WorkerProcess(env, tmp_path / "worker.log", free_port())
    worker.start(timeout_s=90)
    try:
        asyncio.run(_send(s, "signals.config", [k101_config(t0, controller, "automatic", f"{controller}-run", {})], "intersection_id"))
        _configured(s, "K101")
        yield worker
    finally:
        worker.stop()


@pytest.mark.parametrize("skew_s", [0.0, 8.0])
def test_a_signal_not_following_raises_and_clears_one_alarm(broker, settings_for, tmp_path: Path, skew_s: float) -> None:
    """Also with the cabinet's clock 8 s ahead, reporting its own change times: before stop 53
    such a cabinet was never seen changing in step with the plan, and the alarm never cleared."""
    s = settings_for(broker)
    t0 = time.time() - 3600.0
    with _k101_under(s, tmp_path, "fixed", t0):
        reports = _reports(t0, skew_s)
        assert {r["stage"] for r in reports[STUCK:]} > {"A"}  # the program moves on after the stuck part
        asyncio.run(_send(s, "signals.state", reports, "intersection_id"))
        asyncio.run(_send(s, "sensors.intersection", _frames(t0, range(FRAMES)), "intersection_id"))
        commands = _wait_for(s, "alerts.lifecycle", lambda rs: any(r["op"] == "clear" for r in rs), 120)
        decoded = [msgspec.json.decode(json.dumps(r).encode(), type=LifecycleCommand) for r in commands]
        assert [(c.op, c.subject_id, c.subject_type, c.kind) for c in decoded] == [
            ("raise", "K101", "intersection", KIND),
            ("clear", "K101", "intersection", KIND),
        ]
        raised, cleared = decoded
        assert GRACE_S <= raised.event_time.timestamp() - t0 < STUCK * STEP_S
        assert cleared.event_time.timestamp() - t0 >= STUCK * STEP_S + GRACE_S
        assert raised.severity == "major" and "shows stage A while the plan drives" in (raised.message or "")
        assert raised.evidence is not None and raised.evidence["reported_stage"] == "A"
        # nothing learned while it was stuck (no changes to learn from): the alarm says no offset
        assert raised.evidence["clock_offset_s"] == 0.0


def test_a_leitstand_signal_not_following_is_planned_from_the_stage_it_shows(broker, settings_for, tmp_path: Path) -> None:
    """The cabinet reports stage A for the whole run: once the alarm is raised, the worker's
    leitstand plans on from A (shown since the first report), and its explanation says so."""
    s = settings_for(broker)
    t0 = time.time() - 3600.0
    with _k101_under(s, tmp_path, "leitstand", t0) as worker:
        stuck = {"schema_version": 1, "intersection_id": "K101", "stage": "A", "stage_started_at": _iso(t0)}
        reports = [{**stuck, "event_time": _iso(t0 + STEP_S * i)} for i in range(STUCK)]
        asyncio.run(_send(s, "signals.state", reports, "intersection_id"))
        asyncio.run(_send(s, "sensors.intersection", _frames(t0, range(STUCK)), "intersection_id"))

        def told(records: list[dict]) -> list[SignalPlanMessage]:
            plans = [msgspec.json.decode(json.dumps(r).encode(), type=SignalPlanMessage) for r in records]
            return [p for p in plans if "planned from stage A" in str(p.explanation.get("expected_effect", ""))]

        records = _wait_for(s, "signals.plans", lambda rs: bool(told(rs)), 120)
        plans = told(records)
        assert plans, worker.log_tail(40)
        first = plans[0]
        assert first.controller == "leitstand" and first.phases[0].stage == "A" and first.not_following
        assert first.origin_s >= t0 and first.time_s - t0 >= GRACE_S
        commands = _wait_for(s, "alerts.lifecycle", lambda rs: any(r["op"] == "raise" for r in rs), 30)
        assert [(c["op"], c["kind"]) for c in commands] == [("raise", KIND)]
