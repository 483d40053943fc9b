"""The control loop (signals/control.py) and the control desk (signals/desk.py) as the agent drives
it, records in and messages out through streams/signal_codec.py: modes, approvals, expiry, audit,
refusals and what a restart keeps. tests/unit/signals/test_desk.py tests the desk on core types alone."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec
import pytest

from signals.advisory import MANDATE_S
from signals.control import ControlError, IntersectionControl
from signals.controllers import DetectorObservation, LaneMeasurement
from signals.desk import ControlDesk, Outbox, PlanOut
from signals.explain import Explanation, StageDecision
from signals.loader import load_intersection
from signals.model import SignalPlan, StagePhase
from streams.records import (
    DetectorReading,
    IntersectionConfig,
    IntersectionFrame,
    SignalAction,
    SignalAuditMessage,
    SignalCommand,
    SignalMode,
    SignalPlanMessage,
)
from streams.signal_codec import (
    at,
    desk_command,
    desk_config,
    observation_from_frame,
    outbox_messages,
    plan_out_message,
    saved_from_value,
    snapshot_value,
)
from tests.paths import EXAMPLE_INTERSECTION as EXAMPLE

K101 = load_intersection(EXAMPLE)
FIXED = K101.fixed_plan
T0 = 1_800_000_000.0
COUNTS = {"N_in": 1, "S_in": 1, "N_left": 0, "S_left": 1, "E_in": 1, "W_in": 1}


def obs(i: int) -> DetectorObservation:
    lanes = {k: LaneMeasurement(count=float(v), occupancy=0.1, speed_mps=8.0, queue_veh=1.0, vehicles=1.0) for k, v in COUNTS.items()}
    return DetectorObservation("K101", T0 + 5 * i, 5.0, lanes)


def run(ctl: IntersectionControl, frames: range):
    return [ctl.on_observation(obs(i)) for i in frames]


def webster(mode: str = "advisory", timeout: float = 60.0) -> IntersectionControl:
    return IntersectionControl(K101, "webster", mode, timeout, recompute_every_cycles=1)  # type: ignore[arg-type]


class Stub:
    """A controller that proposes one fixed decision (or refuses to be asked)."""

    name, version = "stub", "0"

    def __init__(self, plan: SignalPlan | None) -> None:
        self.plan = plan

    def decide(self, o: DetectorObservation) -> StageDecision:
        if self.plan is None:
            raise AssertionError("the controller must not be consulted")
        return StageDecision("K101", o.time_s, self.plan, Explanation("stub", "0", "stub_rule", (), "test"), origin_s=T0)


# --- automatic -------------------------------------------------------------------------------------


def test_automatic_drives_admitted_decisions_and_never_proposes() -> None:
    steps = run(webster("automatic"), range(30))
    assert all(s.drive.status == "active" and not s.proposals for s in steps)
    recomputed = [s for s in steps if s.drive.decision.explanation.rule != "webster_initial_program"]
    assert recomputed, "webster recomputed within 30 frames"
    assert recomputed[0].drive.decision.plan != FIXED and recomputed[0].changed


def test_a_rejected_decision_falls_back_and_is_audited() -> None:
    ctl = IntersectionControl(K101, "fixed", "automatic")
    first = ctl.on_observation(obs(0))
    assert first.drive.status == "active"
    bad = SignalPlan((StagePhase("A", 2.0), StagePhase("B", 10.0), StagePhase("C", 28.0)))  # A below min green
    ctl._controller = Stub(bad)
    step = ctl.on_observation(obs(1))
    assert step.drive.status == "fallback"
    assert step.drive.decision.plan == FIXED  # the last admitted decision, not the bad one
    assert step.drive.violations and ctl.rejections == 1
    [entry] = [a for a in step.audit if a.action == "decision_rejected"]
    assert entry.actor == "validator" and entry.detail["violations"] == list(step.drive.violations)


def test_a_rejected_decision_falls_back_to_the_fixed_program_once_the_last_safe_window_has_run_out() -> None:
    """An acyclic window says nothing past its end: driven on, the stage adapter held its final
    stage for as long as decisions kept being rejected (every plan, with frames slower than a
    maximum green). The last safe window drives while it lasts, then the shipped program."""
    ctl = IntersectionControl(K101, "fixed", "automatic")
    window = SignalPlan((StagePhase("A", 12.0),), cyclic=False)
    ctl._controller = Stub(window)
    assert ctl.on_observation(obs(0)).drive.status == "active"
    ctl._controller = Stub(SignalPlan((StagePhase("A", 2.0), StagePhase("B", 10.0)), cyclic=False))  # A below min green
    inside, after = ctl.on_observation(obs(1)), ctl.on_observation(obs(3))  # 5 s and 15 s into a 12 s window
    assert inside.drive.status == after.drive.status == "fallback"
    assert inside.drive.decision.plan == window
    assert after.drive.decision.plan == FIXED and after.drive.violations


# --- advisory --------------------------------------------------------------------------------------


def test_advisory_holds_the_fixed_program_until_an_operator_approves() -> None:
    ctl = webster()
    steps = run(ctl, range(25))
    proposals = [p for s in steps for p in s.proposals]
    # one proposal per new plan, not one per frame (the initial program equals the fixed one)
    assert [p.status for p in proposals] == ["pending"]
    proposal = proposals[0]
    assert proposal.decision.plan != FIXED and proposal.expires_at_s == proposal.decision.time_s + 60.0
    assert all(s.drive.status == "fixed" and s.drive.decision.plan == FIXED for s in steps)
    audit = [a for s in steps for a in s.audit]
    assert [(a.action, a.actor, a.detail["plan"]) for a in audit] == [("plan_proposed", "webster", proposal.plan_id)]

    approved, entries = ctl.approve(proposal.plan_id, "operator-7", T0 + 125)
    assert approved.status == "approved" and approved.plan_id == proposal.plan_id
    assert [(e.action, e.actor, e.at_s) for e in entries] == [("plan_approved", "operator-7", T0 + 125)]
    assert not ctl.pending
    nxt = ctl.on_observation(obs(25))
    assert nxt.drive.status == "active" and nxt.drive.plan_id == proposal.plan_id and nxt.changed
    assert nxt.drive.decision.plan == proposal.decision.plan


def test_an_unapproved_proposal_expires_and_cannot_be_approved_after() -> None:
    ctl = webster(timeout=30.0)
    steps = run(ctl, range(20))
    [proposal] = [p for s in steps for p in s.proposals]
    later = run(ctl, range(20, 27))  # 30 s after it was proposed
    expired = [p for s in later for p in s.proposals]
    assert [(p.plan_id, p.status) for p in expired] == [(proposal.plan_id, "expired")]
    [entry] = [a for s in later for a in s.audit]
    assert (entry.action, entry.actor, entry.detail["plan"]) == ("plan_expired", "timer", proposal.plan_id)
    assert entry.at_s >= proposal.expires_at_s
    assert all(s.drive.status == "fixed" for s in later)
    with pytest.raises(ControlError, match="no pending plan"):
        ctl.approve(proposal.plan_id, "operator-7", T0 + 200)
    with pytest.raises(ControlError, match="no pending plan"):
        ctl.approve("K101@0~nothing", "operator-7", T0 + 200)


def test_expiry_is_checked_when_a_command_arrives_late() -> None:
    ctl = webster(timeout=30.0)
    [proposal] = [p for s in run(ctl, range(20)) for p in s.proposals]
    with pytest.raises(ControlError):
        ctl.approve(proposal.plan_id, "operator-7", proposal.expires_at_s + 1)
    assert [a.action for a in ctl.drain_audit()] == ["plan_expired"]


def test_reject_retires_the_proposal_with_the_reason() -> None:
    ctl = webster()
    [proposal] = [p for s in run(ctl, range(20)) for p in s.proposals]
    record, entries = ctl.reject(proposal.plan_id, "operator-7", T0 + 100, "school fete, keep the program")
    assert record.status == "rejected"
    assert [(e.action, e.actor, e.detail["reason"]) for e in entries] == [("plan_rejected", "operator-7", "school fete, keep the program")]
    with pytest.raises(ControlError):
        ctl.approve(proposal.plan_id, "operator-7", T0 + 101)
    assert ctl.on_observation(obs(21)).drive.status == "fixed"


def test_approving_is_refused_outside_advisory() -> None:
    ctl = webster("automatic")
    run(ctl, range(20))
    with pytest.raises(ControlError, match="not advisory"):
        ctl.approve("K101@1800000095~x", "operator-7", T0 + 100)


# --- off and mode changes --------------------------------------------------------------------------


def test_off_drives_the_fixed_program_without_asking_the_controller() -> None:
    ctl = IntersectionControl(K101, "webster", "off")
    ctl._controller = Stub(None)
    steps = run(ctl, range(40))
    assert all(s.drive.status == "fixed" and s.drive.decision.plan == FIXED and s.drive.mode == "off" for s in steps)
    assert sum(s.changed for s in steps) == 1 and not any(s.proposals or s.audit for s in steps)


def test_mode_changes_are_audited_with_actor_reason_and_retire_pending_proposals() -> None:
    ctl = webster()
    [proposal] = [p for s in run(ctl, range(20)) for p in s.proposals]
    entries = ctl.set_mode("off", "operator-7", T0 + 101, "road works")
    assert [(e.action, e.actor) for e in entries] == [("plan_expired", "operator-7"), ("mode_changed", "operator-7")]
    assert entries[0].detail == {"plan": proposal.plan_id, "reason": "mode changed"}
    assert entries[1].detail == {"previous": "advisory", "mode": "off", "reason": "road works"}
    assert entries[1].at_s == T0 + 101 and ctl.mode == "off" and not ctl.pending
    assert ctl.on_observation(obs(21)).drive.status == "fixed"
    with pytest.raises(ControlError, match="unknown mode"):
        ctl.set_mode("manual", "operator-7", T0 + 102)
    assert ctl.mode == "off"


# --- the agent's desk ------------------------------------------------------------------------------


def config(**kw: object) -> IntersectionConfig:
    base = dict(
        schema_version=1,
        event_time=at(T0),
        intersection_id="K101",
        model=json.loads(EXAMPLE.read_text()),
        controller="webster",
        mode="advisory",
        session="run-1",
        approval_timeout_s=60.0,
        params={"recompute_every_cycles": 1.0},
    )
    base.update(kw)
    return IntersectionConfig(**base)


def frame(i: int, iid: str = "K101") -> IntersectionFrame:
    return IntersectionFrame(
        schema_version=1,
        event_time=at(T0 + 5 * i),
        intersection_id=iid,
        interval_s=5.0,
        detectors=[DetectorReading(detector_id=k, count=v, occupancy=0.1) for k, v in COUNTS.items()],
    )


def command(
    action: SignalAction, *, iid: str = "K101", plan_id: str | None = None, mode: SignalMode | None = None, reason: str = ""
) -> SignalCommand:
    return SignalCommand(
        schema_version=1,
        event_time=at(T0 + 10_000),
        intersection_id=iid,
        action=action,
        actor="operator-7",
        plan_id=plan_id,
        mode=mode,
        reason=reason,
    )


@dataclass
class Out:
    """An outbox as the agent publishes it."""

    plans: list[SignalPlanMessage] = field(default_factory=list)
    audit: list[SignalAuditMessage] = field(default_factory=list)
    dirty: set[str] = field(default_factory=set)


def published(box: Outbox) -> Out:
    plans, audit = outbox_messages(box)
    return Out(plans, audit, box.dirty)


class RecordDesk:
    """The desk as the signal-control agent drives it: records in, messages out, the table
    (a dict here) holding the JSON the changelog stores."""

    def __init__(self, table: dict[bytes, Any]) -> None:
        self.table = table
        self.core = ControlDesk(lambda iid: saved_from_value(table.get(iid.encode())))
        self.live = self.core.live

    @property
    def unconfigured_frames(self) -> int:
        return self.core.unconfigured_frames

    def known(self, iid: str) -> bool:
        return self.core.known(iid)

    def on_config(self, cfg: IntersectionConfig) -> Out:
        return published(self.core.on_config(desk_config(cfg)))

    def on_frame(self, f: IntersectionFrame) -> Out | None:
        box = self.core.on_observation(observation_from_frame(f))
        return None if box is None else published(box)

    def on_command(self, cmd: SignalCommand) -> Out:
        return published(self.core.on_command(desk_command(cmd)))

    def pending_messages(self) -> list[SignalPlanMessage]:
        return [plan_out_message(p) for p in self.core.pending()]

    def snapshot(self, iid: str) -> dict[str, Any] | None:
        snap = self.core.snapshot(iid)
        return None if snap is None else snapshot_value(snap)


def frames(desk: RecordDesk, rng: range) -> list[Out | None]:
    return [desk.on_frame(frame(i)) for i in rng]


def test_desk_replies_to_every_frame_with_one_drive_last_and_the_session_everywhere() -> None:
    desk = RecordDesk({})
    started = desk.on_config(config())
    assert [a.action for a in started.audit] == ["control_started"] and started.dirty == {"K101"}
    assert desk.on_frame(frame(0, "K999")) is None and desk.unconfigured_frames == 1
    outs = [o for o in frames(desk, range(25)) if o is not None]
    assert len(outs) == 25
    for i, o in enumerate(outs):
        assert o.plans[-1].status == "fixed" and o.plans[-1].event_time == at(T0 + 5 * i)
        assert sum(p.status in ("active", "fallback", "fixed") for p in o.plans) == 1
        assert all(m.session == "run-1" for m in o.plans) and all(m.session == "run-1" for m in o.audit)
    pending = desk.pending_messages()
    assert [p.status for p in pending] == ["pending"] and pending[0].expires_at_s is not None


def test_minute_frames_through_the_desk_run_the_shipped_program_explained() -> None:
    """The agent's path (records in, ``signals.plans`` out) carries the frames' interval to the
    controller: leitstand on frames a minute apart drives the fixed program, in automatic mode,
    every plan active, and says why on the record an operator reads."""
    desk = RecordDesk({})
    desk.on_config(config(controller="leitstand", mode="automatic", params={}))
    minute = [msgspec.structs.replace(frame(0), event_time=at(T0 + 60 * i), interval_s=60.0) for i in range(20)]
    outs = [desk.on_frame(f) for f in minute]
    drives = [p for o in outs if o is not None for p in o.plans if p.status in ("active", "fallback", "fixed")]
    assert len(drives) == 20 and {p.status for p in drives} == {"active"}
    assert drives[-1].rule == "coarse_frames_program" and "every 60 s" in drives[-1].explanation["expected_effect"]


def test_desk_applies_commands_at_the_intersection_clock_and_refuses_loudly() -> None:
    desk = RecordDesk({})
    desk.on_config(config())
    frames(desk, range(25))
    [pending] = desk.pending_messages()
    out = desk.on_command(command("approve", plan_id=pending.plan_id))
    assert [(p.plan_id, p.status) for p in out.plans] == [(pending.plan_id, "approved")]
    [entry] = out.audit
    assert (entry.action, entry.actor) == ("plan_approved", "operator-7")
    assert entry.event_time == at(T0 + 5 * 24)  # the last frame's time, not the command's wall clock
    assert entry.detail["requested_at"] == at(T0 + 10_000).isoformat()
    nxt = desk.on_frame(frame(25))
    assert nxt is not None
    assert nxt.plans[-1].status == "active" and nxt.plans[-1].plan_id == pending.plan_id

    again = desk.on_command(command("approve", plan_id=pending.plan_id))
    [refused] = again.audit
    assert refused.action == "command_refused" and "no pending plan" in refused.detail["reason"]
    assert not again.plans
    unknown = desk.on_command(command("set_mode", mode="off", iid="K999"))
    assert [(a.action, a.session, a.detail["reason"]) for a in unknown.audit] == [
        ("command_refused", "-", "intersection K999 is not configured here")
    ]


def test_desk_restarts_control_for_a_new_session_and_ignores_a_redelivered_config() -> None:
    desk = RecordDesk({})
    desk.on_config(config())
    frames(desk, range(25))
    [pending] = desk.pending_messages()
    assert not desk.on_config(config()).audit  # redelivery: nothing happens
    assert desk.pending_messages() == [pending]
    out = desk.on_config(config(session="run-2", event_time=at(T0 + 130)))
    assert [(p.plan_id, p.status, p.session) for p in out.plans] == [(pending.plan_id, "expired", "run-1")]
    assert [(a.action, a.session) for a in out.audit] == [("control_stopped", "run-1"), ("control_started", "run-2")]
    assert not desk.pending_messages()
    mode = desk.on_config(config(session="run-2", event_time=at(T0 + 131), mode="automatic"))
    assert [(a.action, a.actor, a.detail["mode"]) for a in mode.audit] == [("mode_changed", "config", "automatic")]


def test_desk_refuses_a_config_whose_model_is_for_another_intersection() -> None:
    desk = RecordDesk({})
    out = desk.on_config(config(intersection_id="K102"))
    [entry] = out.audit
    assert entry.action == "config_refused" and "differs" in entry.detail["reason"]
    assert not desk.known("K102")


def _unsafe_models() -> dict[str, dict]:
    """Models that crashed the agent before issue 10 #2/#3 (NaN arrives as null on the wire)."""

    def edited(edit) -> dict:
        d = json.loads(EXAMPLE.read_text())
        edit(d)
        return d

    return {
        "nan-intergreen-as-null": edited(lambda d: d["intergreen_s"]["K1"].update(K2=None)),
        "one-second-greens": edited(
            lambda d: ([s.update(min_green_s=1, max_green_s=1) for s in d["stages"]], [p.update(green_s=1) for p in d["fixed_plan"]])
        ),
        "starved-group": edited(lambda d: d["fixed_plan"].pop(1)),
        "huge-green": edited(lambda d: d["fixed_plan"][0].update(green_s=1e9)),
        "not-a-model": {"signal_groups": "K1"},
    }


@pytest.mark.parametrize("case", sorted(_unsafe_models()))
def test_desk_refuses_an_unsafe_config_with_an_audit_entry_and_keeps_the_previous_one(case: str) -> None:
    desk = RecordDesk({})
    assert [a.action for a in desk.on_config(config(mode="automatic", controller="fixed", params={})).audit] == ["control_started"]
    frames(desk, range(3))
    out = desk.on_config(config(session="run-2", model=_unsafe_models()[case], event_time=at(T0 + 20)))
    [entry] = out.audit
    assert (entry.action, entry.actor, entry.session) == ("config_refused", "config", "run-1")
    assert entry.detail["session"] == "run-2" and entry.detail["kept_session"] == "run-1"
    assert entry.detail["reason"] and "\n" not in entry.detail["reason"]
    assert not out.plans and not out.dirty
    # the previous control loop keeps driving: no crash on the next frames, same session
    for o in frames(desk, range(3, 6)):
        assert o is not None and o.plans[-1].status == "active" and o.plans[-1].session == "run-1"


def test_desk_refuses_parameters_the_controller_does_not_take() -> None:
    """A TypeError from the controller's constructor crashed the agent (only ValueError was caught)."""
    desk = RecordDesk({})
    [entry] = desk.on_config(config(controller="fixed", params={"recompute_every_cycles": 1.0})).audit
    assert entry.action == "config_refused" and "recompute_every_cycles" in entry.detail["reason"]


@pytest.mark.parametrize("case", sorted(_unsafe_models()))
def test_desk_refuses_an_unsafe_first_config_and_ignores_frames_for_it(case: str) -> None:
    desk = RecordDesk({})
    [entry] = desk.on_config(config(model=_unsafe_models()[case])).audit
    assert entry.action == "config_refused" and entry.detail["kept_session"] is None
    assert not desk.known("K101")
    assert desk.on_frame(frame(0)) is None  # unconfigured, not a crash


def test_a_restarted_desk_keeps_config_and_operator_mode_and_expires_stale_proposals() -> None:
    table: dict[bytes, Any] = {}
    desk = RecordDesk(table)
    out = desk.on_config(config())
    frames(desk, range(25))
    [pending] = desk.pending_messages()
    for iid in out.dirty:
        table[iid.encode()] = json.loads(json.dumps(desk.snapshot(iid)))  # as the changelog stores it
    assert table[b"K101"]["pending"][0]["plan_id"] == pending.plan_id

    reborn = RecordDesk(table)
    assert reborn.known("K101") and not reborn.live
    first = reborn.on_frame(frame(25))
    assert first is not None
    assert [(p.plan_id, p.status) for p in first.plans[:-1]] == [(pending.plan_id, "expired")]
    assert [(a.action, a.actor) for a in first.audit] == [("plan_expired", "restart"), ("control_restored", "restart")]
    assert first.plans[-1].status == "fixed" and first.dirty == {"K101"}

    # an operator's mode survives the restart, although the config said advisory
    reborn.on_command(command("set_mode", mode="off", reason="night"))
    table[b"K101"] = json.loads(json.dumps(reborn.snapshot("K101")))
    third = RecordDesk(table)
    third.on_frame(frame(26))
    assert third.live["K101"].control.mode == "off"


def test_an_open_blockage_survives_the_table_and_a_value_saved_before_reads_as_none() -> None:
    """The table value (JSON, as the changelog stores it) names the approaches with a blockage
    alarm open; a value written before the field existed restores with none."""
    table: dict[bytes, Any] = {}
    desk = RecordDesk(table)
    desk.on_config(config(controller="fixed", mode="automatic", params={}))

    def standing(i: int, moving: bool) -> IntersectionFrame:
        f = frame(i)
        n_in = DetectorReading(detector_id="N_in", count=2 if moving else 0, occupancy=0.4, queue_veh=1.0 if moving else 4.0)
        return msgspec.structs.replace(f, detectors=[n_in, *f.detectors[1:]])

    raised = [e for i in range(60) for e in desk.core.on_observation(observation_from_frame(standing(i, False))).blockages]  # type: ignore[union-attr]
    assert [e.raised for e in raised] == [True]
    table[b"K101"] = json.loads(json.dumps(desk.snapshot("K101")))
    assert table[b"K101"]["blocked"] == ["N_in"]

    reborn = RecordDesk(table)
    cleared = [e for i in range(60, 120) for e in reborn.core.on_observation(observation_from_frame(standing(i, True))).blockages]  # type: ignore[union-attr]
    assert [(e.detector, e.raised) for e in cleared] == [("N_in", False)]

    before = {k: v for k, v in table[b"K101"].items() if k != "blocked"}
    saved = saved_from_value(before)
    assert saved is not None and saved.blocked == ()
    with pytest.raises(msgspec.ValidationError):
        saved_from_value({**table[b"K101"], "blocked": [1]})


def test_a_signal_not_following_becomes_one_alarm_command_and_survives_the_table() -> None:
    """``signals.state`` records through ``apply`` (as the agent reads them): a controller stuck on
    stage A raises one ``signal_not_following`` on ``alerts.lifecycle`` for the intersection, the
    table keeps it over a restart, and a value saved before stop 42 reads as following."""
    from signals.following import KIND
    from streams.agents.signal_control import apply, signal_alarm_commands
    from streams.records import StageShown

    table: dict[bytes, Any] = {}
    desk = RecordDesk(table)
    desk.on_config(config(controller="fixed", mode="automatic", params={}))
    box = Outbox()
    for i in range(60):
        for record in (
            frame(i),
            StageShown(schema_version=1, event_time=at(T0 + 5 * i), intersection_id="K101", stage="A", stage_started_at=at(T0)),
        ):
            got = apply(desk.core, record)
            assert got is not None
            box.extend(got)
    [cmd] = signal_alarm_commands(box.following)
    assert (cmd.subject_id, cmd.kind, cmd.severity, cmd.subject_type) == ("K101", KIND, "major", "intersection")
    assert "shows stage A while the plan drives" in (cmd.message or "")
    table[b"K101"] = json.loads(json.dumps(desk.snapshot("K101")))
    assert table[b"K101"]["not_following"] is True
    reborn = RecordDesk(table)
    reborn.on_frame(frame(61))
    assert reborn.live["K101"].follow.raised
    before = {k: v for k, v in table[b"K101"].items() if k != "not_following"}
    saved = saved_from_value(before)
    assert saved is not None and saved.not_following is False
    with pytest.raises(msgspec.ValidationError):
        saved_from_value({**table[b"K101"], "not_following": "yes"})


def test_the_agent_hands_the_wall_clock_to_the_desk_so_a_detector_outage_expires_proposals() -> None:
    """Through ``apply`` with the agent's arrival times: a proposal pending when the frames stop
    is gone from the API's list and refused, with an ``expired`` record, ten minutes later."""
    from streams.agents.signal_control import apply

    desk = RecordDesk({})
    desk.on_config(config())
    for i in range(25):
        assert apply(desk.core, frame(i), 1_000.0 + 5 * i) is not None
    [pending] = desk.pending_messages()
    out = apply(desk.core, command("approve", plan_id=pending.plan_id), 1_120.0 + 600)
    assert out is not None and [(p.record.plan_id, p.record.status) for p in out.plans if isinstance(p, PlanOut)] == [
        (pending.plan_id, "expired")
    ]
    assert out.commands == [("approve", "refused")] and desk.pending_messages() == []


# --- the operators' CLI (streams/cli/signals.py) ---------------------------------------------------


def _cli():
    import typer
    from typer.testing import CliRunner

    from streams.cli import signals as cli_signals

    app = typer.Typer()
    app.add_typer(cli_signals.app, name="signals")
    return app, CliRunner()


def test_cli_builds_checked_records_without_a_broker(tmp_path: Path) -> None:
    from streams.errors import CliError

    app, runner = _cli()
    got = runner.invoke(
        app,
        ["signals", "configure", str(EXAMPLE), "--mode", "advisory", "--session", "s9", "--param", "recompute_every_cycles=1", "--dry-run"],
    )
    assert got.exit_code == 0, got.output
    cfg = json.loads(got.stdout)
    assert (cfg["intersection_id"], cfg["controller"], cfg["mode"], cfg["session"], cfg["params"]) == (
        "K101",
        "webster",
        "advisory",
        "s9",
        {"recompute_every_cycles": 1.0},
    )
    got = runner.invoke(app, ["signals", "mode", "K101", "off", "--actor", "duty-3", "--reason", "works", "--dry-run"])
    assert json.loads(got.stdout) | {"event_time": None} == {
        "schema_version": 1,
        "event_time": None,
        "intersection_id": "K101",
        "action": "set_mode",
        "actor": "duty-3",
        "plan_id": None,
        "mode": "off",
        "reason": "works",
        "claimed_by": None,  # only the HTTP API's shared machine token fills it (docs/security.md)
    }
    assert runner.invoke(app, ["signals", "mode", "K101", "manual", "--actor", "d", "--dry-run"]).exception.__class__ is CliError
    assert runner.invoke(app, ["signals", "approve", "K101", "K101@1~x", "--dry-run"]).exit_code != 0  # --actor required
    bad = runner.invoke(app, ["signals", "configure", str(EXAMPLE), "--controller", "nope", "--dry-run"])
    assert isinstance(bad.exception, CliError) and "unknown controller" in str(bad.exception)


def test_the_fairness_gauge_is_written_at_most_once_a_second_and_never_left_stale() -> None:
    """The worst-vs-median ratio summarises every approach of the worker: made after every batch
    it cost 6 % of a control worker. Written at most once a second, a change still gets out."""
    from signals.fairness import MIN_SAMPLES, WaitSample
    from streams.agents.signal_control import FairnessGauge
    from streams.metrics import SIGNAL_WAIT_WORST_TO_MEDIAN

    desk = ControlDesk(lambda iid: None)
    gauge = FairnessGauge()

    def serve(approach: str, wait_s: float, n: int) -> None:
        desk.recent.add(WaitSample("K1", approach, "vehicle", wait_s, 0.0) for _ in range(n))

    def shown() -> float:
        return SIGNAL_WAIT_WORST_TO_MEDIAN._value.get()

    serve("A", 10.0, MIN_SAMPLES)
    serve("B", 10.0, MIN_SAMPLES)
    gauge.changed(desk, True, 100.0)
    assert shown() == pytest.approx(1.0)
    serve("B", 40.0, MIN_SAMPLES)  # B now waits four times as long
    gauge.changed(desk, True, 100.5)
    assert shown() == pytest.approx(1.0)  # within the second: not yet
    gauge.changed(desk, False, 101.0)  # the next batch a second later, nothing served in it
    assert shown() > 1.0
    before = shown()
    serve("A", 200.0, MIN_SAMPLES)
    gauge.changed(desk, False, 105.0)  # nothing served since the last write: nothing to do
    assert shown() == before
    gauge.changed(desk, True, 105.1)  # a served batch writes the change at once
    assert shown() != before
    before = shown()
    serve("B", 900.0, MIN_SAMPLES)
    gauge.changed(desk, True, 105.6)  # the last batch of a replay, within the second: not yet ...
    assert shown() == before
    gauge.flush(desk, 106.0)
    assert shown() == before
    gauge.flush(desk, 106.2)  # ... no batch follows, and the worker's timer writes it
    assert shown() != before


def test_a_control_worker_sharing_the_frames_topic_says_so_and_stops_once_it_holds_all(capsys: pytest.CaptureFixture[str]) -> None:
    from streams.agents.signal_control import SplitWatch
    from streams.metrics import SIGNAL_CONTROL_SPLIT

    watch = SplitWatch("leitstand.sensors.intersection")
    assert watch.observe([0, 1, 2, 3], 4) is None and SIGNAL_CONTROL_SPLIT._value.get() == 0
    assert watch.observe([], 4) is None  # a standby holding nothing splits no corridor
    assert watch.observe([0, 1], None) is None  # partition count not known yet
    reason = watch.observe([1, 3], 4)
    assert reason is not None and "2 of the 4 partitions of leitstand.sensors.intersection" in reason
    assert SIGNAL_CONTROL_SPLIT._value.get() == 1
    watch.observe([1, 3], 4)  # logged on the change, not every check
    lines = [line for line in capsys.readouterr().out.splitlines() if "signal control shared with another worker" in line]
    assert len(lines) == 1, lines
    assert watch.observe([0, 1, 2, 3], 4) is None and SIGNAL_CONTROL_SPLIT._value.get() == 0
    assert "no longer shared" in capsys.readouterr().out


def test_an_acyclic_controller_in_advisory_mode_asks_for_a_mandate_and_drives_once_approved() -> None:
    """leitstand in advisory mode (``signals.advisory``): one request on ``signals.plans`` that
    says what approving means, the fixed program until an operator approves it, then leitstand's
    own decisions; the approval's audit entry says until when."""
    desk = RecordDesk({})
    desk.on_config(config(controller="leitstand", params={}, approval_timeout_s=600.0))
    outs = [o for o in frames(desk, range(30)) if o is not None]
    assert all(o.plans[-1].status == "fixed" for o in outs)
    [request] = desk.pending_messages()
    assert request.controller == "leitstand" and not request.cyclic
    assert "approve to let leitstand drive" in request.explanation["expected_effect"]
    out = desk.on_command(command("approve", plan_id=request.plan_id))
    [entry] = out.audit
    assert entry.action == "plan_approved" and entry.detail["mandate_until_s"] == pytest.approx(T0 + 5 * 29 + MANDATE_S)
    driven = [o.plans[-1] for o in frames(desk, range(30, 60)) if o is not None]
    assert driven and all(p.status in ("active", "fallback") and p.controller == "leitstand" for p in driven)
    assert len({p.plan_id for p in driven}) > 1, "its decisions drive, not the one approved"


def test_a_mandate_survives_a_restart_and_ends_when_it_would_have() -> None:
    """An operator's approval is their decision, not the controller's history: the table keeps
    when the mandate ends; the restarted worker lets leitstand drive until then (the control
    loop itself starts afresh), says so in ``control_restored``, and a value saved before stop 50
    restores without one."""
    table: dict[bytes, Any] = {}
    desk = RecordDesk(table)
    desk.on_config(config(controller="leitstand", params={}, approval_timeout_s=600.0))
    frames(desk, range(30))
    [request] = desk.pending_messages()
    out = desk.on_command(command("approve", plan_id=request.plan_id))
    until = out.audit[0].detail["mandate_until_s"]
    frames(desk, range(30, 32))
    table[b"K101"] = json.loads(json.dumps(desk.snapshot("K101")))
    assert table[b"K101"]["mandate_until_s"] == until

    reborn = RecordDesk(table)
    first = reborn.on_frame(frame(32))
    assert first is not None
    [restored] = [a for a in first.audit if a.action == "control_restored"]
    assert restored.detail["mandate_until_s"] == until
    driven = [o.plans[-1] for o in frames(reborn, range(33, 60)) if o is not None]
    assert all(p.status in ("active", "fallback") and p.controller == "leitstand" for p in driven)
    after = [o.plans[-1] for o in frames(reborn, range(int((until - T0) // 5) + 1, int((until - T0) // 5) + 4)) if o is not None]
    assert after and all(p.status == "fixed" for p in after), "it ends when it would have ended"

    older = {k: v for k, v in table[b"K101"].items() if k != "mandate_until_s"}
    before = RecordDesk({b"K101": older})
    first = before.on_frame(frame(32))
    assert first is not None and first.plans[-1].status == "fixed"
