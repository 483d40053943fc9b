"""Were a decision's detector inputs degraded? The data-quality watch applied to the frames a
control loop sees, so that the explanation of a decision made on doubtful data says so.

The checks are ``detection/data_quality.py``'s, per detector quantity against the stream's own
history: ``stuck`` (the same non-zero value for as long as ``stuck_after`` one-minute frames
last: 30 minutes by default, whatever the frame interval, so a queue standing through one red
is not "stuck"), ``out_of_range`` (outside the plausible range of its quantity) and ``missing``
(a detector that reported earlier in this control loop is absent from the frame; one never seen,
such as an exit area nobody equipped, is not missing). Clock skew and drift are not judged here:
the desk has only event times, and traffic quantities follow a daily cycle; the telemetry
agent (``streams/agents/data_quality.py``) watches both on the raw streams.

State lives as long as the control loop (a restart or a new configuration starts it afresh).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

from detection.data_quality import COUNT_PER_S, OCCUPANCY, QUEUE_VEH, SPEED_KMH, DataQualityState, QualityLimits, detector_streams
from signals.controllers.base import DetectorObservation

#: the issues a decision's explanation reports
JUDGED = ("missing", "out_of_range", "stuck")


@dataclass
class InputQuality:
    """One intersection's detector streams, as one control loop has seen them."""

    limits: QualityLimits = field(default_factory=QualityLimits)
    seen: set[str] = field(default_factory=set)
    _watch: DataQualityState | None = None

    def observe(self, obs: DetectorObservation) -> tuple[tuple[str, tuple[str, ...]], ...]:
        """Fold one frame in: the degraded detectors of this frame and their issues, sorted."""
        if self._watch is None:
            self._watch = DataQualityState(self._scaled(obs.interval_s))
        if obs.interval_s <= 0 or not math.isfinite(obs.interval_s):
            return ()  # a frame without a usable interval has no rates to judge
        t, end, iid, watch = obs.time_s, obs.time_s + obs.interval_s, obs.intersection_id, self._watch
        issues: dict[str, set[str]] = {}
        # the streams of detection.data_quality.frame_streams, made without a dict per lane and
        # frame (this runs for every frame of every controlled intersection)
        for detector, m in obs.lanes.items():
            count, occupancy, speed, queue = detector_streams(iid, detector)
            found = [
                *watch.fold(count, COUNT_PER_S, t, end, m.count / obs.interval_s),
                *watch.fold(occupancy, OCCUPANCY, t, end, m.occupancy),
            ]
            if m.speed_mps is not None:
                found += watch.fold(speed, SPEED_KMH, t, end, float(m.speed_mps * 3.6))
            if m.queue_veh is not None:
                found += watch.fold(queue, QUEUE_VEH, t, end, float(m.queue_veh))
            judged = {i for i in found if i in JUDGED}
            if judged:
                issues[detector] = judged
        for detector in self.seen.difference(obs.lanes):
            issues.setdefault(detector, set()).add("missing")
        self.seen.update(obs.lanes)
        return tuple((d, tuple(sorted(i))) for d, i in sorted(issues.items()))

    def _scaled(self, interval_s: float) -> QualityLimits:
        """``stuck_after`` counts readings; keep it the same *duration* for shorter frames."""
        if not math.isfinite(interval_s) or interval_s <= 0 or interval_s >= self.limits.expected_interval_s:
            return self.limits
        factor = self.limits.expected_interval_s / interval_s
        return replace(self.limits, expected_interval_s=interval_s, stuck_after=math.ceil(self.limits.stuck_after * factor))
