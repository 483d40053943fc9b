"""Blocked approaches (signals/blockage.py): vehicles that stand through green after green with
nobody crossing the stop line raise one blockage, the first green that moves someone clears
it, and nothing else does: short greens, greens nobody waited for, dead detectors."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from signals.blockage import MIN_GREEN_S, STRIKES, BlockageEvent, BlockageWatch
from signals.controllers import DetectorObservation, LaneMeasurement
from signals.loader import load_intersection
from signals.model import Intersection
from tests.paths import EXAMPLE_INTERSECTION as EXAMPLE


@pytest.fixture()
def x() -> Intersection:
    return load_intersection(EXAMPLE)


class Run:
    """Frames of one second on the example crossing: N_in (group K1) reads ``queue`` and counts
    ``crossing`` vehicles per green second; every other approach is empty."""

    def __init__(self, x: Intersection) -> None:
        self.watch = BlockageWatch(x)
        self.t = 0.0
        self.events: list[BlockageEvent] = []

    def seconds(self, n: int, green: bool, queue: float = 4.0, crossing: float = 0.0, dead: bool = False) -> None:
        for _ in range(n):
            self.t += 1.0
            lanes = {} if dead else {"N_in": LaneMeasurement(count=crossing if green else 0.0, queue_veh=queue, vehicles=queue)}
            obs = DetectorObservation("x", self.t, 1.0, lanes)
            self.events += self.watch.observe(obs, {"K1": 1.0} if green else {"K3": 1.0})

    def cycle(self, green_s: int, crossing: float = 0.0, queue: float = 4.0) -> None:
        self.seconds(20, green=False, queue=queue)
        self.seconds(green_s, green=True, queue=queue, crossing=crossing)


def test_three_starved_greens_raise_one_blockage_and_a_moving_green_clears_it(x: Intersection) -> None:
    run = Run(x)
    for _ in range(STRIKES - 1):
        run.cycle(10)
    run.seconds(1, green=False)
    assert run.events == []
    run.cycle(10)
    run.seconds(1, green=False)
    assert [(e.detector, e.raised, e.greens, e.green_s) for e in run.events] == [("N_in", True, STRIKES, 10.0 * STRIKES)]
    assert "none crossed the stop line" in run.events[0].summary() and run.watch.open() == ["N_in"]
    run.cycle(10)  # still starved: no second alarm for the same blockage
    run.cycle(10, crossing=1.0)
    run.seconds(1, green=False)
    assert [e.raised for e in run.events] == [True, False]
    assert run.events[1].greens == 10 and run.watch.open() == []
    assert "cross the stop line again" in run.events[1].summary()


def test_a_green_that_moves_anyone_starts_the_count_again(x: Intersection) -> None:
    run = Run(x)
    for crossing in (0.0, 0.0, 0.2, 0.0, 0.0, 0.2):
        run.cycle(10, crossing=crossing)
    run.seconds(1, green=False)
    assert run.events == []


def test_short_greens_and_greens_nobody_waited_for_are_not_starved(x: Intersection) -> None:
    short = Run(x)
    for _ in range(2 * STRIKES):
        short.cycle(int(MIN_GREEN_S) - 1)
    empty = Run(x)
    for _ in range(2 * STRIKES):
        empty.cycle(30, queue=0.0)
    empty.seconds(1, green=False)
    assert short.events == [] and empty.events == []


def test_a_dead_detector_is_no_evidence(x: Intersection) -> None:
    run = Run(x)
    run.cycle(10)
    run.cycle(10)
    for _ in range(3):  # a whole cycle, and then some, without the detector: nothing changes
        run.seconds(20, green=False, dead=True)
        run.seconds(10, green=True, dead=True)
    run.seconds(1, green=False, dead=True)
    assert run.events == []
    run.cycle(10)
    run.seconds(1, green=False)
    assert [e.raised for e in run.events] == [True]  # the third starved green it did see


def test_a_repeated_or_older_frame_changes_nothing(x: Intersection) -> None:
    """A redelivered frame comes with no green (the desk's replay only moves forward): folded in,
    it would end the green it belongs to and start the next part afresh."""
    run = Run(x)
    for _ in range(STRIKES):
        run.seconds(20, green=False)
        run.seconds(3, green=True)
        run.t -= 1.0  # the last green frame again
        run.seconds(1, green=False)
        run.seconds(3, green=True)
    run.seconds(1, green=False)
    assert [e.raised for e in run.events] == [True]  # three 6 s greens, not six 3 s ones


readings = st.builds(
    LaneMeasurement,
    count=st.floats(allow_nan=True, allow_infinity=True),
    queue_veh=st.floats(allow_nan=True, allow_infinity=True),
    vehicles=st.floats(allow_nan=True, allow_infinity=True),
)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.dictionaries(st.sampled_from(["N_in", "S_in", "E_in", "nonsense"]), readings, max_size=4),
            st.dictionaries(st.sampled_from(["K1", "K2", "K3", "ZZ"]), st.floats(min_value=0, max_value=900), max_size=3),
            st.floats(min_value=-1e6, max_value=1e6, allow_nan=False),
        ),
        max_size=80,
    )
)
def test_any_frames_alternate_raise_and_clear_per_approach_and_never_raise(frames: list) -> None:
    x = load_intersection(EXAMPLE)
    watch = BlockageWatch(x)
    last: dict[str, bool] = {}
    for lanes, greens, t in frames:
        for e in watch.observe(DetectorObservation("x", t, 1.0, lanes), greens):
            assert e.raised != last.get(e.detector, False)  # a raise, then a clear, then a raise...
            last[e.detector] = e.raised
            assert math.isfinite(e.green_s) and e.summary()
    assert sorted(d for d, up in last.items() if up) == watch.open()
