"""Webhook planning, signing and backoff (the network part is in the integration test)."""

from __future__ import annotations

import json

from streams.webhooks import backoff_s, plan_deliveries, signature, verify

LEVELS = [["http://duty-a", "http://duty-b"], ["http://manager"]]


def alert(transition: str = "raised", level: int = 0, escalated_at: str | None = None) -> dict:
    return {"alarm_id": "motionless_swimmer@P1~0123456789ab", "transition": transition, "level": level,
            "raised_at": "2026-11-27T10:00:00+00:00", "escalated_at": escalated_at, "severity": "critical"}


def test_raised_goes_to_every_url_of_its_level_with_deterministic_ids() -> None:
    plan = plan_deliveries(alert(), LEVELS, now=5.0)
    assert sorted(d["url"] for d in plan.values()) == ["http://duty-a", "http://duty-b"]
    assert plan.keys() == plan_deliveries(alert(), LEVELS, now=99.0).keys()
    for did, d in plan.items():
        body = json.loads(d["body"])
        assert body["delivery"] == did and body["alert"]["alarm_id"] == alert()["alarm_id"]
        assert d["attempts"] == 0 and d["next_at"] == 5.0


def test_escalations_go_up_and_stay_at_the_last_level() -> None:
    e1 = plan_deliveries(alert("escalated", 1, "t1"), LEVELS, 0.0)
    e2 = plan_deliveries(alert("escalated", 5, "t2"), LEVELS, 0.0)
    assert [d["url"] for d in e1.values()] == ["http://manager"] == [d["url"] for d in e2.values()]
    assert e1.keys() != e2.keys()  # a repeated escalation is a new delivery


def test_other_transitions_and_no_contacts_deliver_nothing() -> None:
    assert plan_deliveries(alert("acknowledged"), LEVELS, 0.0) == {}
    assert plan_deliveries(alert(), [], 0.0) == {}


def test_signature_round_trip_and_tamper() -> None:
    body = b'{"a":1}'
    sig = signature(b"key", body)
    assert sig.startswith("sha256=") and verify(b"key", body, sig)
    assert not verify(b"key", b'{"a":2}', sig) and not verify(b"other", body, sig)


def test_backoff_doubles_and_is_capped() -> None:
    assert [backoff_s(n, 1.0) for n in (1, 2, 3, 4)] == [1.0, 2.0, 4.0, 8.0]
    assert backoff_s(30, 1.0) == 300.0
