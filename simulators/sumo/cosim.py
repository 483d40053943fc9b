"""Decisions through the broker: synchronous co-simulation with a running worker.

Each step the runner publishes one ``IntersectionFrame`` per traffic light on
``sensors.intersection`` and waits until the worker's control agent has answered every one of
them on ``signals.plans`` (the ``active`` / ``fallback`` / ``fixed`` message of that session whose
``event_time`` is the frame's). The simulation never runs ahead of its decisions, so the result is the one the
in-process path gives for the same seed. The session starts by publishing the intersection
models on ``signals.config``; a new session id restarts the worker's controllers.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import re
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import msgspec

from signals.control import Mode
from signals.explain import StageDecision
from simulators.sumo.loop import Scenario, ScenarioError, config_records
from simulators.sumo.network import SumoSignals
from streams import topics
from streams.kafka_io import ensure_topics, producer
from streams.records import (
    ENTITY_ID_PATTERN,
    IntersectionConfig,
    IntersectionFrame,
    SignalAuditMessage,
    SignalPlanMessage,
    StageShown,
    encode,
)
from streams.settings import Settings
from streams.signal_codec import decision_from_message

DRIVE_STATUSES = frozenset({"active", "fallback", "fixed"})
PLAN_DECODER = msgspec.json.Decoder(SignalPlanMessage)
AUDIT_DECODER = msgspec.json.Decoder(SignalAuditMessage)


def broker_id(tid: str) -> str:
    """The id a traffic light goes by on the broker. Records key intersections by an id of at most
    64 characters (``EntityId``); SUMO names joined junctions after all their nodes, and one of
    ingolstadt21's has 166, so its config was refused by the worker and the run waited for a
    control that never started. Such an id (or one with characters the records do not take)
    becomes its first 55 usable characters, ``~`` and 8 hex digits of its SHA-256: unique,
    stable, and still recognisable in the worker's logs and alarms."""
    if re.match(ENTITY_ID_PATTERN, tid):
        return tid
    usable = re.sub(r"[^A-Za-z0-9._:/@+#~-]", "_", tid)
    if not re.match(r"[A-Za-z0-9_]", usable[:1]):
        usable = "_" + usable
    return f"{usable[:55]}~{hashlib.sha256(tid.encode()).hexdigest()[:8]}"


def for_broker(cfg: IntersectionConfig, bid: str) -> IntersectionConfig:
    """A traffic light's config under its broker id (the model names itself by it too)."""
    if bid == cfg.intersection_id:
        return cfg
    return msgspec.structs.replace(cfg, intersection_id=bid, model={**cfg.model, "id": bid})


class KafkaSource:
    def __init__(
        self, settings: Settings, first_reply_timeout_s: float = 60.0, reply_timeout_s: float = 20.0, mode: Mode = "automatic"
    ) -> None:
        self.settings = settings
        self.first_reply_timeout_s = first_reply_timeout_s
        self.reply_timeout_s = reply_timeout_s
        self.mode = mode
        self._loop = asyncio.new_event_loop()
        self._producer: Any = None
        self._consumer: Any = None
        self._session = ""
        self._answered = 0
        self.rejections = 0
        self.messages = 0
        #: what the simulated cabinets showed after the last step, sent with the next frames
        self._states: list[StageShown] = []
        #: traffic light id -> its id on the broker (``broker_id``), and back
        self._bid: dict[str, str] = {}
        self._tid: dict[str, str] = {}

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self, scenario: Scenario, signals: Mapping[str, SumoSignals], controller: str, session: str, epoch_s: float) -> None:
        self._session = session
        at = datetime.fromtimestamp(epoch_s + scenario.begin_s, tz=UTC)
        self._loop.run_until_complete(self._start(signals, controller, session, at))

    async def _start(self, signals: Mapping[str, SumoSignals], controller: str, session: str, at: datetime) -> None:
        """Connect, pin the end of the reply topics, publish the models, wait for every controller."""
        s = self.settings
        await self._open_clients()
        plans_topic, audit_topic = s.topic(topics.SIGNALS_PLANS), s.topic(topics.SIGNALS_AUDIT)
        await ensure_topics(s)  # idempotent: a fresh broker needs the catalogue before the worker answers
        tps = []
        for topic in (plans_topic, audit_topic):
            tps += await self._partitions(topic)
        # assign explicitly and pin the end before anything of this session is published, so
        # no reply can slip past between subscribing and the first frame
        self._consumer.assign(tps)
        await self._consumer.seek_to_end(*tps)
        for tp in tps:
            await self._consumer.position(tp)
        self._bid = {tid: broker_id(tid) for tid in signals}
        self._tid = {bid: tid for tid, bid in self._bid.items()}
        for cfg in config_records(signals, controller, session, at, mode=self.mode):
            cfg = for_broker(cfg, self._bid[cfg.intersection_id])
            await self._producer.send_and_wait(s.topic(topics.SIGNALS_CONFIG), encode(cfg), key=cfg.intersection_id.encode())
        # the agent reads configs and frames from different topics: a frame that overtook its
        # config would be ignored, so the first frame waits until every controller has started
        await self._await_control_started(set(self._tid), session, audit_topic)

    async def _open_clients(self) -> None:
        """A producer that sends at once (one frame per step is waited for) and a consumer
        without a group (it reads the replies from where it is told, commits nothing)."""
        from aiokafka import AIOKafkaConsumer

        s = self.settings
        self._producer = producer(s, linger_ms=0)
        await self._producer.start()
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=s.kafka_bootstrap_servers,
            group_id=None,
            enable_auto_commit=False,
            fetch_max_wait_ms=20,
            **s.kafka_client_options(),
        )
        await self._consumer.start()

    async def _partitions(self, topic: str) -> list[Any]:
        """The topic's partitions (``TopicPartition``), waiting up to 10 s for a topic just created."""
        from aiokafka import TopicPartition

        partitions = None
        for _ in range(50):  # a topic just created takes a moment to appear in the metadata
            # fresh cluster metadata (the consumer's own cache learns new topics only later)
            cluster = await self._consumer._client.fetch_all_metadata()
            partitions = cluster.partitions_for_topic(topic)
            if partitions:
                break
            await asyncio.sleep(0.2)
        if not partitions:
            raise ScenarioError(f"topic {topic} does not exist: create the topics first (leitstand topics create)")
        return [TopicPartition(topic, p) for p in sorted(partitions)]

    async def _await_control_started(self, wanted: set[str], session: str, audit_topic: str) -> None:
        """Read the audit topic until the worker reports ``control_started`` for every traffic
        light of this session; a refused config or the first-reply timeout is a ScenarioError."""
        started: set[str] = set()
        deadline = time.monotonic() + self.first_reply_timeout_s
        while started != wanted:
            if time.monotonic() > deadline:
                raise ScenarioError(
                    f"no worker started control of {', '.join(sorted(wanted - started))} within "
                    f"{self.first_reply_timeout_s:g} s: is a worker with the control role running against "
                    f"{self.settings.kafka_bootstrap_servers} (leitstand worker)?"
                )
            batch = await self._consumer.getmany(timeout_ms=500)
            for tp, records in batch.items():
                if tp.topic != audit_topic:
                    continue
                for rec in records:
                    try:
                        entry = AUDIT_DECODER.decode(rec.value)
                    except msgspec.DecodeError:
                        continue
                    if entry.session != session:
                        continue
                    if entry.action == "config_refused":
                        raise ScenarioError(f"the worker refused {entry.intersection_id}: {entry.detail.get('reason')}")
                    if entry.action == "control_started":
                        started.add(entry.intersection_id)

    def close(self) -> None:
        async def stop() -> None:
            for client in (self._consumer, self._producer):
                if client is not None:
                    await client.stop()

        try:
            self._loop.run_until_complete(stop())
        finally:
            self._loop.close()

    # -- one step --------------------------------------------------------------------------------
    def report_stages(self, shown: Mapping[str, tuple[str, float]], at_s: float) -> None:
        """What each simulated cabinet shows at ``at_s`` (stage, since when; epoch seconds), as a
        field controller reports it on ``signals.state``: sent with the next frames, so the
        worker checks that the street follows its plans (``signals.following``)."""
        at = datetime.fromtimestamp(at_s, tz=UTC)
        self._states = [
            StageShown(
                schema_version=1,
                event_time=at,
                intersection_id=self._bid.get(tid, tid),
                stage=stage,
                stage_started_at=datetime.fromtimestamp(min(started_s, at_s), tz=UTC),
                stage_started_exact=True,  # the simulated cabinet's own change time, on the step clock
            )
            for tid, (stage, started_s) in shown.items()
        ]

    def decide(self, frames: list[IntersectionFrame]) -> dict[str, StageDecision]:
        return self._loop.run_until_complete(self._decide(frames))

    async def _decide(self, frames: list[IntersectionFrame]) -> dict[str, StageDecision]:
        s = self.settings
        states, self._states = self._states, []
        sends = [await self._producer.send(s.topic(topics.SIGNALS_STATE), encode(r), key=r.intersection_id.encode()) for r in states]
        frames = [msgspec.structs.replace(f, intersection_id=self._bid.get(f.intersection_id, f.intersection_id)) for f in frames]
        sends += [
            await self._producer.send(s.topic(topics.SENSORS_INTERSECTION), encode(f), key=f.intersection_id.encode()) for f in frames
        ]
        await asyncio.gather(*sends)
        want = {f.intersection_id: f.event_time.timestamp() for f in frames}
        out: dict[str, StageDecision] = {}
        timeout = self.first_reply_timeout_s if self._answered == 0 else self.reply_timeout_s
        deadline = time.monotonic() + timeout
        while len(out) < len(want):  # (out is keyed by traffic light id, want by broker id)
            left = deadline - time.monotonic()
            if left <= 0:
                missing = sorted(t for t in (self._tid.get(b, b) for b in want) if t not in out)
                raise ScenarioError(
                    f"no decision for {', '.join(missing)} within {timeout:g} s: is a worker with the control "
                    f"role running against {s.kafka_bootstrap_servers} (leitstand worker)?"
                )
            batch = await self._consumer.getmany(timeout_ms=int(min(left, 0.5) * 1000))
            for tp, records in batch.items():
                if tp.topic != self.settings.topic(topics.SIGNALS_PLANS):
                    continue
                for rec in records:
                    self.messages += 1
                    try:
                        msg = PLAN_DECODER.decode(rec.value)
                    except msgspec.DecodeError:
                        continue
                    if (
                        msg.session != self._session
                        or msg.status not in DRIVE_STATUSES
                        or msg.intersection_id not in want
                        or msg.event_time.timestamp() != want[msg.intersection_id]
                    ):
                        continue
                    if msg.status == "fallback":
                        self.rejections += 1
                    tid = self._tid.get(msg.intersection_id, msg.intersection_id)
                    out[tid] = dataclasses.replace(decision_from_message(msg), intersection_id=tid)
        self._answered += 1
        return out
