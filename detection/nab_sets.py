"""Named NAB sets, per-category scores and leave-one-category-out cross-validation.

``detection.nab`` scores one corpus with one threshold; this module adds what a fair comparison
across *kinds* of series needs (issue 14):

* ``load_set(data_dir, which)``: ``"dev"`` (the files of ``dev_windows.json``), ``"realTraffic"``,
  or an explicit list of ``category/file.csv`` names (or a path to a text file listing them, one a
  line), windows looked up in every ``*_windows.json`` / ``labels/combined_windows.json`` found.
* ``evaluate(files, scores)``: the NAB score with one threshold for the whole set, the null and
  random baselines in the same run, and each category's score **at that one threshold**.
* ``cross_validate(files, candidates)``: leave one category out; on the other categories choose
  the candidate (a detector variant: its constants) and the threshold with the best NAB score,
  then score the held-out category with them. The held-out raw scores are pooled and normalised
  with the whole set's null and perfect scores, so the figure is comparable to the in-sample one.

Everything is a pure function of arrays (no detector is run here), so the unit tests build tiny
labelled series and need no NAB data.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from . import nab
from .nab import STANDARD, CostProfile, LabelledFile

NAMED_SETS = ("dev", "realTraffic")


def category_of(name: str) -> str:
    """``realKnownCause/x.csv`` -> ``realKnownCause`` (a bare file name is its own category)."""
    return name.split("/", 1)[0] if "/" in name else name


def _all_labels(data_dir: Path) -> dict[str, list[list[str]]]:
    labels: dict[str, list[list[str]]] = {}
    candidates = sorted(data_dir.glob("*_windows.json")) + [data_dir / "labels" / "combined_windows.json"]
    for path in candidates:
        if path.is_file():
            for key, wins in json.loads(path.read_text()).items():
                labels.setdefault(key, wins)
    return labels


def set_names(data_dir: Path, which: str | Sequence[str]) -> list[str]:
    """The ``category/file.csv`` names of a set: ``dev``, ``realTraffic``, a list, or a list file."""
    if isinstance(which, str):
        if which == "dev":
            return sorted(json.loads((data_dir / "dev_windows.json").read_text()))
        if which in NAMED_SETS or (data_dir / f"{which}_windows.json").is_file():
            return sorted(k for k in _all_labels(data_dir) if category_of(k) == which)
        path = Path(which)
        if path.is_file():
            return [ln.strip() for ln in path.read_text().splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
        return [n.strip() for n in which.split(",") if n.strip()]
    return list(which)


def load_set(data_dir: Path, which: str | Sequence[str]) -> list[LabelledFile]:
    """Read a set's files with their windows (``FileNotFoundError``/``KeyError`` when missing)."""
    names = set_names(data_dir, which)
    if not names:
        raise FileNotFoundError(f"set {which!r} names no files under {data_dir}")
    labels = _all_labels(data_dir)
    files = []
    unknown = [key for key in names if key not in labels]
    if unknown:
        where = f"a labelled NAB file (category/name.csv) in {data_dir}/*_windows.json"
        if len(unknown) == len(names) > 3:  # not a list of NAB names at all: its lines are not echoed
            shown = f"none of its {len(names)} lines is {where}"
        else:
            more = f" and {len(unknown) - 3} more" if len(unknown) > 3 else ""
            shown = ", ".join(repr(k[:60]) for k in unknown[:3]) + more + f": not {where}"
        raise KeyError(f"{shown}; a set is dev, a category such as realTraffic, a comma-separated list of files or a file listing them")
    for key in names:
        path = data_dir / key
        if not path.is_file():
            path = data_dir / "data" / key
        files.append(nab.load_file(path, key, labels[key]))
    return files


# --- scoring one set ---------------------------------------------------------------------------


def _weights(files: Sequence[LabelledFile], profile: CostProfile) -> list[nab.FileWeights]:
    return [nab.file_weights(f.name, len(f.timestamps), f.windows, profile) for f in files]


@dataclass(frozen=True)
class AtThreshold:
    raw: float
    null_raw: float
    perfect_raw: float
    normalised: float | None  # None when the files have no window (null = perfect = 0)
    files: list[nab.FileResult]


def score_at(files: Sequence[LabelledFile], scores: Sequence[np.ndarray], threshold: float, profile: CostProfile = STANDARD) -> AtThreshold:
    """``nab.score_at`` that also accepts files without windows (only false positives count there)."""
    weights = _weights(files, profile)
    results = [nab.score_file(w, s, threshold, profile) for w, s in zip(weights, scores)]
    raw = sum(r.score for r in results)
    null_raw, perfect_raw = nab._baselines(weights, profile)
    norm = None if perfect_raw == null_raw else nab.normalise(raw, null_raw, perfect_raw)
    return AtThreshold(raw, null_raw, perfect_raw, norm, results)


def per_category(
    files: Sequence[LabelledFile], scores: Sequence[np.ndarray], threshold: float, profile: CostProfile = STANDARD
) -> dict[str, dict[str, Any]]:
    """Each category's score at ``threshold`` (the set's one threshold): normalised score (``None``
    for a category without windows), raw score, windows found and false-positive rows."""
    out: dict[str, dict[str, Any]] = {}
    for cat in sorted({category_of(f.name) for f in files}):
        idx = [i for i, f in enumerate(files) if category_of(f.name) == cat]
        fs, ss = [files[i] for i in idx], [scores[i] for i in idx]
        r = score_at(fs, ss, threshold, profile)
        out[cat] = {
            "score": None if r.normalised is None else round(r.normalised, 2),
            "raw": round(r.raw, 4),
            "files": len(fs),
            "windows_detected": f"{sum(x.windows_detected for x in r.files)}/{sum(x.windows for x in r.files)}",
            "fp_rows": sum(x.fp for x in r.files),
        }
    return out


def random_baseline(files: Sequence[LabelledFile], seeds: int = 10, profile: CostProfile = STANDARD) -> list[float]:
    """NAB's random detector (uniform scores), one normalised score per seed, each with its own threshold."""
    return [
        nab.score_corpus(files, [nab.random_scores(f, seed * 1000 + i) for i, f in enumerate(files)], profile).normalised
        for seed in range(seeds)
    ]


def evaluate(
    files: Sequence[LabelledFile], scores: Sequence[np.ndarray], profile: CostProfile = STANDARD, random_seeds: int = 10
) -> dict[str, Any]:
    """One threshold for the set (NAB's sweep), the baselines of the same run, per-category scores."""
    main = nab.score_corpus(files, scores, profile)
    null = nab.score_corpus(files, [nab.null_scores(f) for f in files], profile)
    randoms = random_baseline(files, random_seeds, profile) if random_seeds else []
    return {
        "score": round(main.normalised, 2),
        "threshold": main.threshold,
        "raw": round(main.raw, 4),
        "null_raw": main.null_raw,
        "perfect_raw": main.perfect_raw,
        "baselines": {
            "null": round(null.normalised, 2),
            "random_mean": round(float(np.mean(randoms)), 2) if randoms else None,
            "random_range": [round(min(randoms), 2), round(max(randoms), 2)] if randoms else None,
        },
        "per_category": per_category(files, scores, main.threshold, profile),
        "files": len(files),
        "windows": sum(len(f.windows) for f in files),
    }


# --- leave one category out -------------------------------------------------------------------

#: training scores this close are a tie (they differ only by float rounding of the same sums)
_TIE = 1e-9


@dataclass(frozen=True)
class Fold:
    held_out: str
    candidate: str  # the variant chosen on the other categories (the first of ``tied``)
    threshold: float  # the threshold chosen on the other categories
    train_score: float  # its normalised score there
    held_out_raw: float  # mean over the tied variants: the expectation of a random tie-break
    held_out_score: float | None  # normalised within the held-out category (None: no windows)
    tied: tuple[str, ...] = ()  # every variant with exactly the best training score
    held_out_raw_range: tuple[float, float] = (0.0, 0.0)  # worst and best tie-break


@dataclass(frozen=True)
class CrossValidation:
    score: float  # pooled held-out raw, normalised with the whole set's null and perfect
    folds: tuple[Fold, ...]
    score_range: tuple[float, float] = (0.0, 0.0)  # every fold's worst / best tie-break

    def to_json(self) -> dict[str, Any]:
        return {
            "score": round(self.score, 2),
            "score_over_tie_breaks": [round(self.score_range[0], 2), round(self.score_range[1], 2)],
            "folds": {
                f.held_out: {
                    "candidate": f.candidate,
                    "tied": list(f.tied),
                    "threshold": f.threshold,
                    "train_score": round(f.train_score, 2),
                    "held_out_score": None if f.held_out_score is None else round(f.held_out_score, 2),
                    "held_out_raw": round(f.held_out_raw, 4),
                    "held_out_raw_over_tie_breaks": [round(v, 4) for v in f.held_out_raw_range],
                }
                for f in self.folds
            },
        }


def cross_validate(
    files: Sequence[LabelledFile], candidates: Mapping[str, Sequence[np.ndarray]], profile: CostProfile = STANDARD
) -> CrossValidation:
    """Leave-one-category-out: for each category, pick the candidate and threshold that score best
    (NAB-normalised, one threshold) on the *other* categories, then score the held-out one with them.

    ``candidates`` maps a variant's name to its scores, one array per file in ``files`` order; a
    single candidate cross-validates the threshold alone.

    Variants that tie exactly on the training categories (they behave identically there, so the
    training data cannot tell them apart) are all scored on the held-out one and their raw scores
    averaged: the expectation of a random tie-break. Taking the first one would make the figure
    depend on the order the grid is written in; ``score_range`` keeps the worst and best
    tie-break beside it.
    """
    if not candidates:
        raise ValueError("no candidates")
    cats = sorted({category_of(f.name) for f in files})
    if len(cats) < 2:
        raise ValueError("cross-validation by category needs at least two categories")
    weights = _weights(files, profile)
    folds = []
    pooled = worst = best_pooled = 0.0
    for cat in cats:
        train = [i for i, f in enumerate(files) if category_of(f.name) != cat]
        test = [i for i, f in enumerate(files) if category_of(f.name) == cat]
        tw = [weights[i] for i in train]
        null_raw, perfect_raw = nab._baselines(tw, profile)
        trained: list[tuple[float, str, float]] = []
        for name, scores in candidates.items():
            th, raw = nab.best_threshold(tw, [scores[i] for i in train], profile)
            norm = nab.normalise(raw, null_raw, perfect_raw) if perfect_raw != null_raw else raw
            trained.append((norm, name, th))
        top = max(t[0] for t in trained)
        tied = [(name, th) for norm, name, th in trained if norm >= top - _TIE]
        held = [files[i] for i in test]
        results = [score_at(held, [candidates[name][i] for i in test], th, profile) for name, th in tied]
        raws = [r.raw for r in results]
        mean_raw = float(np.mean(raws))
        pooled += mean_raw
        worst += min(raws)
        best_pooled += max(raws)
        first = results[0]
        folds.append(
            Fold(
                held_out=cat,
                candidate=tied[0][0],
                threshold=tied[0][1],
                train_score=top,
                held_out_raw=mean_raw,
                held_out_score=None if first.normalised is None else float(np.mean([r.normalised for r in results])),
                tied=tuple(name for name, _ in tied),
                held_out_raw_range=(min(raws), max(raws)),
            )
        )
    null_all, perfect_all = nab._baselines(weights, profile)
    return CrossValidation(
        score=nab.normalise(pooled, null_all, perfect_all),
        folds=tuple(folds),
        score_range=(nab.normalise(worst, null_all, perfect_all), nab.normalise(best_pooled, null_all, perfect_all)),
    )


def choose_in_sample(
    files: Sequence[LabelledFile], candidates: Mapping[str, Sequence[np.ndarray]], profile: CostProfile = STANDARD
) -> tuple[str, float, float]:
    """(candidate, threshold, normalised score) best on all of ``files``: the in-sample figure."""
    best: tuple[str, float, float] | None = None
    for name, scores in candidates.items():
        r = nab.score_corpus(files, scores, profile)
        if best is None or r.normalised > best[2]:
            best = (name, r.threshold, r.normalised)
    assert best is not None
    return best
