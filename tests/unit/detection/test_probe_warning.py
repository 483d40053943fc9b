"""The early warning on pool probes (detection/probe_warning.py): it warns of a stopped pump
before the water leaves its band, says nothing on ordinary days, in its warm-up, on a sensor
fault or on an old reading, and survives the table's JSON."""

from __future__ import annotations

import json
import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from detection.probe_warning import PoolWarnings, WarningLimits, warning_kind

T0 = 1_780_000_000.0
DAY_MIN = 1440


def _ordinary(rng: random.Random, i: int, ph_drift: float = 0.0) -> dict[str, float]:
    """A minute of a pool whose pumps work: pH and chlorine held near their set points with a
    small daily swing and probe noise."""
    day = 2 * math.pi * i / DAY_MIN
    return {
        "ph": 7.0 + 0.03 * math.sin(day) + ph_drift + rng.gauss(0, 0.01),
        "free_chlorine": 0.45 - 0.03 * math.sin(day) + rng.gauss(0, 0.008),
        "redox": 780 + 8 * math.sin(day) + rng.gauss(0, 3),
    }


def _days(w: PoolWarnings, rng: random.Random, days: int, start: int = 0) -> list[tuple[int, str]]:
    raised = []
    for i in range(start, start + days * DAY_MIN):
        raised += [(i, tr.kind) for tr in w.observe("P1", T0 + 60 * i, _ordinary(rng, i)).triggers]
    return raised


def test_a_stopped_acid_pump_is_warned_once_before_ph_leaves_its_band_and_never_cleared_by_the_detector() -> None:
    rng, w = random.Random(1), PoolWarnings(WarningLimits())
    assert _days(w, rng, 3) == []  # three ordinary days, the first two the warm-up
    start = 3 * DAY_MIN
    warned_at = None
    for k in range(90):  # the acid pump stops: pH climbs 0.24 per hour
        values = _ordinary(rng, start + k, ph_drift=0.004 * k)
        out = w.observe("P1", T0 + 60 * (start + k), values)
        if out.triggers:
            assert warned_at is None, "one warning per unusual stretch"
            (trigger,) = out.triggers
            assert trigger.kind == warning_kind("ph") == "unusual_ph" and trigger.severity == "minor"
            assert "acid" in trigger.message and trigger.evidence["score"] >= 0.8
            warned_at, ph_then = k, values["ph"]
    assert warned_at is not None, "no warning in 90 minutes of a climbing pH"
    assert ph_then < 7.2, f"warned only at pH {ph_then:.3f}, past DIN's 7.2"
    for k in range(90, 240):  # the pump runs again: whether it does is for the person to check
        out = w.observe("P1", T0 + 60 * (start + k), _ordinary(rng, start + k))
        assert not out.triggers and not out.clears
    assert w.open == {}  # the stretch is over: a later one raises again


def test_no_warning_in_the_warm_up_even_for_a_climb() -> None:
    rng, w = random.Random(2), PoolWarnings(WarningLimits(warmup_s=86_400 * 5))
    assert _days(w, rng, 3) == []
    start = 3 * DAY_MIN
    for k in range(90):
        assert not w.observe("P1", T0 + 60 * (start + k), _ordinary(rng, start + k, ph_drift=0.004 * k)).triggers


def test_a_spiking_probe_is_a_sensor_fault_not_unusual_water() -> None:
    rng, w = random.Random(3), PoolWarnings(WarningLimits())
    _days(w, rng, 3)
    i = 3 * DAY_MIN
    spike = {**_ordinary(rng, i), "ph": 9.5}  # one reading far off, then back: the sensor-fault screen rejects it
    assert not w.observe("P1", T0 + 60 * i, spike).triggers
    assert not _days(w, rng, 1, start=i + 1)


def test_old_and_repeated_readings_are_ignored() -> None:
    rng, w = random.Random(4), PoolWarnings(WarningLimits())
    _days(w, rng, 3)
    before = json.dumps(w.to_state(), sort_keys=True)
    last = w.last
    assert last is not None
    for at in (last, last - 3600, float("nan")):
        assert not w.observe("P1", at, {"ph": 9.0, "free_chlorine": 0.1, "redox": 500}).triggers
    assert json.dumps(w.to_state(), sort_keys=True) == before


def test_the_state_survives_the_tables_json() -> None:
    """A restart restores the detectors as they were: the same readings score the same."""
    rng = random.Random(5)
    a = PoolWarnings(WarningLimits())
    _days(a, rng, 3)
    b = PoolWarnings.from_state(json.loads(json.dumps(a.to_state())), WarningLimits())
    start = 3 * DAY_MIN
    for k in range(90):
        values = _ordinary(rng, start + k, ph_drift=0.004 * k)
        ta, tb = a.observe("P1", T0 + 60 * (start + k), values), b.observe("P1", T0 + 60 * (start + k), values)
        assert [t.kind for t in ta.triggers] == [t.kind for t in tb.triggers]
        assert [t.evidence for t in ta.triggers] == [t.evidence for t in tb.triggers]
    assert json.dumps(a.to_state(), sort_keys=True) == json.dumps(b.to_state(), sort_keys=True)


@pytest.mark.parametrize(
    ("kwargs", "says"),
    [
        ({"threshold": 0.0}, "score in (0, 1]"),
        ({"threshold": 1.5}, "score in (0, 1]"),
        ({"watched": ("chlorine",)}, "cannot watch chlorine"),
    ],
)
def test_limits_refuse_what_cannot_work(kwargs: dict[str, object], says: str) -> None:
    with pytest.raises(ValueError, match=r".*") as caught:
        WarningLimits(**kwargs)  # type: ignore[arg-type]
    assert says in str(caught.value)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.floats(allow_nan=True, allow_infinity=True),
            st.dictionaries(
                st.sampled_from(["ph", "free_chlorine", "redox", "temperature"]), st.floats(allow_nan=True, allow_infinity=True)
            ),
        ),
        max_size=40,
    )
)
def test_any_readings_never_raise_and_the_state_stays_json(readings: list[tuple[float, dict[str, float]]]) -> None:
    w = PoolWarnings(WarningLimits(warmup_s=0.0))
    for at, values in readings:
        w.observe("P1", at, values)
    json.dumps(w.to_state(), allow_nan=False)
