"""The login form over real HTTP (aiohttp's test server) and a real SQLite user store: the
pre-session CSRF token (double submit), the per-address throttle beside the account lock, and the
console audit log's retention. No broker is needed: logging in does not touch the topics.
"""

from __future__ import annotations

import asyncio
import re
import sqlite3
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from streams.console.feed import Feed
from streams.console.state import ConsoleState
from streams.console.users import UserStore
from streams.console.web import LOGIN_CSRF_COOKIE, make_app
from streams.settings import MIN_AUDIT_LOG_DAYS, Settings

PW = "correct horse battery"


def _run(tmp_path: Path, body: Callable[[TestClient, UserStore], Awaitable[None]], **settings: Any) -> None:
    s = Settings(_env_file=None, state_dir=tmp_path, **settings)
    store = UserStore(tmp_path / "console.sqlite")
    store.add("sup", "pool-supervisor", PW)
    state = ConsoleState()

    async def main() -> None:
        async with TestClient(TestServer(make_app(s, store, state, Feed(s, state)))) as client:
            await body(client, store)

    try:
        asyncio.run(main())
    finally:
        store.close()


async def _form_token(client: TestClient) -> str:
    page = await client.get("/login")
    assert page.status == 200
    found = re.search(r'name="csrf" value="([^"]+)"', await page.text())
    assert found is not None
    return found.group(1)


async def _login(client: TestClient, name: str, password: str, csrf: str | None) -> tuple[int, str]:
    form = {"username": name, "password": password} | ({"csrf": csrf} if csrf is not None else {})
    resp = await client.post("/login", data=form, allow_redirects=False)
    return resp.status, await resp.text()


def _audit(store: UserStore, outcome: str) -> list[dict[str, Any]]:
    return [e for e in store.recent_audit(500) if e["outcome"] == outcome]


def test_login_without_or_with_a_wrong_form_token_is_refused_and_audited(tmp_path: Path) -> None:
    async def body(client: TestClient, store: UserStore) -> None:
        token = await _form_token(client)
        assert client.session.cookie_jar.filter_cookies(client.make_url("/login"))[LOGIN_CSRF_COOKIE].value == token
        for given in (None, "", "x" * 43, token[:-1]):
            status, text = await _login(client, "sup", PW, given)
            assert status == 403 and "Missing or wrong login form token (CSRF)" in text, given
        assert len(_audit(store, "refused csrf")) == 4
        assert all(e["user"] == "sup" and e["action"] == "login" for e in _audit(store, "refused csrf"))
        assert not [e for e in store.recent_audit(50) if e["outcome"] == "ok"]  # no session was made
        # a forged cross-site post carries no cookie: the field alone is not enough
        client.session.cookie_jar.clear()
        assert (await _login(client, "sup", PW, token))[0] == 403
        # the right pair logs in and retires the token
        token = await _form_token(client)
        status, _ = await _login(client, "sup", PW, token)
        assert status == 303
        assert LOGIN_CSRF_COOKIE not in client.session.cookie_jar.filter_cookies(client.make_url("/login"))

    _run(tmp_path, body)


def test_one_address_cannot_lock_every_account_nor_try_many_fast(tmp_path: Path) -> None:
    async def body(client: TestClient, store: UserStore) -> None:
        for i in range(6):
            store.add(f"user{i}", "operator", PW)
        token = await _form_token(client)
        # 4 failures allowed per address; accounts lock after 2: at most 2 accounts can be locked
        outcomes = [(await _login(client, f"user{i}", "wrong-password!", token))[0] for i in range(6) for _ in range(2)]
        assert outcomes[:4] == [401, 429, 401, 429]  # user0, user1: the second wrong password locks
        assert set(outcomes[4:]) == {429}
        throttled = _audit(store, "refused throttled")
        assert len(throttled) == 8 and all(e["detail"].startswith("address waits") for e in throttled)
        locked = [u.name for u, st in store.all_users() if st.locked_until is not None]
        assert locked == ["user0", "user1"]
        # even the right password is not checked while the address waits (and the account is not blamed)
        status, text = await _login(client, "user5", PW, token)
        assert status == 429 and "Too many failed logins from this computer; try again in" in text
        assert [st.failures for u, st in store.all_users() if u.name == "user5"] == [0]

    _run(tmp_path, body, console_login_address_max_failures=4, console_login_max_failures=2, console_login_address_window_s=3600)


def test_successful_logins_do_not_fill_the_address_bucket(tmp_path: Path) -> None:
    async def body(client: TestClient, store: UserStore) -> None:
        for _ in range(4):
            client.session.cookie_jar.clear()
            assert (await _login(client, "sup", PW, await _form_token(client)))[0] == 303

    _run(tmp_path, body, console_login_address_max_failures=1)


def test_console_audit_is_pruned_to_the_retention_never_below_six_months(tmp_path: Path) -> None:
    store = UserStore(tmp_path / "console.sqlite")
    try:
        now = time.time()
        for age_days in (1, MIN_AUDIT_LOG_DAYS - 1, MIN_AUDIT_LOG_DAYS + 1, 400):
            store.audit("sup", "login", None, "ok", f"{age_days} days ago")
        with sqlite3.connect(store.path) as db:
            for age_days in (1, MIN_AUDIT_LOG_DAYS - 1, MIN_AUDIT_LOG_DAYS + 1, 400):
                db.execute("UPDATE audit SET at = ? WHERE detail = ?", (now - age_days * 86_400.0, f"{age_days} days ago"))
        assert store.prune_audit(365, now) == 1
        assert store.prune_audit(MIN_AUDIT_LOG_DAYS, now) == 1
        assert sorted(e["detail"] for e in store.recent_audit()) == ["1 days ago", f"{MIN_AUDIT_LOG_DAYS - 1} days ago"]
        with pytest.raises(ValueError, match=f"at least {MIN_AUDIT_LOG_DAYS} days"):
            store.prune_audit(30, now)
        assert len(store.recent_audit()) == 2
    finally:
        store.close()
