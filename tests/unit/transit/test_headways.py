"""Headways, bunching and gap alarms, regularity, punctuality and predictions."""

from __future__ import annotations

import hypothesis.strategies as st
from hypothesis import given, settings

from transit.adherence import Passage
from transit.headways import HeadwayBook, HeadwayRules
from transit.monitor import BusMonitor, MonitorRules
from transit.predict import predict_arrivals, schedule_only

from .helpers import at_stop, line, when


def passage(trip: str, stop: int, t: float, scheduled: float, route: str = "L1") -> Passage:
    return Passage(route, 0, trip, f"v-{trip}", f"S{stop}", stop, t, scheduled)


def test_bunching_needs_two_stops_in_a_row_and_clears_after_two_regular() -> None:
    book = HeadwayBook(HeadwayRules())
    for k in range(6):  # leader on time every 120 s
        book.add(passage("A", k, 1000 + 120 * k, 1000 + 120 * k))
    changes = []
    # follower scheduled 600 s behind, runs 100 s behind at stops 0, 1 (bunched), then 400 s
    follower = [100, 500, 100, 100, 400, 400]
    for k, gap in enumerate(follower):
        h, c = book.add(passage("B", k, 1000 + 120 * k + gap, 1600 + 120 * k))
        assert h is not None and h.scheduled_s == 600
        changes.append([(x.kind, x.action) for x in c])
    # one bunched stop (0) is no alarm; 2-3 in a row are; two regular ones clear it
    assert changes == [[], [], [], [("bus_bunching", "raise")], [], [("bus_bunching", "clear")]]


def test_gap_alarm_and_expiry() -> None:
    book = HeadwayBook(HeadwayRules(expire_s=600))
    for k in range(3):
        book.add(passage("A", k, 1000 + 60 * k, 1000 + 60 * k))
    raised = []
    for k in range(3):
        raised += book.add(passage("B", k, 2000 + 60 * k, 1600 + 60 * k))[1]  # 1000 s apart, 600 planned
    assert [(c.kind, c.action) for c in raised] == [("bus_gap", "raise")]
    assert raised[0].evidence["scheduled_headway_s"] == 600
    assert [(c.kind, c.action) for c in book.expire(2000 + 60 * 2 + 601)] == [("bus_gap", "clear")]


def test_a_started_book_clears_once_the_lines_with_no_episode_open() -> None:
    """After a restart the alarm books may hold an alarm the new book never raised: expire_s
    after its first reading it clears each kind of each line with no episode of that kind open
    (a clear for an alarm that is not open changes nothing), once; an open episode is left to
    its own end."""
    book = HeadwayBook(HeadwayRules(expire_s=600))
    for k in range(3):
        book.add(passage("A", k, 1000 + 60 * k, 1000 + 60 * k))
    for k in range(3):  # B bunched behind A at three stops: L1's bunching episode is open
        book.add(passage("B", k, 1030 + 60 * k, 1600 + 60 * k))
    assert book.reconcile(1000 + 599, ["L1", "L2"]) == []
    cleared = book.reconcile(1000 + 600, ["L1", "L2"])
    assert sorted((c.route_id, c.kind, c.action) for c in cleared) == [
        ("L1", "bus_gap", "clear"),
        ("L2", "bus_bunching", "clear"),
        ("L2", "bus_gap", "clear"),
    ]
    assert book.reconcile(5000, ["L1", "L2"]) == []
    # the open episode still ends by its own rule
    assert [(c.kind, c.action) for c in book.expire(1030 + 120 + 601)] == [("bus_bunching", "clear")]


def test_a_restarted_monitor_clears_the_lines_of_its_timetable() -> None:
    """Through the monitor: lines of the timetable that never ran since the start are cleared
    too, at the first expiry check expire_s after the first reading."""
    monitor = BusMonitor(line(route="L1"), MonitorRules(headways=HeadwayRules(expire_s=600)))
    t = when(8 * 3600)
    monitor.observe(at_stop("L1-T0", 0, t), now=t)
    assert monitor.expire(t + 599) == []
    assert sorted((c.route_id, c.kind) for c in monitor.expire(t + 600)) == [("L1", "bus_bunching"), ("L1", "bus_gap")]
    assert monitor.expire(t + 1200) == []


def test_headway_cv() -> None:
    book = HeadwayBook(HeadwayRules())
    for n in range(5):
        book.add(passage(f"T{n}", 0, 600.0 * n, 600.0 * n))
    assert book.cv("L1", 0) == 0.0
    book.add(passage("T5", 0, 3000 + 500, 3000))  # late ...
    book.add(passage("T6", 0, 3600 + 10, 3600))  # ... and its follower right behind it
    cv = book.cv("L1", 0)
    assert cv is not None and cv > 0.3


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 5), st.integers(0, 3), st.floats(0, 2000)), max_size=80))
def test_raises_and_clears_alternate(events: list[tuple[int, int, float]]) -> None:
    book = HeadwayBook(HeadwayRules())
    open_: dict[tuple[str, str], bool] = {}
    t = 0.0
    for trip, stop, dt in events:
        t += dt
        _, changes = book.add(passage(f"T{trip}", stop, t, 600.0 * trip + 60 * stop))
        changes += book.expire(t)
        for c in changes:
            key = (c.route_id, c.kind)
            assert open_.get(key, False) == (c.action == "clear")
            open_[key] = c.action == "raise"


def test_bad_input_never_alarms_and_is_counted() -> None:
    monitor = BusMonitor(line(), MonitorRules())
    t = when(8 * 3600)
    bad = [
        at_stop("L1-T0", 0, t),
        at_stop("L1-T0", 0, t),  # duplicate
        at_stop("L1-T0", 1, t - 60),  # out of order
        at_stop("nope", 1, t + 10),  # unknown trip
        at_stop("L1-T1", 0, t - 3600),  # stale
    ]
    alarms = [a for pos in bad for a in monitor.observe(pos, now=t + 10).alarms]
    assert alarms == [] and dict(monitor.rejected) == {"duplicate": 1, "out_of_order": 1, "unknown_trip": 1, "stale": 1}


def test_punctuality_window_is_configurable() -> None:
    tt = line(trips=4)
    strict = BusMonitor(tt, MonitorRules(on_time=(-30.0, 60.0)))
    usual = BusMonitor(tt, MonitorRules())
    for n, late in enumerate([0, 100, 200, -90]):  # first sight at a stop: the passage is then
        pos = at_stop(f"L1-T{n}", 1, when(8 * 3600 + 600 * n + 120 + late))
        strict.observe(pos, now=pos.t)
        usual.observe(pos, now=pos.t)
    assert (usual.punctuality["L1"].early, usual.punctuality["L1"].on_time, usual.punctuality["L1"].late) == (1, 2, 1)
    assert (strict.punctuality["L1"].early, strict.punctuality["L1"].on_time, strict.punctuality["L1"].late) == (1, 1, 2)


def test_predictions_carry_the_delay_forward() -> None:
    schedule = (100.0, 200.0, 300.0, 400.0)
    assert predict_arrivals(250.0, 100.0, schedule, 1, 1.0) == [(2, 400.0), (3, 500.0)]
    assert predict_arrivals(250.0, 100.0, schedule, 1, 2.0) == [(2, 550.0), (3, 750.0)]
    assert schedule_only(schedule, 1) == [(2, 300.0), (3, 400.0)]
    assert predict_arrivals(float("nan"), 0.0, schedule, 0, 1.0) == []
