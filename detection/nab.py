"""Numenta Anomaly Benchmark (NAB) scoring, reimplemented from NAB v1.1's own rules.

Why a reimplementation: NAB itself is Python 2-era code that needs pandas and its repository
layout; we want the same numbers from plain arrays, inside our tests and our ``bench`` command.
Every rule below is taken from NAB's source (``nab/sweeper.py``, ``nab/scorer.py``,
``nab/runner.py``, ``config/profiles.json``) and named where it is used:

* **Probation.** The first ``min(floor(0.15 * n), 0.15 * 5000)`` rows of a file are not scored
  (``Sweeper._getProbationaryLength``): at most 750 rows.
* **Windows.** A labelled window is entered on the row whose timestamp equals its start and left
  after the row whose timestamp equals its end (first occurrence of each, as NAB's
  ``timestamps.index`` does). Its width counts rows.
* **Sweep score of a row inside a window** (a would-be true positive):
  ``scaledSigmoid(-(right - i + 1) / width) * tp / scaledSigmoid(-1)``: the first row of a window
  earns exactly ``tp``, later rows less.
* **Sweep score of a row outside a window** (a would-be false positive): ``-fp`` before the first
  window, else ``scaledSigmoid(|prev_right - i| / (prev_width - 1)) * fp``: cheap just after a
  window, ``-fp`` three widths later.
* **A file's score at a threshold** (a row is a detection when ``score >= threshold``): every window
  contributes the best sweep score among its detected rows, or ``-fn`` when none is detected; every
  detected row outside windows adds its (negative) sweep score.
* **One threshold for the corpus**: the rows of all files are swept together, every distinct
  anomaly score is tried as a threshold, the best total wins (``optimizeThreshold``; on a tie the
  higher threshold, because NAB's stable sort keeps the sweep's descending order).
* **Normalisation** (``Runner.normalize``): ``100 * (raw - null) / (perfect - null)``, where
  ``perfect = windows * tp`` and ``null`` is the null detector's raw score at its own best
  threshold. A constant score can only detect everything or nothing; on any realistic corpus
  nothing is better, so ``null = -windows * fn`` (on realTraffic: -14).

Standard profile weights: tp 1.0, fp 0.11, fn 1.0.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

PROBATION_FRACTION = 0.15
_NOT_SCORED = -2  # window id of a probationary row
_OUTSIDE = -1  # window id of a row outside every window


@dataclass(frozen=True)
class CostProfile:
    """NAB application profile (``config/profiles.json``)."""

    tp: float = 1.0
    fp: float = 0.11
    fn: float = 1.0


STANDARD = CostProfile()


def scaled_sigmoid(position: float) -> float:
    """NAB's ``scaledSigmoid``: +0.987 at the left edge of a window (-1), 0 at its right edge (0),
    -1.0 three widths past it."""
    if position > 3.0:
        return -1.0
    return 2.0 / (1.0 + math.exp(5.0 * position)) - 1.0


def probation_length(n_rows: int, fraction: float = PROBATION_FRACTION) -> float:
    """Rows ``i < probation_length`` are not scored (NAB caps it at ``fraction * 5000``)."""
    return min(math.floor(fraction * n_rows), fraction * 5000)


@dataclass(frozen=True)
class LabelledFile:
    """One data file with its labelled windows as inclusive row ranges."""

    name: str
    timestamps: np.ndarray  # POSIX seconds, float64, in file order
    values: np.ndarray  # float64, NaN where unparseable
    windows: tuple[tuple[int, int], ...]  # (first row, last row), inclusive, ascending


@dataclass
class FileWeights:
    """Per-row sweep scores and window membership of one file (threshold independent)."""

    name: str
    sweep: np.ndarray  # the row's contribution if detected
    window_id: np.ndarray  # index into windows, _OUTSIDE or _NOT_SCORED
    n_windows: int


def file_weights(
    name: str,
    n_rows: int,
    windows: Sequence[tuple[int, int]],
    profile: CostProfile = STANDARD,
    probation_fraction: float = PROBATION_FRACTION,
) -> FileWeights:
    """NAB's ``Sweeper.calcSweepScore`` on row indices."""
    max_tp = scaled_sigmoid(-1.0)
    probation = probation_length(n_rows, probation_fraction)
    sweep = np.empty(n_rows)
    wid = np.full(n_rows, _OUTSIDE, dtype=np.int64)
    starts = {a: k for k, (a, _) in enumerate(windows)}
    cur: int | None = None
    prev: int | None = None
    for i in range(n_rows):
        if cur is None and i in starts:
            cur = starts[i]
        if cur is not None:
            a, b = windows[cur]
            width = b - a + 1
            sweep[i] = scaled_sigmoid(-(b - i + 1) / width) * profile.tp / max_tp
            wid[i] = cur
        else:
            if prev is None:
                unweighted = -1.0
            else:
                pa, pb = windows[prev]
                pwidth = pb - pa + 1
                # NAB divides by (width - 1); a one-row window would divide by zero there.
                unweighted = scaled_sigmoid(abs(pb - i) / (pwidth - 1)) if pwidth > 1 else -1.0
            sweep[i] = unweighted * profile.fp
        if i < probation:
            wid[i] = _NOT_SCORED
        if cur is not None and i == windows[cur][1]:
            prev, cur = cur, None
    return FileWeights(name, sweep, wid, len(windows))


@dataclass
class FileResult:
    """One file's outcome at a threshold: NAB's row counts plus what an operator asks first."""

    name: str
    score: float
    tp: int  # detected rows inside windows
    fp: int  # detected rows outside windows
    fn: int  # undetected rows inside windows
    tn: int
    windows: int
    windows_detected: int
    first_detection_rows: list[int | None] = field(default_factory=list)  # rows after window start


def score_file(w: FileWeights, scores: np.ndarray, threshold: float, profile: CostProfile = STANDARD) -> FileResult:
    """A file's NAB score at one threshold (equals NAB's ``Sweeper.scoreDataSet``)."""
    scored = w.window_id != _NOT_SCORED
    detected = (np.asarray(scores, dtype=float) >= threshold) & scored
    inside = w.window_id >= 0
    total = float(w.sweep[detected & ~inside].sum())
    found = 0
    delays: list[int | None] = []
    for k in range(w.n_windows):
        rows = np.flatnonzero((w.window_id == k) & detected)
        in_window = np.flatnonzero(w.window_id == k)
        if in_window.size == 0:  # the window lies in the probation period: NAB ignores it
            delays.append(None)
            continue
        if rows.size:
            total += float(w.sweep[rows].max())
            found += 1
            delays.append(int(rows[0] - in_window[0]))
        else:
            total -= profile.fn
            delays.append(None)
    return FileResult(
        name=w.name,
        score=total,
        tp=int((detected & inside).sum()),
        fp=int((detected & ~inside).sum()),
        fn=int((~detected & inside & scored).sum()),
        tn=int((~detected & ~inside & scored).sum()),
        windows=w.n_windows,
        windows_detected=found,
        first_detection_rows=delays,
    )


def best_threshold(weights: Sequence[FileWeights], scores: Sequence[np.ndarray], profile: CostProfile = STANDARD) -> tuple[float, float]:
    """Sweep every distinct score as the one corpus threshold; return ``(threshold, raw score)``.

    NAB's ``calcScoreByThreshold`` over the rows of all files: starting from 1.1 (nothing
    detected, every window a false negative) it lowers the threshold one distinct score at a time.
    """
    rows_score: list[np.ndarray] = []
    rows_sweep: list[np.ndarray] = []
    rows_window: list[np.ndarray] = []
    offset = 0
    for w, s in zip(weights, scores):
        keep = w.window_id != _NOT_SCORED
        rows_score.append(np.asarray(s, dtype=float)[keep])
        rows_sweep.append(w.sweep[keep])
        wid = w.window_id[keep]
        rows_window.append(np.where(wid >= 0, wid + offset, -1))
        offset += w.n_windows
    score = np.concatenate(rows_score) if rows_score else np.empty(0)
    sweep = np.concatenate(rows_sweep) if rows_sweep else np.empty(0)
    window = np.concatenate(rows_window) if rows_window else np.empty(0, dtype=np.int64)
    order = np.argsort(-score, kind="stable")
    parts = np.full(offset, -profile.fn)
    scorable = np.unique(window[window >= 0])
    present = np.zeros(offset, dtype=bool)
    present[scorable] = True
    parts[~present] = 0.0  # windows without scorable rows are not in NAB's scoreParts
    fp_sum = 0.0
    windows_sum = float(parts.sum())
    best = (1.1, fp_sum + windows_sum)
    i = 0
    n = order.size
    while i < n:
        th = score[order[i]]
        while i < n and score[order[i]] == th:
            r = order[i]
            k = window[r]
            if k < 0:
                fp_sum += sweep[r]
            elif sweep[r] > parts[k]:
                windows_sum += sweep[r] - parts[k]
                parts[k] = sweep[r]
            i += 1
        total = fp_sum + windows_sum
        if total > best[1]:
            best = (float(th), total)
    return best


@dataclass
class CorpusResult:
    threshold: float
    raw: float
    normalised: float
    null_raw: float
    perfect_raw: float
    files: list[FileResult]


def normalise(raw: float, null_raw: float, perfect_raw: float) -> float:
    """NAB's ``Runner.normalize``: 0 for the null detector, 100 for a perfect one."""
    return 100.0 * (raw - null_raw) / (perfect_raw - null_raw)


def _baselines(weights: Sequence[FileWeights], profile: CostProfile) -> tuple[float, float]:
    """(null raw, perfect raw): the null detector swept like any other, ``windows * tp``."""
    _, null_raw = best_threshold(weights, [np.full(w.sweep.size, 0.5) for w in weights], profile)
    return null_raw, sum(w.n_windows for w in weights) * profile.tp


def score_corpus(files: Sequence[LabelledFile], scores: Sequence[np.ndarray], profile: CostProfile = STANDARD) -> CorpusResult:
    """Choose the one corpus threshold by sweeping, then score each file at it."""
    weights = [file_weights(f.name, len(f.timestamps), f.windows, profile) for f in files]
    threshold, raw = best_threshold(weights, scores, profile)
    results = [score_file(w, s, threshold, profile) for w, s in zip(weights, scores)]
    null_raw, perfect_raw = _baselines(weights, profile)
    return CorpusResult(
        threshold=threshold,
        raw=raw,
        normalised=normalise(raw, null_raw, perfect_raw),
        null_raw=null_raw,
        perfect_raw=perfect_raw,
        files=results,
    )


# --- baselines computed in the same run -------------------------------------------------------


def null_scores(f: LabelledFile) -> np.ndarray:
    """NAB's null detector: the same score (0.5) for every row."""
    return np.full(len(f.timestamps), 0.5)


def perfect_scores(f: LabelledFile) -> np.ndarray:
    """1.0 on the first row of every window, 0 elsewhere: what a perfect detector reports."""
    s = np.zeros(len(f.timestamps))
    for a, _ in f.windows:
        s[a] = 1.0
    return s


def random_scores(f: LabelledFile, seed: int) -> np.ndarray:
    """NAB's random detector: a uniform random score per row (seeded, so runs repeat)."""
    return np.random.default_rng(seed).random(len(f.timestamps))


# --- reading a NAB data directory ---------------------------------------------------------------


def _parse_time(s: str) -> float:
    """Naive timestamps (NAB's) are read as UTC, so results do not depend on the machine's zone."""
    d = datetime.fromisoformat(s.strip())
    if d.tzinfo is None:
        d = d.replace(tzinfo=timezone.utc)
    return d.timestamp()


def _parse_value(s: str) -> float:
    try:
        return float(s)
    except ValueError:
        return math.nan


def load_file(path: Path, name: str, window_limits: Sequence[Sequence[str]]) -> LabelledFile:
    """Read ``timestamp,value`` rows and turn window limits into row ranges.

    Timestamps are compared as NAB compares them (exact equality after parsing); a limit that is no
    row's timestamp is an error here, where NAB would silently never enter the window.
    """
    with path.open(newline="") as fh:
        reader = csv.reader(fh)
        next(reader, None)
        rows = [r for r in reader if r]
    t = np.array([_parse_time(r[0]) for r in rows], dtype=float)
    x = np.array([_parse_value(r[1]) if len(r) > 1 else math.nan for r in rows], dtype=float)
    first: dict[float, int] = {}
    for i, ti in enumerate(t.tolist()):
        first.setdefault(ti, i)
    windows = []
    for a, b in window_limits:
        ta, tb = _parse_time(a), _parse_time(b)
        if ta not in first or tb not in first:
            raise ValueError(f"{name}: window {a} .. {b} does not start and end on a row's timestamp")
        windows.append((first[ta], first[tb]))
    windows.sort()
    return LabelledFile(name=name, timestamps=t, values=x, windows=tuple(windows))


def load_corpus(data_dir: Path, corpus: str = "realTraffic") -> list[LabelledFile]:
    """Read ``<data_dir>/<corpus>/*.csv`` with ``<data_dir>/<corpus>_windows.json``.

    The windows file may also be NAB's full ``combined_windows.json`` (keys ``corpus/file.csv``).
    """
    labels_path = data_dir / f"{corpus}_windows.json"
    if not labels_path.is_file():
        labels_path = data_dir / "labels" / "combined_windows.json"
    labels = json.loads(labels_path.read_text())
    files = []
    for key in sorted(labels):
        if not key.startswith(f"{corpus}/"):
            continue
        path = data_dir / key
        if not path.is_file():
            path = data_dir / "data" / key
        files.append(load_file(path, key, labels[key]))
    if not files:
        raise FileNotFoundError(f"no labelled {corpus} files under {data_dir}")
    return files


# --- a corpus the detectors have never seen: synthetic traffic with injected incidents ---------


def synthetic_corpus(seed: int = 7, n_series: int = 6, days: int = 28, step_s: float = 300.0) -> list[LabelledFile]:
    """Seeded traffic-like series with labelled injected anomalies, windows sized as NAB sizes
    them (10% of the file shared among its anomalies, centred on each onset).

    Each series is a speed, occupancy or travel-time sensor: a weekday/weekend daily profile with
    rush hours, multiplicative noise, dropped readings, and three to four incidents drawn from
    jam (speed halves / occupancy and travel time triple for 30-120 min), spike (one reading
    x5), level shift (recalibration, +-30% for the rest of the file) and dip to zero (a closure,
    1-3 h). None of it was used to choose hyper-parameters.
    """
    rng = np.random.default_rng(seed)
    files = []
    t0 = 1_735_689_600.0  # 2025-01-01 00:00 UTC
    n = int(days * 86400 / step_s)
    kinds = ("speed", "occupancy", "travel_time")
    for s in range(n_series):
        kind = kinds[s % 3]
        t = t0 + np.arange(n) * step_s + rng.uniform(-20, 20, n)
        t.sort()
        hour = (t % 86400) / 3600.0
        weekday = ((t // 86400 + 3) % 7) < 5  # 2025-01-01 is a Wednesday
        rush = np.exp(-0.5 * ((hour - 8) / 1.2) ** 2) + np.exp(-0.5 * ((hour - 17) / 1.5) ** 2)
        load = 0.15 + 0.55 * rush * np.where(weekday, 1.0, 0.4) + 0.25 * np.exp(-0.5 * ((hour - 13) / 3) ** 2)
        noise = rng.normal(0, 0.08, n)
        if kind == "speed":
            x = 95 * (1 - 0.45 * load) * (1 + noise)
        elif kind == "occupancy":
            x = 30 * load * (1 + 2 * noise)
        else:
            x = 120 * (1 + 2.5 * load**2) * np.exp(rng.normal(0, 0.15, n))
        prob = int(probation_length(n))
        n_anom = int(rng.integers(3, 5))
        onsets = np.sort(rng.choice(np.arange(prob + 200, n - 200), n_anom, replace=False))
        while np.any(np.diff(onsets) < 0.1 * n / n_anom + 50):
            onsets = np.sort(rng.choice(np.arange(prob + 200, n - 200), n_anom, replace=False))
        for i in onsets:
            what = rng.choice(["jam", "spike", "shift", "closure"])
            if what == "jam":
                m = int(rng.integers(6, 24))
                x[i : i + m] = x[i : i + m] * (0.5 if kind == "speed" else 3.0)
            elif what == "spike":
                x[i] = x[i] * (0.2 if kind == "speed" else 5.0)
            elif what == "shift":
                x[i:] = x[i:] * rng.choice([0.7, 1.3])
            else:
                m = int(rng.integers(12, 36))
                x[i : i + m] = 0.0
        keep = rng.random(n) > 0.03  # dropped readings
        keep[onsets] = True
        index = np.cumsum(keep) - 1
        t, x = t[keep], np.maximum(x[keep], 0.0)
        width = int(0.1 * len(t) / n_anom)
        windows = []
        for i in onsets:
            c = int(index[i])
            windows.append((max(c - width // 2, 0), min(c + width // 2, len(t) - 1)))
        files.append(LabelledFile(name=f"synthetic/{kind}_{s}.csv", timestamps=np.round(t), values=np.round(x, 2), windows=tuple(windows)))
    return files


def score_at(
    files: Sequence[LabelledFile], scores: Sequence[np.ndarray], threshold: float, profile: CostProfile = STANDARD
) -> CorpusResult:
    """Score at a threshold fixed elsewhere (e.g. the one chosen on realTraffic): the honest
    check that a detector and its threshold carry over to data they were not tuned on."""
    weights = [file_weights(f.name, len(f.timestamps), f.windows, profile) for f in files]
    results = [score_file(w, s, threshold, profile) for w, s in zip(weights, scores)]
    raw = sum(r.score for r in results)
    null_raw, perfect_raw = _baselines(weights, profile)
    return CorpusResult(
        threshold=threshold,
        raw=raw,
        normalised=normalise(raw, null_raw, perfect_raw),
        null_raw=null_raw,
        perfect_raw=perfect_raw,
        files=results,
    )
