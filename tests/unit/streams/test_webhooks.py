"""Webhook planning, Standard Webhooks signing, target policy and backoff (network: tests/integration)."""

from __future__ import annotations

import asyncio
import json

import pytest

from streams.delivery.planning import plan_deliveries  # the notifier's planner (every channel)
from streams.webhooks import (
    GuardedResolver,
    TargetRefused,
    address_refusal,
    backoff_s,
    check_url,
    origin,
    signature,
    signed_headers,
    target_id,
    verification_error,
    verify,
)
from tests.paths import REPO

LEVELS = [["https://duty-a.example/hook?token=SECRET", "https://duty-b.example"], ["https://manager.example"]]


def alert(transition: str = "raised", level: int = 0, escalated_at: str | None = None) -> dict:
    return {
        "alarm_id": "motionless_swimmer@P1~0123456789ab",
        "transition": transition,
        "level": level,
        "raised_at": "2026-11-27T10:00:00+00:00",
        "escalated_at": escalated_at,
        "severity": "critical",
    }


def test_raised_goes_to_every_url_of_its_level_with_deterministic_ids() -> None:
    plan = plan_deliveries(alert(), LEVELS, now=5.0)
    assert sorted(d["target_id"] for d in plan.values()) == sorted(target_id(u) for u in LEVELS[0])
    assert plan.keys() == plan_deliveries(alert(), LEVELS, now=99.0).keys()
    for did, d in plan.items():
        body = json.loads(d["body"])
        assert body["delivery"] == did and body["alert"]["alarm_id"] == alert()["alarm_id"]
        assert d["attempts"] == 0 and d["next_at"] == 5.0


def test_the_plan_never_holds_a_url_only_its_origin() -> None:
    """The outbox is changelogged to Kafka: a token in a webhook URL must not get there."""
    plan = plan_deliveries(alert(), LEVELS, now=5.0)
    assert "SECRET" not in repr(plan) and "/hook" not in repr(plan)
    assert {d["target"] for d in plan.values()} == {"https://duty-a.example", "https://duty-b.example"}


def test_escalations_go_up_and_stay_at_the_last_level() -> None:
    e1 = plan_deliveries(alert("escalated", 1, "t1"), LEVELS, 0.0)
    e2 = plan_deliveries(alert("escalated", 5, "t2"), LEVELS, 0.0)
    assert [d["target"] for d in e1.values()] == ["https://manager.example"] == [d["target"] for d in e2.values()]
    assert e1.keys() != e2.keys()  # a repeated escalation is a new delivery


def test_other_transitions_and_no_contacts_deliver_nothing() -> None:
    assert plan_deliveries(alert("acknowledged"), LEVELS, 0.0) == {}
    assert plan_deliveries(alert(), [], 0.0) == {}


def test_signature_matches_the_standard_webhooks_reference_vector() -> None:
    """The example of the Standard Webhooks libraries: receivers can use them unchanged."""
    sig = signature("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, b'{"test": 2432232314}')
    assert sig == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_verify_round_trip_and_tamper() -> None:
    body = b'{"a":1}'
    headers = signed_headers(b"key", "d1", 1_000_000, body)
    assert verify(b"key", headers, body, now=1_000_010)
    assert verify("key", {k.upper(): v for k, v in headers.items()}, body, now=1_000_010)  # header case
    assert not verify(b"key", headers, b'{"a":2}', now=1_000_010)
    assert not verify(b"other", headers, body, now=1_000_010)
    assert not verify(b"key", {**headers, "webhook-id": "d2"}, body, now=1_000_010)
    assert not verify(b"key", {"webhook-id": "d1"}, body, now=1_000_010)


def test_replay_with_an_altered_timestamp_fails() -> None:
    """The defect: the MAC covered only the body, so a captured delivery verified with any timestamp."""
    body = b'{"alert": 1}'
    captured = signed_headers(b"key", "d1", 1_000_000, body)
    replayed = {**captured, "webhook-timestamp": str(2_000_000)}
    assert not verify(b"key", replayed, body, now=2_000_000)
    assert "no matching signature" == verification_error(b"key", replayed, body, now=2_000_000)


def test_tolerance_window() -> None:
    body = b"{}"
    headers = signed_headers(b"key", "d1", 1_000_000, body)
    assert verify(b"key", headers, body, now=1_000_300) and verify(b"key", headers, body, now=999_700)
    assert not verify(b"key", headers, body, now=1_000_301)  # a replay of an old delivery
    assert not verify(b"key", headers, body, now=999_699)  # from the future
    assert verify(b"key", headers, body, now=1_000_500, tolerance_s=600)


def test_several_signatures_in_one_header_for_key_rotation() -> None:
    body = b"{}"
    old = signed_headers(b"old", "d1", 10, body)["webhook-signature"]
    new = signed_headers(b"new", "d1", 10, body)
    both = {**new, "webhook-signature": f"{old} {new['webhook-signature']}"}
    assert verify(b"old", both, body, now=10) and verify(b"new", both, body, now=10)


@pytest.mark.parametrize(
    "url",
    [
        "http://pager.example/duty",
        "file:///etc/passwd",
        "ftp://pager.example/x",
        "gopher://x",
        "https://169.254.169.254/latest/meta-data",
        "https://[::ffff:169.254.169.254]/",
        "https://[fe80::1]/",
        "https://127.0.0.1/x",
        "https://10.0.0.1/x",
        "https://[::1]/",
        "https://0.0.0.0/",
        "https://localhost/x",
        "https://metadata.google.internal/computeMetadata/v1/",
        "https:///nohost",
    ],
)
def test_targets_refused_without_an_allowance(url: str) -> None:
    with pytest.raises(TargetRefused):
        check_url(url)


@pytest.mark.parametrize(
    "url", ["https://169.254.169.254/latest", "http://169.254.169.254/", "https://[fe80::1]/", "https://metadata.google.internal/"]
)
def test_metadata_and_link_local_refused_even_when_allowed(url: str) -> None:
    with pytest.raises(TargetRefused):
        check_url(url, ["169.254.169.254", "fe80::1", "metadata.google.internal"])


def test_allowed_hosts_may_use_http_and_internal_addresses() -> None:
    check_url("https://pager.example/duty")
    check_url("http://127.0.0.1:8080/duty", ["127.0.0.1"])
    check_url("http://pager.internal/duty", ["PAGER.internal"])
    check_url("https://[::1]:8443/", ["::1"])
    with pytest.raises(TargetRefused):
        check_url("http://127.0.0.2/duty", ["127.0.0.1"])


def test_address_policy() -> None:
    assert address_refusal("93.184.216.34", allowed=False) is None
    assert address_refusal("192.168.1.5", allowed=False) and address_refusal("192.168.1.5", allowed=True) is None
    assert address_refusal("100.100.100.200", allowed=True)  # Alibaba metadata
    assert address_refusal("fd00:ec2::254", allowed=True)  # AWS IPv6 metadata
    assert address_refusal("::ffff:127.0.0.1", allowed=False)


def test_resolver_checks_the_addresses_a_name_resolves_to() -> None:
    """'localhost' is a name, so only DNS shows it points at loopback (the rebinding case)."""

    async def resolve(allowed: list[str]) -> list:
        r = GuardedResolver(allowed)
        try:
            return await r.resolve("localhost", 443)
        finally:
            await r.close()

    with pytest.raises(TargetRefused, match="loopback"):
        asyncio.run(resolve([]))
    assert asyncio.run(resolve(["localhost"]))


def test_origin_drops_userinfo_path_and_query() -> None:
    assert origin("https://user:pw@pager.example:8443/x/SECRET?token=S#f") == "https://pager.example:8443"
    assert origin("http://[::1]:80/") == "http://[::1]:80"


def test_backoff_doubles_and_is_capped() -> None:
    assert [backoff_s(n, 1.0) for n in (1, 2, 3, 4)] == [1.0, 2.0, 4.0, 8.0]
    assert backoff_s(30, 1.0) == 300.0


def test_the_stdlib_recipe_in_docs_security_verifies_our_deliveries() -> None:
    """The receiver recipe integrators copy must agree with what the notifier sends."""
    import re
    import time

    doc = (REPO / "docs" / "security.md").read_text()
    recipe = next(b for b in re.findall(r"```python\n(.*?)```", doc, re.S) if "import base64" in b)
    scope: dict = {}
    exec(recipe, scope)  # our own documentation
    now = int(time.time())
    headers = signed_headers(b"key", "d1", now, b'{"a":1}')
    assert scope["authentic"](b"key", headers, b'{"a":1}')
    assert not scope["authentic"](b"key", {**headers, "webhook-timestamp": str(now + 1)}, b'{"a":1}')
    assert not scope["authentic"](b"key", signed_headers(b"key", "d1", now - 301, b"{}"), b"{}")
