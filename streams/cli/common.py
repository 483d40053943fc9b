"""What every command module of the CLI shares: the consoles, the settings (global flags over
defaults, .env and LEITSTAND_* variables), the broker check before a command talks to Kafka,
and the one-line error printer. Command modules import from here, never from ``main``.
"""

from __future__ import annotations

import re
from typing import Any

from rich.console import Console

from ..settings import Settings, load_settings

err = Console(stderr=True, highlight=False, soft_wrap=True)
out = Console(highlight=False, soft_wrap=True)


#: the global flags (and the worker command's own) that override the loaded settings
_overrides: dict[str, Any] = {}


def settings() -> Settings:
    """Every command's settings. A bad variable (malformed JSON, a weak LEITSTAND_API_TOKEN, an
    unsafe webhook URL) raises ``SettingsInvalid``, a ``CliError``: one line naming it, exit 1."""
    return load_settings(**_overrides)


def _reachable_settings() -> Settings:
    from ..broker import check_reachable

    s = settings()
    check_reachable(s.kafka_bootstrap_servers, timeout_s=5.0, **s.kafka_client_options())
    return s


def _fail(message: str, console: Console = err) -> None:
    """One line on stderr, printed as text: messages quote file names, column names and ids
    from the operator's input, which rich would read as markup (``[/x]``: a MarkupError
    traceback) and which may hold line breaks (a quoted CSV header)."""
    console.print(_LINE_BREAKS.sub(" ", message), markup=False)


#: every character that would start a new line on a terminal
_LINE_BREAKS = re.compile(r"[\r\n\x0b\x0c\x1c-\x1e\x85\u2028\u2029]+")
