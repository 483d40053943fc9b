"""``leitstand forecast backtest`` and ``leitstand events import --dry-run``: output shape,
messy input (duplicates, missing hours), events from an ICS the test writes, one-line errors."""

from __future__ import annotations

import csv
import json
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import msgspec
import pandas as pd
import pytest

from forecasting import Event, event_regressors, read_ics
from forecasting.events import VenueMap
from forecasting.synthetic import traffic_series
from streams.records import ScheduledEvent
from tests.cli_helpers import leitstand, one_clean_line

pytestmark = pytest.mark.slow  # child processes (the CLI) or SUMO runs

ICS = """BEGIN:VCALENDAR\r
VERSION:2.0\r
PRODID:-//test//leitstand//EN\r
BEGIN:VEVENT\r
UID:match-42@stadium\r
SUMMARY:Cup final\r
LOCATION:Stadion am Fluss\r
DTSTART;TZID=Europe/Berlin:20240302T180000\r
DTEND;TZID=Europe/Berlin:20240302T200000\r
X-EXPECTED-ATTENDANCE:42000\r
CATEGORIES:match\r
END:VEVENT\r
BEGIN:VEVENT\r
UID:ferien-1\r
SUMMARY:Winter school holidays\r
DTSTART;VALUE=DATE:20240304\r
DTEND;VALUE=DATE:20240309\r
CATEGORIES:School holiday\r
END:VEVENT\r
BEGIN:VEVENT\r
UID:fair-7\r
SUMMARY:Spring fair\r
LOCATION:Messe Halle 3\r
DESCRIPTION:Expected attendance: 8,500 visitors\r
DTSTART:20240305T090000Z\r
DURATION:PT8H\r
RRULE:FREQ=DAILY;COUNT=3\r
END:VEVENT\r
END:VCALENDAR\r
"""

VENUES = {"stadium": {"names": ["Stadion am Fluss"], "affects": ["K101", "bus:12"]}}


def write_messy_csv(path: Path, days: int = 40) -> pd.Series:
    y = traffic_series(days=days, seed=11)
    rows = [["when", "volume", "rain"]]
    for i, (t, v) in enumerate(y.items()):
        if i % 97 == 5:
            continue  # a missing hour
        rows.append([t.strftime("%Y-%m-%d %H:%M:%S"), f"{v:.1f}", "0.0"])
        if i % 50 == 3:
            rows.append([t.strftime("%Y-%m-%d %H:%M:%S"), f"{v:.1f}", "0.2"])  # a duplicated hour
    with path.open("w", newline="") as fh:
        csv.writer(fh).writerows(rows)
    return y


def backtest_args(src: Path, out: Path, *extra: str) -> list[str]:
    return [
        "forecast",
        "backtest",
        str(src),
        "--time-col",
        "when",
        "--value-col",
        "volume",
        "--freq",
        "1h",
        "--horizon",
        "24",
        "--first-origin",
        "2024-02-01",
        "--last-origin",
        "2024-02-07",
        "--every",
        "3D",
        "--output",
        str(out),
        *extra,
    ]


def test_backtest_writes_one_row_per_forecast_point_and_prints_json(tmp_path: Path) -> None:
    src, out, ics = tmp_path / "in.csv", tmp_path / "out.csv", tmp_path / "ev.ics"
    write_messy_csv(src)
    ics.write_text(ICS)
    proc = leitstand(*backtest_args(src, out, "--model", "naive_weekly", "--holidays", "US-MN", "--json"))
    assert proc.returncode == 0, proc.stderr
    summary = strict_json(proc.stdout)
    assert set(summary) == {"model", "mae", "mase", "smape", "coverage80", "winkler80", "msis80", "origins", "points", "not_computed"}
    assert summary["not_computed"] == {}
    assert summary["model"] == "naive_weekly" and summary["origins"] == 3
    body = list(csv.reader(out.open()))
    assert body[0] == ["origin", "timestamp", "y", "yhat", "yhat_lower", "yhat_upper"]
    assert len(body) == 1 + 3 * 24
    assert body[1][0] == "2024-02-01T00:00:00+00:00" == body[1][1]
    assert summary["points"] == sum(1 for r in body[1:] if r[2] != "")  # missing hours are not scored
    assert 0 < summary["mase"] < 2
    # the default model with regressors and events runs too (in process: pandas is already imported)
    from typer.testing import CliRunner

    from streams.cli import app

    res = CliRunner().invoke(app, backtest_args(src, out, "--regressors", "rain", "--events", str(ics), "--train-window", "28D", "--json"))
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout.strip().splitlines()[-1])["points"] == summary["points"]


def strict_json(text: str) -> dict:
    """json.loads that refuses NaN and Infinity (Python's json accepts them; JSON does not)."""

    def refuse(constant: str) -> None:
        raise AssertionError(f"{constant} is not JSON: {text!r}")

    return json.loads(text, parse_constant=refuse)


def run_in_process(*args: str) -> BaseException | None:
    """The command's exception, without a child process (pandas takes seconds to import)."""
    from typer.testing import CliRunner

    from streams.cli import app

    return CliRunner().invoke(app, list(args)).exception


@pytest.mark.parametrize(
    "change, message",
    [
        ({"src": "missing.csv"}, "no such file"),
        ({"--freq": "hourly"}, "--freq"),
        ({"--last-origin": "2030-01-01"}, "outside the data"),
        ({"--first-origin": "2023-01-01"}, "outside the data"),
        ({"--value-col": "speed"}, "no column 'speed'"),
        ({"--first-origin": "2024-02-01T00:30:00"}, "not on the 1h grid"),
        ({"--model": "crystal_ball"}, "unknown model"),
        ({"--holidays": "XX"}, "--holidays"),
        ({"--regressors": "wind"}, "no column 'wind'"),
        ({"--every": "-1D"}, "--every"),
    ],
)
def test_backtest_rejects_bad_input_with_a_cli_error(tmp_path: Path, change: dict[str, str], message: str) -> None:
    from streams.errors import CliError

    src, out = tmp_path / "in.csv", tmp_path / "out.csv"
    write_messy_csv(src)
    args = backtest_args(tmp_path / change.pop("src") if "src" in change else src, out)
    for opt, value in change.items():
        if opt in args:
            args[args.index(opt) + 1] = value
        else:
            args += [opt, value]
    exc = run_in_process(*args)
    assert isinstance(exc, CliError) and message in str(exc), exc
    assert "\n" not in str(exc)


def test_backtest_errors_are_one_line_on_the_console(tmp_path: Path) -> None:
    src, out = tmp_path / "in.csv", tmp_path / "out.csv"
    write_messy_csv(src)
    args = backtest_args(src, out)
    args[args.index("--value-col") + 1] = "speed"
    assert "no column 'speed'" in one_clean_line(leitstand(*args))


# --- issue 10 #10: non-finite input, undefined metrics, runaway runs --------------------------


def write_csv(path: Path, values: list[str], start: str = "2024-01-01") -> None:
    times = pd.date_range(start, periods=len(values), freq="1h")
    path.write_text("when,volume\n" + "".join(f"{t:%Y-%m-%d %H:%M:%S},{v}\n" for t, v in zip(times, values)))


def series_values(days: int = 40) -> list[str]:
    return [f"{v:.1f}" for v in traffic_series(days=days, seed=11).to_numpy()]


def invoke(*args: str) -> Any:
    from typer.testing import CliRunner

    from streams.cli import app

    return CliRunner().invoke(app, list(args))


def test_backtest_refuses_infinite_and_huge_values_naming_the_rows(tmp_path: Path) -> None:
    """Before: exit 0 and {"mase": Infinity/NaN} (boosted) or a misleading 0.0 (naive)."""
    from streams.errors import CliError

    src, out = tmp_path / "in.csv", tmp_path / "out.csv"
    for bad in (["inf", "-Infinity"], ["1e300", "-1e300"]):
        values = series_values()
        values[800], values[801] = bad
        write_csv(src, values)
        exc = run_in_process(*backtest_args(src, out, "--model", "naive_weekly", "--json"))
        assert isinstance(exc, CliError), exc
        msg = str(exc)
        assert "'volume'" in msg and "row 801" in msg and "row 802" in msg and "2024-02-03 08:00:00" in msg, msg
        assert "\n" not in msg


def test_backtest_reads_nan_and_empty_cells_as_missing_and_prints_strict_json(tmp_path: Path) -> None:
    src, out = tmp_path / "in.csv", tmp_path / "out.csv"
    values = series_values()
    for i in range(745, 765):  # inside the first forecast window (2024-02-01 00:00 is values[744])
        values[i] = ["NaN", "", "nan", "garbage"][i % 4]
    write_csv(src, values)
    res = invoke(*backtest_args(src, out, "--model", "naive_weekly", "--json"))
    assert res.exit_code == 0, res.output
    summary = strict_json(res.stdout.strip().splitlines()[-1])
    assert summary["points"] == 3 * 24 - 20 and summary["not_computed"] == {}
    assert all(isinstance(summary[k], float) for k in ("mae", "mase", "smape", "coverage80"))


def test_undefined_mase_is_null_with_a_reason_and_the_json_stays_valid(tmp_path: Path) -> None:
    """A constant history: the weekly naive makes no error, so MASE is undefined (before: the
    run ended in an error after all the fitting; with NaN values, invalid JSON)."""
    src, out = tmp_path / "in.csv", tmp_path / "out.csv"
    write_csv(src, ["5"] * (24 * 40))
    res = invoke(*backtest_args(src, out, "--model", "naive_weekly", "--json"))
    assert res.exit_code == 0, res.output
    summary = strict_json(res.stdout.strip().splitlines()[-1])
    assert summary["mase"] is None and "no error" in summary["not_computed"]["mase"]
    assert summary["mae"] == 0.0 and summary["smape"] == 0.0 and set(summary["not_computed"]) == {"mase", "msis80"}


def test_backtest_estimates_the_work_first_and_refuses_a_runaway_run(tmp_path: Path) -> None:
    from streams.errors import CliError

    src, out = tmp_path / "in.csv", tmp_path / "out.csv"
    write_messy_csv(src)
    hourly = backtest_args(src, out, "--model", "naive_weekly", "--json")
    hourly[hourly.index("--every") + 1] = "1h"  # 145 origins x ~830 history steps + 24 = ~124,000 steps
    exc = run_in_process(*hourly, "--max-work", "50000")
    assert isinstance(exc, CliError), exc
    msg = str(exc)
    assert "145 origins" in msg and "over the limit of 50,000 (--max-work" in msg and "\n" not in msg, msg
    res = invoke(*hourly, "--max-work", "200000")  # the limit can be raised
    assert res.exit_code == 0, res.output
    assert strict_json(res.stdout.strip().splitlines()[-1])["origins"] == 145
    exc = run_in_process(*backtest_args(src, out, "--horizon", "300000"))
    assert isinstance(exc, CliError) and "--horizon 300,000 is more than 100,000 steps" in str(exc), exc
    long = backtest_args(tmp_path / "not-read.csv", out)  # the estimate comes before the file is read
    for opt, value in {"--every": "1h", "--last-origin": "2024-02-08T23:00:00", "--horizon": "30000"}.items():
        long[long.index(opt) + 1] = value
    exc = run_in_process(*long)
    assert isinstance(exc, CliError), exc
    assert "192 origins x horizon 30,000 = 5,760,000 forecast points: over the limit of 5,000,000" in str(exc), exc


def _limited(*args: str) -> Any:
    """The real console command in a child with 3 GB of address space and a minute of time."""
    import resource
    import subprocess
    import sys

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))

    return subprocess.run(
        [sys.executable, "-m", "streams.cli", *args],
        capture_output=True,
        text=True,
        timeout=60,
        preexec_fn=limit,
        env={**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"},
    )


@pytest.mark.parametrize(
    "change, message",
    [
        (("--horizon", "100000000"), "--horizon 100,000,000 is more than 100,000 steps"),
        (("--every", "1s"), "--every 1s is not a whole number of --freq 1h steps"),
        (("--freq", "1s"), "over the limit of 5,000,000"),  # 40 days of seconds: 2.7 million history steps per origin
    ],
)
def test_the_issues_runaway_backtests_end_at_once_with_one_line(tmp_path: Path, change: tuple[str, str], message: str) -> None:
    """Before: minutes and 5-6 GB (here: killed by the time or memory limit, or a traceback)."""
    src, out = tmp_path / "in.csv", tmp_path / "out.csv"
    write_messy_csv(src)
    args = backtest_args(src, out, "--model", "naive_weekly")
    args[args.index(change[0]) + 1] = change[1]
    line = one_clean_line(_limited(*args))
    assert message in line, line


# --- events ----------------------------------------------------------------------------------


def test_read_ics_maps_venues_attendance_kinds_and_time_zones(tmp_path: Path) -> None:
    (tmp_path / "venues.json").write_text(json.dumps(VENUES))
    got = read_ics(ICS, VenueMap.load(tmp_path / "venues.json"))
    match, ferien, fair = got.events
    assert match.venue_id == "stadium" and match.affects == ("K101", "bus:12")
    assert match.start == datetime(2024, 3, 2, 17, 0, tzinfo=timezone.utc) and match.expected_attendance == 42000
    assert match.kind == "match"
    assert ferien.kind == "school_holiday" and (ferien.end - ferien.start).days == 5
    assert fair.venue_id == "messe-halle-3" and fair.expected_attendance == 8500
    assert (fair.end - fair.start).total_seconds() == 8 * 3600
    assert got.recurring == 1


def test_event_regressors_mark_arrivals_departures_and_school_holidays() -> None:
    idx = pd.date_range("2024-03-02", periods=24 * 8, freq="1h", tz="UTC")
    events = read_ics(ICS).events
    events[0] = Event(**{**events[0].__dict__, "affects": ("K101",)})
    reg = event_regressors(idx, events, series_id="K101")
    at = reg.loc["2024-03-02 17:00":"2024-03-02 18:00", "event_attendance"]
    assert (at == 42.0).all()
    assert reg.loc["2024-03-02 15:00", "event_arrival"] == 42.0 and reg.loc["2024-03-02 19:00", "event_departure"] == 42.0
    assert reg.loc["2024-03-05 12:00", "school_holiday"] == 1.0 and reg.loc["2024-03-09 12:00", "school_holiday"] == 0.0
    other = event_regressors(idx, events, series_id="bus:99")
    assert other["event_attendance"].loc["2024-03-02 17:00"] == 0.0  # the match does not affect it
    assert other["event_attendance"].loc["2024-03-05 10:00"] == 8.5  # the fair has no series list: city-wide


def test_rain_regressor_weighs_the_covered_share_and_takes_the_wetter_of_two_sources() -> None:
    t = datetime(2024, 3, 2, 12, 30, tzinfo=timezone.utc)
    one = Event("city", t, t + pd.Timedelta("45min"), kind="weather", precipitation_mm_h=4.0)
    other = Event("city", t, t + pd.Timedelta("30min"), kind="weather", precipitation_mm_h=2.0)
    dry = Event("city", t, t + pd.Timedelta("3h"), kind="weather")  # a forecast without rain
    quarter = pd.date_range("2024-03-02 12:00", periods=6, freq="15min", tz="UTC")
    assert event_regressors(quarter, [one, other, dry])["rain_mm_h"].tolist() == [0.0, 0.0, 4.0, 4.0, 4.0, 0.0]
    hourly = pd.date_range("2024-03-02 12:00", periods=2, freq="1h", tz="UTC")
    assert event_regressors(hourly, [one, other])["rain_mm_h"].tolist() == [2.0, 1.0]


def test_events_import_dry_run_prints_valid_scheduled_events(tmp_path: Path) -> None:
    ics, venues = tmp_path / "cal.ics", tmp_path / "venues.json"
    ics.write_text(ICS)
    venues.write_text(json.dumps(VENUES))
    proc = leitstand("events", "import", str(ics), "--venue-map", str(venues), "--dry-run")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert len(lines) == 3
    records = [msgspec.json.decode(line.encode(), type=ScheduledEvent) for line in lines]
    assert records[0].venue_id == "stadium" and records[0].expected_attendance == 42000
    assert records[1].kind == "school_holiday"
    assert "recurring" in proc.stderr


def test_events_import_errors_are_one_line(tmp_path: Path) -> None:
    from streams.errors import CliError

    assert "no such file" in one_clean_line(leitstand("events", "import", str(tmp_path / "none.ics"), "--dry-run"))
    bad = tmp_path / "bad.ics"
    bad.write_text("this is not a calendar\n")
    exc = run_in_process("events", "import", str(bad), "--dry-run")
    assert isinstance(exc, CliError) and "not an iCalendar file" in str(exc)
    (tmp_path / "ok.ics").write_text(ICS)
    (tmp_path / "v.json").write_text("[1, 2]")
    exc = run_in_process("events", "import", str(tmp_path / "ok.ics"), "--venue-map", str(tmp_path / "v.json"), "--dry-run")
    assert isinstance(exc, CliError) and "venue map" in str(exc)
