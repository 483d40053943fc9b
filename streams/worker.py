"""Run the Faust worker: check the broker first, create the topics, then hand over to Faust."""

from __future__ import annotations

import asyncio
import gc
import logging
import os
from typing import Any

from .broker.probe import BrokerStateLost, check_reachable
from .errors import CliError
from .kafka_io import TopicsNotListed, catalogue_partitions, ensure_topics, partition_mismatch, recreate_unreadable
from .logs import configure_structlog, logging_config
from .settings import Settings

_FAUST_LEVELS = {"debug": "debug", "info": "info", "warning": "warn", "error": "error"}


def run_worker(settings: Settings) -> None:
    """Blocks until SIGINT/SIGTERM. Raises ``BrokerUnreachable`` before starting Faust,
    ``CliError`` when the topics' partition count is not the configured one
    (``kafka_io.partition_mismatch``), and ``BrokerStateLost`` when the broker came back without
    the topics and offsets it had."""
    _lower_priority(settings.niceness)
    opts = settings.kafka_client_options()
    check_reachable(settings.kafka_bootstrap_servers, timeout_s=5.0, **opts)
    asyncio.run(ensure_topics(settings))
    mismatch = partition_mismatch(asyncio.run(catalogue_partitions(settings)), settings.topic_partitions)
    if mismatch is not None:
        raise CliError(mismatch)
    settings.data_dir.mkdir(parents=True, exist_ok=True)

    from .app import create_app

    _install_event_loop(settings.event_loop)
    configure_structlog()
    app = create_app(settings)
    _clear_unreadable_changelogs(app, settings, sorted(app.tables.changelog_topics))
    # Everything made so far (modules, pandas in the forecasting roles, the app) lives as long as
    # the process: frozen, the cyclic collector stops re-scanning it at every full collection of
    # the objects a batch makes. bench pipeline, telemetry role: +12-17 % frames per CPU second.
    gc.collect()
    gc.freeze()
    worker = _worker_class()(
        app,
        loglevel=_FAUST_LEVELS[settings.log_level],
        logging_config=logging_config(settings.log_level, settings.log_format),
        quiet=True,
        redirect_stdouts=False,
    )
    try:
        worker.execute_from_commandline()
    except SystemExit:
        lost = _lost_state(app, worker, settings.table_store)
        # Faust has stopped (offsets committed, producer flushed, tables closed) and closed its loop:
        # what is left is the interpreter's exit, whose full garbage collections over ~150,000
        # objects took 1.1-1.7 s per worker stop (measured with perf: gc_collect_main). Frozen
        # objects are skipped by them; the process ends either way.
        gc.freeze()
        if lost:
            raise BrokerStateLost(lost) from None
        raise


def _install_event_loop(kind: str) -> None:
    """Make every event loop made from here on a uvloop one (Faust's loop and its consumer
    thread's): the telemetry role spent a quarter of its time in asyncio's own loop machinery
    (task switches, futures, callbacks), which libuv's loop does in C."""
    if kind == "uvloop":
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


def _lower_priority(niceness: int) -> None:
    """Raise this process's niceness to ``niceness`` before any thread starts (Linux keeps a
    niceness per thread; threads made later, Faust's consumer among them, inherit it). Never
    lowered: that needs privileges a worker should not have, and a higher value was chosen by
    whoever started it."""
    current = os.nice(0)
    if niceness > current:
        os.nice(niceness - current)


def _worker_class() -> type:
    import faust

    class Worker(faust.Worker):
        def on_setup_root_logger(self, logger: logging.Logger, level: int) -> None:
            """No terminal spinner. Faust's hook sets the root logger to DEBUG for it whenever the
            level is WARN (our default), so every library debug call built a log record: 55,000
            of them per 20,000 frames, ~4 % of a telemetry worker's CPU (cProfile)."""
            self.spinner = None

        async def _sentinel_task(self) -> None:
            """mode's last step before closing the loop slept a fixed 1 s so the tasks it had just
            cancelled could run their cancellation; this waits for exactly that, at most the same
            1 s, then a few loop turns more for the callbacks they scheduled (closed transports)."""
            await _until_other_tasks_done(limit_s=1.0)

    return Worker


async def _until_other_tasks_done(limit_s: float, step_s: float = 0.01) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit_s
    me = asyncio.current_task()
    await asyncio.sleep(0)
    while loop.time() < deadline and any(t is not me and not t.done() for t in asyncio.all_tasks()):
        await asyncio.sleep(step_s)
    for _ in range(3):
        await asyncio.sleep(step_s)


def _clear_unreadable_changelogs(app: Any, settings: Settings, changelogs: list[str]) -> None:
    """Re-create this worker's changelogs that claim records none of which can be read, so
    table recovery does not wait for them forever (a Tansu restart leaves such topics behind:
    ``broker.probe.unreadable_topics``); one warning line per topic, logged as a task of the app
    (once Faust has configured logging)."""
    try:
        recreated = asyncio.run(recreate_unreadable(settings, changelogs))
    except TopicsNotListed as exc:  # listed or created a moment ago, so the broker is not answering as it should
        raise CliError(f"cannot check the tables' changelogs before starting: {exc}") from exc
    if not recreated:
        return

    @app.task
    async def warn_changelogs_recreated() -> None:
        import structlog

        for topic in recreated:
            structlog.get_logger(__name__).warning(
                f"changelog {topic} claimed records the broker could not serve (left by writes after an in-memory "
                "broker such as Tansu lost its topics); created it again, empty: its table starts from nothing"
            )


def _lost_state(app: object, worker: object, table_store: str = "memory://") -> str | None:
    """The operator's line when the worker stopped because the broker lost its state."""
    from faust.exceptions import ConsistencyError

    link = getattr(app, "broker_link", None)
    if link is not None and link.lost:
        return str(link.lost)
    crash = getattr(worker, "crash_reason", None)
    if isinstance(crash, ConsistencyError):
        # table recovery found a changelog shorter than the offsets this worker persisted
        detail = " ".join(str(crash).split())
        if table_store.startswith("rocksdb://"):
            # measured: on Tansu 0.6 every restart of a rocksdb:// worker ends here (Tansu lists a
            # partition's end as its last batch's start + 1, below the offset RocksDB kept)
            return (
                f"this worker's local table state (rocksdb://) has changelog offsets beyond the end the broker lists "
                f"({detail}). Either the broker lost data (an in-memory broker such as Tansu restarted) or it lists end "
                "offsets short (Tansu 0.6 does, on every restart of the worker). rocksdb:// needs a durable broker that "
                "lists exact end offsets, such as Apache Kafka; with Tansu use LEITSTAND_TABLE_STORE=memory://. "
                "To start again, empty LEITSTAND_DATA_DIR: the tables are rebuilt from their changelogs"
            )
        return (
            f"the broker lost data this worker's tables were built from ({detail}); an in-memory broker "
            "such as Tansu loses everything when it restarts: start the worker again with an empty data dir"
        )
    return None
