"""Delivery planning: ids, the outbox's memory of what was sent, retries, silences (pure)."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from streams import webhooks
from streams.delivery.planning import (
    DONE_KEEP_N,
    DONE_KEEP_S,
    due,
    finished,
    outbox_parts,
    outcome_of,
    plan_deliveries,
    prune_done,
    rescheduled,
    silence_active,
    silence_state,
    silenced_detail,
    with_planned,
)

LEVELS = [
    ["https://pager.example/hook?token=T0k", "mailto:aufsicht@bad-sued.example", "mqtt:bad-sued/sirene"],
    ["mailto:leitung@stadt.example"],
]


def alert(
    transition: str = "raised", level: int = 0, escalated_at: str | None = None, raised_at: str = "2026-11-27T10:00:00+00:00"
) -> dict:
    return {
        "alarm_id": "motionless_swimmer@P1~0123456789ab",
        "subject_id": "P1",
        "kind": "motionless_swimmer",
        "transition": transition,
        "level": level,
        "raised_at": raised_at,
        "escalated_at": escalated_at,
        "severity": "critical",
    }


def test_one_delivery_per_contact_of_the_level_each_with_its_channel() -> None:
    plan = plan_deliveries(alert(), LEVELS, now=5.0)
    assert sorted(d["channel"] for d in plan.values()) == ["email", "mqtt", "webhook"]
    for did, d in plan.items():
        assert json.loads(d["body"])["delivery"] == did
        assert d["attempts"] == 0 and d["next_at"] == 5.0 and d["subject_id"] == "P1"
    shown = repr(plan)
    assert "T0k" not in shown and "aufsicht" not in shown  # no credential, no mailbox in the outbox


def test_webhook_ids_are_those_the_webhook_planner_gave_before() -> None:
    """An outbox written before e-mail and MQTT existed keeps its ids: nothing is sent twice."""
    urls = [["https://pager.example/hook?token=T0k"]]
    # the webhook-only planner named each delivery webhooks.delivery_id(alert, level, url)
    assert set(plan_deliveries(alert(), urls, 0.0)) == {webhooks.delivery_id(alert(), 0, u) for u in urls[0]}


def test_escalation_goes_to_the_next_level_and_stays_at_the_last() -> None:
    e1 = plan_deliveries(alert("escalated", 1, "t1"), LEVELS, 0.0)
    e5 = plan_deliveries(alert("escalated", 5, "t2"), LEVELS, 0.0)
    assert [d["target"] for d in e1.values()] == ["mailto:*@stadt.example"] == [d["target"] for d in e5.values()]
    assert e1.keys() != e5.keys()


def test_other_transitions_and_no_contacts_plan_nothing() -> None:
    assert plan_deliveries(alert("acknowledged"), LEVELS, 0.0) == {}
    assert plan_deliveries(alert(), [], 0.0) == {}


def test_a_transition_read_again_after_its_delivery_is_not_planned_again() -> None:
    plan = plan_deliveries(alert(), LEVELS, 1.0)
    value, added = with_planned(None, plan)
    assert added.keys() == plan.keys()
    value = finished(value, plan, 2.0)
    assert outbox_parts(value)[0] == {}
    again, added = with_planned(value, plan_deliveries(alert(), LEVELS, 99.0))
    assert added == {} and outbox_parts(again)[0] == {}
    # ... and a pending one is not duplicated or reset either
    value, _ = with_planned(None, plan)
    did = next(iter(plan))
    value = rescheduled(value, did, 3, "HTTP 503", 10.0, 1.0)
    again, added = with_planned(value, plan)
    assert added == {} and outbox_parts(again)[0][did]["attempts"] == 3


def test_the_format_before_is_read_as_pending() -> None:
    old = {"abc": {"next_at": 1.0, "attempts": 0}}
    assert outbox_parts(old) == (old, {})
    assert outbox_parts(None) == ({}, {})


def test_retry_then_give_up() -> None:
    assert outcome_of(True, True, 1, 3) == "delivered"
    assert outcome_of(False, True, 1, 3) == "retry"
    assert outcome_of(False, True, 3, 3) == "failed"
    assert outcome_of(False, False, 1, 3) == "failed"


def test_rescheduled_backs_off_and_due_skips_what_is_in_flight() -> None:
    plan = plan_deliveries(alert(), LEVELS, 0.0)
    value, _ = with_planned(None, plan)
    a, b, c = plan
    value = rescheduled(value, a, 2, "SMTP 451", now=10.0, backoff_base_s=1.0)
    pending, _ = outbox_parts(value)
    assert pending[a]["next_at"] == 12.0 and pending[a]["last_error"] == "SMTP 451"
    assert sorted(due(pending, now=11.0, in_flight=[b])) == [c]
    assert sorted(due(pending, now=12.0)) == sorted([a, b, c])


def test_silence_holds_from_start_up_to_but_not_including_its_end() -> None:
    s = silence_state("S1", 100.0, 200.0, "Grundreinigung", "aufsicht.mueller")
    assert not silence_active(s, 99.9)
    assert silence_active(s, 100.0) and silence_active(s, 199.99)
    assert not silence_active(s, 200.0)
    assert not silence_active(None, 150.0)
    assert not silence_active(silence_state("S2", 200.0, 100.0, "aufgehoben", "x"), 150.0)  # lifted early
    detail = silenced_detail(s)
    assert "S1" in detail and "Grundreinigung" in detail and "1970-01-01T00:03:20+00:00" in detail


@given(st.floats(-1e9, 1e9), st.floats(0, 1e6), st.floats(-1e9, 1e9))
def test_silence_active_is_membership_of_the_half_open_interval(start: float, length: float, now: float) -> None:
    s = silence_state("S", start, start + length, "r", "b")
    assert silence_active(s, now) == (start <= now < start + length)


@given(st.dictionaries(st.text(min_size=1, max_size=8), st.floats(0, 2 * DONE_KEEP_S), max_size=60), st.integers(1, 20))
def test_prune_keeps_the_newest_young_ids(done: dict[str, float], keep_n: int) -> None:
    now = 2 * DONE_KEEP_S
    kept = prune_done(done, now, keep_n=keep_n)
    young = {d: t for d, t in done.items() if now - t < DONE_KEEP_S}
    assert set(kept) <= set(young) and len(kept) == min(keep_n, len(young))
    if kept:
        assert min(kept.values()) >= max((t for d, t in young.items() if d not in kept), default=-1.0)


# a run of the notifier: transitions (some read twice), attempts succeeding or failing
_STEP = st.one_of(
    st.tuples(st.just("plan"), st.integers(0, 3)),  # the n-th raise (read again when repeated)
    st.tuples(st.just("attempt"), st.booleans()),  # the oldest due delivery: ok or not
)


@given(st.lists(_STEP, max_size=40), st.integers(1, 4))
def test_no_delivery_is_sent_again_once_it_finished(steps: list[tuple[str, object]], max_attempts: int) -> None:
    """Whatever the order of redelivered transitions and attempts: an id reaching a final
    outcome is never sent again, and every planned id is pending until it finishes."""
    value: dict | None = None
    finished_ids: set[str] = set()
    sent: list[str] = []
    now = 0.0
    for op, arg in steps:
        now += 1.0
        if op == "plan":
            plan = plan_deliveries(alert(raised_at=f"t{arg}"), LEVELS, now)
            value, _ = with_planned(value, plan)
            assert all(did in outbox_parts(value)[0] or did in finished_ids for did in plan)
            continue
        pending, _ = outbox_parts(value)
        ready = due(pending, now + 1e6)
        if not ready:
            continue
        did = ready[0]
        assert did not in finished_ids
        sent.append(did)
        attempts = pending[did]["attempts"] + 1
        outcome = outcome_of(bool(arg), True, attempts, max_attempts)
        if outcome == "retry":
            value = rescheduled(value, did, attempts, "down", now, 1.0)
        else:
            value = finished(value, [did], now)
            finished_ids.add(did)
    pending, done = outbox_parts(value)
    assert finished_ids <= set(done) and not (finished_ids & set(pending))
    assert len(done) <= DONE_KEEP_N
