"""The control desk: every intersection one worker controls, as plain values in and out.

A configuration, a detector observation or an operator's command goes in; what the control
room must learn comes out as an ``Outbox``: the plan records to publish (per observation first
the proposals it produced or retired, then exactly one *drive* record, so the drive is the last
plan of a frame), the audit entries, the intersections whose saved state changed, and notes for
the log. The desk knows no records, topics or tables: the stream shell
(``streams/agents/signal_control.py``) translates records into these types and the outbox into
messages (``streams/signal_codec.py``), publishes, and then saves each dirty intersection's
``snapshot``. So the rules below are unit-tested without Faust, and the SUMO runner and the
agent share the very same ``IntersectionControl``.

Rules:

* **A configuration starts control or is refused.** The model goes through the same loader as
  ``leitstand signals configure`` (RiLSA bounds, the fixed plan validated), so the safety gate
  built on the first frame never finds its fallback unsafe. A refused configuration is audited
  (``config_refused``) and the previous control loop keeps running. A redelivered one changes
  nothing; one that changes only the mode is a mode change by the config's author; any other
  change (session, model, controller, parameters, approval timeout) restarts control: pending
  proposals expire, ``control_stopped`` then ``control_started``.
* **The intersection's clock is the event time of its frames.** Expiry is checked when a frame
  or a command arrives, and a command is applied at the time of the last frame (a SUMO run's
  clock is not the wall clock); the command's own time goes into the audit as ``requested_at``.
  **Silence counts as time passing.** When the shell says when each frame and command reached it
  (``received_s``, the worker's wall clock), a command finds the intersection's clock moved on by
  the time nobody heard from it: a proposal whose approval window ran out while the detectors
  were silent expires before the command is carried out, so an operator cannot approve a plan
  made from data older than its window (before, with the stream clock standing still, a
  two-minute proposal could be approved an hour into a detector outage). The pending list for
  the API leaves such proposals out the same way, and the shell's timer (``expire_lapsed``)
  publishes their expiry within a tick when neither a frame nor a command comes.
* **Neighbours on other control workers are seen through what the shell reads of them**
  (``on_remote_config`` / ``on_remote_frame`` / ``on_remote_drive``, ``signals.remote``): the
  corridor is laid out over this desk's intersections and the others' that share a zone with
  one of them. A rebalance releases (``release``) the intersections it moved; they are restored
  from the saved state if they come back, never from the slot held before the move.
* **The field controller's reports are checked against the drive.** A ``signals.state`` report
  (the stage shown and since when) is compared with the plan driven then, at the report and at
  every frame after it; a signal that shows another stage for longer than a stage change takes
  raises ``signal_not_following`` for the control room, and its plan stops counting as what it
  shows for its neighbours (``signals.following``). While it is found not following, its
  controller plans on from the stage the street shows (``IntersectionControl.resync``: leitstand
  and max-pressure), so the plan the cabinet takes back starts from the green it really shows.
  Without reports nothing is judged.
* **A restart keeps the config, the mode and the open alarms, nothing else.** The saved
  state holds the config, the current mode (an operator's ``set_mode`` survives), the pending
  proposals, the approaches with a blockage alarm raised (so the first green that moves a
  vehicle after the restart clears it, and a redelivered frame does not raise it twice) and
  whether the signal was found not following; a new setup for the intersection carries those
  over too. A restarted
  desk rebuilds an intersection's control on the first input for it; the controller's history
  does not survive, so the signal drives the fixed program until it has new data, and proposals
  that were pending are published as expired (actor ``restart``) rather than forgotten.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Literal

from signals.blockage import BlockageEvent, BlockageWatch
from signals.control import AuditEntry, ControlError, IntersectionControl, Mode, PlanRecord
from signals.controllers import DetectorObservation
from signals.controllers.priority import PriorityController
from signals.corridor import ZONE_SHARERS, Corridor, ShownGreens, fresh
from signals.explain import StageDecision
from signals.fairness import LiveWaits, RecentWaits, WaitSample
from signals.following import FollowEvent, FollowWatch
from signals.input_quality import InputQuality
from signals.loader import intersection_from_dict
from signals.priority import BusCall, Grant, PriorityCall
from signals.remote import RemoteNeighbours

#: the session named in the refusal of a command for an intersection nobody configured here
UNKNOWN_SESSION = "-"
#: a priority request whose bus was due at the stop line longer ago than this (on the
#: intersection's clock) is refused as stale: the bus has passed, or the request is garbage (a
#: request stamped 1970 was granted as "a bus at the line now" before, stop 54's probe)
PRIORITY_STALE_S = 120.0

CommandAction = Literal["approve", "reject", "set_mode"]


@dataclass(frozen=True)
class DeskConfig:
    """An intersection's configuration: its model (``leitstand.intersection/1``), controller,
    mode and session. ``event_time`` orders configurations; it is not checked against a clock."""

    intersection_id: str
    model: Mapping[str, Any]
    event_time: datetime
    controller: str = "leitstand"
    mode: Mode = "automatic"
    session: str = "default"
    approval_timeout_s: float = 120.0
    params: Mapping[str, float] = field(default_factory=dict)

    def setup(self) -> tuple[Any, ...]:
        """What makes a control loop: a change in any of these restarts it (the mode does not)."""
        return (
            self.session,
            json.dumps(self.model, sort_keys=True),
            self.controller,
            tuple(sorted(self.params.items())),
            self.approval_timeout_s,
        )


@dataclass(frozen=True)
class DeskCommand:
    """An operator's decision: approve or reject a pending plan, or set the mode."""

    intersection_id: str
    action: CommandAction
    actor: str
    event_time: datetime
    plan_id: str | None = None
    mode: str | None = None
    reason: str = ""


@dataclass(frozen=True)
class DeskPriority:
    """A late bus asking for priority: the stage serving its approach, its arrival estimate
    (seconds after ``event_time``) and its delay."""

    intersection_id: str
    request_id: str
    vehicle_id: str
    trip_id: str
    stage: str
    event_time: datetime
    eta_s: float
    delay_s: float


@dataclass(frozen=True)
class DeskState:
    """The field controller's report (``signals.state``): ``stage`` shown since ``started_s``,
    reported at ``at_s`` (POSIX seconds, the cabinet's clock); ``exact`` when ``started_s`` is the
    cabinet's own time of the change, not when its reporter first saw the stage."""

    intersection_id: str
    stage: str
    started_s: float
    at_s: float
    exact: bool = False


@dataclass(frozen=True)
class PlanOut:
    """A plan record to publish, in the session it belongs to, at the intersection's time."""

    record: PlanRecord
    session: str
    #: False for a drive record equal to the previous one (a dashboard needs only the changed)
    changed: bool = True
    #: the intersection's clock when published (None: the decision's own time)
    now_s: float | None = None
    #: a drive record of a signal whose field controller is known to show something else
    #: (``signals.following``): read by the neighbours' workers, which then do not take its
    #: plan for what the street shows
    not_following: bool = False


@dataclass(frozen=True)
class StalePlan:
    """A proposal that was pending when the state was saved. After a restart it is published
    again as expired; ``saved`` is the shell's saved form of it, handed back unchanged."""

    plan_id: str
    at_s: float
    saved: Any


@dataclass(frozen=True)
class AuditOut:
    entry: AuditEntry
    session: str


@dataclass(frozen=True)
class Note:
    """A line for the worker's log (the desk itself does not log)."""

    level: Literal["warning", "error"]
    event: str
    fields: Mapping[str, Any]
    error: BaseException | None = None


@dataclass
class Outbox:
    """What inputs produced, in publishing order; ``dirty`` intersections need saving;
    ``commands`` is (action, ``applied`` | ``refused``) per command, for the counters."""

    plans: list[PlanOut | StalePlan] = field(default_factory=list)
    audit: list[AuditOut] = field(default_factory=list)
    dirty: set[str] = field(default_factory=set)
    commands: list[tuple[str, str]] = field(default_factory=list)
    notes: list[Note] = field(default_factory=list)
    #: waits served during the frames (``signals.fairness.LiveWaits``), for the live metrics
    waits: list[WaitSample] = field(default_factory=list)
    #: approaches found blocked or moving again (``signals.blockage``), for the alarm books
    blockages: list[BlockageEvent] = field(default_factory=list)
    #: signals found not following the driven plan, or following again (``signals.following``)
    following: list[FollowEvent] = field(default_factory=list)

    def extend(self, other: Outbox) -> None:
        self.plans += other.plans
        self.audit += other.audit
        self.dirty |= other.dirty
        self.commands += other.commands
        self.notes += other.notes
        self.waits += other.waits
        self.blockages += other.blockages
        self.following += other.following


@dataclass(frozen=True)
class Snapshot:
    """What is saved of one intersection: config, current mode, pending proposals, the
    approach detectors with a blockage raised, whether the signal was found not following, the
    operator's mandate and the cabinet's clock offset once learned."""

    config: DeskConfig
    mode: Mode
    pending: tuple[PlanOut, ...]
    blocked: tuple[str, ...] = ()
    not_following: bool = False
    #: when an operator's mandate to drive ends (advisory mode, acyclic controller), if one was approved
    mandate_until_s: float | None = None
    #: the cabinet's clock offset learned from its exact reports (None: not known)
    clock_offset_s: float | None = None


@dataclass(frozen=True)
class Saved:
    """A snapshot as read back after a restart (``mode`` None: the config's)."""

    config: DeskConfig
    mode: Mode | None
    stale: tuple[StalePlan, ...] = ()
    blocked: tuple[str, ...] = ()
    not_following: bool = False
    mandate_until_s: float | None = None
    clock_offset_s: float | None = None


@dataclass
class Slot:
    """One controlled intersection: its config, its control loop and its clock."""

    config: DeskConfig
    control: IntersectionControl
    clock_s: float | None = None
    #: the worker's wall clock when the last frame arrived (None: the caller keeps no wall clock)
    heard_s: float | None = None
    saved: tuple[Any, ...] | None = None
    #: the decision the signal drives since the last frame (what it shows during the next one)
    shown: StageDecision | None = None
    waits: LiveWaits = field(init=False)
    blockage: BlockageWatch = field(init=False)
    follow: FollowWatch = field(init=False)
    quality: InputQuality = field(default_factory=InputQuality)

    def __post_init__(self) -> None:
        self.waits = LiveWaits(self.control.intersection)
        self.blockage = BlockageWatch(self.control.intersection)
        self.follow = FollowWatch(self.control.intersection)

    @property
    def session(self) -> str:
        return self.config.session

    def signature(self) -> tuple[Any, ...]:
        return (
            self.config.event_time,
            self.control.mode,
            tuple(self.control.pending),
            tuple(self.blockage.open()),
            self.follow.raised,
            self.control.mandate_until_s,
            self.follow.known_clock(),
        )


def build_control(cfg: DeskConfig, mode: Mode | None = None) -> IntersectionControl:
    """The control loop a config describes; ``ValueError`` (ControlError, ModelError included)
    or ``TypeError`` (parameters the controller does not take) if it cannot be built."""
    intersection = intersection_from_dict(dict(cfg.model))
    if intersection.id != cfg.intersection_id:
        raise ValueError(f"model id {intersection.id!r} differs from the config's intersection_id {cfg.intersection_id!r}")
    control = IntersectionControl(intersection, cfg.controller, mode or cfg.mode, cfg.approval_timeout_s, **cfg.params)
    priority_controller(control)
    return control


def priority_controller(control: IntersectionControl) -> PriorityController:
    """The control loop's controller wrapped for transit priority (wrapped again when a mode
    change rebuilt it). ``IntersectionControl`` has no hook for this yet, hence its attribute."""
    ctl = control._controller  # noqa: SLF001
    if not isinstance(ctl, PriorityController):
        ctl = PriorityController(ctl, control.intersection)
        control._controller = ctl  # noqa: SLF001
    return ctl


def _refusal_reason(exc: Exception, out: Outbox) -> str:
    """One line for the audit: the loader's own message, or the type of an unexpected failure
    (a bug in a controller's constructor must not take the desk down with it)."""
    if isinstance(exc, (ValueError, TypeError)):  # TypeError: params the controller does not take
        return str(exc)
    out.notes.append(Note("error", "unexpected error building a signal control loop", {}, exc))
    return f"cannot build the control loop: {type(exc).__name__}: {exc}"


def _retired(before: dict[str, PlanRecord], control: IntersectionControl, decided: str | None) -> list[PlanRecord]:
    """Proposals that left ``pending`` as a side effect (superseded, mode change, expiry)."""
    return [replace(p, status="expired", expires_at_s=None) for pid, p in before.items() if pid not in control.pending and pid != decided]


def mark_degraded(record: PlanRecord, degraded: tuple[tuple[str, tuple[str, ...]], ...], now_s: float) -> PlanRecord:
    """The record with its explanation naming the degraded detectors, when the decision was made
    on this frame's data by a controller that reads detectors. The fixed program (and a validator
    fallback to it) uses no detector data, and a plan decided earlier did not use this frame."""
    decision = record.decision
    if not degraded or decision.time_s != now_s or decision.explanation.controller == "fixed":
        return record
    explanation = replace(decision.explanation, degraded=degraded)
    return replace(record, decision=replace(decision, explanation=explanation))


class ControlDesk:
    """The intersections this worker controls. ``saved`` reads an intersection's saved state
    (after a restart); the caller publishes each ``Outbox`` and then stores ``snapshot(iid)``
    for every dirty intersection."""

    def __init__(self, saved: Callable[[str], Saved | None]) -> None:
        self.saved = saved
        self.live: dict[str, Slot] = {}
        self.unconfigured_frames = 0
        #: the recent served waits of every approach: the live worst-vs-median figure
        self.recent = RecentWaits()
        #: each intersection's latest frame as received: what it lends its neighbours
        self.latest: dict[str, DetectorObservation] = {}
        #: what the live intersections lend each other (None: to be rebuilt)
        self._corridor: Corridor | None = None
        #: the crowded zones last warned about (``corridor.crowded_zones``), to warn once per change
        self._crowded_noted: dict[str, tuple[str, ...]] = {}
        self._greens = ShownGreens()
        #: neighbours another control worker controls (``signals.remote``), fed by the shell
        self.remote = RemoteNeighbours()

    # -- lookups (also for the HTTP API) ---------------------------------------------------------
    def known(self, intersection_id: str) -> bool:
        return intersection_id in self.live or self.saved(intersection_id) is not None

    def slot(self, intersection_id: str) -> Slot | None:
        return self.live.get(intersection_id)

    def pending(self, received_s: float | None = None) -> list[PlanOut]:
        """Every pending proposal that can still be approved at the worker's wall clock
        ``received_s`` (see ``silent_clock``), by intersection and time."""
        out = [
            PlanOut(p, s.session, now_s=s.clock_s)
            for s in self.live.values()
            for p in s.control.pending.values()
            if not _lapsed(p, silent_clock(s, received_s))
        ]
        return sorted(out, key=lambda o: (o.record.decision.intersection_id, o.record.decision.time_s))

    def lapsed(self, intersection_id: str, plan_id: str, received_s: float) -> bool:
        """True for a pending proposal whose approval window ran out while no frame came: the
        next command expires it, and an approval of it is refused."""
        slot = self.live.get(intersection_id)
        record = None if slot is None else slot.control.pending.get(plan_id)
        return slot is not None and record is not None and _lapsed(record, silent_clock(slot, received_s))

    def expire_lapsed(self, received_s: float, mine: Callable[[str], bool] = lambda _iid: True) -> Outbox:
        """Expire, at the worker's wall clock ``received_s``, every proposal whose approval window
        ran out since its intersection's last frame (``silent_clock``), for the intersections
        ``mine`` still holds. The shell's timer calls this, so the control room learns of such an
        expiry within a tick even when no frame or command comes (a detector outage, the end of a
        replay), instead of from the next frame or command, possibly hours later."""
        out = Outbox()
        for iid, slot in self.live.items():
            if slot.control.pending and mine(iid):
                before = len(out.plans)
                self._expire_lapsed(out, slot, received_s)
                if len(out.plans) > before:
                    self._touch(out, slot)
        return out

    def snapshot(self, intersection_id: str) -> Snapshot | None:
        """The state to save; from now on the intersection counts as saved."""
        slot = self.live.get(intersection_id)
        if slot is None:
            return None
        slot.saved = slot.signature()
        pending = tuple(PlanOut(p, slot.session, now_s=slot.clock_s) for p in slot.control.pending.values())
        return Snapshot(
            slot.config,
            slot.control.mode,
            pending,
            tuple(slot.blockage.open()),
            slot.follow.raised,
            slot.control.mandate_until_s,
            slot.follow.known_clock(),
        )

    # -- neighbours on other workers (signals.remote) -----------------------------------------------
    def on_remote_config(self, intersection_id: str, model: Mapping[str, Any]) -> None:
        """Another worker's intersection has this model (its saved configuration)."""
        if intersection_id not in self.live and self.remote.configure(intersection_id, model):
            self._corridor = None

    def on_remote_frame(self, obs: DetectorObservation) -> None:
        """A frame of another worker's intersection: kept when it neighbours one of ours."""
        iid = obs.intersection_id
        if iid in self.live or iid not in self.remote.lending:
            return
        known = self.latest.get(iid)
        if known is None or obs.time_s >= known.time_s:
            self.latest[iid] = obs

    def on_remote_drive(self, intersection_id: str, decision: StageDecision, not_following: bool = False) -> None:
        """The plan another worker drives at a neighbour now (its drive record), and whether that
        worker found the street not following it."""
        if intersection_id not in self.live:
            self.remote.drove(intersection_id, decision, not_following)

    def release(self, still_mine: Callable[[str], bool]) -> list[str]:
        """Forget the intersections a rebalance gave to another worker; returns their ids.

        Their state lives on in the table, for the new owner to restore. A slot kept here would
        be wrong when the partition comes back: it holds the mode and proposals of before the
        move, would be used instead of the table, and its next snapshot would overwrite what
        changed meanwhile (an operator's mode change made on the other worker)."""
        gone = [iid for iid in self.live if not still_mine(iid)]
        for iid in gone:
            del self.live[iid]
            self.latest.pop(iid, None)
        if gone:
            self._corridor = None
        return gone

    # -- inputs ------------------------------------------------------------------------------------
    def on_config(self, cfg: DeskConfig) -> Outbox:
        out = Outbox()
        old = self._restore(cfg.intersection_id, out)
        if old is not None and old.config.setup() == cfg.setup():
            self._reconfigure(out, old, cfg)
            return out
        try:
            control = build_control(cfg)
        except Exception as exc:  # noqa: BLE001 - a bad config is refused and audited, never fatal
            self._refuse_config(out, cfg, old, _refusal_reason(exc, out))
            return out
        if old is not None:
            self._stop(out, old, cfg)
        self._start(out, cfg, control, old)
        return out

    def on_observation(self, obs: DetectorObservation, received_s: float | None = None) -> Outbox | None:
        """A frame: ``None`` when its intersection is not configured here (counted).
        ``received_s``: the worker's wall clock on arrival, which a later command's silence is
        measured from."""
        out = Outbox()
        slot = self._restore(obs.intersection_id, out)
        if slot is None:
            self.unconfigured_frames += 1
            return None
        self.latest[obs.intersection_id] = obs
        if self._corridor is None:
            own = {iid: s.control.intersection for iid, s in self.live.items()}
            self._corridor = Corridor.of([*own.values(), *self.remote.lay_out(own)])
            if self._corridor.crowded and self._corridor.crowded != self._crowded_noted:
                fields = {"zones": {z: list(ids) for z, ids in self._corridor.crowded.items()}, "at_most": ZONE_SHARERS}
                out.notes.append(Note("warning", "zone named by more intersections than a road has ends: nothing lent over it", fields))
            self._crowded_noted = self._corridor.crowded
        seen = self._corridor.seen_by(obs, self.latest, lambda nb, t: self._shown_green(nb, obs, t))
        # the latest report against the plan driven until this frame, then the new drive; a signal
        # known not to follow has its controller plan on from the stage the street shows
        offset = slot.follow.clock_offset_s
        out.following += self._followed(slot, slot.follow.at(obs.time_s))
        self._clock_moved(slot, offset, out)
        street = slot.follow.street(obs.time_s)
        if street is not None:
            slot.control.resync(street.stage, street.since_s, obs.time_s, street.last_green)
        step = slot.control.on_observation(seen, ground=not slot.follow.raised)
        slot.clock_s, slot.heard_s = obs.time_s, received_s
        degraded = slot.quality.observe(obs)
        out.waits += slot.waits.observe(obs, slot.shown)
        self.recent.add(out.waits)
        # the frame as measured (a neighbour's lent reading is the controller's business) against
        # the greens the signal showed while it was measured; not while the signal is known to
        # ignore its plan: those greens were not shown, and three "starved" ones would raise a
        # blockage of an approach that simply had red
        if not slot.follow.raised:
            out.blockages += slot.blockage.observe(obs, slot.waits.green_s)
        slot.shown = step.drive.decision
        slot.follow.drove(step.drive.decision)
        proposals = [mark_degraded(p, degraded, obs.time_s) for p in step.proposals]
        for p in proposals:  # an approval later publishes the marked record, not the bare one
            if slot.control.pending.get(p.plan_id) is not None:
                slot.control.pending[p.plan_id] = p
        out.plans += [PlanOut(p, slot.session, now_s=obs.time_s) for p in proposals]
        drive = mark_degraded(step.drive, degraded, obs.time_s)
        out.plans.append(PlanOut(drive, slot.session, changed=step.changed, now_s=obs.time_s, not_following=slot.follow.raised))
        out.audit += [AuditOut(a, slot.session) for a in step.audit]
        self._touch(out, slot)
        return out

    def on_state(self, state: DeskState) -> Outbox:
        """The field controller's report of the stage it shows: judged against the driven plan
        (``signals.following``). Nothing happens for an intersection not configured here."""
        out = Outbox()
        slot = self._restore(state.intersection_id, out)
        if slot is None:
            return out
        offset = slot.follow.clock_offset_s
        out.following += self._followed(slot, slot.follow.report(state.stage, state.at_s, state.started_s, state.exact))
        self._clock_moved(slot, offset, out)
        self._touch(out, slot)
        return out

    @staticmethod
    def _clock_moved(slot: Slot, before_s: float, out: Outbox) -> None:
        """A warning when the watch has learned a new clock offset for the cabinet (1 s or more):
        a technician should set the clock, since a plan carried out on it is that many seconds late."""
        offset = slot.follow.clock_offset_s
        if offset != before_s and abs(offset) >= 1.0:
            fields = {"intersection_id": slot.follow.intersection.id, "clock_offset_s": offset}
            out.notes.append(Note("warning", "cabinet clock off the detectors' (learned from its stage changes, allowed for)", fields))

    @staticmethod
    def _followed(slot: Slot, events: list[FollowEvent]) -> list[FollowEvent]:
        """When the signal follows its plan again, the blocked-approach watch starts afresh (with
        its open alarms): a green it had in progress when it paused was the plan's, not shown,
        and would count as a starved one."""
        if any(not e.raised for e in events):
            watch = BlockageWatch(slot.control.intersection)
            watch.carry(slot.blockage.open(), 0.0, "")
            slot.blockage = watch
        return events

    def _shown_green(self, iid: str, obs: DetectorObservation, at_s: float | None = None) -> frozenset[str] | None:
        """The groups a live neighbour shows green at ``obs``'s time (or ``at_s``), if its frames
        are fresh (a neighbour that stopped reporting may be showing anything by now) and it is
        not known to ignore its plan (a field controller found not following)."""
        slot = self.live.get(iid)
        latest = self.latest.get(iid)
        if latest is None or not fresh(obs, latest):
            return None
        t = obs.time_s if at_s is None else at_s
        if slot is None:  # controlled by another worker: its last drive record (signals.remote)
            other = self.remote.shown(iid)
            return None if other is None else self._greens.green(other[0], other[1], t)
        if slot.shown is None or slot.follow.raised:
            return None
        return self._greens.green(slot.control.intersection, slot.shown, t)

    def on_command(self, cmd: DeskCommand, received_s: float | None = None) -> Outbox:
        """An operator's command, carried out at the intersection's clock. ``received_s``: the
        worker's wall clock on arrival; proposals that lapsed while no frame came expire first."""
        out = Outbox()
        slot = self._restore(cmd.intersection_id, out)
        at_s = cmd.event_time.timestamp() if slot is None or slot.clock_s is None else slot.clock_s
        if slot is None:
            self._refuse(out, cmd, at_s, UNKNOWN_SESSION, f"intersection {cmd.intersection_id} is not configured here")
            return out
        self._expire_lapsed(out, slot, received_s)
        before = dict(slot.control.pending)
        try:
            decided, entries = self._carry_out(slot.control, cmd, at_s)
        except ControlError as exc:
            self._emit(out, slot, _retired(before, slot.control, None), slot.control.drain_audit())
            self._refuse(out, cmd, at_s, slot.session, str(exc))
            self._touch(out, slot)
            return out
        requested = cmd.event_time.isoformat()
        entries = tuple(replace(e, detail={**e.detail, "requested_at": requested}) if e.actor == cmd.actor else e for e in entries)
        self._emit(out, slot, _retired(before, slot.control, decided.plan_id if decided else None), entries)
        if decided is not None:
            out.plans.append(PlanOut(decided, slot.session, now_s=at_s))
        out.commands.append((cmd.action, "applied"))
        self._touch(out, slot)
        return out

    def on_priority(self, req: DeskPriority) -> Outbox:
        """A bus's priority request: granted within the limits (it drives from the next frame,
        through the safety gate and the adapter), taken as a bus call by an adaptive controller,
        or refused; audited either way with the bus's delay and the expected saving. Only in
        automatic mode or while an operator's mandate lets an adaptive controller drive: otherwise
        a person approves every plan, and a bus cannot wait for that."""
        out = Outbox()
        slot = self._restore(req.intersection_id, out)
        at_s = req.event_time.timestamp() if slot is None or slot.clock_s is None else slot.clock_s
        detail: dict[str, Any] = {
            "request_id": req.request_id,
            "trip_id": req.trip_id,
            "stage": req.stage,
            "delay_before_s": round(req.delay_s, 1),
        }
        actor = f"bus:{req.vehicle_id}"
        if slot is None:
            entry = AuditEntry(
                at_s, req.intersection_id, "priority_refused", actor, {**detail, "reason": "intersection not configured here"}
            )
            out.audit.append(AuditOut(entry, UNKNOWN_SESSION))
            out.commands.append(("priority", "refused"))
            return out
        overdue_s = at_s - req.event_time.timestamp() - req.eta_s
        eta = max(0.0, -overdue_s)
        if overdue_s > PRIORITY_STALE_S:
            result: Any = None
            reason = f"stale: the bus was due at the stop line {overdue_s:.0f} s ago (over {PRIORITY_STALE_S:g} s)"
        elif slot.control.mode != "automatic" and not slot.control.mandated(at_s):
            result = None
            reason = f"mode {slot.control.mode}: priority is granted in automatic mode (or under an operator's mandate) only"
        else:
            call = PriorityCall(req.request_id, req.vehicle_id, req.stage, at_s, eta, req.delay_s)
            result = priority_controller(slot.control).request(call)
            reason = "" if isinstance(result, (Grant, BusCall)) else result.reason
        if isinstance(result, BusCall):
            detail |= {
                "kind": result.kind,
                "weight_veh": result.weight_veh,
                "until_s": round(result.until_s, 3),
                "explanation": result.explain(),
            }
        elif isinstance(result, Grant):
            detail |= {
                "kind": result.kind,
                "seconds": round(result.seconds, 1),
                "saving_s": result.saving_s,
                "expected_delay_after_s": round(req.delay_s - result.saving_s, 1),
                "until_s": round(result.until_s, 3),
                "explanation": result.explain(call),
            }
        else:
            detail |= {"eta_s": round(eta, 1), "reason": reason}
        granted = isinstance(result, (Grant, BusCall))
        entry = AuditEntry(at_s, req.intersection_id, "priority_granted" if granted else "priority_refused", actor, detail)
        out.audit.append(AuditOut(entry, slot.session))
        out.commands.append(("priority", "applied" if granted else "refused"))
        return out

    # -- configs -----------------------------------------------------------------------------------
    def _reconfigure(self, out: Outbox, old: Slot, cfg: DeskConfig) -> None:
        """Same setup: nothing happens, unless the configured mode changed (a command by the
        config's author)."""
        if cfg.mode != old.config.mode:
            before = dict(old.control.pending)
            entries = old.control.set_mode(cfg.mode, "config", old.clock_s or cfg.event_time.timestamp(), "mode changed in signals.config")
            self._emit(out, old, _retired(before, old.control, None), entries)
        old.config = cfg
        self._touch(out, old)

    def _refuse_config(self, out: Outbox, cfg: DeskConfig, old: Slot | None, reason: str) -> None:
        kept = old.session if old else None
        out.notes.append(
            Note("warning", "signal config refused", {"intersection": cfg.intersection_id, "reason": reason, "kept_session": kept})
        )
        detail = {"session": cfg.session, "controller": cfg.controller, "reason": reason, "kept_session": kept}
        entry = AuditEntry(cfg.event_time.timestamp(), cfg.intersection_id, "config_refused", "config", detail)
        out.audit.append(AuditOut(entry, old.session if old else cfg.session))

    def _stop(self, out: Outbox, old: Slot, cfg: DeskConfig) -> None:
        """A new setup replaces ``old``: its pending proposals expire."""
        before = dict(old.control.pending)
        old.control.pending.clear()
        detail = {"session": old.session, "next_session": cfg.session, "expired": sorted(before)}
        stopped = AuditEntry(old.clock_s or cfg.event_time.timestamp(), cfg.intersection_id, "control_stopped", "config", detail)
        self._emit(out, old, _retired(before, old.control, None), (stopped,))

    def _start(self, out: Outbox, cfg: DeskConfig, control: IntersectionControl, old: Slot | None) -> None:
        slot = Slot(cfg, control)
        self.live[cfg.intersection_id] = slot
        if old is not None:  # a new setup does not unblock the street
            at_s = old.clock_s or cfg.event_time.timestamp()
            out.blockages += slot.blockage.carry(old.blockage.open(), at_s, "the intersection's new model has no such approach")
            slot.follow.carry(old.follow.raised)
            slot.follow.carry_clock(old.follow.known_clock())  # the same cabinet, the same clock
        self._corridor = None  # a new model may share zones with its neighbours'
        detail = {
            "session": cfg.session,
            "controller": cfg.controller,
            "mode": cfg.mode,
            "params": dict(cfg.params),
            "approval_timeout_s": cfg.approval_timeout_s,
        }
        self._emit(out, slot, (), (AuditEntry(cfg.event_time.timestamp(), cfg.intersection_id, "control_started", "config", detail),))
        self._touch(out, slot)

    # -- commands ----------------------------------------------------------------------------------
    @staticmethod
    def _carry_out(control: IntersectionControl, cmd: DeskCommand, at_s: float) -> tuple[PlanRecord | None, tuple[AuditEntry, ...]]:
        """The decided plan (approve, reject) and the audit; ``ControlError`` if it cannot be done."""
        if cmd.action == "approve":
            return control.approve(cmd.plan_id or "", cmd.actor, at_s)
        if cmd.action == "reject":
            return control.reject(cmd.plan_id or "", cmd.actor, at_s, cmd.reason)
        return None, control.set_mode(cmd.mode or "", cmd.actor, at_s, cmd.reason)

    def _refuse(self, out: Outbox, cmd: DeskCommand, at_s: float, session: str, reason: str) -> None:
        out.commands.append((cmd.action, "refused"))
        out.notes.append(
            Note(
                "warning",
                "signal command refused",
                {
                    "intersection": cmd.intersection_id,
                    "action": cmd.action,
                    "plan_id": cmd.plan_id,
                    "mode": cmd.mode,
                    "actor": cmd.actor,
                    "reason": reason,
                },
            )
        )
        detail = {
            "command": cmd.action,
            "plan": cmd.plan_id,
            "mode": cmd.mode,
            "command_reason": cmd.reason,
            "requested_at": cmd.event_time.isoformat(),
            "reason": reason,
        }
        out.audit.append(AuditOut(AuditEntry(at_s, cmd.intersection_id, "command_refused", cmd.actor, detail), session))

    # -- restart -----------------------------------------------------------------------------------
    def _restore(self, iid: str, out: Outbox) -> Slot | None:
        """The live slot, or one rebuilt from the saved state after a restart (pending
        proposals expire)."""
        slot = self.live.get(iid)
        if slot is not None:
            return slot
        saved = self.saved(iid)
        if saved is None:
            return None
        cfg = saved.config
        try:
            control = build_control(cfg, saved.mode)
        except Exception as exc:  # noqa: BLE001 - a config that built before must build again; say so if not
            out.notes.append(
                Note("error", "stored signal config no longer builds", {"intersection": iid, "reason": _refusal_reason(exc, out)})
            )
            return None
        slot = Slot(cfg, control)
        self.live[iid] = slot
        self._corridor = None
        at_s = max((p.at_s for p in saved.stale), default=cfg.event_time.timestamp())
        out.blockages += slot.blockage.carry(saved.blocked, at_s, "the intersection's saved model has no such approach")
        slot.follow.carry(saved.not_following)
        slot.follow.carry_clock(saved.clock_offset_s)
        out.plans += saved.stale
        reason = "worker restarted; pending proposals do not survive it"
        entries = [AuditEntry(at_s, iid, "plan_expired", "restart", {"plan": p.plan_id, "reason": reason}) for p in saved.stale]
        note = "controller history restarts; the signal drives the fixed program until it has new data"
        detail: dict[str, Any] = {"session": cfg.session, "controller": cfg.controller, "mode": control.mode, "note": note}
        if saved.mandate_until_s is not None and control.carry_mandate(saved.mandate_until_s):
            # an operator's mandate is their decision, not the controller's history: it is kept
            detail["mandate_until_s"] = saved.mandate_until_s
        entries.append(AuditEntry(at_s, iid, "control_restored", "restart", detail))
        out.audit += [AuditOut(e, cfg.session) for e in entries]
        out.dirty.add(iid)
        return slot

    # -- helpers -----------------------------------------------------------------------------------
    def _emit(self, out: Outbox, slot: Slot, retired: Iterable[PlanRecord], entries: Iterable[AuditEntry]) -> None:
        out.plans += [PlanOut(p, slot.session, now_s=slot.clock_s) for p in retired]
        out.audit += [AuditOut(e, slot.session) for e in entries]

    def _expire_lapsed(self, out: Outbox, slot: Slot, received_s: float | None) -> None:
        """The proposals that lapsed while no frame came, expired with the silence as the reason."""
        late = silent_clock(slot, received_s)
        if late is None or slot.heard_s is None or received_s is None:
            return
        silence = f"no detector frames for {received_s - slot.heard_s:.0f} s: its data is older than its approval window"
        out.plans += [PlanOut(p, slot.session, now_s=late) for p in slot.control.expire_due(late, silence)]
        out.audit += [AuditOut(e, slot.session) for e in slot.control.drain_audit()]

    def _touch(self, out: Outbox, slot: Slot) -> None:
        if slot.saved != slot.signature():
            out.dirty.add(slot.config.intersection_id)


def silent_clock(slot: Slot, received_s: float | None) -> float | None:
    """The intersection's clock moved on by the wall-clock time since its last frame arrived, or
    None when that is not known or no time has passed (frames flowing: the clock is the frame's)."""
    if received_s is None or slot.heard_s is None or slot.clock_s is None or received_s <= slot.heard_s:
        return None
    return slot.clock_s + (received_s - slot.heard_s)


def _lapsed(record: PlanRecord, now_s: float | None) -> bool:
    return now_s is not None and record.expires_at_s is not None and now_s >= record.expires_at_s
