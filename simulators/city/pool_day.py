"""A pool day with plausible water chemistry, camera events and injected incidents (ground truth).

Deterministic by seed. Water follows a simple controlled process: free chlorine is consumed in
proportion to the bather load and topped up by a dosing controller towards its set point; pH
drifts up (CO2 outgassing, bathers) and an acid dosing pump pulls it back; redox follows
chlorine and pH; sensors add noise. Injected on top, and written down as ground truth:

* ``dosing_failure``: the chlorine pump stops; free chlorine decays, and redox with it;
* ``ph_pump_failure``: the acid pump stops; pH climbs;
* ``stuck_probe`` / ``spike``: pH sensor faults (a ``sensor_ph`` alarm is right, a water
  alarm would be false);
* ``motionless_swimmer`` / ``person_in_closed_zone``: camera events, critical.

Causes are recorded with ``expected_alarm=None``; what must be alarmed is recorded from the
noise-free water values themselves: every interval in which a true value is outside its
DIN 19643 band (``water_free_chlorine``, ``water_ph``, ``water_redox``), so detection delay is
measured from the moment the water really left the legal range.
"""

from __future__ import annotations

import math
import random
from dataclasses import asdict, dataclass, field
from typing import Any

OPEN_H, CLOSE_H = 6.0, 22.0


@dataclass(frozen=True)
class Injected:
    """One ground-truth incident: what, where, when (POSIX seconds)."""

    pool_id: str
    kind: str
    start: float
    end: float
    expected_alarm: str | None  # the alarm kind that should follow; None: must stay quiet
    severity: str | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class PoolDay:
    readings: list[tuple[float, str, dict[str, float], int]] = field(default_factory=list)  # t, pool, values, visitors
    camera: list[tuple[float, str, str, str]] = field(default_factory=list)  # t, pool, event_id, kind
    truth: list[Injected] = field(default_factory=list)


def _visitors(hour: float, weekend: bool, capacity: int) -> float:
    """Opening hours with a lunch bump and an after-work peak."""
    if not OPEN_H <= hour < CLOSE_H:
        return 0.0
    peaks = 0.35 * math.exp(-(((hour - 12.5) / 1.5) ** 2)) + 0.6 * math.exp(-(((hour - 17.5) / 1.8) ** 2))
    return capacity * min(0.95, 0.08 + peaks * (1.3 if weekend else 1.0))


def water_step(
    cl: float, ph: float, load: float, capacity: float, interval_s: float, *, chlorine_pump: bool = True, acid_pump: bool = True
) -> tuple[float, float, float]:
    """One interval of the true water: (free chlorine mg/l, pH, redox mV) afterwards.

    Bathers consume chlorine and the water loses some on its own; the dosing controller tops it
    up towards 0.45 mg/l with a feed-forward on the bather load. pH creeps up (CO2 outgassing,
    bathers) and the acid pump pulls it back towards 6.95. A stopped pump simply stops adding.
    Shared by the pool day and the synthetic city so both have the same chemistry.
    """
    # chlorine: consumption by bathers and decay; dosing towards 0.45 unless it failed
    dose = 0.02 * (0.45 - cl) * interval_s / 30 + 0.0002 * load if chlorine_pump else 0.0
    cl = max(0.0, cl - (0.0002 * load + 0.0015 * cl) * interval_s / 30 + dose)
    ph_drift = 0.002 * interval_s / 30 * (1 + load / capacity)
    acid = 0.05 * (ph - 6.95) * interval_s / 30 + ph_drift if acid_pump else 0.0
    ph = ph + ph_drift - acid
    redox = 650 + 250 * min(cl, 0.8) / 0.8 - 60 * (ph - 7.0)
    return cl, ph, redox


def _violations(pool: str, series: list[tuple[float, float, float, float]]) -> list[Injected]:
    """Intervals in which the true water was outside the DIN 19643 band (at least 2 minutes)."""
    checks = {
        "water_free_chlorine": lambda cl, ph, rx: not 0.3 <= cl <= 0.6,
        "water_ph": lambda cl, ph, rx: not 6.5 <= ph <= 7.2,
        "water_redox": lambda cl, ph, rx: rx < (770.0 if ph > 7.3 else 750.0),
    }
    out = []
    for kind, bad in checks.items():
        start = None
        for t, cl, ph, rx in series + [(math.inf, 0.45, 7.0, 800.0)]:
            if bad(cl, ph, rx) and start is None:
                start = t
            elif not bad(cl, ph, rx) and start is not None:
                if min(t, series[-1][0]) - start >= 120:
                    out.append(Injected(pool, kind, start, min(t, series[-1][0]), kind, "major"))
                start = None
    return out


def probe_readings(
    rng: random.Random, cl: float, ph: float, redox: float, load: float, *, temperature: float, turbidity: bool = False
) -> dict[str, float]:
    """What the probes report for the true water: the values plus sensor noise, rounded as
    transmitters do (combined chlorine and turbidity grow with the bather load)."""
    values = {
        "free_chlorine": round(max(0.0, cl + rng.gauss(0, 0.01)), 3),
        "ph": round(ph + rng.gauss(0, 0.01), 3),
        "redox": round(redox + rng.gauss(0, 3), 1),
        "combined_chlorine": round(max(0.0, 0.08 + 0.0002 * load + rng.gauss(0, 0.005)), 3),
        "temperature": round(temperature + rng.gauss(0, 0.05), 2),
    }
    if turbidity:
        values["turbidity"] = round(max(0.02, 0.12 + 0.0006 * load + rng.gauss(0, 0.01)), 3)
    return values


def simulate_pool_day(day_start: float, pools: int = 3, seed: int = 1, interval_s: float = 30.0, capacity: int = 200) -> PoolDay:
    """One day (24 h from ``day_start``) for ``pools`` pools, with 1-2 incidents of each kind."""
    rng = random.Random(seed)
    out = PoolDay()
    steps = int(86_400 / interval_s)
    weekend = (int(day_start // 86_400) + 4) % 7 >= 5  # 1970-01-01 was a Thursday
    for p in range(pools):
        pool = f"pool-{p + 1}"
        open_s, close_s = day_start + OPEN_H * 3600, day_start + CLOSE_H * 3600

        def window(min_len: float, max_len: float, open_s: float = open_s, close_s: float = close_s) -> tuple[float, float]:
            start = rng.uniform(open_s + 3600, close_s - max_len - 600)
            return start, start + rng.uniform(min_len, max_len)

        s, e = window(3600, 5400)
        dosing = Injected(pool, "dosing_failure", s, e, None)
        s, e = window(5400, 9000)
        ph_pump = Injected(pool, "ph_pump_failure", s, e, None)
        s, e = window(2400, 3600)
        stuck = Injected(pool, "stuck_probe", s, e, "sensor_ph", "minor")
        spike_t = rng.uniform(open_s, close_s)
        spike = Injected(pool, "spike", spike_t, spike_t + interval_s, "sensor_ph", "minor")
        out.truth += [dosing, ph_pump, stuck, spike]
        for k, kind in enumerate(("motionless_swimmer", "person_in_closed_zone")):
            t = rng.uniform(open_s, close_s)
            out.camera.append((t, pool, f"{pool}-cam-{k}", kind))
            out.truth.append(Injected(pool, kind, t, t + 30, kind, "critical"))

        cl, ph, stuck_value = 0.45, 7.0, None
        true_series: list[tuple[float, float, float, float]] = []
        for i in range(steps):
            t = day_start + i * interval_s
            hour = (t - day_start) / 3600
            load = _visitors(hour, weekend, capacity)
            cl, ph, redox = water_step(
                cl,
                ph,
                load,
                capacity,
                interval_s,
                chlorine_pump=not dosing.start <= t < dosing.end,
                acid_pump=not ph_pump.start <= t < ph_pump.end,
            )
            true_series.append((t, cl, ph, redox))
            values = probe_readings(rng, cl, ph, redox, load, temperature=27.0)
            if stuck.start <= t < stuck.end:
                stuck_value = stuck_value if stuck_value is not None else values["ph"]
                values["ph"] = stuck_value
            else:
                stuck_value = None
            if spike.start <= t < spike.end:
                values["ph"] = round(values["ph"] + 3.0, 3)
            out.readings.append((t, pool, values, int(load)))
        out.truth += _violations(pool, true_series)
    out.readings.sort(key=lambda r: (r[0], r[1]))
    out.camera.sort()
    return out
