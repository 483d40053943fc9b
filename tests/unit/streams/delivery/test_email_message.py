"""The alarm e-mail (pure): what a phone shows, headers that cannot be injected, stable ids."""

from __future__ import annotations

from email import message_from_bytes, policy

from hypothesis import given
from hypothesis import strategies as st

from streams.delivery.email import message, subject_line
from streams.delivery.planning import plan_deliveries


def alert(**over: object) -> dict:
    base = {
        "alarm_id": "motionless_swimmer@P1~0123456789ab",
        "subject_id": "P1",
        "subject_type": "pool",
        "kind": "motionless_swimmer",
        "severity": "critical",
        "transition": "raised",
        "level": 0,
        "message": "Motionless swimmer, deep end, 11 s",
        "raised_at": "2026-11-27T10:00:00+00:00",
        "evidence": {"zone": "deep end", "duration_s": 11.0},
    }
    return {**base, **over}


def one_delivery(a: dict) -> tuple[str, dict]:
    [(did, d)] = plan_deliveries(a, [["mailto:aufsicht@bad-sued.example"]], 0.0).items()
    return did, d


def test_the_message_says_what_where_and_how_urgent() -> None:
    did, d = one_delivery(alert())
    msg = message(did, d, "leitstand@stadt.example", "aufsicht@bad-sued.example", 1_800_000_000.0)
    assert msg["Subject"] == "[CRITICAL] motionless_swimmer at P1 (raised, level 0)"
    assert msg["To"] == "aufsicht@bad-sued.example" and msg["From"] == "leitstand@stadt.example"
    assert msg["Message-ID"] == f"<{did}@leitstand.invalid>" and msg["X-Leitstand-Delivery"] == did
    assert msg["Importance"] == "high"
    body = msg.get_content()
    assert "Motionless swimmer, deep end" in body and "deep end" in body and did in body


def test_the_same_delivery_gives_the_same_message_id_on_every_retry() -> None:
    did, d = one_delivery(alert())
    first = message(did, d, "l@x.example", "a@x.example", 1.0)
    retry = message(did, {**d, "attempts": 4}, "l@x.example", "a@x.example", 500.0)
    assert first["Message-ID"] == retry["Message-ID"]


@given(st.text(max_size=80), st.text(max_size=40))
def test_no_alert_text_can_add_a_header(text: str, kind: str) -> None:
    a = alert(message=text, kind=kind)
    did, d = one_delivery(a)
    raw = message(did, d, "l@x.example", "a@x.example", 1.0).as_bytes()
    parsed = message_from_bytes(raw, policy=policy.default)
    assert parsed.get_all("Bcc") is None and len(parsed.get_all("To") or []) == 1
    assert "\n" not in subject_line(a, 0) and "\r" not in subject_line(a, 0)
