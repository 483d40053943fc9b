"""The alarm state machine: dedup, deterministic ids, ack, escalation, clear vs resolve."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from detection import alarms
from detection.alarms import AlarmTrigger, EscalationPolicy, alarm_id, subject_of
from detection.pool_watch import PoolProfile, reading_outcome, supervision_outcome
from detection.water_rules import limits_for

POLICY = EscalationPolicy(ack_timeout_s={"critical": 30.0, "major": 600.0, "minor": 3600.0}, levels=3)


def trig(kind: str = "motionless_swimmer", trigger: str = "E1", severity: str = "critical", subject: str = "P1") -> AlarmTrigger:
    return AlarmTrigger(subject, kind, severity, trigger, 100.0, "msg", {"zone": "A"})  # type: ignore[arg-type]


def test_ids_are_deterministic_and_name_their_subject() -> None:
    a = alarm_id("motionless_swimmer", "Bad Nord/P1", "E1")
    assert a == alarm_id("motionless_swimmer", "Bad Nord/P1", "E1")
    assert a != alarm_id("motionless_swimmer", "Bad Nord/P1", "E2")
    assert subject_of(a) == "Bad Nord/P1"
    assert subject_of("garbage") is None and subject_of("k@s~short") is None


def test_redelivered_trigger_changes_nothing_while_open_and_after_resolution() -> None:
    book, ch = alarms.raise_alarm(None, trig(), 100.0, POLICY)
    assert [c.transition for c in ch] == ["raised"]
    again, ch = alarms.raise_alarm(book, trig(), 101.0, POLICY)
    assert ch == [] and again == book
    aid = alarms.open_alarms(book)[0].alarm_id
    book, _ = alarms.resolve(book, aid, "sup", 110.0)
    book, ch = alarms.raise_alarm(book, trig(), 120.0, POLICY)
    assert ch == [] and alarms.open_alarms(book) == []


def test_second_trigger_of_same_kind_adds_evidence_not_a_second_alarm() -> None:
    book, _ = alarms.raise_alarm(None, trig(trigger="E1"), 100.0, POLICY)
    book, ch = alarms.raise_alarm(book, trig(trigger="E2"), 105.0, POLICY)
    assert [c.transition for c in ch] == ["occurred"]
    (only,) = alarms.open_alarms(book)
    assert only.occurrences == 2 and only.alarm_id == alarm_id("motionless_swimmer", "P1", "E1")


def test_unacknowledged_alarm_escalates_level_by_level_and_ack_stops_it() -> None:
    book, _ = alarms.raise_alarm(None, trig(), 100.0, POLICY)
    book, ch = alarms.escalate_due(book, 129.0, POLICY)
    assert ch == []
    book, ch = alarms.escalate_due(book, 130.0, POLICY)
    assert [(c.transition, c.alarm.level) for c in ch] == [("escalated", 1)]
    book, ch = alarms.escalate_due(book, 160.0, POLICY)
    assert [(c.transition, c.alarm.level) for c in ch] == [("escalated", 2)]
    book, ch = alarms.escalate_due(book, 190.0, POLICY)
    assert [(c.transition, c.alarm.level) for c in ch] == [("escalated", 2)]  # re-sent at the last level
    aid = alarms.open_alarms(book)[0].alarm_id
    book, ch = alarms.acknowledge(book, aid, "sup-1", 195.0)
    assert ch[0].alarm.acknowledged_by == "sup-1" and ch[0].alarm.deadline is None
    assert alarms.escalate_due(book, 10_000.0, POLICY)[1] == []
    assert alarms.acknowledge(book, aid, "sup-2", 196.0)[1] == []  # twice: no change


def test_clearing_resolves_only_acknowledged_non_critical_alarms() -> None:
    water = trig("water_ph", "t0", "major")
    book, _ = alarms.raise_alarm(None, water, 0.0, POLICY)
    book, ch = alarms.clear_condition(book, "water_ph", 50.0)
    assert [c.transition for c in ch] == ["updated"] and not ch[0].alarm.active  # nobody saw it yet
    aid = ch[0].alarm.alarm_id
    book, ch = alarms.acknowledge(book, aid, "sup", 60.0)
    assert [c.transition for c in ch] == ["acknowledged", "resolved"]
    assert alarms.open_alarms(book) == []

    book, _ = alarms.raise_alarm(None, trig(), 0.0, POLICY)
    aid = alarms.open_alarms(book)[0].alarm_id
    book, _ = alarms.acknowledge(book, aid, "sup", 5.0)
    book, ch = alarms.clear_condition(book, "motionless_swimmer", 6.0)
    assert [c.transition for c in ch] == ["updated"]  # a person at risk: a person closes it


def test_unknown_alarm_is_an_error_but_closed_one_is_quiet() -> None:
    with pytest.raises(alarms.UnknownAlarm):
        alarms.acknowledge(None, "x@P1~000000000000", "sup", 0.0)
    book, ch = alarms.raise_alarm(None, trig(), 0.0, POLICY)
    aid = ch[0].alarm.alarm_id
    book, _ = alarms.resolve(book, aid, "sup", 1.0)
    assert alarms.resolve(book, aid, "sup", 2.0)[1] == []


def test_supervision_events_map_to_critical_alarms_and_restores_clear() -> None:
    out = supervision_outcome("P1", "E9", "motionless_swimmer", 5.0, {"zone": "deep end", "confidence": 0.9, "persons": None})
    (t,) = out.triggers
    assert t.severity == "critical" and t.trigger == "E9" and "deep end" in t.message
    assert t.evidence == {"zone": "deep end", "confidence": 0.9, "camera_event_id": "E9"}
    assert supervision_outcome("P1", "E10", "camera_restored", 6.0, {}).clears == ["camera_fault"]
    assert supervision_outcome("P1", "E11", "camera_fault", 6.0, {}).triggers[0].severity == "minor"


def test_visitors_over_capacity_raise_once_and_clear() -> None:
    profile = PoolProfile(limits_for("swimmer"), capacity=100)
    state, out = reading_outcome(None, "P1", 0.0, {}, 120, profile)
    assert [t.kind for t in out.triggers] == ["overcrowding"]
    state, out = reading_outcome(state, "P1", 10.0, {}, 130, profile)
    assert out.triggers == []
    state, out = reading_outcome(state, "P1", 20.0, {}, 80, profile)
    assert out.clears == ["overcrowding"]


ops = st.lists(
    st.one_of(
        st.tuples(st.just("raise"), st.sampled_from(["motionless_swimmer", "water_ph"]), st.sampled_from(["a", "b", "c"])),
        st.tuples(st.just("clear"), st.sampled_from(["motionless_swimmer", "water_ph"]), st.just("")),
        st.tuples(
            st.sampled_from(["ack", "resolve"]), st.sampled_from(["motionless_swimmer", "water_ph"]), st.sampled_from(["a", "b", "c"])
        ),
        st.tuples(st.just("tick"), st.just(""), st.just("")),
    ),
    max_size=40,
)


@settings(max_examples=200)
@given(ops)
def test_lifecycle_invariants(sequence) -> None:
    """Any sequence: one open alarm per kind, a resolved id never reopens, raised once per id."""
    book, now, raised = None, 0.0, []
    for op, kind, key in sequence:
        now += 7.0
        sev = "critical" if kind == "motionless_swimmer" else "major"
        try:
            if op == "raise":
                book, ch = alarms.raise_alarm(book, trig(kind, key, sev), now, POLICY)
            elif op == "clear":
                book, ch = alarms.clear_condition(book, kind, now)
            elif op == "tick":
                book, ch = alarms.escalate_due(book, now, POLICY)
            else:
                fn = alarms.acknowledge if op == "ack" else alarms.resolve
                book, ch = fn(book, alarm_id(kind, "P1", key), "sup", now)
        except alarms.UnknownAlarm:
            continue
        raised += [c.alarm.alarm_id for c in ch if c.transition == "raised"]
        kinds = [a.kind for a in alarms.open_alarms(book)]
        assert len(kinds) == len(set(kinds))
        assert not {a.alarm_id for a in alarms.open_alarms(book)} & set(book["closed"])
        for a in alarms.open_alarms(book):
            assert a.state != "resolved" and 0 <= a.level < POLICY.levels
    assert len(raised) == len(set(raised))


def test_a_broken_probe_raises_a_sensor_alarm_not_a_water_alarm() -> None:
    profile = PoolProfile(limits_for("swimmer", min_duration_s=0.0))
    state, out = reading_outcome(None, "P1", 0.0, {"ph": 7.0}, None, profile)
    assert out.triggers == []
    state, out = reading_outcome(state, "P1", 10.0, {"ph": 10.5}, None, profile)  # 3.5 pH in 10 s
    assert [(t.kind, t.severity, t.evidence["reason"]) for t in out.triggers] == [("sensor_ph", "minor", "impossible_jump")]
    state, out = reading_outcome(state, "P1", 20.0, {"ph": 7.05}, None, profile)
    assert out.triggers == [] and out.clears == ["sensor_ph"]
    # a real drift out of range, step by step, is a water alarm
    kinds = []
    for i, ph in enumerate((7.15, 7.3, 7.5, 7.7)):
        state, out = reading_outcome(state, "P1", 30.0 + 10 * i, {"ph": ph}, None, profile)
        kinds += [t.kind for t in out.triggers]
    assert kinds == ["water_ph"] and state["rules"]["ph"]["violated"]


def test_new_occurrence_of_an_acknowledged_critical_alarm_rearms_it() -> None:
    book, _ = alarms.raise_alarm(None, trig(trigger="E1"), 100.0, POLICY)
    aid = alarms.open_alarms(book)[0].alarm_id
    book, _ = alarms.acknowledge(book, aid, "sup", 105.0)
    book, ch = alarms.raise_alarm(book, AlarmTrigger("P1", "motionless_swimmer", "critical", "E2", 200.0, "again"), 200.0, POLICY)
    assert [c.transition for c in ch] == ["reraised"]
    a = ch[0].alarm
    assert a.alarm_id == aid and a.state == "raised" and a.acknowledged_by is None and a.deadline == 230.0
    assert a.occurrences == 2 and a.last_occurrence_at == 200.0
    assert alarms.raise_alarm(book, AlarmTrigger("P1", "motionless_swimmer", "critical", "E2", 200.0, "again"), 201.0, POLICY)[1] == []
    # a non-critical alarm only counts the occurrence
    book, _ = alarms.raise_alarm(None, trig("water_ph", "t0", "major"), 0.0, POLICY)
    book, _ = alarms.acknowledge(book, alarms.open_alarms(book)[0].alarm_id, "sup", 1.0)
    book, ch = alarms.raise_alarm(book, trig("water_ph", "t1", "major"), 2.0, POLICY)
    assert [(c.transition, c.alarm.state) for c in ch] == [("occurred", "acknowledged")]


def test_a_trigger_absorbed_by_a_closed_alarm_does_not_open_a_new_one() -> None:
    """Redelivered after a worker crash, the second swimmer event of an alarm a person resolved
    opened a brand-new critical alarm (a probe of stop 55: 9 in 6 kill -9 runs)."""
    book, _ = alarms.raise_alarm(None, trig(trigger="E1"), 100.0, POLICY)
    book, ch = alarms.raise_alarm(book, trig(trigger="E2"), 110.0, POLICY)
    assert [c.transition for c in ch] == ["occurred"]
    book, _ = alarms.resolve(book, alarms.open_alarms(book)[0].alarm_id, "sup", 120.0)
    for again in ("E2", "E1"):
        book, ch = alarms.raise_alarm(book, trig(trigger=again), 130.0, POLICY)
        assert ch == [] and alarms.open_alarms(book) == []
    book, ch = alarms.raise_alarm(book, trig(trigger="E3"), 140.0, POLICY)  # a new event is a new alarm
    assert [c.transition for c in ch] == ["raised"]


def test_the_same_command_applied_again_does_not_acknowledge_a_rearmed_alarm() -> None:
    """After a crash the router re-sent an acknowledgement; a second swimmer had re-armed the
    alarm meanwhile, and the old acknowledgement (its person, its note) acknowledged the new
    swimmer, escalation stopped (a probe of stop 55, 2 of 2 deterministic runs)."""
    book, _ = alarms.raise_alarm(None, trig(trigger="E1"), 100.0, POLICY)
    aid = alarms.open_alarms(book)[0].alarm_id
    book, ch = alarms.acknowledge(book, aid, "sup", 105.0, "first swimmer", command="c1")
    assert [c.transition for c in ch] == ["acknowledged"]
    book, ch = alarms.raise_alarm(book, trig(trigger="E2"), 110.0, POLICY)
    assert [(c.transition, c.alarm.note) for c in ch] == [("reraised", None)]  # the old note does not carry over
    book, ch = alarms.acknowledge(book, aid, "sup", 105.0, "first swimmer", command="c1")  # re-sent
    assert ch == [] and alarms.open_alarms(book)[0].state == "raised"
    book, ch = alarms.escalate_due(book, 200.0, POLICY)
    assert [c.transition for c in ch] == ["escalated"]
    book, ch = alarms.acknowledge(book, aid, "sup2", 201.0, "second swimmer", command="c2")  # a new command acts
    assert [(c.transition, c.alarm.acknowledged_by, c.alarm.note) for c in ch] == [("acknowledged", "sup2", "second swimmer")]
    book, ch = alarms.resolve(book, aid, "sup2", 210.0, command="c3")
    assert [c.transition for c in ch] == ["resolved"]
    assert alarms.resolve(book, aid, "sup2", 210.0, command="c3")[1] == []
    assert len(book["commands"]) == 3 and alarms.MAX_COMMAND_IDS >= 3


def test_books_written_before_the_command_memory_still_work() -> None:
    old: alarms.Book = {"open": {}, "closed": []}
    book, ch = alarms.raise_alarm(old, trig(trigger="E1"), 100.0, POLICY)
    assert [c.transition for c in ch] == ["raised"] and "commands" not in book and "closed_triggers" not in book
    book, ch = alarms.acknowledge(book, alarms.open_alarms(book)[0].alarm_id, "sup", 101.0)  # no command id: as before
    assert [c.transition for c in ch] == ["acknowledged"] and "commands" not in book
