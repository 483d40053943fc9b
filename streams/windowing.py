"""Per-intersection, per-detector tumbling-window aggregation: the maths, without Faust.

State is a plain JSON-able dict per intersection, so it can live in a Faust table (and its
changelog) unchanged. Windows close on *event time*: when the intersection's watermark (end of
the newest frame) passes ``window end + lateness``, or when the intersection has been silent
for a while on the wall clock (``close_idle``), so the last window of a stream is not held
forever.

Delivery is at-least-once, so folding is idempotent: a frame seen again (same intersection and
start time) is ignored, and a frame for a window already closed is late: it is reported
(``Folded.late``; the agent dead-letters it with reason ``late``) and never re-opens the window
with partial data.

Watermark and lateness policy (per intersection, on event time): the watermark is the end of
the newest frame folded; a window [s, s + window) closes once the watermark passes
``s + window + lateness``. A frame older than the watermark whose window is still open is
*out of order*: it is merged (``Folded.reordered`` counts it). A frame whose window has closed
is *late*. Wall-clock idle closing counts silence from the later of the intersection's last
frame and ``resumed_at``: the agent passes the later of the moment this worker recovered the
partition and its last full batch (the source was behind then), so neither a worker's own
downtime nor the backlog it works through afterwards makes an intersection look silent.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timezone
from typing import Any, NamedTuple

import orjson

from .records import DetectorAggregate, IntersectionFrame

State = dict[str, Any]
# per detector: [count_sum, occupancy_sum, frames, speed_sum, speed_frames, queue_sum, queue_frames];
# states written before queues were aggregated hold only the first five (read as no queue yet)
_COUNT, _OCC, _N, _SPEED, _SPEED_N, _QUEUE, _QUEUE_N = range(7)
_ACC_LEN = 7


def empty_state() -> State:
    return {"windows": {}, "watermark": None, "closed_until": None, "last_seen_wall": None}


def window_start(t: float, window_s: int) -> float:
    return float(int(t // window_s) * window_s)


class Folded(NamedTuple):
    """What folding a group of frames did."""

    state: State
    closed: list[DetectorAggregate]
    #: indexes (into the frames given) of frames whose window had already closed
    late: list[int]
    #: frames older than the watermark merged into a window still open
    reordered: int


def fold(
    state: State | None,
    frames: Iterable[IntersectionFrame],
    *,
    window_s: int,
    lateness_s: float,
    wall_now: float,
) -> tuple[State, list[DetectorAggregate], int]:
    """Add frames (of one intersection, in arrival order) and close what event time allows.

    Returns a new state (the given one is left untouched), the aggregates of windows closed
    now, and how many frames were late (``fold_frames`` says which).
    """
    out = fold_frames(state, list(frames), window_s=window_s, lateness_s=lateness_s, wall_now=wall_now)
    return out.state, out.closed, len(out.late)


def fold_frames(
    state: State | None,
    frames: Sequence[IntersectionFrame],
    *,
    window_s: int,
    lateness_s: float,
    wall_now: float,
) -> Folded:
    """``fold`` with the late frames named and the out-of-order frames counted."""
    st = empty_state() if state is None else _copy(state)
    windows: dict[str, Any] = st["windows"]
    late: list[int] = []
    reordered = 0
    intersection_id = st.get("intersection_id")
    for i, frame in enumerate(frames):
        intersection_id = frame.intersection_id
        t = frame.event_time.timestamp()
        start = window_start(t, window_s)
        closed_until = st["closed_until"]
        if closed_until is not None and start < closed_until:
            late.append(i)
            continue
        w = windows.setdefault(repr(start), {"frames": [], "detectors": {}})
        if t in w["frames"]:  # redelivered frame: already counted
            continue
        if st["watermark"] is not None and t + frame.interval_s < st["watermark"]:
            reordered += 1
        w["frames"].append(t)
        acc = w["detectors"]
        for d in frame.detectors:
            a = acc.get(d.detector_id)
            if a is None:
                a = acc[d.detector_id] = [0, 0.0, 0, 0.0, 0, 0.0, 0]
            elif len(a) < _ACC_LEN:  # an accumulator from a state older than queue aggregation
                a.extend([0.0, 0][len(a) - _ACC_LEN :])
            a[_COUNT] += d.count
            a[_OCC] += d.occupancy
            a[_N] += 1
            if d.speed_kmh is not None:
                a[_SPEED] += d.speed_kmh
                a[_SPEED_N] += 1
            if d.queue_veh is not None:
                a[_QUEUE] += d.queue_veh
                a[_QUEUE_N] += 1
        end_t = t + frame.interval_s
        if st["watermark"] is None or end_t > st["watermark"]:
            st["watermark"] = end_t
    st["intersection_id"] = intersection_id
    st["last_seen_wall"] = wall_now
    closed: list[DetectorAggregate] = []
    if st["watermark"] is not None:
        horizon = st["watermark"] - lateness_s
        closed = _close(st, lambda start: start + window_s <= horizon, window_s)
    return Folded(st, closed, late, reordered)


def close_idle(
    state: State, *, window_s: int, idle_s: float, wall_now: float, resumed_at: float | None = None
) -> tuple[State, list[DetectorAggregate]]:
    """Close every open window of an intersection that has been silent ``idle_s`` (wall).

    Silence is counted from the later of its last frame and ``resumed_at`` (when this worker
    took the partition over): frames still in the backlog of a restarted worker are not late.
    """
    seen = state.get("last_seen_wall")
    if seen is not None and resumed_at is not None:
        seen = max(seen, resumed_at)
    if not state["windows"] or seen is None or wall_now - seen < idle_s:
        return state, []
    st = _copy(state)
    return st, _close(st, lambda start: True, window_s)


def _copy(state: State) -> State:
    """A deep copy. States are never mutated in place: Faust serialises a table value only when
    its changelog record leaves the producer buffer, so mutating a state already handed to the
    table would let the changelog run ahead of the aggregates it promises."""
    return orjson.loads(orjson.dumps(state))


def _close(st: State, is_due: Any, window_s: int) -> list[DetectorAggregate]:
    out: list[DetectorAggregate] = []
    windows = st["windows"]
    for key in sorted(windows, key=float):
        start = float(key)
        if not is_due(start):
            break
        w = windows.pop(key)
        out.extend(_aggregates(st["intersection_id"], start, window_s, w))
        end = start + window_s
        if st["closed_until"] is None or end > st["closed_until"]:
            st["closed_until"] = end
    return out


def _aggregates(intersection_id: str, start: float, window_s: int, w: dict[str, Any]) -> list[DetectorAggregate]:
    ws = datetime.fromtimestamp(start, tz=timezone.utc)
    we = datetime.fromtimestamp(start + window_s, tz=timezone.utc)
    out = []
    for detector_id in sorted(w["detectors"]):
        a = w["detectors"][detector_id]
        out.append(
            DetectorAggregate(
                aggregate_id=f"{intersection_id}/{detector_id}/{int(start)}",
                intersection_id=intersection_id,
                detector_id=detector_id,
                window_start=ws,
                window_end=we,
                frames=a[_N],
                count_sum=a[_COUNT],
                occupancy_mean=a[_OCC] / a[_N],
                speed_kmh_mean=(a[_SPEED] / a[_SPEED_N]) if a[_SPEED_N] else None,
                event_time=we,
                queue_veh_mean=_queue_mean(a),
            )
        )
    return out


def _queue_mean(a: list[Any]) -> float | None:
    """Mean queue over the readings that reported one (None: none did, or an old state's
    accumulator that never counted queues)."""
    n = a[_QUEUE_N] if len(a) > _QUEUE_N else 0
    return a[_QUEUE] / n if n else None
