"""The operator console in a real browser (Playwright driving Debian's Chromium, headless), against a
real broker, a worker and the console process (tests/browser/conftest.py), both brokers.

Scenarios of issue 16: a supervisor sees a critical alarm appear without reloading within 2 s of the
camera event and acknowledges it (the audit record names her); an operator approves a pending plan
and it drives; a planner has no buttons and is refused (403); a silenced pool's alarm is recorded
but not delivered; the bad-input list; axe-core finds no serious violation on any page.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from tests.paths import EXAMPLE_INTERSECTION

from .conftest import PASSWORDS, Stack

# One broker: the pages are what is tested here, and the console's Kafka client is the one the
# integration tests run on both brokers; the suite must stay under 30 minutes.
pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.parametrize("broker", ["tansu"], indirect=True)]

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}
COUNTS = {"N_in": 1, "S_in": 1, "N_left": 0, "S_left": 1, "E_in": 1, "W_in": 1}


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, tz=timezone.utc).isoformat()


def camera_event(pool: str, event_id: str) -> dict[str, Any]:
    return {
        "schema_version": 1,
        "event_time": _iso(time.time()),
        "pool_id": pool,
        "event_id": event_id,
        "kind": "motionless_swimmer",
        "zone": "deep-end",
        "duration_s": 14.0,
        "confidence": 0.94,
    }


def frames(t0: float, rng: range, iid: str = "K101") -> list[dict[str, Any]]:
    return [
        {
            "schema_version": 1,
            "event_time": _iso(t0 + 5 * i),
            "intersection_id": iid,
            "interval_s": 5.0,
            "detectors": [{"detector_id": k, "count": v, "occupancy": 0.1} for k, v in COUNTS.items()],
        }
        for i in rng
    ]


@pytest.fixture
def context(chromium: Any) -> Iterator[Any]:
    # bypass_csp: axe-core is injected as an inline script, which the console's CSP forbids
    ctx = chromium.new_context(viewport=DESKTOP, bypass_csp=True)
    ctx.set_default_timeout(20_000)
    yield ctx
    ctx.close()


def login(page: Any, stack: Stack, name: str, password: str | None = None) -> None:
    page.goto(f"{stack.base}/login")
    page.fill("#username", name)
    page.fill("#password", password or PASSWORDS[name])
    page.click("button[type=submit]")
    page.wait_for_url(f"{stack.base}/alarms*")
    page.wait_for_selector("body[data-stream=open]")


def csrf(page: Any) -> str:
    return str(page.get_attribute("input[name=csrf]", "value"))


def axe_serious(page: Any, axe_js: Path) -> list[str]:
    page.add_script_tag(path=str(axe_js))
    result = page.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
    return [f"{v['id']}: {v['help']} ({len(v['nodes'])})" for v in result["violations"] if v["impact"] in ("serious", "critical")]


def audited(stack: Stack, user: str, outcome_prefix: str) -> list[dict[str, Any]]:
    return [e for e in stack.store.recent_audit(200) if e["user"] == user and e["outcome"].startswith(outcome_prefix)]


def test_supervisor_sees_critical_alarm_live_and_acknowledges(stack: Stack, context: Any, axe_js: Path) -> None:
    page = context.new_page()
    page.goto(f"{stack.base}/login")
    page.screenshot(path=str(stack.shots / "login.png"))
    assert not axe_serious(page, axe_js)
    login(page, stack, "sup")
    stack.send("pool.supervision", [camera_event("P0", "warm-up")], "pool_id")  # consumer groups settled
    page.wait_for_selector('#open-list [data-alarm-id^="motionless_swimmer@P0"]', timeout=60_000)

    sent = time.monotonic()
    stack.send("pool.supervision", [camera_event("P1", "ev-live")], "pool_id")
    card = page.wait_for_selector('#open-list [data-alarm-id^="motionless_swimmer@P1"]', timeout=30_000)
    seen_after = time.monotonic() - sent
    assert seen_after <= 2.0, f"the critical alarm appeared {seen_after:.2f} s after the camera event (no reload)"
    assert "ev-live" in card.inner_text() and "deep-end" in card.inner_text()  # evidence shown
    # it announces itself: banner and a flashing title while critical alarms are unacknowledged
    page.wait_for_function("document.title.includes('CRITICAL')", timeout=5_000)
    assert page.is_visible("#announce") and "critical" in page.inner_text("#announce")
    # the status bar names the newest and links to its card (it may be far down an oldest-first list)
    assert "P1" in page.inner_text("#announce a") and page.get_attribute("#announce a", "href").startswith("#t-")
    assert page.is_visible(page.get_attribute("#announce a", "href"))
    page.screenshot(path=str(stack.shots / "alarms-critical.png"), full_page=True)
    assert not axe_serious(page, axe_js)

    aid = str(card.get_attribute("data-alarm-id"))
    for sel in (f'[data-alarm-id="{aid}"]', '#open-list [data-alarm-id^="motionless_swimmer@P0"]'):
        page.fill(f"{sel} input[name=note]", "lifeguard on the way")
        with page.expect_navigation(url="**/alarms?done=acknowledge*"):  # each one: the URL matches after the first
            page.click(f"{sel} button:has-text('Acknowledge')")
    page.wait_for_selector(f'#acked-list [data-alarm-id="{aid}"] .acked-by:has-text("sup")', timeout=20_000)
    assert page.query_selector(f'#open-list [data-alarm-id="{aid}"]') is None
    # P0's acknowledgement goes through the broker and the worker too: it may land after P1's.
    # Twice in CI (before 5265d98, db1a1b0) it never did: the page swallowed the click (see the
    # next test). Should it fail again, the failure says where P0's acknowledgement stopped
    try:
        page.wait_for_selector('#acked-list [data-alarm-id^="motionless_swimmer@P0"] .acked-by:has-text("sup")', timeout=20_000)
    except Exception as exc:  # noqa: BLE001 - playwright's TimeoutError: report what the topics hold, then fail
        trail = {
            t: [r for r in stack.records(t) if "P0" in str(r.get("alert_id") or r.get("alarm_id") or r.get("subject_id"))]
            for t in ("alerts.acks", "alerts.lifecycle", "alerts")
        }
        dead = [d for d in stack.records("deadletter") if "alerts" in str(d.get("source_topic"))]

        def about_p0(name: str) -> list[str]:
            text = (stack.log_dir / name).read_text(errors="replace") if (stack.log_dir / name).exists() else ""
            return [line for line in text.splitlines() if "P0" in line or "unknown alarm" in line][-20:]

        logs = {name: about_p0(name) for name in ("worker.log", "console.log")}
        raise AssertionError(f"P0's acknowledgement not shown: {exc}; topics: {trail}; dead letters: {dead}; logs: {logs}") from None
    page.wait_for_selector("body[data-critical='0']", timeout=10_000)  # announcement over
    assert "critical" not in (page.get_attribute("#announce", "class") or "") and "CRITICAL" not in page.title()
    assert "No critical alarm" in page.inner_text("#announce")  # the bar stays, calm: nothing below it moves
    acks = stack.records("alerts.acks")
    assert [(a["by"], a["note"]) for a in acks if a["alert_id"] == aid] == [("sup", "lifeguard on the way")]
    alerts = stack.wait_records("alerts", lambda rs: any(r["alarm_id"] == aid and r["state"] == "acknowledged" for r in rs), 20)
    assert [r["acknowledged_by"] for r in alerts if r["alarm_id"] == aid and r["state"] == "acknowledged"] == ["sup"]

    phone = context.new_page()
    phone.set_viewport_size(PHONE)
    phone.goto(f"{stack.base}/alarms")
    phone.screenshot(path=str(stack.shots / "alarms-phone.png"), full_page=True)
    assert phone.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1"), "no sideways scrolling on a phone"


def _press(page: Any, selector: str, hold_ms: int = 150) -> None:
    """Press and release the pointer on ``selector`` ``hold_ms`` apart, as a person does."""
    target = page.query_selector(selector)
    target.scroll_into_view_if_needed()
    box = target.bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.down()
    page.wait_for_timeout(hold_ms)
    page.mouse.up()


def _raise(page: Any, stack: Stack, pool: str, event_id: str) -> str:
    stack.send("pool.supervision", [camera_event(pool, event_id)], "pool_id")
    card = page.wait_for_selector(f'#open-list [data-alarm-id^="motionless_swimmer@{pool}"]', timeout=30_000)
    return str(card.get_attribute("data-alarm-id"))


def _version(page: Any) -> int:
    return int(page.get_attribute("body", "data-version") or 0)


def test_a_live_update_does_not_swallow_a_click_or_a_typed_note(stack: Stack, context: Any) -> None:
    """A supervisor types a note, an alarm arrives meanwhile, and she clicks Acknowledge as a
    person does (the button held down ~150 ms). The update held while she typed used to be
    applied the moment focus left the note field, i.e. between pressing and releasing the
    button: the list was re-rendered under the pointer, the release landed on a new button, no
    click, no acknowledgement, and the note gone (how two clean-clone CI runs lost P0's
    acknowledgement in the test above; 1 of 3 runs beside stress-ng reproduced it)."""
    page = context.new_page()
    login(page, stack, "sup")
    aid = _raise(page, stack, "P5", "ev-click")
    note = f'[data-alarm-id="{aid}"] input[name=note]'
    page.fill(note, "pulled out, breathing")
    version = _version(page)
    stack.send("pool.supervision", [camera_event("P6", "ev-meanwhile")], "pool_id")
    while _version(page) == version:  # she goes on typing until the update arrives
        page.type(note, ".")
        page.wait_for_timeout(300)
    assert page.query_selector('[data-alarm-id^="motionless_swimmer@P6"]') is None  # held: she is typing
    assert page.is_visible("#held") and "waiting" in page.inner_text("#held")  # and the page says so
    typed = page.input_value(note)
    with page.expect_navigation(url="**/alarms?done=acknowledge*", timeout=10_000):
        _press(page, f'[data-alarm-id="{aid}"] button:has-text("Acknowledge")')
    acks = stack.wait_records("alerts.acks", lambda rs: any(a["alert_id"] == aid for a in rs), 20)
    assert [(a["by"], a["note"]) for a in acks if a["alert_id"] == aid] == [("sup", typed)]
    assert "P5" in page.inner_text("p.flash") and aid in page.inner_text("p.flash")  # the confirmation names the alarm
    page.wait_for_selector('#open-list [data-alarm-id^="motionless_swimmer@P6"]', timeout=20_000)  # and the update is shown
    assert page.is_hidden("#held")


def test_the_list_does_not_move_under_a_pointer_or_a_key_press(stack: Stack, context: Any, chromium: Any) -> None:
    """Three ways the re-rendered list misdirected or lost an acknowledgement (found by a probe in a
    real browser, stop 55): a card above the one aimed at is removed and the press lands on the
    card below; Space held on a focused Acknowledge across an update submits nothing; a note field
    left focused froze the list for good."""
    page = context.new_page()
    login(page, stack, "sup")
    colleague = chromium.new_context(viewport=DESKTOP)  # her own browser: her own session cookie
    other = colleague.new_page()
    login(other, stack, "op1")
    first, second, third = (_raise(page, stack, p, f"ev-{p}") for p in ("Q1", "Q2", "Q3"))
    # 1. she rests the pointer on Q2's button; meanwhile a colleague acknowledges Q1 (above it)
    button = f'[data-alarm-id="{second}"] button:has-text("Acknowledge")'
    page.query_selector(button).scroll_into_view_if_needed()
    box = page.query_selector(button).bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    version = _version(page)
    other.click(f'[data-alarm-id="{first}"] button:has-text("Acknowledge")')
    page.wait_for_function(f"Number(document.body.getAttribute('data-version')) > {version}", timeout=30_000)
    with page.expect_navigation(url="**/alarms?done=acknowledge*", timeout=10_000):
        page.mouse.down()
        page.wait_for_timeout(150)
        page.mouse.up()
    acks = stack.wait_records("alerts.acks", lambda rs: any(a["alert_id"] in (second, third) and a["by"] == "sup" for a in rs), 20)
    assert [a["alert_id"] for a in acks if a["by"] == "sup" and a["alert_id"] in (second, third)] == [second]
    # 2. Space held on the focused button while an update is applied still acknowledges
    page.wait_for_selector(f'#open-list [data-alarm-id="{third}"]')
    page.focus(f'[data-alarm-id="{third}"] button:has-text("Acknowledge")')
    version = _version(page)
    page.keyboard.down(" ")
    stack.send("pool.supervision", [camera_event("Q4", "ev-Q4")], "pool_id")
    page.wait_for_function(f"Number(document.body.getAttribute('data-version')) > {version}", timeout=30_000)
    with page.expect_navigation(url="**/alarms?done=acknowledge*", timeout=10_000):
        page.keyboard.up(" ")
    assert third in page.inner_text("p.flash")
    # 3. a note field left focused holds updates only while she types (5 s), then they are shown, the note kept
    fourth = str(page.wait_for_selector('#open-list [data-alarm-id^="motionless_swimmer@Q4"]').get_attribute("data-alarm-id"))
    page.fill(f'[data-alarm-id="{fourth}"] input[name=note]', "on my way")
    stack.send("pool.supervision", [camera_event("Q5", "ev-Q5")], "pool_id")
    page.wait_for_selector('#open-list [data-alarm-id^="motionless_swimmer@Q5"]', timeout=30_000)
    assert page.input_value(f'[data-alarm-id="{fourth}"] input[name=note]') == "on my way"
    assert page.evaluate("document.activeElement.name") == "note"
    colleague.close()


def test_operator_approves_a_plan_and_it_drives(stack: Stack, context: Any, axe_js: Path) -> None:
    t0 = time.time() - 600.0
    config = {
        "schema_version": 1,
        "event_time": _iso(t0),
        "intersection_id": "K101",
        "model": json.loads(EXAMPLE_INTERSECTION.read_text()),
        "controller": "webster",
        "mode": "advisory",
        "session": "browser",
        "approval_timeout_s": 60.0,
        "params": {"recompute_every_cycles": 1},
    }
    stack.send("signals.config", [config], "intersection_id")
    stack.send("sensors.intersection", frames(t0, range(25)), "intersection_id")
    page = context.new_page()
    login(page, stack, "op1")
    page.goto(f"{stack.base}/signals")
    proposal = page.wait_for_selector("article.proposal", timeout=60_000)
    pid = str(proposal.get_attribute("data-plan-id"))
    assert "Expires in" in proposal.inner_text() and page.is_visible("article.proposal button:has-text('Approve')")
    page.screenshot(path=str(stack.shots / "signals-pending.png"), full_page=True)
    assert not axe_serious(page, axe_js)
    page.fill("article.proposal form[action$='/approve'] input[name=reason]", "stadium traffic")
    page.click("article.proposal button:has-text('Approve')")
    page.wait_for_url("**/signals?done=approve")
    plans = stack.wait_records("signals.plans", lambda rs: any(p["status"] == "approved" for p in rs), 30)
    assert [p["plan_id"] for p in plans if p["status"] == "approved"] == [pid]
    approvals = stack.records("signals.approvals")
    assert [(a["actor"], a["plan_id"], a["reason"]) for a in approvals] == [("op1", pid, "stadium traffic")]
    # the Kafka audit trail (signals.audit, written by the control worker) names her too
    audit = stack.wait_records("signals.audit", lambda rs: any(a["action"] == "plan_approved" for a in rs), 20)
    assert [a["actor"] for a in audit if a["action"] == "plan_approved"] == ["op1"]

    # it drives: the next frames are answered with the approved plan, active
    stack.send("sensors.intersection", frames(t0, range(25, 56)), "intersection_id")
    plans = stack.wait_records("signals.plans", lambda rs: sum(p["status"] == "expired" for p in rs) >= 1, 40)
    assert any(p["status"] == "active" and p["plan_id"] == pid for p in plans)
    page.wait_for_selector("ol.decisions li:has-text('plan approved by op1')", timeout=20_000)
    page.screenshot(path=str(stack.shots / "signals-decisions.png"), full_page=True)

    # the second proposal expired (nobody approved it): approving it now is refused with a clear message
    expired = next(p["plan_id"] for p in plans if p["status"] == "expired")
    page.wait_for_function("document.querySelectorAll('article.proposal').length === 0", timeout=20_000)
    answer = page.request.post(
        f"{stack.base}/signals/K101/plans/{quote(expired, safe='')}/approve", form={"csrf": csrf(page), "reason": "late"}
    )
    assert answer.status == 409 and "expired" in answer.text()
    assert any("expired" in e["detail"] for e in audited(stack, "op1", "refused 409"))
    assert [a["plan_id"] for a in stack.records("signals.approvals")] == [pid]  # nothing sent


def test_planner_sees_but_cannot_act(stack: Stack, context: Any) -> None:
    stack.send("pool.supervision", [camera_event("P2", "ev-planner")], "pool_id")
    page = context.new_page()
    login(page, stack, "plan")
    card = page.wait_for_selector('#open-list [data-alarm-id^="motionless_swimmer@P2"]', timeout=30_000)
    aid = str(card.get_attribute("data-alarm-id"))
    assert page.query_selector("button:has-text('Acknowledge')") is None and page.query_selector("button:has-text('Resolve')") is None
    page.goto(f"{stack.base}/signals")
    assert page.query_selector("button:has-text('Approve')") is None and page.query_selector("select[name=mode]") is None
    page.goto(f"{stack.base}/silences")
    assert page.query_selector("form[action='/silences']") is None
    page.screenshot(path=str(stack.shots / "silences-planner.png"), full_page=True)
    # the buttons are hidden as a courtesy; the server refuses the forged request itself
    answer = page.request.post(f"{stack.base}/alarms/{quote(aid, safe='')}/ack", form={"csrf": csrf(page), "note": "forged"})
    assert answer.status == 403 and "role planner may not acknowledge alarms" in answer.text()
    assert audited(stack, "plan", "refused 403")
    assert all(a["alert_id"] != aid for a in stack.records("alerts.acks"))


def test_silenced_pool_alarm_is_recorded_not_delivered(stack: Stack, context: Any, axe_js: Path) -> None:
    page = context.new_page()
    login(page, stack, "sup")
    page.goto(f"{stack.base}/silences")
    page.fill("#subject", "P9")
    page.fill("#minutes", "120")
    page.fill("#reason", "closed for cleaning")
    page.click("button:has-text('Set silence')")
    page.wait_for_url("**/silences?done=silence")
    page.wait_for_selector('article.silence[data-subject="P9"]:has-text("closed for cleaning")', timeout=20_000)
    page.screenshot(path=str(stack.shots / "silences.png"), full_page=True)
    assert not axe_serious(page, axe_js)
    [silence] = [s for s in stack.records("alerts.silences") if s["subject_id"] == "P9"]
    assert silence["by"] == "sup" and silence["reason"] == "closed for cleaning"

    stack.send("pool.supervision", [camera_event("P9", "ev-silenced"), camera_event("P10", "ev-loud")], "pool_id")
    page.goto(f"{stack.base}/alarms")
    card = page.wait_for_selector('#open-list [data-alarm-id^="motionless_swimmer@P9"]', timeout=30_000)  # recorded
    assert "Silenced until" in card.inner_text()
    # the unsilenced pool's alarm is delivered; by then the silenced one would have been too
    deliveries = stack.wait_records("alerts.deliveries", lambda rs: any("@P10~" in d["alarm_id"] for d in rs), 30)
    time.sleep(1.0)
    deliveries = stack.records("alerts.deliveries")
    assert not [d for d in deliveries if "@P9~" in d["alarm_id"] and d["outcome"] == "delivered"]
    assert not [r for r in stack.receiver.received if b"@P9~" in r["body"]]


def _until_accepted(page: Any, url: str, form: dict[str, str], timeout_s: float = 60.0) -> None:
    """Post a console form until the console's view knows its target (it reads the topics)."""
    deadline = time.monotonic() + timeout_s
    while (answer := page.request.post(url, form=form)).status != 200:  # 303 to the page on success
        assert answer.status == 404 and time.monotonic() < deadline, (answer.status, answer.text()[:300])
        time.sleep(0.5)


def test_every_command_the_console_sends_names_the_logged_in_user(stack: Stack, context: Any) -> None:
    """Issue 16: the Kafka audit trail (alerts.acks, signals.approvals -> signals.audit,
    alerts.silences) names the logged-in user on every command; the console's own audit agrees."""
    t0 = time.time() - 600.0
    model = {**json.loads(EXAMPLE_INTERSECTION.read_text()), "id": "K102"}
    config = {"schema_version": 1, "event_time": _iso(t0), "intersection_id": "K102", "model": model, "controller": "webster"}
    stack.send("signals.config", [{**config, "mode": "advisory", "session": "browser"}], "intersection_id")
    stack.send("sensors.intersection", frames(t0, range(3), iid="K102"), "intersection_id")  # a drive: the console knows K102
    stack.send("pool.supervision", [camera_event("P11", "ev-resolve")], "pool_id")
    page = context.new_page()
    login(page, stack, "admin")
    card = page.wait_for_selector('#open-list [data-alarm-id^="motionless_swimmer@P11"]', timeout=30_000)
    aid = str(card.get_attribute("data-alarm-id"))
    token = csrf(page)
    _until_accepted(page, f"{stack.base}/alarms/{quote(aid, safe='')}/resolve", {"csrf": token, "note": "drill"})
    _until_accepted(page, f"{stack.base}/signals/K102/mode", {"csrf": token, "mode": "off", "reason": "roadworks"})
    alerts = stack.wait_records("alerts", lambda rs: any(r["alarm_id"] == aid and r["state"] == "resolved" for r in rs), 30)
    assert [r["resolved_by"] for r in alerts if r["alarm_id"] == aid and r["state"] == "resolved"] == ["admin"]
    audit = stack.wait_records(
        "signals.audit", lambda rs: any(a["action"] == "mode_changed" and a["intersection_id"] == "K102" for a in rs), 30
    )
    assert [a["actor"] for a in audit if a["action"] == "mode_changed" and a["intersection_id"] == "K102"] == ["admin"]

    # every command on the command topics came from the console (this module sends none itself)
    commands = [
        *[a["by"] for a in stack.records("alerts.acks")],
        *[a["actor"] for a in stack.records("signals.approvals")],
        *[s["by"] for s in stack.records("alerts.silences")],
    ]
    assert commands and set(commands) <= {"sup", "op1", "admin"}, commands
    accepted = [e for e in stack.store.recent_audit(1000) if e["outcome"] == "accepted"]
    assert sorted(e["user"] for e in accepted) == sorted(commands)


def test_bad_input_is_refused_with_a_message_and_audited(stack: Stack, context: Any) -> None:
    page = context.new_page()
    # wrong passwords lock the account; then even the right one is refused
    for _ in range(5):
        page.goto(f"{stack.base}/login")
        page.fill("#username", "victim")
        page.fill("#password", "not-the-password")
        page.click("button[type=submit]")
    assert "Account locked after 5 wrong passwords" in page.inner_text("main")
    page.fill("#username", "victim")
    page.fill("#password", "victim-pass-123")
    page.click("button[type=submit]")
    assert "Account locked" in page.inner_text("main") and "/login" in page.url
    assert len(audited(stack, "victim", "refused")) >= 6

    login(page, stack, "sup")
    token = csrf(page)
    # missing CSRF token
    answer = page.request.post(f"{stack.base}/alarms/{quote('x@P1~000000000000', safe='')}/ack", form={"note": "x"})
    assert answer.status == 403 and "CSRF" in answer.text()
    # an alarm that does not exist
    answer = page.request.post(f"{stack.base}/alarms/{quote('nothing@P1~000000000000', safe='')}/ack", form={"csrf": token})
    assert answer.status == 404 and "no open alarm" in answer.text()
    # another role's action: a pool supervisor approving a signal plan
    answer = page.request.post(f"{stack.base}/signals/K101/plans/K101@1~x/approve", form={"csrf": token})
    assert answer.status == 403 and "may not approve" in answer.text()
    # a silence without a reason
    answer = page.request.post(f"{stack.base}/silences", form={"csrf": token, "subject": "P3", "minutes": "10", "reason": " "})
    assert answer.status == 400 and "needs a reason" in answer.text()
    refusals = audited(stack, "sup", "refused")
    assert {e["outcome"] for e in refusals} >= {"refused 403", "refused 404", "refused 400"}
    page.screenshot(path=str(stack.shots / "refused.png"), full_page=True)

    # an expired session: the page sends to the login with a message, a change is refused
    with sqlite3.connect(stack.store.path) as db:
        db.execute("UPDATE sessions SET last_seen = last_seen - 100000, created = created - 100000 WHERE user = 'sup'")
    page.goto(f"{stack.base}/alarms")
    assert "/login?expired=1" in page.url and "shows no alarms until you log in again" in page.inner_text("main")
    assert "SIGNED OUT" in page.title()  # a duty screen that logged itself out does not look calm
    answer = page.request.post(f"{stack.base}/silences", form={"csrf": token, "subject": "P3", "minutes": "10", "reason": "x"})
    assert answer.status == 401 and "session has expired" in answer.text()
    assert any(e["outcome"] == "refused expired" for e in stack.store.recent_audit(50))
    assert all(s["subject_id"] != "P3" for s in stack.records("alerts.silences"))


def test_per_user_api_token_acts_as_its_user(stack: Stack) -> None:
    import urllib.error
    import urllib.request

    token = stack.store.new_token("op1", "scada")
    stack.send("pool.supervision", [camera_event("P4", "ev-api")], "pool_id")

    def call(method: str, path: str, bearer: str | None, body: dict[str, Any] | None = None) -> tuple[int, dict[str, Any]]:
        req = urllib.request.Request(f"{stack.base}{path}", method=method, data=json.dumps(body).encode() if body is not None else None)
        if bearer:
            req.add_header("Authorization", f"Bearer {bearer}")
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())

    deadline, aid = time.monotonic() + 30, None
    while aid is None and time.monotonic() < deadline:
        status, listed = call("GET", "/api/alerts", token)
        aid = next((a["alarm_id"] for a in listed["alerts"] if "@P4~" in a["alarm_id"]), None)
        time.sleep(0.3)
    assert aid is not None
    assert call("POST", f"/api/alerts/{quote(aid, safe='')}/ack", None, {})[0] == 401
    assert call("POST", f"/api/alerts/{quote(aid, safe='')}/ack", token + "x", {})[0] == 401
    assert call("POST", f"/api/alerts/{quote(aid, safe='')}/ack", token, {"nte": "typo"})[0] == 400
    status, answer = call("POST", f"/api/alerts/{quote(aid, safe='')}/ack", token, {"note": "from the SCADA bridge"})
    assert status == 202 and answer["by"] == "op1"
    assert [a["by"] for a in stack.records("alerts.acks") if a["alert_id"] == aid] == ["op1"]
