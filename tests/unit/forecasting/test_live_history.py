"""Hourly live history: sums and means per hour, redelivery ignored, completed hours reported."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from forecasting import live_history as lh
from streams.agents.forecasting import event_of
from streams.records import ScheduledEvent, ScheduleKind

H = 3600


def test_sum_per_hour_and_redelivery_is_not_counted_twice() -> None:
    s, done = lh.observe(None, 10 * H + 60, 5, mode="sum", keep_days=7, obs_id="a")
    s, _ = lh.observe(s, 10 * H + 120, 7, mode="sum", keep_days=7, obs_id="b")
    s, _ = lh.observe(s, 10 * H + 120, 7, mode="sum", keep_days=7, obs_id="b")  # redelivered
    assert lh.value_of(s, 10 * H) == 12 and done is None
    s, done = lh.observe(s, 11 * H + 1, 3, mode="sum", keep_days=7, obs_id="c")
    assert done == 10 * H  # hour 10 is complete now
    series = lh.complete_series(s)
    assert list(series.values) == [12.0] and series.index[0].timestamp() == 10 * H


def test_mean_gaps_and_old_observations() -> None:
    s = None
    for t, v in ((0, 10), (60, 20), (2 * H, 40), (3 * H, 1)):
        s, _ = lh.observe(s, t, v, mode="mean", keep_days=1, obs_id=None)
    series = lh.complete_series(s)
    assert series.iloc[0] == 15 and math.isnan(series.iloc[1]) and series.iloc[2] == 40
    s, _ = lh.observe(s, -5 * 24 * H, 99, mode="mean", keep_days=1)  # older than the kept days
    assert lh.complete_series(s).equals(series)


@given(st.lists(st.tuples(st.floats(0, 40 * 24 * H), st.floats(0, 1e4) | st.just(math.nan)), max_size=80))
def test_history_stays_bounded_and_never_raises(obs) -> None:
    s = None
    for i, (t, v) in enumerate(obs):
        s, _ = lh.observe(s, t, v, mode="sum", keep_days=3, obs_id=str(i))
    if s:
        assert len(s["b"]) <= 3 * 24 + 2
        assert all(math.isfinite(x[0]) for x in s["b"].values())


def _reference_observe(state, t, value, *, mode, keep_days, obs_id=None):
    """The first implementation of ``observe``, unchanged: the oracle for the in-place fold."""
    st_: dict = {"mode": mode, "b": dict((state or {}).get("b", {})), "ids": dict((state or {}).get("ids", {}))}
    if not (math.isfinite(t) and math.isfinite(value)):
        return st_, None
    hour = int(t // H) * H
    newest_before = max((int(h) for h in st_["b"]), default=None)
    if newest_before is not None and hour < newest_before - keep_days * 24 * H:
        return st_, None
    if obs_id is not None:
        if obs_id in st_["ids"]:
            return st_, None
        st_["ids"][obs_id] = hour
    total, n = st_["b"].get(str(hour), [0.0, 0])
    st_["b"][str(hour)] = [total + value, n + 1]
    newest = max(hour, newest_before if newest_before is not None else hour)
    if len(st_["b"]) > keep_days * 24 + 1:
        st_["b"] = {h: v for h, v in st_["b"].items() if int(h) >= newest - keep_days * 24 * H}
    st_["ids"] = {k: h for k, h in st_["ids"].items() if h >= newest - lh.DEDUP_HOURS * H}
    return st_, (newest_before if newest_before is not None and hour > newest_before else None)


@given(
    st.lists(st.tuples(st.floats(0, 10 * 24 * H), st.floats(0, 1e4) | st.just(math.nan), st.sampled_from("abcdefgh")), max_size=60),
    st.sampled_from(["sum", "mean"]),
)
def test_folding_a_batch_in_place_equals_folding_copies(obs, mode) -> None:
    """The agent folds a batch into one private copy; the result must be what the original
    algorithm (a copy and a full prune per observation, kept here as the oracle) gave, with the
    same completed hours reported."""
    copied, batch = None, lh.thaw(None, mode)
    for t, v, obs_id in obs:
        copied, done_copied = _reference_observe(copied, t, v, mode=mode, keep_days=2, obs_id=obs_id)
        assert lh.observe_into(batch, t, v, keep_days=2, obs_id=obs_id) == done_copied
    if copied is not None:
        assert batch["b"] == copied["b"] and batch["ids"] == copied["ids"]
        assert lh.known_hours(batch) == int(lh.complete_series(batch).notna().sum())


def _event(venue: str, kind: ScheduleKind) -> ScheduledEvent:
    from datetime import datetime, timezone

    t = datetime(2026, 7, 4, 18, tzinfo=timezone.utc)
    return ScheduledEvent(schema_version=1, event_time=t, venue_id=venue, event_id="e1", kind=kind, starts_at=t, ends_at=t)


def test_venue_events_need_a_mapping_city_wide_ones_do_not() -> None:
    venues = {"stadium": ["intersection/K1"]}
    match = event_of(_event("stadium", "match"), venues)
    assert match is not None and match["affects"] == ["intersection/K1"]
    assert event_of(_event("arena", "concert"), venues) is None  # unmapped venue: moves nothing
    holiday = event_of(_event("city", "school_holiday"), venues)
    assert holiday is not None and holiday["affects"] == []  # city-wide
