"""``leitstand bench city``: a bad argument is one line before a broker or worker starts."""

from __future__ import annotations

import pytest

from tests.cli_helpers import leitstand, one_clean_line

pytestmark = pytest.mark.slow  # child processes (the CLI)


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--engine", "redpanda"], "not a broker"),
        (["--telemetry", "4", "--partitions", "2"], "2 of 4 telemetry workers idle"),
        (["--seconds", "1"], "--seconds"),
        (["--intersections", "0"], "--intersections"),
    ],
)
def test_bad_arguments_are_one_line_before_anything_starts(args: list[str], says: str) -> None:
    assert says in one_clean_line(leitstand("bench", "city", *args))
