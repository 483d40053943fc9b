"""``leitstand detect`` scores a CSV row for row and fails in one line (no broker, no NAB data)."""

from __future__ import annotations

import csv
import json
import math
import random
from pathlib import Path

import pytest

from tests.cli_helpers import leitstand, one_clean_line

pytestmark = pytest.mark.slow  # child processes (the CLI) or SUMO runs

T0 = 1_735_689_600


def write_stream(path: Path, n: int = 1500, spike_at: int = 1200) -> list[list[str]]:
    rng = random.Random(2)
    rows = [["sensor", "timestamp", "value"]]
    for i in range(n):
        h = (i * 5 / 60) % 24
        v = 60 - 25 * math.exp(-0.5 * ((h - 8) / 1.0) ** 2) + rng.gauss(0, 2)
        if i == spike_at:
            v = 5.0  # speed collapses: an incident
        stamp = f"2025-01-{1 + i * 300 // 86400:02d}T{(i * 300 % 86400) // 3600:02d}:{(i * 300 % 3600) // 60:02d}:00"
        rows.append(["S1", stamp, f"{v:.1f}"])
    rows[101][2] = "n/a"  # unparseable value
    rows[202][1] = "yesterday"  # unparseable time
    rows[303] = ["S1"]  # a short row
    with path.open("w", newline="") as fh:
        csv.writer(fh).writerows(rows)
    return rows


def test_detect_writes_one_scored_row_per_input_row(tmp_path: Path) -> None:
    src, out = tmp_path / "speed.csv", tmp_path / "scored.csv"
    rows = write_stream(src)
    proc = leitstand("detect", str(src), "--output", str(out), "--time-col", "timestamp", "--value-col", "value")
    assert proc.returncode == 0, proc.stderr
    with out.open(newline="") as fh:
        got = list(csv.reader(fh))
    assert got[0] == ["timestamp", "value", "anomaly_score"]
    body = got[1:]
    assert len(body) == len(rows) - 1
    for src_row, out_row in zip(rows[1:], body):
        assert out_row[0] == (src_row[1] if len(src_row) > 1 else "")  # same order, times echoed
    scores = [float(r[2]) for r in body]
    assert all(0.0 <= s <= 1.0 for s in scores)
    assert scores[100] == 0.0 and scores[201] == 0.0 and scores[302] == 0.0  # bad rows score 0
    assert scores[1200] == max(scores[400:])  # the incident stands out


def test_detect_accepts_posix_seconds_and_another_detector(tmp_path: Path) -> None:
    src, out = tmp_path / "s.csv", tmp_path / "o.csv"
    src.write_text("t,reading\n" + "".join(f"{T0 + 60 * i},{i % 3}\n" for i in range(50)))
    proc = leitstand("detect", str(src), "-o", str(out), "--time-col", "t", "--value-col", "reading", "--detector", "zscore")
    assert proc.returncode == 0, proc.stderr
    assert len(out.read_text().splitlines()) == 51


def test_detect_errors_are_one_line(tmp_path: Path) -> None:
    src = tmp_path / "s.csv"
    src.write_text("timestamp,value\n2025-01-01T00:00:00,1\n")
    out = str(tmp_path / "o.csv")
    assert "no such file" in one_clean_line(leitstand("detect", str(tmp_path / "missing.csv"), "--output", out))
    assert "no column 'speed'" in one_clean_line(leitstand("detect", str(src), "--output", out, "--value-col", "speed"))
    assert "unknown detector 'oracle'" in one_clean_line(leitstand("detect", str(src), "--output", out, "--detector", "oracle"))
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    assert "is empty" in one_clean_line(leitstand("detect", str(empty), "--output", out))


def test_bench_nab_without_data_is_one_line(tmp_path: Path) -> None:
    line = one_clean_line(leitstand("bench", "nab", "--data-dir", str(tmp_path)))
    assert "NAB data not found" in line


def _tiny_nab(root: Path) -> None:
    """Two categories, one labelled window each: enough for one threshold and a cross-validation."""
    windows = {}
    for key, jump in (("realTraffic/s.csv", 60), ("realKnownCause/k.csv", 40)):
        path = root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        values = [10.0 + (i % 5) + (50.0 if jump <= i < jump + 3 else 0.0) for i in range(120)]
        rows = [f"2015-09-01 {i // 60:02d}:{i % 60:02d}:00,{v}" for i, v in enumerate(values)]
        path.write_text("timestamp,value\n" + "\n".join(rows) + "\n")
        windows[key] = [
            [
                f"2015-09-01 {(jump - 5) // 60:02d}:{(jump - 5) % 60:02d}:00.000000",
                f"2015-09-01 {(jump + 5) // 60:02d}:{(jump + 5) % 60:02d}:00.000000",
            ]
        ]
    (root / "realTraffic_windows.json").write_text(json.dumps({"realTraffic/s.csv": windows["realTraffic/s.csv"]}))
    (root / "dev_windows.json").write_text(json.dumps(windows))


def test_bench_nab_scores_a_named_set_with_categories(tmp_path: Path) -> None:
    _tiny_nab(tmp_path)
    proc = leitstand("bench", "nab", "--data-dir", str(tmp_path), "--set", "dev", "--detector", "traffic")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["set"] == "dev" and report["detector"] == "traffic"
    assert set(report["per_category"]) == {"realTraffic", "realKnownCause"}
    assert "cross_validated_by_category" in report


def test_bench_nab_set_naming_a_missing_file_is_one_line(tmp_path: Path) -> None:
    _tiny_nab(tmp_path)
    line = one_clean_line(leitstand("bench", "nab", "--data-dir", str(tmp_path), "--set", "nowhere/x.csv"))
    assert "nowhere/x.csv" in line and "not a labelled NAB file" in line
    # a file that is not a list of NAB names: the message says what a set is, not the file's text
    listing = tmp_path / "secrets.txt"
    listing.write_text("a-line-that-is-no-nab-name-" + "x" * 200 + "\n")
    line = one_clean_line(leitstand("bench", "nab", "--data-dir", str(tmp_path), "--set", str(listing)))
    assert "a set is dev, a category" in line and "x" * 61 not in line
