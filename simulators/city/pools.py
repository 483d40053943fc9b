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


@dataclass
class PoolRun:
    """One pool over the run: readings (t, values, visitors), camera events, truth."""

    pool_id: str
    readings: list[tuple[float, dict[str, float], int]] = field(default_factory=list)
    camera: list[tuple[float, PoolSupervisionEvent]] = field(default_factory=list)
    truth: list[GroundTruth] = field(default_factory=list)


def simulate_pool(config: CityConfig, pool_id: str, t0: float, t1: float, rain: list[RainPeriod]) -> PoolRun:
    plan = rng_for(config, "pool-plan", pool_id)
    rng = rng_for(config, "pool", pool_id)
    dt = config.pool_interval_s
    lo = t0 + config.warmup_s
    days = max(0.0, t1 - lo) / 86_400
    run = PoolRun(pool_id)
    cap = config.pool_capacity

    def place(min_s: float, max_s: float, while_open: bool, taken: list[_Window]) -> tuple[float, float] | None:
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

    pumps: list[_Window] = []
    for _ in range(poisson(plan, config.dosing_failures_per_pool_day * days)):
        kind = "dosing_failure" if plan.random() < 0.6 else "ph_pump_failure"
        span = place(1800, 5400, False, pumps) if kind == "dosing_failure" else place(3600, 9000, False, pumps)
        if span:
            pumps.append(_Window(kind, *span))
    probe: list[_Window] = []
    for _ in range(poisson(plan, config.sensor_faults_per_pool_day * days)):
        if plan.random() < 0.5:
            span = place(2400, 4800, False, probe + pumps)
            if span:
                probe.append(_Window("sensor_stuck", *span))
        else:
            span = place(dt, dt, False, probe + pumps)
            if span:
                s = t0 + math.ceil((span[0] - t0) / dt) * dt  # one reading
                probe.append(_Window("sensor_spike", s, s + dt))
    for n in range(poisson(plan, config.camera_incidents_per_pool_day * days)):
        span = place(30, 30, True, [])
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
        run.camera.append((t, event))
        run.truth.append(GroundTruth(event_kind, pool_id, t, t + 30, event_kind, "critical", {"event_id": event.event_id, "zone": zone}))
    for w in pumps:
        run.truth.append(
            GroundTruth(w.kind, pool_id, w.start, w.end, None, None, {"pump": "chlorine" if w.kind == "dosing_failure" else "acid"})
        )
    for w in probe:
        run.truth.append(GroundTruth(w.kind, pool_id, w.start, w.end, "sensor_ph", "minor", {"parameter": "ph"}))

    cl, ph, visitors_noise, stuck_value = 0.45, 7.0, 0.0, None
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
            chlorine_pump=not any(w.kind == "dosing_failure" and w.start <= t < w.end for w in pumps),
            acid_pump=not any(w.kind == "ph_pump_failure" and w.start <= t < w.end for w in pumps),
        )
        true_series.append((t, cl, ph, redox))
        values = probe_readings(rng, cl, ph, redox, load, temperature=28.0, turbidity=True)
        for w in probe:
            if w.kind == "sensor_stuck" and w.start <= t < w.end:
                stuck_value = stuck_value if stuck_value is not None else values["ph"]
                values["ph"] = stuck_value
                break
        else:
            stuck_value = None
        if any(w.kind == "sensor_spike" and w.start <= t < w.end for w in probe):
            values["ph"] = round(values["ph"] + 3.0, 3)
        run.readings.append((t, values, int(load)))
    if true_series:
        for v in _violations(pool_id, true_series):
            run.truth.append(
                GroundTruth(
                    "water_violation", pool_id, v.start, v.end, v.expected_alarm, "major", {"parameter": v.kind.removeprefix("water_")}
                )
            )
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
