"""The console's HTTP side (aiohttp): login, the three pages, their live event streams, the forms
behind the buttons and a small JSON API for per-user tokens. Thin: who may do what is in
``policy``, the checks and the sending in ``actions``, the view in ``state``.

Sessions are a random cookie (HttpOnly, SameSite=Strict, Secure when configured) whose hash is in
the user store; every form carries the session's CSRF token and a change without it is refused.
The login form, before any session, carries a token that must equal a cookie set with the form
(double submit), so another site cannot log a browser in under the attacker's account; failed
logins are limited per client address as well as per account (``policy.AddressState``).
Pages are rendered on the server with autoescaping; the event stream (``/events``) sends the
re-rendered live part of a page whenever the view changes, so no page needs a reload.
"""

from __future__ import annotations

import asyncio
import hmac
import math
import re
import secrets
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jinja2
import orjson
import structlog
from aiohttp import web

from ..http.auth import Refused, only_fields, read_json_object
from ..http.capped import HTTP_IDLE_TIMEOUT_S, CappedRunner
from ..settings import Settings
from . import policy
from .actions import Commands, Outcome
from .feed import Feed
from .state import ConsoleState
from .users import Session, User, UserStore

log = structlog.get_logger(__name__)
COOKIE = "leitstand_session"
#: the login form's pre-session CSRF token (double submit: this cookie and the hidden field agree)
LOGIN_CSRF_COOKIE = "leitstand_login_csrf"
LOGIN_CSRF = re.compile(r"[A-Za-z0-9_-]{43}\Z")
#: client addresses whose failed logins are remembered at most (a flood of addresses is pruned)
MAX_TRACKED_ADDRESSES = 10_000
HERE = Path(__file__).parent
PAGES = ("alarms", "signals", "silences")
DONE = {
    "acknowledge": "Acknowledged. The alarm books confirm it in a moment.",
    "resolve": "Resolved. The alarm books confirm it in a moment.",
    "approve": "Approval sent. The signal controller applies it with the next frame.",
    "reject": "Rejection sent.",
    "mode": "Mode change sent.",
    "silence": "Silence set. Alarms of this subject are still recorded, not delivered.",
    "lift": "Silence lifted.",
}
#: after a live update is sent, changes arriving within this long are sent as one: during an
#: alarm storm every change re-rendered the whole list per connection (a probe of stop 55: ~900 KB
#: a message with 480 open alarms); the first change after a quiet spell still goes out at once
COALESCE_S = 0.25
#: what a browser is given time to render per second of live list (bytes), and the longest it waits
HTML_BYTES_PER_S = 500_000
MAX_HTML_INTERVAL_S = 5.0
HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
}
STATE_KEY = web.AppKey("console", object)


class BadForm(Exception):
    """A form the console cannot read (a broken body, an unknown charset, a file where text was
    expected): answered 400 with the reason, never a 500."""


async def read_form(request: web.Request) -> Any:
    """The posted form, or ``BadForm``: aiohttp raises ``LookupError`` for an unknown charset and
    ``ValueError`` (or an HTTP 400 of its own) for a broken multipart body."""
    try:
        return await request.post()
    except (LookupError, ValueError, UnicodeDecodeError, web.HTTPException) as exc:
        raise BadForm(f"the form could not be read ({type(exc).__name__})") from None


def text(form: Any, name: str) -> str:
    """A form field as text ("" when absent); a file upload in its place is refused: it used to
    be written into the audit trail as the repr of the upload object."""
    value = form.get(name, "")
    if not isinstance(value, str):
        raise BadForm(f"{name} must be text, not a file")
    return value


def same_secret(given: str, expected: str) -> bool:
    """``hmac.compare_digest`` of two strings off the wire (a cookie or field with bytes that are
    not UTF-8 arrives with surrogates, which a plain ``encode()`` refused with a 500)."""
    return hmac.compare_digest(given.encode("utf-8", "surrogatepass"), expected.encode("utf-8", "surrogatepass"))


class Console:
    """Everything the handlers need; built once per process by ``make_app``."""

    def __init__(self, settings: Settings, store: UserStore, state: ConsoleState, feed: Feed) -> None:
        self.settings = settings
        self.store = store
        self.state = state
        self.feed = feed
        self.commands = Commands(state, feed, store)
        #: failed logins per client address (in memory: a restart forgets them; the account locks stay)
        self.addresses: dict[str, policy.AddressState] = {}
        self.env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(HERE / "templates"), autoescape=True, undefined=jinja2.ChainableUndefined
        )
        self.env.filters["age"] = _age
        self.env.filters["clock"] = _clock
        self.env.filters["domid"] = _domid

    # --- rendering ------------------------------------------------------------------------------

    def render(self, name: str, status: int = 200, **ctx: Any) -> web.Response:
        html = self.env.get_template(name).render(**ctx)
        return web.Response(text=html, status=status, content_type="text/html", headers={"Cache-Control": "no-store"})

    def live(self, page: str, session: Session) -> str:
        """The live part of ``page`` as this user sees it (buttons only where the role may act)."""
        try:
            return self.env.get_template(f"{page}_live.html").render(**self.context(page, session))
        except (jinja2.TemplateError, TypeError, ValueError, AttributeError) as exc:
            # a record of an unexpected shape on a topic must not take the page down with it
            log.error("console page could not be rendered", page=page, error=repr(exc))
            return '<p class="flash error" role="alert">Part of this page could not be shown; the console log has the details.</p>'

    def context(self, page: str, session: Session) -> dict[str, Any]:
        now = time.time()
        can = {a: policy.may(session.user.role, a) for a in policy.ACTIONS}
        return {"state": self.state, "user": session.user, "csrf": session.csrf, "can": can, "now": now, "page": page}

    def page(self, page: str, session: Session, request: web.Request, status: int = 200, error: str | None = None) -> web.Response:
        done = done_message(self.state, request.query.get("done", ""), request.query.get("alarm"))
        ctx = self.context(page, session)
        return self.render(
            "page.html", status, title=page.capitalize(), live=self.live(page, session), message=error or done, error=bool(error), **ctx
        )

    # --- sessions -------------------------------------------------------------------------------

    def session_of(self, request: web.Request, touch: bool = True) -> Session | str | None:
        """The request's live session; ``touch`` counts the request as use (an open live view
        re-checking its session does not: an unattended screen must still log out when idle)."""
        sid = request.cookies.get(COOKIE)
        if not sid:
            return None
        s = self.settings
        found = self.store.session(sid, time.time(), s.console_session_idle_s, s.console_session_max_s, touch=touch)
        if found == "expired":
            self.store.audit(None, "session", None, "refused expired", "session expired", request.remote)
        return found

    def login_page(self, request: web.Request, status: int = 200, message: str | None = None, ended: bool = False) -> web.Response:
        """The login form with the pre-session CSRF token: the cookie's if it has a sound one, else
        a new one set as a cookie (double submit: a cross-site form cannot read or set it)."""
        token = request.cookies.get(LOGIN_CSRF_COOKIE, "")
        fresh = not LOGIN_CSRF.match(token)
        token = secrets.token_urlsafe(32) if fresh else token
        # a duty screen whose session ended must not look calm: its title and message say so in red
        title = "SIGNED OUT, no alarms shown" if ended else "Log in"
        resp = self.render("login.html", status, title=title, message=message, csrf=token, error=ended)
        if fresh:
            resp.set_cookie(
                LOGIN_CSRF_COOKIE, token, httponly=True, samesite="Strict", secure=self.settings.console_secure_cookie, path="/login"
            )
        return resp

    def address_wait(self, remote: str, now: float) -> float:
        """Seconds this client address must wait before its next login attempt (0: go ahead)."""
        s = self.settings
        found = self.addresses.get(remote, policy.AddressState())
        return policy.address_wait(found, now, s.console_login_address_max_failures, s.console_login_address_window_s)

    def address_failed(self, remote: str, now: float) -> None:
        s = self.settings
        cap, window = s.console_login_address_max_failures, s.console_login_address_window_s
        if len(self.addresses) >= MAX_TRACKED_ADDRESSES:  # keep only addresses still holding failures
            self.addresses = {a: st for a, st in self.addresses.items() if policy.drained(st, now, cap, window) > 0}
        self.addresses[remote] = policy.after_address_failure(self.addresses.get(remote, policy.AddressState()), now, cap, window)

    async def handle_login(self, request: web.Request) -> web.Response:
        try:
            form = await read_form(request)
            name, password, given = text(form, "username").strip(), text(form, "password"), text(form, "csrf")
        except BadForm as bad:
            return self.login_page(request, 400, f"{bad}; log in again.")
        s, remote, now = self.settings, request.remote or "unknown", time.time()
        expected = request.cookies.get(LOGIN_CSRF_COOKIE, "")
        if not given or not expected or not same_secret(given, expected):
            self.store.audit(name[:64] or None, "login", None, "refused csrf", "missing or wrong login form token", request.remote)
            return self.login_page(request, 403, "Missing or wrong login form token (CSRF); the form was renewed, log in again.")
        if (wait := self.address_wait(remote, now)) > 0:
            self.store.audit(name[:64] or None, "login", None, "refused throttled", f"address waits {wait:.0f} s", request.remote)
            minutes = max(1, math.ceil(wait / 60))
            when = "1 minute" if minutes == 1 else f"{minutes} minutes"
            return self.login_page(request, 429, f"Too many failed logins from this computer; try again in {when}.")
        outcome, user = await asyncio.to_thread(
            self.store.login, name, password, now, s.console_login_max_failures, s.console_login_lockout_s
        )
        self.store.audit(name[:64] or None, "login", None, outcome if outcome == "ok" else f"refused {outcome}", "", request.remote)
        if outcome != "ok":
            self.address_failed(remote, now)
        if outcome == "locked":
            minutes = max(1, round(s.console_login_lockout_s / 60))
            msg = f"Account locked after {s.console_login_max_failures} wrong passwords; try again in {minutes} minutes or ask an admin."
            return self.login_page(request, 429, msg)
        if outcome != "ok" or user is None:
            return self.login_page(request, 401, "Wrong user name or password.")
        sid, _ = self.store.new_session(user, time.time())
        resp = web.HTTPSeeOther("/alarms")
        resp.set_cookie(COOKIE, sid, httponly=True, samesite="Strict", secure=s.console_secure_cookie, path="/")
        resp.del_cookie(LOGIN_CSRF_COOKIE, path="/login")  # the next login form gets a new token
        return resp

    # --- forms ----------------------------------------------------------------------------------

    async def form_session(self, request: web.Request) -> tuple[Session, Any] | web.Response:
        """The session and form of a change, or the refusal (expired session, missing CSRF token)."""
        session = self.session_of(request)
        if not isinstance(session, Session):
            return self.render(
                "error.html", 401, title="Session expired", message="Your session has expired or you are not logged in; log in again."
            )
        try:
            form = await read_form(request)
            given = text(form, "csrf")
        except BadForm as bad:
            return self.bad_form(bad)
        if not given or not same_secret(given, session.csrf):
            self.store.audit(session.user.name, request.path, None, "refused 403", "missing or wrong CSRF token", request.remote)
            return self.render(
                "error.html", 403, title="Refused", message="Missing or wrong form token (CSRF); reload the page and try again."
            )
        return session, form

    def bad_form(self, bad: BadForm) -> web.Response:
        return self.render("error.html", 400, title="Refused", message=f"{bad}; reload the page and try again.")

    def answer(
        self, request: web.Request, session: Session, page: str, outcome: Outcome, done: str, alarm: str | None = None
    ) -> web.Response:
        if outcome.status == 202:
            raise web.HTTPSeeOther(f"/{page}?done={done}" + (f"&alarm={quote(alarm, safe='')}" if alarm else ""))
        return self.page(page, session, request, status=outcome.status, error=outcome.message)


def _age(iso: Any, now: float) -> str:
    from datetime import datetime

    try:
        seconds = now - datetime.fromisoformat(str(iso)).timestamp()
    except ValueError:
        return "?"
    if seconds < 90:
        return f"{max(0, round(seconds))} s"
    if seconds < 5400:
        return f"{round(seconds / 60)} min"
    return f"{seconds / 3600:.1f} h"


def live_status(state: ConsoleState, version: int) -> dict[str, Any]:
    """What the status bar shows: unacknowledged critical alarms and the newest of them."""
    return {"critical": state.critical_unacknowledged(), "newest": newest_critical(state), "version": version}


def status_event(state: ConsoleState, version: int) -> bytes:
    """The server-sent ``status`` event the page's status bar reads."""
    return b"event: status\ndata: " + orjson.dumps(live_status(state, version)) + b"\n\n"


def html_interval(size: int) -> float:
    """Seconds before the next whole list goes to a browser, by the size of the last one: a
    browser parses and renders about a megabyte a second here, and with hundreds of open alarms
    (about 1.3 MB a list) a list on every change left the page, banner included, a minute behind
    during an escalation storm (a probe of stop 55). The banner's ``status`` event is not held."""
    return min(MAX_HTML_INTERVAL_S, size / HTML_BYTES_PER_S)


def done_message(state: ConsoleState, done: str, alarm_id: str | None) -> str | None:
    """What the page says after an action; for an alarm, which alarm it was (a list that moved
    just before a click can put the click on the neighbouring card, and "Acknowledged." alone
    would not let anyone notice). Only an alarm the console knows is named."""
    message = DONE.get(done)
    if message is None or alarm_id is None or done not in ("acknowledge", "resolve"):
        return message
    a = state.alarms.get(alarm_id) or state.closed.get(alarm_id)
    if a is None:
        return message
    what = f"{a.get('subject_type') or ''} {a.get('subject_id') or ''}: {a.get('message') or a.get('kind')}".strip()
    verb, rest = message.split(". ", 1)
    return f"{verb} {what} (raised {_clock(a.get('raised_at'))}, {alarm_id}). {rest}"


def newest_critical(state: ConsoleState) -> dict[str, str] | None:
    """The unacknowledged critical alarm raised last, for the status bar: its card may be far down
    a long list (oldest first), and a count alone does not say which alarm is new."""
    waiting = [a for a in state.unacknowledged() if a.get("severity") == "critical"]
    if not waiting:
        return None
    a = max(waiting, key=lambda a: str(a.get("raised_at") or ""))
    text = f"{a.get('subject_type') or ''} {a.get('subject_id') or ''}, {_clock(a.get('raised_at'))}: {a.get('message') or a.get('kind')}"
    return {"text": text.strip(), "anchor": "t-" + _domid(a.get("alarm_id"))}


def _domid(text: Any) -> str:
    """An HTML id for any alarm, plan or subject id (those may hold ``@ ~ / :``)."""
    import hashlib

    return "x" + hashlib.blake2b(str(text).encode(), digest_size=6).hexdigest()


def _clock(iso: Any) -> str:
    text = str(iso or "")
    return text[11:19] + " UTC" if len(text) >= 19 else text


def console_of(request: web.Request) -> Console:
    found = request.app[STATE_KEY]
    assert isinstance(found, Console)
    return found


async def show(request: web.Request) -> web.Response:
    console, page = console_of(request), request.match_info["page"]
    session = console.session_of(request)
    if session == "expired":
        raise web.HTTPSeeOther("/login?expired=1")
    if not isinstance(session, Session):
        raise web.HTTPSeeOther("/login")
    return console.page(page, session, request)


async def login_get(request: web.Request) -> web.Response:
    if "expired" in request.query:
        ended = "Your session has ended (unused too long, or logged out in another window)"
        return console_of(request).login_page(request, message=f"{ended}: this screen shows no alarms until you log in again.", ended=True)
    if "out" in request.query:
        return console_of(request).login_page(request, message="Logged out.")
    return console_of(request).login_page(request)


async def login_post(request: web.Request) -> web.Response:
    return await console_of(request).handle_login(request)


async def logout(request: web.Request) -> web.Response:
    console = console_of(request)
    got = await console.form_session(request)
    if isinstance(got, web.Response):
        return got
    console.store.end_session(request.cookies.get(COOKIE, ""))
    console.store.audit(got[0].user.name, "logout", None, "ok", "", request.remote)
    resp = web.HTTPSeeOther("/login?out=1")
    resp.del_cookie(COOKIE, path="/")
    return resp


async def alarm_form(request: web.Request) -> web.Response:
    console = console_of(request)
    got = await console.form_session(request)
    if isinstance(got, web.Response):
        return got
    session, form = got
    verb = "acknowledge" if request.match_info["verb"] == "ack" else "resolve"
    try:
        note = text(form, "note")
    except BadForm as bad:
        return console.bad_form(bad)
    outcome = await console.commands.alarm(session.user, request.match_info["aid"], verb, note, request.remote)
    return console.answer(request, session, "alarms", outcome, verb, alarm=request.match_info["aid"])


async def plan_form(request: web.Request) -> web.Response:
    console = console_of(request)
    got = await console.form_session(request)
    if isinstance(got, web.Response):
        return got
    session, form = got
    m = request.match_info
    try:
        reason = text(form, "reason")
    except BadForm as bad:
        return console.bad_form(bad)
    outcome = await console.commands.plan(session.user, m["iid"], m["pid"], m["verb"], reason, request.remote)
    return console.answer(request, session, "signals", outcome, m["verb"])


async def mode_form(request: web.Request) -> web.Response:
    console = console_of(request)
    got = await console.form_session(request)
    if isinstance(got, web.Response):
        return got
    session, form = got
    try:
        mode, reason = text(form, "mode"), text(form, "reason")
    except BadForm as bad:
        return console.bad_form(bad)
    outcome = await console.commands.mode(session.user, request.match_info["iid"], mode, reason, request.remote)
    return console.answer(request, session, "signals", outcome, "mode")


async def silence_form(request: web.Request) -> web.Response:
    console = console_of(request)
    got = await console.form_session(request)
    if isinstance(got, web.Response):
        return got
    session, form = got
    try:
        minutes, subject, reason = text(form, "minutes"), text(form, "subject"), text(form, "reason")
    except BadForm as bad:
        return console.bad_form(bad)
    outcome = await console.commands.silence(session.user, subject, minutes, reason, request.remote)
    return console.answer(request, session, "silences", outcome, "lift" if minutes.strip() == "0" else "silence")


async def events(request: web.Request) -> web.StreamResponse:
    """Server-sent events: the page's live part re-rendered after every change of the view."""
    console = console_of(request)
    page = request.query.get("page", "alarms")
    session = console.session_of(request)
    if not isinstance(session, Session) or page not in PAGES:
        return web.Response(status=401 if page in PAGES else 400, text="log in first" if page in PAGES else "unknown page")
    resp = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store", "X-Accel-Buffering": "no"})
    await resp.prepare(request)
    version = -1
    html_due = 0.0  # when the next whole list may go out (monotonic seconds)
    while True:
        if version != console.state.version:
            # the announcement first and small, on every change: it must not wait behind the list
            version = console.state.version
            await resp.write(status_event(console.state, version))
            while (wait := html_due - time.monotonic()) > 0:  # the list waits; changes meanwhile are announced
                if await console.feed.wait_change(version, wait):
                    version = console.state.version
                    await resp.write(status_event(console.state, version))
            version = console.state.version
            body = orjson.dumps({**live_status(console.state, version), "html": console.live(page, session)})
            await resp.write(b"data: " + body + b"\n\n")
            html_due = time.monotonic() + html_interval(len(body))
            await asyncio.sleep(COALESCE_S)  # changes in the meantime go out as one render
        elif not await console.feed.wait_change(version, 15.0):
            await resp.write(b": keep-alive\n\n")
        fresh = console.session_of(request, touch=False)
        if not isinstance(fresh, Session):
            await resp.write(b"event: expired\ndata: {}\n\n")
            return resp


async def ready(request: web.Request) -> web.Response:
    up = console_of(request).feed.caught_up.is_set()
    return web.json_response({"ready": up}, status=200 if up else 503)


async def root(request: web.Request) -> web.Response:
    raise web.HTTPSeeOther("/alarms")


# --- the JSON API for per-user tokens (machines acting as a person) -----------------------------


def api_user(request: web.Request) -> User:
    console = console_of(request)
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    user = console.store.user_for_token(token) if scheme.lower() == "bearer" and token else None
    if user is None:
        console.store.audit(None, f"api {request.path}", None, "refused 401", "missing or unknown API token", request.remote)
        raise Refused(
            401, "missing or unknown API token (leitstand users token NAME)", {"WWW-Authenticate": 'Bearer realm="leitstand-console"'}
        )
    return user


def _api_error(refused: Refused) -> web.Response:
    return web.json_response({"error": refused.error}, status=refused.status, headers=refused.headers or None)


async def api_alerts(request: web.Request) -> web.Response:
    try:
        api_user(request)
    except Refused as refused:
        return _api_error(refused)
    found = console_of(request).state.open_alarms()
    return web.json_response({"alerts": found, "count": len(found)}, dumps=lambda v: orjson.dumps(v).decode())


#: the fields each change takes: a reason sent with an acknowledgement was dropped silently
API_FIELDS = {"aid": ("note",), "pid": ("reason",), "silence": ("subject", "minutes", "reason")}


def api_text(name: str, value: Any) -> str:
    """A field's value as the command takes it: text, and for ``minutes`` also a whole number
    (an object used to be stored as its Python repr)."""
    if isinstance(value, str):
        return value
    if name == "minutes" and isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise Refused(400, f"{name} must be {'text or a whole number' if name == 'minutes' else 'text'}")


async def api_change(request: web.Request) -> web.Response:
    """POST /api/alerts/{aid}/{verb}, /api/signals/{iid}/plans/{pid}/{verb}, /api/silences."""
    console, m = console_of(request), request.match_info
    try:
        user = api_user(request)
        body = await read_json_object(request)
        fields = API_FIELDS["aid" if "aid" in m else "pid" if "pid" in m else "silence"]
        only_fields(body, fields)
        given = {k: api_text(k, v) for k, v in body.items() if v is not None}
    except Refused as refused:
        return _api_error(refused)
    if "aid" in m:
        verb = "acknowledge" if m["verb"] == "ack" else "resolve"
        outcome = await console.commands.alarm(user, m["aid"], verb, given.get("note", ""), request.remote)
    elif "pid" in m:
        outcome = await console.commands.plan(user, m["iid"], m["pid"], m["verb"], given.get("reason", ""), request.remote)
    else:
        outcome = await console.commands.silence(
            user, given.get("subject", ""), given.get("minutes", ""), given.get("reason", ""), request.remote
        )
    if outcome.status == 202:
        return web.json_response({"accepted": True, "by": user.name}, status=202)
    return web.json_response({"error": outcome.message}, status=outcome.status)


@web.middleware
async def security_headers(request: web.Request, handler: Any) -> web.StreamResponse:
    try:
        resp = await handler(request)
    except web.HTTPException as exc:
        exc.headers.update(HEADERS)
        raise
    resp.headers.update(HEADERS)
    return resp


def make_app(settings: Settings, store: UserStore, state: ConsoleState, feed: Feed) -> web.Application:
    app = web.Application(middlewares=[security_headers], client_max_size=64 * 1024)
    app[STATE_KEY] = Console(settings, store, state, feed)
    r = app.router
    r.add_get("/", root)
    r.add_get("/login", login_get)
    r.add_post("/login", login_post)
    r.add_post("/logout", logout)
    r.add_get("/ready", ready)
    r.add_get("/events", events)
    r.add_get(r"/{page:alarms|signals|silences}", show)
    r.add_post(r"/alarms/{aid}/{verb:ack|resolve}", alarm_form)
    r.add_post(r"/signals/{iid}/plans/{pid}/{verb:approve|reject}", plan_form)
    r.add_post("/signals/{iid}/mode", mode_form)
    r.add_post("/silences", silence_form)
    r.add_get("/api/alerts", api_alerts)
    r.add_post(r"/api/alerts/{aid}/{verb:ack|resolve}", api_change)
    r.add_post(r"/api/signals/{iid}/plans/{pid}/{verb:approve|reject}", api_change)
    r.add_post("/api/silences", api_change)
    r.add_static("/static", HERE / "static")
    return app


async def serve(settings: Settings, store: UserStore, host: str, port: int, ready_line: Any = None) -> None:
    """Run the console until cancelled: feed first (topics read from the beginning), then HTTP."""
    state = ConsoleState()
    feed = Feed(settings, state)
    try:
        await feed.start()
    except BaseException:
        await feed.stop()
        raise
    runner = CappedRunner(make_app(settings, store, state, feed), access_log=None, keepalive_timeout=HTTP_IDLE_TIMEOUT_S)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
        if ready_line is not None:
            ready_line(f"console listening on http://{host}:{port}/ (reading the topics from the beginning)")
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()
        await feed.stop()
