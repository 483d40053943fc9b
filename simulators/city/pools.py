"""Indoor pools of the city: bathers, water chemistry, probe faults and camera events.

Chemistry is the pool day's (``simulators.city.pool_day.water_step``): chlorine consumed with the
bather load and topped up by the dosing controller, pH creeping up and pulled back by the
acid pump. The city adds a calendar to it: opening hours (longer on weekdays), bathers
following the time of day, more of them on weekends, public and school holidays and when it
rains (an indoor pool is where a rainy afternoon goes).

Injected and written as truth: chlorine and acid pump failures (causes, no alarm of their
own), pH probe faults (stuck, spike: a ``sensor_ph`` alarm is right, a water alarm wrong),
motionless swimmers and persons in closed zones (camera events, critical). What must be
alarmed about the water is recorded from the *true* values (``water_violation``), as the pool
day does, so detection delay is measured from when the water really left its band.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

from streams.records import PoolReading, PoolSupervisionEvent, Quantity, SupervisionKind, encode

from .calendar import RainPeriod, day_kind, rain_at, school_holiday
from .pool_day import _violations, probe_readings, water_step
from .types import CityConfig, Emission, GroundTruth, poisson, rng_for

PARAMETER_UNITS = {
    "free_chlorine": "mg/l",
    "combined_chlorine": "mg/l",
    "ph": "pH",
    "redox": "mV",
    "temperature": "degC",
    "turbidity": "FNU",
}


def pool_ids(config: CityConfig) -> list[str]:
    return [f"hallenbad-{i + 1}" for i in range(config.pools)]


def opening_hours(local: datetime, config: CityConfig) -> tuple[float, float]:
    """Weekdays 06:30-22:00 (early swimmers, clubs in the evening); weekends and holidays 08-20."""
    return (6.5, 22.0) if day_kind(local.date(), config) == "weekday" else (8.0, 20.0)


def visitor_share(t: float, config: CityConfig, mm_h: float = 0.0) -> float:
    """Share of the pool's capacity in the water at ``t`` (0 when closed)."""
    local = datetime.fromtimestamp(t, ZoneInfo(config.timezone))
    h = local.hour + local.minute / 60.0
    open_h, close_h = opening_hours(local, config)
    if not open_h <= h < close_h:
        return 0.0

    def bump(c: float, w: float) -> float:
        return math.exp(-0.5 * ((h - c) / w) ** 2)

    if day_kind(local.date(), config) == "weekday":
        share = 0.08 + 0.15 * bump(7.0, 0.6) + 0.25 * bump(12.5, 1.1) + 0.5 * bump(17.8, 1.5)
        if school_holiday(local.date(), config.school_holidays):
            share += 0.3 * bump(14.0, 2.5)  # children in the afternoon
    else:
        share = 0.12 + 0.6 * bump(14.0, 2.8)
    if mm_h > 0:
        share *= 1.2
    return min(0.95, share)


@dataclass(frozen=True)
class _Window:
    kind: str
    start: float
    end: float


def _active(windows: list[_Window], kind: str, t: float) -> bool:
    """Whether a window of ``kind`` covers ``t`` (start inclusive, end exclusive)."""
    return any(w.kind == kind and w.start <= t < w.end for w in windows)


@dataclass
class PoolRun:
    """One pool over the run: readings (t, values, visitors), camera events, truth."""

    pool_id: str
    readings: list[tuple[float, dict[str, float], int]] = field(default_factory=list)
    camera: list[tuple[float, PoolSupervisionEvent]] = field(default_factory=list)
    truth: list[GroundTruth] = field(default_factory=list)


@dataclass
class _Planner:
    """Draws the pool's injections from its own plan generator, up front.

    Every draw comes from ``plan`` in a fixed order (pumps, probe faults, camera events), so the
    injections, and with them the truth, depend only on the seed and the pool, never on the
    readings drawn later from the pool's second generator.
    """

    config: CityConfig
    pool_id: str
    plan: random.Random
    t0: float
    t1: float

    @property
    def dt(self) -> float:
        return self.config.pool_interval_s

    @property
    def lo(self) -> float:
        """Nothing is injected during the warm-up: learning detectors need history first."""
        return self.t0 + self.config.warmup_s

    @property
    def days(self) -> float:
        """Run days after the warm-up: the rates are per pool and day."""
        return max(0.0, self.t1 - self.lo) / 86_400

    def place(self, min_s: float, max_s: float, while_open: bool, taken: list[_Window]) -> tuple[float, float] | None:
        """A span of ``min_s..max_s`` seconds inside the run, at least 30 min from every ``taken``
        window (and starting while the pool is open if ``while_open``); None after 200 tries."""
        config, plan, lo, t1, dt = self.config, self.plan, self.lo, self.t1, self.dt
        for _ in range(200):
            length = plan.uniform(min_s, max_s)
            if t1 - length - dt <= lo:
                return None
            s = plan.uniform(lo, t1 - length - dt)
            if while_open and visitor_share(s, config) <= 0:
                continue
            if all(s + length + 1800 <= w.start or s >= w.end + 1800 for w in taken):
                return s, s + length
        return None

    def pump_failures(self) -> list[_Window]:
        """Chlorine (60 %) and acid pump stops; they never overlap each other."""
        pumps: list[_Window] = []
        for _ in range(poisson(self.plan, self.config.dosing_failures_per_pool_day * self.days)):
            kind = "dosing_failure" if self.plan.random() < 0.6 else "ph_pump_failure"
            span = self.place(1800, 5400, False, pumps) if kind == "dosing_failure" else self.place(3600, 9000, False, pumps)
            if span:
                pumps.append(_Window(kind, *span))
        return pumps

    def probe_faults(self, pumps: list[_Window]) -> list[_Window]:
        """pH probe stuck (40-80 min) or one spiking reading, 30 min or more from every pump
        failure and other probe fault, so each truth record explains its own symptoms."""
        probe: list[_Window] = []
        t0, dt = self.t0, self.dt
        for _ in range(poisson(self.plan, self.config.sensor_faults_per_pool_day * self.days)):
            if self.plan.random() < 0.5:
                span = self.place(2400, 4800, False, probe + pumps)
                if span:
                    probe.append(_Window("sensor_stuck", *span))
            else:
                span = self.place(dt, dt, False, probe + pumps)
                if span:
                    s = t0 + math.ceil((span[0] - t0) / dt) * dt  # one reading
                    probe.append(_Window("sensor_spike", s, s + dt))
        return probe

    def camera_events(self) -> list[tuple[float, PoolSupervisionEvent]]:
        """Motionless swimmers and persons in the closed diving pool, only while it is open."""
        plan, pool_id = self.plan, self.pool_id
        events: list[tuple[float, PoolSupervisionEvent]] = []
        for n in range(poisson(plan, self.config.camera_incidents_per_pool_day * self.days)):
            span = self.place(30, 30, True, [])
            if not span:
                continue
            t = round(span[0], 3)
            event_kind: SupervisionKind = "motionless_swimmer" if plan.random() < 0.5 else "person_in_closed_zone"
            if event_kind == "motionless_swimmer":
                zone, duration = f"becken-bahn-{plan.randint(1, 6)}", round(plan.uniform(10, 25), 1)
            else:
                zone, duration = "sprungbecken-gesperrt", None
            event = PoolSupervisionEvent(
                schema_version=1,
                event_time=datetime.fromtimestamp(t, timezone.utc),
                pool_id=pool_id,
                event_id=f"{pool_id}-cam-{int(t)}-{n}",
                kind=event_kind,
                zone=zone,
                duration_s=duration,
                confidence=round(plan.uniform(0.8, 0.99), 2),
                persons=1,
            )
            events.append((t, event))
        return events


def _camera_truth(pool_id: str, t: float, event: PoolSupervisionEvent) -> GroundTruth:
    """A camera event is critical and must raise an alarm of its own kind."""
    return GroundTruth(event.kind, pool_id, t, t + 30, event.kind, "critical", {"event_id": event.event_id, "zone": event.zone})


def _injection_truth(pool_id: str, pumps: list[_Window], probe: list[_Window]) -> list[GroundTruth]:
    """Pump failures are causes (no alarm of their own); probe faults want ``sensor_ph``."""
    truth = [
        GroundTruth(w.kind, pool_id, w.start, w.end, None, None, {"pump": "chlorine" if w.kind == "dosing_failure" else "acid"})
        for w in pumps
    ]
    truth += [GroundTruth(w.kind, pool_id, w.start, w.end, "sensor_ph", "minor", {"parameter": "ph"}) for w in probe]
    return truth


class _ProbeFaults:
    """Applies the pH probe faults to what the transmitter reports (the true water is unchanged).

    Carries the stuck value from one reading to the next: a stuck probe repeats the reading it
    had when it got stuck until its window ends.
    """

    def __init__(self, probe: list[_Window]) -> None:
        self.probe = probe
        self.stuck_value: float | None = None

    def apply(self, t: float, values: dict[str, float]) -> None:
        for w in self.probe:
            if w.kind == "sensor_stuck" and w.start <= t < w.end:
                self.stuck_value = self.stuck_value if self.stuck_value is not None else values["ph"]
                values["ph"] = self.stuck_value
                break
        else:
            self.stuck_value = None
        if _active(self.probe, "sensor_spike", t):
            values["ph"] = round(values["ph"] + 3.0, 3)


def _simulate_water(
    config: CityConfig,
    run: PoolRun,
    rng: random.Random,
    span: tuple[float, float],
    rain: list[RainPeriod],
    pumps: list[_Window],
    probe: list[_Window],
) -> list[tuple[float, float, float, float]]:
    """Step the water through the run, appending what the probes report to ``run.readings``.

    Returns the *true* series (t, free chlorine, pH, redox): water violations are judged on
    it, not on the probes, so a probe fault never counts as (or hides) a real violation.
    """
    t0, t1 = span
    dt, cap = config.pool_interval_s, config.pool_capacity
    faults = _ProbeFaults(probe)
    cl, ph, visitors_noise = 0.45, 7.0, 0.0
    true_series: list[tuple[float, float, float, float]] = []
    steps = int(math.ceil((t1 - t0) / dt - 1e-9))
    for i in range(steps):
        t = t0 + i * dt
        mm_h = rain_at(t, rain)
        visitors_noise = 0.95 * visitors_noise + rng.gauss(0.0, 0.02)
        load = cap * visitor_share(t, config, mm_h) * math.exp(visitors_noise)
        cl, ph, redox = water_step(
            cl,
            ph,
            load,
            cap,
            dt,
            chlorine_pump=not _active(pumps, "dosing_failure", t),
            acid_pump=not _active(pumps, "ph_pump_failure", t),
        )
        true_series.append((t, cl, ph, redox))
        values = probe_readings(rng, cl, ph, redox, load, temperature=28.0, turbidity=True)
        faults.apply(t, values)
        run.readings.append((t, values, int(load)))
    return true_series


def _violation_truth(pool_id: str, true_series: list[tuple[float, float, float, float]]) -> list[GroundTruth]:
    """Water outside its band, from the true values (detection delay counts from there)."""
    if not true_series:
        return []
    return [
        GroundTruth("water_violation", pool_id, v.start, v.end, v.expected_alarm, "major", {"parameter": v.kind.removeprefix("water_")})
        for v in _violations(pool_id, true_series)
    ]


def simulate_pool(config: CityConfig, pool_id: str, t0: float, t1: float, rain: list[RainPeriod]) -> PoolRun:
    """One pool from ``t0`` to ``t1``: injections planned up front, then the water stepped through."""
    planner = _Planner(config, pool_id, rng_for(config, "pool-plan", pool_id), t0, t1)
    rng = rng_for(config, "pool", pool_id)
    run = PoolRun(pool_id)
    pumps = planner.pump_failures()
    probe = planner.probe_faults(pumps)
    run.camera = planner.camera_events()
    run.truth += [_camera_truth(pool_id, t, event) for t, event in run.camera]
    run.truth += _injection_truth(pool_id, pumps, probe)
    true_series = _simulate_water(config, run, rng, (t0, t1), rain, pumps, probe)
    run.truth += _violation_truth(pool_id, true_series)
    return run


def pool_emissions(run: PoolRun) -> Iterator[Emission]:
    """Readings and camera events of one pool in time order."""
    items: list[tuple[float, int, Emission]] = []
    for t, values, visitors in run.readings:
        record = PoolReading(
            schema_version=1,
            event_time=datetime.fromtimestamp(t, timezone.utc),
            pool_id=run.pool_id,
            visitors=visitors,
            **{p: Quantity(v, PARAMETER_UNITS[p]) for p, v in values.items()},
        )
        items.append((t, 0, Emission(t, "sensors.pool", run.pool_id, encode(record))))
    for t, event in run.camera:
        items.append((t, 1, Emission(t, "pool.supervision", run.pool_id, encode(event))))
    items.sort(key=lambda x: (x[0], x[2].topic, x[1]))
    for _, _, e in items:
        yield e
