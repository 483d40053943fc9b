"""Exceptions that end a CLI command with one line, defined apart from the CLI modules.

A module run as a script (``python -m``) is loaded twice (as ``__main__`` and by its name); a
class defined there would exist twice and ``main()`` would miss the copy the commands raise.
"""


class CliError(Exception):
    """An operator-facing failure: printed as one line, exit code 1."""
