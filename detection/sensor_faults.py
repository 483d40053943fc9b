"""Sensor faults: readings that are wrong because the sensor is, not because the world changed.

Rules, not statistics: each needs one physical fact about the quantity, and each reports a
reason an operator can act on (send a technician, not a police car).

* ``out_of_range``: outside what the quantity can physically be (pH 0..14, occupancy 0..1,
  free chlorine >= 0).
* ``impossible_jump``: a change between consecutive readings larger than the process can make
  (water chemistry does not move 3 pH units in a minute). Only judged when the previous reading
  is at most ``heartbeat_s`` old; after a silence a big change may be real.
* ``stuck``: the same value (within ``tolerance``) for ``stuck_after_s`` seconds: a frozen
  transmitter repeats its last value. Pick the duration per quantity: a live pH probe always
  jitters, a night-time occupancy of 0 may legitimately last hours.
* silence: no valid reading for more than ``heartbeat_s`` (``silent(now)``; a timer asks, since
  a dead sensor sends nothing that could trigger a check).

NaN readings are not faults here (they are missing data, and count as silence). Out-of-order
readings are judged for range only and never change state.
"""

from __future__ import annotations

import math
from typing import Any

OUT_OF_RANGE = "out_of_range"
IMPOSSIBLE_JUMP = "impossible_jump"
STUCK = "stuck"
REASONS = (OUT_OF_RANGE, IMPOSSIBLE_JUMP, STUCK)


def _finite_or_none(v: float) -> float | None:
    return v if math.isfinite(v) else None


class SensorFaultDetector:
    """Rule-based fault detector for one physical quantity of one sensor.

    ``check(t, x)`` judges a reading and learns it (one call per reading); ``score_one`` /
    ``learn_one`` are the same split into the common detector interface (score 1.0 on a fault).
    Any limit left ``None`` is not checked.
    """

    kind = "sensor_fault"

    def __init__(
        self,
        lo: float | None = None,
        hi: float | None = None,
        max_step: float | None = None,
        stuck_after_s: float | None = None,
        heartbeat_s: float | None = None,
        tolerance: float = 0.0,
    ) -> None:
        self.name = self.kind
        self.lo = -math.inf if lo is None else float(lo)
        self.hi = math.inf if hi is None else float(hi)
        self.max_step = math.inf if max_step is None else float(max_step)
        self.stuck_after_s = math.inf if stuck_after_s is None else float(stuck_after_s)
        self.heartbeat_s = math.inf if heartbeat_s is None else float(heartbeat_s)
        self.tolerance = float(tolerance)
        self.last_t = -math.inf  # newest valid (finite, in-range) reading
        self.last_x = math.nan
        self.same_since = -math.inf  # when the current run of equal values began
        self.same_x = math.nan

    # --- the rules ---------------------------------------------------------------------------

    def reason(self, t: float, x: float) -> str | None:
        """Why this reading is faulty, or None; does not change state."""
        if not math.isfinite(x) or t != t:
            return None
        if x < self.lo or x > self.hi:
            return OUT_OF_RANGE
        if t < self.last_t:
            return None
        if self.last_x == self.last_x and t - self.last_t <= self.heartbeat_s and abs(x - self.last_x) > self.max_step:
            return IMPOSSIBLE_JUMP
        if self.same_x == self.same_x and abs(x - self.same_x) <= self.tolerance and t - self.same_since >= self.stuck_after_s:
            return STUCK
        return None

    def learn_one(self, t: float, x: float) -> None:
        if not math.isfinite(x) or not math.isfinite(t) or t < self.last_t or x < self.lo or x > self.hi:
            return
        if not (self.same_x == self.same_x and abs(x - self.same_x) <= self.tolerance):
            self.same_x, self.same_since = x, t
        self.last_t, self.last_x = t, x

    def check(self, t: float, x: float) -> str | None:
        """Judge the reading, then learn it: ``out_of_range``, ``impossible_jump``, ``stuck`` or None."""
        why = self.reason(t, x)
        self.learn_one(t, x)
        return why

    def silent(self, now: float) -> bool:
        """True when the newest valid reading is older than ``heartbeat_s`` (False before any)."""
        return math.isfinite(self.last_t) and now - self.last_t > self.heartbeat_s

    # --- the common detector interface -------------------------------------------------------

    def score_one(self, t: float, x: float) -> float:
        return 1.0 if self.reason(t, x) is not None else 0.0

    def to_state(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "limits": [
                _finite_or_none(self.lo),
                _finite_or_none(self.hi),
                _finite_or_none(self.max_step),
                _finite_or_none(self.stuck_after_s),
                _finite_or_none(self.heartbeat_s),
                self.tolerance,
            ],
            "last": [_finite_or_none(self.last_t), _finite_or_none(self.last_x)],
            "same": [_finite_or_none(self.same_since), _finite_or_none(self.same_x)],
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> SensorFaultDetector:
        lo, hi, step, stuck, beat, tol = state["limits"]
        d = cls(lo, hi, step, stuck, beat, tol)
        last_t, last_x = state["last"]
        same_since, same_x = state["same"]
        d.last_t = -math.inf if last_t is None else last_t
        d.last_x = math.nan if last_x is None else last_x
        d.same_since = -math.inf if same_since is None else same_since
        d.same_x = math.nan if same_x is None else same_x
        return d
