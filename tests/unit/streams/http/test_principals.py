"""Who the worker API records (issue 16): console users' tokens act as their user with their role
checked; the shared machine token is recorded as ``machine-token`` and a written name is a claim.

The user store is the real SQLite file the console writes (streams/console/users.py); the worker
reads it read-only.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streams.console.users import UserStore, lookup_token
from streams.http.auth import MACHINE_ACTOR, MAX_TEXT_CHARS, ApiAuth, Principal, Refused, console_lookup, recorded
from streams.settings import Settings

TOKEN = "k9-Xq2mZ7vR4tL8wN3pB6yH1cF5gJ0dS-long-enough"
READ = "r" * 40
PW = "correct horse battery"


@pytest.fixture
def tokens(tmp_path: Path) -> tuple[ApiAuth, dict[str, str], UserStore]:
    store = UserStore(tmp_path / "console.sqlite")
    for name, role in (("plan", "planner"), ("sup", "pool-supervisor"), ("op1", "operator"), ("boss", "admin")):
        store.add(name, role, PW)
    made = {name: store.new_token(name, "test") for name in ("plan", "sup", "op1", "boss")}
    return ApiAuth(TOKEN.encode(), READ.encode(), console_lookup(store.path)), made, store


def _status(auth: ApiAuth, header: str | None, access: str, action: str | None = None) -> int | Principal:
    try:
        return auth.check(header, access, action)  # type: ignore[arg-type]
    except Refused as refused:
        return refused.status


def test_machine_and_read_tokens_are_named_as_such(tokens) -> None:
    auth, _, _ = tokens
    assert auth.check(f"Bearer {TOKEN}", "write", "alarm.ack") == Principal(MACHINE_ACTOR, "machine")
    assert auth.check(f"Bearer {TOKEN}", "read").name == MACHINE_ACTOR
    assert auth.check(f"Bearer {READ}", "read").kind == "read"
    assert _status(auth, f"Bearer {READ}", "write", "alarm.ack") == 401


def test_user_tokens_act_as_their_user_within_their_role(tokens) -> None:
    auth, made, _ = tokens
    assert auth.check(f"Bearer {made['sup']}", "write", "alarm.ack") == Principal("sup", "user", "pool-supervisor")
    assert auth.check(f"bearer {made['op1']}", "write", "plan.decide").name == "op1"
    assert auth.check(f"Bearer {made['plan']}", "read").name == "plan"  # planners read everything
    for action in ("alarm.ack", "alarm.resolve", "plan.decide", "signal.mode"):
        assert _status(auth, f"Bearer {made['plan']}", "write", action) == 403
        assert auth.check(f"Bearer {made['boss']}", "write", action).name == "boss"
    assert _status(auth, f"Bearer {made['sup']}", "write", "plan.decide") == 403
    assert _status(auth, f"Bearer {made['op1']}", "write", None) == 403  # a change must say what it does
    with pytest.raises(Refused, match=r"^user plan \(role planner\) may not acknowledge alarms$"):
        auth.check(f"Bearer {made['plan']}", "write", "alarm.ack")


def test_wrong_revoked_or_disabled_user_tokens_are_401(tokens) -> None:
    auth, made, store = tokens
    for header in (f"Bearer {made['sup']}x", f"Bearer  {made['sup']}", f"Basic {made['sup']}", f"Bearer {made['sup'].upper()}"):
        assert _status(auth, header, "write", "alarm.ack") == 401, header
    store.set_disabled("sup", True)  # disabling revokes the tokens; the worker sees it at once
    assert _status(auth, f"Bearer {made['sup']}", "write", "alarm.ack") == 401
    assert _status(auth, f"Bearer {made['sup']}", "read") == 401


def test_user_tokens_work_without_a_machine_token_and_nothing_else_does(tokens) -> None:
    _, made, store = tokens
    only_users = ApiAuth(None, None, console_lookup(store.path))
    assert only_users.check(f"Bearer {made['sup']}", "write", "alarm.ack").name == "sup"
    assert _status(only_users, f"Bearer {TOKEN}", "write", "alarm.ack") == 403  # nothing configured: as before


def test_the_worker_reads_the_store_and_never_creates_it(tmp_path: Path) -> None:
    missing = tmp_path / "nothing" / "console.sqlite"
    assert lookup_token(missing, b"lst_abc") is None
    assert not missing.parent.exists()
    auth = ApiAuth.from_settings(Settings(_env_file=None, state_dir=tmp_path / "nothing", api_token=TOKEN))
    assert _status(auth, "Bearer lst_abc", "write", "alarm.ack") == 401
    assert not missing.exists()


def test_recorded_actor_is_the_principal_and_a_written_name_a_claim() -> None:
    machine, person = Principal(MACHINE_ACTOR, "machine"), Principal("sup", "user", "pool-supervisor")
    assert recorded(machine, "duty-1", None) == (MACHINE_ACTOR, "claimed by duty-1", "duty-1")
    assert recorded(machine, "duty-1", "false alarm") == (MACHINE_ACTOR, "claimed by duty-1: false alarm", "duty-1")
    assert recorded(machine, "", "x") == (MACHINE_ACTOR, "x", None)
    assert recorded(person, "sup", "x") == ("sup", "x", None)  # naming oneself is no claim
    assert recorded(person, "anna", None) == ("sup", "claimed by anna", "anna")


@given(claimed=st.text(min_size=1, max_size=64), text=st.none() | st.text(max_size=MAX_TEXT_CHARS))
def test_a_claim_never_replaces_the_actor_nor_cuts_the_text(claimed: str, text: str | None) -> None:
    who = Principal(MACHINE_ACTOR, "machine")
    by, note, kept = recorded(who, claimed, text)
    assert by == MACHINE_ACTOR
    if claimed == MACHINE_ACTOR:
        assert (note, kept) == (text, None)
        return
    assert kept == claimed  # the claim always travels in its own field
    assert note is None or len(note) <= MAX_TEXT_CHARS
    if text:
        assert note is not None and note.endswith(text)  # the caller's text is never cut
    if note != text:
        assert note is not None and note.startswith(f"claimed by {claimed}")
    else:
        assert len(f"claimed by {claimed}: {text}") > MAX_TEXT_CHARS
