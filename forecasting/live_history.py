"""Hourly history of a live series, kept as a plain dict (a Faust table holds it unchanged).

The stream side sees observations one by one (a detector's 1-minute count, a pool's visitor
count) and at least once. Buckets are hours; an observation carries an id, and ids seen in the
last ``DEDUP_HOURS`` hours are remembered, so a redelivered aggregate is not counted twice.
``mode="sum"`` adds (vehicles per hour), ``mode="mean"`` averages (visitors present).

An id of the form ``source/sequence`` (a detector aggregate: ``K1/D3/<window start>``) is
remembered as its source's highest sequence only: the aggregation agent closes a detector's
windows in order, so any recent one at or below that mark was seen before. Remembering every id
of three hours made an intersection's history 138 KB at 12 detectors, 121 KB of it ids, and the
table rewrites the whole record on every batch (docs/capacity.md); the marks are about 40 bytes
per detector. The price: an aggregate of the last three hours that arrives *after* a later one of
its detector (an operator's backfill of the recent past) is taken for a redelivery; older
backfill is counted as before.

The newest bucket is still filling; only the hours before it are *complete* and go into a
model, and it is when an hour completes that the forecast made for it can be scored.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

HOUR = 3600
DEDUP_HOURS = 3

#: {"mode": "sum"|"mean", "b": {hour_epoch_str: [sum, n]}, "ids": {id: hour},
#:  "hw": {source: [highest sequence, its hour]} and "top": newest hour (both absent in old states)}
State = dict[str, Any]


def empty(mode: str) -> State:
    if mode not in ("sum", "mean"):
        raise ValueError("mode must be 'sum' or 'mean'")
    return {"mode": mode, "b": {}, "ids": {}, "hw": {}}


def sequenced(obs_id: str) -> tuple[str, int] | None:
    """``("K1/D3", 1700000040)`` for ``"K1/D3/1700000040"``; None for an id of another form."""
    source, sep, seq = obs_id.rpartition("/")
    return (source, int(seq)) if sep and seq.isascii() and seq.isdigit() else None


def observe(
    state: State | None, t: float, value: float, *, mode: str, keep_days: int, obs_id: str | None = None
) -> tuple[State, int | None]:
    """Fold one observation into a copy; returns the new state and the hour that just completed
    (if any). Non-finite times or values are ignored; so are observations older than the kept
    history. A batch should copy once with :func:`thaw` and fold with :func:`observe_into`:
    copying the whole history per observation was the forecasting agent's largest cost."""
    st = thaw(state, mode)
    return st, observe_into(st, t, value, keep_days=keep_days, obs_id=obs_id)


def thaw(state: State | None, mode: str) -> State:
    """A private, mutable copy of a stored state (the table's own value is never changed in place)."""
    st: State = {
        "mode": mode,
        "b": dict((state or {}).get("b", {})),
        "ids": dict((state or {}).get("ids", {})),
        "hw": dict((state or {}).get("hw", {})),  # values are replaced, never changed in place
    }
    if state and state.get("top") is not None:
        st["top"] = state["top"]
    return st


def observe_into(st: State, t: float, value: float, *, keep_days: int, obs_id: str | None = None) -> int | None:
    """:func:`observe` on a state this caller owns (from :func:`thaw`): changes it in place and
    returns the hour that just completed, if any. Same result as ``observe``, without the copy;
    the newest hour is cached under ``"top"`` and ids are pruned only when it advances."""
    if not (math.isfinite(t) and math.isfinite(value)):
        return None
    hour = int(t // HOUR) * HOUR
    newest_before: int | None = st.get("top")
    if newest_before is None and st["b"]:
        newest_before = max(int(h) for h in st["b"])
    if newest_before is not None and hour < newest_before - keep_days * 24 * HOUR:
        return None
    newest = max(hour, newest_before if newest_before is not None else hour)
    if obs_id is not None:
        if obs_id in st["ids"]:  # (an old state's aggregate ids are honoured until they age out)
            return None
        recent = hour >= newest - DEDUP_HOURS * HOUR  # an older id would be pruned at once anyway
        seq = sequenced(obs_id)
        if seq is None:
            if recent:
                st["ids"][obs_id] = hour
        elif recent:
            mark = st["hw"].get(seq[0])
            if mark is not None and seq[1] <= mark[0]:
                return None
            st["hw"][seq[0]] = [seq[1], hour]
    total, n = st["b"].get(str(hour), [0.0, 0])
    st["b"][str(hour)] = [total + value, n + 1]
    if newest != newest_before:
        cutoff = newest - keep_days * 24 * HOUR
        if len(st["b"]) > keep_days * 24 + 1:
            st["b"] = {h: v for h, v in st["b"].items() if int(h) >= cutoff}
        st["ids"] = {k: h for k, h in st["ids"].items() if h >= newest - DEDUP_HOURS * HOUR}
        st["hw"] = {k: m for k, m in st["hw"].items() if m[1] >= newest - DEDUP_HOURS * HOUR}
    st["top"] = newest
    return newest_before if newest_before is not None and hour > newest_before else None


def known_hours(state: State | None) -> int:
    """Complete hours with a value (what ``complete_series(state).notna().sum()`` counts), without pandas."""
    if not state or len(state["b"]) < 2:
        return 0
    newest = max(int(h) for h in state["b"])
    return sum(1 for h, (_, n) in state["b"].items() if n and int(h) != newest)


def value_of(state: State, hour: int) -> float | None:
    total, n = state["b"].get(str(hour), [0.0, 0])
    if n == 0:
        return None
    return total / n if state["mode"] == "mean" else total


def complete_series(state: State | None) -> pd.Series:
    """Hourly values of the complete hours (the newest, still filling, is left out); gaps NaN."""
    if not state or len(state["b"]) < 2:
        return pd.Series(dtype=float, index=pd.DatetimeIndex([], tz="UTC"))
    hours = sorted(int(h) for h in state["b"])[:-1]
    index = pd.date_range(pd.Timestamp(hours[0], unit="s", tz="UTC"), pd.Timestamp(hours[-1], unit="s", tz="UTC"), freq="1h")
    values = [value_of(state, int(ts.timestamp())) for ts in index]
    return pd.Series([math.nan if v is None else v for v in values], index=index, dtype=float)
