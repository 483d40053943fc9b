"""Who may call the worker's HTTP API, and what a change may carry (shared by both APIs).

Tokens are compared as exact bytes: the header must be the scheme ``Bearer`` (any case, as
RFC 7235 says of schemes), one space, then the configured token byte for byte. Nothing is
stripped or case-folded, because ``str.strip`` also removes a non-breaking space: with an empty
token configured, ``Bearer <NBSP>`` used to match and acknowledge an alarm (issue 10, #6). An
empty configured token never authorises anything, whatever the settings let through; the
length rule (>= 32 bytes) is the settings' job and is not repeated here.

Two levels: ``write`` (acknowledge, resolve, approve, reject, change a mode) needs
``LEITSTAND_API_TOKEN``; ``read`` (``GET /alerts``, ``GET /signals/plans``: operator names,
notes and plans) needs that token or the read-only ``LEITSTAND_API_READ_TOKEN`` a wall display
can hold without being able to resolve an alarm. ``/ready`` and ``/metrics`` stay open for probes.

Who is recorded (issue 16): a check returns the ``Principal`` the audit trail names. The console's
per-user API tokens (``leitstand users token NAME``, looked up read-only in the console's SQLite
file by their SHA-256) act as their user, with the user's role checked per action (a planner's
token reads, and is refused 403 on every change). The shared machine token proves only that the
caller holds it, so its changes are recorded as ``machine-token``; a ``by``/``actor`` the caller
writes is kept as a claimed name (``claimed_by``, and in the note or reason), never as the actor.

Bodies of changes are JSON objects of at most ``MAX_BODY_BYTES``, read before parsing so a
large body costs nothing, naming each field once (``{"by": "a", "by": "b"}`` means different
actors to different parsers); anything else is refused with one clear message (400 / 413).
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import orjson
import structlog
from pydantic import SecretStr

from ..console import policy

Access = Literal["read", "write"]

#: largest request body a change may carry; an acknowledgement is a few hundred bytes
MAX_BODY_BYTES = 16 * 1024
#: actor names (``by``/``actor``) and free text (``note``/``reason``) limits, as in the records
MAX_ACTOR_CHARS = 64
MAX_TEXT_CHARS = 500
#: the actor recorded for changes made with the shared machine token (it names no person)
MACHINE_ACTOR = "machine-token"
#: the actor of reads with the read-only token (reads are not recorded; for logs only)
READ_ACTOR = "read-token"
#: the 401 answer's challenge (RFC 6750)
CHALLENGE = {"WWW-Authenticate": 'Bearer realm="leitstand"'}

# C0/C1 controls, DEL, bidirectional overrides/isolates, line/paragraph separators: they make an
# audit entry read differently from what was sent. ``note``/``reason`` may hold newlines and tabs.
_HIDDEN = {*range(0x20), *range(0x7F, 0xA0), 0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2066, 0x206A), 0x2028, 0x2029}
_TEXT_ALLOWED = {0x09, 0x0A, 0x0D}
log = structlog.get_logger(__name__)
#: a per-user token's owner: (name, role) for an active account, ``None`` otherwise
UserLookup = Callable[[bytes], tuple[str, str] | None]


@dataclass(frozen=True)
class Principal:
    """Who a request is authenticated as: the name the audit trail records and, for a person's
    token, the role that was checked."""

    name: str
    kind: Literal["machine", "read", "user"]
    role: str | None = None


class Refused(Exception):
    """A request this API will not serve: HTTP status, one-line reason, extra headers."""

    def __init__(self, status: int, error: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(error)
        self.status = status
        self.error = error
        self.headers = headers or {}


def secret_bytes(token: SecretStr | bytes | str | None) -> bytes | None:
    """The configured token as bytes, ``None`` when absent or empty (empty never authorises)."""
    if isinstance(token, SecretStr):
        token = token.get_secret_value()
    if isinstance(token, str):
        token = token.encode("utf-8")
    return token or None


def _header_bytes(header: str | bytes) -> bytes | None:
    """The header exactly as received: aiohttp decodes it as UTF-8 with ``surrogateescape``."""
    if isinstance(header, bytes):
        return header
    try:
        return header.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return None


def bearer_matches(header: str | bytes | None, token: SecretStr | bytes | str | None) -> bool:
    """True only if ``header`` is ``Bearer`` + one space + exactly ``token`` (constant-time compare)."""
    secret = secret_bytes(token)
    raw = _header_bytes(header) if header is not None else None
    if secret is None or raw is None:
        return False
    scheme, space, given = raw.partition(b" ")
    if not space or scheme.lower() != b"bearer":
        return False
    return hmac.compare_digest(given, secret)


@dataclass(frozen=True)
class ApiAuth:
    """The configured tokens as bytes and the per-user token lookup; ``check`` says who calls."""

    token: bytes | None
    read_token: bytes | None = None
    users: UserLookup | None = None

    @classmethod
    def from_settings(cls, settings: Any) -> ApiAuth:
        from ..console.users import users_db_path

        return cls(secret_bytes(settings.api_token), secret_bytes(settings.api_read_token), console_lookup(users_db_path(settings)))

    def check(self, header: str | bytes | None, access: Access, action: policy.Action | None = None) -> Principal:
        """The caller, or ``Refused``: 403 nothing configured or the user's role may not do
        ``action``, 401 missing/wrong token. ``action`` is what a change does (roles are per action)."""
        accepted = [self.token] if access == "write" else [self.token, self.read_token]
        configured = [t for t in accepted if t]
        # compare against every accepted token, so timing does not tell which one was close
        matches = [bearer_matches(header, t) for t in configured]
        if any(matches):
            return Principal(MACHINE_ACTOR, "machine") if bearer_matches(header, self.token) else Principal(READ_ACTOR, "read")
        person = self._person(header)
        if person is not None:
            if access == "write" and (action is None or not policy.may(person.role or "", action)):
                what = policy.VERBS.get(action or "", "make changes")
                log.warning("API change refused: role", user=person.name, role=person.role, action=action)
                raise Refused(403, f"user {person.name} (role {person.role}) may not {what}")
            return person
        if not configured:
            what = "changes" if access == "write" else "reads"
            names = "LEITSTAND_API_TOKEN" if access == "write" else "LEITSTAND_API_TOKEN or LEITSTAND_API_READ_TOKEN"
            raise Refused(403, f"no API token configured ({names}) and no valid per-user token given; {what} are refused")
        raise Refused(401, "missing or wrong bearer token", CHALLENGE)

    def _person(self, header: str | bytes | None) -> Principal | None:
        raw = _header_bytes(header) if header is not None and self.users is not None else None
        if raw is None or self.users is None:
            return None
        scheme, space, given = raw.partition(b" ")
        if not space or scheme.lower() != b"bearer" or not given:
            return None
        found = self.users(given)
        return Principal(found[0], "user", found[1]) if found else None


def console_lookup(path: Path) -> UserLookup:
    """Per-user tokens from the console's user store at ``path`` (read-only, each request)."""
    from ..console.users import lookup_token

    def lookup(token: bytes) -> tuple[str, str] | None:
        user = lookup_token(path, token)
        return (user.name, user.role) if user is not None else None

    return lookup


def recorded(who: Principal, claimed: str | None, text: str | None) -> tuple[str, str | None, str | None]:
    """(actor, note/reason, claimed name) to record. The actor is always the principal's name; a
    name the caller wrote that differs from it is only a claim: it goes into the command's
    ``claimed_by`` field and, where it fits the record's 500 characters, ahead of the text
    (``claimed by NAME: text``) so the alarm and the signal audit show it too. A text too long
    for both is kept whole (the claim then only in ``claimed_by``): nothing is cut."""
    if not claimed or claimed == who.name:
        return who.name, text, None
    claim = f"claimed by {claimed}"
    combined = f"{claim}: {text}" if text else claim
    return who.name, combined if len(combined) <= MAX_TEXT_CHARS else text, claimed


#: where ``read_json_object`` leaves the body's bytes on the request (aiohttp's per-request
#: storage): the stream is read once, and a request forwarded to another worker must carry them
RAW_BODY = "leitstand.raw_body"


async def read_json_object(request: Any, limit: int = MAX_BODY_BYTES) -> dict[str, Any]:
    """The body as a JSON object (an empty body is ``{}``); ``Refused`` 413/400 otherwise. The
    bytes read are kept under ``RAW_BODY`` on the request."""
    declared = request.content_length
    if declared is not None and declared > limit:
        raise Refused(413, f"body larger than {limit} bytes")
    data = bytearray()
    while chunk := await request.content.read(limit + 1 - len(data)):
        data += chunk
        if len(data) > limit:
            raise Refused(413, f"body larger than {limit} bytes")
    request[RAW_BODY] = bytes(data)
    if not data.strip():
        return {}
    try:
        body = orjson.loads(bytes(data))
    except orjson.JSONDecodeError:
        raise Refused(400, "body must be a JSON object (UTF-8)") from None
    if not isinstance(body, dict):
        raise Refused(400, f"body must be a JSON object, not {_json_type(body)}")
    twice = _repeated_key(bytes(data))
    if twice is not None:
        raise Refused(400, f"field {twice!r} given more than once")
    return body


def _repeated_key(data: bytes) -> str | None:
    """A key that appears twice in one object, at any depth (orjson keeps the last silently).

    Which value is "the" value then depends on the parser: a proxy or request log that keeps
    the first would show another actor than the audit trail. Read again with the standard
    library, which reports every pair; orjson has already bounded size and depth (1024).
    """
    import json

    found: list[str] = []

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        keys = [k for k, _ in items]
        if len(set(keys)) != len(keys) and not found:
            found.append(next(k for i, k in enumerate(keys) if k in keys[:i]))
        return dict(items)

    try:
        json.loads(data, object_pairs_hook=pairs)
    except RecursionError:
        # within orjson's depth, beyond the stdlib's: no field of a change is nested at all
        raise Refused(400, "body nested too deeply") from None
    except ValueError:  # orjson accepted it; the stdlib reads the same grammar
        return None
    return found[0] if found else None


def _json_type(value: Any) -> str:
    return {list: "an array", str: "a string", bool: "a boolean", int: "a number", float: "a number"}.get(type(value), "null")


def only_fields(body: dict[str, Any], allowed: tuple[str, ...]) -> None:
    """Refuse unknown fields: a typo (``nte``) must not silently drop a note from the audit trail."""
    unknown = sorted(set(body) - set(allowed))
    if unknown:
        raise Refused(400, f"unknown field(s) {', '.join(map(repr, unknown))}; allowed: {', '.join(allowed)}")


def query_choice(query: Any, name: str, choices: tuple[str, ...]) -> str:
    """The one query parameter a list takes, one of ``choices`` (default the first).

    Unknown or repeated parameters are refused rather than ignored: ``/alerts?status=raised``
    (a typo of ``state``) must not quietly list every open alarm.
    """
    unknown = sorted(set(query) - {name})
    if unknown:
        raise Refused(400, f"unknown query parameter(s) {', '.join(map(repr, unknown))}; allowed: {name}")
    values = query.getall(name, [])
    if len(values) > 1:
        raise Refused(400, f"{name} given {len(values)} times")
    value = values[0] if values else choices[0]
    if value not in choices:
        raise Refused(400, f"{name} must be one of {', '.join(choices)}")
    return value


def actor(body: dict[str, Any], *names: str, default: str = "api") -> str:
    """The first of ``names`` present: a string of 1..64 visible characters (missing/empty: ``default``)."""
    for name in names:
        value = body.get(name)
        if value is None or value == "":
            continue
        text = _string(name, value, MAX_ACTOR_CHARS)
        if any(ord(c) in _HIDDEN for c in text):
            raise Refused(400, f"{name} must not contain control or bidirectional-override characters")
        return text
    return default


def free_text(body: dict[str, Any], name: str) -> str | None:
    """An optional note/reason: a string of at most 500 characters, no hidden controls."""
    value = body.get(name)
    if value is None:
        return None
    text = _string(name, value, MAX_TEXT_CHARS)
    if any(ord(c) in _HIDDEN and ord(c) not in _TEXT_ALLOWED for c in text):
        raise Refused(400, f"{name} must not contain control or bidirectional-override characters")
    return text


def _string(name: str, value: Any, max_chars: int) -> str:
    if not isinstance(value, str):
        raise Refused(400, f"{name} must be a string")
    if len(value) > max_chars:
        raise Refused(400, f"{name} is longer than {max_chars} characters")
    return value
