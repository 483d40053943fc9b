"""Explanations from logged messages (streams/transparency/explain.py), without a broker."""

from __future__ import annotations

from datetime import UTC, datetime

from streams.transparency.explain import alarm_source, alternatives, decision_at, explain_alarm, explain_signal


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, tz=UTC).isoformat()


def _plan(t: float, status: str, pid: str, decided: float | None = None) -> dict:
    return {
        "event_time": _iso(t),
        "time_s": decided if decided is not None else t,
        "intersection_id": "K1",
        "plan_id": pid,
        "status": status,
        "mode": "advisory",
        "controller": "maxpressure",
        "version": "1.0",
        "rule": "max_pressure_switch",
        "cyclic": False,
        "phases": [{"stage": "A", "green_s": 20.0}],
        "explanation": {"inputs": {"pressure.A": 12.0, "pressure.B": 3.0, "queue.B": 2.0}, "expected_effect": "drain A"},
    }


PLANS = [_plan(100, "fixed", "fix"), _plan(110, "pending", "p1"), _plan(130, "active", "p1", decided=110), _plan(140, "active", "p1", 110)]
AUDIT = [
    {"event_time": _iso(90), "intersection_id": "K1", "action": "mode_changed", "actor": "op-1", "detail": {"mode": "advisory"}},
    {"event_time": _iso(500), "intersection_id": "K1", "action": "plan_approved", "actor": "op-2", "detail": {"plan": "p1"}},
    {"event_time": _iso(95), "intersection_id": "K2", "action": "mode_changed", "actor": "x", "detail": {"mode": "fixed"}},
]


def _frame(t: float, count: int) -> dict:
    return {
        "event_time": _iso(t),
        "intersection_id": "K1",
        "interval_s": 5.0,
        "detectors": [{"detector_id": "d", "count": count, "occupancy": 0.2}],
    }


def test_the_plan_in_force_is_the_newest_driving_one_not_after_the_time() -> None:
    assert (decision_at(PLANS, "K1", 120) or {}).get("plan_id") == "fix"  # the proposal did not drive
    assert (decision_at(PLANS, "K1", 135) or {}).get("plan_id") == "p1"
    assert decision_at(PLANS, "K1", 50) is None and decision_at(PLANS, "K9", 135) is None


def test_alternatives_are_the_other_stages_inputs() -> None:
    assert alternatives(PLANS[2]) == [{"stage": "B", "inputs": {"pressure": 3.0, "queue": 2.0}}]


def test_explain_signal_names_controller_rule_approver_and_mode() -> None:
    frames = [_frame(100 + 5 * i, i % 3) for i in range(8)]
    out = explain_signal("K1", 135, PLANS, AUDIT, frames)
    assert out["found"] and out["decided_by"] == {"controller": "maxpressure", "version": "1.0", "rule": "max_pressure_switch"}
    assert out["decided_at_s"] == 110 and out["status"] == "active"
    assert out["approved_by"] == [{"action": "plan_approved", "actor": "op-2", "at": _iso(500)}]  # logged later, still its approval
    assert out["mode_set_by"] == {"actor": "op-1", "mode": "advisory", "at": _iso(90)}
    assert out["seen"]["last_frame"]["event_time"] == _iso(135)
    assert out["data_quality"] == {} and out["data_quality_note"].startswith("every detector input passed")


def test_a_plan_driven_under_a_mandate_names_the_operator_who_approved_the_mandate() -> None:
    """leitstand in advisory mode drives its own plans under an operator's mandate
    (``signals.advisory``): the explanation names that approval while it is in force, and not once
    it ran out or was taken back."""
    own = [_plan(100, "fixed", "fix"), _plan(200, "active", "own-1"), _plan(1200, "active", "own-2")]
    approval = {"plan": "request-1", "mandate_until_s": 1100.0}
    audit = [{"event_time": _iso(190), "intersection_id": "K1", "action": "plan_approved", "actor": "op-3", "detail": approval}]
    out = explain_signal("K1", 250, own, audit, None)
    assert out["approved_by"] == [{"action": "mandate_approved", "actor": "op-3", "at": _iso(190), "until_s": 1100.0}]
    assert explain_signal("K1", 1250, own, audit, None)["approved_by"] == [], "the mandate had run out"
    ended = [*audit, {"event_time": _iso(220), "intersection_id": "K1", "action": "mode_changed", "actor": "op-3",
                      "detail": {"mode": "advisory", "mandate_ended": True}}]  # fmt: skip
    assert explain_signal("K1", 250, own, ended, None)["approved_by"] == []


def test_a_decision_on_degraded_data_says_so() -> None:
    frames = [_frame(100 + 5 * i, 2) for i in range(40)]  # one count 40 times: stuck
    out = explain_signal("K1", 300, PLANS, AUDIT, frames)
    assert out["data_quality"]["intersection/K1/d/count_per_s"] == ["stuck"]
    assert out["data_quality_note"].startswith("this decision used degraded data")
    assert explain_signal("K1", 300, PLANS, AUDIT, None)["data_quality_note"].startswith("inputs not available")


def test_a_plan_the_street_did_not_show_is_said_so() -> None:
    """A complaint about what a signal showed is not answered by a plan the field controller did
    not follow (police control, a local program): the drive record's flag is passed on, and a
    record that does not say is reported as not recorded, not as followed."""
    ignored = [*PLANS[:3], {**PLANS[3], "not_following": True}]
    out = explain_signal("K1", 140, ignored, AUDIT, None)
    assert out["street_followed_plan"] is False and "did not show this plan" in out["street_note"]
    assert explain_signal("K1", 135, ignored, AUDIT, None)["street_followed_plan"] is None  # the record before: not said
    followed = [*PLANS[:3], {**PLANS[3], "not_following": False}]
    assert explain_signal("K1", 140, followed, AUDIT, None)["street_followed_plan"] is True


def test_nothing_logged_is_said_not_guessed() -> None:
    out = explain_signal("K1", 10, PLANS, AUDIT, [])
    assert out == {"found": False, "intersection_id": "K1", "at_s": 10, "reason": "no logged plan drove this signal at or before that time"}
    assert explain_alarm("a@P1~x", [], [])["found"] is False


def test_explain_alarm_tells_the_story() -> None:
    aid = "motionless_swimmer@P1~abc"
    base = {"alarm_id": aid, "kind": "motionless_swimmer", "subject_id": "P1", "subject_type": "pool", "severity": "critical"}
    alerts: list[dict] = [
        {
            **base,
            "event_time": _iso(10),
            "transition": "raised",
            "state": "raised",
            "level": 0,
            "message": "Motionless",
            "evidence": {"zone": "deep"},
        },
        {**base, "event_time": _iso(20), "transition": "acknowledged", "state": "acknowledged", "level": 0, "acknowledged_by": "lg-2"},
        {"alarm_id": "other", "event_time": _iso(15), "transition": "raised"},
    ]
    acks = [{"alert_id": aid, "event_time": _iso(19), "action": "acknowledge", "by": "lg-2"}]
    out = explain_alarm(aid, alerts, acks)
    assert out["decided_by"] == {"rule_set": "detection.pool_watch", "message": "Motionless"} and out["seen"] == {"zone": "deep"}
    assert [t["transition"] for t in out["timeline"]] == ["raised", "acknowledged"] and out["acknowledged_by"] == "lg-2"
    assert out["people"] == [{"action": "acknowledge", "by": "lg-2", "at": _iso(19), "note": None}]


def test_alarm_kinds_map_to_registered_rule_sets() -> None:
    from streams.transparency.registry import components

    for kind in ("water_ph", "motionless_swimmer", "overcrowding", "sensor_ph", "incident_N", "detector_fault_d1", "unknown"):
        assert alarm_source(kind) in components()


def test_no_frame_in_the_log_is_not_clean_data() -> None:
    """With no detector frame before the decision the explanation said "every detector input
    passed the data-quality watch": nothing was judged (stop 54's probe)."""
    out = explain_signal("K1", 135, PLANS, AUDIT, [])
    assert out["found"] and out["data_quality_note"].startswith("no detector frame of this intersection in the log")


def test_terminal_lines_show_control_characters_escaped() -> None:
    from streams.cli.explain import shown_text

    forged = "pH high\n2026-01-01 acknowledged by chief\x1b]0;owned\x07 \u202eevil"
    shown = shown_text(forged)
    assert "\n" not in shown and "\x1b" not in shown and "\u202e" not in shown
    assert "\\n" in shown and "\\x1b" in shown and "\\u202e" in shown and shown.startswith("pH high")


def test_a_record_without_a_readable_time_is_skipped_not_a_traceback() -> None:
    from streams.transparency.sources import _readable_time

    assert _readable_time({"event_time": _iso(100)})
    assert not any(_readable_time(v) for v in ({}, {"event_time": None}, {"event_time": "garbage"}, {"event_time": 1e400}))
