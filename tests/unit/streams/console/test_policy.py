"""The console's rules (streams/console/policy.py): roles, login locks, session expiry, silences."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streams.console import policy
from streams.console.policy import LoginState, after_failure, after_success, is_locked, may

MAX, LOCK = 5, 900.0


def test_role_matrix() -> None:
    assert may("pool-supervisor", "alarm.ack") and may("pool-supervisor", "silence.set")
    assert not may("pool-supervisor", "plan.decide") and not may("pool-supervisor", "signal.mode")
    assert may("operator", "plan.decide") and may("operator", "alarm.resolve") and not may("operator", "silence.set")
    assert not any(may("planner", a) for a in policy.ACTIONS)
    assert all(may("admin", a) for a in policy.ACTIONS)
    assert not any(may("root", a) for a in policy.ACTIONS)  # an unknown role may do nothing


def test_lock_after_max_failures_then_fresh_count() -> None:
    s = LoginState()
    for i in range(MAX - 1):
        s = after_failure(s, 100.0 + i, MAX, LOCK)
        assert not is_locked(s, 100.0 + i)
    s = after_failure(s, 110.0, MAX, LOCK)
    assert is_locked(s, 110.0) and is_locked(s, 110.0 + LOCK - 1) and not is_locked(s, 110.0 + LOCK)
    # after the lock ran out, one more wrong password starts a new count rather than re-locking
    s = after_failure(s, 110.0 + LOCK + 1, MAX, LOCK)
    assert s.failures == 1 and not is_locked(s, 110.0 + LOCK + 1)
    assert after_success() == LoginState()


@given(st.lists(st.floats(min_value=0, max_value=10_000), min_size=1, max_size=30), st.integers(1, 10))
def test_never_more_than_max_failures_unlocked(gaps: list[float], max_failures: int) -> None:
    """Whatever the timing, an attacker gets at most ``max_failures`` guesses per lock period."""
    s, now, guesses_in_window = LoginState(), 0.0, 0
    window_start = 0.0
    for gap in gaps:
        now += gap
        if is_locked(s, now):
            continue  # the store refuses without checking the password
        if s.locked_until is not None and now >= s.locked_until:
            window_start, guesses_in_window = now, 0
        s = after_failure(s, now, max_failures, LOCK)
        guesses_in_window += 1
        assert guesses_in_window <= max_failures
        assert is_locked(s, now) == (guesses_in_window == max_failures) or s.failures < max_failures
    assert window_start >= 0


@given(st.floats(0, 1e6), st.floats(0, 1e5), st.floats(0, 1e5), st.floats(1, 1e4), st.floats(1, 1e5))
def test_session_bounds(created: float, used_after: float, later: float, idle: float, max_s: float) -> None:
    last = created + used_after
    now = last + later
    alive = policy.session_alive(created, last, now, idle, max_s)
    if now - last >= idle or now - created >= max_s:
        assert not alive  # idle too long, or simply too old however busy
    else:
        assert alive
    if alive:  # a session alive now was alive at every moment since its last use
        assert policy.session_alive(created, last, last + (now - last) / 2, idle, max_s)


def test_silence_request_checks_each_field() -> None:
    req = policy.silence_request(" P1 ", "90", "closed for cleaning", 1000.0)
    assert (req.subject_id, req.starts_at, req.ends_at) == ("P1", 1000.0, 1000.0 + 5400.0)
    for subject, minutes, reason, fragment in [
        ("P 1", "10", "x", "subject"),
        ("P1", "ten", "x", "number of minutes"),
        ("P1", "0", "x", "more than 0"),
        ("P1", "nan", "x", "number of minutes"),
        ("P1", "1_0", "x", "number of minutes"),  # float() reads it as 10
        ("P1", "1e3", "x", "number of minutes"),
        ("P1", str(31 * 24 * 60), "x", "at most 30 days"),
        ("P1", "10", "   ", "needs a reason"),
        ("P1", "10", "\u200b\u200d", "needs a reason"),  # zero-width characters only
        ("P1", "10", "x" * 501, "longer than 500"),
    ]:
        with pytest.raises(ValueError, match=fragment):
            policy.silence_request(subject, minutes, reason, 0.0)


def test_silence_id_is_deterministic_and_a_ref_id() -> None:
    import re

    from streams.records import REF_ID_PATTERN

    a = policy.silence_id("P1", 1.0, "sup")
    assert a == policy.silence_id("P1", 1.0, "sup") != policy.silence_id("P1", 2.0, "sup")
    assert re.match(REF_ID_PATTERN, a)


@pytest.mark.parametrize("name", ["", "A", "a b", "-a", "a" * 33, "ä", "a\n"])
def test_bad_user_names(name: str) -> None:
    with pytest.raises(ValueError):
        policy.check_username(name)


def test_password_and_role_checks() -> None:
    assert policy.check_role("planner") == "planner"
    with pytest.raises(ValueError, match="not one of"):
        policy.check_role("superuser")
    with pytest.raises(ValueError, match="at least 12"):
        policy.check_password("short")
    with pytest.raises(ValueError, match="at most 1024"):
        policy.check_password("x" * 1025)
    for weak in (" " * 12, "a" * 20, "abcabcabcabc"):  # twelve spaces were accepted (stop 55)
        with pytest.raises(ValueError, match="4 different characters"):
            policy.check_password(weak)
    assert policy.check_password("four words, spaced") == "four words, spaced"
