"""What the history sink makes of a database error (streams/db/sink.py ``refusal_kind``), and
what a malformed DSN's error may show (streams/db/connect.py ``scrubbed``). No database needed:
psycopg's own error classes carry the SQLSTATE."""

from __future__ import annotations

import psycopg
import pytest

from streams.db.connect import scrubbed
from streams.db.sink import refusal_kind


@pytest.mark.parametrize(
    ("sqlstate", "kind"),
    [
        ("22001", "record"),  # value too long
        ("22021", "record"),  # bad encoding
        ("23514", "record"),  # check constraint
        ("54000", "record"),  # index row over 8 KB: raised as OperationalError, it was retried forever
        ("42501", "setup"),  # permission denied: every record was skipped and committed past
        ("42703", "setup"),  # undefined column (a newer schema)
        ("42P01", "setup"),  # undefined table
        ("08006", "transient"),  # connection failure
        ("40001", "transient"),  # serialization failure
        ("53100", "transient"),  # disk full
        ("57P01", "transient"),  # admin shutdown
    ],
)
def test_a_refusal_is_the_records_the_setups_or_passing(sqlstate: str, kind: str) -> None:
    exc = psycopg.errors.lookup(sqlstate)("refused")
    assert exc.sqlstate == sqlstate and refusal_kind(exc) == kind


def test_no_answer_from_the_server_is_passing() -> None:
    assert refusal_kind(psycopg.OperationalError("connection lost")) == "transient"


@pytest.mark.parametrize(
    ("dsn", "message", "hidden"),
    [
        ("postgresql://ops:p%zzSECRET@db/x", 'invalid percent-encoded token: "p%zzSECRET"', "SECRET"),
        ("host=db password=my secret", 'missing "=" after "secret" in connection info string', "secret"),
        ("postgresql://ops:SEC@RET@db/x", "failed to resolve host 'RET@db': unknown", "RET@db"),
    ],
)
def test_a_malformed_dsns_error_does_not_show_its_password(dsn: str, message: str, hidden: str) -> None:
    shown = scrubbed(message, dsn)
    assert hidden not in shown and "***" in shown
    assert scrubbed("connection refused at port 5432", dsn) == "connection refused at port 5432"
