"""The water-path watch: how long records wait unread by a group, and when that is an alarm."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from detection.reader_backlog import MAX_SAMPLES, Backlog, decide, observe, water_rules_trigger


def run(samples: list[tuple[float, dict[int, int], dict[int, int | None]]]) -> Backlog:
    state = Backlog()
    for now, ends, committed in samples:
        state = observe(state, now, ends, committed)
    return state


def test_a_group_that_never_committed_is_behind_from_the_first_sample_with_records() -> None:
    state = run([(0.0, {0: 0, 1: 0}, {}), (10.0, {0: 5, 1: 0}, {}), (70.0, {0: 9, 1: 2}, {})])
    assert state.since == 10.0 and state.behind_s == 60.0 and state.waiting == 11


def test_an_idle_topic_is_never_behind() -> None:
    state = run([(t, {0: 40}, {0: 40}) for t in range(0, 600, 10)])
    assert state.behind_s == 0.0 and state.waiting == 0 and state.samples == ()


def test_a_group_that_keeps_up_with_a_commit_lag_stays_under_one_commit_interval() -> None:
    # records arrive continuously; the group commits what was there one sample earlier
    samples = [(float(t), {0: 100 * t}, {0: 100 * (t - 3) if t >= 3 else None}) for t in range(0, 300, 3)]
    state = run(samples)
    assert state.behind_s == 0.0 and state.waiting == 300  # a lower bound, to the sampling interval


def test_a_group_that_reads_but_falls_further_behind_grows_its_age() -> None:
    # 100 records/s offered, 50 read: the oldest unread record keeps getting older
    ages = []
    state = Backlog()
    for t in range(0, 600, 10):
        state = observe(state, float(t), {0: 100 * t}, {0: 50 * t})
        ages.append(state.behind_s)
    assert ages == sorted(ages) and ages[-1] >= 290


def test_a_group_that_stopped_and_resumed_is_caught_up_once_it_commits_past_what_waited() -> None:
    state = run([(0.0, {0: 10}, {0: 10}), (10.0, {0: 20}, {0: 10}), (100.0, {0: 30}, {0: 10})])
    assert state.behind_s == 90.0
    state = observe(state, 110.0, {0: 40}, {0: 25})  # read past the sample of t=10, not of t=100
    assert state.since == 100.0 and state.behind_s == 10.0
    state = observe(state, 120.0, {0: 40}, {0: 40})
    assert state.behind_s == 0.0 and state.since is None


def test_one_stuck_partition_is_enough() -> None:
    state = run([(0.0, {0: 5, 1: 5}, {0: 5, 1: 5}), (10.0, {0: 9, 1: 9}, {0: 9, 1: 5}), (90.0, {0: 20, 1: 9}, {0: 20, 1: 5})])
    assert state.behind_s == 80.0 and state.waiting == 4


def test_a_committed_offset_beyond_the_listed_end_counts_as_caught_up() -> None:
    # Tansu lists a partition's end as its last batch's start + 1: committed can be further
    state = run([(0.0, {0: 8}, {0: 10}), (50.0, {0: 8}, {0: 10})])
    assert state.behind_s == 0.0 and state.waiting == 0


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 50), st.integers(0, 50)), min_size=1, max_size=2 * MAX_SAMPLES + 50), st.booleans())
def test_age_is_that_of_the_oldest_uncovered_sample_never_more(steps: list[tuple[int, int]], stall_first: bool) -> None:
    """Against an oracle that keeps every sample: the age is exact while the oracle's oldest
    waiting sample is still kept (always, unless thinned), never over-stated; memory is bounded."""
    end = done = 0
    kept: list[tuple[float, int]] = []
    state = Backlog()
    for i, (produced, read) in enumerate(steps):
        end += produced
        # optionally a long stall first, so the history is thinned before the group reads again
        stalled = stall_first and i < MAX_SAMPLES + 100
        done = done if stalled else min(end, done + read)
        now = float(i)
        kept.append((now, end))
        state = observe(state, now, {0: end}, {0: done})
        uncovered = [t for t, e in kept if e > done]
        oracle = now - uncovered[0] if uncovered else 0.0
        if not uncovered or uncovered[0] in {s.at for s in state.samples}:
            assert state.behind_s == oracle
        else:
            assert 0.0 <= state.behind_s < oracle
        assert len(state.samples) <= MAX_SAMPLES
        assert state.waiting == end - done


def test_decide_raises_once_clears_with_hysteresis_and_clears_an_unknown_state() -> None:
    def at(age: float) -> Backlog:
        return Backlog(behind_s=age)

    assert decide(at(10), None, 60).action == "clear"  # a fresh watch: clear whatever an earlier run left
    assert decide(at(40), None, 60).action is None  # not sure either way: wait
    raised = decide(at(61), False, 60)
    assert raised.action == "raise" and raised.raised is True
    assert decide(at(120), True, 60).action is None  # once per episode
    assert decide(at(45), True, 60).action is None  # under the threshold, not yet under half
    cleared = decide(at(29), True, 60)
    assert cleared.action == "clear" and cleared.raised is False
    assert decide(at(5), False, 60).action is None


def test_the_alarm_says_what_is_not_happening_and_what_to_do() -> None:
    state = run([(0.0, {0: 5}, {}), (100.0, {0: 250}, {})])
    trig = water_rules_trigger(state, 100.0, "sensors.pool", "leitstand-water")
    assert trig.subject_type == "system" and trig.severity == "major"
    assert "100 s" in trig.message and "250" in trig.message and "--role water" in trig.message and "leitstand-water" in trig.message
    # the same episode keeps its trigger, so a restarted watch's raise is evidence, not a second alarm
    later = observe(state, 130.0, {0: 300}, {})
    assert water_rules_trigger(later, 130.0, "sensors.pool", "g").trigger == trig.trigger


def test_a_stall_longer_than_the_history_keeps_the_oldest_age_and_never_overstates_after() -> None:
    state = Backlog()
    for t in range(2 * MAX_SAMPLES):  # a group that never reads, one record per sample
        state = observe(state, float(t), {0: t + 1}, {0: 0})
    assert len(state.samples) <= MAX_SAMPLES and state.behind_s == 2 * MAX_SAMPLES - 1
    # it reads half of what waits: the oldest still waiting was put there at t = MAX_SAMPLES
    state = observe(state, float(2 * MAX_SAMPLES), {0: 2 * MAX_SAMPLES}, {0: MAX_SAMPLES})
    assert MAX_SAMPLES - 2 <= state.behind_s <= MAX_SAMPLES
