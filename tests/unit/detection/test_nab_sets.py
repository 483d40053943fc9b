"""Named sets, per-category scores and leave-one-category-out cross-validation on tiny hand-built
files (no NAB data needed: a clone has none)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from detection import nab, nab_sets

MAX_TP = math.tanh(2.5)


def labelled(name: str, n: int = 40, windows: tuple[tuple[int, int], ...] = ((20, 24),)) -> nab.LabelledFile:
    return nab.LabelledFile(name=name, timestamps=np.arange(n, dtype=float) * 300.0, values=np.zeros(n), windows=windows)


def hit(n: int, rows: dict[int, float]) -> np.ndarray:
    s = np.zeros(n)
    for i, v in rows.items():
        s[i] = v
    return s


def test_category_of() -> None:
    assert nab_sets.category_of("realTraffic/speed_1.csv") == "realTraffic"
    assert nab_sets.category_of("plain.csv") == "plain.csv"


def test_perfect_and_null_per_category_and_baselines() -> None:
    files = [labelled("a/1.csv"), labelled("a/2.csv"), labelled("b/1.csv"), labelled("c/1.csv", windows=())]
    perfect = [nab.perfect_scores(f) for f in files]
    ev = nab_sets.evaluate(files, perfect, random_seeds=3)
    assert ev["score"] == pytest.approx(100.0)
    assert ev["baselines"]["null"] == pytest.approx(0.0)
    assert len(ev["baselines"]["random_range"]) == 2
    cats = ev["per_category"]
    assert cats["a"]["score"] == pytest.approx(100.0) and cats["a"]["windows_detected"] == "2/2"
    assert cats["c"]["score"] is None and cats["c"]["fp_rows"] == 0  # no windows: only false positives count


def test_category_without_windows_counts_its_false_positives() -> None:
    files = [labelled("a/1.csv"), labelled("c/1.csv", windows=())]
    scores = [hit(40, {20: 1.0}), hit(40, {30: 1.0})]  # one detection in a/1's window, one FP in c/1
    r = nab_sets.score_at(files, scores, 1.0)
    assert r.raw == pytest.approx(1.0 - 0.11)  # before any window an FP costs the full fp weight
    cats = nab_sets.per_category(files, scores, 1.0)
    assert cats["c"]["raw"] == pytest.approx(-0.11) and cats["c"]["fp_rows"] == 1


def test_cross_validation_takes_threshold_and_candidate_from_the_other_categories() -> None:
    # category a and b files: the window's first row scores 0.9, a false positive elsewhere 0.5;
    # category c's anomaly only scores 0.4, so a threshold learned on a and b misses it
    files = [labelled("a/1.csv"), labelled("b/1.csv"), labelled("c/1.csv")]
    good = [hit(40, {20: 0.9, 10: 0.5}), hit(40, {20: 0.9, 10: 0.5}), hit(40, {20: 0.4})]
    cv = nab_sets.cross_validate(files, {"good": good})
    folds = {f.held_out: f for f in cv.folds}
    assert folds["c"].threshold == pytest.approx(0.9)
    assert folds["c"].held_out_raw == pytest.approx(-1.0)  # missed: -fn
    # trained on b and c, 0.4 is best (1.89 against 0 at 0.9), so held-out a pays its false positive
    assert folds["a"].threshold == pytest.approx(0.4)
    assert folds["a"].held_out_raw == pytest.approx(1.0 - 0.11)
    # pooled: 0.89 + 0.89 - 1, normalised with the whole set's null (-3) and perfect (3)
    assert cv.score == pytest.approx(100.0 * (0.78 + 3.0) / 6.0)
    # in sample the one threshold 0.4 catches all three windows but pays two false positives
    ev = nab_sets.evaluate(files, good, random_seeds=0)
    assert ev["threshold"] == pytest.approx(0.4)
    assert ev["score"] > cv.score
    # a second candidate that is better on a and b is chosen in the folds that train on them
    late = [hit(40, {23: 0.9}), hit(40, {23: 0.9}), hit(40, {20: 0.4})]  # detects late in a's and b's windows
    better = [hit(40, {20: 0.9}), hit(40, {20: 0.9}), hit(40, {30: 0.95})]
    cv2 = nab_sets.cross_validate(files, {"late": late, "better": better})
    assert {f.held_out: f.candidate for f in cv2.folds}["c"] == "better"
    assert json.dumps(cv2.to_json())
    assert nab_sets.choose_in_sample(files, {"late": late, "better": better})[0] in {"late", "better"}


def test_variants_tied_on_training_are_averaged_whatever_the_grid_order() -> None:
    """Two variants identical on a and b but different on c: training cannot tell them apart, so
    c's fold scores both and reports their mean, and the figure does not depend on which variant
    the grid lists first."""
    files = [labelled("a/1.csv"), labelled("b/1.csv"), labelled("c/1.csv")]
    same = hit(40, {20: 0.9})
    finds = [same, same, hit(40, {20: 0.9})]  # catches c's window
    misses = [same, same, hit(40, {})]  # silent on c
    one = nab_sets.cross_validate(files, {"finds": finds, "misses": misses})
    other = nab_sets.cross_validate(files, {"misses": misses, "finds": finds})
    c1 = {f.held_out: f for f in one.folds}["c"]
    c2 = {f.held_out: f for f in other.folds}["c"]
    assert set(c1.tied) == {"finds", "misses"} and c1.candidate == "finds" and c2.candidate == "misses"
    assert c1.held_out_raw == pytest.approx(c2.held_out_raw)
    assert c1.held_out_raw == pytest.approx(0.0)  # mean of a hit at the window's first row (+1) and a miss (-1)
    assert c1.held_out_raw_range == pytest.approx((-1.0, 1.0))
    assert one.score == pytest.approx(other.score)
    worst, best = one.score_range
    assert worst < one.score < best
    # a variant that is better on the training categories is not a tie: it alone is taken
    strictly = nab_sets.cross_validate(files, {"finds": finds, "late": [hit(40, {23: 0.9})] * 2 + [hit(40, {})]})
    assert {f.held_out: f.tied for f in strictly.folds}["c"] == ("finds",)
    js = one.to_json()
    assert js["folds"]["c"]["tied"] == ["finds", "misses"] and len(js["score_over_tie_breaks"]) == 2


def test_cross_validation_needs_two_categories() -> None:
    with pytest.raises(ValueError):
        nab_sets.cross_validate([labelled("a/1.csv")], {"x": [np.zeros(40)]})


def test_load_set_named_listed_and_missing(tmp_path: Path) -> None:
    def write(key: str, n: int = 30) -> None:
        p = tmp_path / key
        p.parent.mkdir(parents=True, exist_ok=True)
        rows = [f"2015-09-01 00:{i:02d}:00,{i}" for i in range(n)]
        p.write_text("timestamp,value\n" + "\n".join(rows) + "\n")

    write("realTraffic/s.csv")
    write("other/o.csv")
    window = [["2015-09-01 00:10:00.000000", "2015-09-01 00:12:00.000000"]]
    (tmp_path / "realTraffic_windows.json").write_text(json.dumps({"realTraffic/s.csv": window}))
    (tmp_path / "dev_windows.json").write_text(json.dumps({"realTraffic/s.csv": window, "other/o.csv": []}))
    dev = nab_sets.load_set(tmp_path, "dev")
    assert [f.name for f in dev] == ["other/o.csv", "realTraffic/s.csv"]
    assert dev[1].windows == ((10, 12),) and dev[0].windows == ()
    assert [f.name for f in nab_sets.load_set(tmp_path, "realTraffic")] == ["realTraffic/s.csv"]
    listing = tmp_path / "list.txt"
    listing.write_text("# one a line\nother/o.csv\n")
    assert [f.name for f in nab_sets.load_set(tmp_path, str(listing))] == ["other/o.csv"]
    assert [f.name for f in nab_sets.load_set(tmp_path, ["realTraffic/s.csv"])] == ["realTraffic/s.csv"]
    with pytest.raises(KeyError):
        nab_sets.load_set(tmp_path, ["nowhere/x.csv"])


def test_set_report_has_baselines_categories_and_cross_validation() -> None:
    from detection.nab_report import run_detector, set_report
    from detection.registry import make_detector

    rng = np.random.default_rng(5)
    files = []
    for cat in ("a", "b"):
        x = 10.0 + rng.normal(0, 1, 400)
        x[300] = 40.0
        files.append(nab.LabelledFile(f"{cat}/s.csv", np.arange(400) * 300.0, x, ((290, 310),)))
    scores, us = run_detector(lambda: make_detector("adaptive"), files)
    rep = set_report(files, scores, random_seeds=2)
    assert rep["score"] > 50 and us > 0
    assert set(rep["per_category"]) == {"a", "b"} and rep["baselines"]["null"] == 0.0
    assert set(rep["cross_validated_by_category"]["folds"]) == {"a", "b"}


def test_a_grid_of_adaptive_variants_is_chosen_per_fold() -> None:
    """``adaptive_grid_cv`` runs every variant of the grid it is given, reports the in-sample best
    and lets each held-out category's fold pick one of those variants."""
    from detection.nab_report import adaptive_grid_cv

    rng = np.random.default_rng(6)
    files = []
    for cat in ("a", "b", "c"):
        x = 10.0 + rng.normal(0, 1, 400)
        x[300] = 40.0
        files.append(nab.LabelledFile(f"{cat}/s.csv", np.arange(400) * 300.0, x, ((290, 310),)))
    grid = {"tail_cap": (3.0, 5.0), "shift_memory": (0.0, 64.0)}
    out = adaptive_grid_cv(files, grid)
    assert out["variants"] == 4
    assert out["best_in_sample"]["variant"].keys() == grid.keys() and out["best_in_sample"]["score"] > 50
    folds = out["cross_validated"]["folds"]
    assert set(folds) == {"a", "b", "c"}
    for f in folds.values():
        chosen = json.loads(f["candidate"])
        assert chosen["tail_cap"] in grid["tail_cap"] and chosen["shift_memory"] in grid["shift_memory"]
