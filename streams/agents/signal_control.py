"""The signal control agent: one ``IntersectionControl`` per configured intersection.

One agent reads three topics keyed by intersection id and co-partitioned (same partition count,
same key, murmur2): ``signals.config`` (model, controller, mode, session), ``sensors.intersection``
(detector frames) and ``signals.approvals`` (operators' approve / reject / set_mode). Faust
assigns the same partition number of topics with equal partition counts (and subscribers) to
the same worker, and one actor iterates them in partition order, so everything of one intersection is
applied in order to the same object, without an extra hop for the frames (a co-simulation waits
for the reply to every frame).

What goes out (``streams/signal_codec.py`` builds the messages; the config's ``session`` is in
every one):

* ``signals.plans``: per processed frame first the proposals it produced or retired (``pending``,
  ``expired``), then exactly one *drive* record (``active`` / ``fallback`` / ``fixed``: what the
  signal shows now), so the drive is the last plans message of a frame; per command the record
  it decided (``approved`` / ``rejected``) and any it retired (``expired``: superseded, mode
  changed). ``event_time`` is the frame's event time; ``time_s`` the decision's.
* ``signals.audit``: every audit entry of the core (decisions rejected by the validator,
  proposals, approvals, rejections, expiries, mode changes), control (re)starts, and every
  refused command or configuration (``command_refused`` / ``config_refused`` with the reason).

The intersection's clock is the event time of its frames: expiry is checked when a frame or a
command arrives, and a command is applied at the time of the last frame (a SUMO run's clock is
not the wall clock); the command's own time is kept in the audit detail as ``requested_at``.

State: the table ``signal-control`` holds per intersection the config, the current mode (an
operator's ``set_mode`` survives a restart) and the pending proposals. A restarted worker
rebuilds each controller from the table on the first message for its intersection; the
controller's history (Webster's counts, max-pressure's stage clock, an approved plan) does not
survive, so the signal runs the fixed program until the controller has new data, and proposals
that were pending are published as ``expired`` (actor ``restart``) rather than forgotten.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, MutableMapping
from dataclasses import dataclass, field, replace
from typing import Any

import faust
import msgspec
import structlog

from signals.control import AuditEntry, ControlError, IntersectionControl, PlanRecord
from signals.loader import intersection_from_dict

from ..codec import DecodeFailure, TopicDecoder, dead_letter, decoder_limits
from ..ingest import raw_message, send_dead_letters
from ..metrics import RECORDS_DECODED, SIGNAL_COMMANDS, SIGNAL_FRAMES_UNCONFIGURED, SIGNAL_PLANS
from ..records import IntersectionConfig, IntersectionFrame, SignalAuditMessage, SignalCommand, SignalPlanMessage, encode
from ..settings import Settings
from ..signal_codec import audit_message, epoch_s, plan_message
from ..topics import SENSORS_INTERSECTION, SIGNALS_APPROVALS, SIGNALS_AUDIT, SIGNALS_CONFIG, SIGNALS_PLANS

log = structlog.get_logger(__name__)
UNKNOWN_SESSION = "-"


@dataclass
class Outbox:
    """What one input produced, in publishing order; ``dirty`` intersections need saving."""

    plans: list[SignalPlanMessage] = field(default_factory=list)
    audit: list[SignalAuditMessage] = field(default_factory=list)
    dirty: set[str] = field(default_factory=set)

    def extend(self, other: Outbox) -> None:
        self.plans += other.plans
        self.audit += other.audit
        self.dirty |= other.dirty


@dataclass
class Slot:
    """One controlled intersection: its config, its control loop and its clock."""

    config: IntersectionConfig
    control: IntersectionControl
    clock_s: float | None = None
    saved: tuple[Any, ...] | None = None

    @property
    def session(self) -> str:
        return self.config.session

    def signature(self) -> tuple[Any, ...]:
        return (self.config.event_time, self.control.mode, tuple(self.control.pending))


def setup_of(cfg: IntersectionConfig) -> tuple[Any, ...]:
    """What makes a control loop: a change in any of these restarts it (the mode does not)."""
    return (
        cfg.session,
        msgspec.json.encode(cfg.model, order="sorted"),
        cfg.controller,
        tuple(sorted(cfg.params.items())),
        cfg.approval_timeout_s,
    )


def build_control(cfg: IntersectionConfig, mode: str | None = None) -> IntersectionControl:
    """The control loop a config describes; ``ValueError`` (ControlError, ModelError included) if
    it cannot be built. The model goes through the same loader as ``leitstand signals configure``:
    RiLSA bounds and the fixed plan validated, so the safety gate built on the first frame can
    never find its fallback unsafe (a config from any other client gets no less checking)."""
    intersection = intersection_from_dict(cfg.model)
    if intersection.id != cfg.intersection_id:
        raise ValueError(f"model id {intersection.id!r} differs from the config's intersection_id {cfg.intersection_id!r}")
    return IntersectionControl(
        intersection,
        cfg.controller,
        mode or cfg.mode,  # type: ignore[arg-type]
        cfg.approval_timeout_s,
        **cfg.params,
    )


def _refusal_reason(exc: Exception) -> str:
    """One line for the audit: the loader's own message, or the type of an unexpected failure
    (a bug in a controller's constructor must not take the agent down with it)."""
    if isinstance(exc, (ValueError, TypeError)):  # TypeError: params the controller does not take
        return str(exc)
    log.error("unexpected error building a signal control loop", exc_info=exc)
    return f"cannot build the control loop: {type(exc).__name__}: {exc}"


def _retired(before: dict[str, PlanRecord], control: IntersectionControl, decided: str | None) -> list[PlanRecord]:
    """Proposals that left ``pending`` as a side effect (superseded, mode change, expiry)."""
    return [replace(p, status="expired", expires_at_s=None) for pid, p in before.items() if pid not in control.pending and pid != decided]


class ControlDesk:
    """The intersections this worker controls. Turns records into messages; Faust-free, so the
    unit tests drive it with a dict for a table. The agent publishes an ``Outbox`` and then saves
    the dirty intersections with ``snapshot``."""

    def __init__(self, table: MutableMapping[bytes, Any]) -> None:
        self.table = table
        self.live: dict[str, Slot] = {}
        self.unconfigured_frames = 0

    # -- lookups (also for the HTTP API) ---------------------------------------------------------
    def known(self, intersection_id: str) -> bool:
        return intersection_id in self.live or self.table.get(intersection_id.encode()) is not None

    def slot(self, intersection_id: str) -> Slot | None:
        return self.live.get(intersection_id)

    def pending_messages(self) -> list[SignalPlanMessage]:
        out = [plan_message(p, s.session, now_s=s.clock_s) for s in self.live.values() for p in s.control.pending.values()]
        return sorted(out, key=lambda m: (m.intersection_id, m.time_s))

    def snapshot(self, intersection_id: str) -> dict[str, Any] | None:
        s = self.live.get(intersection_id)
        if s is None:
            return None
        s.saved = s.signature()
        return {
            "config": msgspec.to_builtins(s.config),
            "mode": s.control.mode,
            "pending": [msgspec.to_builtins(plan_message(p, s.session, now_s=s.clock_s)) for p in s.control.pending.values()],
        }

    # -- inputs ------------------------------------------------------------------------------------
    def on_config(self, cfg: IntersectionConfig) -> Outbox:
        out = Outbox()
        iid, at_s = cfg.intersection_id, epoch_s(cfg.event_time)
        old = self._restore(iid, out)
        if old is not None and setup_of(old.config) == setup_of(cfg):
            if cfg.mode != old.config.mode:  # the configured mode changed: a command by the config's author
                before = dict(old.control.pending)
                entries = old.control.set_mode(cfg.mode, "config", old.clock_s or at_s, "mode changed in signals.config")
                self._emit(out, old, _retired(before, old.control, None), entries)
            old.config = cfg
            self._touch(out, old)
            return out
        try:
            control = build_control(cfg)
        except Exception as exc:  # noqa: BLE001 - a bad config is refused and audited, never fatal
            reason = _refusal_reason(exc)
            session = old.session if old else cfg.session
            log.warning("signal config refused", intersection=iid, reason=reason, kept_session=old.session if old else None)
            out.audit.append(
                audit_message(
                    AuditEntry(
                        at_s,
                        iid,
                        "config_refused",
                        "config",
                        {
                            "session": cfg.session,
                            "controller": cfg.controller,
                            "reason": reason,
                            "kept_session": old.session if old else None,
                        },
                    ),
                    session,
                )
            )
            return out
        if old is not None:
            before = dict(old.control.pending)
            old.control.pending.clear()
            self._emit(
                out,
                old,
                _retired(before, old.control, None),
                (
                    AuditEntry(
                        old.clock_s or at_s,
                        iid,
                        "control_stopped",
                        "config",
                        {"session": old.session, "next_session": cfg.session, "expired": sorted(before)},
                    ),
                ),
            )
        slot = Slot(cfg, control)
        self.live[iid] = slot
        self._emit(
            out,
            slot,
            (),
            (
                AuditEntry(
                    at_s,
                    iid,
                    "control_started",
                    "config",
                    {
                        "session": cfg.session,
                        "controller": cfg.controller,
                        "mode": cfg.mode,
                        "params": dict(cfg.params),
                        "approval_timeout_s": cfg.approval_timeout_s,
                    },
                ),
            ),
        )
        self._touch(out, slot)
        return out

    def on_frame(self, frame: IntersectionFrame, observe: Any) -> Outbox | None:
        """``observe`` is ``observation_from_frame`` (passed in so the SUMO path stays identical)."""
        out = Outbox()
        slot = self._restore(frame.intersection_id, out)
        if slot is None:
            self.unconfigured_frames += 1
            return None
        obs = observe(frame)
        step = slot.control.on_observation(obs)
        slot.clock_s = obs.time_s
        out.plans += [plan_message(p, slot.session, now_s=obs.time_s) for p in step.proposals]
        out.plans.append(plan_message(step.drive, slot.session, changed=step.changed, now_s=obs.time_s))
        out.audit += [audit_message(a, slot.session) for a in step.audit]
        self._touch(out, slot)
        return out

    def on_command(self, cmd: SignalCommand) -> Outbox:
        out = Outbox()
        iid = cmd.intersection_id
        slot = self._restore(iid, out)
        requested = cmd.event_time.isoformat()
        at_s = epoch_s(cmd.event_time) if slot is None or slot.clock_s is None else slot.clock_s
        if slot is None:
            self._refuse(out, cmd, at_s, UNKNOWN_SESSION, f"intersection {iid} is not configured here")
            return out
        control = slot.control
        before = dict(control.pending)
        decided: PlanRecord | None = None
        try:
            if cmd.action == "approve":
                decided, entries = control.approve(cmd.plan_id or "", cmd.actor, at_s)
            elif cmd.action == "reject":
                decided, entries = control.reject(cmd.plan_id or "", cmd.actor, at_s, cmd.reason)
            else:
                entries = control.set_mode(cmd.mode or "", cmd.actor, at_s, cmd.reason)
        except ControlError as exc:
            retired = _retired(before, control, None)
            self._emit(out, slot, retired, control.drain_audit())
            self._refuse(out, cmd, at_s, slot.session, str(exc))
            self._touch(out, slot)
            return out
        entries = tuple(replace(e, detail={**e.detail, "requested_at": requested}) if e.actor == cmd.actor else e for e in entries)
        self._emit(out, slot, _retired(before, control, decided.plan_id if decided else None), entries)
        if decided is not None:
            out.plans.append(plan_message(decided, slot.session, now_s=at_s))
        SIGNAL_COMMANDS.labels(cmd.action, "applied").inc()
        self._touch(out, slot)
        return out

    # -- internals ---------------------------------------------------------------------------------
    def _restore(self, iid: str, out: Outbox) -> Slot | None:
        """The live slot, or one rebuilt from the table after a restart (pending proposals expire)."""
        slot = self.live.get(iid)
        if slot is not None:
            return slot
        saved = self.table.get(iid.encode())
        if not saved:
            return None
        cfg = msgspec.convert(saved["config"], IntersectionConfig)
        try:
            control = build_control(cfg, saved.get("mode"))
        except Exception as exc:  # noqa: BLE001 - a config that built before must build again; say so if not
            log.error("stored signal config no longer builds", intersection=iid, reason=_refusal_reason(exc))
            return None
        slot = Slot(cfg, control)
        self.live[iid] = slot
        stale = [msgspec.convert(p, SignalPlanMessage) for p in saved.get("pending", ())]
        at_s = max((p.event_time.timestamp() for p in stale), default=epoch_s(cfg.event_time))
        out.plans += [msgspec.structs.replace(p, status="expired", expires_at_s=None, changed=True) for p in stale]
        entries = [
            AuditEntry(
                at_s, iid, "plan_expired", "restart", {"plan": p.plan_id, "reason": "worker restarted; pending proposals do not survive it"}
            )
            for p in stale
        ]
        entries.append(
            AuditEntry(
                at_s,
                iid,
                "control_restored",
                "restart",
                {
                    "session": cfg.session,
                    "controller": cfg.controller,
                    "mode": control.mode,
                    "note": "controller history restarts; the signal drives the fixed program until it has new data",
                },
            )
        )
        out.audit += [audit_message(e, cfg.session) for e in entries]
        out.dirty.add(iid)
        return slot

    def _emit(self, out: Outbox, slot: Slot, retired: Iterable[PlanRecord], entries: Iterable[AuditEntry]) -> None:
        out.plans += [plan_message(p, slot.session, now_s=slot.clock_s) for p in retired]
        out.audit += [audit_message(e, slot.session) for e in entries]

    def _refuse(self, out: Outbox, cmd: SignalCommand, at_s: float, session: str, reason: str) -> None:
        SIGNAL_COMMANDS.labels(cmd.action, "refused").inc()
        log.warning(
            "signal command refused",
            intersection=cmd.intersection_id,
            action=cmd.action,
            plan_id=cmd.plan_id,
            mode=cmd.mode,
            actor=cmd.actor,
            reason=reason,
        )
        out.audit.append(
            audit_message(
                AuditEntry(
                    at_s,
                    cmd.intersection_id,
                    "command_refused",
                    cmd.actor,
                    {
                        "command": cmd.action,
                        "plan": cmd.plan_id,
                        "mode": cmd.mode,
                        "command_reason": cmd.reason,
                        "requested_at": cmd.event_time.isoformat(),
                        "reason": reason,
                    },
                ),
                session,
            )
        )

    def _touch(self, out: Outbox, slot: Slot) -> None:
        if slot.saved != slot.signature():
            out.dirty.add(slot.config.intersection_id)


class SignalControls:
    """What the HTTP API needs: the desk to read and the topic to write operators' commands to."""

    def __init__(self, desk: ControlDesk, approvals_topic: Any) -> None:
        self.desk = desk
        self.approvals_topic = approvals_topic

    async def submit(self, cmd: SignalCommand) -> None:
        await (await self.approvals_topic.send(key=cmd.intersection_id.encode(), value=encode(cmd)))


def register(app: faust.App, settings: Settings, deadletter: Any, *, own_frame_deadletters: bool) -> SignalControls:
    """``own_frame_deadletters``: False when another agent of this app (aggregation) already
    dead-letters ``sensors.intersection``, so each bad frame is reported once."""
    from ..signal_codec import observation_from_frame

    names = {
        settings.topic(SIGNALS_CONFIG): IntersectionConfig,
        settings.topic(SENSORS_INTERSECTION): IntersectionFrame,
        settings.topic(SIGNALS_APPROVALS): SignalCommand,
    }
    limits = decoder_limits(settings)
    decoders: dict[str, TopicDecoder[Any]] = {t: TopicDecoder(r, **limits) for t, r in names.items()}  # type: ignore[arg-type]
    # a config's time only orders configs; a simulation publishes its own epoch (no skew check)
    decoders[settings.topic(SIGNALS_CONFIG)] = TopicDecoder(IntersectionConfig, max_bytes=settings.max_record_bytes, clock_skew_s=1e12)
    frames_topic = settings.topic(SENSORS_INTERSECTION)
    source = app.topic(*names)
    approvals = app.topic(settings.topic(SIGNALS_APPROVALS))
    plans = app.topic(settings.topic(SIGNALS_PLANS))
    audit = app.topic(settings.topic(SIGNALS_AUDIT))
    table = app.Table("signal-control", default=None, use_partitioner=True, key_type=bytes, partitions=settings.topic_partitions)
    desk = ControlDesk(table)

    async def decode(events: list[Any]) -> list[Any]:
        now, records, dead = time.time(), [], []
        for e in events:
            raw = raw_message(e)
            out = decoders[raw.topic].decode(raw.value, now=now, key=raw.key)
            if isinstance(out, DecodeFailure):
                if raw.topic != frames_topic or own_frame_deadletters:
                    dead.append(dead_letter(raw, out, now))
                continue
            if raw.topic != frames_topic or own_frame_deadletters:
                RECORDS_DECODED.labels(raw.topic).inc()
            records.append(out)
        # bounded dead letters, acknowledged by the broker (and counted) before the batch goes on
        await send_dead_letters(deadletter, dead)
        return records

    @app.agent(source, name="signal-control")
    async def control(stream: Any) -> None:
        async for events in stream.take_events(settings.batch_max, within=0.02):
            box = Outbox()
            for record in await decode(events):
                if isinstance(record, IntersectionFrame):
                    got = desk.on_frame(record, observation_from_frame)
                    if got is None:
                        SIGNAL_FRAMES_UNCONFIGURED.inc()
                        continue
                elif isinstance(record, IntersectionConfig):
                    got = desk.on_config(record)
                else:
                    got = desk.on_command(record)
                box.extend(got)
            sent = [await plans.send(key=m.intersection_id.encode(), value=encode(m)) for m in box.plans]
            sent += [await audit.send(key=m.intersection_id.encode(), value=encode(m)) for m in box.audit]
            await asyncio.gather(*sent)
            for m in box.plans:
                SIGNAL_PLANS.labels(m.status).inc()
            for iid in box.dirty:  # after the broker has the messages: a crash repeats, never loses
                snap = desk.snapshot(iid)
                if snap is not None:
                    table[iid.encode()] = snap

    return SignalControls(desk, approvals)
