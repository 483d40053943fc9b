"""Log configuration: console lines for people, JSON lines for log shippers.

Faust and aiokafka log through stdlib ``logging``; structlog's ``ProcessorFormatter`` renders
those records too, so one setting (``LEITSTAND_LOG_FORMAT``) governs every line the worker writes.

Two ways a log call used to break instead of logging (issue 10, #4):

* a field named like one the record carries itself. ``event=`` collides with structlog's own
  argument and raises ``TypeError`` at the call (the forecasting agent crashed on every unmapped
  venue); ``level=2`` (the alarm's escalation level) reached the console renderer's level column,
  which pads it with ``len()`` -> ``--- Logging error --- TypeError: object of type 'int' has no
  len()`` and the line was lost. Fields named ``level``, ``logger``, ``timestamp``, ... are now
  renamed with a trailing underscore (``level_=2``) before the record's own are added; ``event``
  cannot be rescued at run time, so tests/unit/test_logs_fields.py renders every field name used
  in the code through this configuration;
* a library record whose arguments do not match its format string: the formatter renders the
  raw message and arguments instead of raising inside the handler.

Secrets never reach a line: aiokafka logs every request at debug level, the SASL exchange
included (``SaslAuthenticateRequest_v0(sasl_auth_bytes=b'\\x00user\\x00<password>')`` for PLAIN);
``RedactSaslFilter`` on the handler replaces those bytes before any formatter sees them.
Tracebacks are plain, code and messages only: structlog's default console formatter (rich,
``show_locals=True``) printed every frame's local variables, passwords and webhook URLs included.
"""

from __future__ import annotations

import logging
from typing import Any

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

_LEVELS = {"debug": "DEBUG", "info": "INFO", "warning": "WARNING", "error": "ERROR"}

#: keys the record sets itself or a renderer treats specially; a caller's field of that name is
#: renamed by ``field_name`` (``event`` is structlog's positional argument and cannot be passed)
RESERVED_FIELDS = frozenset(
    {"level", "logger", "logger_name", "timestamp", "exception", "stack", "positional_args", "_record", "_from_structlog"}
)


def field_name(key: str) -> str:
    """The key a caller's field ``key`` is rendered under."""
    return f"{key}_" if key in RESERVED_FIELDS else key


def rename_reserved_fields(logger: WrappedLogger, method_name: str, event_dict: EventDict) -> EventDict:
    """structlog processor: move a caller's ``level``/``logger``/... out of the record's way."""
    for key in RESERVED_FIELDS & event_dict.keys():
        event_dict[field_name(key)] = event_dict.pop(key)
    return event_dict


def _record_fields() -> list[Processor]:
    """Level, logger name and UTC time: the same for our events and for library records."""
    return [
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]


def configure_structlog() -> None:
    """Route ``structlog.get_logger`` through stdlib logging, so our key=value events and
    Faust's lines share one handler and one format."""
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            rename_reserved_fields,
            *_record_fields(),
            structlog.processors.format_exc_info,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )


class SafeProcessorFormatter(structlog.stdlib.ProcessorFormatter):
    """A ``ProcessorFormatter`` that never raises: a record that cannot be formatted (a library
    passing arguments that do not match its format string) is rendered from its raw parts."""

    def format(self, record: logging.LogRecord) -> str:
        try:
            return super().format(record)
        except Exception as exc:  # a log line must never be lost to formatting
            fallback = logging.makeLogRecord(record.__dict__)
            fallback.msg = f"{record.msg!s} {record.args!r} (unformattable log record: {type(exc).__name__}: {exc})"
            fallback.args = ()
            for attr in ("_logger", "_name"):  # render it as a plain library record
                fallback.__dict__.pop(attr, None)
            return super().format(fallback)


class RedactSaslFilter(logging.Filter):
    """Hide the payload of SASL authentication requests (PLAIN: the password in clear, SCRAM:
    the client proof) in any record's arguments; the request itself is still logged."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and any(_is_sasl_auth(a) for a in args):
            record.args = tuple(f"{type(a).__name__}(sasl_auth_bytes=<redacted>)" if _is_sasl_auth(a) else a for a in args)
        return True


def _is_sasl_auth(value: Any) -> bool:
    return type(value).__name__.startswith("SaslAuthenticateRequest")


def logging_config(level: str, fmt: str) -> dict[str, Any]:
    """A ``logging.config.dictConfig`` for the worker."""
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        # plain tracebacks: the default (rich, show_locals=True) printed every frame's variables
        else structlog.dev.ConsoleRenderer(colors=False, exception_formatter=structlog.dev.plain_traceback)
    )
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "leitstand": {
                "()": SafeProcessorFormatter,
                "processors": [structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
                # a library record's exc_info becomes a plain traceback string, as ours do (JSON
                # lines showed "<traceback object at 0x...>" instead of the traceback)
                "foreign_pre_chain": [*_record_fields(), structlog.processors.format_exc_info],
            }
        },
        "filters": {"redact_sasl": {"()": RedactSaslFilter}},
        "handlers": {"default": {"class": "logging.StreamHandler", "formatter": "leitstand", "filters": ["redact_sasl"]}},
        "root": {"handlers": ["default"], "level": _LEVELS[level]},
        # aiokafka logs every retried connection at ERROR with a traceback: keep it readable
        "loggers": {"aiokafka": {"level": "WARNING" if level != "debug" else "DEBUG"}},
    }
