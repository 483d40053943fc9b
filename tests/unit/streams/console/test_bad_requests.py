"""The console against a careless or hostile client (stop 54's probe), over real HTTP (aiohttp's
test server) and a real SQLite store, no broker: every refusal below is made before a command
would reach the topics.

Before: bytes that are not UTF-8 in a token or cookie, an unknown form charset and a broken
multipart body were 500s; a file upload as a note was written to the audit trail as the repr of
the upload; the API took any field on any action (a resolve's ``reason`` was dropped silently)
and stored an object as its Python repr; an open live view kept its session alive past the idle
timeout; the accounts file was readable by every local user.
"""

from __future__ import annotations

import asyncio
import re
import stat
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aiohttp import FormData
from aiohttp.test_utils import TestClient, TestServer

from streams.console.feed import Feed
from streams.console.state import ConsoleState
from streams.console.users import Session, UserStore
from streams.console.web import make_app
from streams.settings import Settings

PW = "correct horse battery"


def _run(tmp_path: Path, body: Callable[[TestClient, UserStore, str], Awaitable[None]]) -> None:
    s = Settings(_env_file=None, state_dir=tmp_path)
    store = UserStore(tmp_path / "console.sqlite")
    store.add("sup", "pool-supervisor", PW)
    token = store.new_token("sup", "probe")
    state = ConsoleState()

    async def main() -> None:
        async with TestClient(TestServer(make_app(s, store, state, Feed(s, state)))) as client:
            await body(client, store, token)

    try:
        asyncio.run(main())
    finally:
        store.close()


async def _raw(client: TestClient, request: bytes) -> int:
    """The status of a request written byte for byte (a client library would refuse the bytes)."""
    reader, writer = await asyncio.open_connection(client.host, client.port)
    try:
        writer.write(request)
        await writer.drain()
        line = await reader.readline()
        return int(line.split()[1])
    finally:
        writer.close()


async def _log_in(client: TestClient) -> str:
    """Log in as sup; the page's form token."""
    page = await client.get("/login")
    found = re.search(r'name="csrf" value="([^"]+)"', await page.text())
    assert found is not None
    resp = await client.post("/login", data={"username": "sup", "password": PW, "csrf": found.group(1)}, allow_redirects=False)
    assert resp.status == 303
    alarms = await client.get("/alarms")
    csrf = re.search(r'name="csrf" value="([^"]+)"', await alarms.text())
    assert csrf is not None
    return csrf.group(1)


def test_bytes_that_are_not_utf8_are_refused_not_a_server_error(tmp_path: Path) -> None:
    async def body(client: TestClient, store: UserStore, token: str) -> None:
        head = b"Host: x\r\nConnection: close\r\n"
        assert await _raw(client, b"GET /api/alerts HTTP/1.1\r\n" + head + b"Authorization: Bearer lst_\xe9\xff\r\n\r\n") == 401
        assert await _raw(client, b"GET /alarms HTTP/1.1\r\n" + head + b"Cookie: leitstand_session=\xe9\xff\r\n\r\n") in (302, 303)
        form = b"username=sup&password=x&csrf=y"
        login = b"POST /login HTTP/1.1\r\n" + head + b"Cookie: leitstand_login_csrf=\xe9\xff\r\n"
        login += b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: %d\r\n\r\n" % len(form) + form
        assert await _raw(client, login) == 403
        assert [e["outcome"] for e in store.recent_audit(10)][:1] == ["refused csrf"]

    _run(tmp_path, body)


def test_unreadable_forms_are_a_400(tmp_path: Path) -> None:
    async def body(client: TestClient, store: UserStore, token: str) -> None:
        bad_charset = await client.post(
            "/login", data=b"username=sup", headers={"Content-Type": "application/x-www-form-urlencoded; charset=nonsense"}
        )
        assert bad_charset.status == 400 and "could not be read" in await bad_charset.text()
        broken = await client.post(
            "/login", data=b"--b\r\nContent-Disposition: form-da", headers={"Content-Type": "multipart/form-data; boundary=b"}
        )
        assert broken.status == 400
        csrf = await _log_in(client)
        upload = FormData()
        upload.add_field("csrf", csrf)
        upload.add_field("note", b"secret file", filename="f.txt", content_type="text/plain")
        resp = await client.post("/alarms/k@P1~000000000001/ack", data=upload)
        assert resp.status == 400 and "note must be text, not a file" in await resp.text()
        assert not [e for e in store.recent_audit(50) if "FileField" in str(e)]

    _run(tmp_path, body)


def test_the_api_takes_only_the_fields_of_the_action_as_text(tmp_path: Path) -> None:
    async def body(client: TestClient, store: UserStore, token: str) -> None:
        auth = {"Authorization": f"Bearer {token}"}
        cases: list[tuple[str, dict[str, Any], str]] = [
            ("/api/alerts/k@P1~000000000001/resolve", {"reason": "false alarm"}, "unknown field(s) 'reason'; allowed: note"),
            ("/api/alerts/k@P1~000000000001/ack", {"note": {"a": "b"}}, "note must be text"),
            ("/api/signals/K1/plans/K1@1~ab/approve", {"note": "ok"}, "allowed: reason"),
            ("/api/silences", {"subject": "P1", "minutes": 1.5}, "minutes must be text or a whole number"),
            ("/api/silences", {"subject": "P1", "minutes": True}, "minutes must be text or a whole number"),
        ]
        for path, payload, error in cases:
            resp = await client.post(path, json=payload, headers=auth)
            assert resp.status == 400 and error in (await resp.json())["error"], (path, payload)

    _run(tmp_path, body)


def test_a_session_is_not_kept_alive_by_a_check_that_does_not_touch_it(tmp_path: Path) -> None:
    """The live view re-checks its session without touching it: an unattended screen with an
    open event stream logs out after the idle time, as one without does."""
    store = UserStore(tmp_path / "console.sqlite")
    try:
        user = store.add("sup", "pool-supervisor", PW)
        sid, _ = store.new_session(user, 0.0)
        assert isinstance(store.session(sid, 5.0, idle_s=8.0, max_s=100.0, touch=False), Session)
        assert store.session(sid, 9.0, idle_s=8.0, max_s=100.0, touch=False) == "expired"
        sid, _ = store.new_session(user, 0.0)
        assert isinstance(store.session(sid, 5.0, idle_s=8.0, max_s=100.0), Session)  # a page load
        assert isinstance(store.session(sid, 9.0, idle_s=8.0, max_s=100.0), Session)
    finally:
        store.close()


def test_the_accounts_file_is_its_owners_only(tmp_path: Path) -> None:
    made = tmp_path / "new.sqlite"
    UserStore(made).close()
    old = tmp_path / "old.sqlite"
    old.touch(mode=0o644)
    old.chmod(0o644)
    UserStore(old).close()
    for f in (made, old, *tmp_path.glob("*.sqlite-*")):
        assert stat.S_IMODE(f.stat().st_mode) == 0o600, f
