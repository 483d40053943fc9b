"""Broken field detectors for the closed loop: dead, stuck or noisy, as cities run them.

Pure: frames in, frames out; the randomness comes from the run's seed, so every controller of a
comparison meets the same detectors failing in the same way. What each kind does to a reading:

* ``dead``: absent from every frame, as a detector that lost power or its link reports nothing;
* ``stuck``: from a moment drawn in the first half of the run, the detector repeats the reading it
  had then, forever (a frozen video zone or a hung loop card: *stuck on* when it froze with
  vehicles in it, *stuck off* when it froze empty, which looks like an empty lane);
* ``noisy``: every reading perturbed independently: counts miss or double a vehicle, queue and
  vehicles in the zone are off by a factor (log-normal, sigma 0.5) and by up to one vehicle,
  occupancy by a normal error (sigma 0.1), all clipped to what the record allows.

The controllers are told nothing: like a city's, they see only the frames.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from enum import StrEnum

import msgspec

from streams.records import DetectorReading, IntersectionFrame


class FailureKind(StrEnum):
    DEAD = "dead"
    STUCK = "stuck"
    NOISY = "noisy"


#: the noise of a ``noisy`` detector (see the module docstring)
NOISE_FACTOR_SIGMA = 0.5
NOISE_OCCUPANCY_SIGMA = 0.1
NOISE_COUNT_ERROR = 0.2


@dataclass
class DetectorFaults:
    """The failed detectors of one run and what they do to the frames, in step order.

    ``onset_s`` (stuck only): simulation second from which each detector repeats its reading.
    """

    kind: FailureKind
    failed: frozenset[str]
    seed: int
    onset_s: dict[str, float] = field(default_factory=dict)
    _frozen: dict[str, DetectorReading] = field(default_factory=dict, init=False, repr=False)
    _rng: random.Random = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._rng = random.Random(f"detector-noise/{self.seed}")

    @classmethod
    def draw(cls, kind: FailureKind, failed: frozenset[str], seed: int, begin_s: float, end_s: float) -> DetectorFaults:
        """Faults for ``failed`` from ``seed``; stuck detectors freeze in the first half of the run."""
        rng = random.Random(f"detector-onset/{seed}")
        half = begin_s + max(0.0, end_s - begin_s) / 2
        onset = {d: float(math.floor(rng.uniform(begin_s, half))) for d in sorted(failed)} if kind is FailureKind.STUCK else {}
        return cls(kind, failed, seed, onset)

    def apply(self, frame: IntersectionFrame, t: float) -> IntersectionFrame:
        """The frame as the city receives it at simulation second ``t``."""
        if not self.failed or not any(r.detector_id in self.failed for r in frame.detectors):
            return frame
        if self.kind is FailureKind.DEAD:
            kept = [r for r in frame.detectors if r.detector_id not in self.failed]
        else:
            kept = [self._reading(r, t) if r.detector_id in self.failed else r for r in frame.detectors]
        return msgspec.structs.replace(frame, detectors=kept)

    def _reading(self, r: DetectorReading, t: float) -> DetectorReading:
        if self.kind is FailureKind.STUCK:
            if t < self.onset_s.get(r.detector_id, math.inf):
                return r
            return self._frozen.setdefault(r.detector_id, r)
        return self._noisy(r)

    def _noisy(self, r: DetectorReading) -> DetectorReading:
        rng = self._rng
        draw = rng.random()
        count = r.count + (-1 if draw < NOISE_COUNT_ERROR / 2 else 1 if draw < NOISE_COUNT_ERROR else 0)
        occupancy = min(1.0, max(0.0, r.occupancy + rng.gauss(0.0, NOISE_OCCUPANCY_SIGMA)))
        return msgspec.structs.replace(
            r,
            count=max(0, count),
            occupancy=occupancy,
            queue_veh=self._amount(r.queue_veh),
            vehicles=self._amount(r.vehicles),
        )

    def _amount(self, value: float | None) -> float | None:
        """A vehicle amount off by a log-normal factor and up to one vehicle, never negative."""
        factor = self._rng.lognormvariate(0.0, NOISE_FACTOR_SIGMA)
        offset = self._rng.uniform(-1.0, 1.0)
        if value is None:
            return None
        return float(min(1_000.0, max(0.0, round(value * factor + offset))))
