"""The signal control agent: records in, the control desk (``signals.desk``) decides, messages out.

One agent reads five topics keyed by intersection id and co-partitioned (same partition count,
same key, murmur2): ``signals.config`` (model, controller, mode, session), ``sensors.intersection``
(detector frames), ``signals.approvals`` (operators' approve / reject / set_mode),
``signals.priority`` (late buses asking for a green extension or an early green; the desk grants
within limits, ``signals/priority.py``, and the grant drives from the next frame on) and
``signals.state`` (the field controller's report of the stage it shows, checked against the
drive: ``signals/following.py``). Faust
assigns the same partition number of topics with equal partition counts (and subscribers) to
the same worker, and one actor iterates them in partition order, so everything of one
intersection is applied in order to the same desk, without an extra hop for the frames (a
co-simulation waits for the reply to every frame).

What goes out (the rules are the desk's, ``streams/signal_codec.py`` builds the messages; the
config's ``session`` is in every one):

* ``signals.plans``: per processed frame first the proposals it produced or retired (``pending``,
  ``expired``), then exactly one *drive* record (``active`` / ``fallback`` / ``fixed``: what the
  signal shows now), so the drive is the last plans message of a frame; per command the record
  it decided (``approved`` / ``rejected``) and any it retired (``expired``: superseded, mode
  changed); per tick of the lapse timer the proposals whose approval window ran out while no
  frame came (``expired``, the silence as the reason). ``event_time`` is the frame's event time
  (for a lapse, the intersection's clock moved on by the silence); ``time_s`` the decision's.
* metrics: every wait for green the desk saw served (``signals.fairness.LiveWaits``: first demand
  on a red approach to its green) in ``leitstand_signal_approach_wait_seconds`` per transport
  mode, and the worst approach's p95 wait over the median approach's in
  ``leitstand_signal_wait_worst_to_median_ratio``. A decision made on degraded detector data
  (stuck, missing, out of range: ``signals.input_quality``) names those detectors in its
  explanation (``degraded_inputs``).
* ``alerts.lifecycle``: a raise of ``blocked_<detector>`` when vehicles stood on an approach
  through three of its greens in a row and nobody crossed the stop line, a clear when a green
  moves someone again (``signals.blockage``; the desk judges each frame against the greens the
  signal showed while it was measured); a raise of ``signal_not_following`` when the field
  controller's reported stage and the drive parted for longer than a stage change takes, a
  clear when it follows again (``signals.following``). The alarm books are the single writer of alarms.
* ``signals.audit``: every audit entry of the core (decisions rejected by the validator,
  proposals, approvals, rejections, expiries, mode changes), control (re)starts, every refused
  command or configuration (``command_refused`` / ``config_refused`` with the reason), and every
  priority request (``priority_granted`` with the explanation, the bus's delay before and the
  expected delay after for a changed cycle, the weight and end of a bus call for an adaptive
  controller, or ``priority_refused`` with the reason).

State: the table ``signal-control`` holds per intersection the desk's snapshot (config, current
mode, pending proposals, approaches with a blockage alarm open), written after the broker acknowledged the messages of the batch, and
acknowledged by the broker itself before the batch is (so a committed command's effect is never
lost; a crash before the commit applies the command again: at least once).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import faust
import structlog

from detection.incidents import IncidentOutcome
from signals.blockage import BlockageEvent
from signals.desk import ControlDesk, Note, Outbox, PlanOut, Saved
from signals.following import FollowEvent

from ..codec import TopicDecoder
from ..ingest import decoded_batches
from ..metrics import (
    SIGNAL_APPROACH_WAIT,
    SIGNAL_COMMANDS,
    SIGNAL_CONTROL_SPLIT,
    SIGNAL_FRAMES_UNCONFIGURED,
    SIGNAL_PLANS,
    SIGNAL_WAIT_WORST_TO_MEDIAN,
    EventClock,
    frame_end,
)
from ..records import (
    IntersectionConfig,
    IntersectionFrame,
    LifecycleCommand,
    PriorityRequest,
    Record,
    SignalCommand,
    SignalPlanMessage,
    StageShown,
    encode,
)
from ..settings import Settings
from ..signal_codec import (
    desk_command,
    desk_config,
    desk_priority,
    desk_state,
    observation_from_frame,
    outbox_messages,
    plan_out_message,
    saved_from_value,
    snapshot_value,
)
from ..stores import key_partition
from ..topics import (
    ALERTS_LIFECYCLE,
    SENSORS_INTERSECTION,
    SIGNALS_APPROVALS,
    SIGNALS_AUDIT,
    SIGNALS_CONFIG,
    SIGNALS_PLANS,
    SIGNALS_PRIORITY,
    SIGNALS_STATE,
)
from .alarm_commands import lifecycle_commands, to_lifecycle
from .neighbour_feed import NeighbourFeed
from .wiring import Outgoing, Sink, Times, changelog_durable, keyed_table, publish, publish_until_sent, save, topic_decoder

log = structlog.get_logger(__name__)


#: how often the worker looks for proposals that lapsed while no frame came (seconds)
LAPSE_EVERY_S = 1.0


class SignalControls:
    """What the HTTP API needs: the desk to read, the topic to write operators' commands to, and
    the table whose partitions say which control worker holds an intersection."""

    def __init__(self, desk: ControlDesk, approvals_topic: Sink, table: Any = None) -> None:
        self.desk = desk
        self.approvals_topic = approvals_topic
        #: the control table (``signal-control``): which worker holds which intersection
        self.table = table

    def pending_messages(self) -> list[SignalPlanMessage]:
        """Every pending proposal that can still be approved, as a ``signals.plans`` message."""
        return [plan_out_message(p) for p in self.desk.pending(time.time())]

    async def submit(self, cmd: SignalCommand) -> None:
        await (await self.approvals_topic.send(key=cmd.intersection_id.encode(), value=encode(cmd)))


def table_reader(table: Any) -> Callable[[str], Saved | None]:
    """The desk's view of the saved state: a table value read back into core types."""

    def saved(intersection_id: str) -> Saved | None:
        return saved_from_value(table.get(intersection_id.encode()))

    return saved


def apply(desk: ControlDesk, record: Record, received_s: float | None = None) -> Outbox | None:
    """One record to the desk; ``None`` for a frame of an intersection not configured here.
    ``received_s`` (the worker's wall clock) lets a command see how long the frames were silent."""
    if isinstance(record, IntersectionFrame):
        return desk.on_observation(observation_from_frame(record), received_s)
    if isinstance(record, IntersectionConfig):
        return desk.on_config(desk_config(record))
    if isinstance(record, PriorityRequest):
        return desk.on_priority(desk_priority(record))
    if isinstance(record, StageShown):
        return desk.on_state(desk_state(record))
    assert isinstance(record, SignalCommand)  # the agent's five topics decode into these five
    return desk.on_command(desk_command(record), received_s)


def log_notes(notes: Iterable[Note]) -> None:
    for note in notes:
        getattr(log, note.level)(note.event, exc_info=note.error, **note.fields)


def outgoing(box: Outbox, plans: Sink, audit: Sink, lifecycle: Sink) -> list[Outgoing]:
    """Plans first, then audit, then blockage and not-following alarms, each in the desk's order."""
    plan_messages, audit_messages = outbox_messages(box)
    return (
        [Outgoing(plans, m.intersection_id.encode(), encode(m)) for m in plan_messages]
        + [Outgoing(audit, m.intersection_id.encode(), encode(m)) for m in audit_messages]
        + to_lifecycle(lifecycle, signal_alarm_commands([*box.blockages, *box.following]))
    )


def signal_alarm_commands(events: Iterable[BlockageEvent | FollowEvent]) -> list[LifecycleCommand]:
    """Raise / clear commands for the alarm books: one alarm per blocked approach detector, one
    per signal not following its plan."""
    out: list[LifecycleCommand] = []
    for e in events:
        outcome = IncidentOutcome(triggers=[e.trigger()] if e.raised else [], clears=[] if e.raised else [e.kind])
        at = datetime.fromtimestamp(e.time_s, tz=UTC)
        out += lifecycle_commands(e.intersection_id, outcome, at, subject_type="intersection")
    return out


class FairnessGauge:
    """Writes the live worst-vs-median wait ratio at most once per ``EVERY_S``.

    The ratio is a summary over every approach of every intersection the worker controls; made
    after each batch it cost 6 % of a control worker with 500 intersections (py-spy, bench city).
    A batch that served approaches marks it stale; the first batch a second later writes it, and
    when frames stop (a replay's last frame, a detector outage) the worker's timer does."""

    EVERY_S = 1.0

    def __init__(self) -> None:
        self.stale = False
        self.written_at = float("-inf")

    def changed(self, desk: ControlDesk, served: bool, now: float) -> None:
        self.stale = self.stale or served
        self.flush(desk, now)

    def flush(self, desk: ControlDesk, now: float) -> None:
        """Writes the ratio if a batch changed it and the last write is ``EVERY_S`` old."""
        if self.stale and now - self.written_at >= self.EVERY_S:
            SIGNAL_WAIT_WORST_TO_MEDIAN.set(desk.recent.summary()["worst_to_median"] or 0.0)
            self.stale, self.written_at = False, now


class SplitWatch:
    """Notices a second control worker in the group.

    Frames are spread over the workers by intersection id, so with two control workers the two
    signals of a short link may be controlled apart. The corridor rules between them need what
    the other worker holds (its neighbours' models, frames and driven plans), so a worker holding
    some but not all partitions of the frames topic reads them from the topics
    (``neighbour_feed.NeighbourFeed``, started and stopped by the worker's timer on the change)
    and says so: a line in the log on the change and ``leitstand_signal_control_split`` 1. Only
    if that feed cannot start does ``/ready`` warn: then the rules are off between workers. A
    worker holding no partition (a standby beyond the partition count) is not split."""

    EVERY_S = 10.0

    def __init__(self, topic: str) -> None:
        self.topic = topic
        self.reason: str | None = None

    def observe(self, held: Collection[int], total: int | None) -> str | None:
        """This worker holds partitions ``held`` of ``total``; why it is split, if it is."""
        was = self.reason
        n = len(set(held))
        if total is None or n == 0 or n >= total:
            self.reason = None
        else:
            self.reason = f"this control worker holds {n} of the {total} partitions of {self.topic}: another control worker holds the rest"
        SIGNAL_CONTROL_SPLIT.set(0 if self.reason is None else 1)
        if self.reason is not None and self.reason != was:
            log.info("signal control shared with another worker", reason=self.reason, held=sorted(set(held)), partitions=total)
        elif self.reason is None and was is not None:
            log.info("signal control no longer shared: this worker holds every partition", partitions=total)
        return self.reason


@dataclass(frozen=True)
class HeldBy:
    """The frames partitions a worker holds, as a test of an intersection id (murmur2 of the key,
    as Kafka spreads the frames)."""

    partitions: frozenset[int]
    total: int

    def __call__(self, intersection_id: str) -> bool:
        return key_partition(intersection_id.encode(), self.total) in self.partitions


def count(box: Outbox, desk: ControlDesk, fairness: FairnessGauge, now: float) -> None:
    """The batch's counters, and the live fairness figures when approaches were served."""
    for action, outcome in box.commands:
        SIGNAL_COMMANDS.labels(action, outcome).inc()
    for plan in box.plans:
        SIGNAL_PLANS.labels(plan.record.status if isinstance(plan, PlanOut) else "expired").inc()
    for wait in box.waits:
        SIGNAL_APPROACH_WAIT.labels(wait.mode).observe(wait.wait_s)
    fairness.changed(desk, bool(box.waits), now)


def snapshots(desk: ControlDesk, dirty: Iterable[str]) -> dict[bytes, Any]:
    """The table values of the intersections whose state changed."""
    updates: dict[bytes, Any] = {}
    for iid in dirty:
        snap = desk.snapshot(iid)
        if snap is not None:
            updates[iid.encode()] = snapshot_value(snap)
    return updates


def register(app: faust.App, settings: Settings, deadletter: Any, *, own_frame_deadletters: bool) -> SignalControls:
    """``own_frame_deadletters``: False when another agent of this app (aggregation) already
    dead-letters ``sensors.intersection``, so each bad frame is reported once."""
    frames_topic = settings.topic(SENSORS_INTERSECTION)
    decoders: dict[str, TopicDecoder[Any]] = {
        # a config's time only orders configs; a simulation publishes its own epoch (no skew check)
        settings.topic(SIGNALS_CONFIG): topic_decoder(IntersectionConfig, settings, Times.ANY),
        frames_topic: topic_decoder(IntersectionFrame, settings),
        settings.topic(SIGNALS_APPROVALS): topic_decoder(SignalCommand, settings),
        # bus priority requests (streams/agents/buses.py): their time is the bus position's
        settings.topic(SIGNALS_PRIORITY): topic_decoder(PriorityRequest, settings, Times.ANY),
        # the field controller's report of the stage it shows (signals.following)
        settings.topic(SIGNALS_STATE): topic_decoder(StageShown, settings),
    }
    silent = () if own_frame_deadletters else (frames_topic,)
    approvals = app.topic(settings.topic(SIGNALS_APPROVALS))
    plans = app.topic(settings.topic(SIGNALS_PLANS))
    audit = app.topic(settings.topic(SIGNALS_AUDIT))
    lifecycle = app.topic(settings.topic(ALERTS_LIFECYCLE))
    table = keyed_table(app, "signal-control", settings)
    desk = ControlDesk(table_reader(table))
    clock = EventClock.for_reference(settings.timestamp_reference)
    fairness = FairnessGauge()

    @app.agent(app.topic(*decoders), name="signal-control")
    async def control(stream: Any) -> None:
        async for records in decoded_batches(
            stream, decoders, deadletter, max_batch=settings.batch_max, within_s=0.02, silent_topics=silent
        ):
            received, box, decided = time.time(), Outbox(), []
            for record in records:
                got = apply(desk, record, received)
                if got is None:
                    SIGNAL_FRAMES_UNCONFIGURED.inc()
                    continue
                box.extend(got)
                if isinstance(record, IntersectionFrame):  # each frame decided one drive record
                    decided.append(frame_end(record))
            log_notes(box.notes)
            await publish(outgoing(box, plans, audit, lifecycle))
            count(box, desk, fairness, received)
            clock.observe("frame_to_decision", decided, received)
            save(table, snapshots(desk, box.dirty))  # after the broker has the messages: a crash repeats, never loses
            if box.dirty:
                # and durable before the batch is acknowledged: Faust's commit can overtake a
                # changelog write still in its buffer, and a SIGKILL then would lose an operator's
                # mode change whose command is committed (wiring.changelog_durable)
                await changelog_durable(app)

    @app.timer(interval=FairnessGauge.EVERY_S)
    async def fairness_flush() -> None:
        """The last batch's change to the ratio, at most a second late, when no batch follows."""
        fairness.flush(desk, time.time())

    def held_in(assignment: Collection[Any]) -> HeldBy:
        """Which intersections an assignment of partitions gives this worker (by the frames
        topic's partitions; the configured count is the topics', the worker refuses to start
        otherwise: kafka_io.partition_mismatch)."""
        return HeldBy(frozenset(tp.partition for tp in assignment if tp.topic == frames_topic), settings.topic_partitions)

    @app.timer(interval=LAPSE_EVERY_S)
    async def lapse_watch() -> None:
        """Proposals whose approval window ran out with no frame since: published ``expired``
        within a tick (``ControlDesk.expire_lapsed``), so the console and the audit do not wait
        for the next frame or command. Only for intersections whose partition this worker holds
        now: during a rebalance a moved one belongs to its new owner's table."""
        from faust.exceptions import ConsumerNotStarted

        if app.rebalancing:
            return
        try:
            mine = held_in(app.consumer.assignment())
        except ConsumerNotStarted:
            return
        box = desk.expire_lapsed(time.time(), mine)
        if not box.plans and not box.dirty:
            return
        log_notes(box.notes)
        # the desk has retired them, so the records must go out (if the worker stops first, the
        # table still holds the proposals and a restart publishes them expired)
        await publish_until_sent(outgoing(box, plans, audit, lifecycle), "lapsed proposals")
        count(box, desk, fairness, time.time())
        save(table, snapshots(desk, box.dirty))
        await changelog_durable(app)

    split = SplitWatch(frames_topic)
    feed = NeighbourFeed(
        settings, desk, changelog=table.changelog_topic.get_topic_name(), frames=frames_topic, plans=settings.topic(SIGNALS_PLANS)
    )
    warnings = getattr(app, "readiness_warnings", None)
    if warnings is not None:
        warnings["signal_control_split"] = lambda: (
            f"{split.reason}, and neighbours on other workers cannot be read ({feed.start_error}): corridor rules are off between them"
            if split.reason is not None and not feed.running and feed.start_error
            else None
        )

    def frames_partitions() -> int | None:
        """The frames topic's partition count from the cluster metadata: Faust's
        topic_partitions() answers only on the group's leader (aiokafka keeps that snapshot to
        detect changes while leading)."""
        consumer: Any = app.consumer
        known = consumer._thread._ensure_consumer().partitions_for_topic(frames_topic)
        return len(known) if known else None

    @app.timer(interval=SplitWatch.EVERY_S)
    async def control_split() -> None:
        """Whether another control worker shares the frames topic (``SplitWatch``); the
        neighbour feed runs while it does."""
        from faust.exceptions import ConsumerNotStarted

        try:
            assigned = app.consumer.assignment()
            total = frames_partitions()
        except ConsumerNotStarted:
            return
        if split.observe([tp.partition for tp in assigned if tp.topic == frames_topic], total) is None:
            if feed.running:
                await feed.stop()
            return
        if not feed.running:
            try:
                await feed.start()
            except Exception as exc:  # noqa: BLE001 - the worker controls its own intersections regardless; /ready says why
                log.error("cannot read neighbours on other control workers", error=feed.start_error or repr(exc))

    async def hand_over(sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
        """Forget the intersections a rebalance gave to another worker (``ControlDesk.release``):
        their state is in the table for the new owner, and this worker restores it from there if
        the partition comes back."""
        assigned: Collection[Any] = args[0] if args else kwargs.get("assigned", ())  # Faust sends the new assignment
        mine = held_in(assigned)
        try:
            gone = desk.release(mine)
        except Exception:  # noqa: BLE001 - an error raised here would crash the worker's rebalance
            log.exception("could not release the intersections of a rebalance; they are kept")
            return
        if gone:
            log.info("signal control handed over", intersections=len(gone), examples=sorted(gone)[:5], held=sorted(mine.partitions))

    app.on_partitions_assigned.connect(hand_over)  # a strong reference: the closure lives as long as the app

    async def stop_feed(sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
        """The neighbour feed's consumer closes with the worker, not with its event loop."""
        if feed.running:
            await feed.stop()

    app.on_before_shutdown.connect(stop_feed)

    return SignalControls(desk, approvals, table)
