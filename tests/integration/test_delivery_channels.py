"""E-mail and MQTT delivery against real local servers: aiosmtpd requiring STARTTLS and AUTH
with a self-signed certificate, and Debian's mosquitto with a password file. No broker, no worker
(tests/integration/test_delivery_worker.py has those)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import aiomqtt
import pytest

from streams.delivery import email, mqtt
from streams.delivery.planning import plan_deliveries
from streams.settings import Settings
from streams.stack import free_port
from streams.webhooks import Attempt
from tests.services.mail_mqtt import PASSWORD, USER, Mosquitto, SmtpServer

pytestmark = [pytest.mark.integration]

ALERT = {
    "alarm_id": "motionless_swimmer@P1~0123456789ab",
    "subject_id": "P1",
    "subject_type": "pool",
    "kind": "motionless_swimmer",
    "severity": "critical",
    "transition": "raised",
    "level": 0,
    "message": "Motionless swimmer, deep end",
    "raised_at": "2026-11-27T10:00:00+00:00",
    "evidence": {"zone": "deep end"},
}
DUTY = "aufsicht@bad-sued.example"


def settings(**values: Any) -> Settings:
    return Settings(_env_file=None, **values)


def mail_to(server: SmtpServer, recipient: str = DUTY, **over: Any) -> tuple[Attempt, str]:
    s = settings(**{**server.settings(), **over})
    [(did, d)] = plan_deliveries(ALERT, [[f"mailto:{recipient}"]], 0.0).items()
    assert s.smtp_from is not None
    msg = email.message(did, d, s.smtp_from, recipient, 1_800_000_000.0)
    return asyncio.run(email.send(s, recipient, msg)), did


def test_mail_goes_out_over_starttls_with_login(tmp_path: Path) -> None:
    with SmtpServer(tmp_path) as server:
        attempt, did = mail_to(server)
    assert attempt.ok, attempt
    [mail] = server.inbox.mails
    assert mail["tls"] and mail["to"] == [DUTY]
    message = mail["message"]
    assert message["Subject"] == "[CRITICAL] motionless_swimmer at P1 (raised, level 0)"
    assert message["Message-ID"] == f"<{did}@leitstand.invalid>"
    assert "Motionless swimmer, deep end" in message.get_content()


def test_a_server_without_starttls_gets_nothing_in_the_clear(tmp_path: Path) -> None:
    with SmtpServer(tmp_path, starttls=False) as server:
        attempt, _ = mail_to(server)
    assert not attempt.ok and attempt.retry and "STARTTLS" in attempt.detail.upper(), attempt
    assert server.inbox.mails == []


def test_an_untrusted_certificate_is_refused_and_retried(tmp_path: Path) -> None:
    with SmtpServer(tmp_path) as server:
        attempt, _ = mail_to(server, smtp_ca_file=None)  # the system's CAs do not know it
    assert not attempt.ok and attempt.retry and "CERTIFICATE" in attempt.detail.upper(), attempt
    assert server.inbox.mails == []


def test_a_wrong_password_fails_for_good(tmp_path: Path) -> None:
    with SmtpServer(tmp_path) as server:
        attempt, _ = mail_to(server, smtp_password="wrong")
    assert not attempt.ok and not attempt.retry and attempt.detail.startswith("SMTP 535"), attempt
    assert server.inbox.mails == []


def test_a_refused_mailbox_fails_for_good(tmp_path: Path) -> None:
    with SmtpServer(tmp_path) as server:
        server.inbox.refuse.add(DUTY)
        attempt, _ = mail_to(server)
    assert not attempt.ok and not attempt.retry and "550" in attempt.detail, attempt


def test_no_server_is_a_retry(tmp_path: Path) -> None:
    s = settings(smtp_host="127.0.0.1", smtp_port=free_port(), smtp_from="l@x.example", smtp_timeout_s=5.0)
    [(did, d)] = plan_deliveries(ALERT, [[f"mailto:{DUTY}"]], 0.0).items()
    attempt = asyncio.run(email.send(s, DUTY, email.message(did, d, "l@x.example", DUTY, 1.0)))
    assert not attempt.ok and attempt.retry


# --- MQTT -------------------------------------------------------------------------------------


async def publish_and_receive(broker: Mosquitto, topic: str, payload: bytes, **over: Any) -> tuple[Attempt, list[bytes]]:
    """Subscribe first (QoS 1), publish through the delivery code, collect for a while."""
    s = settings(**{**broker.settings(), **over})
    got: list[bytes] = []
    async with aiomqtt.Client("127.0.0.1", broker.port, username=USER, password=PASSWORD) as sub:
        await sub.subscribe(topic, qos=1)
        attempt = await mqtt.publish(s, topic, payload)
        if attempt.ok:
            async with asyncio.timeout(30):
                async for message in sub.messages:
                    got.append(bytes(message.payload))
                    break
    return attempt, got


def test_mqtt_message_reaches_a_subscriber(tmp_path: Path) -> None:
    [(did, d)] = plan_deliveries(ALERT, [["mqtt:bad-sued/halle/sirene"]], 0.0).items()
    with Mosquitto(tmp_path) as broker:
        attempt, got = asyncio.run(publish_and_receive(broker, "bad-sued/halle/sirene", d["body"].encode()))
    assert attempt.ok, attempt
    [payload] = got
    body = json.loads(payload)
    assert body["delivery"] == did and body["alert"]["alarm_id"] == ALERT["alarm_id"]


def test_mqtt_wrong_password_is_a_failed_attempt(tmp_path: Path) -> None:
    with Mosquitto(tmp_path) as broker:
        s = settings(**{**broker.settings(), "mqtt_password": "wrong"})
        attempt = asyncio.run(mqtt.publish(s, "bad-sued/sirene", b"{}"))
    assert not attempt.ok and attempt.retry and "auth" in attempt.detail.lower(), attempt


def test_mqtt_broker_down_is_a_retry() -> None:
    s = settings(mqtt_host="127.0.0.1", mqtt_port=free_port(), mqtt_timeout_s=5.0)
    attempt = asyncio.run(mqtt.publish(s, "bad-sued/sirene", b"{}"))
    assert not attempt.ok and attempt.retry
