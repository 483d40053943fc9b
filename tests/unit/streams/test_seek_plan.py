"""``faust_transport.seek_plan``: where Faust's ``perform_seek`` puts each assigned partition
after a rebalance. aiokafka's ``seek_to_committed`` leaves a partition without a commit (or with
a commit at 0) where the fetcher was, past records Faust dropped; ours seeks every stream
partition (docs/architecture.md "Exact recovery")."""

from __future__ import annotations

from aiokafka.structs import TopicPartition
from hypothesis import given
from hypothesis import strategies as st

from streams.faust_transport import seek_plan

CHANGELOG = "app-table-changelog"

partitions = st.builds(TopicPartition, st.sampled_from(["frames", "commands", CHANGELOG]), st.integers(0, 7))
commits = st.dictionaries(partitions, st.none() | st.integers(0, 10_000), max_size=24)


def test_no_commit_resets_and_a_commit_at_zero_seeks_to_zero() -> None:
    a, b, c = TopicPartition("frames", 0), TopicPartition("frames", 1), TopicPartition("frames", 2)
    plan = seek_plan({a: None, b: 0, c: 17}, {CHANGELOG})
    assert plan.to == {b: 0, c: 17} and plan.reset == [a]


def test_changelogs_keep_aiokafkas_rule() -> None:
    a, b, c = (TopicPartition(CHANGELOG, p) for p in range(3))
    plan = seek_plan({a: None, b: 0, c: 5}, {CHANGELOG})
    assert plan.to == {c: 5} and plan.reset == []


@given(commits)
def test_every_stream_partition_is_sought_exactly_once(committed: dict[TopicPartition, int | None]) -> None:
    plan = seek_plan(committed, {CHANGELOG})
    streams = {tp for tp in committed if tp.topic != CHANGELOG}
    assert set(plan.to) & set(plan.reset) == set()
    assert streams <= set(plan.to) | set(plan.reset)
    for tp, at in committed.items():
        if tp.topic == CHANGELOG:
            assert tp not in plan.reset and plan.to.get(tp) == (at or None)
        elif at is None:
            assert tp in plan.reset
        else:
            assert plan.to[tp] == at  # the commit, never the fetcher's position


@given(commits)
def test_where_aiokafka_seeks_we_seek_to_the_same_offset(committed: dict[TopicPartition, int | None]) -> None:
    """A commit past 0 is followed as before; only partitions aiokafka left alone change."""
    plan = seek_plan(committed, {CHANGELOG})
    for tp, at in committed.items():
        if at:
            assert plan.to[tp] == at
