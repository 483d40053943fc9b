"""Issue 10 #13: ``leitstand events import`` with broken dates, unknown zones and odd properties.

Policy (docs/forecasting.md): a VEVENT that cannot be read exactly is skipped with a one-line
warning naming its line, UID and the problem, and counted in the summary; ``--strict`` refuses the
whole file instead. A silently wrong time (an unknown TZID read as UTC) is never produced.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import msgspec
import pytest

from forecasting.events import read_ics, resolve_zone
from streams.records import ScheduledEvent
from tests.cli_helpers import leitstand, one_clean_line

pytestmark = pytest.mark.slow  # child processes (the CLI) or SUMO runs

GOOD = """BEGIN:VEVENT\r
UID:good-1\r
SUMMARY:Concert\r
DTSTART;TZID=Europe/Berlin:20240302T180000\r
DTEND;TZID=Europe/Berlin:20240302T200000\r
END:VEVENT\r
"""


def calendar(*events: str) -> str:
    return "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//leitstand//EN\r\n" + "".join(events) + "END:VCALENDAR\r\n"


def vevent(uid: str, *props: str) -> str:
    return f"BEGIN:VEVENT\r\nUID:{uid}\r\nSUMMARY:{uid}\r\n" + "".join(p + "\r\n" for p in props) + "END:VEVENT\r\n"


def invoke(*args: str) -> Any:
    from typer.testing import CliRunner

    from streams.cli import app

    return CliRunner().invoke(app, list(args))


def dry_run(tmp_path: Path, text: str, *extra: str) -> Any:
    ics = tmp_path / "cal.ics"
    ics.write_text(text)
    return invoke("events", "import", str(ics), "--dry-run", *extra)


def test_an_unknown_tzid_skips_the_event_instead_of_reading_it_as_utc(tmp_path: Path) -> None:
    """Before: Mars/Olympus 18:00 was published as 18:00 UTC."""
    text = calendar(GOOD, vevent("mars-1", "DTSTART;TZID=Mars/Olympus:20240302T180000"))
    res = dry_run(tmp_path, text)
    assert res.exit_code == 0, res.output
    records = [msgspec.json.decode(line, type=ScheduledEvent) for line in res.stdout.splitlines()]
    assert [r.event_id for r in records] == ["good-1"]
    warning = [line for line in res.stderr.splitlines() if "mars-1" in line]
    assert len(warning) == 1 and "line 13, event 'mars-1'" in warning[0] and "'Mars/Olympus'" in warning[0], res.stderr
    assert "1 events" in res.stderr and "skipped 1" in res.stderr


def test_a_tzid_defined_by_the_files_own_vtimezone_is_used() -> None:
    tz = (
        "BEGIN:VTIMEZONE\r\nTZID:Leitstand Test Zone +3\r\nBEGIN:STANDARD\r\nDTSTART:19700101T000000\r\n"
        "TZOFFSETFROM:+0300\r\nTZOFFSETTO:+0300\r\nEND:STANDARD\r\nEND:VTIMEZONE\r\n"
    )
    got = read_ics(calendar(tz, vevent("own-tz", "DTSTART;TZID=Leitstand Test Zone +3:20240302T180000")))
    assert not got.skipped
    offset = got.events[0].start.utcoffset()
    assert offset is not None and offset.total_seconds() == 3 * 3600


@pytest.mark.parametrize(
    "props, problem, line",
    [
        (["DTSTART:notadate"], "DTSTART 'notadate' is not a date", 13),
        (["DTSTART:20240302T180000", "DTEND:garbage"], "DTEND 'garbage' is not a date", 14),
        (["DTSTART:20240302T180000", "DURATION:xx"], "DURATION 'xx' is not a duration", 14),
        (["DTSTART:20240302T180000", "DURATION:-P1D"], "DURATION is negative", 14),
        (["DTSTART:20240302T180000", "DURATION:P99999999D"], "outside the years 1900..2200", 14),
        (["DTSTART:00010101T000000Z"], "outside the years 1900..2200", 13),
        (["DTSTART:20240302T180000", "DTSTART:20240303T180000"], "DTSTART appears 2 times", 13),
        (["DTSTART:PT1H"], "is not a date", 13),
        (["DTSTART:20240302T180000", "DTEND:20240301T180000"], "DTEND before DTSTART", 14),
        (["SUMMARY:no start"], "no DTSTART", 10),
    ],
)
def test_a_broken_event_is_skipped_with_a_warning_naming_it(tmp_path: Path, props: list[str], problem: str, line: int) -> None:
    """Before: DTSTART:notadate (and most of the other broken values) ended the command in a traceback."""
    res = dry_run(tmp_path, calendar(GOOD, vevent("bad-1", *props)))
    assert res.exit_code == 0, res.output
    assert len(res.stdout.splitlines()) == 1  # the good event still goes out
    warning = [w for w in res.stderr.splitlines() if "bad-1" in w]
    assert len(warning) == 1 and problem in warning[0] and f"line {line}, event 'bad-1'" in warning[0], res.stderr
    assert "skipped 1" in res.stderr.splitlines()[-1]


def test_strict_refuses_the_file_with_one_line(tmp_path: Path) -> None:
    ics = tmp_path / "cal.ics"
    ics.write_text(calendar(GOOD, vevent("bad-1", "DTSTART:notadate")))
    line = one_clean_line(leitstand("events", "import", str(ics), "--dry-run", "--strict"))
    assert "bad-1" in line and "notadate" in line and "nothing imported" in line, line


def test_an_unknown_default_tz_is_one_line(tmp_path: Path) -> None:
    """Before: ZoneInfoNotFoundError traceback."""
    ics = tmp_path / "cal.ics"
    ics.write_text(calendar(GOOD))
    line = one_clean_line(leitstand("events", "import", str(ics), "--dry-run", "--default-tz", "Mars/Olympus"))
    assert line == "error: --default-tz: unknown time zone 'Mars/Olympus'", line
    for name in ("Europe", "", "../etc/passwd", "x" * 300, "UTC\x00"):
        with pytest.raises(ValueError, match="unknown time zone"):
            resolve_zone(name)
    assert str(resolve_zone("Europe/Berlin")) == "Europe/Berlin"


def test_floating_times_are_read_in_the_default_zone(tmp_path: Path) -> None:
    res = dry_run(tmp_path, calendar(vevent("float-1", "DTSTART:20240702T180000")), "--default-tz", "Europe/Berlin")
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["starts_at"] == "2024-07-02T18:00:00+02:00"


def test_an_invalid_scheduled_event_is_skipped_not_fatal(tmp_path: Path) -> None:
    """A huge attendance is capped, an overlong UID is cut: the record stays valid."""
    text = calendar(GOOD, vevent("x" * 300, "DTSTART:20240302T180000Z", "X-EXPECTED-ATTENDANCE:" + "9" * 5000))
    res = dry_run(tmp_path, text)
    assert res.exit_code == 0, res.output
    records = [msgspec.json.decode(line, type=ScheduledEvent) for line in res.stdout.splitlines()]
    assert len(records) == 2 and records[1].expected_attendance == 1_000_000
