"""Log configuration: console lines for people, JSON lines for log shippers.

Faust and aiokafka log through stdlib ``logging``; structlog's ``ProcessorFormatter`` renders
those records too, so one setting (``LEITSTAND_LOG_FORMAT``) governs every line the worker writes.
"""

from __future__ import annotations

from typing import Any

import structlog

_LEVELS = {"debug": "DEBUG", "info": "INFO", "warning": "WARNING", "error": "ERROR"}


def configure_structlog() -> None:
    """Route ``structlog.get_logger`` through stdlib logging, so our key=value events and
    Faust's lines share one handler and one format."""
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            structlog.processors.format_exc_info,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )


def logging_config(level: str, fmt: str) -> dict[str, Any]:
    """A ``logging.config.dictConfig`` for the worker."""
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    pre_chain = [
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "leitstand": {
                "()": structlog.stdlib.ProcessorFormatter,
                "processors": [structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
                "foreign_pre_chain": pre_chain,
            }
        },
        "handlers": {"default": {"class": "logging.StreamHandler", "formatter": "leitstand"}},
        "root": {"handlers": ["default"], "level": _LEVELS[level]},
        # aiokafka logs every retried connection at ERROR with a traceback: keep it readable
        "loggers": {"aiokafka": {"level": "WARNING" if level != "debug" else "DEBUG"}},
    }
