"""Alarm e-mail: the message of one delivery (pure) and one SMTP attempt (aiosmtplib).

Every attempt opens its own connection, upgrades it with STARTTLS (required: a server that does
not offer it is a failed attempt, never a plain-text fallback; or implicit TLS with
``LEITSTAND_SMTP_TLS=tls``), verifies the server's certificate against the system's CAs or
``LEITSTAND_SMTP_CA_FILE``, logs in when a user is set, sends, and quits. Alarms are rare; a
connection left open would only go stale between them.

The ``Message-ID`` is made of the delivery id, the same for every retry, so a mail system or a
reader that has it already can drop a repeat.
"""

from __future__ import annotations

import ssl
from email.message import EmailMessage
from email.utils import formatdate
from typing import Any

import aiosmtplib
import orjson

from ..settings import Settings
from ..webhooks import Attempt

MAX_DETAIL = 300


def _one_line(text: Any) -> str:
    """A header-safe rendering: control characters (CR, LF) cannot start a new header."""
    return "".join(c if c.isprintable() else " " for c in str(text))


def subject_line(alert: dict[str, Any], level: int) -> str:
    """``[CRITICAL] motionless_swimmer at P1 (raised, level 0)``: what a phone shows first."""
    severity = str(alert.get("severity") or "alarm").upper()
    return _one_line(f"[{severity}] {alert.get('kind')} at {alert.get('subject_id')} ({alert.get('transition')}, level {level})")[:200]


def text_body(delivery_id: str, alert: dict[str, Any], level: int) -> str:
    """The readable part: what happened, where, since when, and how to acknowledge."""
    lines = [
        str(alert.get("message") or ""),
        "",
        f"Alarm:      {alert.get('alarm_id')}",
        f"Subject:    {alert.get('subject_type')} {alert.get('subject_id')}",
        f"Severity:   {alert.get('severity')}",
        f"Transition: {alert.get('transition')} (contact level {level})",
        f"Raised at:  {alert.get('raised_at')}",
    ]
    if alert.get("escalated_at"):
        lines.append(f"Escalated:  {alert.get('escalated_at')}")
    lines += [
        f"Delivery:   {delivery_id}",
        "",
        "Acknowledge it in the Leitstand console or with POST /alerts/<alarm id>/ack.",
        "",
        "Evidence:",
        orjson.dumps(alert.get("evidence") or {}, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS).decode(),
    ]
    return "\n".join(lines) + "\n"


def message(delivery_id: str, delivery: dict[str, Any], sender: str, recipient: str, now: float) -> EmailMessage:
    """The e-mail of one planned delivery (its ``body`` is the JSON the webhooks carry)."""
    payload = orjson.loads(delivery["body"])
    alert, level = payload["alert"], int(payload.get("level") or 0)
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = recipient
    msg["Subject"] = subject_line(alert, level)
    msg["Date"] = formatdate(now, usegmt=True)
    msg["Message-ID"] = f"<{delivery_id}@leitstand.invalid>"
    msg["X-Leitstand-Delivery"] = delivery_id
    msg["X-Leitstand-Alarm"] = _one_line(alert.get("alarm_id"))
    if str(alert.get("severity")) == "critical":
        msg["Importance"] = "high"
        msg["X-Priority"] = "1"
    msg.set_content(text_body(delivery_id, alert, level))
    return msg


def tls_context(settings: Settings) -> ssl.SSLContext:
    """Certificate and host name verified: the system's CAs, or the operator's CA file."""
    return ssl.create_default_context(cafile=str(settings.smtp_ca_file) if settings.smtp_ca_file else None)


async def send(settings: Settings, recipient: str, msg: EmailMessage) -> Attempt:
    """One attempt. A 5xx answer (refused recipient, failed login) is not retried; a 4xx
    answer, a timeout, a refused connection or a failed TLS handshake is."""
    if not settings.smtp_host or not settings.smtp_from:
        return Attempt(False, "e-mail contact but LEITSTAND_SMTP_HOST / LEITSTAND_SMTP_FROM not set", retry=False)
    implicit = settings.smtp_tls == "tls"
    try:
        await aiosmtplib.send(
            msg,
            sender=settings.smtp_from,
            recipients=[recipient],
            hostname=settings.smtp_host,
            port=settings.smtp_port,
            username=settings.smtp_username,
            password=settings.smtp_password.get_secret_value() if settings.smtp_password else None,
            use_tls=implicit,
            start_tls=not implicit,
            tls_context=tls_context(settings),
            timeout=settings.smtp_timeout_s,
        )
    except aiosmtplib.SMTPRecipientsRefused as exc:
        codes = [r.code for r in exc.recipients]
        return Attempt(
            False,
            f"SMTP recipient refused: {'; '.join(f'{r.code} {r.message}' for r in exc.recipients)}"[:MAX_DETAIL],
            retry=any(c < 500 for c in codes),
        )
    except aiosmtplib.SMTPResponseException as exc:
        return Attempt(False, f"SMTP {exc.code}: {exc.message}"[:MAX_DETAIL], retry=exc.code < 500)
    except Exception as exc:  # a server that is down, slow or not TLS-capable: retried, never a crash
        return Attempt(False, f"{type(exc).__name__}: {exc}"[:MAX_DETAIL])
    return Attempt(True, f"SMTP accepted by {settings.smtp_host}")
