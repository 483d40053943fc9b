"""The console's view of the topics (streams/console/state.py) and the checks before a command."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st

from streams.console.state import ConsoleState
from streams.topics import ALERTS, ALERTS_DELIVERIES, ALERTS_SILENCES, SIGNALS_AUDIT, SIGNALS_PLANS

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=timezone.utc)


def alarm(aid: str, state: str, severity: str = "critical", raised: str = "2026-06-01T11:00:00+00:00", **kw: object) -> dict:
    return {"alarm_id": aid, "state": state, "severity": severity, "raised_at": raised, "transition": state, **kw}


def plan(pid: str, status: str, time_s: float, iid: str = "K1", session: str = "s1", mode: str = "advisory", **kw: object) -> dict:
    return {"intersection_id": iid, "plan_id": pid, "status": status, "time_s": time_s, "session": session, "mode": mode, **kw}


def test_alarms_open_acknowledged_resolved() -> None:
    s = ConsoleState()
    s.apply(ALERTS, alarm("m@P1~000000000001", "raised", "major", "2026-06-01T10:00:00+00:00"))
    s.apply(ALERTS, alarm("c@P1~000000000002", "raised", "critical"))
    assert [a["alarm_id"] for a in s.unacknowledged()] == ["c@P1~000000000002", "m@P1~000000000001"]  # critical first
    assert s.critical_unacknowledged() == 1
    s.apply(ALERTS, alarm("c@P1~000000000002", "acknowledged", acknowledged_by="sup"))
    assert s.critical_unacknowledged() == 0 and [a["acknowledged_by"] for a in s.acknowledged()] == ["sup"]
    assert s.alarm_check("c@P1~000000000002", "acknowledge").status == 409  # type: ignore[union-attr]
    assert s.alarm_check("c@P1~000000000002", "resolve") is None
    s.apply(ALERTS, alarm("c@P1~000000000002", "resolved"))
    assert s.alarm_check("c@P1~000000000002", "resolve").status == 409  # type: ignore[union-attr]
    assert s.alarm_check("x@P9~000000000009", "acknowledge").status == 404  # type: ignore[union-attr]
    # a late record of a resolved alarm does not reopen it
    s.apply(ALERTS, alarm("c@P1~000000000002", "raised"))
    assert "c@P1~000000000002" not in s.alarms


def test_who_was_notified_keeps_the_newest_attempt_per_target() -> None:
    s = ConsoleState()
    aid = "c@P1~000000000002"
    for attempt, outcome in [(1, "retry"), (2, "delivered")]:
        s.apply(
            ALERTS_DELIVERIES,
            {"alarm_id": aid, "level": 0, "target": "https://duty", "target_id": "t1", "attempt": attempt, "outcome": outcome},
        )
    s.apply(
        ALERTS_DELIVERIES, {"alarm_id": aid, "level": 1, "target": "https://boss", "target_id": "t2", "attempt": 1, "outcome": "failed"}
    )
    assert [(d["level"], d["outcome"]) for d in s.notified(aid)] == [(0, "delivered"), (1, "failed")]


def test_silences_active_only_within_their_window() -> None:
    s = ConsoleState()
    start, end = NOW, NOW + timedelta(hours=1)
    s.apply(
        ALERTS_SILENCES, {"subject_id": "P1", "starts_at": start.isoformat(), "ends_at": end.isoformat(), "reason": "cleaning", "by": "sup"}
    )
    assert s.active_silence("P1", NOW.timestamp() + 10) is not None
    assert s.active_silence("P1", end.timestamp()) is None and s.active_silence("P2", NOW.timestamp()) is None
    # lifted: same subject, ends_at == starts_at
    s.apply(
        ALERTS_SILENCES, {"subject_id": "P1", "starts_at": start.isoformat(), "ends_at": start.isoformat(), "reason": "done", "by": "sup"}
    )
    assert s.active_silences(NOW.timestamp() + 10) == []


def test_proposals_and_their_checks() -> None:
    s = ConsoleState()
    s.apply(SIGNALS_PLANS, plan("fixed", "fixed", 100.0))
    s.apply(SIGNALS_PLANS, plan("K1@1~a", "pending", 100.0, expires_at_s=160.0))
    s.apply(SIGNALS_PLANS, plan("fixed", "fixed", 130.0))
    [(iid, p)] = s.proposals()
    assert iid == "K1" and p["seconds_left"] == 30.0
    assert s.plan_check("K1", "K1@1~a") is None
    assert s.plan_check("K9", "K1@1~a").status == 404  # type: ignore[union-attr]
    assert s.plan_check("K1", "K1@1~zzz").status == 404  # type: ignore[union-attr]
    s.apply(SIGNALS_PLANS, plan("K1@1~a", "expired", 170.0))
    why = s.plan_check("K1", "K1@1~a")
    assert why is not None and why.status == 409 and "expired" in why.message
    s.apply(SIGNALS_PLANS, plan("K1@1~b", "pending", 200.0, expires_at_s=260.0, mode="automatic"))
    assert s.plan_check("K1", "K1@1~b").status == 409  # type: ignore[union-attr]  # not advisory
    # a new session drops the old proposals
    s.apply(SIGNALS_PLANS, plan("fixed", "fixed", 0.0, session="s2"))
    assert s.proposals() == []


def test_last_decisions_newest_first_and_only_decisions() -> None:
    s = ConsoleState()
    assert not s.apply(SIGNALS_AUDIT, {"action": "plan_proposed", "actor": "webster"})
    s.apply(SIGNALS_AUDIT, {"action": "plan_approved", "actor": "op1"})
    s.apply(SIGNALS_AUDIT, {"action": "plan_expired", "actor": "timer"})
    assert [d["actor"] for d in s.decisions] == ["timer", "op1"]


junk = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=12), c, max_size=4),
    max_leaves=8,
)


@given(st.lists(st.tuples(st.sampled_from([ALERTS, ALERTS_DELIVERIES, ALERTS_SILENCES, SIGNALS_PLANS, SIGNALS_AUDIT]), junk), max_size=30))
def test_any_record_is_folded_or_ignored_never_raises(records: list[tuple[str, object]]) -> None:
    """The topics are written by others: a record of the wrong shape must not stop the console."""
    s = ConsoleState()
    for topic, record in records:
        s.apply(topic, record)
    s.open_alarms()
    s.proposals()
    s.active_silences(NOW.timestamp())
