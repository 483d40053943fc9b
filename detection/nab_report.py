"""The issue-14 table: every registered detector on the NAB development set and on realTraffic.

``leitstand bench nab-table [--data-dir DIR] [--grid]`` prints what :func:`detector_table` returns:
per detector the one-threshold score of the set (in sample), the leave-one-category-out
cross-validated score (threshold chosen on the other categories), realTraffic on its own, and
the per-category scores at the set's threshold; the null and random baselines of the same run.
With ``--grid`` the general detector's constants are cross-validated too: each fold chooses, on
the other three categories, among the variants of ``ADAPTIVE_GRID`` *and* the threshold, and
again among those of ``SHIFT_GRID`` (whether and how slowly to watch for a shift of level, and how
fast the tails learn).

``leitstand bench nab --set dev|realTraffic|FILE_LIST`` prints :func:`set_report` for one detector.
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from . import nab, nab_sets
from .nab import LabelledFile

#: the variants the cross-validation chooses among (docs/detection.md, "A general detector")
ADAPTIVE_GRID: dict[str, tuple[Any, ...]] = {
    "floor_frac": (0.05, 0.1, 0.2),
    "episode_rows": (50.0, 100.0, 150.0, 250.0),
}

#: the wider grid: each fold also chooses the slow-shift memory (0 = off; ``adaptive`` uses 256)
#: and the tails' excess cap (3 = the default detector's, 5 = ``adaptive``'s); 32 variants
SHIFT_GRID: dict[str, tuple[Any, ...]] = {
    "shift_memory": (0.0, 256.0, 512.0, 1024.0),
    "tail_cap": (3.0, 5.0),
    "episode_rows": (50.0, 100.0, 150.0, 250.0),
}

#: published results rescored on exactly these subsets (issue 14)
PUBLISHED_DEV = {"ARTime": 72.6, "CAD OSE": 68.7, "Numenta HTM": 66.2, "KNN CAD": 44.9, "random": 28.5}


def run_detector(factory: Any, files: Sequence[LabelledFile]) -> tuple[list[np.ndarray], float]:
    """Scores of a fresh detector per file (score then learn each reading) and µs per reading."""
    out = []
    rows = 0
    started = time.perf_counter()
    for f in files:
        det = factory()
        score, learn = det.score_one, det.learn_one
        s = np.empty(len(f.timestamps))
        for i, (t, x) in enumerate(zip(f.timestamps.tolist(), f.values.tolist())):
            s[i] = score(t, x)
            learn(t, x)
        out.append(s)
        rows += len(s)
    return out, (time.perf_counter() - started) / max(rows, 1) * 1e6


def set_report(files: Sequence[LabelledFile], scores: Sequence[np.ndarray], random_seeds: int = 10) -> dict[str, Any]:
    """What ``bench nab --set`` prints for one detector: one-threshold score, baselines,
    per-category scores, and the threshold cross-validated by category (when there are two or more)."""
    out = nab_sets.evaluate(files, scores, random_seeds=random_seeds)
    if len({nab_sets.category_of(f.name) for f in files}) >= 2:
        out["cross_validated_by_category"] = nab_sets.cross_validate(files, {"as is": scores}).to_json()
    return out


def _grid_variants(grid: dict[str, tuple[Any, ...]]) -> list[dict[str, Any]]:
    keys = list(grid)
    return [dict(zip(keys, values)) for values in itertools.product(*grid.values())]


def adaptive_grid_cv(files: Sequence[LabelledFile], grid: dict[str, tuple[Any, ...]] | None = None) -> dict[str, Any]:
    """Nested choice: per held-out category, the variant and threshold best on the other categories."""
    from .adaptive import AdaptiveDetector

    cands = {}
    for kw in _grid_variants(ADAPTIVE_GRID if grid is None else grid):
        cands[json.dumps(kw, sort_keys=True)] = run_detector(lambda kw=kw: AdaptiveDetector(**kw), files)[0]
    name, th, in_sample = nab_sets.choose_in_sample(files, cands)
    return {
        "variants": len(cands),
        "best_in_sample": {"variant": json.loads(name), "threshold": th, "score": round(in_sample, 2)},
        "cross_validated": nab_sets.cross_validate(files, cands).to_json(),
    }


def detector_table(data_dir: Path, detectors: Sequence[str] | None = None, grid: bool = False) -> dict[str, Any]:
    from .registry import DETECTOR_NAMES, make_detector

    dev = nab_sets.load_set(data_dir, "dev")
    traffic = nab_sets.load_set(data_dir, "realTraffic")
    table: dict[str, Any] = {}
    for name in detectors or DETECTOR_NAMES:
        dev_scores, us = run_detector(lambda name=name: make_detector(name), dev)
        ev = nab_sets.evaluate(dev, dev_scores, random_seeds=0)
        cv = nab_sets.cross_validate(dev, {name: dev_scores})
        by_name = {f.name: s for f, s in zip(dev, dev_scores)}
        missing = [f for f in traffic if f.name not in by_name]
        by_name.update(zip((f.name for f in missing), run_detector(lambda name=name: make_detector(name), missing)[0]))
        rt = nab.score_corpus(traffic, [by_name[f.name] for f in traffic])
        table[name] = {
            "dev_in_sample": ev["score"],
            "dev_threshold": ev["threshold"],
            "dev_cross_validated_by_category": round(cv.score, 2),
            "realTraffic": round(rt.normalised, 2),
            "per_category_at_dev_threshold": {k: v["score"] for k, v in ev["per_category"].items()},
            "per_category_fp_rows": {k: v["fp_rows"] for k, v in ev["per_category"].items()},
            "held_out_category_scores": {k: v["held_out_score"] for k, v in cv.to_json()["folds"].items()},
            "us_per_reading_in_this_run": round(us, 1),
        }
    randoms = nab_sets.random_baseline(dev)
    out: dict[str, Any] = {
        "benchmark": "NAB standard profile (tp 1, fp 0.11, fn 1), one threshold per set",
        "dev_files": len(dev),
        "dev_windows": sum(len(f.windows) for f in dev),
        "baselines_dev": {"null": 0.0, "random_mean_of_10_seeds": round(float(np.mean(randoms)), 2)},
        "published_dev": PUBLISHED_DEV,
        "detectors": table,
    }
    if grid:
        out["adaptive_constants_cross_validated"] = adaptive_grid_cv(dev)
        out["adaptive_shift_cap_episode_cross_validated"] = adaptive_grid_cv(dev, SHIFT_GRID)
    return out
