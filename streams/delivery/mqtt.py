"""One MQTT publish of an alarm (aiomqtt): for on-site displays and sirens.

Each attempt connects, publishes with QoS 1 (or 2) and waits for the broker's acknowledgement
(PUBACK / PUBCOMP), then disconnects. The payload is the JSON the webhooks carry
(``{"delivery": id, "level": n, "alert": {...}}``); a display de-duplicates on ``delivery``,
which is the same for every retry. Messages are not retained: a siren that connects later must
not sound for an alarm that may be over; the console and the alerts API hold the current state.
"""

from __future__ import annotations

import ssl

import aiomqtt

from ..settings import Settings
from ..webhooks import Attempt

MAX_DETAIL = 300


def tls_context(settings: Settings) -> ssl.SSLContext | None:
    """TLS with the broker's certificate verified (system CAs or the operator's CA file), or None."""
    if not settings.mqtt_tls:
        return None
    return ssl.create_default_context(cafile=str(settings.mqtt_ca_file) if settings.mqtt_ca_file else None)


async def publish(settings: Settings, topic: str, payload: bytes) -> Attempt:
    """One attempt: delivered once the broker acknowledged the message; every failure retried."""
    if not settings.mqtt_host:
        return Attempt(False, "MQTT contact but LEITSTAND_MQTT_HOST not set", retry=False)
    try:
        async with aiomqtt.Client(
            settings.mqtt_host,
            settings.mqtt_port,
            username=settings.mqtt_username,
            password=settings.mqtt_password.get_secret_value() if settings.mqtt_password else None,
            tls_context=tls_context(settings),
            timeout=settings.mqtt_timeout_s,
        ) as client:
            await client.publish(topic, payload, qos=settings.mqtt_qos, retain=False, timeout=settings.mqtt_timeout_s)
    except Exception as exc:  # broker down, refused login, timeout: retried, never a crash
        return Attempt(False, f"{type(exc).__name__}: {exc}"[:MAX_DETAIL])
    return Attempt(True, f"MQTT acknowledged by {settings.mqtt_host}:{settings.mqtt_port} (QoS {settings.mqtt_qos})")
