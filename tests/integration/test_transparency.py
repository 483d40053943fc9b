"""Explanations answer from a real run's logs; the data-quality watch is on /metrics. Tansu.

One worker (role ``all``) controls K101 in advisory mode: an operator approves the first
proposal over HTTP, the signal drives it, and ``leitstand explain signals`` (CLI and HTTP) must
name the controller, the rule, the alternatives, the approving operator and, because the test's
detectors repeat one count for the whole run, that the decision used data the watch calls
stuck. A camera event raises an alarm an operator acknowledges; ``leitstand explain alarm``
must tell that story.
"""

from __future__ import annotations

import asyncio
import json
import time
import urllib.request
from datetime import datetime, timezone
from pathlib import Path

import pytest

from streams.kafka_io import ensure_topics
from streams.stack import WorkerProcess, free_port, same_place, settings_env
from tests.cli_helpers import leitstand, one_clean_line

from .test_alarm_lifecycle import _http, _send, _wait_for
from .test_signal_control import MODEL, _configured, _drives, _frames, _iso, approve_and_drive

#: Tansu only (the embedded default the demo runs): what this checks (the explanations rebuilt from
#: a worker's logs and state topics, the data-quality gauges) is read through the same client
#: code on both brokers, while the broker-specific behaviours (recovery, rebalances, outages)
#: are test_reliability's, test_scale_out's and test_broker_outage's on both; the Kafka half cost
#: ~37 s of a suite at its 30-minute limit
pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.parametrize("broker", ["tansu"], indirect=True)]

TOKEN = "transparency-token-" + "x" * 32


def _metrics(base: str) -> str:
    with urllib.request.urlopen(f"{base}/metrics", timeout=10) as r:  # noqa: S310
        return r.read().decode()


def _sample(text: str, name: str, **labels: str) -> float | None:
    want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))  # the exposition sorts labels
    for line in text.splitlines():
        if line.startswith(f"{name}{{{want}}} ") or (not labels and line.startswith(f"{name} ")):
            return float(line.rsplit(" ", 1)[1])
    return None


def _wait_metric(base: str, name: str, at_least: float, timeout_s: float, **labels: str) -> float:
    deadline = time.monotonic() + timeout_s
    while True:
        value = _sample(_metrics(base), name, **labels)
        if (value is not None and value >= at_least) or time.monotonic() > deadline:
            assert value is not None and value >= at_least, (name, labels, value)
            return value
        time.sleep(0.5)


def _signal_run(s, base: str, t0: float) -> tuple[dict, float]:
    """Config, frames, one approval, more frames: returns the approved plan and a time it drove."""
    config = {
        "schema_version": 1,
        "event_time": _iso(t0),
        "intersection_id": "K101",
        "model": MODEL,
        "controller": "webster",
        "mode": "advisory",
        "session": "transparency-run",
        "approval_timeout_s": 60.0,
        "params": {"recompute_every_cycles": 1},
    }
    asyncio.run(_send(s, "signals.config", [config], "intersection_id"))
    _configured(s, "K101")  # a frame read before its configuration gets no drive reply
    asyncio.run(_send(s, "sensors.intersection", _frames(t0, range(25)), "intersection_id"))
    plans = _wait_for(s, "signals.plans", lambda rs: any(p["status"] == "pending" for p in rs), 60)
    first = next(p for p in plans if p["status"] == "pending")
    plans = approve_and_drive(s, base, first["plan_id"], t0, range(25, 45), timeout_s=60.0, token=TOKEN)
    assert len(_drives(plans)) >= 45, "every frame gets its drive reply"
    driving = [d for d in _drives(plans) if d["plan_id"] == first["plan_id"]]
    assert driving, plans
    return first, datetime.fromisoformat(driving[-1]["event_time"].replace("Z", "+00:00")).timestamp()


def _alarm_run(s, base: str) -> tuple[str, str]:
    """A camera event raises an alarm; an operator acknowledges it: its id and who (as logged)."""
    now = datetime.now(timezone.utc).isoformat()
    event = {"schema_version": 1, "event_time": now, "pool_id": "P1", "event_id": "T1", "kind": "motionless_swimmer", "zone": "deep"}
    asyncio.run(_send(s, "pool.supervision", [event], "pool_id"))
    raised = _wait_for(s, "alerts", lambda rs: any(r["transition"] == "raised" for r in rs), 60)
    alarm_id = next(r["alarm_id"] for r in raised if r["transition"] == "raised")
    status, answer = _http("POST", f"{base}/alerts/{alarm_id}/ack", token=TOKEN, body={"by": "lifeguard-2"})
    assert status in (200, 202), answer
    alerts = _wait_for(s, "alerts", lambda rs: any(r["transition"] == "acknowledged" for r in rs), 30)
    return alarm_id, next(r["acknowledged_by"] for r in alerts if r["transition"] == "acknowledged")


def test_explain_from_a_real_run(broker, settings_for, tmp_path: Path) -> None:
    s = settings_for(broker, api_token=TOKEN)
    asyncio.run(ensure_topics(s))
    place = same_place(s)
    env = settings_env({**place, "api_token": TOKEN, "pools": {"P1": {"basin_type": "swimmer", "capacity": 100}}})
    web_port = free_port()
    worker = WorkerProcess(env, tmp_path / "worker.log", web_port)
    worker.start(timeout_s=120)
    base = f"http://127.0.0.1:{web_port}"
    cli_env = settings_env(place)
    try:
        first, drove_at = _signal_run(s, base, time.time() - 600.0)
        alarm_id, acked_by = _alarm_run(s, base)  # the API names the token's account or the body's "by"

        # signals: the CLI, from the topics
        proc = leitstand("explain", "signals", "K101", "--at", str(drove_at), "--json", env=cli_env)
        assert proc.returncode == 0, proc.stderr
        found = json.loads(proc.stdout)
        assert found["found"] and found["plan"]["plan_id"] == first["plan_id"] and found["status"] == "active"
        assert found["decided_by"]["controller"] == "webster" and found["decided_by"]["rule"]
        # the approver as the audit trail recorded it (the API names the token's account or the body's actor)
        audit = _wait_for(s, "signals.audit", lambda rs: any(r["action"] == "plan_approved" for r in rs), 30)
        [approval] = [r for r in audit if r["action"] == "plan_approved" and r["detail"].get("plan") == first["plan_id"]]
        assert approval["actor"] and [(a["action"], a["actor"]) for a in found["approved_by"]] == [("plan_approved", approval["actor"])]
        assert isinstance(found["alternatives"], list) and found["seen"]["inputs"]
        assert found["seen"]["last_frame"]["intersection_id"] == "K101"
        # 5 s frames with one fixed count per detector: stuck after 30 readings, flagged by the watch
        assert found["data_quality"] and all("stuck" in v for v in found["data_quality"].values()), found["data_quality_note"]
        assert found["data_quality_note"].startswith("this decision used degraded data")

        # the same through the HTTP API; before the first plan there is nothing to explain
        status, answer = _http("GET", f"{base}/explain/signals/K101?at={drove_at}", token=TOKEN)
        assert status == 200 and answer["plan"]["plan_id"] == first["plan_id"]
        assert _http("GET", f"{base}/explain/signals/K101?at=1000", token=TOKEN)[0] == 404
        assert _http("GET", f"{base}/explain/signals/K101?at=yesterday", token=TOKEN)[0] == 400
        assert _http("GET", f"{base}/explain/signals/K101?at={drove_at}")[0] == 401
        line = one_clean_line(leitstand("explain", "signals", "K101", "--at", "1000", env=cli_env))
        assert "no logged plan" in line

        # the alarm: rule set, evidence, who acknowledged
        proc = leitstand("explain", "alarm", alarm_id, "--json", env=cli_env)
        assert proc.returncode == 0, proc.stderr
        story = json.loads(proc.stdout)
        assert story["decided_by"]["rule_set"] == "detection.pool_watch" and story["acknowledged_by"] == acked_by
        assert [t["transition"] for t in story["timeline"]][:2] == ["raised", "acknowledged"]
        assert [(p["action"], p["by"]) for p in story["people"]] == [("acknowledge", acked_by)] and acked_by
        status, answer = _http("GET", f"{base}/explain/alarms/{alarm_id}", token=TOKEN)
        assert status == 200 and answer["acknowledged_by"] == acked_by

        # the data-quality watch on /metrics: every detector value judged, the stuck ones counted
        _wait_metric(base, "leitstand_data_quality_readings_total", 45 * 6 * 2, 30, series_kind="intersection")
        _wait_metric(base, "leitstand_data_quality_issues_total", 1, 30, series_kind="intersection", reason="stuck")
        _wait_metric(base, "leitstand_data_quality_streams", 12, 30, series_kind="intersection")
        # a device clock two days ahead: the frame is dead-lettered (clock_skew) and still reaches
        # the watch, which is where an operator learns of that clock (one reader decodes it once)
        [ahead] = _frames(time.time() + 2 * 86400, range(1), iid="K999")
        asyncio.run(_send(s, "sensors.intersection", [ahead], "intersection_id"))
        _wait_metric(base, "leitstand_data_quality_issues_total", 1, 30, series_kind="intersection", reason="clock_skew")
        dead = _wait_for(s, "deadletter", lambda rs: any(r.get("reason_code") == "clock_skew" for r in rs), 30)
        assert [r["reason_code"] for r in dead if r.get("source_topic", "").endswith("sensors.intersection")].count("clock_skew") == 1
    finally:
        worker.stop()
