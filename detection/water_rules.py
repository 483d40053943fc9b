"""Pool water limits after DIN 19643-1, with hysteresis and a minimum duration.

A single noisy reading must not ring the bell, and a value hovering at a limit must not ring
it every minute. So a parameter *enters* violation only after it has been outside its band for
``min_duration_s`` (event time), and *leaves* it only after it has been back inside the band
by the hysteresis margin for ``min_duration_s`` too. State per pool is a plain dict, so the
stream side can keep it in a Faust table unchanged.

Defaults are DIN 19643-1 (2012) for the usual basin types; the standard allows operators to
narrow them, and every band is configurable per basin type. Redox has a pH-dependent floor:
>= 750 mV, but >= 770 mV while pH is above 7.3 (the standard's allowance for seawater-like
and high-pH water), so its band is evaluated with the pH of the same reading when present.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

#: parameter -> unit (the canonical units of streams.records.PoolReading.values())
UNITS: dict[str, str] = {
    "free_chlorine": "mg/l",
    "combined_chlorine": "mg/l",
    "ph": "pH",
    "redox": "mV",
    "temperature": "degC",
    "turbidity": "FNU",
}


@dataclass(frozen=True)
class Band:
    """The legal range of one parameter and the margin a value must recover by."""

    low: float | None = None
    high: float | None = None
    hysteresis: float = 0.0

    def outside(self, value: float) -> bool:
        return (self.low is not None and value < self.low) or (self.high is not None and value > self.high)

    def recovered(self, value: float) -> bool:
        """Inside the band with room to spare, so the alarm may clear."""
        h = self.hysteresis
        return (self.low is None or value >= self.low + h) and (self.high is None or value <= self.high - h)

    def describe(self) -> str:
        if self.low is not None and self.high is not None:
            return f"{self.low:g}..{self.high:g}"
        if self.low is not None:
            return f">= {self.low:g}"
        return f"<= {self.high:g}"


@dataclass(frozen=True)
class WaterLimits:
    """Bands of one basin type. ``redox_high_ph`` applies while pH exceeds ``redox_ph_switch``."""

    basin_type: str
    bands: Mapping[str, Band]
    redox_high_ph: Band = field(default_factory=lambda: Band(low=770.0, hysteresis=10.0))
    redox_ph_switch: float = 7.3
    min_duration_s: float = 30.0

    def band_for(self, parameter: str, reading: Mapping[str, float]) -> Band | None:
        if parameter == "redox":
            ph = reading.get("ph")
            if ph is not None and ph > self.redox_ph_switch:
                return self.redox_high_ph
        return self.bands.get(parameter)


_DIN_COMMON: dict[str, Band] = {
    "free_chlorine": Band(0.3, 0.6, hysteresis=0.02),
    "combined_chlorine": Band(None, 0.2, hysteresis=0.02),
    "ph": Band(6.5, 7.2, hysteresis=0.05),
    "redox": Band(750.0, None, hysteresis=10.0),
    "turbidity": Band(None, 0.5, hysteresis=0.05),
}

#: DIN 19643-1 defaults; temperature bands are operating practice (the standard does not
#: fix them), hot whirlpools allow more chlorine (0.7..1.0 mg/l)
BASIN_TYPES: dict[str, WaterLimits] = {
    "swimmer": WaterLimits("swimmer", {**_DIN_COMMON, "temperature": Band(24.0, 30.0, 0.3)}),
    "non_swimmer": WaterLimits("non_swimmer", {**_DIN_COMMON, "temperature": Band(26.0, 32.0, 0.3)}),
    "toddler": WaterLimits("toddler", {**_DIN_COMMON, "temperature": Band(28.0, 34.0, 0.3)}),
    "whirlpool": WaterLimits(
        "whirlpool",
        {**_DIN_COMMON, "free_chlorine": Band(0.7, 1.0, 0.02), "temperature": Band(30.0, 37.0, 0.3)},
    ),
}


def _override(parameter: str, band: Band, change: Mapping[str, float | None]) -> Band:
    """``band`` with the fields ``change`` names replaced; ``None`` removes a limit, and a band
    always has a hysteresis (no recovery margin is 0, not None)."""
    hysteresis = change.get("hysteresis", band.hysteresis)
    if hysteresis is None:
        raise ValueError(f"{parameter}: hysteresis must be a number (0 for no recovery margin)")
    return replace(band, low=change.get("low", band.low), high=change.get("high", band.high), hysteresis=hysteresis)


def limits_for(
    basin_type: str, overrides: Mapping[str, Mapping[str, float | None]] | None = None, min_duration_s: float | None = None
) -> WaterLimits:
    """Limits of a basin type, with per-parameter overrides (``{"ph": {"high": 7.4}}``).

    Unknown basin types and parameters are errors: a typo must not silently fall back to
    defaults that may be wrong for the basin.
    """
    try:
        base = BASIN_TYPES[basin_type]
    except KeyError:
        raise ValueError(f"unknown basin type {basin_type!r}; known: {', '.join(BASIN_TYPES)}") from None
    bands = dict(base.bands)
    for parameter, change in (overrides or {}).items():
        if parameter not in UNITS:
            raise ValueError(f"unknown water parameter {parameter!r}; known: {', '.join(UNITS)}")
        unknown = set(change) - {"low", "high", "hysteresis"}
        if unknown:
            raise ValueError(f"{parameter}: unknown band field(s) {sorted(unknown)}")
        bands[parameter] = _override(parameter, bands.get(parameter, Band()), change)
    limits = replace(base, bands=bands)
    return replace(limits, min_duration_s=min_duration_s) if min_duration_s is not None else limits


@dataclass(frozen=True)
class WaterVerdict:
    """A change of a parameter's legal state: the alarm side raises or clears on it."""

    parameter: str
    violated: bool  # True: entered violation; False: recovered
    value: float
    unit: str
    band: str
    since: float  # event time (s) the condition began (violation) or recovery began
    at: float  # event time (s) of the reading that confirmed it


# per parameter: {"violated": bool, "pending_since": float | None, "last_t": float}
RuleState = dict[str, dict[str, Any]]


def evaluate(state: RuleState | None, t: float, reading: Mapping[str, float], limits: WaterLimits) -> tuple[RuleState, list[WaterVerdict]]:
    """Fold one reading (canonical units) into the state; return the state changes it confirms.

    Readings older than the newest one seen for a parameter are ignored (at-least-once
    redelivery, out-of-order sensors): they cannot move a duration-based rule backwards.
    NaN and infinite values are ignored too; silence and stuck sensors are the sensor-fault
    detector's business, not the legal limits'.
    """
    new: RuleState = {k: dict(v) for k, v in (state or {}).items()}
    verdicts: list[WaterVerdict] = []
    for parameter, value in reading.items():
        band = limits.band_for(parameter, reading)
        if band is None or not math.isfinite(value) or not math.isfinite(t):
            continue
        s = new.setdefault(parameter, {"violated": False, "pending_since": None, "last_t": -math.inf})
        if t <= s["last_t"]:
            continue
        s["last_t"] = t
        # a violated parameter waits to recover; a normal one waits to violate
        changing = band.recovered(value) if s["violated"] else band.outside(value)
        if not changing:
            s["pending_since"] = None
            continue
        if s["pending_since"] is None:
            s["pending_since"] = t
        if t - s["pending_since"] >= limits.min_duration_s:
            s["violated"] = not s["violated"]
            verdicts.append(
                WaterVerdict(parameter, s["violated"], value, UNITS[parameter], band.describe(), since=s["pending_since"], at=t)
            )
            s["pending_since"] = None
    return new, verdicts
