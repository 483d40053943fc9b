"""What a control worker reads of the intersections another control worker controls.

Frames are spread over the control workers by intersection id, so the two signals of a short
link can land on different workers, and the corridor rules between them (a frozen detector read
through the neighbour's, no traffic sent into the neighbour's red, the short-link hold:
``signals.corridor``) need the neighbour's model, latest frame and driven plan
(``signals.remote``). This feed brings them. It runs while the worker holds some but not all
partitions of ``sensors.intersection`` (``SplitWatch``) and joins no consumer group (it must not
take partitions from the control workers); it assigns every partition of three topics:

* the control table's changelog, from its beginning: every intersection's saved configuration,
  whoever controls it (Faust compacts it, so a configuration is there however old it is; the
  ``signals.config`` topic keeps only its retention);
* ``sensors.intersection`` and ``signals.plans``, from their end: frames and drive records, decoded
  only for the intersections that neighbour one of this worker's (``desk.remote.lending``); the
  rest of a city is read no further than its key.

What it cannot read is skipped: the owning worker dead-letters a bad frame, and plan records and
table values are written by the control workers themselves.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import msgspec
import orjson
import structlog
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from signals.desk import ControlDesk

from ..kafka_io import all_partitions
from ..records import IntersectionFrame, SignalPlanMessage
from ..settings import Settings
from ..signal_codec import decision_from_message, observation_from_frame

log = structlog.get_logger(__name__)

#: the statuses of the record a worker publishes for what a signal drives now
DRIVE_STATUSES = frozenset({"active", "fallback", "fixed"})


class NeighbourFeed:
    """Reads the other workers' configurations, frames and drives into ``desk`` (``apply``)."""

    def __init__(
        self, settings: Settings, desk: ControlDesk, *, changelog: str, frames: str, plans: str, topics_timeout_s: float = 30.0
    ) -> None:
        self.settings = settings
        self.topics_timeout_s = topics_timeout_s  # how long a start waits for the three topics to be listed
        self.desk = desk
        self.changelog, self.frames, self.plans = changelog, frames, plans
        self.read = 0  # records handed to the desk (configurations, and frames and drives of neighbours)
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None
        #: why the last start failed (None: it did not fail, or it has not been started)
        self.start_error: str | None = None

    @property
    def running(self) -> bool:
        """Reading now; False also after the reading task ended on an error (the worker's timer
        starts it again)."""
        return self._task is not None and not self._task.done()

    def apply(self, topic: str, key: bytes | None, value: bytes | None) -> None:
        """One record of the three topics; what is not a neighbour's, or cannot be read, is skipped."""
        if value is None:
            return
        if topic == self.changelog:
            saved = _json(value)
            config = saved.get("config") if isinstance(saved, dict) else None  # checkpoints have none
            if (
                isinstance(config, dict)
                and isinstance(iid := config.get("intersection_id"), str)
                and isinstance(model := config.get("model"), dict)
            ):
                self.desk.on_remote_config(iid, model)
                self.read += 1
            return
        iid = key.decode("utf-8", "replace") if key else ""
        if iid not in self.desk.remote.lending:
            return
        try:
            if topic == self.frames:
                self.desk.on_remote_frame(observation_from_frame(msgspec.json.decode(value, type=IntersectionFrame)))
            elif topic == self.plans:
                plan = msgspec.json.decode(value, type=SignalPlanMessage)
                if plan.status not in DRIVE_STATUSES or plan.intersection_id != iid:
                    return
                self.desk.on_remote_drive(iid, decision_from_message(plan), plan.not_following is True)
            else:
                return
        except (msgspec.DecodeError, msgspec.ValidationError, ValueError):
            return
        self.read += 1

    async def start(self) -> None:
        """Start reading; on failure ``start_error`` says why (for ``/ready``) and it raises."""
        try:
            await self._start()
        except Exception as exc:
            self.start_error = str(exc) or type(exc).__name__
            raise
        self.start_error = None

    async def _start(self) -> None:
        await self.stop()  # a task that ended on an error leaves its consumer open
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=self.settings.kafka_bootstrap_servers,
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="latest",
            fetch_max_wait_ms=min(self.settings.consumer_fetch_max_wait_ms, 100),
            **self.settings.kafka_client_options(),
        )
        try:
            await self._consumer.start()
            tps = await self._partitions(self.topics_timeout_s)
            self._consumer.assign(tps)
            # (aiokafka seeks every assigned partition when given none: only ever with some)
            if configs := [tp for tp in tps if tp.topic == self.changelog]:
                await self._consumer.seek_to_beginning(*configs)
            if live := [tp for tp in tps if tp.topic != self.changelog]:
                await self._consumer.seek_to_end(*live)
        except BaseException:
            await self._consumer.stop()  # aiokafka's stop is safe on a consumer that did not start
            self._consumer = None
            raise
        self._task = asyncio.create_task(self._run())
        log.info("reading neighbours on other control workers", topics=[self.changelog, self.frames, self.plans])

    async def _partitions(self, timeout_s: float) -> list[TopicPartition]:
        """Every partition of the three topics, once the client's metadata lists them; a topic
        still unlisted after ``timeout_s`` is an error (the worker's timer says so on ``/ready``
        and tries again) rather than a feed that silently reads the other two."""
        assert self._consumer is not None
        return await all_partitions(self._consumer, (self.changelog, self.frames, self.plans), timeout_s)

    async def _run(self) -> None:
        assert self._consumer is not None
        while True:
            try:
                batch = await self._consumer.getmany(timeout_ms=200, max_records=5000)
            except KafkaError as exc:  # the broker away: the lending pauses (frames go stale), then resumes
                log.warning("neighbour feed: broker error, retrying", error=str(exc))
                await asyncio.sleep(1.0)
                continue
            except Exception:  # noqa: BLE001 - anything else: said, and read again, never a silent end of the lending
                log.exception("neighbour feed: reading failed, retrying")
                await asyncio.sleep(1.0)
                continue
            for tp, messages in batch.items():
                for m in messages:
                    try:
                        self.apply(tp.topic, m.key, m.value)
                    except Exception:  # noqa: BLE001 - one record must not end the lending for every neighbour
                        log.exception("neighbour feed: a record could not be applied", topic=tp.topic, offset=m.offset)

    async def stop(self) -> None:
        if self._task is None and self._consumer is None:
            return
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._consumer is not None:
            await self._consumer.stop()
            self._consumer = None
        log.info("stopped reading neighbours on other control workers")


def _json(value: bytes) -> Any:
    try:
        return orjson.loads(value)
    except orjson.JSONDecodeError:
        return None
