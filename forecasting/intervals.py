"""Forecast intervals that keep their promise: conformal calibration on a model's own errors.

Pure functions (numpy/pandas only). Every forecaster that makes its own interval (the seasonal
naives, ``boosted``) hands this module its *out-of-sample* errors in time order — the naive its
seasonal differences, ``boosted`` the errors of a model fitted before its calibration window,
divided by the seasonal level — and gets back lower/upper offsets for the future timestamps.

Two levels (docs/forecasting.md, "How intervals are calibrated"):

1. **Shape, per time of day.** The 10 % / 90 % quantiles of the errors of the last ``window``
   (pooled with the neighbouring hours) give an asymmetric interval per hour of day: small at
   night, large in the peaks (:func:`hour_quantiles`).
2. **Width, conformalised on replays of that rule.** The record is cut into day-long blocks
   ending at the forecast origin. For each block after a warm-up, the rule of step 1 is applied
   to the errors *before* the block only — exactly what a day-ahead forecast issued at the block's
   start would have had — and each error in the block gets the score "by how much would that
   interval have to be stretched to contain me" (:func:`replay_scores`). The multiplier is the
   conformal ``coverage`` quantile of these scores, recent blocks weighted more (half-life), with
   the finite-sample correction of weighted conformal prediction (a point mass at +inf,
   Barber et al. 2023) (:func:`conformal_quantile`). The future interval is the step-1 rule on the
   last ``window`` of errors, stretched by that multiplier (:func:`conformal_offsets`).

Why the second level: raw residuals are not exchangeable (level shifts, heavy tails, a gappy
calibration window, a model that is staler on its calibration window than after the refit), so a
plain residual quantile covered 48-78 % on real series. The replay scores are much closer to
exchangeable — each is an error *relative to the interval the rule made at that time* — and the
multiplier absorbs whatever the rule gets systematically wrong on this series, in either direction.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class ConformalConfig:
    """Constants of the calibration (chosen on the tuning series, docs/forecasting.md)."""

    coverage: float = 0.8
    #: errors of the last ``window`` form the per-hour interval (in the replay and for the future)
    window: str = "28D"
    #: only the last ``record`` of errors is used at all (cost; recent errors matter most)
    record: str = "56D"
    #: replayed blocks need at least this much earlier record
    warmup: str = "3D"
    #: one replayed forecast covers this span (day-ahead refreshes)
    block: str = "1D"
    #: hours pooled on either side of an hour of day
    neighbours: int = 1
    #: fewer errors than this in an hour bucket: the window's pooled quantiles are used
    min_bucket: int = 20
    #: replay scores this old weigh half (None: all alike)
    half_life: str | None = "28D"
    #: the stretch factor is bounded: one wild block cannot blow the interval up without limit
    max_multiplier: float = 10.0
    #: fewer replay scores than this: no replay, the plain conformal quantile of the errors
    min_scores: int = 24
    #: the finite-sample correction counts blocks, not points (see conformal_offsets)
    block_mass: bool = True
    #: "joint": one stretch factor for both sides; "separate": one per tail (misses split evenly)
    tails: str = "joint"
    #: buckets per hour *and day type* (working day / rest day), see conformal_offsets
    split_days: bool = False


DEFAULT_CONFIG = ConformalConfig()


def conformal_quantile(scores: np.ndarray, level: float, weights: np.ndarray | None = None, unseen_weight: float = 1.0) -> float:
    """The (weighted) conformal ``level`` quantile of ``scores``: finite-sample valid.

    With weights w_i (1 for all: split conformal) and a point mass of weight 1 at +inf for the
    unseen point(s) (``unseen_weight``: a whole block of points when scores come in blocks that
    move together, such as one forecast's day), the smallest score whose cumulative normalised
    weight reaches ``level``; +inf when the scores are too few for that level. NaN scores are
    ignored.
    """
    s = np.asarray(scores, dtype=float)
    w = np.ones_like(s) if weights is None else np.asarray(weights, dtype=float)
    keep = ~np.isnan(s) & (w > 0)
    s, w = s[keep], w[keep]
    if len(s) == 0:
        return float("inf")
    order = np.argsort(s, kind="stable")
    s, w = s[order], w[order]
    cum = np.cumsum(w) / (w.sum() + unseen_weight)
    i = int(np.searchsorted(cum, level - 1e-12, side="left"))
    return float(s[i]) if i < len(s) else float("inf")


def _time_of_day_hours(index: pd.DatetimeIndex) -> np.ndarray:
    return index.hour.to_numpy() + index.minute.to_numpy() / 60.0


def hour_quantiles(
    values: np.ndarray,
    hours: np.ndarray,
    target_hours: np.ndarray,
    quantiles: tuple[float, float],
    neighbours: int = 1,
    min_bucket: int = 20,
    sub_daily: bool = True,
    groups: np.ndarray | None = None,
    target_groups: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Lower/upper quantiles of ``values`` per hour of day (and day type) of the targets.

    Each target hour pools the values within ``neighbours`` hours either side (circular) of the
    same day type (``groups``, e.g. working day / rest day); a bucket with fewer than
    ``min_bucket`` values drops the day type, then the hour (all values). NaN-free input.
    Returns offsets clipped so that lower <= 0 <= upper (an interval contains its forecast).
    """
    target_hours = np.asarray(target_hours, dtype=float)
    lo = np.zeros(len(target_hours))
    hi = np.zeros(len(target_hours))
    if len(values) == 0:
        return lo, hi
    glo, ghi = np.quantile(values, quantiles)
    lo[:], hi[:] = glo, ghi
    if groups is None or target_groups is None:
        groups, target_groups = np.zeros(len(values), dtype=int), np.zeros(len(target_hours), dtype=int)
    for h, g in set(zip(target_hours.tolist(), np.asarray(target_groups).tolist())):
        near = np.abs(((hours - h + 12.0) % 24.0) - 12.0) <= neighbours + 1e-9 if sub_daily else np.ones(len(values), dtype=bool)
        sel = (target_hours == h) & (target_groups == g)
        same = values[near & (groups == g)]
        if len(same) >= min_bucket:
            lo[sel], hi[sel] = np.quantile(same, quantiles)
        elif sub_daily and near.sum() >= min_bucket:
            lo[sel], hi[sel] = np.quantile(values[near], quantiles)
    return np.minimum(lo, 0.0), np.maximum(hi, 0.0)


def weekend(index: pd.DatetimeIndex) -> np.ndarray:
    """The default day type: 1 on Saturdays and Sundays (on the index's own clock), else 0."""
    return (pd.DatetimeIndex(index).day_of_week >= 5).astype(int)


def _groups(index: pd.DatetimeIndex, day_type: Callable[[pd.DatetimeIndex], np.ndarray] | None) -> np.ndarray:
    if day_type is None:
        return np.zeros(len(index), dtype=int)
    return np.asarray(day_type(pd.DatetimeIndex(index)), dtype=int)


def _rule(
    residuals: pd.Series,
    target: pd.DatetimeIndex,
    config: ConformalConfig,
    quantiles: tuple[float, float],
    sub_daily: bool,
    day_type: Callable[[pd.DatetimeIndex], np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    r = residuals.dropna()
    return hour_quantiles(
        r.to_numpy(dtype=float),
        _time_of_day_hours(pd.DatetimeIndex(r.index)),
        _time_of_day_hours(target),
        quantiles,
        config.neighbours,
        config.min_bucket,
        sub_daily,
        _groups(pd.DatetimeIndex(r.index), day_type),
        _groups(target, day_type),
    )


def _window_quantiles(
    values: np.ndarray, start: np.ndarray, stop: np.ndarray, quantiles: tuple[float, float]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Quantiles (numpy's linear rule) of ``values[start[i]:stop[i]]`` for every i, vectorised.

    Returns ``(lower, upper, count)``; NaN quantiles where a window is empty.
    """
    count = np.maximum(stop - start, 0)
    nb = len(start)
    width = int(count.max()) if nb else 0
    lo, hi = np.full(nb, np.nan), np.full(nb, np.nan)
    if width == 0:
        return lo, hi, count
    cols = np.arange(width)
    valid = cols[None, :] < count[:, None]
    m = np.full((nb, width), np.inf)
    m[valid] = values[(start[:, None] + cols[None, :])[valid]]
    m.sort(axis=1)
    rows = np.flatnonzero(count > 0)
    n = count[rows]
    out = []
    for q in quantiles:
        pos = q * (n - 1)
        i = np.floor(pos).astype(int)
        j = np.minimum(i + 1, n - 1)
        frac = pos - i
        a, b = m[rows, i], m[rows, j]
        v = np.full(nb, np.nan)
        v[rows] = a + (b - a) * frac
        out.append(v)
    return out[0], out[1], count


def replay_scores(
    residuals: pd.Series,
    config: ConformalConfig = DEFAULT_CONFIG,
    sub_daily: bool = True,
    sides: bool = False,
    day_type: Callable[[pd.DatetimeIndex], np.ndarray] | None = None,
) -> pd.Series | pd.DataFrame:
    """Scores of day-ahead replays of the per-hour rule over the error record (see module doc).

    Blocks of ``config.block`` end at the record's end. For a block (t, t + block], the rule is
    fitted on the errors in ``(t - window, t]``; an error e in the block scores e / upper when
    e > 0, e / lower when e < 0, 0 when e == 0 (how far the interval must be stretched to
    contain it; +inf when that side of the interval is 0). Missing errors give no score.
    Vectorised over blocks: the same result as applying :func:`hour_quantiles` block by block.
    ``sides=True``: a DataFrame with that ``joint`` score and the signed stretch of each side
    alone, ``lower`` = e / lower and ``upper`` = e / upper (for one multiplier per tail).
    """
    r = residuals.dropna().sort_index()
    empty = pd.DataFrame(columns=["joint", "lower", "upper"], dtype=float) if sides else pd.Series(dtype=float)
    if r.empty:
        return empty
    idx = pd.DatetimeIndex(r.index)
    t_ns = idx.as_unit("ns").asi8
    vals = r.to_numpy(dtype=float)
    block, window, warm = (pd.Timedelta(x).value for x in (config.block, config.window, config.warmup))
    end, first = int(t_ns[-1]), int(t_ns[0])
    nblocks = max(0, (end - block - first - warm) // block + 1) if end - block - first >= warm else 0
    if nblocks == 0:
        return empty
    starts = end - block * (np.arange(nblocks)[::-1] + 1)  # block b is (starts[b], starts[b] + block], oldest first
    blk_lo = np.searchsorted(t_ns, starts, "right")
    blk_hi = np.searchsorted(t_ns, starts + block, "right")
    win_lo = np.searchsorted(t_ns, starts - window, "right")
    alpha = 1.0 - config.coverage
    quantiles = (alpha / 2.0, 1.0 - alpha / 2.0)
    glo, ghi, gcount = _window_quantiles(vals, win_lo, blk_lo, quantiles)
    # for every scored point: its block, and the interval the rule gave it
    member = np.zeros(len(vals), dtype=int) - 1
    for bi in range(nblocks):
        member[blk_lo[bi] : blk_hi[bi]] = bi
    scored = np.flatnonzero(member >= 0)
    scored = scored[gcount[member[scored]] > 0]
    if len(scored) == 0:
        return empty
    pb = member[scored]
    lo, hi = glo[pb].copy(), ghi[pb].copy()
    hours = _time_of_day_hours(idx)
    groups = _groups(idx, day_type)
    done: dict[float, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}

    def bucket(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        pos = np.flatnonzero(mask)
        return _window_quantiles(vals[pos], np.searchsorted(pos, win_lo), np.searchsorted(pos, blk_lo), quantiles)

    for h, g in set(zip(hours[scored].tolist(), groups[scored].tolist())):
        near = np.abs(((hours - h + 12.0) % 24.0) - 12.0) <= config.neighbours + 1e-9 if sub_daily else np.ones(len(vals), dtype=bool)
        sel = np.flatnonzero((hours[scored] == h) & (groups[scored] == g))
        blk = pb[sel]
        if sub_daily:  # the hour bucket, all day types (the fallback of the day-type bucket)
            if h not in done:
                done[h] = bucket(near)
            hlo, hhi, hcount = done[h]
            ok = hcount[blk] >= config.min_bucket
            lo[sel[ok]], hi[sel[ok]] = hlo[blk[ok]], hhi[blk[ok]]
        if day_type is not None:
            dlo, dhi, dcount = bucket(near & (groups == g))
            ok = dcount[blk] >= config.min_bucket
            lo[sel[ok]], hi[sel[ok]] = dlo[blk[ok]], dhi[blk[ok]]
    lo, hi = np.minimum(lo, 0.0), np.maximum(hi, 0.0)
    e = vals[scored]
    s = stretch_scores(e, lo, hi)
    if not sides:
        return pd.Series(s, index=idx[scored])
    with np.errstate(divide="ignore", invalid="ignore"):
        # signed stretch of each side alone: e / upper and e / lower (0/0 -> 0, e/0 -> +-inf)
        up = np.where(e == 0, 0.0, np.divide(e, hi))
        down = np.where(e == 0, 0.0, np.divide(e, lo))
    return pd.DataFrame({"joint": s, "lower": down, "upper": up}, index=idx[scored])


def stretch_scores(e: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """How far the interval (offsets ``lo`` <= 0 <= ``hi`` around the forecast) must be stretched
    to contain each error: e / hi above, e / lo below, 0 for no error, +inf against a zero side."""
    with np.errstate(divide="ignore", invalid="ignore"):
        s = np.where(e > 0, np.divide(e, hi), np.where(e < 0, np.divide(e, lo), 0.0))
    return np.where(np.isnan(s), np.inf, s)


def recency_weights(index: pd.DatetimeIndex, end: pd.Timestamp, half_life: str | None) -> np.ndarray:
    """Weights that halve every ``half_life`` before ``end`` (all 1 without a half-life)."""
    if not half_life:
        return np.ones(len(index))
    return 0.5 ** np.asarray((end - index) / pd.Timedelta(half_life), dtype=float)


def _replay_scores_slow(
    residuals: pd.Series,
    config: ConformalConfig = DEFAULT_CONFIG,
    sub_daily: bool = True,
    day_type: Callable[[pd.DatetimeIndex], np.ndarray] | None = None,
) -> pd.Series:
    """Reference implementation of :func:`replay_scores`, block by block (tests compare the two)."""
    r = residuals.dropna().sort_index()
    if r.empty:
        return pd.Series(dtype=float)
    end = r.index[-1]
    block, window, warm = pd.Timedelta(config.block), pd.Timedelta(config.window), pd.Timedelta(config.warmup)
    start = r.index[0]
    alpha = 1.0 - config.coverage
    quantiles = (alpha / 2.0, 1.0 - alpha / 2.0)
    parts = []
    t = end - block  # block (t, t + block]: the last one ends at the record's end
    while t - start >= warm:
        in_block = r[(r.index > t) & (r.index <= t + block)]
        if len(in_block):
            past = r[(r.index > t - window) & (r.index <= t)]
            if len(past):
                lo, hi = _rule(past, pd.DatetimeIndex(in_block.index), config, quantiles, sub_daily, day_type)
                e = in_block.to_numpy(dtype=float)
                with np.errstate(divide="ignore", invalid="ignore"):
                    s = np.where(e > 0, np.divide(e, hi), np.where(e < 0, np.divide(e, lo), 0.0))
                s = np.where(np.isnan(s), np.inf, s)
                parts.append(pd.Series(s, index=in_block.index))
        t = t - block
    if not parts:
        return pd.Series(dtype=float)
    return pd.concat(parts[::-1])


def conformal_offsets(
    residuals: pd.Series,
    future: pd.DatetimeIndex,
    scale: np.ndarray | None = None,
    config: ConformalConfig = DEFAULT_CONFIG,
    day_type: Callable[[pd.DatetimeIndex], np.ndarray] | None = None,
    timezone: str | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Lower (<= 0) and upper (>= 0) offsets of the ``config.coverage`` interval for ``future``.

    ``residuals``: the model's out-of-sample errors (actual - forecast) on a DatetimeIndex, in
    time order, NaN where unknown; ``scale`` (> 0, one per future point) turns errors that were
    divided by a level back into the series' unit; ``day_type`` maps timestamps to a day type
    (e.g. 1 for rest days: weekends and public holidays), default :func:`weekend` when
    ``config.split_days``. Hours and days are read on the ``timezone`` clock (default: the
    indexes' own). Never NaN, never inverted; zeros when there is no error to learn from.
    """
    if timezone and len(future) and future.tz is not None:
        future = future.tz_convert(timezone)
        if len(residuals) and isinstance(residuals.index, pd.DatetimeIndex) and residuals.index.tz is not None:
            residuals = residuals.tz_convert(timezone)
    if day_type is None and config.split_days:
        day_type = weekend
    n = len(future)
    r = residuals.dropna().sort_index() if len(residuals) else pd.Series(dtype=float)
    r = r[np.isfinite(r.to_numpy(dtype=float))] if len(r) else r
    if r.empty:
        return np.zeros(n), np.zeros(n)
    r = r[r.index > r.index[-1] - pd.Timedelta(config.record)]
    alpha = 1.0 - config.coverage
    sub_daily = _sub_daily(future, r.index)
    recent = r[r.index > r.index[-1] - pd.Timedelta(config.window)]
    scores = replay_scores(r, config, sub_daily, sides=True, day_type=day_type)
    if len(scores) >= config.min_scores:
        weights = recency_weights(pd.DatetimeIndex(scores.index), r.index[-1], config.half_life)
        # the unit that is exchangeable (at best) is a forecast's block, not a point: the unseen
        # block weighs as much as the average replayed block at age 0
        per_block = len(scores) / max(1, len(np.unique(_block_of(scores.index, r.index[-1], config.block))))
        unseen = per_block if config.block_mass else 1.0
        lo, hi = _rule(recent, future, config, (alpha / 2.0, 1.0 - alpha / 2.0), sub_daily, day_type)
        if config.tails == "separate":
            # the corrected two-sided level, its miss budget split evenly between the tails
            level = min(1.0, config.coverage * (weights.sum() + unseen) / weights.sum())
            tail = 1.0 - (1.0 - level) / 2.0
            k_lo = stretch_factor(scores["lower"].to_numpy(), tail, weights, 0.0, config)
            k_hi = stretch_factor(scores["upper"].to_numpy(), tail, weights, 0.0, config)
        else:
            k_lo = k_hi = stretch_factor(scores["joint"].to_numpy(), config.coverage, weights, unseen, config)
        lo, hi = lo * k_lo, hi * k_hi
    else:
        # too short a record to replay: split conformal on the errors themselves (per hour)
        m = len(recent)
        q = min(1.0, (1.0 - alpha / 2.0) * (m + 1) / m)
        lo, hi = _rule(recent, future, config, (1.0 - q, q), sub_daily, day_type)
    if scale is not None:
        s = np.asarray(scale, dtype=float)
        lo, hi = lo * s, hi * s
    lo = np.nan_to_num(np.minimum(lo, 0.0), nan=0.0, neginf=np.finfo(float).min / 4)
    hi = np.nan_to_num(np.maximum(hi, 0.0), nan=0.0, posinf=np.finfo(float).max / 4)
    return lo, hi


def stretch_factor(scores: np.ndarray, level: float, weights: np.ndarray, unseen: float, config: ConformalConfig) -> float:
    """The conformal stretch factor, bounded to [0, max_multiplier] (the largest finite score if +inf)."""
    k = conformal_quantile(scores, level, weights, unseen)
    if not np.isfinite(k):
        finite = scores[np.isfinite(scores)]
        k = float(finite.max()) if len(finite) else 1.0
    return float(np.clip(k, 0.0, config.max_multiplier))


def _sub_daily(future: pd.DatetimeIndex, seen: pd.DatetimeIndex) -> bool:
    """Hour-of-day buckets only for steps under a day."""
    idx = future if len(future) > 1 else seen
    if len(idx) < 2:
        return False
    step = idx.freq or (idx[1] - idx[0])
    return pd.Timedelta(step) < pd.Timedelta("1D")


def _block_of(index: pd.DatetimeIndex, end: pd.Timestamp, block: str) -> np.ndarray:
    """Which replay block (counted back from ``end``) each timestamp falls in."""
    return np.asarray((end - index) // pd.Timedelta(block))
