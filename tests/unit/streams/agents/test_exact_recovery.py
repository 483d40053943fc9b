"""Exact recovery, as pure maths: states that carry their source offsets plus per-partition
checkpoints give, after a crash at any point, exactly the states and windows of a run that
never stopped (streams/agents/wiring.py, docs/architecture.md "Exact recovery").

The crash model: a restarted worker recovers, per changelog partition, *some prefix* of what
was written (anything from nothing to everything), and the group's committed offset is anywhere
up to what was processed. The source resumes at the older of the committed offset and the
recovered checkpoint; batches after the restart are cut differently from before.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from detection.alarms import EscalationPolicy
from simulators.city.frames import frames as frame_source
from streams.agents import aggregation, alarm_lifecycle, traffic_incidents
from streams.agents.wiring import (
    OFFSET,
    applied,
    checkpoint_key,
    checkpoints,
    is_checkpoint,
    rewind_targets,
    stamped,
)
from streams.codec import RawMessage
from streams.ingest import Positioned, batch_ends
from streams.records import LifecycleCommand, encode
from streams.settings import Settings
from streams.stores import key_partition

TOPIC = "sensors.intersection"
PARTITIONS = 3
NOW = 1_800_000_000.0
SETTINGS = Settings(_env_file=None, aggregate_lateness_s=0.0, aggregate_window_s=60, topic_partitions=PARTITIONS)
START = datetime(2026, 11, 30, 8, 0, tzinfo=timezone.utc)


def positioned(records: list[Any], key_of: Any) -> list[Positioned[Any]]:
    """Records as they arrive: each on its key's partition at the next offset there."""
    nxt = [0] * PARTITIONS
    out = []
    for r in records:
        key = key_of(r).encode()
        p = key_partition(key, PARTITIONS)
        out.append(Positioned(RawMessage(TOPIC, p, nxt[p], key, encode(r)), r))
        nxt[p] += 1
    return out


def cut(items: list[Any], rng: random.Random) -> list[list[Any]]:
    """Random batches (1-40 records), order kept."""
    out, i = [], 0
    while i < len(items):
        n = rng.randint(1, 40)
        out.append(items[i : i + n])
        i += n
    return out


class Run:
    """The aggregation agent's batch loop over a plain dict, logging every table write."""

    def __init__(self, table: dict[bytes, Any] | None = None, replay_until: list[int] | None = None) -> None:
        self.table: dict[bytes, Any] = dict(table or {})
        self.changelog: list[tuple[int, bytes, Any]] = []
        self.emitted: list[Any] = []
        self.replay_until = replay_until or [0] * PARTITIONS

    def batch(self, batch: list[Positioned[Any]]) -> None:
        fold = aggregation.fold_batch(self.table, batch, SETTINGS, NOW, lambda raw: raw.offset < self.replay_until[raw.partition])
        self.emitted += fold.closed
        ends = batch_ends(p.raw for p in batch)
        for key, value in {**fold.updates, **checkpoints(ends, PARTITIONS)}.items():
            self.table[key] = value
            self.changelog.append((key_partition(key, PARTITIONS), key, value))


def recovered(changelog: list[tuple[int, bytes, Any]], keep: list[int]) -> dict[bytes, Any]:
    """The table rebuilt from the first ``keep[p]`` changelog records of each partition."""
    seen = [0] * PARTITIONS
    table: dict[bytes, Any] = {}
    for p, key, value in changelog:
        if seen[p] < keep[p]:
            table[key] = value
        seen[p] += 1
    return table


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 10_000), crash_at=st.floats(0.0, 1.0), all_committed=st.booleans(), data=st.data())
def test_any_crash_recovers_the_states_and_windows_of_a_run_that_never_stopped(
    seed: int, crash_at: float, all_committed: bool, data: Any
) -> None:
    rng = random.Random(seed)
    frames = list(frame_source(intersections=5, start=START, interval_s=15.0, steps=24, seed=seed))
    arrivals = positioned(frames, lambda f: f.intersection_id)

    clean = Run()
    for b in cut(arrivals, rng):
        clean.batch(b)

    # the first worker processes a prefix of the arrivals, then stops
    done = int(len(arrivals) * crash_at)
    first = Run()
    for b in cut(arrivals[:done], rng):
        first.batch(b)
    per_partition = [sum(1 for p, _, _ in first.changelog if p == q) for q in range(PARTITIONS)]
    keep = [data.draw(st.integers(0, n), label=f"changelog kept of p{q}") for q, n in enumerate(per_partition)]
    processed = [max((m.raw.offset + 1 for m in arrivals[:done] if m.raw.partition == q), default=0) for q in range(PARTITIONS)]
    committed = processed if all_committed else [data.draw(st.integers(0, n), label=f"committed p{q}") for q, n in enumerate(processed)]

    table = recovered(first.changelog, keep)
    targets = rewind_targets(table.items(), {TOPIC}, [(TOPIC, q) for q in range(PARTITIONS)], PARTITIONS)
    resume = [min(committed[q], targets.get((TOPIC, q), committed[q])) for q in range(PARTITIONS)]
    second = Run(table, replay_until=committed)
    for b in cut([m for m in arrivals if m.raw.offset >= resume[m.raw.partition]], rng):
        second.batch(b)

    def states(t: dict[bytes, Any]) -> dict[bytes, Any]:
        return {k: v for k, v in t.items() if not is_checkpoint(k)}

    assert states(second.table) == states(clean.table)
    want = {a.aggregate_id: a for a in clean.emitted}
    got = first.emitted + second.emitted
    assert {a.aggregate_id for a in got} == set(want)
    assert all(a == want[a.aggregate_id] for a in got)  # a repeat is identical, never partial
    if all_committed:  # everything processed was committed: nothing is sent twice
        assert len(got) == len(want)


def test_checkpoint_keys_land_on_their_partition_and_are_no_entity_ids() -> None:
    for partitions in (1, 3, 6, 12):
        for p in range(partitions):
            key = checkpoint_key("lt.sensors.intersection", p, partitions)
            assert key_partition(key, partitions) == p and is_checkpoint(key)
    assert not is_checkpoint(b"K1")


def test_rewind_targets() -> None:
    ck = checkpoints({(TOPIC, 0): 17}, PARTITIONS)
    legacy_key = next(k for k in (f"L{i}".encode() for i in range(100)) if key_partition(k, PARTITIONS) == 2)
    items = [*ck.items(), (legacy_key, {"windows": {}})]
    got = rewind_targets(items, {TOPIC}, [(TOPIC, 0), (TOPIC, 1), (TOPIC, 2), ("other", 0)], PARTITIONS)
    # p0: its checkpoint; p1: nothing recovered, from the start; p2: a table from before offsets: as committed
    assert got == {(TOPIC, 0): 17, (TOPIC, 1): 0}


def test_stamped_never_moves_back() -> None:
    assert applied(None) == -1 and applied({}) == -1
    s = stamped({"a": 1}, 5)
    assert s == {"a": 1, OFFSET: 5} and applied(stamped(s, 3)) == 5


def _command(i: int) -> LifecycleCommand:
    return LifecycleCommand(
        schema_version=1,
        event_time=START + timedelta(seconds=i),
        op="raise",
        subject_id="pool-1",
        kind="motionless_swimmer",
        severity="critical",
        trigger=f"ev-{i}",
        message="m",
    )


def test_a_recovered_book_skips_commands_it_already_reflects() -> None:
    policy = EscalationPolicy(ack_timeout_s={"critical": 60, "major": 60, "minor": 60}, levels=1)
    cmds = positioned([_command(i) for i in range(3)], lambda c: c.subject_id)
    books: dict[bytes, Any] = {}
    updates, changes = alarm_lifecycle.book_changes(books, cmds[:2], NOW, policy)
    assert [c.transition for c in changes] == ["raised", "occurred"]
    books.update(updates)
    # the source resumes before both: only the third makes a transition
    updates, changes = alarm_lifecycle.book_changes(books, cmds, NOW, policy)
    assert [(c.transition, c.alarm.occurrences) for c in changes] == [("occurred", 3)]
    assert applied(updates[b"pool-1"]) == cmds[2].raw.offset


def test_escalation_keeps_the_books_offset() -> None:
    policy = EscalationPolicy(ack_timeout_s={"critical": 1, "major": 1, "minor": 1}, levels=2)
    cmds = positioned([_command(0)], lambda c: c.subject_id)
    books, _ = alarm_lifecycle.book_changes({}, cmds, NOW, policy)
    books[checkpoint_key(TOPIC, 0, PARTITIONS)] = {"topic": TOPIC, "partition": 0, "next": 1}
    updates, changes, open_count = alarm_lifecycle.due_escalations(books, NOW + 5, policy)
    assert [c.transition for c in changes] == ["escalated"] and open_count == 1
    assert applied(updates[b"pool-1"]) == cmds[0].raw.offset


def test_incident_watch_skips_frames_its_state_reflects() -> None:
    frames = positioned(list(frame_source(intersections=1, start=START, interval_s=15.0, steps=6, seed=3)), lambda f: f.intersection_id)
    table: dict[bytes, Any] = {}
    updates, _ = traffic_incidents.watch_frames(table, frames[:4])
    table.update(updates)
    again, commands = traffic_incidents.watch_frames(table, frames[:4])
    assert again == {} and commands == []
    more, _ = traffic_incidents.watch_frames(table, frames)
    assert applied(next(iter(more.values()))) == frames[-1].raw.offset


def test_replayed_commands_rebuild_the_book_without_sending_again() -> None:
    policy = EscalationPolicy(ack_timeout_s={"critical": 60, "major": 60, "minor": 60}, levels=1)
    cmds = positioned([_command(i) for i in range(3)], lambda c: c.subject_id)
    updates, changes = alarm_lifecycle.book_changes({}, cmds, NOW, policy, lambda raw: raw.offset < cmds[2].raw.offset)
    assert [(c.transition, c.alarm.occurrences) for c in changes] == [("occurred", 3)]
    assert applied(updates[b"pool-1"]) == cmds[2].raw.offset


def test_silence_counts_neither_downtime_nor_backlog() -> None:
    from streams.agents.wiring import SourceTracking

    class Table:
        name = "t"

        def on_recover(self, fun: Any) -> None:
            self.fun = fun

    tracking = SourceTracking(app=None, table=Table(), topics=[TOPIC], partitions=PARTITIONS)  # type: ignore[arg-type]
    resumed = tracking.quiet_since()
    tracking.observe(batch_size=10, max_batch=200)
    assert tracking.quiet_since() == resumed  # caught up: silence counts from the recovery
    tracking.observe(batch_size=200, max_batch=200)
    assert tracking.quiet_since() >= resumed and tracking.quiet_since() == tracking.behind_at


def test_read_back_starts_at_the_oldest_recorded_output_position() -> None:
    from streams.agents.wiring import readback_starts

    marks = checkpoints({(TOPIC, 0): 10, (TOPIC, 1): 4}, PARTITIONS)
    items = [
        (k, {**v, "out": {"aggregates:0": 7, "aggregates:1": 3}} if v["partition"] == 0 else {**v, "out": {"aggregates:0": 5}})
        for k, v in marks.items()
    ]
    starts = readback_starts(items, ["aggregates"], [(TOPIC, 0), (TOPIC, 1)], 2)
    # p1's checkpoint never saw aggregates:1 move: from its start
    assert starts == {"aggregates:0": 5, "aggregates:1": 0}
    assert readback_starts(items, ["aggregates"], [(TOPIC, 0)], 2) == {"aggregates:0": 7, "aggregates:1": 3}


def test_a_repeated_transition_has_the_identity_of_the_first() -> None:
    policy = EscalationPolicy(ack_timeout_s={"critical": 60, "major": 60, "minor": 60}, levels=1)
    cmds = positioned([_command(0)], lambda c: c.subject_id)
    _, first = alarm_lifecycle.book_changes({}, cmds, NOW, policy)
    _, again = alarm_lifecycle.book_changes({}, cmds, NOW + 30, policy)  # re-applied later: other deadline
    a, b = (alarm_lifecycle.alert_record(c[0], t) for c, t in ((first, NOW), (again, NOW + 30)))
    assert a != b and alarm_lifecycle.alert_identity(None, a) == alarm_lifecycle.alert_identity(None, b)


def test_read_back_gives_up_a_partition_only_after_it_stood_still_for_the_limit() -> None:
    from streams.agents.wiring import Stall

    now = [0.0]
    stall = Stall(10.0, clock=lambda: now[0])
    assert not stall.stuck("p0", 5)
    now[0] = 9.9
    assert not stall.stuck("p0", 5)  # not yet
    now[0] = 12.0
    assert not stall.stuck("p0", 6)  # it moved: the clock starts again
    now[0] = 21.9
    assert not stall.stuck("p0", 6)
    assert not stall.stuck("p1", 0)  # partitions are apart
    now[0] = 22.0
    assert stall.stuck("p0", 6)
    assert not stall.stuck("p1", 0)


def test_an_acknowledgement_re_routed_after_a_crash_does_not_acknowledge_a_rearmed_alarm() -> None:
    """The router re-keying ``alerts.acks`` onto ``alerts.lifecycle`` is at-least-once: after a
    crash it sends an acknowledgement again, at a new offset the book's offset check cannot
    recognise. Between the two a second swimmer re-armed the alarm (stop 55's probe: the old
    acknowledgement then acknowledged the new swimmer and stopped its escalation)."""
    from streams.records import AlertCommand

    policy = EscalationPolicy(ack_timeout_s={"critical": 60, "major": 60, "minor": 60}, levels=1)
    aid = alarm_lifecycle.alarms.alarm_id("motionless_swimmer", "pool-1", "ev-0")
    ack = AlertCommand(schema_version=1, event_time=START + timedelta(seconds=5), alert_id=aid, action="acknowledge", by="sup", note="ok")
    _, routed = alarm_lifecycle.command_for(ack)
    assert alarm_lifecycle.command_for(ack)[1].command_id == routed.command_id  # routed twice: the same command
    later = AlertCommand(schema_version=1, event_time=START + timedelta(seconds=9), alert_id=aid, action="acknowledge", by="sup")
    assert alarm_lifecycle.command_for(later)[1].command_id != routed.command_id  # acting again later: a new one
    # the first swimmer, the acknowledgement, a second swimmer, the acknowledgement re-sent
    stream = positioned([_command(0), routed, _command(7), routed], lambda c: c.subject_id)
    updates, changes = alarm_lifecycle.book_changes({}, stream, NOW, policy)
    assert changes[0].alarm.alarm_id == aid
    changes = changes[1:]
    assert [c.transition for c in changes] == ["acknowledged", "reraised"]
    assert updates[b"pool-1"]["open"]["motionless_swimmer"]["state"] == "raised"
