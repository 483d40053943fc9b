"""NAB scoring on hand-built cases whose expected scores are derived by hand from NAB's rules.

The rules (NAB v1.1 ``sweeper.py``): ``scaledSigmoid(p) = 2 / (1 + e^(5p)) - 1 = tanh(-5p / 2)``;
a detection in a window at row i earns ``tanh(5 (b - i + 1) / (2 w)) / tanh(5 / 2)``; a detection
after a window earns ``fp * tanh(-5 |b - i| / (2 (w - 1)))``, before any window ``-fp``; an
undetected window costs ``fn``; probation is ``min(floor(0.15 n), 750)`` rows. ``tanh`` is used
here on purpose: it is not how the implementation writes the rule, so a slip in either shows.
No NAB data is needed (a user's clone has none).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from detection import nab

FP = 0.11
MAX_TP = math.tanh(2.5)


def labelled(n: int, windows: tuple[tuple[int, int], ...], name: str = "f.csv") -> nab.LabelledFile:
    return nab.LabelledFile(name=name, timestamps=np.arange(n, dtype=float) * 300.0, values=np.zeros(n), windows=windows)


def scores_at(n: int, hits: dict[int, float]) -> np.ndarray:
    s = np.zeros(n)
    for i, v in hits.items():
        s[i] = v
    return s


# one file of 20 rows: probation floor(0.15 * 20) = 3 rows, one window rows 10..14 (width 5)
N = 20
WIN = ((10, 14),)


def file_score(hits: dict[int, float], threshold: float = 0.5) -> float:
    w = nab.file_weights("f.csv", N, WIN)
    return nab.score_file(w, scores_at(N, hits), threshold).score


def test_scaled_sigmoid_landmarks() -> None:
    assert nab.scaled_sigmoid(-1.0) == pytest.approx(0.98661, abs=1e-5)
    assert nab.scaled_sigmoid(-0.5) == pytest.approx(0.84828, abs=1e-5)
    assert nab.scaled_sigmoid(0.0) == pytest.approx(0.0, abs=1e-12)
    assert nab.scaled_sigmoid(1.0) == pytest.approx(-0.98661, abs=1e-5)
    assert nab.scaled_sigmoid(3.5) == -1.0


def test_probation_is_fifteen_percent_capped_at_750_rows() -> None:
    assert nab.probation_length(20) == 3
    assert nab.probation_length(2500) == 375
    assert nab.probation_length(100_000) == 750


def test_first_row_of_a_window_earns_exactly_tp() -> None:
    assert file_score({10: 1.0}) == pytest.approx(1.0)


def test_later_detection_in_window_earns_less() -> None:
    # row 12: position -(14 - 12 + 1) / 5 = -0.6
    assert file_score({12: 1.0}) == pytest.approx(math.tanh(1.5) / MAX_TP)
    assert file_score({12: 1.0}) < file_score({11: 1.0}) < file_score({10: 1.0})


def test_only_the_best_detection_of_a_window_counts() -> None:
    assert file_score({10: 1.0, 11: 1.0, 14: 1.0}) == pytest.approx(1.0)


def test_missed_window_costs_fn() -> None:
    assert file_score({}) == pytest.approx(-1.0)


def test_false_positive_before_any_window_costs_fp() -> None:
    assert file_score({5: 1.0}) == pytest.approx(-1.0 - FP)


def test_false_positive_after_a_window_is_cheaper_the_closer_it_is() -> None:
    # row 16: |14 - 16| / (5 - 1) = 0.5; row 19: 5 / 4 = 1.25
    assert file_score({16: 1.0}) == pytest.approx(-1.0 + FP * math.tanh(-1.25))
    assert file_score({19: 1.0}) == pytest.approx(-1.0 + FP * math.tanh(-3.125))
    far = nab.file_weights("f.csv", 60, WIN)
    assert nab.score_file(far, scores_at(60, {40: 1.0}), 0.5).score == pytest.approx(-1.0 - FP)  # > 3 widths past


def test_probation_rows_are_not_scored() -> None:
    assert file_score({1: 1.0}) == pytest.approx(-1.0)
    r = nab.score_file(nab.file_weights("f.csv", N, WIN), scores_at(N, {1: 1.0, 12: 1.0}), 0.5)
    assert (r.tp, r.fp, r.fn, r.tn) == (1, 0, 4, 12)  # 17 scored rows, window of 5
    assert r.first_detection_rows == [2]


def test_detection_means_score_at_or_above_threshold() -> None:
    assert file_score({10: 0.5}, threshold=0.5) == pytest.approx(1.0)
    assert file_score({10: 0.49}, threshold=0.5) == pytest.approx(-1.0)


def test_sweep_picks_the_best_threshold_by_hand() -> None:
    # 0.9 on row 5 (fp before window), 0.8 on row 11 (in window), 0 elsewhere.
    # threshold 1.1: -1; 0.9: -1 - 0.11; 0.8: -0.11 + tanh(2) / tanh(2.5);
    # 0.0: every scored row: 1 (row 10) - 7 * 0.11 (rows 3..9) + 0.11 * sum(tanh(-5 k / 8), k = 1..5)
    f = labelled(N, WIN)
    s = scores_at(N, {5: 0.9, 11: 0.8})
    threshold, raw = nab.best_threshold([nab.file_weights(f.name, N, f.windows)], [s])
    at_08 = -FP + math.tanh(2.0) / MAX_TP
    at_0 = 1.0 - 7 * FP + FP * sum(math.tanh(-5 * k / 8) for k in range(1, 6))
    assert at_08 > max(-1.0, -1.0 - FP, at_0)
    assert threshold == 0.8
    assert raw == pytest.approx(at_08)


def test_one_threshold_serves_the_whole_corpus() -> None:
    # A alone is best at 0.8 (no fp); B's only hit is 0.3. Together: 0.8 -> 1 - 1 = 0,
    # 0.5 -> 1 - 0.11 - 1, 0.3 -> 1 - 0.11 + 1 = 1.89 (A's fp at 0.5 is paid for B's window).
    a = labelled(N, WIN, "a.csv")
    b = labelled(N, WIN, "b.csv")
    sa = scores_at(N, {10: 0.8, 5: 0.5})
    sb = scores_at(N, {10: 0.3})
    result = nab.score_corpus([a, b], [sa, sb])
    assert result.threshold == 0.3
    assert result.raw == pytest.approx(2.0 - FP)
    assert [r.score for r in result.files] == pytest.approx([1.0 - FP, 1.0])
    # toy files: the null detector does best flagging every row (see the next test)
    null = 2 * (1.0 - 7 * FP + FP * sum(math.tanh(-5 * k / 8) for k in range(1, 6)))
    assert result.null_raw == pytest.approx(null)
    assert result.normalised == pytest.approx(100 * (2.0 - FP - null) / (2.0 - null))


def test_null_detector_scores_zero_and_perfect_one_hundred() -> None:
    # realistic proportions: detecting everything costs far more than missing the windows
    files = [labelled(400, ((200, 239),), "a.csv"), labelled(500, ((250, 289), (400, 439)), "b.csv")]
    null = nab.score_corpus(files, [nab.null_scores(f) for f in files])
    perfect = nab.score_corpus(files, [nab.perfect_scores(f) for f in files])
    assert null.threshold == 1.1 and null.raw == pytest.approx(-3.0) and null.null_raw == pytest.approx(-3.0)
    assert null.normalised == pytest.approx(0.0)
    assert perfect.raw == pytest.approx(3.0) and perfect.normalised == pytest.approx(100.0)


def test_null_baseline_is_the_null_detectors_own_best_score() -> None:
    # a toy corpus where flagging every row beats flagging none: NAB normalises against that
    files = [labelled(N, WIN, "a.csv")]
    null = nab.score_corpus(files, [nab.null_scores(f) for f in files])
    all_rows = 1.0 - 7 * FP + FP * sum(math.tanh(-5 * k / 8) for k in range(1, 6))
    assert null.null_raw == pytest.approx(all_rows) and null.normalised == pytest.approx(0.0)


def test_corpus_raw_equals_the_sum_of_file_scores_at_its_threshold() -> None:
    rng = np.random.default_rng(3)
    files = [labelled(200, ((60, 79), (150, 169)), "a.csv"), labelled(150, ((100, 119),), "b.csv")]
    scores = [rng.random(len(f.timestamps)).round(2) for f in files]
    result = nab.score_corpus(files, scores)
    assert result.raw == pytest.approx(sum(r.score for r in result.files))
    # and no other candidate threshold does better
    weights = [nab.file_weights(f.name, len(f.timestamps), f.windows) for f in files]
    for th in np.unique(np.concatenate(scores)):
        assert sum(nab.score_file(w, s, th).score for w, s in zip(weights, scores)) <= result.raw + 1e-9


def test_window_limits_become_rows_by_exact_timestamp(tmp_path: Path) -> None:
    p = tmp_path / "s.csv"
    rows = ["timestamp,value"] + [f"2015-09-01 00:{m:02d}:00,{m}" for m in range(0, 60, 5)]
    rows.insert(4, "2015-09-01 00:10:00,99")  # a duplicate timestamp: NAB takes the first row
    p.write_text("\n".join(rows) + "\n")
    f = nab.load_file(p, "s.csv", [["2015-09-01 00:10:00.000000", "2015-09-01 00:20:00.000000"]])
    assert f.windows == ((2, 5),)
    with pytest.raises(ValueError, match="does not start and end on a row"):
        nab.load_file(p, "s.csv", [["2015-09-01 00:11:00", "2015-09-01 00:20:00"]])


def test_synthetic_corpus_is_deterministic_and_labelled() -> None:
    a, b = nab.synthetic_corpus(seed=1, n_series=2, days=10), nab.synthetic_corpus(seed=1, n_series=2, days=10)
    assert [f.name for f in a] == [f.name for f in b]
    assert all(np.array_equal(x.values, y.values) for x, y in zip(a, b))
    for f in a:
        assert f.windows and all(nab.probation_length(len(f.timestamps)) < lo <= hi < len(f.timestamps) for lo, hi in f.windows)
