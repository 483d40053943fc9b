"""The critical worker watches the water worker: pool readings left unread raise a system alarm.

Runs in the ``critical`` role only (in ``all`` the water rules share this process, and a hung
loop could not report itself). Every few seconds it samples the end offsets of
``sensors.pool`` and the offsets the ``<app_id>-water`` group has committed, folds them with
``detection/reader_backlog.py`` and sends a raise or clear command to the alarm books like any
detector. The broker being unreachable is not this alarm (``/ready`` reports it): such a sample
is skipped. The state is memory only: after a restart the watch starts from nothing, and its
first sample under the threshold clears an alarm an earlier run may have left open.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from contextlib import AsyncExitStack
from datetime import datetime, timezone
from typing import Any, NamedTuple

import faust
import structlog

from detection.alarms import AlarmTrigger
from detection.reader_backlog import WATER_RULES_BEHIND, WATER_RULES_SUBJECT, Backlog, decide, observe, water_rules_trigger

from ..metrics import WATER_RULES_BEHIND_SECONDS
from ..records import LifecycleCommand
from ..settings import Settings
from ..topics import ALERTS_LIFECYCLE, SENSORS_POOL
from .alarm_commands import lifecycle_commands, to_lifecycle
from .wiring import publish

log = structlog.get_logger(__name__)


def sample_interval_s(after_s: float) -> float:
    """A tenth of the threshold, between 0.5 and 10 s: the alarm comes at most that late."""
    return min(10.0, max(0.5, after_s / 10))


class _Outcome(NamedTuple):
    """The watch's decision in the shape every detector hands to ``lifecycle_commands``."""

    triggers: Sequence[AlarmTrigger]
    clears: Sequence[str]


def commands(action: str, backlog: Backlog, now: float, topic: str, group: str) -> list[LifecycleCommand]:
    """The raise (with the operator's message) or the clear of the system alarm."""
    outcome = _Outcome([water_rules_trigger(backlog, now, topic, group)], []) if action == "raise" else _Outcome([], [WATER_RULES_BEHIND])
    return list(lifecycle_commands(WATER_RULES_SUBJECT, outcome, datetime.fromtimestamp(now, tz=timezone.utc), subject_type="system"))


class OffsetSampler:
    """End offsets of one topic and one group's committed offsets, from clients kept open."""

    def __init__(self, settings: Settings, topic: str, group: str) -> None:
        self.settings, self.topic, self.group = settings, topic, group
        self._stack: AsyncExitStack | None = None
        self._consumer: Any = None
        self._admin: Any = None

    async def _open(self) -> None:
        from aiokafka import AIOKafkaConsumer
        from aiokafka.admin import AIOKafkaAdminClient

        opts = {"bootstrap_servers": self.settings.kafka_bootstrap_servers, **self.settings.kafka_client_options()}
        stack = AsyncExitStack()
        consumer = AIOKafkaConsumer(group_id=None, enable_auto_commit=False, **opts)
        await consumer.start()
        stack.push_async_callback(consumer.stop)
        admin = AIOKafkaAdminClient(**opts)
        try:
            await admin.start()
        except BaseException:
            await stack.aclose()
            raise
        stack.push_async_callback(admin.close)
        self._stack, self._consumer, self._admin = stack, consumer, admin

    async def close(self) -> None:
        if self._stack is not None:
            stack, self._stack = self._stack, None
            await stack.aclose()

    async def sample(self) -> tuple[dict[int, int], dict[int, int | None]] | None:
        """(partition -> end offset, partition -> committed offset or None); None when the topic
        does not exist yet."""
        from aiokafka import TopicPartition

        if self._stack is None:
            await self._open()
        if self.topic not in await self._admin.list_topics():  # describing a missing topic could create it
            return None
        [described] = await self._admin.describe_topics([self.topic])
        found = sorted(part["partition"] for part in described.get("partitions") or ())
        if described.get("error_code") or not found:
            return None
        tps = [TopicPartition(self.topic, p) for p in found]
        ends = await self._consumer.end_offsets(tps)
        committed = await self._admin.list_consumer_group_offsets(self.group, partitions=tps)
        return (
            {tp.partition: int(ends[tp]) for tp in tps},
            {tp.partition: (meta.offset if meta is not None and meta.offset >= 0 else None) for tp, meta in committed.items()},
        )


def register(app: faust.App, settings: Settings) -> None:
    if settings.water_watch_after_s <= 0:
        return
    topic = settings.topic(SENSORS_POOL)
    group = f"{settings.app_id}-water"
    lifecycle = app.topic(settings.topic(ALERTS_LIFECYCLE))
    after_s = settings.water_watch_after_s
    interval_s = sample_interval_s(after_s)

    @app.task
    async def watch_water_worker() -> None:
        sampler = OffsetSampler(settings, topic, group)
        backlog, raised = Backlog(), None
        unreachable_logged = False
        try:
            while True:
                await asyncio.sleep(interval_s)
                try:
                    offsets = await asyncio.wait_for(sampler.sample(), timeout=max(5.0, interval_s * 2))
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # the broker is away: /ready reports that, not this alarm
                    if not unreachable_logged:
                        log.warning("water watch: could not read the water group's offsets; retrying", error=str(exc))
                        unreachable_logged = True
                    await sampler.close()
                    continue
                unreachable_logged = False
                if offsets is None:
                    continue
                now = time.time()
                backlog = observe(backlog, now, *offsets)
                WATER_RULES_BEHIND_SECONDS.set(backlog.behind_s)
                decision = decide(backlog, raised, after_s)
                if decision.action is not None:
                    try:
                        await publish(to_lifecycle(lifecycle, commands(decision.action, backlog, now, topic, group)))
                    except asyncio.CancelledError:
                        raise
                    except Exception as exc:  # not sent: decided again at the next sample; the worker stays up
                        log.warning("water watch: could not send its alarm command; retrying", action=decision.action, error=str(exc))
                        continue
                    if decision.action == "raise":
                        log.error("water rules behind", behind_s=round(backlog.behind_s), waiting=backlog.waiting, group=group)
                raised = decision.raised
        finally:
            await sampler.close()
