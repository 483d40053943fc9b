"""``leitstand detect`` (score a CSV stream) and ``bench nab`` / ``bench detectors``.

The detectors live in the pure ``detection`` package; this module only reads and writes files,
turns operator mistakes into one-line errors and prints benchmark JSON. ``detection`` (and numpy)
are imported inside the commands, so ``leitstand --help`` stays quick.
"""

from __future__ import annotations

import csv
import json
import math
import os
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from ..errors import CliError as DetectError
from ..timeparse import parse_time  # one class, however the CLI module is loaded

REPO = Path(__file__).resolve().parents[2]


def parse_value(s: str) -> float:
    try:
        return float(s)
    except ValueError:
        return math.nan


def _detector_name(value: str) -> str:
    from detection.registry import DETECTOR_NAMES

    if value not in DETECTOR_NAMES:
        raise typer.BadParameter(f"unknown detector {value!r}; choose one of {', '.join(DETECTOR_NAMES)}")
    return value


def find_nab_dir(explicit: Path | None) -> Path:
    """The NAB data directory: as given, else ``../shared/data/nab`` from here or from the repo."""
    candidates = (
        [explicit]
        if explicit is not None
        else [
            Path.cwd().parent / "shared" / "data" / "nab",
            REPO.parent / "shared" / "data" / "nab",
        ]
    )
    for c in candidates:
        if c is not None and (c / "realTraffic_windows.json").is_file():
            return c
    looked = ", ".join(str(c) for c in candidates)
    raise DetectError(f"NAB data not found (looked in {looked}); pass --data-dir DIR with realTraffic/ and realTraffic_windows.json")


def register(app: typer.Typer, bench_app: typer.Typer) -> None:
    from .common import err

    @app.command("detect")
    def detect(
        input_csv: Annotated[Path, typer.Argument(metavar="INPUT.csv", help="CSV with a header row.")],
        output: Annotated[Path, typer.Option("--output", "-o", help="Where timestamp,value,anomaly_score is written.")],
        time_col: Annotated[str, typer.Option(help="Column with ISO 8601 times or POSIX seconds.")] = "timestamp",
        value_col: Annotated[str, typer.Option(help="Column with the readings.")] = "value",
        detector: Annotated[
            str,
            typer.Option(
                callback=_detector_name,
                help="default, seasonal, level_shift, sensor_fault or zscore.",
            ),
        ] = "default",
    ) -> None:
        """Score each row of a CSV with a streaming detector (0..1).

        One output row per input row, in order; unparseable times or values score 0.
        """
        import numpy as np

        from detection.registry import score_series

        if not input_csv.is_file():
            raise DetectError(f"no such file: {input_csv}")
        with input_csv.open(newline="", encoding="utf-8-sig", errors="replace") as fh:
            reader = csv.reader(fh)
            header = next(reader, None)
            if not header:
                raise DetectError(f"{input_csv} is empty (a header row with {time_col!r} and {value_col!r} is needed)")
            header = [h.strip() for h in header]
            missing = [c for c in (time_col, value_col) if c not in header]
            if missing:
                raise DetectError(f"{input_csv} has no column {missing[0]!r} (columns: {', '.join(header)})")
            ti, vi = header.index(time_col), header.index(value_col)
            raw_t: list[str] = []
            raw_x: list[str] = []
            for row in reader:
                raw_t.append(row[ti] if ti < len(row) else "")
                raw_x.append(row[vi] if vi < len(row) else "")
        t = np.array([parse_time(s) for s in raw_t], dtype=float)
        x = np.array([parse_value(s) for s in raw_x], dtype=float)
        scores = score_series(detector, t, x)
        try:
            with output.open("w", newline="") as fh:
                w = csv.writer(fh)
                w.writerow(["timestamp", "value", "anomaly_score"])
                for a, b, s in zip(raw_t, raw_x, scores.tolist()):
                    w.writerow([a, b, f"{s:.6f}"])
        except OSError as exc:
            raise DetectError(f"cannot write {output}: {exc.strerror or exc}") from None
        err.print(f"scored {len(raw_t)} rows with {detector!r} -> {output}")

    @bench_app.command("nab")
    def bench_nab(
        data_dir: Annotated[
            Path | None,
            typer.Option(
                help="NAB data: realTraffic/*.csv and realTraffic_windows.json (default: ../shared/data/nab).",
            ),
        ] = None,
        detector: Annotated[str, typer.Option(callback=_detector_name, help="Detector to score.")] = "default",
        compare: Annotated[bool, typer.Option(help="Also score every other registered detector.")] = True,
    ) -> None:
        """NAB realTraffic score with one threshold.

        Standard profile, with null/perfect/random baselines and an unseen check.
        """
        print(json.dumps(nab_benchmark(find_nab_dir(data_dir), detector, compare), indent=2))

    @bench_app.command("detectors")
    def bench_detectors(
        points: Annotated[int, typer.Option(min=1_000, help="Readings per detector.")] = 200_000,
        repeat: Annotated[int, typer.Option(min=1, max=10, help="Repetitions; the best is reported.")] = 3,
    ) -> None:
        """Microseconds per reading for each detector.

        Score + learn per point, against same-run baselines.
        """
        print(json.dumps(detector_benchmark(points, repeat), indent=2))


# --- the benchmarks (plain functions, so tests and scripts can call them) -----------------------


def _run_all(detector: str, files: list[Any]) -> list[Any]:
    from detection.registry import score_series

    return [score_series(detector, f.timestamps, f.values) for f in files]


def _corpus_json(result: Any) -> dict[str, Any]:
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
    from detection import nab
    from detection.registry import DETECTOR_NAMES

    files = nab.load_corpus(data_dir)
    started = time.perf_counter()
    main = nab.score_corpus(files, _run_all(detector, files))
    elapsed = time.perf_counter() - started
    null = nab.score_corpus(files, [nab.null_scores(f) for f in files])
    perfect = nab.score_corpus(files, [nab.perfect_scores(f) for f in files])
    randoms = [
        nab.score_corpus(files, [nab.random_scores(f, seed * 1000 + i) for i, f in enumerate(files)]).normalised for seed in range(10)
    ]
    synthetic = nab.synthetic_corpus()
    syn_scores = _run_all(detector, synthetic)
    syn_fixed = nab.score_at(synthetic, syn_scores, main.threshold)
    syn_own = nab.score_corpus(synthetic, syn_scores)
    out: dict[str, Any] = {
        "benchmark": "NAB realTraffic, standard profile (tp 1, fp 0.11, fn 1), one threshold for all files",
        "detector": detector,
        **_corpus_json(main),
        "windows": sum(len(f.windows) for f in files),
        "rows": int(sum(len(f.timestamps) for f in files)),
        "detect_seconds": round(elapsed, 2),
        "baselines": {
            "null": round(null.normalised, 2),
            "perfect": round(perfect.normalised, 2),
            "random_mean_of_10_seeds": round(sum(randoms) / len(randoms), 2),
            "random_range": [round(min(randoms), 2), round(max(randoms), 2)],
            "published": {"CAD OSE": 91.2, "ARTime": 86.9, "Numenta HTM": 82.5, "random": 15.5},
        },
        "unseen_synthetic": {
            "what": "6 seeded traffic-like series with injected jams, spikes, level shifts, closures (detection.nab.synthetic_corpus)",
            "score_at_realTraffic_threshold": round(syn_fixed.normalised, 2),
            "score_with_own_threshold": round(syn_own.normalised, 2),
            "windows_detected_at_realTraffic_threshold": (
                f"{sum(r.windows_detected for r in syn_fixed.files)}/{sum(r.windows for r in syn_fixed.files)}"
            ),
            "false_positives_at_realTraffic_threshold": sum(r.fp for r in syn_fixed.files),
        },
    }
    if compare:
        others = {}
        for name in DETECTOR_NAMES:
            if name == detector:
                continue
            r = nab.score_corpus(files, _run_all(name, files))
            s = _run_all(name, synthetic)
            others[name] = {
                "score": round(r.normalised, 2),
                "threshold": r.threshold,
                "unseen_synthetic_at_its_threshold": round(nab.score_at(synthetic, s, r.threshold).normalised, 2),
            }
        out["other_detectors"] = others
    return out


def detector_benchmark(points: int = 200_000, repeat: int = 3) -> dict[str, Any]:
    """Best-of-``repeat`` µs per reading; baselines: a no-op call pair and a plain EW z-score loop."""
    from detection.registry import DETECTOR_NAMES, make_detector

    rng = random.Random(1)
    t = [1_735_689_600.0 + 300.0 * i for i in range(points)]
    x = [50.0 + 20.0 * math.sin(2 * math.pi * i / 288) + rng.gauss(0, 5) for i in range(points)]

    def timed(run: Callable[[], None]) -> float:
        best = math.inf
        for _ in range(repeat):
            start = time.perf_counter()
            run()
            best = min(best, time.perf_counter() - start)
        return best / points * 1e6

    def noop() -> None:
        score = learn = lambda _t, _x: None  # noqa: E731
        for ti, xi in zip(t, x):
            score(ti, xi)
            learn(ti, xi)

    def plain_zscore() -> None:
        mean = var = 0.0
        a = 1.0 / 288
        for xi in x:
            _ = abs(xi - mean) / math.sqrt(var + 1e-12)
            d = xi - mean
            mean += a * d
            var = (1 - a) * (var + a * d * d)

    def detector_loop(name: str) -> Callable[[], None]:
        def run() -> None:
            d = make_detector(name)
            score, learn = d.score_one, d.learn_one
            for ti, xi in zip(t, x):
                score(ti, xi)
                learn(ti, xi)

        return run

    noop_us = timed(noop)
    z_us = timed(plain_zscore)
    detectors = {}
    for name in DETECTOR_NAMES:
        us = timed(detector_loop(name))
        detectors[name] = {"us_per_point": round(us, 2), "x_noop_calls": round(us / noop_us, 1), "x_plain_zscore_loop": round(us / z_us, 1)}
    return {
        "points": points,
        "repeat": repeat,
        "cpu_count": os.cpu_count(),
        "baseline_noop_calls_us_per_point": round(noop_us, 3),
        "baseline_plain_zscore_loop_us_per_point": round(z_us, 3),
        "target_us_per_point": 20.0,
        "detectors": detectors,
    }
