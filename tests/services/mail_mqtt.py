"""Real SMTP and MQTT servers on loopback for the delivery tests.

* ``SmtpServer``: aiosmtpd in its own thread with a self-signed certificate made by ``openssl``
  for 127.0.0.1; STARTTLS required before anything else, AUTH (LOGIN/PLAIN) required and only
  over TLS, so a client that does not upgrade cannot deliver. Received mails in ``inbox``.
* ``Mosquitto``: Debian's ``mosquitto`` with a generated config (loopback, a free port, a
  password file, no anonymous clients). Without the binary the test is skipped, unless
  ``CI=true`` (then it fails: CI must not go green by skipping the real thing).
"""

from __future__ import annotations

import os
import shutil
import socket
import ssl
import subprocess
import time
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from streams.stack import free_port

MOSQUITTO_BIN = os.environ.get("MOSQUITTO_BIN", "/usr/sbin/mosquitto")
USER, PASSWORD = "leitstand", "Mail-Pass-0815"


def self_signed_cert(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 (and localhost) with its key: it is its own CA."""
    cert, key = directory / "server.crt", directory / "server.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2"]
        + ["-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
        check=True,
        capture_output=True,
    )
    return cert, key


class Inbox:
    """The aiosmtpd handler: keeps every accepted mail; refuses the addresses in ``refuse``."""

    def __init__(self) -> None:
        self.mails: list[dict[str, Any]] = []
        self.refuse: set[str] = set()

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]) -> str:
        if address in self.refuse:
            return "550 5.1.1 no such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = message_from_bytes(envelope.content, policy=policy.default)
        assert isinstance(message, EmailMessage)
        self.mails.append({"to": list(envelope.rcpt_tos), "tls": session.ssl is not None, "message": message})
        return "250 2.0.0 accepted"

    def to(self, address: str) -> list[EmailMessage]:
        return [m["message"] for m in self.mails if address in m["to"]]


def _authenticate(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
    ok = isinstance(auth_data, LoginPassword) and auth_data.login == USER.encode() and auth_data.password == PASSWORD.encode()
    return AuthResult(success=ok, handled=False)


class SmtpServer:
    """An SMTP submission server that requires STARTTLS and AUTH (``starttls=False``: a plain
    server that offers no TLS at all, to show the client refuses to send in the clear)."""

    def __init__(self, directory: Path, starttls: bool = True) -> None:
        self.cert, key = self_signed_cert(directory)
        self.inbox = Inbox()
        self.port = free_port()
        kwargs: dict[str, Any] = {}
        if starttls:
            ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            ctx.load_cert_chain(self.cert, key)
            kwargs = dict(tls_context=ctx, require_starttls=True, authenticator=_authenticate, auth_required=True, auth_require_tls=True)
        self.controller = Controller(self.inbox, hostname="127.0.0.1", port=self.port, **kwargs)

    def __enter__(self) -> SmtpServer:
        self.controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.controller.stop()

    def settings(self) -> dict[str, Any]:
        """The LEITSTAND_SMTP_* values that reach this server."""
        return {
            "smtp_host": "127.0.0.1",
            "smtp_port": self.port,
            "smtp_username": USER,
            "smtp_password": PASSWORD,
            "smtp_from": "leitstand@stadt.example",
            "smtp_ca_file": self.cert,
            "smtp_timeout_s": 10.0,
        }


def wait_for(predicate: Any, timeout_s: float, what: str) -> None:
    """Poll ``predicate`` until true; fail naming ``what`` after ``timeout_s`` (generous on a loaded machine)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout_s:g} s waiting for {what}")


class Mosquitto:
    """Debian's mosquitto on 127.0.0.1:<free port>, user ``USER`` / ``PASSWORD`` only."""

    def __init__(self, directory: Path) -> None:
        if shutil.which(MOSQUITTO_BIN) is None:
            if os.environ.get("CI", "").lower() == "true":
                pytest.fail(f"mosquitto not installed at {MOSQUITTO_BIN} (CI=true: the MQTT tests must run)")
            pytest.skip(f"mosquitto not installed at {MOSQUITTO_BIN} (Debian package 'mosquitto')")
        self.port = free_port()
        self.log_file = directory / "mosquitto.log"
        passwords = directory / "passwords"
        passwords.write_text("")
        subprocess.run(["mosquitto_passwd", "-b", str(passwords), USER, PASSWORD], check=True, capture_output=True)
        self.config = directory / "mosquitto.conf"
        self.config.write_text(
            f"listener {self.port} 127.0.0.1\nallow_anonymous false\npassword_file {passwords}\n"
            f"persistence false\nuser root\nlog_dest file {self.log_file}\n"
        )
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Mosquitto:
        self.proc = subprocess.Popen([MOSQUITTO_BIN, "-c", str(self.config)], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"mosquitto exited with {self.proc.returncode}: {self.log_tail()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return self
            except OSError:
                time.sleep(0.1)
        self.__exit__()
        raise RuntimeError(f"mosquitto not listening within 30 s: {self.log_tail()}")

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    def log_tail(self, lines: int = 5) -> str:
        try:
            return " | ".join(self.log_file.read_text(errors="replace").strip().splitlines()[-lines:])
        except OSError:
            return ""

    def settings(self) -> dict[str, Any]:
        return {"mqtt_host": "127.0.0.1", "mqtt_port": self.port, "mqtt_username": USER, "mqtt_password": PASSWORD, "mqtt_timeout_s": 10.0}
