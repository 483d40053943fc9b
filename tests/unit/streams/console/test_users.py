"""The user store (streams/console/users.py) on a real SQLite file: accounts, locks, sessions, tokens."""

from __future__ import annotations

from pathlib import Path

import pytest

from streams.console.users import Session, UserError, UserStore

PW = "correct horse battery"


@pytest.fixture
def store(tmp_path: Path):
    s = UserStore(tmp_path / "console.sqlite")
    yield s
    s.close()


def test_add_login_and_no_plain_password_stored(store: UserStore, tmp_path: Path) -> None:
    store.add("sup", "pool-supervisor", PW)
    with pytest.raises(UserError, match="exists already"):
        store.add("sup", "planner", PW)
    assert store.login("sup", PW, 0.0, 5, 900)[0] == "ok"
    assert store.login("nobody", PW, 0.0, 5, 900) == ("wrong", None)
    assert PW.encode() not in (tmp_path / "console.sqlite").read_bytes()


def test_lock_after_wrong_passwords_refuses_even_the_right_one(store: UserStore) -> None:
    store.add("op1", "operator", PW)
    outcomes = [store.login("op1", "guess", 100.0, 3, 60)[0] for _ in range(3)]
    assert outcomes == ["wrong", "wrong", "locked"]
    assert store.login("op1", PW, 120.0, 3, 60)[0] == "locked"
    assert store.login("op1", PW, 161.0, 3, 60)[0] == "ok"  # the lock ran out


def test_sessions_expire_idle_and_absolute(store: UserStore) -> None:
    user = store.add("plan", "planner", PW)
    sid, csrf = store.new_session(user, 1000.0)
    got = store.session(sid, 1100.0, idle_s=300, max_s=3600)
    assert isinstance(got, Session) and got.csrf == csrf and got.user.role == "planner"
    assert store.session(sid, 1100.0 + 300, idle_s=300, max_s=3600) == "expired"
    assert store.session(sid, 1100.0, idle_s=300, max_s=3600) is None  # gone for good
    sid, _ = store.new_session(user, 1000.0)
    for t in range(1200, 4600, 200):  # kept busy, still ends after max_s
        store.session(sid, float(t), idle_s=300, max_s=3600)
    assert store.session(sid, 4700.0, idle_s=300, max_s=3600) == "expired"
    assert store.session("forged", 1000.0, 300, 3600) is None


def test_tokens_act_as_their_user_until_disabled(store: UserStore) -> None:
    store.add("op1", "operator", PW)
    token = store.new_token("op1", "scada")
    assert store.user_for_token(token).name == "op1"  # type: ignore[union-attr]
    assert store.user_for_token(token + "x") is None
    sid, _ = store.new_session(store.get("op1"), 0.0)  # type: ignore[arg-type]
    store.set_disabled("op1", True)
    assert store.user_for_token(token) is None and store.session(sid, 1.0, 300, 3600) is None
    assert store.login("op1", PW, 2.0, 5, 60)[0] == "disabled"
    with pytest.raises(UserError):
        store.new_token("op1", "again")
    with pytest.raises(UserError, match="no user"):
        store.set_disabled("ghost", True)


def test_one_token_is_revoked_by_its_id_and_the_others_keep_working(store: UserStore) -> None:
    """A leaked token used to be revocable only by disabling the whole account."""
    store.add("op1", "operator", PW)
    scada, bridge = store.new_token("op1", "scada", now=1.0), store.new_token("op1", "bridge", now=2.0)
    listed = store.tokens("op1")
    assert [(t["user"], t["label"]) for t in listed] == [("op1", "scada"), ("op1", "bridge")]
    assert all(len(t["id"]) == 12 and t["id"] not in (scada, bridge) for t in listed)
    with pytest.raises(UserError, match="8 to 64 hex digits"):
        store.revoke_token("abc")
    with pytest.raises(UserError, match="no token"):
        store.revoke_token("0" * 12 if not listed[0]["id"].startswith("0" * 12) else "f" * 12)
    gone = store.revoke_token(listed[0]["id"][:8].upper())
    assert gone["label"] == "scada" and store.user_for_token(scada) is None
    assert store.user_for_token(bridge).name == "op1"  # type: ignore[union-attr]
    assert [t["label"] for t in store.tokens()] == ["bridge"]
    assert store.recent_audit(1)[0]["action"] == "token revoke"


def test_audit_newest_first(store: UserStore) -> None:
    store.audit("a", "login", None, "ok")
    store.audit("b", "alarm.ack", "x@P1~000000000000", "refused 403", "role planner may not acknowledge alarms")
    assert [e["user"] for e in store.recent_audit()] == ["b", "a"]


def test_a_path_that_is_not_an_accounts_file_is_refused_untouched(tmp_path: Path) -> None:
    """A probe of stop 55 pointed LEITSTAND_CONSOLE_USERS_DB at a directory (chmod-ed to 0600, then
    a stack trace), a text file (narrowed, then refused) and another application's SQLite file (our
    tables added to it)."""
    import sqlite3

    from streams.console.users import UserStore
    from streams.errors import CliError

    folder = tmp_path / "folder"
    folder.mkdir(mode=0o755)
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    text.chmod(0o644)
    other = tmp_path / "other.db"
    with sqlite3.connect(other) as db:
        db.execute("CREATE TABLE invoices (x)")
    for path, said in ((folder, "not a regular file"), (text, "not an SQLite database"), (other, "another application's database")):
        with pytest.raises(CliError, match=said):
            UserStore(path)
    assert folder.stat().st_mode & 0o777 == 0o755 and text.stat().st_mode & 0o777 == 0o644 and text.read_text() == "hello"
    with sqlite3.connect(other) as db:
        assert [r[0] for r in db.execute("SELECT name FROM sqlite_master")] == ["invoices"]
    store = UserStore(tmp_path / "new" / "console.sqlite")  # a new path, and then the same file again, are fine
    store.close()
    UserStore(tmp_path / "new" / "console.sqlite").close()


def test_a_token_label_is_one_printable_line(tmp_path: Path) -> None:
    from streams.console.users import UserError, UserStore

    store = UserStore(tmp_path / "console.sqlite")
    store.add("anna", "admin", "a-long-password-1")
    for label in ("a\nb   fake-row", "", "x" * 65):
        with pytest.raises(UserError, match="printable"):
            store.new_token("anna", label)
    assert store.new_token("anna", "grafana reader").startswith("lst_") and len(store.tokens("anna")) == 1
    store.close()
