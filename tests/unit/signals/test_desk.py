"""The control desk (signals/desk.py) on core types alone: no records, no Faust, no table."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from signals.adapter import StageAdapter
from signals.blockage import BlockageEvent
from signals.controllers import DetectorObservation, LaneMeasurement
from signals.desk import ControlDesk, DeskCommand, DeskConfig, DeskState, Outbox, PlanOut, Saved, StalePlan
from signals.following import FollowEvent
from tests.paths import EXAMPLE_INTERSECTION as EXAMPLE

T0 = 1_800_000_000.0
COUNTS = {"N_in": 1, "S_in": 1, "N_left": 0, "S_left": 1, "E_in": 1, "W_in": 1}


def at(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, tz=UTC)


def config(**kw: Any) -> DeskConfig:
    base: dict[str, Any] = dict(
        intersection_id="K101",
        model=json.loads(EXAMPLE.read_text()),
        event_time=at(T0),
        controller="webster",
        mode="advisory",
        session="run-1",
        approval_timeout_s=60.0,
        params={"recompute_every_cycles": 1.0},
    )
    base.update(kw)
    return DeskConfig(**base)


def obs(i: int, iid: str = "K101") -> DetectorObservation:
    lanes = {k: LaneMeasurement(count=float(v), occupancy=0.1, speed_mps=8.0, queue_veh=1.0, vehicles=1.0) for k, v in COUNTS.items()}
    return DetectorObservation(iid, T0 + 5 * i, 5.0, lanes)


def fresh() -> ControlDesk:
    return ControlDesk(lambda _: None)


def drive(desk: ControlDesk, frames: range) -> list[Outbox]:
    outs = [desk.on_observation(obs(i)) for i in frames]
    assert all(o is not None for o in outs)
    return [o for o in outs if o is not None]


def statuses(box: Outbox) -> list[str]:
    return [p.record.status if isinstance(p, PlanOut) else "stale" for p in box.plans]


def test_a_config_starts_control_and_every_frame_ends_with_one_drive() -> None:
    desk = fresh()
    started = desk.on_config(config())
    assert [a.entry.action for a in started.audit] == ["control_started"] and started.dirty == {"K101"}
    assert desk.on_observation(obs(0, "K999")) is None and desk.unconfigured_frames == 1
    for box in drive(desk, range(25)):
        assert statuses(box)[-1] in ("active", "fallback", "fixed")
        assert sum(s in ("active", "fallback", "fixed") for s in statuses(box)) == 1
        assert {p.session for p in box.plans if isinstance(p, PlanOut)} == {"run-1"}
    [pending] = desk.pending()
    assert pending.record.status == "pending" and pending.now_s == T0 + 5 * 24


def test_a_command_is_applied_at_the_intersection_clock_and_counted() -> None:
    desk = fresh()
    desk.on_config(config())
    drive(desk, range(25))
    [pending] = desk.pending()
    out = desk.on_command(DeskCommand("K101", "approve", "operator-7", at(T0 + 10_000), plan_id=pending.record.plan_id))
    [entry] = out.audit
    assert entry.entry.at_s == T0 + 5 * 24 and entry.entry.detail["requested_at"] == at(T0 + 10_000).isoformat()
    assert statuses(out) == ["approved"] and out.commands == [("approve", "applied")]
    again = desk.on_command(DeskCommand("K101", "approve", "operator-7", at(T0 + 10_001), plan_id=pending.record.plan_id))
    assert again.commands == [("approve", "refused")] and [a.entry.action for a in again.audit] == ["command_refused"]
    assert [n.event for n in again.notes] == ["signal command refused"]


WALL0 = 5_000.0  # the worker's wall clock when frame 0 arrived (a replay: not the frames' epoch)


def heard(desk: ControlDesk, frames: range) -> float:
    """Frames arriving in real time; the wall clock at the last one."""
    for i in frames:
        assert desk.on_observation(obs(i), received_s=WALL0 + 5 * i) is not None
    return WALL0 + 5 * frames[-1]


def test_a_proposal_that_lapsed_while_the_detectors_were_silent_cannot_be_approved() -> None:
    desk = fresh()
    desk.on_config(config())
    last = heard(desk, range(25))
    [pending] = desk.pending(last)
    expires = pending.record.expires_at_s
    assert expires is not None and pending.now_s is not None
    lapsed = last + (expires - pending.now_s) + 1.0  # the window ran out in the silence
    assert desk.pending(lapsed) == [] and desk.pending() == [pending]  # no wall clock: nothing lapses
    assert desk.lapsed("K101", pending.record.plan_id, lapsed) and not desk.lapsed("K101", pending.record.plan_id, last)
    approve = DeskCommand("K101", "approve", "operator-7", at(T0 + 10_000), plan_id=pending.record.plan_id)
    out = desk.on_command(approve, received_s=lapsed)
    assert statuses(out) == ["expired"] and out.commands == [("approve", "refused")]
    expiry, refusal = (a.entry for a in out.audit)
    assert (expiry.action, expiry.actor, expiry.at_s) == ("plan_expired", "timer", expires + 1.0)
    assert f"no detector frames for {lapsed - last:.0f} s" in expiry.detail["reason"]
    assert refusal.action == "command_refused" and "expired" in refusal.detail["reason"]
    assert out.dirty == {"K101"}  # the snapshot no longer holds the proposal


def test_the_lapse_timer_expires_a_silent_intersections_proposal_without_any_command() -> None:
    """A detector outage with a proposal pending: the timer's tick after the window ran out
    publishes it expired (at the clock moved on by the silence) and the snapshot drops it; a tick
    inside the window, or for an intersection the worker no longer holds, does nothing."""
    desk = fresh()
    desk.on_config(config())
    last = heard(desk, range(25))
    [pending] = desk.pending(last)
    expires, made = pending.record.expires_at_s, pending.now_s
    assert expires is not None and made is not None
    inside, lapsed = last + (expires - made) - 1.0, last + (expires - made) + 3.0
    quiet = desk.expire_lapsed(inside)
    assert quiet.plans == [] and quiet.audit == [] and quiet.dirty == set()
    assert desk.expire_lapsed(lapsed, mine=lambda iid: iid != "K101").plans == []  # moved away: its owner's table
    out = desk.expire_lapsed(lapsed)
    [expired] = out.plans
    assert isinstance(expired, PlanOut) and expired.record.status == "expired" and expired.record.plan_id == pending.record.plan_id
    assert expired.now_s == expires + 3.0  # the intersection's clock moved on by the silence
    [entry] = (a.entry for a in out.audit)
    assert (entry.action, entry.actor, entry.at_s) == ("plan_expired", "timer", expires + 3.0)
    assert f"no detector frames for {lapsed - last:.0f} s" in entry.detail["reason"]
    assert out.dirty == {"K101"}
    snap = desk.snapshot("K101")
    assert snap is not None and snap.pending == ()
    assert desk.expire_lapsed(lapsed + 60).plans == []  # once
    approve = DeskCommand("K101", "approve", "operator-7", at(T0 + 10_000), plan_id=pending.record.plan_id)
    refused = desk.on_command(approve, received_s=lapsed + 1)
    assert statuses(refused) == [] and refused.commands == [("approve", "refused")]


def test_the_lapse_timer_leaves_flowing_frames_alone() -> None:
    """Frames 0.1 s apart (wall) in a fast replay: a tick between two frames expires nothing,
    however far the event clock has run ahead of the wall."""
    desk = fresh()
    desk.on_config(config())
    for i in range(25):
        desk.on_observation(obs(i), received_s=WALL0 + 0.1 * i)
        assert desk.expire_lapsed(WALL0 + 0.1 * i + 0.05).plans == []
    assert len(desk.pending(WALL0 + 2.45)) == 1


def test_a_proposal_still_inside_its_window_in_a_short_silence_is_approved_at_the_frame_clock() -> None:
    desk = fresh()
    desk.on_config(config())
    last = heard(desk, range(25))
    [pending] = desk.pending(last)
    assert pending.record.expires_at_s is not None and pending.now_s is not None
    inside = last + (pending.record.expires_at_s - pending.now_s) - 1.0
    assert desk.pending(inside) == [pending]
    out = desk.on_command(DeskCommand("K101", "approve", "operator-7", at(T0), plan_id=pending.record.plan_id), received_s=inside)
    assert statuses(out) == ["approved"] and out.audit[0].entry.at_s == T0 + 5 * 24


def test_frames_that_keep_coming_never_count_as_silence() -> None:
    """A fast replay: frames 5 s apart in event time arrive 0.1 s apart; a command 0.05 s after
    the last one applies with nothing lapsed, whatever the event clock's distance to the wall."""
    desk = fresh()
    desk.on_config(config())
    for i in range(25):
        desk.on_observation(obs(i), received_s=WALL0 + 0.1 * i)
    [pending] = desk.pending(WALL0 + 2.45)
    out = desk.on_command(DeskCommand("K101", "approve", "sim", at(T0), plan_id=pending.record.plan_id), received_s=WALL0 + 2.45)
    assert statuses(out) == ["approved"]


def test_a_command_for_an_unknown_intersection_is_refused_in_no_session() -> None:
    out = fresh().on_command(DeskCommand("K9", "set_mode", "duty", at(T0), mode="off"))
    [entry] = out.audit
    assert (entry.entry.action, entry.session, entry.entry.at_s) == ("command_refused", "-", T0)


def test_a_redelivered_config_changes_nothing_a_mode_change_is_a_command_a_new_session_restarts() -> None:
    desk = fresh()
    desk.on_config(config())
    drive(desk, range(25))
    desk.snapshot("K101")  # saved: only a change makes it dirty again
    redelivered = desk.on_config(config())
    assert not redelivered.audit and not redelivered.plans and not redelivered.dirty
    mode = desk.on_config(config(mode="automatic", event_time=at(T0 + 1)))
    # leaving advisory: the pending proposal expires, then the mode changes, both by the config
    assert [(a.entry.action, a.entry.actor) for a in mode.audit] == [("plan_expired", "config"), ("mode_changed", "config")]
    assert statuses(mode) == ["expired"]
    restarted = desk.on_config(config(session="run-2", event_time=at(T0 + 130)))
    assert [(a.entry.action, a.session) for a in restarted.audit] == [("control_stopped", "run-1"), ("control_started", "run-2")]


def test_an_unbuildable_config_is_refused_with_a_note_and_the_old_control_kept() -> None:
    desk = fresh()
    desk.on_config(config(controller="fixed", mode="automatic", params={}))
    out = desk.on_config(config(session="run-2", controller="fixed", params={"nonsense": 1.0}))
    [entry] = out.audit
    assert (entry.entry.action, entry.session, entry.entry.detail["kept_session"]) == ("config_refused", "run-1", "run-1")
    assert [n.event for n in out.notes] == ["signal config refused"] and not out.dirty
    assert desk.live["K101"].session == "run-1"


def test_a_config_whose_constants_are_out_of_range_is_refused_and_frames_go_on() -> None:
    """leitstand with ``wait_scale_s`` 0 was accepted and then divided by zero on every frame
    of its intersection; NaN and negative constants decided nonsense silently. Each is refused
    by name now, and the running control keeps deciding."""
    desk = fresh()
    desk.on_config(config(controller="leitstand", mode="automatic", params={}))
    for i, params in enumerate(({"wait_scale_s": 0.0}, {"stranded_weight": float("nan")}, {"decision_interval_s": -1.0})):
        out = desk.on_config(config(session=f"bad-{i}", controller="leitstand", mode="automatic", params=params))
        [entry] = out.audit
        assert entry.entry.action == "config_refused" and next(iter(params)) in str(entry.entry.detail), entry.entry.detail
    assert all(statuses(box)[-1] == "active" for box in drive(desk, range(40)))
    assert desk.live["K101"].session == "run-1"


def test_a_snapshot_read_back_restores_config_and_mode_and_expires_what_was_pending() -> None:
    desk = fresh()
    desk.on_config(config())
    drive(desk, range(25))
    snap = desk.snapshot("K101")
    assert snap is not None and len(snap.pending) == 1
    stale = tuple(StalePlan(p.record.plan_id, p.now_s or 0.0, saved=("as saved", p.record.plan_id)) for p in snap.pending)
    saved = Saved(snap.config, "off", stale)
    reborn = ControlDesk(lambda iid: saved if iid == "K101" else None)
    assert reborn.known("K101") and not reborn.live
    first = reborn.on_observation(obs(25))
    assert first is not None
    assert first.plans[0] is stale[0] and statuses(first)[-1] == "fixed"
    assert [a.entry.action for a in first.audit] == ["plan_expired", "control_restored"]
    assert first.audit[0].entry.at_s == T0 + 5 * 24 and first.dirty == {"K101"}
    assert reborn.live["K101"].control.mode == "off"  # the operator's mode, not the config's


def test_a_saved_config_that_no_longer_builds_is_logged_and_ignored() -> None:
    broken = Saved(config(controller="no-such-controller"), None)
    desk = ControlDesk(lambda _: broken)
    out = desk.on_config(config(session="run-2", controller="no-such-controller"))
    assert "stored signal config no longer builds" in [n.event for n in out.notes]
    assert desk.on_observation(obs(0)) is None


def test_an_approach_standing_through_its_greens_is_reported_blocked_once_and_cleared() -> None:
    """The desk judges each frame against the greens its signal showed during it: N_in (group
    K1) standing with nobody crossing through three of K1's greens is one blockage in the outbox;
    the first green that moves a vehicle clears it. The fixed program gives K1 green every cycle
    whatever the readings say."""
    desk = fresh()
    desk.on_config(config(controller="fixed", mode="automatic", params={}))
    events = blockages(desk, range(120), moving_from=80)
    assert [(e.detector, e.raised) for e in events] == [("N_in", True), ("N_in", False)]
    assert events[0].greens == 3 and T0 + 5 * 20 < events[0].time_s < T0 + 5 * 80 <= events[1].time_s


def blocked_frame(i: int, moving: bool) -> DetectorObservation:
    """K101 with N_in's four vehicles standing and nobody crossing (``moving`` False)."""
    lanes = {k: LaneMeasurement(count=1.0, queue_veh=1.0, vehicles=1.0) for k in COUNTS}
    lanes["N_in"] = LaneMeasurement(count=2.0, queue_veh=1.0, vehicles=1.0) if moving else LaneMeasurement(queue_veh=4.0, vehicles=4.0)
    return DetectorObservation("K101", T0 + 5 * i, 5.0, lanes)


def blockages(desk: ControlDesk, frames: range, moving_from: int) -> list[BlockageEvent]:
    outs = [desk.on_observation(blocked_frame(i, moving=i >= moving_from)) for i in frames]
    return [e for o in outs if o is not None for e in o.blockages]


def test_a_blockage_raised_before_a_restart_is_cleared_after_it() -> None:
    """The open blockage is saved with the intersection: after a restart the first green that
    moves N_in clears the alarm (before, it stayed open until someone resolved it by hand), and
    the blocked frames a restart redelivers do not raise it a second time."""
    desk = fresh()
    desk.on_config(config(controller="fixed", mode="automatic", params={}))
    assert [e.raised for e in blockages(desk, range(60), moving_from=999)] == [True]
    snap = desk.snapshot("K101")
    assert snap is not None and snap.blocked == ("N_in",)

    reborn = ControlDesk(lambda _: Saved(snap.config, snap.mode, (), snap.blocked))
    events = blockages(reborn, range(40, 120), moving_from=80)  # 40-59 redelivered, still blocked
    assert [(e.detector, e.raised) for e in events] == [("N_in", False)] and events[0].time_s >= T0 + 5 * 80
    forgetful = ControlDesk(lambda _: Saved(snap.config, snap.mode))  # what a restart kept before
    assert blockages(forgetful, range(40, 120), moving_from=80) == []  # the open alarm is never cleared


def test_a_new_setup_carries_an_open_blockage_and_clears_one_it_no_longer_watches() -> None:
    desk = fresh()
    desk.on_config(config(controller="fixed", mode="automatic", params={}))
    blockages(desk, range(60), moving_from=999)
    restarted = desk.on_config(config(controller="webster", mode="automatic", params={}, session="run-2", event_time=at(T0 + 300)))
    assert restarted.blockages == [] and desk.live["K101"].blockage.open() == ["N_in"]
    assert [e.raised for e in blockages(desk, range(60, 120), moving_from=60)] == [False]

    blockages(desk, range(120, 200), moving_from=999)
    assert desk.live["K101"].blockage.open() == ["N_in"]
    model = json.loads(EXAMPLE.read_text())
    model["lane_areas"] = [a for a in model["lane_areas"] if a["id"] != "N_in"]
    for a in model["lane_areas"]:
        a["downstream"] = [d for d in a.get("downstream", []) if d != "N_in"]
    new_model = config(controller="fixed", mode="automatic", params={}, session="run-3", model=model, event_time=at(T0 + 1000))
    dropped = desk.on_config(new_model)
    assert [a.entry.action for a in dropped.audit][-1] == "control_started"
    [cleared] = dropped.blockages
    assert (cleared.detector, cleared.raised) == ("N_in", False) and "no longer watched" in cleared.summary()


def reported(desk: ControlDesk, frames: range, stage_of: Any) -> list[FollowEvent]:
    """Frames, each followed by the field controller's report of the stage ``stage_of(i, drive)``
    shows; the events of both."""
    events: list[FollowEvent] = []
    for i in frames:
        box = desk.on_observation(obs(i))
        assert box is not None
        events += box.following
        drive = [p for p in box.plans if isinstance(p, PlanOut)][-1].record.decision
        events += desk.on_state(DeskState("K101", stage_of(i, drive), T0 + 5 * i, T0 + 5 * i)).following
    return events


def test_a_signal_keeping_its_own_stage_is_reported_and_its_plan_no_longer_lent() -> None:
    """A field controller stuck on stage A while the fixed program cycles: one alarm, the intersection
    saved as not following (a restart keeps it), and a neighbour asking what it shows gets no
    answer instead of the plan it ignores."""
    desk = fresh()
    desk.on_config(config(controller="fixed", mode="automatic", params={}))
    events = reported(desk, range(60), lambda _i, _d: "A")
    assert [e.raised for e in events] == [True] and events[0].reported == "A" and events[0].driven != "A"
    assert desk._shown_green("K101", obs(60)) is None  # noqa: SLF001 - the neighbours' view
    # and the drive records say so, for the neighbours' workers (signals.remote)
    box = desk.on_observation(obs(60))
    assert box is not None
    [drive] = [p for p in box.plans if isinstance(p, PlanOut)]
    assert drive.not_following and not fresh_drive_flag()
    snap = desk.snapshot("K101")
    assert snap is not None and snap.not_following
    reborn = ControlDesk(lambda _: Saved(snap.config, snap.mode, (), (), snap.not_following))
    reborn.on_observation(obs(61))
    assert reborn.live["K101"].follow.raised


def fresh_drive_flag() -> bool:
    """The flag on the first drive record of a signal nothing is known about."""
    desk = fresh()
    desk.on_config(config(controller="fixed", mode="automatic", params={}))
    box = desk.on_observation(obs(0))
    assert box is not None
    return [p for p in box.plans if isinstance(p, PlanOut)][-1].not_following


def test_a_signal_that_follows_raises_nothing_and_its_plan_is_lent() -> None:
    desk = fresh()
    desk.on_config(config(controller="fixed", mode="automatic", params={}))
    adapter = StageAdapter(desk.live["K101"].control.intersection)

    def shown(i: int, drive: Any) -> str:
        adapter.step(drive, T0 + 5 * i, 5.0)
        assert adapter.stage is not None
        return adapter.stage

    assert reported(desk, range(120), shown) == []
    assert desk._shown_green("K101", obs(120)) is not None  # noqa: SLF001
    assert not desk.snapshot("K101").not_following  # type: ignore[union-attr]


def test_a_state_report_for_an_intersection_not_configured_here_changes_nothing() -> None:
    box = fresh().on_state(DeskState("K999", "A", T0, T0))
    assert box.following == [] and box.dirty == set()


def test_no_blockage_is_judged_from_greens_a_signal_not_following_did_not_show() -> None:
    """Vehicles standing on N_in while the cabinet ignores the plan: the plan's greens for N_in
    were never shown, so no blocked-approach alarm comes of them (the not-following alarm is
    the one that tells the control room); with the cabinet following, the same frames raise it."""
    for stuck, expected in ((True, []), (False, [True])):
        desk = fresh()
        desk.on_config(config(controller="fixed", mode="automatic", params={}))
        adapter = StageAdapter(desk.live["K101"].control.intersection)
        events: list[BlockageEvent] = []
        for i in range(60):
            box = desk.on_observation(blocked_frame(i, moving=False))
            assert box is not None
            events += box.blockages
            drive = [p for p in box.plans if isinstance(p, PlanOut)][-1].record.decision
            adapter.step(drive, T0 + 5 * i, 5.0)
            shown = "A" if stuck else adapter.stage
            assert shown is not None
            desk.on_state(DeskState("K101", shown, T0 + 5 * i, T0 + 5 * i))
        assert [e.raised for e in events] == expected, stuck


def test_the_blockage_watch_starts_afresh_when_the_signal_follows_again() -> None:
    """A green of N_in in progress when the cabinet stopped following was the plan's: once it
    follows again the watch has no green running, and an alarm open before is still open."""
    desk = fresh()
    desk.on_config(config(controller="fixed", mode="automatic", params={}))
    blockages(desk, range(60), moving_from=999)  # N_in blocked: its alarm is open
    slot = desk.live["K101"]
    assert slot.blockage.open() == ["N_in"]
    slot.blockage.approaches["N_in"].green_s = 12.0  # a green running when the pause began
    slot.follow.raised = True
    cleared = desk._followed(slot, [FollowEvent("K101", False, T0, "A", "A", T0 - 20)])  # noqa: SLF001
    assert [e.raised for e in cleared] == [False]
    assert slot.blockage.open() == ["N_in"] and slot.blockage.approaches["N_in"].green_s == 0.0


def test_an_intersection_released_to_another_worker_is_restored_from_the_table_when_it_returns() -> None:
    """A rebalance moves K101 away: the desk forgets it. When it comes back, the saved state (an
    operator switched it off meanwhile, on the other worker) is what controls it, not the slot
    held before the move, and its pending proposal expires as after a restart."""
    table: dict[str, Saved] = {}
    desk = ControlDesk(table.get)
    desk.on_config(config())
    drive(desk, range(25))
    assert desk.release(lambda iid: iid != "K101") == ["K101"] and not desk.live and "K101" not in desk.latest
    assert desk.release(lambda iid: True) == []
    table["K101"] = Saved(config(), "off")  # what the other worker saved
    out = desk.on_observation(obs(25))
    assert out is not None and statuses(out)[-1] == "fixed" and desk.live["K101"].control.mode == "off"
    assert [a.entry.action for a in out.audit] == ["control_restored"]
