"""Stop passages, delay and the rejection of bad positions (transit/adherence.py, schedule.py)."""

from __future__ import annotations

from datetime import date
from zoneinfo import ZoneInfo

import hypothesis.strategies as st
from hypothesis import given, settings

from transit.adherence import REJECTIONS, Position, observe
from transit.monitor import BusMonitor, MonitorRules
from transit.schedule import ScheduledStop, ScheduledTrip, Timetable, service_origin

from .helpers import STEP_LON, at_stop, between, line, stop_place, when


def test_passages_and_delay_at_stops_and_between() -> None:
    tt = line()
    state, u = observe(None, at_stop("L1-T0", 0, when(8 * 3600 + 30)), tt, now=when(8 * 3600 + 30))
    assert [p.stop_id for p in u.passages] == ["S0"] and u.delay_s == 30
    # halfway to S1, 90 s after the timetable planned the bus there (at 8:01:00)
    state, u = observe(state, between("L1-T0", 0, 0.5, when(8 * 3600 + 150)), tt, now=when(8 * 3600 + 150))
    assert u.passages == () and abs(u.delay_s - 90) < 3  # type: ignore[operator]
    # two stops passed between positions: spread over the interval, in order
    state, u = observe(state, at_stop("L1-T0", 2, when(8 * 3600 + 390)), tt, now=when(8 * 3600 + 390))
    assert [p.stop_id for p in u.passages] == ["S1", "S2"]
    assert u.passages[0].t < u.passages[1].t <= when(8 * 3600 + 390)
    assert u.delay_s is not None and u.delay_s >= 390 - 240


def test_rejections_leave_the_state_alone() -> None:
    tt = line()
    t = when(8 * 3600 + 60)
    state, _ = observe(None, at_stop("L1-T0", 0, t), tt, now=t)
    cases = {
        "duplicate": at_stop("L1-T0", 0, t),
        "out_of_order": at_stop("L1-T0", 1, t - 10),
        "unknown_trip": at_stop("L9-T0", 1, t + 30, vehicle="v-L1-T0"),
        "teleport": Position("v-L1-T0", "L1-T0", "L1", t + 30, 2, "IN_TRANSIT_TO", 48.5, 11.0),
        "stale": at_stop("L1-T0", 1, t + 30),
    }
    for reason, pos in cases.items():
        now = pos.t + (1000 if reason == "stale" else 0)
        after, u = observe(state, pos, tt, now=now)
        assert u.rejected == reason and after is state and u.passages == ()
    # a route that does not match the trip, a stop the trip does not have, a day it does not run
    assert observe(state, at_stop("L1-T0", 1, t + 30, route="L2"), tt, now=t + 30)[1].rejected == "unknown_trip"
    assert observe(None, Position("x", "L1-T0", "L1", t, 99, "STOPPED_AT", 48.0, 11.0), tt, now=t)[1].rejected == "unknown_trip"
    assert observe(None, at_stop("L1-T0", 0, t + 3 * 86_400), tt, now=t + 3 * 86_400)[1].rejected == "unknown_trip"
    # driving backwards along the trip
    state, _ = observe(state, at_stop("L1-T0", 3, t + 400), tt, now=t + 400)
    assert observe(state, at_stop("L1-T0", 1, t + 430), tt, now=t + 430)[1].rejected == "out_of_order"


def test_service_day_after_midnight_and_on_the_dst_day() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    day = date(2026, 3, 29)  # clocks go forward at 02:00: the day has 23 hours
    stops = (ScheduledStop("A", 1, 25 * 3600), ScheduledStop("B", 2, 25 * 3600 + 300))  # 25:00 = 01:00 next day
    tt = Timetable({"t": ScheduledTrip("t", "R", 0, stops, frozenset({day}))}, "Europe/Berlin")
    origin = service_origin(day, berlin)
    times = tt.times("t", origin + 25 * 3600)
    assert times == (origin + 25 * 3600, origin + 25 * 3600 + 300)
    # GTFS: noon minus 12 h, so 12:00:00 is local noon even on the short day
    noon = origin + 12 * 3600
    from datetime import datetime

    assert datetime.fromtimestamp(noon, berlin).hour == 12
    assert tt.times("t", origin + 10 * 86_400) is None and tt.times("nope", origin) is None


positions = st.builds(
    Position,
    vehicle_id=st.sampled_from(["a", "b"]),
    trip_id=st.sampled_from(["L1-T0", "L1-T1", "L1-T9"]),
    route_id=st.sampled_from(["L1", "L2"]),
    t=st.floats(min_value=when(7.9 * 3600), max_value=when(8.6 * 3600)),
    stop_sequence=st.integers(min_value=0, max_value=8),
    status=st.sampled_from(["STOPPED_AT", "IN_TRANSIT_TO", "INCOMING_AT", None]),
    lat=st.floats(min_value=47.9, max_value=48.1),
    lon=st.floats(min_value=10.99, max_value=11.0 + 7 * STEP_LON),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(positions, max_size=60), st.floats(min_value=0, max_value=600))
def test_any_positions_never_raise_and_every_one_is_counted(batch: list[Position], lag: float) -> None:
    monitor = BusMonitor(line(trips=2), MonitorRules())
    accepted = 0
    for pos in batch:
        out = monitor.observe(pos, now=pos.t + lag)
        if out.rejected is None:
            accepted += 1
        else:
            assert out.rejected in REJECTIONS and out.passages == () and out.alarms == ()
        assert all(p.trip_id == pos.trip_id and p.vehicle_id == pos.vehicle_id for p in out.passages)
    assert accepted + sum(monitor.rejected.values()) == len(batch)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 5), st.sampled_from(["STOPPED_AT", "IN_TRANSIT_TO"]), st.floats(0, 30)), min_size=1, max_size=40))
def test_one_trip_passes_each_stop_at_most_once_in_order(steps: list[tuple[int, str, float]]) -> None:
    tt = line(trips=1)
    state = None
    t = when(8 * 3600)
    passed: list[tuple[int, float]] = []
    for k, status, dt in steps:
        t += dt + 0.5
        lat, lon = stop_place(min(k, 5))
        pos = Position("v", "L1-T0", "L1", t, k + 1, status, lat, lon)
        state, u = observe(state, pos, tt, now=t)
        passed += [(p.index, p.t) for p in u.passages]
    indexes = [i for i, _ in passed]
    assert indexes == sorted(set(indexes))
    assert [x for _, x in passed] == sorted(x for _, x in passed)
