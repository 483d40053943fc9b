"""Accounts, sessions, per-user API tokens and the console's own audit log, in one SQLite file.

Why SQLite: the embedded default (one broker, one worker, one console on a control-room PC)
must not need another service, and the accounts must survive restarts and be changed by the
``leitstand users`` command while the console runs. SQLite ships with Python, writes atomically
(WAL), and two processes may use it at once. Kafka would be the wrong home: a password hash on a
topic is readable by everything that reads the topics. A deployment with several consoles points
``LEITSTAND_CONSOLE_USERS_DB`` at a shared file or runs one console.

Passwords are Argon2id hashes (argon2-cffi's defaults, RFC 9106). Session ids and API tokens are
random 32-byte strings; only their SHA-256 is stored, so a copy of the file opens no session.
Decisions (lock after N failures, session expiry) are in ``policy``; this module only stores.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import re
import secrets
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import structlog
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from ..errors import CliError
from . import policy

log = structlog.get_logger(__name__)
#: hex digits of a token's hash that name it in lists and revocations
TOKEN_ID_CHARS = 12
#: every per-user API token starts so (the workers look only such tokens up)
TOKEN_PREFIX = "lst_"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    name TEXT PRIMARY KEY, role TEXT NOT NULL, pw_hash TEXT NOT NULL, disabled INTEGER NOT NULL DEFAULT 0,
    created REAL NOT NULL, failures INTEGER NOT NULL DEFAULT 0, locked_until REAL);
CREATE TABLE IF NOT EXISTS sessions (
    id_hash TEXT PRIMARY KEY, user TEXT NOT NULL REFERENCES users(name), csrf TEXT NOT NULL,
    created REAL NOT NULL, last_seen REAL NOT NULL);
CREATE TABLE IF NOT EXISTS tokens (
    token_hash TEXT PRIMARY KEY, user TEXT NOT NULL REFERENCES users(name), label TEXT NOT NULL, created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT, at REAL NOT NULL, user TEXT, action TEXT NOT NULL,
    target TEXT, outcome TEXT NOT NULL, detail TEXT, remote TEXT);
"""

LoginOutcome = Literal["ok", "wrong", "locked", "disabled"]


@dataclass(frozen=True)
class User:
    name: str
    role: str
    disabled: bool = False


@dataclass(frozen=True)
class Session:
    user: User
    csrf: str
    created: float


class UserError(ValueError):
    """A users command that cannot be done (exists already, unknown user): one line."""


def digest(secret: str) -> str:
    # a header or cookie with bytes that are not UTF-8 arrives with surrogates: hashed, never a 500
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


def _private(path: Path) -> None:
    """The accounts file readable by its owner only (password hashes, sessions' CSRF tokens);
    SQLite gives its -wal and -shm files the database file's mode. A file made before this
    (0644) is narrowed too."""
    path.touch(mode=0o600, exist_ok=True)
    for f in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        if f.exists() and f.stat().st_mode & 0o077:
            f.chmod(0o600)


def check_store_path(path: Path) -> None:
    """Refuse, before touching it, a path that is not an accounts file of ours or a new one: a
    directory, a device, a text file, another application's SQLite database. Opened as it was,
    a directory was chmod-ed to 0600 and then the open failed with a stack trace, a text file
    was narrowed and refused, another SQLite file got our tables added (a probe of stop 55)."""
    where = f"LEITSTAND_CONSOLE_USERS_DB {path}"
    if not path.exists():
        if path.parent.exists() and not path.parent.is_dir():
            raise CliError(f"{where}: {path.parent} is not a directory")
        return
    if not path.is_file():
        raise CliError(f"{where} is not a regular file (a directory or a device); name the accounts file")
    try:
        with open(path, "rb") as fh:
            head = fh.read(16)
    except OSError as exc:
        raise CliError(f"{where} cannot be read: {exc.strerror}") from None
    if not head:
        return  # an empty file: made by touch, or by us before the tables
    if head != b"SQLite format 3\x00":
        raise CliError(f"{where} is not an SQLite database; name the console's accounts file or a new path")
    try:
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
            tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    except sqlite3.Error as exc:
        raise CliError(f"{where} cannot be opened as a database: {exc}") from None
    if tables and "users" not in tables:
        raise CliError(f"{where} is another application's database (tables {', '.join(sorted(tables)[:5])}); leaving it alone")


class UserStore:
    """The SQLite file; every method is one short transaction (safe from several processes)."""

    def __init__(self, path: Path) -> None:
        check_store_path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        _private(path)
        self._db = sqlite3.connect(str(path), timeout=10.0, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA foreign_keys=ON")
        self._db.executescript(_SCHEMA)
        self._lock = threading.Lock()
        self._hasher = PasswordHasher()
        # verified against when the user does not exist, so a wrong name costs as long as a wrong password
        self._dummy = self._hasher.hash(secrets.token_urlsafe(16))

    def close(self) -> None:
        self._db.close()

    def _run(self, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            return self._db.execute(sql, args).fetchall()

    # --- accounts -------------------------------------------------------------------------------

    def add(self, name: str, role: str, password: str, now: float | None = None) -> User:
        policy.check_username(name)
        policy.check_role(role)
        policy.check_password(password)
        try:
            self._run(
                "INSERT INTO users(name, role, pw_hash, created) VALUES (?, ?, ?, ?)",
                (name, role, self._hasher.hash(password), now or time.time()),
            )
        except sqlite3.IntegrityError:
            raise UserError(f"user {name!r} exists already") from None
        return User(name, role)

    def get(self, name: str) -> User | None:
        rows = self._run("SELECT name, role, disabled FROM users WHERE name = ?", (name,))
        return User(rows[0][0], rows[0][1], bool(rows[0][2])) if rows else None

    def all_users(self) -> list[tuple[User, policy.LoginState]]:
        rows = self._run("SELECT name, role, disabled, failures, locked_until FROM users ORDER BY name")
        return [(User(r[0], r[1], bool(r[2])), policy.LoginState(r[3], r[4])) for r in rows]

    def set_disabled(self, name: str, disabled: bool) -> None:
        """Disable (or enable) an account; disabling also ends its sessions and revokes its tokens."""
        if self.get(name) is None:
            raise UserError(f"no user {name!r}")
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.execute("UPDATE users SET disabled = ? WHERE name = ?", (int(disabled), name))
                if disabled:
                    self._db.execute("DELETE FROM sessions WHERE user = ?", (name,))
                    self._db.execute("DELETE FROM tokens WHERE user = ?", (name,))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def login(self, name: str, password: str, now: float, max_failures: int, lockout_s: float) -> tuple[LoginOutcome, User | None]:
        """Check a password. Locked and disabled accounts are refused without looking at the
        password (a guess during a lock teaches nothing); a wrong one counts towards the lock."""
        rows = self._run("SELECT name, role, pw_hash, disabled, failures, locked_until FROM users WHERE name = ?", (name,))
        if not rows:
            self._verify(self._dummy, password)
            return "wrong", None
        uname, role, pw_hash, disabled, failures, locked_until = rows[0]
        user = User(uname, role, bool(disabled))
        state = policy.LoginState(failures, locked_until)
        if policy.is_locked(state, now):
            return "locked", user
        if disabled:
            return "disabled", user
        if not self._verify(pw_hash, password):
            after = policy.after_failure(state, now, max_failures, lockout_s)
            self._run("UPDATE users SET failures = ?, locked_until = ? WHERE name = ?", (after.failures, after.locked_until, uname))
            return ("locked" if policy.is_locked(after, now) else "wrong"), user
        self._run("UPDATE users SET failures = 0, locked_until = NULL WHERE name = ?", (uname,))
        return "ok", user

    def _verify(self, pw_hash: str, password: str) -> bool:
        try:
            return self._hasher.verify(pw_hash, password)
        except (VerificationError, InvalidHashError):
            return False

    # --- sessions -------------------------------------------------------------------------------

    def new_session(self, user: User, now: float) -> tuple[str, str]:
        """(session id for the cookie, CSRF token for the forms); only the id's hash is stored."""
        sid, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        self._run("INSERT INTO sessions VALUES (?, ?, ?, ?, ?)", (digest(sid), user.name, csrf, now, now))
        return sid, csrf

    def session(self, sid: str, now: float, idle_s: float, max_s: float, touch: bool = True) -> Session | Literal["expired"] | None:
        """The live session for a cookie (with ``touch`` its last use moved to ``now``), ``"expired"``, or None."""
        rows = self._run(
            "SELECT s.created, s.last_seen, s.csrf, u.name, u.role, u.disabled FROM sessions s JOIN users u ON u.name = s.user "
            "WHERE s.id_hash = ?",
            (digest(sid),),
        )
        if not rows:
            return None
        created, last_seen, csrf, name, role, disabled = rows[0]
        if disabled or not policy.session_alive(created, last_seen, now, idle_s, max_s):
            self._run("DELETE FROM sessions WHERE id_hash = ?", (digest(sid),))
            return "expired"
        if touch:
            self._run("UPDATE sessions SET last_seen = ? WHERE id_hash = ?", (now, digest(sid)))
        return Session(User(name, role), csrf, created)

    def end_session(self, sid: str) -> None:
        self._run("DELETE FROM sessions WHERE id_hash = ?", (digest(sid),))

    # --- API tokens -----------------------------------------------------------------------------

    def new_token(self, name: str, label: str, now: float | None = None) -> str:
        """A new API token for ``name`` (printed once; only its hash is kept)."""
        user = self.get(name)
        if user is None or user.disabled:
            raise UserError(f"no active user {name!r}")
        if not label.isprintable() or not 1 <= len(label) <= 64:  # a newline in a label forged a row of `users tokens`
            raise UserError("a token's label is 1-64 printable characters on one line")
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        self._run("INSERT INTO tokens VALUES (?, ?, ?, ?)", (digest(token), name, label, now or time.time()))
        return token

    def tokens(self, name: str | None = None) -> list[dict[str, Any]]:
        """Every API token (of ``name``), oldest first: its id (the first 12 hex digits of its
        hash: enough to name it, useless to act with), owner, label and when it was issued."""
        where, args = ("WHERE user = ?", (name,)) if name is not None else ("", ())
        rows = self._run(f"SELECT token_hash, user, label, created FROM tokens {where} ORDER BY created", args)
        return [{"id": h[:TOKEN_ID_CHARS], "user": u, "label": lb, "created": c} for h, u, lb, c in rows]

    def revoke_token(self, token_id: str) -> dict[str, Any]:
        """Revoke the one token whose id (``tokens``) is or starts with ``token_id`` (at least 8
        hex digits); the workers look tokens up per request, so it stops working at once."""
        token_id = token_id.strip().lower()
        if not re.fullmatch(r"[0-9a-f]{8,64}", token_id):
            raise UserError("a token id is 8 to 64 hex digits, as `leitstand users tokens` lists it")
        rows = self._run(
            "SELECT token_hash, user, label, created FROM tokens WHERE substr(token_hash, 1, ?) = ?", (len(token_id), token_id)
        )
        if not rows:
            raise UserError(f"no token {token_id!r} (leitstand users tokens lists them)")
        if len(rows) > 1:
            raise UserError(f"{len(rows)} tokens start with {token_id!r}: give more digits")
        h, user, label, created = rows[0]
        self._run("DELETE FROM tokens WHERE token_hash = ?", (h,))
        self.audit(None, "token revoke", user, "ok", f"token {h[:TOKEN_ID_CHARS]} ({label})")
        return {"id": h[:TOKEN_ID_CHARS], "user": user, "label": label, "created": created}

    def user_for_token(self, token: str) -> User | None:
        """The active user a token belongs to (compared by hash, then constant-time)."""
        rows = self._run(
            "SELECT t.token_hash, u.name, u.role FROM tokens t JOIN users u ON u.name = t.user WHERE t.token_hash = ? AND u.disabled = 0",
            (digest(token),),
        )
        if not rows or not hmac.compare_digest(rows[0][0], digest(token)):
            return None
        return User(rows[0][1], rows[0][2])

    # --- audit ----------------------------------------------------------------------------------

    def audit(self, user: str | None, action: str, target: str | None, outcome: str, detail: str = "", remote: str | None = None) -> None:
        """One line of the console's audit log: logins, refusals and accepted commands."""
        self._run(
            "INSERT INTO audit(at, user, action, target, outcome, detail, remote) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (time.time(), user, action, target, outcome, detail[:500], remote),
        )

    def recent_audit(self, limit: int = 50) -> list[dict[str, Any]]:
        rows = self._run("SELECT at, user, action, target, outcome, detail, remote FROM audit ORDER BY id DESC LIMIT ?", (limit,))
        keys = ("at", "user", "action", "target", "outcome", "detail", "remote")
        return [dict(zip(keys, r, strict=True)) for r in rows]

    def prune_audit(self, keep_days: int, now: float | None = None) -> int:
        """Delete console audit lines older than ``keep_days`` (never fewer than the legal minimum,
        ``policy.audit_cutoff`` refuses that); the number of lines deleted."""
        cutoff = policy.audit_cutoff(now if now is not None else time.time(), keep_days)
        with self._lock:
            return self._db.execute("DELETE FROM audit WHERE at < ?", (cutoff,)).rowcount


def lookup_token(path: Path, token: bytes) -> User | None:
    """The active user a per-user API token belongs to, read from the console's file read-only.

    For the workers' API (streams/http/auth.py): the worker opens the file with ``mode=ro`` (it may
    never change an account, a session or the audit log) once per lookup, so a token revoked or an
    account disabled with ``leitstand users`` is refused at the next request. A missing or
    unreadable file means no console accounts: ``None``.
    """
    if not token.startswith(TOKEN_PREFIX.encode()):
        return None  # not a console token: no file access for every wrong machine token
    digest = hashlib.sha256(token).hexdigest()
    try:
        db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=2.0)
    except sqlite3.Error:
        return None
    try:
        rows = db.execute(
            "SELECT t.token_hash, u.name, u.role FROM tokens t JOIN users u ON u.name = t.user WHERE t.token_hash = ? AND u.disabled = 0",
            (digest,),
        ).fetchall()
    except sqlite3.Error as exc:
        log.warning("console user store unreadable; per-user tokens refused", path=str(path), error=str(exc))
        return None
    finally:
        db.close()
    if not rows or not hmac.compare_digest(rows[0][0], digest):
        return None
    return User(rows[0][1], rows[0][2])


def users_db_path(settings: Any) -> Path:
    """Where the accounts live: ``console_users_db`` or ``<state_dir>/console.sqlite``."""
    return Path(settings.console_users_db or Path(settings.state_dir) / "console.sqlite")
