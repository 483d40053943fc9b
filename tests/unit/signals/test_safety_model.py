"""Issue 10 #2 / #3: every number of an intersection model is finite and within the RiLSA bounds,
and the fixed plan is safe, checked where the model is built; anything else is a ModelError.

Before the fix a NaN intergreen passed (``t < 0`` is False for NaN): the A->B change of the
example took 3 s instead of 8 s and the validator reported nothing; 1 s greens, a group the fixed
plan never serves and a 1e9 s green all loaded and crashed the control agent later.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
from typing import Unpack

import pytest

from signals.loader import (
    ensure_safe,
    intersection_from_dict,
    intersection_from_json,
    intersection_to_dict,
    load_intersection,
    model_document,
)
from signals.model import MAX_CYCLE_S, MAX_GREEN_S, MAX_INTERGREEN_S, Intersection, ModelError, SignalGroupTimings, SignalPlan, StagePhase
from signals.validator import SafetyValidator
from tests.paths import EXAMPLE_INTERSECTION as EXAMPLE


@pytest.fixture()
def doc() -> dict:
    return json.loads(EXAMPLE.read_text())


def _edited(doc: dict, edit) -> dict:
    bad = copy.deepcopy(doc)
    edit(bad)
    return bad


NAN, INF = float("nan"), float("inf")


@pytest.mark.parametrize(
    "value",
    [NAN, INF, -INF, -1.0, 10**400, "8", None, True, [8]],
    ids=["nan", "inf", "-inf", "negative", "huge-int", "string", "null", "bool", "list"],
)
def test_an_intergreen_that_is_not_a_finite_non_negative_number_is_refused(doc: dict, value: object) -> None:
    bad = _edited(doc, lambda d: d["intergreen_s"]["K1"].update(K2=value))
    with pytest.raises(ModelError, match="intergreen"):
        intersection_from_dict(bad)


def test_nan_intergreen_no_longer_shortens_the_change_silently(doc: dict) -> None:
    """The reproduction of #2: with K2->K3... the A->B change is 8 s because FE->K2 needs 8 s."""
    x = intersection_from_dict(doc)
    assert x.transition_s("A", "B") == 8.0
    bad = _edited(doc, lambda d: d["intergreen_s"]["FE"].update(K2=NAN))
    with pytest.raises(ModelError, match="intergreen_s.FE.K2"):
        intersection_from_dict(bad)
    # the constructor refuses it too: no model object with a NaN in it can exist
    with pytest.raises(ModelError, match="intergreen 'FE'->'K2'"):
        dataclasses.replace(x, intergreen_s={**x.intergreen_s, ("FE", "K2"): NAN})


@pytest.mark.parametrize(
    ("field", "change"),
    [
        ("yellow_s", lambda x: _group(x, "K1", yellow_s=NAN)),
        ("red_yellow_s", lambda x: _group(x, "K1", red_yellow_s=-INF)),
        ("min_green_s", lambda x: _group(x, "K1", min_green_s=NAN)),
        ("max_wait_s", lambda x: _group(x, "K1", max_wait_s=NAN)),
        ("cycle max_s", lambda x: dataclasses.replace(x, cycle_max_s=NAN)),
        ("max_wait_s", lambda x: dataclasses.replace(x, max_wait_s=INF)),
        ("fixed plan green", lambda x: dataclasses.replace(x, fixed_plan=SignalPlan((StagePhase("A", NAN), StagePhase("B", 10))))),
        (
            "saturation_flow_vph",
            lambda x: dataclasses.replace(x, lanes=(dataclasses.replace(x.lanes[0], saturation_flow_vph=NAN), *x.lanes[1:])),
        ),
        ("length_m", lambda x: dataclasses.replace(x, lanes=(dataclasses.replace(x.lanes[0], length_m=NAN), *x.lanes[1:]))),
        ("length_m", lambda x: dataclasses.replace(x, lanes=(dataclasses.replace(x.lanes[0], length_m=-12.0), *x.lanes[1:]))),
    ],
)
def test_the_constructor_refuses_every_non_finite_number(field: str, change) -> None:
    x = load_intersection(EXAMPLE)
    with pytest.raises(ModelError, match=field):
        change(x)


def _group(x: Intersection, gid: str, **changes: Unpack[SignalGroupTimings]) -> Intersection:
    return dataclasses.replace(x, groups={**x.groups, gid: dataclasses.replace(x.groups[gid], **changes)})


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        # #3: the models that passed `signals configure` with exit 0
        (lambda d: [s.update(min_green_s=1, max_green_s=1) for s in d["stages"]], "stage 'A' min_green_s 1 s"),
        (lambda d: [g.update(min_green_s=1) for g in d["signal_groups"]], "group 'K1' min_green_s 1 s"),
        (lambda d: d["stages"][0].update(max_green_s=1e9), "stage 'A' max_green_s is 1000000000.0"),
        (lambda d: d["fixed_plan"].pop(1), "fixed plan unsafe: starved"),  # K2 never green
        (lambda d: d["fixed_plan"][0].update(green_s=1), "fixed plan unsafe: stage_min_green"),
        (lambda d: d["fixed_plan"][0].update(green_s=1e9), "fixed plan green of stage 'A' is 1000000000.0"),
        (lambda d: d["fixed_plan"][0].update(green_s=61), "fixed plan unsafe: stage_max_green"),
        # RiLSA bounds
        (lambda d: d["signal_groups"][0].update(yellow_s=2), "vehicle group 'K1' yellow_s 2 s outside"),
        (lambda d: d["signal_groups"][0].update(yellow_s=7), "yellow_s 7 s outside"),
        (lambda d: d["signal_groups"][3].update(yellow_s=9), "pedestrian group 'FN' yellow_s"),
        (lambda d: d["signal_groups"][0].update(red_yellow_s=3), "red_yellow_s 3 s outside"),
        (lambda d: d["intergreen_s"]["K1"].update(K2=MAX_INTERGREEN_S + 1), "intergreen 'K1'->'K2' 31 s outside"),
        (lambda d: d.update(cycle={"min_s": 40, "max_s": MAX_CYCLE_S + 1}), "cycle max_s 301 s"),
        (lambda d: d.update(max_wait_s=1e6), "max_wait_s is 1000000.0"),
        (lambda d: d.update(max_wait_s=301), "max_wait_s 301 s outside"),
        (lambda d: d["stages"][1].update(max_green_s=MAX_GREEN_S + 1), "stage 'B' max_green_s 181 s"),
        (lambda d: d["signal_groups"][1].update(min_green_s=30), "minimum green exceeds max_green_s 25"),
    ],
)
def test_models_outside_the_bounds_or_with_an_unsafe_fixed_plan_are_refused(doc: dict, edit, message: str) -> None:
    with pytest.raises(ModelError, match=message):
        intersection_from_dict(_edited(doc, edit))


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ([1, 2], "got an array"),
        ("K101", "got a string"),
        (None, "got null"),
        ({"schema": "leitstand.intersection/1"}, "signal_groups: expected an array, got null"),
        ({"schema": "leitstand.intersection/1", "signal_groups": [5]}, r"signal_groups\[0\]: expected an object"),
    ],
)
def test_documents_of_the_wrong_shape_are_refused_in_one_line(document: object, message: str) -> None:
    with pytest.raises(ModelError, match=message) as err:
        intersection_from_dict(document)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: d["signal_groups"].append(dict(d["signal_groups"][0], yellow_s=4)), "duplicate id 'K1'"),
        (lambda d: d["stages"][0].update(max_green=20), r"unknown field\(s\) \['max_green'\]"),
        (lambda d: d["signal_groups"][0].update(kind="tram"), "expected vehicle, pedestrian or cyclist"),
        (lambda d: d["signal_groups"][0].update(id="K\u202e1"), "printable string"),
        (lambda d: d["signal_groups"][0].update(id="\u041a1"), "is not ASCII"),  # Cyrillic К1 beside Latin K1
        (lambda d: d["conflicts"].append(["K1", "K2", "K3"]), r"conflicts\[9\]: 3 entries"),
        (lambda d: d.update(fixed_plan=[{"stage": "A", "green_s": 10}] * 65), "at most 64"),
    ],
)
def test_structural_mistakes_are_model_errors_not_key_or_type_errors(doc: dict, edit, message: str) -> None:
    with pytest.raises(ModelError, match=message):
        intersection_from_dict(_edited(doc, edit))


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b'{"schema": NaN}', "NaN is not a JSON number"),
        (b"[" * 100_000, "not JSON|nested too deeply"),
        (b"\xff\xfe\x00binary", "not UTF-8"),
        (b"{", "not JSON"),
        (b"[]", "got an array"),
    ],
)
def test_model_bytes_that_are_not_a_json_object_are_refused(data: bytes, message: str) -> None:
    with pytest.raises(ModelError, match=message):
        model_document(data)


def test_nan_literals_in_a_model_file_are_refused(doc: dict) -> None:
    text = json.dumps(_edited(doc, lambda d: d["intergreen_s"]["K1"].update(K2=NAN)))  # writes NaN, as Python does
    assert "NaN" in text
    with pytest.raises(ModelError, match="NaN"):
        intersection_from_json(text)


def test_the_example_round_trips_and_every_accepted_model_has_a_safe_fixed_plan(doc: dict) -> None:
    x = intersection_from_dict(doc)
    again = intersection_from_dict(intersection_to_dict(x))
    assert again == x and SafetyValidator(again).check(again.fixed_plan).ok
    assert ensure_safe(x) is x


def test_ensure_safe_is_available_for_hand_built_models() -> None:
    x = load_intersection(EXAMPLE)
    starved = dataclasses.replace(x, fixed_plan=SignalPlan((StagePhase("A", 36), StagePhase("C", 28))))
    with pytest.raises(ModelError, match="starved"):
        ensure_safe(starved)


@pytest.mark.parametrize("green", [NAN, INF, -5.0, 0.0])
def test_the_validator_rejects_a_plan_with_a_non_finite_or_non_positive_green(green: float) -> None:
    """A controller's plan with a NaN green passed every rule before (all comparisons False)."""
    x = load_intersection(EXAMPLE)
    plan = SignalPlan((StagePhase("A", green), StagePhase("B", 10), StagePhase("C", 28)))
    report = SafetyValidator(x).check(plan)
    assert report.codes == {"invalid_green"}, report.violations
    assert not math.isnan(report.violations[0].at_s)


def test_a_key_twice_in_one_object_is_refused_by_the_file_and_the_topic() -> None:
    """``{"K1": 30, "K1": 0}`` in an intergreen row loaded as 0 s (the last wins) while a
    reviewer reads 30 s. The file loader and the signals.config decoder refuse it, naming the key."""
    from datetime import datetime, timezone

    import orjson

    from streams.codec import DecodeFailure, decoder_for
    from streams.records import IntersectionConfig

    text = EXAMPLE.read_text()
    doc = json.loads(text)
    assert intersection_from_json(text).id == doc["id"]
    twice = text.replace('"stages"', '"stages": [], "stages"', 1)
    with pytest.raises(ModelError, match="key 'stages' appears twice"):
        intersection_from_json(twice)
    config = {"schema_version": 1, "event_time": "2026-12-06T12:00:00+00:00", "intersection_id": doc["id"], "model": doc}
    value = orjson.dumps(config)
    decoder = decoder_for("signals.config")
    now = datetime(2026, 12, 6, 12, tzinfo=timezone.utc).timestamp()
    assert isinstance(decoder.decode(value, now=now), IntersectionConfig)
    doubled = value.replace(b'"model":{', b'"model":{"schema":"x",', 1)
    out = decoder.decode(doubled, now=now)
    assert isinstance(out, DecodeFailure) and "'schema' appears twice" in out.reason
