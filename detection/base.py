"""The one interface every streaming detector follows (the registry is ``detection.registry``).

Modelled on river's anomaly detectors: ``score_one(t, x)`` judges a reading from what was
learned before it, ``learn_one(t, x)`` then folds it in. Keeping the two verbs apart lets the
stream side score a reading, publish the alarm and only then update state, and it keeps every
score causal (past and present only).

State leaves a detector only as a plain dict of numbers and lists (``to_state``), because the
stream side keeps it in Faust tables as JSON; ``registry.restore(state)`` rebuilds any detector from it.

Conventions shared by all detectors (the property tests hold them to it):

* ``t`` is POSIX seconds; ``x`` any float. NaN or infinite ``x`` scores 0 and is not learned
  (a missing reading is the sensor-fault detector's business, not a statistical anomaly);
  finite readings beyond ``MAX_ABS`` are clamped to it (still maximally surprising).
* A reading older than the newest one learned (out of order) scores 0 and is not learned:
  folding it in would corrupt time-ordered state (slots, CUSUMs, heartbeats), and judging it
  against a state that already saw its future would not be causal. Equal timestamps are in order.
* Scores are in [0, 1] and rise with surprise; they are comparable across series, so one
  threshold can serve many sensors.
"""

from __future__ import annotations

import math
from typing import Any, Protocol, runtime_checkable


@runtime_checkable
class Detector(Protocol):
    """A streaming anomaly detector."""

    name: str

    def score_one(self, t: float, x: float) -> float:
        """Surprise of reading ``x`` at ``t`` given the past, in [0, 1]; does not change state."""
        ...

    def learn_one(self, t: float, x: float) -> None:
        """Fold the reading into the state."""
        ...

    def to_state(self) -> dict[str, Any]:
        """JSON-serialisable snapshot (hyper-parameters included) that ``restore`` rebuilds."""
        ...

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Detector:
        """Rebuild a detector of this class from ``to_state()``."""
        ...


class DetectorClass(Protocol):
    """A detector class as the registry keeps it: its ``kind`` (the name stored with its state) and
    the class method that rebuilds an instance from that state."""

    kind: str

    def from_state(self, state: dict[str, Any]) -> Detector:
        """Rebuild a detector of this class from ``to_state()``."""
        ...


#: readings are clamped to this magnitude before any arithmetic: no physical quantity we watch comes
#: near it, and it keeps squares and differences finite, so state stays JSON (no inf/NaN)
MAX_ABS = 1e12


def clamp(x: float) -> float:
    return MAX_ABS if x > MAX_ABS else -MAX_ABS if x < -MAX_ABS else x


def usable(t: float, x: float, newest_t: float) -> bool:
    """True when a reading may be scored and learned (finite, and not older than ``newest_t``)."""
    return math.isfinite(x) and math.isfinite(t) and t >= newest_t
