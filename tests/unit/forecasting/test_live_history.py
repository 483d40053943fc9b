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


def _every_id_observe(st_: dict, t: float, value: float, *, keep_days: int, obs_id: str) -> None:
    """``observe_into`` as it was before sequenced ids: every recent id remembered. The oracle for
    the marks, which must decide exactly as it does when each source's sequence follows time."""
    hour = int(t // H) * H
    newest_before = max((int(h) for h in st_["b"]), default=None)
    if newest_before is not None and hour < newest_before - keep_days * 24 * H:
        return
    newest = max(hour, newest_before if newest_before is not None else hour)
    if obs_id in st_["ids"]:
        return
    if hour >= newest - lh.DEDUP_HOURS * H:
        st_["ids"][obs_id] = hour
    total, n = st_["b"].get(str(hour), [0.0, 0])
    st_["b"][str(hour)] = [total + value, n + 1]
    if newest != newest_before:
        if len(st_["b"]) > keep_days * 24 + 1:
            st_["b"] = {h: v for h, v in st_["b"].items() if int(h) >= newest - keep_days * 24 * H}
        st_["ids"] = {k: h for k, h in st_["ids"].items() if h >= newest - lh.DEDUP_HOURS * H}


@given(
    st.lists(st.tuples(st.sampled_from(["K1/D1", "K1/D2", "K1/D3"]), st.integers(0, 6 * 60)), max_size=120),
    st.lists(st.integers(0, 10_000), max_size=40),
)
def test_sequence_marks_decide_like_remembering_every_id(steps, redeliveries) -> None:
    """Each detector's windows arrive in order (the aggregation agent closes them so), and any
    already sent may come again at any later point (a crash, a re-emission): keeping one mark
    per detector counts exactly what keeping every id of the last hours counted."""
    sent: list[tuple[float, float, str]] = []
    clock = {"K1/D1": 0, "K1/D2": 0, "K1/D3": 0}
    stream: list[tuple[float, float, str]] = []
    for i, (source, advance_min) in enumerate(steps):
        clock[source] += 60 * (advance_min + 1)
        obs = (float(clock[source]), float(i % 7), f"{source}/{clock[source]}")
        sent.append(obs)
        stream.append(obs)
        for r in redeliveries[i % 5 :: 5][:1]:
            stream.append(sent[r % len(sent)])
    marks = lh.thaw(None, "sum")
    oracle: dict = {"b": {}, "ids": {}}
    for t, v, obs_id in stream:
        lh.observe_into(marks, t, v, keep_days=1, obs_id=obs_id)
        _every_id_observe(oracle, t, v, keep_days=1, obs_id=obs_id)
    assert marks["b"] == oracle["b"]
    assert marks["ids"] == {} and len(marks["hw"]) <= 3


def test_a_steady_intersection_history_stays_small() -> None:
    """Twelve detectors' 1-minute aggregates for 42 days: the record the table rewrites on each
    batch holds the hours and one mark per detector, not three hours of ids (was 138 KB)."""
    import orjson

    state = lh.thaw(None, "sum")
    start = 1_800_000_000 - 42 * 24 * H
    for minute in range(0, 42 * 24 * 60, 1):
        t = start + 60 * minute
        for d in range(12):
            lh.observe_into(state, t, 3.0, keep_days=42, obs_id=f"INT-0001/D{d}/{t}")
    size = len(orjson.dumps(state))
    assert size < 40_000, size
    assert len(state["hw"]) == 12 and state["ids"] == {}
    assert lh.observe_into(state, t, 3.0, keep_days=42, obs_id=f"INT-0001/D5/{t - 600}") is None  # redelivered
    assert lh.value_of(state, int(t // H) * H) == 12 * 3.0 * (int(t % H) // 60 + 1)


def test_an_old_state_with_aggregate_ids_still_refuses_their_redelivery() -> None:
    old = {"mode": "sum", "b": {str(10 * H): [5.0, 1]}, "ids": {f"K1/D1/{10 * H}": 10 * H}, "top": 10 * H}
    st_ = lh.thaw(old, "sum")
    assert lh.observe_into(st_, 10 * H, 5.0, keep_days=7, obs_id=f"K1/D1/{10 * H}") is None
    assert lh.value_of(st_, 10 * H) == 5.0
    lh.observe_into(st_, 10 * H + 60, 2.0, keep_days=7, obs_id=f"K1/D1/{10 * H + 60}")
    assert lh.value_of(st_, 10 * H) == 7.0 and st_["hw"] == {"K1/D1": [10 * H + 60, 10 * H]}


def test_ids_of_other_forms_are_remembered_one_by_one() -> None:
    assert lh.sequenced("K1/D3/1700000040") == ("K1/D3", 1700000040)
    assert lh.sequenced("1700000040.125") is None and lh.sequenced("K1/D3/-5") is None and lh.sequenced("a/") is None
    st_ = lh.thaw(None, "mean")
    lh.observe_into(st_, 10 * H + 5, 40.0, keep_days=7, obs_id="36005.000")
    lh.observe_into(st_, 10 * H + 1, 20.0, keep_days=7, obs_id="36001.000")  # earlier, and new: counted
    lh.observe_into(st_, 10 * H + 5, 40.0, keep_days=7, obs_id="36005.000")  # redelivered
    assert lh.value_of(st_, 10 * H) == 30.0 and set(st_["ids"]) == {"36005.000", "36001.000"}


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


def test_weather_entries_keep_their_rain_for_the_forecasts() -> None:
    from datetime import datetime, timezone

    from forecasting import event_regressors
    from streams.agents.forecasting import to_events
    from streams.records import WeatherForecast

    start = datetime(2026, 7, 4, 12, 25, tzinfo=timezone.utc)
    shower = ScheduledEvent(
        schema_version=1,
        event_time=start,
        venue_id="city",
        event_id="rain-1",
        kind="weather",
        starts_at=start,
        ends_at=datetime(2026, 7, 4, 14, 35, tzinfo=timezone.utc),
        weather=WeatherForecast(precipitation_mm_h=6.0, condition="rain"),
    )
    stored = event_of(shower, {})
    assert stored is not None and stored["precipitation_mm_h"] == 6.0 and stored["affects"] == []
    (event,) = to_events([stored])
    import pandas as pd

    reg = event_regressors(pd.date_range("2026-07-04 11:00", periods=5, freq="1h", tz="UTC"), [event], "intersection/K1")
    assert reg["rain_mm_h"].round(2).tolist() == [0.0, 3.5, 6.0, 3.5, 0.0]
    assert reg["event_attendance"].sum() == 0.0  # rain is not a crowd
    old = {k: v for k, v in stored.items() if k != "precipitation_mm_h"}  # stored before weather was kept
    assert to_events([old])[0].precipitation_mm_h is None


def test_a_city_history_with_its_weather_record_teaches_the_forecast_what_rain_does() -> None:
    """End to end through the worker's own pieces: the synthetic city's past weeks (counts,
    showers, matches) into a history state and stored events, a shower announced for the run's
    first afternoon, and the forecast for its hours is lower than the same forecast without the
    weather record."""
    from datetime import datetime, timezone

    from simulators.city import City, CityConfig, CityHistory
    from simulators.city.calendar import RainPeriod
    from simulators.city.generator import _rain_entry
    from streams.agents.forecasting import refit, to_events

    city = City(CityConfig(intersections=4, pools=0, bus_lines=0, seed=5), datetime(2026, 10, 6, 5, tzinfo=timezone.utc), 3600)
    history = CityHistory(city, 56)
    state = lh.empty("sum")
    for iid, t, n in history.counts():
        if iid == "K1":
            lh.observe_into(state, t, float(n), keep_days=60)
    lh.observe_into(state, history.t1, 0.0, keep_days=60)  # the run's first hour: the last history hour is complete
    shower = RainPeriod(history.t1 + 8 * 3600, history.t1 + 11 * 3600, 6.0, 8.0)  # 13:00-16:00 UTC, the run's first day
    entries = [*history.schedule(), _rain_entry(shower, utc_start := datetime.fromtimestamp(history.t1, timezone.utc))]
    assert utc_start.hour == 5
    stored = [d for e in entries if (d := event_of(e, {})) is not None]
    dry = [d for d in stored if d["kind"] != "weather"]
    wet = refit("intersection/K1", "test", state, to_events(stored), "boosted", 24, None)
    without = refit("intersection/K1", "test", state, to_events(dry), "boosted", 24, None)
    hours = slice(8, 11)  # the shower's hours in the 24 ahead (the forecast starts at the run's first hour)
    assert [p.timestamp for p in wet.points][hours] == [p.timestamp for p in without.points][hours]
    ratio = sum(p.yhat for p in wet.points[hours]) / sum(p.yhat for p in without.points[hours])
    assert ratio < 0.95, ratio  # the city's rain takes 10-15 % (demand_profile, capacity when wet)
    others = sum(p.yhat for p in wet.points[:6]) / sum(p.yhat for p in without.points[:6])
    assert 0.95 < others < 1.05, others  # dry hours stay as they were


def test_a_venue_keeps_only_entries_that_can_still_move_a_forecast() -> None:
    from streams.agents.forecasting import merged_venue

    day = 86_400.0

    def entry(eid: str, end: float) -> dict[str, object]:
        return {"event_id": eid, "start": end - 3600, "end": end, "kind": "weather", "precipitation_mm_h": 1.0}

    now = 100 * day
    venue = {f"w{i}": entry(f"w{i}", now - i * day) for i in range(60)}  # one a day for 60 days
    merged = merged_venue(venue, entry("new", now + day), now, keep_days=42)
    assert merged is not None and "new" in merged
    assert set(merged) == {"new"} | {f"w{i}" for i in range(44)}  # ended within 42 + 1 days
    assert merged_venue(merged, entry("new", now + day), now, keep_days=42) is None  # unchanged: no write
    assert merged_venue(merged, entry("old", now - 50 * day), now, keep_days=42) is None  # moves nothing
    # an hourly weather service for two years stays bounded by the history kept
    grown: dict[str, dict[str, object]] = {}
    for h in range(2 * 365 * 24):
        grown = merged_venue(grown, entry(f"h{h}", h * 3600.0), h * 3600.0, keep_days=42) or grown
    assert len(grown) <= (42 + 1) * 24 + 1


def test_the_histories_refuse_readings_the_sensors_agents_refuse() -> None:
    """A pool reading 50 years ahead (dead-lettered by the water agent) moved the pool's newest
    hour to 2076 in the history, which then took no reading of that pool: the histories' decoders
    check device clocks as the owners of those topics do."""
    import time as _time
    from datetime import datetime, timedelta, timezone

    import orjson

    from streams.agents.forecasting import history_decoders
    from streams.codec import DecodeFailure
    from streams.records import BusPosition, PoolReading
    from streams.settings import Settings

    now = _time.time()
    positions, readings = history_decoders(Settings(_env_file=None))
    at = datetime.fromtimestamp(now, timezone.utc)
    reading = {"schema_version": 1, "event_time": at.isoformat(), "pool_id": "P1", "visitors": 10}
    assert isinstance(readings.decode(orjson.dumps(reading), now=now), PoolReading)
    ahead = {**reading, "event_time": (at + timedelta(days=50 * 365)).isoformat()}
    refused = readings.decode(orjson.dumps(ahead), now=now)
    assert isinstance(refused, DecodeFailure) and refused.code == "clock_skew"
    bus = {
        "schema_version": 1,
        "event_time": (at + timedelta(days=3)).isoformat(),
        "vehicle_id": "b1",
        "trip_id": "t1",
        "route_id": "L1",
        "latitude": 48.0,
        "longitude": 11.0,
        "current_stop_sequence": 1,
        "current_status": "STOPPED_AT",
    }
    late = positions.decode(orjson.dumps(bus), now=now)
    assert isinstance(late, DecodeFailure) and late.code == "clock_skew"
    assert isinstance(positions.decode(orjson.dumps({**bus, "event_time": at.isoformat()}), now=now), BusPosition)
