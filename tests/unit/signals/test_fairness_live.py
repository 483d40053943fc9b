"""Live fairness (signals/fairness.py LiveWaits, RecentWaits): waits for green estimated from
detector frames and the stage shown, as the control desk feeds them to the metrics."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from signals.adapter import StageAdapter
from signals.controllers import DetectorObservation, LaneMeasurement
from signals.explain import Explanation, StageDecision
from signals.fairness import MIN_SAMPLES, LiveWaits, RecentWaits, WaitSample
from signals.loader import intersection_from_dict
from signals.timeline import SignalState
from tests.paths import EXAMPLE_INTERSECTION as EXAMPLE

MODEL = intersection_from_dict(json.loads(EXAMPLE.read_text()))
SHOWN = StageDecision("K101", 0.0, MODEL.fixed_plan, Explanation("fixed", "1", "fixed plan", (), ""), origin_s=0.0)
DETECTORS = ("N_in", "S_in", "N_left", "S_left", "E_in", "W_in")


def frame(t: float, queued: set[str], interval_s: float = 1.0) -> DetectorObservation:
    lanes = {d: LaneMeasurement(queue_veh=1.0 if d in queued else 0.0) for d in DETECTORS}
    return DetectorObservation("K101", t, interval_s, lanes)


def green_runs(seconds: int) -> dict[str, list[tuple[int, int]]]:
    """The reference: per group, the [start, end) seconds it shows green under the fixed plan."""
    adapter = StageAdapter(MODEL)
    runs: dict[str, list[tuple[int, int]]] = {g: [] for g in MODEL.groups}
    for t in range(seconds):
        for g, state in adapter.step(SHOWN, float(t)).items():
            if state == SignalState.GREEN:
                if runs[g] and runs[g][-1][1] == t:
                    runs[g][-1] = (runs[g][-1][0], t + 1)
                else:
                    runs[g].append((t, t + 1))
    return runs


def test_a_queue_on_red_waits_until_its_green_and_nothing_before_the_first_drive() -> None:
    live = LiveWaits(MODEL)
    assert live.observe(frame(0.0, {"E_in"}), None) == []  # nothing known about greens yet
    live = LiveWaits(MODEL)
    samples = [s for t in range(200) for s in live.observe(frame(float(t), {"E_in"}), SHOWN)]
    k3_first_green = green_runs(200)["K3"][0][0]
    assert k3_first_green > 30  # stage A (K1) comes first
    first = samples[0]
    assert (first.approach, first.mode, first.at_s) == ("K3", "vehicle", float(k3_first_green))
    assert first.wait_s == float(k3_first_green)  # demand from t=0 to its green
    assert {s.approach for s in samples} == {"K3"}  # K1 had no demand; pedestrians have no detectors


def test_demand_that_vanishes_on_red_is_no_wait() -> None:
    live = LiveWaits(MODEL)
    samples = [s for t in range(200) for s in live.observe(frame(float(t), {"E_in"} if t < 5 else set()), SHOWN)]
    assert samples == []


def test_long_frames_are_stepped_through_and_give_the_same_served_greens() -> None:
    live = LiveWaits(MODEL)
    samples = [s for i in range(5) for s in live.observe(frame(60.0 * i, {"E_in", "N_left"}, 60.0), SHOWN)]
    runs = green_runs(300)
    for group in ("K2", "K3"):
        served = [s.at_s for s in samples if s.approach == group]
        assert served and set(served) <= {float(a) for a, _ in runs[group]}


demand = st.lists(st.frozensets(st.sampled_from(DETECTORS)), min_size=1, max_size=400)


@settings(max_examples=60, deadline=None)
@given(demand)
def test_every_wait_ends_at_a_green_start_and_fits_in_the_red_before_it(pattern: list[frozenset[str]]) -> None:
    live = LiveWaits(MODEL)
    samples = [s for t, queued in enumerate(pattern) for s in live.observe(frame(float(t), set(queued)), SHOWN)]
    runs = green_runs(len(pattern))
    for s in samples:
        starts = [a for a, _ in runs[s.approach]]
        assert s.at_s in starts, s
        before = [e for _, e in runs[s.approach] if e <= s.at_s]
        red_from = max(before, default=0)
        assert 0.0 <= s.wait_s <= s.at_s - red_from
    for group in MODEL.groups:  # at most one sample per green start
        assert len([s for s in samples if s.approach == group]) <= len(runs[group])


@given(st.lists(st.tuples(st.sampled_from("abcdef"), st.floats(0, 600)), max_size=300))
def test_recent_waits_rank_only_approaches_with_enough_samples(waits: list[tuple[str, float]]) -> None:
    recent = RecentWaits(per_approach=20)
    recent.add(WaitSample("K1", a, "vehicle", w, 0.0) for a, w in waits)
    assert all(len(v) <= 20 for v in recent.samples.values())
    summary = recent.summary()
    enough = {a for a in "abcdef" if min(20, sum(1 for x, _ in waits if x == a)) >= MIN_SAMPLES}
    assert summary["approaches_ranked"] == len(enough)
    if summary["worst_to_median"] is not None:
        assert summary["worst_to_median"] >= 1.0


def test_a_starved_approach_shows_in_the_ratio() -> None:
    recent = RecentWaits()
    recent.add(WaitSample("K1", a, "vehicle", w, 0.0) for a, w in [("a", 20.0), ("b", 25.0), ("c", 120.0)] * 10)
    summary = recent.summary()
    assert summary["worst"] == "K1/c" and summary["worst_to_median"] == 120.0 / 25.0
