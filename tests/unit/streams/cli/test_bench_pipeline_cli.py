"""``bench pipeline`` refuses a bad role or share with one line, before starting any broker."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from streams.cli.main import app


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--role", "critical"], "--role"),
        (["--bad-share", "0.9"], "--bad-share"),
        (["--detectors", "0"], "--detectors"),
        (["--frame-interval", "0"], "--frame-interval"),
        (["--controller", "nope"], "--controller"),
    ],
)
def test_bad_options_get_one_clear_line(args: list[str], named: str) -> None:
    result = CliRunner().invoke(app, ["bench", "pipeline", *args])
    assert result.exit_code == 2
    assert named in result.output and "Traceback" not in result.output
