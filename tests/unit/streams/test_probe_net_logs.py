"""Probe of the network surface: no secret reaches a log line, at any level.

aiokafka logs every request it sends at debug level (``Request to host:port N: <struct>``), the
SASL exchange included: with ``LEITSTAND_LOG_LEVEL=debug`` and ``SASL_PLAINTEXT``/``SASL_SSL`` +
``PLAIN`` the worker wrote ``SaslAuthenticateRequest_v0(sasl_auth_bytes=b'\\x00user\\x00<password>')``,
the broker password in clear, to its log (debug logs are what people attach to tickets).
The client here talks to a minimal fake broker that offers SASL PLAIN, through the worker's
own logging configuration.
"""

from __future__ import annotations

import asyncio
import logging
import logging.config
import struct

import pytest
from aiokafka.conn import create_conn
from aiokafka.protocol.admin import (
    ApiVersionResponse_v0,
    SaslAuthenticateResponse_v0,
    SaslHandShakeResponse_v0,
)

from streams.logs import configure_structlog, logging_config

PASSWORD = "Br0ker-PASSWORD-never-logged"


@pytest.fixture(autouse=True)
def _no_held_back_lines() -> None:
    """Importing streams.kafka_io attaches a filter that logs a repeated aiokafka line once per
    10 s; these tests log the same lines on purpose and must each see them."""
    from streams.broker.backoff import AIOKAFKA_LOGGERS, RepeatFilter

    for name in AIOKAFKA_LOGGERS:
        for f in logging.getLogger(name).filters:
            if isinstance(f, RepeatFilter):
                f.seen.clear()


async def _fake_sasl_broker(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Answers ApiVersions, SaslHandshake (PLAIN) and SaslAuthenticate (failed), all version 0."""
    try:
        while True:
            size = struct.unpack(">i", await reader.readexactly(4))[0]
            frame = await reader.readexactly(size)
            api_key, _version, correlation = struct.unpack(">hhi", frame[:8])
            if api_key == 18:
                body = ApiVersionResponse_v0(error_code=0, api_versions=[(18, 0, 0), (17, 0, 1), (36, 0, 0)])
            elif api_key == 17:
                body = SaslHandShakeResponse_v0(error_code=0, enabled_mechanisms=["PLAIN"])
            elif api_key == 36:
                body = SaslAuthenticateResponse_v0(error_code=58, error_message="Authentication failed", sasl_auth_bytes=b"")
            else:
                return
            payload = struct.pack(">i", correlation) + body.encode()
            writer.write(struct.pack(">i", len(payload)) + payload)
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


@pytest.mark.parametrize("fmt", ["console", "json"])
def test_debug_logs_never_show_the_sasl_password(fmt: str, capsys: pytest.CaptureFixture[str]) -> None:
    configure_structlog()
    logging.config.dictConfig(logging_config("debug", fmt))

    async def run() -> None:
        server = await asyncio.start_server(_fake_sasl_broker, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        try:
            with pytest.raises(Exception):  # noqa: B017 - the fake broker refuses every login
                await create_conn(
                    "127.0.0.1",
                    port,
                    security_protocol="SASL_PLAINTEXT",
                    sasl_mechanism="PLAIN",
                    sasl_plain_username="leitstand",
                    sasl_plain_password=PASSWORD,
                )
        finally:
            server.close()
            await server.wait_closed()

    try:
        asyncio.run(run())
    finally:
        logging.config.dictConfig(logging_config("warning", "console"))
    out = capsys.readouterr().err
    assert "SaslAuthenticateRequest" in out, out[-2000:]  # the request is still logged, for debugging
    assert PASSWORD not in out and PASSWORD.encode().hex() not in out, out[-2000:]


def _fails_holding_a_secret(sasl_plain_password: str) -> None:
    url = f"https://pager.example/hook?token={sasl_plain_password}"
    raise RuntimeError(f"receiver at {url.split('?')[0]} failed")


@pytest.mark.parametrize("fmt", ["console", "json"])
@pytest.mark.parametrize("source", ["library", "structlog"])
def test_tracebacks_do_not_show_local_variables(fmt: str, source: str, capsys: pytest.CaptureFixture[str]) -> None:
    """structlog's console renderer formats exceptions with rich and ``show_locals=True``: every
    traceback of a library record (aiokafka, Faust, asyncio's "Task exception was never
    retrieved") printed each frame's variables, a password or a webhook URL with its token
    among them. A traceback must show the code path, not the values."""
    import structlog

    configure_structlog()
    logging.config.dictConfig(logging_config("info", fmt))
    try:
        try:
            _fails_holding_a_secret(PASSWORD)
        except RuntimeError:
            if source == "library":
                logging.getLogger("aiokafka.conn").exception("connection failed")
            else:
                structlog.get_logger("streams.test").exception("delivery failed")
    finally:
        logging.config.dictConfig(logging_config("warning", "console"))
    out = capsys.readouterr().err
    assert "_fails_holding_a_secret" in out and "RuntimeError" in out, out  # the traceback is there
    assert PASSWORD not in out, out
