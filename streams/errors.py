"""Exceptions that end a CLI command with one line, defined apart from ``cli.py``.

``python -m streams.cli`` loads ``cli.py`` twice (as ``__main__`` and as ``streams.cli``); a
class defined there would exist twice and ``main()`` would miss the copy the commands raise.
"""


class CliError(Exception):
    """An operator-facing failure: printed as one line, exit code 1."""
