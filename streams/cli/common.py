"""What every command module of the CLI shares: the consoles, the settings (global flags over
defaults, .env and LEITSTAND_* variables), the broker check before a command talks to Kafka,
the one-line error printer and the way to ``../shared`` (data sets and SUMO scenarios).
Command modules import from here, never from ``main`` or from each other's private names.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer
from rich.console import Console

from ..errors import CliError
from ..settings import Settings, load_settings

err = Console(stderr=True, highlight=False, soft_wrap=True)
out = Console(highlight=False, soft_wrap=True)


#: the global flags (and the worker command's own) that override the loaded settings
settings_overrides: dict[str, Any] = {}


def cli_settings() -> Settings:
    """Every command's settings. A bad variable (malformed JSON, a weak LEITSTAND_API_TOKEN, an
    unsafe webhook URL) raises ``SettingsInvalid``, a ``CliError``: one line naming it, exit 1."""
    return load_settings(**settings_overrides)


def reachable_settings() -> Settings:
    """The settings, after checking that a broker answers at the bootstrap address: a command
    that talks to Kafka fails in one line before it starts rather than hanging in a retry loop."""
    from ..broker import check_reachable

    settings = cli_settings()
    check_reachable(settings.kafka_bootstrap_servers, timeout_s=5.0, **settings.kafka_client_options())
    return settings


def fail(message: str, console: Console = err) -> None:
    """One line on stderr, printed as text: messages quote file names, column names and ids
    from the operator's input, which rich would read as markup (``[/x]``: a MarkupError
    traceback) and which may hold line breaks (a quoted CSV header)."""
    console.print(_LINE_BREAKS.sub(" ", message), markup=False)


#: every character that would start a new line on a terminal
_LINE_BREAKS = re.compile(r"[\r\n\x0b\x0c\x1c-\x1e\x85\u2028\u2029]+")


def finite_seconds(value: float | None) -> float | None:
    """A duration option: finite and not negative (NaN and inf meant 'wait forever')."""
    if value is not None and not 0 <= value < float("inf"):
        raise typer.BadParameter(f"must be a finite number of seconds >= 0, not {value}")
    return value


def check_catalogue_topic(topic: str, create: bool) -> None:
    """A catalogue topic, or any valid name with ``--create``; otherwise one line naming the problem
    (``produce`` and ``replay`` check before they connect)."""
    from ..topics import TopicError, check_topic

    try:
        check_topic(topic, create=create, prefix=cli_settings().topic_prefix)
    except TopicError as exc:
        raise CliError(str(exc)) from None


# --- ../shared: data sets and scenarios kept beside the checkout, not in it ----------------------


def input_file(path: Path) -> Path:
    """``path`` when it can be read as a file (a pipe such as ``<(...)`` or ``/dev/stdin`` too);
    a one-line ``CliError`` saying which it is not."""
    if path.is_dir():
        raise CliError(f"{path} is a directory, not a file")
    if not path.exists():
        raise CliError(f"no such file: {path}")
    return path


def not_an_input(output: Path, *inputs: Path | None) -> Path:
    """``output``, unless it is one of ``inputs`` (the same file under any name): writing the
    result over the input lost the input's other columns (stop 54's probe)."""
    for given in inputs:
        if given is not None and output.exists() and given.exists() and output.resolve() == given.resolve():
            raise CliError(f"--output {output} is the input file: choose another path (the input would be overwritten)")
    return output


def checkout_dir() -> Path | None:
    """The source checkout this package runs from (a clean clone installed with ``pip install -e``),
    or None when the package was installed from a wheel into site-packages, where the directory
    above the package is no checkout and has no ``../shared`` beside it."""
    root = Path(__file__).resolve().parents[2]
    return root if (root / "pyproject.toml").is_file() and (root / "streams").is_dir() else None


def shared_dirs() -> list[Path]:
    """Where ``../shared`` may be, most specific first: beside the working directory (a session
    working inside the checkout) and beside the checkout the package runs from."""
    places = [Path.cwd().parent / "shared"]
    checkout = checkout_dir()
    if checkout is not None:
        places.append(checkout.parent / "shared")
    return places


def default_shared_dir() -> Path:
    """The ``../shared`` an option defaults to: the first that exists, else where it would be
    beside the checkout (so a help text names the place to create it)."""
    places = shared_dirs()
    return next((place for place in places if place.is_dir()), places[-1])


def shared_absent_note() -> str:
    """``""`` when a ``../shared`` exists, else a clause saying that it is missing and where it was looked for."""
    places = shared_dirs()
    if any(place.is_dir() for place in places):
        return ""
    return f"; ../shared is absent (no {' or '.join(dict.fromkeys(map(str, places)))})"


def find_shared(relative: str, explicit: Path | None, is_there: Callable[[Path], bool], what: str, hint: str) -> Path:
    """``explicit`` if given, else ``relative`` under the first ``../shared`` where ``is_there``
    holds; otherwise a one-line ``CliError``: ``<what> not found (looked in ...); <hint>``, which
    says when ``../shared`` itself is absent."""
    candidates = [explicit] if explicit is not None else [place / relative for place in shared_dirs()]
    for candidate in candidates:
        if is_there(candidate):
            return candidate
    looked = ", ".join(str(candidate) for candidate in candidates)
    absent = shared_absent_note() if explicit is None else ""
    raise CliError(f"{what} not found (looked in {looked}{absent}); {hint}")
