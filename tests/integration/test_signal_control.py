"""Advisory signal control end to end through a real broker and a `control` worker, both brokers.

A config puts K101 in advisory mode (Webster, recomputed every cycle). Frames make the
controller propose a plan; an operator approves it over HTTP and the signal drives it; the next
proposal nobody approves expires; a mode change over HTTP and a refused command land in
``signals.audit`` with who and when.
"""

from __future__ import annotations

import asyncio
import json
import time
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import quote

import pytest

from streams.kafka_io import ensure_topics
from streams.stack import WorkerProcess, free_port, same_place, settings_env

from .test_alarm_lifecycle import _http, _send, _wait_for

pytestmark = pytest.mark.integration

TOKEN = "signal-token-" + "x" * 32  # at least 32 bytes (issue 10 #6)
MODEL = json.loads((Path(__file__).resolve().parents[2] / "signals" / "examples" / "k101_four_arm.json").read_text())
COUNTS = {"N_in": 1, "S_in": 1, "N_left": 0, "S_left": 1, "E_in": 1, "W_in": 1}


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, tz=timezone.utc).isoformat()


def k101_config(t0: float, controller: str, mode: str, session: str, params: dict, approval_timeout_s: float = 60.0) -> dict:
    """A ``signals.config`` record putting the example crossing K101 under ``controller``."""
    return {
        "schema_version": 1,
        "event_time": _iso(t0),
        "intersection_id": "K101",
        "model": MODEL,
        "controller": controller,
        "mode": mode,
        "session": session,
        "approval_timeout_s": approval_timeout_s,
        "params": params,
    }


def _frames(t0: float, rng: range, iid: str = "K101") -> list[dict]:
    return [
        {
            "schema_version": 1,
            "event_time": _iso(t0 + 5 * i),
            "intersection_id": iid,
            "interval_s": 5.0,
            "detectors": [{"detector_id": k, "count": v, "occupancy": 0.1} for k, v in COUNTS.items()],
        }
        for i in rng
    ]


def approval(iid: str, plan_id: str, actor: str) -> dict:
    """An ``approve`` command as an operator's client puts it on ``signals.approvals``."""
    return {
        "schema_version": 1,
        "event_time": _iso(time.time()),
        "intersection_id": iid,
        "action": "approve",
        "plan_id": plan_id,
        "actor": actor,
    }


def approve_and_drive(s, base: str, plan_id: str, t0: float, frames: range, timeout_s: float = 30.0, token: str = TOKEN) -> list[dict]:
    """An operator approves ``plan_id`` of K101 over HTTP; once the approval is on
    ``signals.plans`` the ``frames`` are sent; returns the plans once every frame has its drive."""
    status, answer = _http("POST", f"{base}/signals/K101/plans/{quote(plan_id)}/approve", token=token, body={"actor": "operator-7"})
    assert status == 202, answer
    _wait_for(s, "signals.plans", lambda rs: any(p["status"] == "approved" for p in rs), timeout_s)
    asyncio.run(_send(s, "sensors.intersection", _frames(t0, frames), "intersection_id"))
    return _wait_for(s, "signals.plans", lambda rs: len(_drives(rs)) >= frames.stop, timeout_s)


def _drives(plans: list[dict]) -> list[dict]:
    return [p for p in plans if p["status"] in ("active", "fallback", "fixed")]


def _configured(s, iid: str) -> None:
    """Wait until the worker applied ``iid``'s configuration. Configurations and frames are
    different topics: a frame fetched before its configuration has no controller and gets no
    drive reply (one of 25 frames in a CI run under load)."""
    audit = _wait_for(s, "signals.audit", lambda rs: any(a["action"] == "control_started" and a["intersection_id"] == iid for a in rs), 30)
    assert any(a["action"] == "control_started" and a["intersection_id"] == iid for a in audit), audit


@pytest.mark.parametrize("role", ["control"])  # role `all` is exercised by test_sumo_cosim.py
def test_advisory_mode_end_to_end(broker, settings_for, tmp_path: Path, role: str) -> None:
    s = settings_for(broker, api_token=TOKEN)
    asyncio.run(ensure_topics(s))
    env = settings_env(
        {
            **same_place(s),
            "api_token": TOKEN,
            "worker_role": role,
        }
    )
    web_port = free_port()
    worker = WorkerProcess(env, tmp_path / "worker.log", web_port)
    worker.start(timeout_s=90)
    base = f"http://127.0.0.1:{web_port}"
    t0 = time.time() - 600.0  # event time of the first frame; frames run 5 s apart, faster than real time
    try:
        config = k101_config(t0, "webster", "advisory", "it-run", {"recompute_every_cycles": 1})
        asyncio.run(_send(s, "signals.config", [config], "intersection_id"))
        _configured(s, "K101")
        asyncio.run(_send(s, "sensors.intersection", _frames(t0, range(1), "K999") + _frames(t0, range(25)), "intersection_id"))

        # every frame of K101 gets exactly one drive reply (the fixed program); one proposal waits
        plans = _wait_for(s, "signals.plans", lambda rs: len(_drives(rs)) >= 25, 30)
        drives = _drives(plans)
        assert len(drives) == 25 and {d["intersection_id"] for d in drives} == {"K101"}  # K999 is ignored
        assert all(d["status"] == "fixed" and d["mode"] == "advisory" and d["session"] == "it-run" for d in drives)
        [first] = [p for p in plans if p["status"] == "pending"]
        assert first["controller"] == "webster" and first["expires_at_s"] == pytest.approx(first["time_s"] + 60.0)
        assert [(p["stage"], p["green_s"]) for p in first["phases"]] != [(p["stage"], p["green_s"]) for p in MODEL["fixed_plan"]]
        status, listed = _http("GET", f"{base}/signals/plans?status=pending", token=TOKEN)
        assert status == 200 and [p["plan_id"] for p in listed["plans"]] == [first["plan_id"]]

        # the API's refusals
        approve = f"{base}/signals/K101/plans/{quote(first['plan_id'])}/approve"
        assert _http("POST", approve, body={"actor": "x"})[0] == 401
        assert _http("POST", f"{base}/signals/K101/plans/K101@1~nothing/approve", token=TOKEN)[0] == 404
        assert _http("POST", f"{base}/signals/K999/mode", token=TOKEN, body={"mode": "off"})[0] == 404
        assert _http("POST", f"{base}/signals/K101/mode", token=TOKEN, body={"mode": "manual"})[0] == 400

        # approve it: the command goes through signals.approvals, the agent applies it
        status, answer = _http("POST", approve, token=TOKEN, body={"actor": "operator-7"})
        assert status == 202, answer
        plans = _wait_for(s, "signals.plans", lambda rs: any(p["status"] == "approved" for p in rs), 20)
        assert [p["plan_id"] for p in plans if p["status"] == "approved"] == [first["plan_id"]]

        # more frames: the approved plan drives; the next proposal nobody approves expires
        asyncio.run(_send(s, "sensors.intersection", _frames(t0, range(25, 56)), "intersection_id"))
        plans = _wait_for(s, "signals.plans", lambda rs: len(_drives(rs)) >= 56, 30)
        later = _drives(plans)[25:]
        assert later[0]["status"] == "active" and later[0]["plan_id"] == first["plan_id"] and later[0]["changed"]
        assert later[0]["phases"] == first["phases"]
        assert all(d["plan_id"] == first["plan_id"] for d in later)
        proposals = [p for p in plans if p["status"] == "pending"]
        assert len(proposals) == 2
        second = proposals[1]
        assert [p["status"] for p in plans if p["plan_id"] == second["plan_id"]] == ["pending", "expired"]
        assert _http("POST", f"{base}/signals/K101/plans/{quote(second['plan_id'])}/approve", token=TOKEN)[0] == 404

        # a command the agent refuses (the plan expired) is audited, not lost
        late = approval("K101", second["plan_id"], "operator-8")
        asyncio.run(_send(s, "signals.approvals", [late], "intersection_id"))
        status, answer = _http(
            "POST", f"{base}/signals/K101/mode", token=TOKEN, body={"mode": "automatic", "reason": "rush hour", "actor": "operator-7"}
        )
        assert status == 202, answer
        audit = _wait_for(s, "signals.audit", lambda rs: any(a["action"] == "mode_changed" for a in rs), 20)
        actions = [(a["action"], a["actor"]) for a in audit]
        assert actions[:2] == [("control_started", "config"), ("plan_proposed", "webster")]
        approved = [a for a in audit if a["action"] == "plan_approved"]
        assert [(a["actor"], a["detail"]["plan"]) for a in approved] == [("machine-token", first["plan_id"])]
        assert "requested_at" in approved[0]["detail"]
        assert ("plan_expired", "timer") in actions
        [refused] = [a for a in audit if a["action"] == "command_refused"]
        assert refused["actor"] == "operator-8" and "no pending plan" in refused["detail"]["reason"]
        [mode] = [a for a in audit if a["action"] == "mode_changed"]
        assert mode["actor"] == "machine-token" and mode["detail"]["previous"] == "advisory"
        assert mode["detail"]["mode"] == "automatic" and mode["detail"]["reason"] == "claimed by operator-7: rush hour"
        assert all(a["session"] == "it-run" for a in audit)
        metrics = worker.metrics()
        assert metrics["leitstand_signal_frames_unconfigured_total"] == 1.0
        assert metrics['leitstand_signal_commands_total{action="approve",outcome="refused"}'] == 1.0
    finally:
        code = worker.stop()
    assert code == 0, worker.log_tail()


def test_leitstand_in_advisory_mode_drives_once_an_operator_approves_its_mandate(broker, settings_for, tmp_path: Path) -> None:
    """An acyclic controller in advisory mode (``signals.advisory``): one request to drive for
    15 minutes on ``signals.plans`` (``mandate_s``), the fixed program until an operator approves
    it over HTTP, then leitstand's own decisions; the approval's audit entry says until when."""
    s = settings_for(broker, api_token=TOKEN)
    asyncio.run(ensure_topics(s))
    web_port = free_port()
    worker = WorkerProcess(settings_env({**same_place(s), "api_token": TOKEN, "worker_role": "control"}), tmp_path / "worker.log", web_port)
    worker.start(timeout_s=90)
    base = f"http://127.0.0.1:{web_port}"
    t0 = time.time() - 600.0
    try:
        asyncio.run(_send(s, "signals.config", [k101_config(t0, "leitstand", "advisory", "mandate-run", {}, 600.0)], "intersection_id"))
        _configured(s, "K101")
        asyncio.run(_send(s, "sensors.intersection", _frames(t0, range(25)), "intersection_id"))
        plans = _wait_for(s, "signals.plans", lambda rs: len(_drives(rs)) >= 25, 30)
        assert all(d["status"] == "fixed" for d in _drives(plans))
        [request] = [p for p in plans if p["status"] == "pending"]
        assert request["controller"] == "leitstand" and request["mandate_s"] == 900.0
        assert "approve to let leitstand drive K101 for 15 min" in request["explanation"]["expected_effect"]

        plans = approve_and_drive(s, base, request["plan_id"], t0, range(25, 45))
        later = _drives(plans)[25:]
        assert len(later) == 20 and all(d["status"] in ("active", "fallback") and d["controller"] == "leitstand" for d in later)
        audit = _wait_for(s, "signals.audit", lambda rs: any(a["action"] == "plan_approved" for a in rs), 20)
        [approved] = [a for a in audit if a["action"] == "plan_approved"]
        assert approved["detail"]["mandate_until_s"] == pytest.approx(t0 + 5 * 24 + 900.0)

        # under the mandate a late bus's request becomes a bus call leitstand weighs (stop 51)
        bus = {
            "schema_version": 1,
            "event_time": _iso(t0 + 5 * 44),
            "intersection_id": "K101",
            "vehicle_id": "bus-9",
            "trip_id": "T9",
            "route_id": "L1",
            "delay_s": 200.0,
            "eta_s": 20.0,
            "request_id": "tsp@K101~T9",
            "approach": "C",
        }
        asyncio.run(_send(s, "signals.priority", [bus], "intersection_id"))
        audit = _wait_for(s, "signals.audit", lambda rs: any(a["action"] == "priority_granted" for a in rs), 30)
        [call] = [a for a in audit if a["action"] == "priority_granted"]
        assert call["actor"] == "bus:bus-9" and call["detail"]["kind"] == "bus_call" and call["detail"]["weight_veh"] > 0
        asyncio.run(_send(s, "sensors.intersection", _frames(t0, range(45, 48)), "intersection_id"))
        plans = _wait_for(s, "signals.plans", lambda rs: len(_drives(rs)) >= 48, 30)
        assert any("transit priority: bus bus-9" in d["explanation"]["expected_effect"] for d in _drives(plans)[45:])
    finally:
        code = worker.stop()
    assert code == 0, worker.log_tail()


def test_a_proposal_that_lapsed_in_a_detector_outage_is_not_approved(broker, settings_for, tmp_path: Path) -> None:
    """Frames stop with a proposal 5 s from its expiry (stream time). With no frame and no
    command after that, the worker's lapse timer publishes it expired with the outage as the
    reason; the API no longer lists it and refuses to approve it, and an approval sent straight
    to the topic is refused instead of driving a plan made from stale data."""
    s = settings_for(broker, api_token=TOKEN)
    asyncio.run(ensure_topics(s))
    env = settings_env({**same_place(s), "api_token": TOKEN, "worker_role": "control"})
    web_port = free_port()
    base = f"http://127.0.0.1:{web_port}"
    t0 = time.time() - 600.0
    worker = WorkerProcess(env, tmp_path / "worker.log", web_port)
    worker.start(timeout_s=90)
    try:
        # webster proposes at frame 19 (t0 + 95 s); a 30 s window ends 5 s after the last frame
        asyncio.run(
            _send(
                s,
                "signals.config",
                [k101_config(t0, "webster", "advisory", "outage", {"recompute_every_cycles": 1}, 30.0)],
                "intersection_id",
            )
        )
        _configured(s, "K101")
        asyncio.run(_send(s, "sensors.intersection", _frames(t0, range(25)), "intersection_id"))
        plans = _wait_for(s, "signals.plans", lambda rs: len(_drives(rs)) >= 25, 60)
        [pending] = [p for p in plans if p["status"] == "pending"]
        assert pending["expires_at_s"] - (t0 + 5 * 24) == pytest.approx(5.0)
        plans = _wait_for(s, "signals.plans", lambda rs: any(p["status"] == "expired" for p in rs), 30)  # nothing sent
        assert [p["status"] for p in plans if p["plan_id"] == pending["plan_id"]] == ["pending", "expired"]
        audit = _wait_for(s, "signals.audit", lambda rs: any(a["action"] == "plan_expired" for a in rs), 30)
        [expired] = [a for a in audit if a["action"] == "plan_expired"]
        assert expired["actor"] == "timer" and "no detector frames for" in expired["detail"]["reason"]
        assert _http("GET", f"{base}/signals/plans?status=pending", token=TOKEN)[1]["count"] == 0
        approve = f"{base}/signals/K101/plans/{quote(pending['plan_id'])}/approve"
        status, answer = _http("POST", approve, token=TOKEN, body={"actor": "operator-7"})
        assert status == 404 and "expired" in answer["error"], answer
        late = {"schema_version": 1, "event_time": _iso(time.time()), "intersection_id": "K101", "action": "approve",
                "plan_id": pending["plan_id"], "actor": "operator-7"}  # fmt: skip
        asyncio.run(_send(s, "signals.approvals", [late], "intersection_id"))
        audit = _wait_for(s, "signals.audit", lambda rs: any(a["action"] == "command_refused" for a in rs), 30)
        assert [a["action"] for a in audit if a["action"] in ("plan_expired", "command_refused")] == ["plan_expired", "command_refused"]
        plans = _wait_for(s, "signals.plans", lambda rs: any(p["status"] == "expired" for p in rs), 5)
        assert not any(p["status"] == "approved" for p in plans)
    finally:
        code = worker.stop()
    assert code == 0, worker.log_tail()


def test_a_restarted_worker_rebuilds_control_from_its_table(broker, settings_for, tmp_path: Path) -> None:
    """The config and an operator's mode survive a restart (the table); pending proposals expire."""
    s = settings_for(broker, api_token=TOKEN)
    asyncio.run(ensure_topics(s))
    env = settings_env(
        {
            **same_place(s),
            "api_token": TOKEN,
            "worker_role": "control",
        }
    )
    web_port = free_port()
    base = f"http://127.0.0.1:{web_port}"
    t0 = time.time() - 600.0
    config = k101_config(t0, "webster", "advisory", "restart-run", {"recompute_every_cycles": 1}, approval_timeout_s=600.0)
    worker = WorkerProcess(env, tmp_path / "worker.log", web_port)
    worker.start(timeout_s=90)
    try:
        asyncio.run(_send(s, "signals.config", [config], "intersection_id"))
        _configured(s, "K101")
        asyncio.run(_send(s, "sensors.intersection", _frames(t0, range(25)), "intersection_id"))
        plans = _wait_for(s, "signals.plans", lambda rs: len(_drives(rs)) >= 25, 60)
        assert len(_drives(plans)) == 25, [(d["status"], d["mode"]) for d in _drives(plans)]
        [pending] = [p for p in plans if p["status"] == "pending"]
    finally:
        assert worker.stop() == 0, worker.log_tail()

    worker = WorkerProcess(env, tmp_path / "worker2.log", web_port)
    worker.start(timeout_s=90)
    try:
        assert _http("GET", f"{base}/signals/plans", token=TOKEN)[1]["count"] == 0
        # the table knows K101 before any frame arrives: a mode change is accepted
        status, answer = _http(
            "POST", f"{base}/signals/K101/mode", token=TOKEN, body={"mode": "off", "reason": "after restart", "actor": "operator-7"}
        )
        assert status == 202, answer
        # restoring expired the stale proposal; the command was applied at the restored clock
        audit = _wait_for(s, "signals.audit", lambda rs: any(a["action"] == "mode_changed" for a in rs), 20)
        tail = [(a["action"], a["actor"]) for a in audit][-3:]
        assert tail == [("plan_expired", "restart"), ("control_restored", "restart"), ("mode_changed", "machine-token")]
        # (commands and frames are different topics: only after the command was applied is the
        # next frame sure to see it)
        asyncio.run(_send(s, "sensors.intersection", _frames(t0, range(25, 27)), "intersection_id"))
        plans = _wait_for(s, "signals.plans", lambda rs: len(_drives(rs)) >= 27, 60)
        assert [p["status"] for p in plans if p["plan_id"] == pending["plan_id"]] == ["pending", "expired"]
        assert [(d["status"], d["mode"]) for d in _drives(plans)[25:]] == [("fixed", "off")] * 2
    finally:
        code = worker.stop()
    assert code == 0, worker.log_tail()


def _unsafe(edit) -> dict:
    model = json.loads(json.dumps(MODEL))
    edit(model)
    return model


def test_an_unsafe_config_is_refused_and_audited_and_the_previous_one_keeps_driving(broker, settings_for, tmp_path: Path) -> None:
    """Issue 10 #2/#3: a NaN intergreen (null on the wire) and 1 s greens crashed the agent at the
    first frame (10 restarts in one run, the config lost without a trace). Now each is refused
    with a ``config_refused`` audit entry and the running control loop keeps driving."""
    s = settings_for(broker)
    asyncio.run(ensure_topics(s))
    env = settings_env(
        {
            **same_place(s),
            "worker_role": "control",
        }
    )
    worker = WorkerProcess(env, tmp_path / "worker.log", free_port())
    worker.start(timeout_s=90)
    t0 = time.time() - 600.0

    def config(session: str, model: dict, at: float) -> dict:
        return {
            "schema_version": 1,
            "event_time": _iso(at),
            "intersection_id": "K101",
            "model": model,
            "controller": "fixed",
            "mode": "automatic",
            "session": session,
            "approval_timeout_s": 60.0,
        }

    nan_as_null = _unsafe(lambda m: m["intergreen_s"]["FE"].update(K2=None))
    one_second = _unsafe(
        lambda m: ([st.update(min_green_s=1, max_green_s=1) for st in m["stages"]], [p.update(green_s=1) for p in m["fixed_plan"]])
    )
    try:
        asyncio.run(_send(s, "signals.config", [config("good", MODEL, t0)], "intersection_id"))
        # configs and frames are different topics: frames sent before the config is applied are ignored
        _wait_for(s, "signals.audit", lambda rs: any(a["action"] == "control_started" for a in rs), 30)
        asyncio.run(_send(s, "sensors.intersection", _frames(t0, range(3)), "intersection_id"))
        _wait_for(s, "signals.plans", lambda rs: len(_drives(rs)) >= 3, 30)
        asyncio.run(
            _send(s, "signals.config", [config("nan", nan_as_null, t0 + 16), config("one-second", one_second, t0 + 17)], "intersection_id")
        )
        asyncio.run(_send(s, "sensors.intersection", _frames(t0, range(3, 8)), "intersection_id"))
        plans = _wait_for(s, "signals.plans", lambda rs: len(_drives(rs)) >= 8, 30)
        audit = _wait_for(s, "signals.audit", lambda rs: sum(a["action"] == "config_refused" for a in rs) >= 2, 20)
        drives = _drives(plans)
        assert len(drives) == 8, (drives, worker.log_tail())
        assert all(d["status"] == "active" and d["session"] == "good" for d in drives)
        refused = [a for a in audit if a["action"] == "config_refused"]
        assert [(a["session"], a["detail"]["session"], a["detail"]["kept_session"]) for a in refused] == [
            ("good", "nan", "good"),
            ("good", "one-second", "good"),
        ]
        assert "intergreen_s.FE.K2: expected a number, got null" in refused[0]["detail"]["reason"]
        assert "min_green_s 1 s" in refused[1]["detail"]["reason"]
        assert [a["action"] for a in audit].count("control_started") == 1
    finally:
        code = worker.stop()
    log = (tmp_path / "worker.log").read_text()
    assert code == 0 and "fallback plan itself is unsafe" not in log and "Traceback" not in log, worker.log_tail()


def test_either_of_two_control_workers_answers_for_every_intersection(broker, settings_for, tmp_path: Path) -> None:
    """Two control workers split K101 (partition 0) and K102 (partition 1). Whichever worker a
    request reaches lists both intersections' pending proposals and takes an approval or a mode
    change for either: a change for the other worker's intersection is forwarded to it (before
    stop 46 it was answered 404 "no such intersection")."""
    from streams.stores import key_partition
    from tests.integration.test_broker_outage import wait_for
    from tests.integration.test_http_api_auth import Api
    from tests.integration.test_scale_out import _owned

    ids = ("K101", "K102")
    assert [key_partition(i.encode(), 2) for i in ids] == [0, 1]
    s = settings_for(broker, api_token=TOKEN, topic_partitions=2)
    asyncio.run(ensure_topics(s))
    workers = [
        WorkerProcess(
            settings_env({**same_place(s), "api_token": TOKEN, "worker_role": "control", "data_dir": tmp_path / f"w{n}"}),
            tmp_path / f"worker-{n}.log",
            free_port(),
        )
        for n in range(2)
    ]
    frames_topic = s.topic("sensors.intersection")
    t0 = time.time() - 600.0
    try:
        for w in workers:
            w.launch()
        for w in workers:
            w.wait_ready(timeout_s=120)
        assert wait_for(lambda: all(len(_owned(w, frames_topic)) == 1 for w in workers), 90, 0.5), [w.log_tail() for w in workers]
        holder = {iid: next(w for w in workers if key_partition(iid.encode(), 2) in _owned(w, frames_topic)) for iid in ids}
        assert holder["K101"] is not holder["K102"]
        configs = [
            {**k101_config(t0, "webster", "advisory", "two-workers", {"recompute_every_cycles": 1}, 600.0),
             "intersection_id": iid, "model": {**MODEL, "id": iid}}
            for iid in ids
        ]  # fmt: skip
        asyncio.run(_send(s, "signals.config", configs, "intersection_id"))
        for iid in ids:
            _configured(s, iid)
        asyncio.run(_send(s, "sensors.intersection", _frames(t0, range(25), "K101") + _frames(t0, range(25), "K102"), "intersection_id"))
        plans = _wait_for(s, "signals.plans", lambda rs: sum(p["status"] == "pending" for p in rs) >= 2, 60)
        pending = {p["intersection_id"]: p["plan_id"] for p in plans if p["status"] == "pending"}
        assert set(pending) == set(ids), plans

        apis = [Api(w.web_port) for w in workers]

        def listing(api: Api, local: bool = False) -> dict:
            headers = {"X-Leitstand-Forwarded-By": "test"} if local else None
            status, body = api.call("GET", "/signals/plans", auth=f"Bearer {TOKEN}", headers=headers)
            assert status == 200, body
            return body

        def both_listed() -> bool:
            return all({p["intersection_id"] for p in listing(api)["plans"]} == set(ids) for api in apis)

        assert wait_for(both_listed, 60, 0.5), [listing(api) for api in apis]
        body = listing(apis[0])
        assert body["workers"] == 2 and body["unreachable"] == [] and body["count"] == 2, body
        assert [p["intersection_id"] for p in body["plans"]] == ["K101", "K102"]
        for iid in ids:  # each worker on its own still holds only its intersection
            own = listing(Api(holder[iid].web_port), local=True)
            assert [p["intersection_id"] for p in own["plans"]] == [iid], own

        # approve K102's proposal and switch K101 off, each through the worker that does not hold it
        other = {iid: next(w for w in workers if w is not holder[iid]) for iid in ids}
        status, answer = Api(other["K102"].web_port).bearer(
            "POST", f"/signals/K102/plans/{quote(pending['K102'])}/approve", TOKEN, {"reason": "forwarded"}
        )
        assert status == 202 and answer["accepted"] == "approve", answer
        # an unknown plan, while K101 is still advisory: once the mode change below is applied the
        # holder answers 409 "in mode off" first (one CI run on Kafka applied it that fast)
        status, answer = Api(other["K101"].web_port).bearer("POST", "/signals/K101/plans/K101@nope/approve", TOKEN, {})
        assert status == 404, answer  # the holder's checks answer, forwarded back as they are
        status, answer = Api(other["K101"].web_port).bearer("POST", "/signals/K101/mode", TOKEN, {"mode": "off"})
        assert status == 202 and answer["accepted"] == "set_mode", answer
        audit = _wait_for(s, "signals.audit", lambda rs: {"plan_approved", "mode_changed"} <= {a["action"] for a in rs}, 30)
        approved = [a for a in audit if a["action"] == "plan_approved"]
        assert [(a["intersection_id"], a["detail"].get("plan")) for a in approved] == [("K102", pending["K102"])], approved
        assert [a["intersection_id"] for a in audit if a["action"] == "mode_changed"] == ["K101"]
    finally:
        codes = [w.stop() for w in workers]
    assert codes == [0, 0], [w.log_tail() for w in workers]
