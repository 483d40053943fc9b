"""Fuzzing the signal-model loader that ``leitstand signals configure`` and the control agent use.

Arbitrary JSON-ish documents (the example with values replaced by NaN, infinities, huge or
negative numbers, wrong types, deleted or duplicated entries, and documents of any shape) go in;
the contract: either a model comes out that is within the RiLSA bounds and whose fixed plan the
safety validator passes, or ``ModelError`` with a one-line message - never anything else. The
control desk, fed the same document as a ``signals.config`` record, either starts control or
audits ``config_refused``; it never raises. ``tests/fuzz/atheris_signal_model.py`` checks the same
contract coverage-guided on raw bytes.
"""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import event, given
from hypothesis import strategies as st

from signals.desk import ControlDesk
from signals.loader import intersection_from_dict, intersection_from_json, intersection_to_dict
from signals.model import ModelError, rilsa_problems
from signals.validator import SafetyValidator
from streams.records import IntersectionConfig
from streams.signal_codec import at, desk_config
from tests.fuzzing import budget, json_paths
from tests.paths import EXAMPLE_INTERSECTION

EXAMPLE = json.loads((EXAMPLE_INTERSECTION).read_text())

numbers = st.one_of(
    st.sampled_from(
        [float("nan"), float("inf"), float("-inf"), 0, -1, -0.0, 1e9, 1e308, 10**30, 10**400, 2.9, 3, 5, 5.0000001, 30, 30.5, 180, 300, 301]
    ),
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(-(10**6), 10**6),
)
scalars = st.one_of(st.none(), st.booleans(), numbers, st.text(max_size=8), st.sampled_from(["K1", "A", "FE"]))
json_values = st.recursive(
    scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=12
)


def _parent(doc: Any, path: tuple) -> Any:
    for step in path[:-1]:
        doc = doc[step]
    return doc


@st.composite
def mutated_models(draw: st.DrawFn) -> Any:
    """The example with a few edits anywhere in it (values, deletions, duplicates)."""
    doc = json.loads(json.dumps(EXAMPLE))
    for _ in range(draw(st.integers(1, 4))):
        paths = [p for p in json_paths(doc) if p]
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent, key = _parent(doc, path), path[-1]
        action = draw(st.sampled_from(["tweak", "tweak", "number", "value", "delete", "duplicate"]))
        if action == "tweak":  # a plausible time: the edits that load are the interesting ones
            if isinstance(parent[key], (int, float)) and not isinstance(parent[key], bool):
                parent[key] = draw(st.one_of(st.integers(0, 70), st.floats(0, 70)))
        elif action == "delete":
            del parent[key]
        elif action == "duplicate" and isinstance(parent, list):
            parent.append(json.loads(json.dumps(parent[key])))
        else:
            parent[key] = draw(numbers if action == "number" else json_values)
    return doc


documents = st.one_of(mutated_models(), json_values, st.dictionaries(st.sampled_from(sorted(EXAMPLE)), json_values, max_size=6))


def _numbers_in(value: Any) -> list[float]:
    if isinstance(value, bool):
        return []
    if isinstance(value, (int, float)):
        return [value]
    if isinstance(value, dict):
        return [n for v in value.values() for n in _numbers_in(v)]
    if isinstance(value, (list, tuple)):
        return [n for v in value for n in _numbers_in(v)]
    return []


def assert_loader_contract(doc: Any) -> bool:
    """True if a model loaded (and is safe), False if refused with a one-line ModelError."""
    try:
        x = intersection_from_dict(doc)
    except ModelError as exc:
        assert str(exc) and "\n" not in str(exc), repr(exc)
        return False
    assert rilsa_problems(x) == []
    report = SafetyValidator(x).check(x.fixed_plan)
    assert report.ok, report.violations
    assert all(math.isfinite(n) for n in _numbers_in(intersection_to_dict(x)))
    return True


@pytest.mark.fuzz
@budget(300)
@given(doc=documents)
def test_the_model_loader_returns_a_safe_model_or_a_model_error(doc: Any) -> None:
    loaded = assert_loader_contract(doc)
    event("loaded" if loaded else "refused")
    # the same document as file bytes (json writes NaN / Infinity literals): the CLI's path
    try:
        text = json.dumps(doc)
    except (ValueError, OverflowError):
        return
    try:
        intersection_from_json(text.encode())
    except ModelError:
        assert not loaded or not all(math.isfinite(n) for n in _numbers_in(doc))


@pytest.mark.fuzz
@budget(150)
@given(doc=mutated_models())
def test_the_control_agent_starts_or_refuses_a_fuzzed_config_and_never_raises(doc: Any) -> None:
    desk = ControlDesk(lambda _: None)  # nothing saved: a fresh worker
    try:
        cfg = IntersectionConfig(
            schema_version=1,
            event_time=at(1_800_000_000.0),
            intersection_id="K101",
            model=doc,
            controller="fixed",
            mode="automatic",
            session="fuzz",
            approval_timeout_s=60.0,
            params={},
        )
    except ValueError:  # the record refuses it (e.g. an integer beyond 64 bits): dead-lettered, never reaches the desk
        event("record refused")
        return
    actions = [a.entry.action for a in desk.on_config(desk_config(cfg)).audit]
    event(actions[0] if actions else "nothing")
    assert actions in (["control_started"], ["config_refused"]), actions
    assert (actions == ["control_started"]) == desk.known("K101")
