"""Hypothesis fuzzing of ``leitstand forecast backtest`` with generated CSV files (issue 10).

Files have random extra columns, NaN/inf/empty/garbage/huge numbers, unsorted and duplicated
times, mixed time formats and offsets, binary junk, and sometimes an events file from the ICS
fuzzer. The command runs in-process (naive model, small data) under a small ``--max-work``, so no
example can start a long run; the fuzzer also checks that the work limit holds. The outcome is
either success with strict JSON (every figure finite or null with a reason) or exit 1 with one
line and no traceback.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from hypothesis import event, given
from hypothesis import strategies as st

from tests.fuzzing import budget
from tests.unit.streams.cli.test_events_import_fuzz import ics_files, run

#: the fuzzer's work limit: a few thousand naive fits' steps, well under a second per example
MAX_WORK = 20_000
START = pd.Timestamp("2024-01-01", tz="UTC")

cells = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.floats(0, 500).map(lambda v: f"{v:.1f}"),
    st.sampled_from(
        ["", "NaN", "nan", "inf", "-inf", "Infinity", "1e308", "-1e308", "1e400", "0", "-0", "1e-320", "abc", "1,5", "NULL", "  7  ", '"3"']
    ),
    st.integers(-(10**20), 10**20).map(str),
)
time_formats = st.sampled_from(["iso", "iso_z", "iso_offset", "epoch", "garbage", "mixed"])


def stamp(t: pd.Timestamp, fmt: str, i: int) -> str:
    if fmt == "mixed":
        fmt = ["iso", "iso_z", "iso_offset", "epoch"][i % 4]
    if fmt == "iso":
        return t.strftime("%Y-%m-%d %H:%M:%S")
    if fmt == "iso_z":
        return t.strftime("%Y-%m-%dT%H:%M:%SZ")
    if fmt == "iso_offset":
        return (t.tz_convert("Europe/Berlin")).isoformat()
    if fmt == "epoch":
        return str(int(t.timestamp()))
    return ["yesterday", "2024-13-45", "", "1e30", str(i)][i % 5]


@st.composite
def csv_files(draw: Any) -> bytes:
    """An hourly series of 8..12 days (enough for the 7-day MASE scale), damaged in many ways."""
    n = draw(st.integers(24 * 8, 24 * 12))
    fmt = draw(time_formats)
    base = draw(st.floats(0, 1000))
    values = [f"{base + 50 * math.sin(i / 24 * 2 * math.pi):.2f}" for i in range(n)]
    for i in draw(st.lists(st.integers(0, n - 1), max_size=12)):
        values[i] = draw(cells)
    rows = [[stamp(START + pd.Timedelta(hours=i), fmt, i), v] for i, v in enumerate(values)]
    extra = draw(st.lists(st.sampled_from(["rain", "value ", " timestamp", "x[/b]", "weather"]), max_size=2, unique=True))
    for r in rows:
        r += [draw(cells) if c != "weather" else draw(st.sampled_from(["Rain", "Clear", "", "Snow"])) for c in extra]
    if draw(st.booleans()):
        rows = draw(st.permutations(rows))  # unsorted
    for i in draw(st.lists(st.integers(0, len(rows) - 1), max_size=5)):
        rows.insert(i, list(rows[i]))  # duplicated times
    header = ["timestamp", "value", *extra]
    if draw(st.integers(0, 6)) == 0:
        header = draw(st.permutations(header))
    sep = draw(st.sampled_from([",", ",", ",", ",", ";", "\t"]))
    text = "\n".join(sep.join(r) for r in [header, *rows]) + "\n"
    raw = text.encode("utf-8")
    if draw(st.integers(0, 5)) == 0:
        at = draw(st.integers(0, len(raw)))
        raw = raw[:at] + draw(st.binary(max_size=60)) + raw[at:]
    return raw


#: options a careful user gives (the file is then what is fuzzed) ...
plausible = st.fixed_dictionaries(
    {
        "--freq": st.just("1h"),
        "--horizon": st.sampled_from(["1", "24", "48"]),
        "--every": st.sampled_from(["1D", "3h", "1h"]),
        "--first-origin": st.sampled_from(["2024-01-08", "2024-01-08T05:00:00"]),
        "--last-origin": st.sampled_from(["2024-01-08T12:00:00", "2024-01-09"]),
        "--model": st.sampled_from(["naive_weekly", "naive_daily"]),
    }
)
#: ... and the options a careless one gives
careless = st.fixed_dictionaries(
    {
        "--freq": st.sampled_from(["1h", "30min", "1D", "1s", "7min", "0h", "1x", "NaT"]),
        "--horizon": st.sampled_from(["1", "24", "1000", "100000000", "0"]),
        "--every": st.sampled_from(["1D", "1h", "90min", "1s", "2D", "nat"]),
        "--first-origin": st.sampled_from(["2024-01-08", "2024-01-08T00:30:00", "2023-01-01", "garbage", "", "2024-01-08T01:00:00+01:00"]),
        "--last-origin": st.sampled_from(["2024-01-08", "2024-01-10T12:00:00", "2030-01-01", "2262-04-11"]),
        "--model": st.sampled_from(["naive_weekly", "naive_daily"]),
    }
)
options = st.one_of(plausible, plausible, plausible, careless)


def _why(line: str) -> str:
    """A coarse label of a refusal for hypothesis' statistics (which checks the fuzzer reaches)."""
    for key in (
        "--max-work",
        "--every 1s",
        "--every 90min",
        "--every nat",
        "--freq",
        "--horizon",
        "outside the data",
        "grid",
        "not a CSV",
        "no column",
        "infinite",
        "7 days",
        "fewer than two",
        "--first-origin",
        "no parseable time",
        "no history",
    ):
        if key in line:
            return key
    return line[:60]


def check_backtest(tmp: Path, raw: bytes, opts: dict[str, str], ics: bytes | None, regressors: bool) -> None:
    src, out = tmp / "in.csv", tmp / "out.csv"
    src.write_bytes(raw)
    args = ["forecast", "backtest", str(src), "--output", str(out), "--json", "--max-work", str(MAX_WORK)]
    for k, v in opts.items():
        args += [k, v]
    if ics is not None:
        (tmp / "ev.ics").write_bytes(ics)
        args += ["--events", str(tmp / "ev.ics")]
    if regressors:
        args += ["--regressors", "rain"]
    code, stdout, stderr = run(*args)
    if code != 0:
        assert stderr.startswith("error: ") and "Traceback" not in stderr, stderr
        event(f"refused: {stderr.split(':')[-1][:0]}{_why(stderr)}")
        return
    event("success")

    def refuse(constant: str) -> None:
        raise AssertionError(f"{constant} in the JSON output: {stdout!r}")

    summary = json.loads(stdout.strip().splitlines()[-1], parse_constant=refuse)
    for key in ("mae", "mase", "smape", "coverage80"):
        v = summary[key]
        assert (v is None and summary["not_computed"][key]) or (isinstance(v, float) and math.isfinite(v)), summary
    assert summary["origins"] * int(opts["--horizon"]) <= MAX_WORK  # the limit held
    assert summary["smape"] is None or 0.0 <= summary["smape"] <= 200.0


@pytest.mark.fuzz
def test_fuzz_backtest_succeeds_with_strict_json_or_refuses_in_one_line(tmp_path_factory: pytest.TempPathFactory) -> None:
    tmp = tmp_path_factory.mktemp("fuzz-backtest")

    @budget(12)
    @given(
        raw=st.one_of(csv_files(), csv_files(), st.binary(max_size=300)),
        opts=options,
        ics=st.one_of(st.none(), st.none(), ics_files()),
        regressors=st.sampled_from([False, False, False, True]),
    )
    def check(raw: bytes, opts: dict[str, str], ics: bytes | None, regressors: bool) -> None:
        check_backtest(tmp, raw, opts, ics, regressors)

    check()
