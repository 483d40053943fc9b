"""Hypothesis fuzzing of ``leitstand events import --dry-run`` with generated ICS files (issue 10).

Calendars mix valid events with broken and odd properties (dates, TZIDs, durations, repeated
properties, folding, control characters, binary junk). The command runs in-process; the outcome
is either success, every stdout line a valid ScheduledEvent and the summary counting them, or
exit 1 with one line and no traceback. An event with an unknown TZID never comes out.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from streams.cli import app
from streams.errors import CliError
from streams.records import ScheduledEvent
from tests.fuzzing import budget
from tests.unit.streams.cli.test_inputs_support import render_error

#: TZIDs that icalendar cannot resolve; an event using one must be skipped, never read as UTC
UNKNOWN_ZONES = ["Mars/Olympus", "Europe/Atlantis", "+05:00"]
ZONES = [
    "Europe/Berlin",
    "America/New_York",
    "UTC",
    "W. Europe Standard Time",
    "/freeassociation.sourceforge.net/Europe/Berlin",
    "",
    *UNKNOWN_ZONES,
]

junk_text = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=30)

date_values = st.one_of(
    st.builds(
        lambda y, mo, d, h, mi, z: f"{y:04d}{mo:02d}{d:02d}T{h:02d}{mi:02d}00{z}",
        st.integers(1, 9999),
        st.integers(0, 13),
        st.integers(0, 32),
        st.integers(0, 25),
        st.integers(0, 61),
        st.sampled_from(["", "Z"]),
    ),
    st.builds(lambda y, mo, d: f"{y:04d}{mo:02d}{d:02d}", st.integers(1899, 2201), st.integers(1, 12), st.integers(1, 28)),
    st.sampled_from(["notadate", "", "PT1H", "20240302T180000/PT1H", "2024-03-02", "99999999T999999"]),
    junk_text,
)
durations = st.one_of(
    st.sampled_from(["PT2H", "P1D", "-P1D", "P99999999D", "PT0S", "xx", "P", "PT1H30M"]),
    st.builds(lambda n: f"PT{n}H", st.integers(0, 10**9)),
    junk_text,
)


@st.composite
def time_property(draw: Any, name: str) -> str:
    params = ""
    if draw(st.booleans()):
        params += f";TZID={draw(st.one_of(st.sampled_from(ZONES), junk_text.filter(lambda t: ':' not in t and ';' not in t)))}"
    if draw(st.integers(0, 4)) == 0:
        params += ";VALUE=" + draw(st.sampled_from(["DATE", "DATE-TIME", "PERIOD", "TEXT"]))
    return f"{name}{params}:{draw(date_values)}"


@st.composite
def vevent(draw: Any, n: int) -> str:
    props = [f"UID:{draw(st.one_of(st.just(f'ev-{n}'), junk_text))}"]
    props += draw(
        st.lists(
            st.one_of(
                time_property("DTSTART"),
                time_property("DTEND"),
                durations.map(lambda d: f"DURATION:{d}"),
                junk_text.map(lambda t: f"SUMMARY:{t}"),
                junk_text.map(lambda t: f"LOCATION:{t}"),
                st.one_of(st.integers(-10, 10**30).map(str), junk_text).map(lambda t: f"X-EXPECTED-ATTENDANCE:{t}"),
                junk_text.map(lambda t: f"DESCRIPTION:Attendance: {t}"),
                st.sampled_from(["match", "concert", "School holiday", "fair,holiday", ""]).map(lambda c: f"CATEGORIES:{c}"),
                st.sampled_from(["RRULE:FREQ=DAILY;COUNT=3", "RRULE:garbage", "RRULE:FREQ=YEARLY;UNTIL=99991231"]),
                st.builds(lambda k, v: f"{k}:{v}", st.from_regex(r"X-[A-Z]{1,8}", fullmatch=True), junk_text),
            ),
            max_size=8,
        )
    )
    if draw(st.booleans()):
        props.insert(1, draw(time_property("DTSTART")))
    return "BEGIN:VEVENT\r\n" + "".join(p + "\r\n" for p in props) + "END:VEVENT\r\n"


def fold(text: str, at: list[int]) -> str:
    """RFC 5545 folding: a CRLF and a space inserted inside lines (a reader must unfold them)."""
    out = text
    for i in sorted({min(i, len(out)) for i in at}, reverse=True):
        if 0 < i < len(out) and out[i - 1] not in "\r\n" and out[i] not in "\r\n":
            out = out[:i] + "\r\n " + out[i:]
    return out


@st.composite
def ics_files(draw: Any) -> bytes:
    """A calendar of 0..4 events, sometimes folded, with odd line endings or junk spliced in."""
    events = [draw(vevent(i)) for i in range(draw(st.integers(0, 4)))]
    if draw(st.booleans()):  # an otherwise valid event whose zone does not exist
        sentinel = (
            f"BEGIN:VEVENT\r\nUID:sentinel-mars\r\nDTSTART;TZID={draw(st.sampled_from(UNKNOWN_ZONES))}:"
            "20240302T180000\r\nDURATION:PT2H\r\nEND:VEVENT\r\n"
        )
        events.insert(draw(st.integers(0, len(events))), sentinel)
    text = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//fuzz//EN\r\n" + "".join(events) + "END:VCALENDAR\r\n"
    if draw(st.booleans()):
        text = fold(text, draw(st.lists(st.integers(0, len(text)), max_size=6)))
    if draw(st.integers(0, 5)) == 0:
        text = text.replace("\r\n", draw(st.sampled_from(["\n", "\r", "\r\n\r\n"])))
    raw = text.encode("utf-8")
    if draw(st.integers(0, 5)) == 0:
        at = draw(st.integers(0, len(raw)))
        raw = raw[:at] + draw(st.binary(max_size=40)) + raw[at:]
    return raw


def run(*args: str) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of a real in-process run; an unexpected exception fails the test."""
    res = CliRunner().invoke(app, list(args), standalone_mode=False)
    exc = res.exception
    if exc is None or isinstance(exc, SystemExit):
        return res.exit_code, res.stdout, res.stderr
    if isinstance(exc, CliError):
        lines = render_error(exc)
        assert len(lines) == 1, f"error of {args} renders on {len(lines)} lines: {lines}"
        return 1, "", lines[0]
    raise exc  # a traceback: the test shows where


def check_import(tmp: Path, raw: bytes, default_tz: str, strict: bool) -> None:
    ics = tmp / "cal.ics"
    ics.write_bytes(raw)
    code, out, err = run("events", "import", str(ics), "--dry-run", "--default-tz", default_tz, *(["--strict"] if strict else []))
    if code != 0:
        assert err.startswith("error: ") and "Traceback" not in err, err
        return
    lines = out.splitlines()
    records = [msgspec.json.decode(line.encode(), type=ScheduledEvent) for line in lines]
    assert err.splitlines()[-1].startswith(f"{len(records)} events (dry run"), err
    for r in records:
        assert r.starts_at.tzinfo is not None and r.ends_at >= r.starts_at
        assert 1900 <= r.starts_at.year <= 2200
    if strict:
        assert "skipped" not in err
    # the sentinel event's only time is in an unknown zone: it must never come out (as UTC or otherwise)
    assert all(r.event_id != "sentinel-mars" for r in records), out


@pytest.mark.fuzz
def test_fuzz_events_import_succeeds_or_refuses_in_one_line(tmp_path_factory: pytest.TempPathFactory) -> None:
    tmp = tmp_path_factory.mktemp("fuzz-ics")

    @budget(40)
    @given(
        raw=st.one_of(ics_files(), st.binary(max_size=300)),
        default_tz=st.sampled_from(["UTC", "Europe/Berlin", "Mars/Olympus", "", "Europe"]),
        strict=st.booleans(),
    )
    def check(raw: bytes, default_tz: str, strict: bool) -> None:
        check_import(tmp, raw, default_tz, strict)

    check()
