"""Run the Faust worker: check the broker first, create the topics, then hand over to Faust."""

from __future__ import annotations

import asyncio

from .broker.probe import check_reachable
from .kafka_io import ensure_topics
from .logs import configure_structlog, logging_config
from .settings import Settings

_FAUST_LEVELS = {"debug": "debug", "info": "info", "warning": "warn", "error": "error"}


def run_worker(settings: Settings) -> None:
    """Blocks until SIGINT/SIGTERM. Raises ``BrokerUnreachable`` before starting Faust."""
    opts = settings.kafka_client_options()
    check_reachable(settings.kafka_bootstrap_servers, timeout_s=5.0, **opts)
    asyncio.run(ensure_topics(settings))
    settings.data_dir.mkdir(parents=True, exist_ok=True)

    import faust

    from .app import create_app

    configure_structlog()
    app = create_app(settings)
    worker = faust.Worker(
        app,
        loglevel=_FAUST_LEVELS[settings.log_level],
        logging_config=logging_config(settings.log_level, settings.log_format),
        quiet=True,
        redirect_stdouts=False,
    )
    worker.execute_from_commandline()
