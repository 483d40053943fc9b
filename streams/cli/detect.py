"""``leitstand detect`` (score a CSV stream, at the root) and the detection benchmarks that
``leitstand bench nab`` / ``bench detectors`` run (:func:`nab_benchmark`, :func:`detector_benchmark`).

The detectors live in the pure ``detection`` package; this module only reads and writes files,
turns operator mistakes into one-line errors and builds benchmark JSON. ``detection`` (and numpy)
are imported inside the functions, so ``leitstand --help`` stays quick.
"""

from __future__ import annotations

import csv
import math
import os
import random
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ..errors import CliError
from ..timeparse import parse_time
from .common import err, find_shared, input_file, not_an_input

if TYPE_CHECKING:
    from detection.nab import CorpusResult, LabelledFile

#: mounted without a name: ``detect`` sits at the root
app = typer.Typer()


def parse_value(text: str) -> float:
    """A reading; anything that is not a number is missing (NaN), which the detectors score 0."""
    try:
        return float(text)
    except ValueError:
        return math.nan


def detector_name(value: str) -> str:
    """The ``--detector`` option: a name from the detection registry."""
    from detection.registry import ALIASES, DETECTOR_NAMES

    value = ALIASES.get(value, value)
    if value not in DETECTOR_NAMES:
        raise typer.BadParameter(f"unknown detector {value!r}; choose one of {', '.join(DETECTOR_NAMES)}")
    return value


def find_nab_dir(explicit: Path | None) -> Path:
    """The NAB data directory: as given, else ``../shared/data/nab`` (see :func:`common.find_shared`)."""
    return find_shared(
        "data/nab",
        explicit,
        lambda candidate: (candidate / "realTraffic_windows.json").is_file(),
        "NAB data",
        "pass --data-dir DIR with realTraffic/ and realTraffic_windows.json",
    )


@app.command("detect")
def detect(
    input_csv: Annotated[Path, typer.Argument(metavar="INPUT.csv", help="CSV with a header row.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Where timestamp,value,anomaly_score is written.")],
    time_col: Annotated[str, typer.Option(help="Column with ISO 8601 times or POSIX seconds.")] = "timestamp",
    value_col: Annotated[str, typer.Option(help="Column with the readings.")] = "value",
    detector: Annotated[
        str,
        typer.Option(
            callback=detector_name,
            help="default (general: learns each series), traffic (tuned to traffic detector series), "
            "seasonal, level_shift, sensor_fault or zscore.",
        ),
    ] = "default",
) -> None:
    """Score each row of a CSV with a streaming detector (0..1).

    One output row per input row, in order; unparseable times or values score 0.
    """
    import numpy as np

    from detection.registry import score_series

    not_an_input(output, input_csv)
    raw_times, raw_values = read_columns(input_csv, time_col, value_col)
    times = np.array([parse_time(text) for text in raw_times], dtype=float)
    values = np.array([parse_value(text) for text in raw_values], dtype=float)
    scores = score_series(detector, times, values)
    try:
        with output.open("w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(["timestamp", "value", "anomaly_score"])
            for raw_time, raw_value, score in zip(raw_times, raw_values, scores.tolist()):
                writer.writerow([raw_time, raw_value, f"{score:.6f}"])
    except OSError as exc:
        raise CliError(f"cannot write {output}: {exc.strerror or exc}") from None
    err.print(f"scored {len(raw_times)} rows with {detector!r} -> {output}")


def read_columns(input_csv: Path, time_col: str, value_col: str) -> tuple[list[str], list[str]]:
    """The raw text of the time and value columns, one entry per row (a short row gives "")."""
    try:
        return _read_columns(input_file(input_csv), time_col, value_col)
    except OSError as exc:
        raise CliError(f"cannot read {input_csv}: {exc.strerror or exc}") from None


def _read_columns(input_csv: Path, time_col: str, value_col: str) -> tuple[list[str], list[str]]:
    with input_csv.open(newline="", encoding="utf-8-sig", errors="replace") as fh:
        reader = csv.reader(fh)
        header = next(reader, None)
        if not header:
            raise CliError(f"{input_csv} is empty (a header row with {time_col!r} and {value_col!r} is needed)")
        header = [name.strip() for name in header]
        missing = [column for column in (time_col, value_col) if column not in header]
        if missing:
            raise CliError(f"{input_csv} has no column {missing[0]!r} (columns: {', '.join(header)})")
        time_at, value_at = header.index(time_col), header.index(value_col)
        raw_times: list[str] = []
        raw_values: list[str] = []
        for row in reader:
            raw_times.append(row[time_at] if time_at < len(row) else "")
            raw_values.append(row[value_at] if value_at < len(row) else "")
    return raw_times, raw_values


# --- the benchmarks (plain functions, so tests and scripts can call them) -----------------------


def _run_all(detector: str, files: list[LabelledFile]) -> list[Any]:
    from detection.registry import score_series

    return [score_series(detector, f.timestamps, f.values) for f in files]


def _corpus_json(result: CorpusResult) -> dict[str, Any]:
    return {
        "score": round(result.normalised, 2),
        "raw": round(result.raw, 4),
        "threshold": result.threshold,
        "files": {
            r.name: {
                "score": round(r.score, 4),
                "windows": r.windows,
                "windows_detected": r.windows_detected,
                "first_detection_rows_into_window": r.first_detection_rows,
                "tp": r.tp,
                "fp": r.fp,
                "fn": r.fn,
                "tn": r.tn,
            }
            for r in result.files
        },
    }


def nab_benchmark(data_dir: Path, detector: str = "default", compare: bool = True) -> dict[str, Any]:
    """The NAB realTraffic score of ``detector`` with one threshold, its baselines, a check on
    unseen synthetic series and (with ``compare``) every other registered detector."""
    from detection import nab

    files = nab.load_corpus(data_dir)
    started = time.perf_counter()
    scored = nab.score_corpus(files, _run_all(detector, files))
    elapsed = time.perf_counter() - started
    result: dict[str, Any] = {
        "benchmark": "NAB realTraffic, standard profile (tp 1, fp 0.11, fn 1), one threshold for all files",
        "detector": detector,
        **_corpus_json(scored),
        "windows": sum(len(f.windows) for f in files),
        "rows": int(sum(len(f.timestamps) for f in files)),
        "detect_seconds": round(elapsed, 2),
        "baselines": _nab_baselines(files),
        "unseen_synthetic": _unseen_synthetic(detector, scored.threshold),
    }
    if compare:
        result["other_detectors"] = _other_detectors(files, detector)
    return result


def _nab_baselines(files: list[LabelledFile]) -> dict[str, Any]:
    """The null, perfect and random detectors on the same corpus, and the published scores."""
    from detection import nab

    null = nab.score_corpus(files, [nab.null_scores(f) for f in files])
    perfect = nab.score_corpus(files, [nab.perfect_scores(f) for f in files])
    randoms = [
        nab.score_corpus(files, [nab.random_scores(f, seed * 1000 + i) for i, f in enumerate(files)]).normalised for seed in range(10)
    ]
    return {
        "null": round(null.normalised, 2),
        "perfect": round(perfect.normalised, 2),
        "random_mean_of_10_seeds": round(sum(randoms) / len(randoms), 2),
        "random_range": [round(min(randoms), 2), round(max(randoms), 2)],
        "published": {"CAD OSE": 91.2, "ARTime": 86.9, "Numenta HTM": 82.5, "random": 15.5},
    }


def _unseen_synthetic(detector: str, threshold: float) -> dict[str, Any]:
    """The detector on series it was not tuned on, at the realTraffic threshold and at its own."""
    from detection import nab

    synthetic = nab.synthetic_corpus()
    scores = _run_all(detector, synthetic)
    at_fixed = nab.score_at(synthetic, scores, threshold)
    at_own = nab.score_corpus(synthetic, scores)
    return {
        "what": "6 seeded traffic-like series with injected jams, spikes, level shifts, closures (detection.nab.synthetic_corpus)",
        "score_at_realTraffic_threshold": round(at_fixed.normalised, 2),
        "score_with_own_threshold": round(at_own.normalised, 2),
        "windows_detected_at_realTraffic_threshold": (
            f"{sum(r.windows_detected for r in at_fixed.files)}/{sum(r.windows for r in at_fixed.files)}"
        ),
        "false_positives_at_realTraffic_threshold": sum(r.fp for r in at_fixed.files),
    }


def _other_detectors(files: list[LabelledFile], detector: str) -> dict[str, Any]:
    """Every other registered detector: its realTraffic score and its unseen-series score."""
    from detection import nab
    from detection.registry import DETECTOR_NAMES

    synthetic = nab.synthetic_corpus()
    others = {}
    for name in DETECTOR_NAMES:
        if name == detector:
            continue
        scored = nab.score_corpus(files, _run_all(name, files))
        synthetic_scores = _run_all(name, synthetic)
        others[name] = {
            "score": round(scored.normalised, 2),
            "threshold": scored.threshold,
            "unseen_synthetic_at_its_threshold": round(nab.score_at(synthetic, synthetic_scores, scored.threshold).normalised, 2),
        }
    return others


def detector_benchmark(points: int = 200_000, repeat: int = 3) -> dict[str, Any]:
    """Best-of-``repeat`` µs per reading; baselines: a no-op call pair and a plain EW z-score loop."""
    from detection.registry import DETECTOR_NAMES

    rng = random.Random(1)
    times = [1_735_689_600.0 + 300.0 * i for i in range(points)]
    values = [50.0 + 20.0 * math.sin(2 * math.pi * i / 288) + rng.gauss(0, 5) for i in range(points)]

    def timed(run: Callable[[], None]) -> float:
        best = math.inf
        for _ in range(repeat):
            start = time.perf_counter()
            run()
            best = min(best, time.perf_counter() - start)
        return best / points * 1e6

    noop_us = timed(partial(_noop_loop, times, values))
    zscore_us = timed(partial(_plain_zscore_loop, values))
    detectors = {}
    for name in DETECTOR_NAMES:
        us = timed(partial(_detector_loop, name, times, values))
        detectors[name] = {
            "us_per_point": round(us, 2),
            "x_noop_calls": round(us / noop_us, 1),
            "x_plain_zscore_loop": round(us / zscore_us, 1),
        }
    return {
        "points": points,
        "repeat": repeat,
        "cpu_count": os.cpu_count(),
        "baseline_noop_calls_us_per_point": round(noop_us, 3),
        "baseline_plain_zscore_loop_us_per_point": round(zscore_us, 3),
        "target_us_per_point": 20.0,
        "detectors": detectors,
    }


def _noop_loop(times: list[float], values: list[float]) -> None:
    """The cost of the loop and two calls per reading, with nothing inside them."""
    score = learn = lambda _t, _x: None  # noqa: E731
    for t, x in zip(times, values):
        score(t, x)
        learn(t, x)


def _plain_zscore_loop(values: list[float]) -> None:
    """The cheapest useful detector written inline: an exponentially weighted z-score."""
    mean = var = 0.0
    alpha = 1.0 / 288
    for x in values:
        _ = abs(x - mean) / math.sqrt(var + 1e-12)
        delta = x - mean
        mean += alpha * delta
        var = (1 - alpha) * (var + alpha * delta * delta)


def _detector_loop(name: str, times: list[float], values: list[float]) -> None:
    """A fresh detector scoring and learning every reading."""
    from detection.registry import make_detector

    detector = make_detector(name)
    score, learn = detector.score_one, detector.learn_one
    for t, x in zip(times, values):
        score(t, x)
        learn(t, x)


def nab_set_benchmark(data_dir: Path, which: str, detector: str = "default") -> dict[str, Any]:
    """One NAB set (``dev``, ``realTraffic``, a file list) scored with one threshold for
    ``detector``: baselines, per-category scores and the leave-one-category-out figure."""
    from detection import nab_sets
    from detection.nab_report import run_detector, set_report
    from detection.registry import make_detector

    try:
        files = nab_sets.load_set(data_dir, which)
    except (OSError, ValueError, LookupError) as exc:
        raise CliError(f"NAB set {which[:60]!r}: {exc.args[0] if exc.args else exc}") from None
    scores, us_per_reading = run_detector(lambda: make_detector(detector), files)
    return {"set": which, "detector": detector, "us_per_reading": round(us_per_reading, 1), **set_report(files, scores)}


def nab_table_benchmark(data_dir: Path, grid: bool = False) -> dict[str, Any]:
    """Every registered detector on the development set (in sample and cross-validated by
    category) and on realTraffic (docs/detection.md, "A general detector")."""
    from detection.nab_report import detector_table

    return detector_table(data_dir, grid=grid)
