"""DIN 19643 water rules: bands, pH-dependent redox floor, minimum duration, hysteresis."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import pytest
from hypothesis import given
from hypothesis import strategies as st

from detection.water_rules import BASIN_TYPES, RuleState, WaterLimits, WaterVerdict, evaluate, limits_for

SWIMMER = limits_for("swimmer", min_duration_s=30.0)


def run(
    readings: Sequence[tuple[float, Mapping[str, float]]], limits: WaterLimits = SWIMMER
) -> tuple[RuleState | None, list[WaterVerdict]]:
    state: RuleState | None = None
    out: list[WaterVerdict] = []
    for t, r in readings:
        state, verdicts = evaluate(state, t, r, limits)
        out += verdicts
    return state, out


def test_din_defaults() -> None:
    b = SWIMMER.bands
    assert (b["free_chlorine"].low, b["free_chlorine"].high) == (0.3, 0.6)
    assert b["combined_chlorine"].high == 0.2
    assert (b["ph"].low, b["ph"].high) == (6.5, 7.2)
    assert b["redox"].low == 750.0
    assert BASIN_TYPES["whirlpool"].bands["free_chlorine"].low == 0.7


def test_single_noisy_reading_does_not_alarm() -> None:
    _, out = run([(0, {"ph": 7.0}), (10, {"ph": 7.9}), (20, {"ph": 7.0}), (30, {"ph": 7.0}), (60, {"ph": 7.0})])
    assert out == []


def test_violation_confirmed_after_minimum_duration_and_dated_from_its_start() -> None:
    readings = [(t, {"free_chlorine": 0.2}) for t in range(0, 50, 10)]
    _, out = run(readings)
    assert len(out) == 1
    v = out[0]
    assert v.violated and v.parameter == "free_chlorine" and v.since == 0 and v.at == 30
    assert v.band == "0.3..0.6" and v.unit == "mg/l"


def test_hysteresis_value_just_inside_the_band_does_not_clear() -> None:
    readings = [(t, {"ph": 7.5}) for t in range(0, 40, 10)]
    readings += [(t, {"ph": 7.19}) for t in range(40, 200, 10)]  # inside, but within the 0.05 margin
    _, out = run(readings)
    assert [v.violated for v in out] == [True]
    _, out = run(readings + [(t, {"ph": 7.1}) for t in range(200, 240, 10)])
    assert [v.violated for v in out] == [True, False]
    assert out[1].since == 200 and out[1].at == 230


def test_redox_floor_rises_with_ph_above_7_3() -> None:
    high_ph = [(t, {"ph": 7.4, "redox": 760.0}) for t in range(0, 40, 10)]
    _, out = run(high_ph)
    assert {v.parameter for v in out} == {"ph", "redox"}
    normal_ph = [(t, {"ph": 7.0, "redox": 760.0}) for t in range(0, 40, 10)]
    assert run(normal_ph)[1] == []


def test_old_or_repeated_readings_cannot_move_the_rule() -> None:
    readings = [(t, {"ph": 8.0}) for t in (0, 10, 20)] + [(5, {"ph": 8.0}), (20, {"ph": 8.0}), (-100, {"ph": 8.0})]
    _, out = run(readings)
    assert out == []  # 20 s < 30 s even though more readings arrived
    _, out = run(readings + [(30, {"ph": 8.0})])
    assert len(out) == 1


def test_overrides_and_unknowns() -> None:
    lim = limits_for("swimmer", {"ph": {"high": 7.4}})
    assert lim.bands["ph"].high == 7.4 and lim.bands["ph"].low == 6.5
    with pytest.raises(ValueError, match="unknown basin type"):
        limits_for("jacuzzi")
    with pytest.raises(ValueError, match="unknown water parameter"):
        limits_for("swimmer", {"chlorine": {"low": 0.1}})
    with pytest.raises(ValueError, match="unknown band field"):
        limits_for("swimmer", {"ph": {"max": 7.4}})


values = st.floats(allow_nan=True, allow_infinity=True, width=32)
reading = st.fixed_dictionaries({}, optional={"ph": values, "free_chlorine": values, "redox": values})


@given(st.lists(st.tuples(st.floats(-1e6, 1e6) | st.just(math.nan), reading), max_size=60))
def test_verdicts_alternate_and_never_raise(readings) -> None:
    """Per parameter: violated, recovered, violated, ... never twice the same way."""
    _, out = run(readings)
    for p in {v.parameter for v in out}:
        flags = [v.violated for v in out if v.parameter == p]
        assert flags == [i % 2 == 0 for i in range(len(flags))]
