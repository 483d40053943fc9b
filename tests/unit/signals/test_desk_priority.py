"""Bus priority at the control desk (signals/desk.py ``on_priority``): granted in automatic mode
within limits and driven from the next frame, refused and audited otherwise."""

from __future__ import annotations

from signals.desk import DeskCommand, DeskPriority

from .test_desk import T0, at, config, fresh, obs


def request(t: float, eta: float, stage: str = "A", iid: str = "K101") -> DeskPriority:
    return DeskPriority(iid, "tsp@K101~T1", "bus-1", "T1", stage, at(t), eta, 240.0)


def test_a_grant_drives_from_the_next_frame_and_is_explained_in_the_audit() -> None:
    desk = fresh()
    desk.on_config(config(controller="fixed", mode="automatic", params={}))
    for i in range(7):  # fixed program from T0: A green 0-36 s
        desk.on_observation(obs(i))
    box = desk.on_priority(request(T0 + 30, eta=10))
    [entry] = [a.entry for a in box.audit]
    assert entry.action == "priority_granted" and entry.actor == "bus:bus-1" and box.commands == [("priority", "applied")]
    assert entry.detail["kind"] == "extension" and entry.detail["seconds"] == 7.0
    assert entry.detail["delay_before_s"] == 240.0 and entry.detail["expected_delay_after_s"] < 240.0
    assert "green extension of 7 s for stage A" in entry.detail["explanation"]
    nxt = desk.on_observation(obs(7))
    assert nxt is not None
    drive = nxt.plans[-1].record  # type: ignore[union-attr]
    assert drive.status == "active" and drive.decision.explanation.controller == "transit-priority"
    assert drive.decision.plan.phases[0].green_s == 43.0
    again = desk.on_priority(request(T0 + 40, eta=10))
    assert again.audit[0].entry.action == "priority_refused" and "one per cycle" in again.audit[0].entry.detail["reason"]


def test_a_request_whose_bus_was_due_long_ago_is_refused_as_stale() -> None:
    """A request stamped 1970 was granted as a bus waiting at the line now (its arrival clamped
    to 0 s): one whose bus was due more than PRIORITY_STALE_S ago is refused, saying why."""
    from signals.desk import PRIORITY_STALE_S

    desk = fresh()
    desk.on_config(config(controller="fixed", mode="automatic", params={}))
    for i in range(7):
        desk.on_observation(obs(i))
    stale = desk.on_priority(request(T0 + 30 - PRIORITY_STALE_S - 20, eta=10))
    [entry] = [a.entry for a in stale.audit]
    assert entry.action == "priority_refused" and "stale: the bus was due at the stop line" in entry.detail["reason"]
    assert stale.commands == [("priority", "refused")]
    ancient = desk.on_priority(DeskPriority("K101", "tsp@K101~T9", "bus-9", "T9", "A", at(0.0), 20.0, 240.0))
    assert ancient.audit[0].entry.action == "priority_refused"
    # one due within the bound is judged as before (here: its stage is green, so no extension)
    fresh_enough = desk.on_priority(request(T0 + 30 - PRIORITY_STALE_S + 20, eta=10))
    assert fresh_enough.audit[0].entry.detail["reason"] == "the bus arrives while its stage is green"


def test_refused_in_advisory_mode_and_for_unknown_intersections() -> None:
    desk = fresh()
    desk.on_config(config())  # advisory
    desk.on_observation(obs(0))
    box = desk.on_priority(request(T0 + 5, eta=10))
    assert box.audit[0].entry.action == "priority_refused" and "automatic mode" in box.audit[0].entry.detail["reason"]
    unknown = desk.on_priority(request(T0 + 5, eta=10, iid="K999"))
    assert unknown.audit[0].entry.action == "priority_refused" and unknown.commands == [("priority", "refused")]


def test_an_adaptive_controller_takes_a_bus_call_in_automatic_mode_and_under_a_mandate_only() -> None:
    desk = fresh()
    desk.on_config(config(controller="leitstand", mode="automatic", params={}))
    for i in range(3):
        desk.on_observation(obs(i))
    box = desk.on_priority(request(T0 + 10, eta=10, stage="C"))
    [entry] = [a.entry for a in box.audit]
    assert entry.action == "priority_granted" and box.commands == [("priority", "applied")]
    assert entry.detail["kind"] == "bus_call" and entry.detail["weight_veh"] == 30.0
    assert entry.detail["until_s"] == T0 + 10 + 10 + 3 and "bus call on stage C" in entry.detail["explanation"]
    nxt = desk.on_observation(obs(3))
    assert nxt is not None
    effect = nxt.plans[-1].record.decision.explanation.expected_effect  # type: ignore[union-attr]
    assert "transit priority: bus bus-1" in effect

    advisory = fresh()
    advisory.on_config(config(controller="leitstand", mode="advisory", params={}))
    for i in range(3):
        advisory.on_observation(obs(i))
    refused = advisory.on_priority(request(T0 + 10, eta=10, stage="C"))
    assert refused.audit[0].entry.action == "priority_refused" and "mandate" in refused.audit[0].entry.detail["reason"]
    [mandate] = advisory.pending()
    advisory.on_command(DeskCommand("K101", "approve", "operator-7", at(T0 + 11), plan_id=mandate.record.plan_id))
    advisory.on_observation(obs(3))
    taken = advisory.on_priority(request(T0 + 15, eta=10, stage="C"))
    assert taken.audit[0].entry.action == "priority_granted" and taken.audit[0].entry.detail["kind"] == "bus_call"
