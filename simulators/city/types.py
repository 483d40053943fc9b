"""The value types of the synthetic city: its configuration, what it emits, what it injected.

Kept apart from the generators so the calendar, traffic, bus and pool modules can share them
without importing each other. ``simulators.city`` re-exports everything here.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from typing import Any


@dataclass(frozen=True)
class CityConfig:
    """Size, clocks, calendar and injection rates of one synthetic city.

    Rates are expectations: the number of injections is Poisson-distributed over the run
    (after ``warmup_s``), so a short run may have none; tests raise the rates.
    """

    intersections: int = 12
    pools: int = 2
    bus_lines: int = 2
    frame_interval_s: float = 60.0  # detector frame interval
    pool_interval_s: float = 30.0
    bus_interval_s: float = 30.0
    state: str = "BY"  # German state for public holidays (holidays package, country DE)
    school_holidays: tuple[tuple[date, date], ...] = ()  # inclusive ranges, load_school_holidays(path)
    incident_rate_per_day: float = 12.0  # city-wide blocked lanes per day
    detector_fault_rate_per_day: float = 8.0  # city-wide stuck / silent / noisy detectors per day
    camera_incidents_per_pool_day: float = 2.0  # motionless swimmer or person in closed zone
    dosing_failures_per_pool_day: float = 1.5  # chlorine pump or acid (pH) pump stops
    sensor_faults_per_pool_day: float = 1.0  # pH probe stuck or spiking
    seed: int = 1
    timezone: str = "Europe/Berlin"  # the wall clock people live by: profiles use local time
    warmup_s: float = 3600.0  # no injection in the first hour: learning detectors need history
    pool_capacity: int = 180  # bathers per pool at full load

    def __post_init__(self) -> None:
        if self.intersections < 1 or self.pools < 0 or self.bus_lines < 0:
            raise ValueError("need at least one intersection; pools and bus lines may be 0")
        if min(self.frame_interval_s, self.pool_interval_s, self.bus_interval_s) <= 0:
            raise ValueError("intervals must be positive")
        if self.frame_interval_s > 900:
            raise ValueError("frame_interval_s above 900 s is not a detector frame (IntersectionFrame limit)")


@dataclass(frozen=True, order=True)
class Emission:
    """One record to publish: ordered by event time, then topic and key (a stable merge)."""

    t: float  # event time, POSIX seconds (the simulated clock)
    topic: str  # catalogue name without prefix, e.g. "sensors.intersection"
    key: str  # the record's key field value (intersection, pool, vehicle, venue id)
    value: bytes  # streams.records.encode(record)


@dataclass(frozen=True)
class GroundTruth:
    """Something the city did on purpose (or that emerged, like bunching), to score against."""

    kind: str
    subject_id: str
    start: float
    end: float
    expected_alarm: str | None
    severity: str | None
    details: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "subject_id": self.subject_id,
            "start": round(self.start, 3),
            "end": round(self.end, 3),
            "start_iso": iso(self.start),
            "end_iso": iso(self.end),
            "expected_alarm": self.expected_alarm,
            "severity": self.severity,
            "details": self.details,
        }

    def to_line(self) -> str:
        """One JSON line with sorted keys: byte-identical for identical truth."""
        return json.dumps(self.to_json(), sort_keys=True, separators=(",", ":"), ensure_ascii=False)

    def sort_key(self) -> tuple[float, str, str, float]:
        return (round(self.start, 3), self.kind, self.subject_id, round(self.end, 3))


def iso(t: float) -> str:
    return datetime.fromtimestamp(t, tz=timezone.utc).isoformat()


def utc(t: float) -> datetime:
    return datetime.fromtimestamp(t, tz=timezone.utc)


def rng_for(config: CityConfig, *parts: object) -> random.Random:
    """An independent stream per source and entity, so adding a pool leaves the traffic alone.

    String seeds are hashed with SHA-512 by ``random`` (not Python's salted ``hash``), so this
    is reproducible across processes.
    """
    return random.Random(":".join(str(p) for p in (config.seed, *parts)))


def poisson(rng: random.Random, lam: float) -> int:
    """Poisson sample; the normal approximation above 30 keeps busy detectors cheap."""
    import math

    if lam <= 0:
        return 0
    if lam > 30:
        return max(0, int(round(rng.gauss(lam, math.sqrt(lam)))))
    limit, k, p = math.exp(-lam), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1
