"""``leitstand users``: the console's accounts (add, list, disable, enable), per-user API tokens
and the console's audit log. The accounts live in the SQLite file of ``streams/console/users.py``
(``LEITSTAND_CONSOLE_USERS_DB``, default ``<state_dir>/console.sqlite``).

Passwords are read from the terminal (asked twice) or, for scripts, one line on standard input
with ``--password-stdin``; never from an option, which would end up in the shell history.
"""

from __future__ import annotations

import sys
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Annotated

import typer

from ..errors import CliError
from .common import cli_settings, err, out

if TYPE_CHECKING:
    from ..console.users import UserStore

app = typer.Typer(help="People and their roles, API tokens, the console audit log.", no_args_is_help=True)

Name = Annotated[str, typer.Argument(help="Account name: 1-32 characters a-z 0-9 . _ -")]


def _store() -> UserStore:
    from ..console.users import UserStore, users_db_path

    return UserStore(users_db_path(cli_settings()))


def _password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    first = typer.prompt("Password", hide_input=True)
    if typer.prompt("Repeat password", hide_input=True) != first:
        raise CliError("the passwords differ; nothing changed")
    return str(first)


@app.command("add")
def add(
    name: Name,
    role: Annotated[str, typer.Option("--role", help="operator, pool-supervisor, planner or admin.")],
    password_stdin: Annotated[bool, typer.Option("--password-stdin", help="Read the password as one line from standard input.")] = False,
) -> None:
    """Add an account (password: at least 12 characters)."""
    from ..console import policy
    from ..console.users import UserError

    try:
        policy.check_username(name)
        policy.check_role(role)
        password = _password(password_stdin)
        policy.check_password(password)
        _store().add(name, role, password)
    except (ValueError, UserError) as exc:
        raise CliError(str(exc)) from None
    out.print(f"added {name} ({role})", markup=False)


@app.command("list")
def list_users() -> None:
    """List the accounts with role, state and recent wrong passwords."""
    import time

    from ..console import policy

    rows = _store().all_users()
    if not rows:
        out.print("no accounts yet: leitstand users add NAME --role admin", markup=False)
        return
    now = time.time()
    for user, login in rows:
        state = "disabled" if user.disabled else "locked" if policy.is_locked(login, now) else "active"
        out.print(f"{user.name:<24} {user.role:<16} {state:<9} wrong passwords: {login.failures}", markup=False)


def _set_disabled(name: str, disabled: bool) -> None:
    from ..console.users import UserError

    try:
        _store().set_disabled(name, disabled)
    except UserError as exc:
        raise CliError(str(exc)) from None


@app.command("disable")
def disable(name: Name) -> None:
    """Disable an account: its sessions end and its API tokens stop working at once."""
    _set_disabled(name, True)
    out.print(f"disabled {name}", markup=False)


@app.command("enable")
def enable(name: Name) -> None:
    """Enable a disabled account again (it needs a new API token)."""
    _set_disabled(name, False)
    out.print(f"enabled {name}", markup=False)


@app.command("token")
def token(
    name: Name,
    label: Annotated[str, typer.Option("--label", help="What the token is for (shown nowhere else).")] = "api",
) -> None:
    """Issue an API token acting as NAME on the console and workers (printed once, stored hashed)."""
    from ..console.users import TOKEN_ID_CHARS, UserError, digest

    try:
        token = _store().new_token(name, label)
    except UserError as exc:
        raise CliError(str(exc)) from None
    out.print(token, markup=False)  # alone on stdout, for scripts
    token_id = digest(token)[:TOKEN_ID_CHARS]
    err.print(f"token id {token_id}: `leitstand users revoke-token {token_id}` ends it", markup=False)


@app.command("tokens")
def tokens(name: Annotated[str | None, typer.Argument(help="Only this account's tokens.")] = None) -> None:
    """List the API tokens: id, account, label, when issued (never the token itself)."""
    found = _store().tokens(name)
    if not found:
        out.print("no API tokens" + (f" for {name}" if name else ""), markup=False)
    for t in found:
        at = datetime.fromtimestamp(t["created"], tz=timezone.utc).isoformat(timespec="seconds")
        out.print(f"{t['id']}  {t['user']:<24} {at}  {t['label']}", markup=False)


@app.command("revoke-token")
def revoke_token(token_id: Annotated[str, typer.Argument(help="The token's id as `users tokens` lists it (8+ hex digits).")]) -> None:
    """Revoke one API token at once, leaving the account and its other tokens as they are."""
    from ..console.users import UserError

    try:
        gone = _store().revoke_token(token_id)
    except UserError as exc:
        raise CliError(str(exc)) from None
    out.print(f"revoked token {gone['id']} of {gone['user']} ({gone['label']})", markup=False)


@app.command("audit")
def audit(limit: Annotated[int, typer.Option("--limit", min=1, max=10_000, help="How many entries, newest first.")] = 50) -> None:
    """The console's audit log: logins, refusals and accepted commands, newest first."""
    entries = _store().recent_audit(limit)
    if not entries:
        err.print("the console's audit log is empty (it records what people do in the console and its API)")
    for e in entries:
        at = datetime.fromtimestamp(e["at"], tz=timezone.utc).isoformat(timespec="seconds")
        out.print(f"{at} {e['user'] or '-'} {e['action']} {e['target'] or '-'} {e['outcome']} {e['detail'] or ''}".rstrip(), markup=False)
