"""The console's pages render what the topics hold, escaped, whatever its shape (streams/console/web.py)."""

from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streams.console.feed import Feed
from streams.console.state import ConsoleState
from streams.console.users import Session, User, UserStore
from streams.console.web import Console
from streams.settings import Settings
from streams.topics import ALERTS, SIGNALS_PLANS


def console(tmp_path: Path) -> tuple[Console, ConsoleState]:
    s = Settings(_env_file=None, state_dir=tmp_path)
    state = ConsoleState()
    return Console(s, UserStore(tmp_path / "u.sqlite"), state, Feed(s, state)), state


def test_text_from_topics_is_escaped_and_buttons_follow_the_role(tmp_path: Path) -> None:
    c, state = console(tmp_path)
    state.apply(
        ALERTS,
        {
            "alarm_id": "k@P1~000000000001",
            "state": "raised",
            "severity": "critical",
            "message": "<script>alert(1)</script>",
            "evidence": {"zone": "<img src=x onerror=alert(1)>"},
            "raised_at": "2026-06-01T10:00:00+00:00",
        },
    )
    html = c.live("alarms", Session(User("sup", "pool-supervisor"), "tok", 0.0))
    assert "<script>alert" not in html and "&lt;script&gt;" in html and "<img" not in html
    assert ">Acknowledge</button>" in html and 'value="tok"' in html
    assert "<button" not in c.live("alarms", Session(User("p", "planner"), "tok", 0.0))


def test_a_request_to_drive_reads_as_one(tmp_path: Path) -> None:
    """Advisory mode with leitstand (``signals.advisory``): the operator approves a period, and the
    page says so instead of offering a few-second window as a plan."""
    c, state = console(tmp_path)
    request = {"intersection_id": "K1", "plan_id": "K1@1~ab", "status": "pending", "mode": "advisory", "controller": "leitstand"}
    state.apply(SIGNALS_PLANS, {**request, "phases": [{"stage": "A", "green_s": 8.0}], "mandate_s": 900.0, "expires_at_s": 120.0})
    html = c.live("signals", Session(User("op", "admin"), "tok", 0.0))
    assert "K1: leitstand asks to drive for 15 min" in html and ">Let it drive for 15 min</button>" in html
    assert "It would start with: A 8.0 s" in html
    state.apply(SIGNALS_PLANS, {**request, "plan_id": "K1@2~cd", "phases": [{"stage": "A", "green_s": 30.0}], "mandate_s": None})
    html = c.live("signals", Session(User("op", "admin"), "tok", 0.0))
    assert "K1: leitstand proposes K1@2~cd" in html and ">Approve</button>" in html


CACHE: dict[Path, Console] = {}
junk = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=8), c, max_size=3),
    max_leaves=6,
)
field_names = st.sampled_from(
    [
        "alarm_id",
        "state",
        "severity",
        "evidence",
        "raised_at",
        "occurrences",
        "intersection_id",
        "plan_id",
        "status",
        "phases",
        "explanation",
        "expires_at_s",
        "time_s",
        "session",
        "mandate_s",
    ]
)


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from([ALERTS, SIGNALS_PLANS]), st.dictionaries(field_names, junk, max_size=8)), max_size=6))
def test_any_record_shape_renders_a_page(tmp_path: Path, records: list[tuple[str, dict]]) -> None:
    c = CACHE.get(tmp_path) or CACHE.setdefault(tmp_path, console(tmp_path)[0])
    c.state = state = ConsoleState()  # a fresh view per example; the user store (Argon2 set-up) is reused
    for topic, record in records:
        state.apply(topic, {**record, "alarm_id": "a@P1~000000000001", "intersection_id": "K1", "plan_id": "p"})
    for page in ("alarms", "signals", "silences"):
        assert c.live(page, Session(User("a", "admin"), "t", 0.0))  # renders (or says which part could not)


def test_the_status_bar_names_the_newest_critical_alarm_and_a_large_list_waits() -> None:
    """The banner's small ``status`` event names the newest unacknowledged critical alarm; the
    whole list goes out at most every ``html_interval`` seconds by its size (a probe of stop 55: with
    ~1,000 open alarms the page, banner included, fell a minute behind an escalation storm)."""
    from streams.console.web import MAX_HTML_INTERVAL_S, html_interval, live_status

    state = ConsoleState()
    assert live_status(state, 0) == {"critical": 0, "newest": None, "version": 0}
    for pool, at in (("P1", "2026-12-07T10:00:00+00:00"), ("P2", "2026-12-07T10:05:00+00:00"), ("P3", "2026-12-07T09:00:00+00:00")):
        state.apply(
            ALERTS,
            {
                "alarm_id": f"motionless_swimmer@{pool}~000000000000",
                "subject_id": pool,
                "subject_type": "pool",
                "severity": "critical",
                "state": "raised",
                "raised_at": at,
                "message": "Motionless swimmer",
                "kind": "motionless_swimmer",
            },
        )
    state.apply(
        ALERTS,
        {
            "alarm_id": "water_ph@P9~000000000000",
            "subject_id": "P9",
            "severity": "major",
            "state": "raised",
            "raised_at": "2026-12-07T11:00:00+00:00",
        },
    )
    status = live_status(state, 7)
    assert status["critical"] == 3 and status["newest"]["text"] == "pool P2, 10:05:00 UTC: Motionless swimmer"
    assert status["newest"]["anchor"].startswith("t-x")
    assert html_interval(20_000) < 0.1 and html_interval(1_300_000) > 2 and html_interval(10**9) == MAX_HTML_INTERVAL_S
