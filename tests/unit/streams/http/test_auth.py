"""The API's bearer check compares exact bytes; an empty token never authorises (issue 10, #6).

Before the fix the header was ``.strip()``-ped, so with ``LEITSTAND_API_TOKEN=""`` the header
``Bearer <NBSP>`` matched and acknowledged an alarm. Bodies: only JSON objects of known fields,
at most 16 KiB, string actors and notes (issue 10, #9).
"""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import SecretStr

from streams.http.auth import (
    MAX_BODY_BYTES,
    RAW_BODY,
    Access,
    ApiAuth,
    Refused,
    actor,
    bearer_matches,
    free_text,
    only_fields,
    query_choice,
    read_json_object,
    secret_bytes,
)
from streams.settings import Settings
from tests.fuzzing import budget

TOKEN = "k9-Xq2mZ7vR4tL8wN3pB6yH1cF5gJ0dS-long-enough"


@pytest.mark.parametrize(
    "header",
    [
        "Bearer \u00a0",  # the reported exploit: NBSP used to strip to "" == ""
        "Bearer ",
        "Bearer",
        "Bearer  ",
        "Bearer \t",
        "Bearer \u2003",
        "Bearer \u200b",
        "",
    ],
)
def test_empty_configured_token_authorises_nothing(header: str) -> None:
    for empty in ("", SecretStr(""), b""):
        assert not bearer_matches(header, empty)
        assert not bearer_matches(header.encode("utf-8"), empty)
    assert not bearer_matches(header, None)


def test_the_exact_header_matches_and_the_scheme_is_case_insensitive() -> None:
    for token in (TOKEN, SecretStr(TOKEN), TOKEN.encode()):
        assert bearer_matches(f"Bearer {TOKEN}", token)
        assert bearer_matches(f"bearer {TOKEN}", token)  # RFC 7235: the scheme name is case-insensitive
        assert bearer_matches(f"BEARER {TOKEN}", token)


@pytest.mark.parametrize(
    "header",
    [
        f"Bearer {TOKEN}\u00a0",  # trailing NBSP was stripped
        f"Bearer \u00a0{TOKEN}",  # leading NBSP was stripped
        f"Bearer {TOKEN} ",  # trailing space was stripped
        f"Bearer  {TOKEN}",  # two spaces
        f"Bearer {TOKEN}\t",
        f"Bearer {TOKEN}\n",
        f"Bearer\t{TOKEN}",
        f"Bearer {TOKEN.upper()}",  # the token itself is case-sensitive
        f"Bearer {TOKEN.lower()}",
        f"Bearer {TOKEN[:-1]}",
        f"Bearer {TOKEN}x",
        f"Basic {TOKEN}",
        f"Token {TOKEN}",
        f"Bearer{TOKEN}",
        TOKEN,
        f"Bearer {TOKEN.replace('k', 'K', 1)}",
        "Bearer " + TOKEN.replace("-", "\u2010"),  # unicode hyphen look-alike
        "Bearer " + TOKEN.replace("e", "\u0435"),  # Cyrillic e look-alike
        "B\u0435arer " + TOKEN,  # Cyrillic e in the scheme
        "Bearer \udcff",  # a raw 0xFF byte as aiohttp decodes it
    ],
)
def test_anything_but_the_exact_bytes_is_refused(header: str) -> None:
    assert not bearer_matches(header, TOKEN)


def test_headers_are_compared_as_the_bytes_received() -> None:
    """aiohttp decodes header bytes as UTF-8 with surrogateescape; a non-UTF-8 token still round-trips."""
    raw_token = b"\xff\xfe" + TOKEN.encode()
    header = (b"Bearer " + raw_token).decode("utf-8", "surrogateescape")
    assert bearer_matches(header, raw_token)
    unicode_token = "P\u00e4sswort-" + TOKEN
    assert bearer_matches(f"Bearer {unicode_token}".encode().decode("utf-8", "surrogateescape"), unicode_token)
    assert not bearer_matches(f"Bearer {unicode_token}".encode().decode("latin-1"), unicode_token)


PIECES = st.sampled_from(["Bearer ", "bearer ", "BEARER ", "Bearer", " ", "\u00a0", "\t", TOKEN, TOKEN[:-1], ""])


@budget(300)
@pytest.mark.fuzz
@given(
    st.lists(PIECES | st.text(max_size=3), max_size=4).map("".join)
    | st.binary(max_size=80).map(lambda b: b.decode("utf-8", "surrogateescape"))
)
def test_fuzz_only_the_exact_header_matches(header: str) -> None:
    raw = header.encode("utf-8", "surrogateescape")
    assert bearer_matches(header, TOKEN) == (raw[:7].lower() == b"bearer " and raw[7:] == TOKEN.encode())
    assert not bearer_matches(header, "")


def test_secret_bytes_treats_empty_as_absent() -> None:
    assert secret_bytes(None) is None
    assert secret_bytes("") is None
    assert secret_bytes(SecretStr("")) is None
    assert secret_bytes(SecretStr("ab")) == b"ab"


def _status(auth: ApiAuth, header: str | None, access: Access) -> int:
    try:
        auth.check(header, access)
    except Refused as refused:
        return refused.status
    return 200


def test_levels_read_token_reads_only_and_missing_configuration_refuses() -> None:
    read = "r" * 40
    both = ApiAuth(TOKEN.encode(), read.encode())
    assert _status(both, f"Bearer {TOKEN}", "write") == 200
    assert _status(both, f"Bearer {TOKEN}", "read") == 200
    assert _status(both, f"Bearer {read}", "read") == 200
    assert _status(both, f"Bearer {read}", "write") == 401
    assert _status(both, None, "read") == 401
    assert _status(both, "Bearer \u00a0", "read") == 401
    only_read = ApiAuth(None, read.encode())
    assert _status(only_read, f"Bearer {read}", "write") == 403
    assert _status(only_read, f"Bearer {read}", "read") == 200
    # settings refuse an empty token at start-up; the check must not rely on that (defence in depth)
    nothing = ApiAuth.from_settings(Settings.model_construct(api_token=SecretStr("")))
    assert nothing.token is None
    assert _status(nothing, "Bearer \u00a0", "write") == 403
    assert _status(nothing, "Bearer ", "read") == 403
    refused = Refused(0, "")
    try:
        both.check("Bearer nope", "write")
    except Refused as exc:
        refused = exc
    assert refused.headers.get("WWW-Authenticate", "").startswith("Bearer")


class _Body(dict):
    """What ``read_json_object`` uses of an aiohttp request: a length, a stream, and the
    per-request storage it leaves the bytes in."""

    def __init__(self, data: bytes, declared: bool = True, chunk: int = 1000) -> None:
        self.content_length = len(data) if declared else None
        self._chunks = [data[i : i + chunk] for i in range(0, len(data), chunk)]
        self.content = self

    async def read(self, n: int) -> bytes:
        if not self._chunks:
            return b""
        head = self._chunks.pop(0)
        if len(head) > n:
            head, rest = head[:n], head[n:]
            self._chunks.insert(0, rest)
        return head


def _read(data: bytes, declared: bool = True) -> dict | int:
    try:
        return asyncio.run(read_json_object(_Body(data, declared)))
    except Refused as refused:
        return refused.status


@pytest.mark.parametrize(
    "data", [b"[]", b'"x"', b"3", b"null", b"true", b"{", b"\xff", b"NaN", b"[" * 5000, b'{"by": "\\ud800"}', b"\xef\xbb\xbf{}"]
)
def test_bodies_that_are_not_json_objects_are_400(data: bytes) -> None:
    assert _read(data) == 400


def test_the_body_read_is_kept_on_the_request_for_a_forward_to_another_worker() -> None:
    """The stream can be read once; a change forwarded to the worker holding the alarm or the
    intersection (streams/http/owners.py) sends these bytes, not an empty body (stop 46: a
    forwarded acknowledgement lost its note, a forwarded mode change its mode)."""
    data = b'{"note": "on my way", "by": "anna"}'
    request = _Body(data, chunk=7)
    assert asyncio.run(read_json_object(request)) == {"note": "on my way", "by": "anna"}
    assert request[RAW_BODY] == data
    empty = _Body(b"")
    assert asyncio.run(read_json_object(empty)) == {} and empty[RAW_BODY] == b""


def test_oversized_bodies_are_413_declared_or_streamed() -> None:
    big = b'{"note": "' + b"x" * MAX_BODY_BYTES + b'"}'
    assert _read(big) == 413
    assert _read(big, declared=False) == 413
    assert _read(b'{"by": "a"}', declared=False) == {"by": "a"}
    assert _read(b"") == {}
    assert _read(b"  \r\n") == {}


def test_fields_must_be_known_strings_within_limits() -> None:
    def status(fun, *args) -> int | object:
        try:
            return fun(*args)
        except Refused as refused:
            return refused.status

    assert status(only_fields, {"by": "a", "nte": "typo"}, ("by", "note")) == 400
    assert status(actor, {"by": ["x"]}, "by") == 400
    assert status(actor, {"by": 7}, "by") == 400
    assert status(actor, {"by": "x" * 65}, "by") == 400
    assert status(actor, {"by": "evil\u202eeno"}, "by") == 400
    assert status(actor, {"by": "nul\x00"}, "by") == 400
    assert status(actor, {"by": "Bademeisterin M\u00fcller"}, "by") == "Bademeisterin M\u00fcller"
    assert status(actor, {"by": ""}, "by") == "api"
    assert status(actor, {"actor": None, "by": "b"}, "actor", "by") == "b"
    assert status(free_text, {"note": {"a": 1}}, "note") == 400
    assert status(free_text, {"note": "x" * 501}, "note") == 400
    assert status(free_text, {"note": "line 1\nline 2\ttab"}, "note") == "line 1\nline 2\ttab"
    assert status(free_text, {"note": "bell\x07"}, "note") == 400
    assert status(free_text, {}, "note") is None


def test_list_queries_take_one_known_parameter_once() -> None:
    from multidict import MultiDict

    def status(pairs: list[tuple[str, str]]) -> str | int:
        try:
            return query_choice(MultiDict(pairs), "state", ("open", "raised"))
        except Refused as refused:
            return refused.status

    assert status([]) == "open"
    assert status([("state", "raised")]) == "raised"
    assert status([("state", "closed")]) == 400
    assert status([("state", "open"), ("state", "raised")]) == 400
    assert status([("status", "raised")]) == 400
