"""One way to reach PostgreSQL from the settings, with one-line errors."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from ..errors import CliError
from ..settings import Settings, _mask_dsn

if TYPE_CHECKING:
    import psycopg

#: seconds a connection attempt may take before it counts as unreachable
CONNECT_TIMEOUT_S = 10


class DatabaseUnavailable(CliError):
    """No DSN configured, or the server cannot be reached: one line for the CLI."""


def dsn_of(settings: Settings) -> str:
    """The configured DSN (URL or libpq ``key=value``); ``DatabaseUnavailable`` when unset."""
    if settings.postgres_dsn is None or not settings.postgres_dsn.get_secret_value().strip():
        raise DatabaseUnavailable(
            "no database configured: set LEITSTAND_POSTGRES_DSN (e.g. postgresql://leitstand:PW@localhost:5432/leitstand)"
        )
    return settings.postgres_dsn.get_secret_value()


def describe(dsn: str) -> str:
    """The DSN as it may be shown (password masked)."""
    return _mask_dsn(dsn)


def one_line(exc: BaseException) -> str:
    """psycopg's messages span lines (server detail, hints): the first line is the point."""
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def scrubbed(text: str, dsn: str) -> str:
    """``text`` with every word that comes from the DSN but not from its masked form replaced by
    ``***``: libpq quotes the part of a malformed DSN it choked on, which may be the password
    (``invalid percent-encoded token: "p%zzSECRET"``, ``failed to resolve host 'RET@db'`` for
    a password holding an ``@``; stop 54's probe)."""
    shown = describe(dsn)

    def hide(m: re.Match[str]) -> str:
        word = m.group(0)
        return "***" if len(word) >= 3 and word in dsn and word not in shown else word

    return re.sub(r"[^\s'\"`]+", hide, text)


async def connect_async(dsn: str, *, application_name: str) -> psycopg.AsyncConnection:
    """An async connection (autocommit off), or ``DatabaseUnavailable`` with one line."""
    import psycopg

    try:
        return await psycopg.AsyncConnection.connect(dsn, connect_timeout=CONNECT_TIMEOUT_S, application_name=application_name)
    except (psycopg.Error, ValueError) as exc:
        raise DatabaseUnavailable(f"cannot connect to PostgreSQL at {describe(dsn)}: {scrubbed(one_line(exc), dsn)}") from None


def connect(dsn: str, *, application_name: str) -> psycopg.Connection:
    """A blocking connection (autocommit off), or ``DatabaseUnavailable`` with one line."""
    import psycopg

    try:
        return psycopg.connect(dsn, connect_timeout=CONNECT_TIMEOUT_S, application_name=application_name)
    except (psycopg.Error, ValueError) as exc:
        raise DatabaseUnavailable(f"cannot connect to PostgreSQL at {describe(dsn)}: {scrubbed(one_line(exc), dsn)}") from None
