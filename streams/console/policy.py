"""The console's rules, pure: who may do what, when a login is locked, when a session ends, what a
silence may be. The web layer and the user store ask these functions and only do I/O.

Roles (docs/operators.md): ``operator`` (traffic control room: alarms and signal plans),
``pool-supervisor`` (alarms and silences), ``planner`` (reads everything, changes nothing) and
``admin`` (everything). A role is checked on the server for every change; hiding a button is a
courtesy, not the control.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import dataclass, replace
from typing import Literal

from ..settings import MIN_AUDIT_LOG_DAYS

Role = Literal["operator", "pool-supervisor", "planner", "admin"]
Action = Literal["alarm.ack", "alarm.resolve", "plan.decide", "signal.mode", "silence.set"]

ROLES: tuple[Role, ...] = ("operator", "pool-supervisor", "planner", "admin")
ACTIONS: tuple[Action, ...] = ("alarm.ack", "alarm.resolve", "plan.decide", "signal.mode", "silence.set")
PERMISSIONS: dict[Role, frozenset[Action]] = {
    "operator": frozenset({"alarm.ack", "alarm.resolve", "plan.decide", "signal.mode"}),
    "pool-supervisor": frozenset({"alarm.ack", "alarm.resolve", "silence.set"}),
    "planner": frozenset(),
    "admin": frozenset(ACTIONS),
}

#: what each action is, in the words of a refusal ("role planner may not acknowledge alarms")
VERBS: dict[str, str] = {
    "alarm.ack": "acknowledge alarms",
    "alarm.resolve": "resolve alarms",
    "plan.decide": "approve or reject signal plans",
    "signal.mode": "change an intersection's mode",
    "silence.set": "set silences",
}

#: a user name becomes the ``by`` / ``actor`` of every record (<= 64 characters there)
USERNAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,31}\Z")
MIN_PASSWORD_CHARS = 12
MAX_PASSWORD_CHARS = 1024  # Argon2 hashes anything, but a megabyte password is an attack
#: the longest silence one person may set in one go
MAX_SILENCE_S = 30 * 86_400.0
MAX_REASON_CHARS = 500


def may(role: str, action: Action) -> bool:
    """True if ``role`` may perform ``action`` (an unknown role may do nothing)."""
    return action in PERMISSIONS.get(role, frozenset())  # type: ignore[call-overload]


def check_username(name: str) -> str:
    """``name`` if it is a valid account name, else ``ValueError`` saying what is allowed."""
    if not USERNAME.match(name):
        raise ValueError(f"user name {name!r} must be 1-32 characters a-z 0-9 . _ - starting with a letter or digit")
    return name


def check_role(role: str) -> Role:
    for known in ROLES:
        if role == known:
            return known
    raise ValueError(f"role {role!r} is not one of {', '.join(ROLES)}")


def check_password(password: str) -> str:
    """A password of 12..1024 characters (length is what makes a password hard to guess)."""
    if len(password) < MIN_PASSWORD_CHARS:
        raise ValueError(f"password must have at least {MIN_PASSWORD_CHARS} characters")
    if len(password) > MAX_PASSWORD_CHARS:
        raise ValueError(f"password must have at most {MAX_PASSWORD_CHARS} characters")
    if len(set(password)) < 4:  # twelve spaces, or "aaaaaaaaaaaa", were accepted (a probe of stop 55)
        raise ValueError("password must use at least 4 different characters")
    return password


@dataclass(frozen=True)
class LoginState:
    """An account's recent wrong passwords: how many in a row, locked until when (POSIX s)."""

    failures: int = 0
    locked_until: float | None = None


def is_locked(state: LoginState, now: float) -> bool:
    return state.locked_until is not None and now < state.locked_until


def after_failure(state: LoginState, now: float, max_failures: int, lockout_s: float) -> LoginState:
    """One more wrong password. The ``max_failures``-th in a row locks for ``lockout_s``; a lock
    that has run out starts a fresh count, so a locked account cannot be kept locked for ever by
    one stale counter, and guesses during a lock are not even checked (the caller refuses them)."""
    failures = 1 if state.locked_until is not None and now >= state.locked_until else state.failures + 1
    if failures >= max_failures:
        return LoginState(failures, now + lockout_s)
    return replace(state, failures=failures, locked_until=None)


def after_success() -> LoginState:
    return LoginState()


@dataclass(frozen=True)
class AddressState:
    """Failed logins from one client address as a leaky bucket: ``level`` at time ``at``.

    Why a bucket per address beside the per-account lock: the lock alone lets one attacker lock
    every account with N guesses each, and try a few guesses at each of many accounts fast. The
    bucket holds ``capacity`` failures and drains ``capacity`` per ``window_s``, so an address
    gets at most ``capacity + t * capacity / window_s`` failed tries in any ``t`` seconds (a
    burst, then a trickle), whichever accounts it names, and is refused without a password check
    beyond that. Successful logins do not fill it: a control-room PC shared by a shift is not
    throttled for the people who know their passwords.
    """

    level: float = 0.0
    at: float = 0.0


def drained(state: AddressState, now: float, capacity: int, window_s: float) -> float:
    """The bucket's level at ``now`` (never below 0; a clock that went back drains nothing)."""
    return max(0.0, state.level - max(0.0, now - state.at) * capacity / window_s)


def address_wait(state: AddressState, now: float, capacity: int, window_s: float) -> float:
    """Seconds until this address may try again; 0 when one more failure still fits the bucket."""
    excess = drained(state, now, capacity, window_s) + 1.0 - capacity
    return 0.0 if excess <= 1e-9 else excess * window_s / capacity


def after_address_failure(state: AddressState, now: float, capacity: int, window_s: float) -> AddressState:
    """One more failed login (wrong password, unknown name, locked or disabled account)."""
    return AddressState(drained(state, now, capacity, window_s) + 1.0, max(now, state.at))


def audit_cutoff(now: float, keep_days: int) -> float:
    """The oldest time (POSIX s) a console audit line is kept from: ``keep_days`` back, which may
    not be fewer than ``MIN_AUDIT_LOG_DAYS`` (six months, EU AI Act Art. 19(1)): ``ValueError``."""
    if keep_days < MIN_AUDIT_LOG_DAYS:
        raise ValueError(f"the audit log is kept at least {MIN_AUDIT_LOG_DAYS} days, not {keep_days}")
    return now - keep_days * 86_400.0


def session_alive(created: float, last_seen: float, now: float, idle_s: float, max_s: float) -> bool:
    """A session is valid until it has been idle ``idle_s`` or lived ``max_s`` (both bounds)."""
    return now - last_seen < idle_s and now - created < max_s


@dataclass(frozen=True)
class SilenceRequest:
    subject_id: str
    starts_at: float
    ends_at: float
    reason: str


MINUTES = re.compile(r"\s*[0-9]+(\.[0-9]+)?\s*\Z")
SUBJECT = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._:/@+#~-]{0,63}\Z")


def silence_request(subject: str, minutes: str, reason: str, now: float) -> SilenceRequest:
    """A silence from a form's text fields, starting now; ``ValueError`` names the bad field."""
    subject = subject.strip()
    if not SUBJECT.match(subject):
        raise ValueError("subject must be a pool or intersection id (letters, digits, . _ : / @ + # ~ -)")
    if not MINUTES.match(minutes):  # float() also takes "1_0" (10), "1e3" and "nan"
        raise ValueError("duration must be a number of minutes, such as 30 or 7.5")
    duration_min = float(minutes)
    if not 0 < duration_min * 60.0 <= MAX_SILENCE_S:
        raise ValueError(f"duration must be more than 0 and at most {MAX_SILENCE_S / 86_400:g} days")
    reason = reason.strip()
    if not any(unicodedata.category(c)[0] not in "ZC" for c in reason):  # a zero-width space is no reason
        raise ValueError("a silence needs a reason (it is shown to everyone on duty and kept in the audit log)")
    if len(reason) > MAX_REASON_CHARS:
        raise ValueError(f"reason is longer than {MAX_REASON_CHARS} characters")
    return SilenceRequest(subject, now, now + duration_min * 60.0, reason)


def silence_id(subject: str, starts_at: float, by: str) -> str:
    """``silence@subject~digest``: deterministic, so a resent form is the same silence."""
    digest = hashlib.blake2b(f"{subject}\x1f{starts_at:.3f}\x1f{by}".encode(), digest_size=6).hexdigest()
    return f"silence@{subject}~{digest}"
