"""The per-address login throttle and the audit retention rule (streams/console/policy.py), pure.

The throttle's promises: an address gets at most ``capacity + t * capacity / window`` failed
logins in any ``t`` seconds whichever accounts it names (so it can lock at most that many /
max_failures accounts, and cannot try many accounts fast); one that stops for a window is free
again; a clock running backwards never frees it early.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streams.console import policy
from streams.settings import MIN_AUDIT_LOG_DAYS

capacities = st.integers(min_value=1, max_value=50)
windows = st.floats(min_value=1.0, max_value=86_400.0)
gaps = st.lists(st.floats(min_value=0.0, max_value=120.0), min_size=1, max_size=300)


def _attempts(gaps_s: list[float], capacity: int, window_s: float, start: float = 1_000.0) -> list[tuple[float, bool]]:
    """An attacker trying (and failing) at each time; (time, admitted) per attempt."""
    state, now, out = policy.AddressState(), start, []
    for gap in gaps_s:
        now += gap
        admitted = policy.address_wait(state, now, capacity, window_s) == 0.0
        if admitted:
            state = policy.after_address_failure(state, now, capacity, window_s)
        out.append((now, admitted))
    return out


@given(capacities, windows, gaps)
def test_admitted_failures_in_any_interval_are_bounded(capacity: int, window_s: float, gaps_s: list[float]) -> None:
    admitted = [t for t, ok in _attempts(gaps_s, capacity, window_s) if ok]
    for i, first in enumerate(admitted):
        for j in range(i, len(admitted)):
            span = admitted[j] - first
            assert j - i + 1 <= capacity + span * capacity / window_s + 1e-6


@given(capacities, windows)
def test_a_burst_is_admitted_then_refused_with_a_wait(capacity: int, window_s: float) -> None:
    outcomes = _attempts([0.0] * (capacity + 3), capacity, window_s)
    assert [ok for _, ok in outcomes] == [True] * capacity + [False] * 3
    state = policy.AddressState()
    for _ in range(capacity):
        state = policy.after_address_failure(state, 5.0, capacity, window_s)
    wait = policy.address_wait(state, 5.0, capacity, window_s)
    assert wait == pytest.approx(window_s / capacity)
    assert policy.address_wait(state, 5.0 + wait + 1e-6, capacity, window_s) == 0.0


@given(capacities, windows, gaps)
def test_an_address_that_stops_for_a_window_is_free_again(capacity: int, window_s: float, gaps_s: list[float]) -> None:
    state, now = policy.AddressState(), 0.0
    for gap in gaps_s:
        now += gap
        state = policy.after_address_failure(state, now, capacity, window_s)  # even beyond the bucket
    level = policy.drained(state, now, capacity, window_s)
    later = now + level * window_s / capacity + 1e-6 * window_s
    assert policy.drained(state, later, capacity, window_s) <= 1e-6
    assert policy.address_wait(state, later, capacity, window_s) == 0.0


@given(capacities, windows, st.floats(min_value=0.0, max_value=1e6))
def test_a_clock_going_back_frees_nothing(capacity: int, window_s: float, back: float) -> None:
    state = policy.AddressState()
    for _ in range(capacity):
        state = policy.after_address_failure(state, 1e6, capacity, window_s)
    assert policy.address_wait(state, 1e6 - back, capacity, window_s) > 0.0


@given(st.integers(min_value=1, max_value=20), capacities, windows, st.floats(min_value=0, max_value=86_400))
def test_accounts_one_address_can_lock_are_bounded(max_failures: int, capacity: int, window_s: float, t: float) -> None:
    """Spraying guesses over accounts: locks need max_failures admitted guesses each."""
    steps = max(1, min(300, int(t)))
    admitted = sum(ok for _, ok in _attempts([t / steps] * steps, capacity, window_s))
    assert admitted // max_failures <= (capacity + t * capacity / window_s) / max_failures + 1e-6


@given(st.integers(min_value=MIN_AUDIT_LOG_DAYS, max_value=10_000), st.floats(min_value=0, max_value=4e9))
def test_audit_cutoff_keeps_at_least_six_months(days: int, now: float) -> None:
    assert policy.audit_cutoff(now, days) <= now - MIN_AUDIT_LOG_DAYS * 86_400.0 + 1e-3


@pytest.mark.parametrize("days", [0, 1, MIN_AUDIT_LOG_DAYS - 1, -5])
def test_audit_cutoff_refuses_less_than_the_minimum(days: int) -> None:
    with pytest.raises(ValueError, match=f"at least {MIN_AUDIT_LOG_DAYS} days"):
        policy.audit_cutoff(1e9, days)
