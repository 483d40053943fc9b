"""Models from outside (JSON documents, the SUMO reader) as checked :class:`Intersection` s.

Kept apart from ``signals/model.py`` because the check needs the safety validator, which itself
works on the model: every factory for configuration from outside applies the RiLSA bounds
(:func:`signals.model.rilsa_problems`) and requires the fixed plan, the first fallback of every
controller, to pass the safety validator (:func:`ensure_safe`). Hand-built models (the
validator's own tests build deliberately wrong ones) may call :func:`ensure_safe` themselves.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from signals.model import (
    DEFAULT_MAX_CYCLE_S,
    MAX_GROUPS,
    MAX_ID_CHARS,
    MAX_LANE_AREAS,
    MAX_MODEL_BYTES,
    MAX_PHASES,
    MAX_STAGES,
    RILSA_MIN_GREEN_S,
    RILSA_RED_YELLOW_S,
    RILSA_YELLOW_S,
    SCHEMA,
    Intersection,
    LaneArea,
    ModelError,
    SignalGroup,
    SignalPlan,
    Stage,
    StagePhase,
    rilsa_problems,
)
from signals.validator import SafetyValidator


def ensure_safe(intersection: Intersection) -> Intersection:
    """``intersection`` if it is within the RiLSA bounds and its fixed plan passes the safety validator,
    else :class:`ModelError` naming the first problems (one line). The fixed plan is every
    controller's first fallback: an unsafe one would be driven, or crash the safety gate."""
    problems = rilsa_problems(intersection)
    if not problems:
        problems = [f"fixed plan unsafe: {v}" for v in SafetyValidator(intersection).check(intersection.fixed_plan).violations]
    if problems:
        more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
        raise ModelError(f"intersection {intersection.id!r}: " + "; ".join(problems[:3]) + more)
    return intersection


# -- JSON ----------------------------------------------------------------------------------------
def _kind_of(value: object) -> str:
    return {
        dict: "an object",
        list: "an array",
        str: "a string",
        bool: "a boolean",
        type(None): "null",
        int: "a number",
        float: "a number",
    }.get(type(value), type(value).__name__)


def _obj(value: object, where: str, allowed: frozenset[str]) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ModelError(f"{where}: expected an object, got {_kind_of(value)}")
    unknown = sorted(str(k)[:40] for k in value if k not in allowed)
    if unknown:
        raise ModelError(f"{where}: unknown field(s) {unknown[:5]}; known: {sorted(allowed)}")
    return value


def _list(value: object, where: str, limit: int) -> list[Any]:
    if not isinstance(value, list):
        raise ModelError(f"{where}: expected an array, got {_kind_of(value)}")
    if len(value) > limit:
        raise ModelError(f"{where}: {len(value)} entries, at most {limit}")
    return value


def _str(value: object, where: str) -> str:
    """An id of the model: printable ASCII, as every id on the wire is (``EntityId``): a Cyrillic
    ``К1`` beside a Latin ``K1`` loaded as two groups that look the same in a review (stop 54)."""
    if not isinstance(value, str) or not 0 < len(value) <= MAX_ID_CHARS or not value.isprintable():
        shown = repr(value)[:80] if isinstance(value, str) else _kind_of(value)
        raise ModelError(f"{where}: expected a printable string of 1-{MAX_ID_CHARS} characters, got {shown}")
    if not value.isascii():
        raise ModelError(f"{where}: {value[:80]!r} is not ASCII (ids are compared exactly: a look-alike letter is another id)")
    return value


def _num(value: object, where: str) -> float:
    """A finite JSON number as float; huge integers, NaN and infinities are refused here."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ModelError(f"{where}: expected a number, got {_kind_of(value)}")
    try:
        out = float(value)
    except OverflowError:
        out = math.inf
    if not math.isfinite(out):
        raise ModelError(f"{where}: expected a finite number, got {str(value)[:40]}")
    return out


_TOP = frozenset(
    {"schema", "id", "name", "cycle", "max_wait_s", "signal_groups", "conflicts", "intergreen_s", "stages", "lane_areas", "fixed_plan"}
)
_GROUP = frozenset({"id", "kind", "min_green_s", "yellow_s", "red_yellow_s", "max_wait_s", "yielding_clearance_s"})
_STAGE = frozenset({"id", "groups", "min_green_s", "max_green_s", "yielding"})
_LANE = frozenset({"id", "group", "downstream", "saturation_flow_vph", "detector", "length_m", "zone"})


def _group(raw: object, where: str) -> SignalGroup:
    g = _obj(raw, where, _GROUP)
    kind = g.get("kind", "vehicle")
    if kind not in ("vehicle", "pedestrian", "cyclist"):
        raise ModelError(f"{where}.kind: expected vehicle, pedestrian or cyclist, got {str(kind)[:40]!r}")
    wait, clearance = g.get("max_wait_s"), g.get("yielding_clearance_s")
    return SignalGroup(
        _str(g.get("id"), f"{where}.id"),
        kind,
        min_green_s=_num(g.get("min_green_s", RILSA_MIN_GREEN_S), f"{where}.min_green_s"),
        yellow_s=_num(g.get("yellow_s", RILSA_YELLOW_S), f"{where}.yellow_s"),
        red_yellow_s=_num(g.get("red_yellow_s", RILSA_RED_YELLOW_S), f"{where}.red_yellow_s"),
        max_wait_s=None if wait is None else _num(wait, f"{where}.max_wait_s"),
        yielding_clearance_s=None if clearance is None else _num(clearance, f"{where}.yielding_clearance_s"),
    )


def _stage(raw: object, where: str) -> Stage:
    s = _obj(raw, where, _STAGE)
    members = [_str(g, f"{where}.groups[{i}]") for i, g in enumerate(_list(s.get("groups"), f"{where}.groups", MAX_GROUPS))]
    return Stage(
        _str(s.get("id"), f"{where}.id"),
        frozenset(members),
        min_green_s=_num(s.get("min_green_s", RILSA_MIN_GREEN_S), f"{where}.min_green_s"),
        max_green_s=_num(s.get("max_green_s", 60.0), f"{where}.max_green_s"),
        yielding=frozenset(
            _str(g, f"{where}.yielding[{i}]") for i, g in enumerate(_list(s.get("yielding", []), f"{where}.yielding", MAX_GROUPS))
        ),
    )


def _lane(raw: object, where: str) -> LaneArea:
    la = _obj(raw, where, _LANE)
    group, detector, length, zone = la.get("group"), la.get("detector"), la.get("length_m"), la.get("zone")
    downstream = _list(la.get("downstream", []), f"{where}.downstream", MAX_LANE_AREAS)
    return LaneArea(
        _str(la.get("id"), f"{where}.id"),
        group=None if group is None else _str(group, f"{where}.group"),
        downstream=tuple(_str(d, f"{where}.downstream[{i}]") for i, d in enumerate(downstream)),
        saturation_flow_vph=_num(la.get("saturation_flow_vph", 1800.0), f"{where}.saturation_flow_vph"),
        detector=None if detector is None else _str(detector, f"{where}.detector"),
        length_m=None if length is None else _num(length, f"{where}.length_m"),
        zone=None if zone is None else _str(zone, f"{where}.zone"),
    )


def _unique(items: Iterable[Any], where: str) -> None:
    seen: set[str] = set()
    for item in items:
        if item.id in seen:
            raise ModelError(f"{where}: duplicate id {item.id!r}")
        seen.add(item.id)


def intersection_from_dict(doc: object) -> Intersection:
    """Build an :class:`Intersection` from the documented JSON schema (docs/signals.md).

    Whatever ``doc`` is, the outcome is a model within the RiLSA bounds whose fixed plan the
    validator passes, or :class:`ModelError` with one line saying where and what is wrong
    (never a ``KeyError`` or ``TypeError``: the CLI and the control agent load untrusted input).
    """
    top = _obj(doc, "model", _TOP)
    if top.get("schema") != SCHEMA:
        raise ModelError(f"expected schema {SCHEMA!r}, got {str(top.get('schema'))[:40]!r}")
    group_list = [_group(g, f"signal_groups[{i}]") for i, g in enumerate(_list(top.get("signal_groups"), "signal_groups", MAX_GROUPS))]
    _unique(group_list, "signal_groups")
    conflicts = set()
    for i, pair in enumerate(_list(top.get("conflicts", []), "conflicts", MAX_GROUPS * MAX_GROUPS)):
        items = _list(pair, f"conflicts[{i}]", 2)
        conflicts.add(frozenset(_str(g, f"conflicts[{i}]") for g in items))
        if len(items) != 2:
            raise ModelError(f"conflicts[{i}]: expected a pair of group ids")
    intergreen: dict[tuple[str, str], float] = {}
    rows = _obj(top.get("intergreen_s", {}), "intergreen_s", frozenset(g.id for g in group_list))
    for a, row in rows.items():
        for b, t in _obj(row, f"intergreen_s.{a}", frozenset(g.id for g in group_list)).items():
            intergreen[(a, b)] = _num(t, f"intergreen_s.{a}.{b}")
    stages = tuple(_stage(s, f"stages[{i}]") for i, s in enumerate(_list(top.get("stages"), "stages", MAX_STAGES)))
    lanes = tuple(_lane(la, f"lane_areas[{i}]") for i, la in enumerate(_list(top.get("lane_areas", []), "lane_areas", MAX_LANE_AREAS)))
    _unique(lanes, "lane_areas")
    phases = []
    for i, raw in enumerate(_list(top.get("fixed_plan"), "fixed_plan", MAX_PHASES)):
        p = _obj(raw, f"fixed_plan[{i}]", frozenset({"stage", "green_s"}))
        phases.append(StagePhase(_str(p.get("stage"), f"fixed_plan[{i}].stage"), _num(p.get("green_s"), f"fixed_plan[{i}].green_s")))
    cycle = _obj(top.get("cycle", {}), "cycle", frozenset({"min_s", "max_s"}))
    cycle_max = _num(cycle.get("max_s", DEFAULT_MAX_CYCLE_S), "cycle.max_s")
    name = top.get("name", "")
    if not isinstance(name, str) or len(name) > 200:
        raise ModelError("name: expected a string of at most 200 characters")
    intersection = Intersection(
        id=_str(top.get("id"), "id"),
        name=name,
        groups={g.id: g for g in group_list},
        stages=stages,
        conflicts=frozenset(conflicts),
        intergreen_s=intergreen,
        fixed_plan=SignalPlan(tuple(phases)),
        lanes=lanes,
        cycle_min_s=_num(cycle.get("min_s", 30.0), "cycle.min_s"),
        cycle_max_s=cycle_max,
        max_wait_s=_num(top.get("max_wait_s", cycle_max), "max_wait_s"),
    )
    return ensure_safe(intersection)


def unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object whose keys are all different (``json.loads``'s ``object_pairs_hook``).

    ``{"K1": 30, "K1": 0}`` in an intergreen row read as 0 s (the last wins) while a person
    reviewing the file reads 30 s; a second ``"stages"`` replaced the first. A model with a key
    twice is refused, naming it."""
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ModelError(f"key {key[:64]!r} appears twice in one object: which one is meant?")
        out[key] = value
    return out


def model_document(data: bytes | str) -> dict[str, Any]:
    """Parse a model file's bytes: a JSON object, strict (no NaN / Infinity literals), bounded size."""
    if len(data) > MAX_MODEL_BYTES:
        raise ModelError(f"model is {len(data)} bytes, at most {MAX_MODEL_BYTES}")

    def no_constant(name: str) -> Any:
        raise ModelError(f"{name} is not a JSON number (every value must be finite)")

    try:
        text = data.decode("utf-8") if isinstance(data, bytes) else data
        doc = json.loads(text, parse_constant=no_constant, object_pairs_hook=unique_keys)
    except UnicodeDecodeError as exc:
        raise ModelError(f"not UTF-8 text (byte {exc.start}): a model is a JSON file") from None
    except json.JSONDecodeError as exc:
        raise ModelError(f"not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except RecursionError:
        raise ModelError("not a model: JSON nested too deeply") from None
    if not isinstance(doc, dict):
        raise ModelError(f"a model is a JSON object (schema {SCHEMA}), got {_kind_of(doc)}")
    return doc


def intersection_from_json(data: bytes | str) -> Intersection:
    """The loader of the CLI and the fuzzers: bytes -> checked model, or :class:`ModelError`."""
    return intersection_from_dict(model_document(data))


def load_intersection(path: str | Path) -> Intersection:
    """Read one intersection from a JSON file."""
    return intersection_from_json(Path(path).read_bytes())


def intersection_to_dict(intersection: Intersection) -> dict[str, Any]:
    """The JSON document :func:`intersection_from_dict` reads back (round trip is exact)."""
    return {
        "schema": SCHEMA,
        "id": intersection.id,
        "name": intersection.name,
        "signal_groups": [
            {
                "id": g.id,
                "kind": g.kind,
                "min_green_s": g.min_green_s,
                "yellow_s": g.yellow_s,
                "red_yellow_s": g.red_yellow_s,
                **({"max_wait_s": g.max_wait_s} if g.max_wait_s is not None else {}),
                **({"yielding_clearance_s": g.yielding_clearance_s} if g.yielding_clearance_s is not None else {}),
            }
            for g in intersection.groups.values()
        ],
        "stages": [
            {
                "id": s.id,
                "groups": sorted(s.groups),
                "min_green_s": s.min_green_s,
                "max_green_s": s.max_green_s,
                **({"yielding": sorted(s.yielding)} if s.yielding else {}),
            }
            for s in intersection.stages
        ],
        "conflicts": sorted(sorted(pair) for pair in intersection.conflicts),
        "intergreen_s": {
            a: {b: t for (a2, b), t in sorted(intersection.intergreen_s.items()) if a2 == a}
            for a in sorted({a for a, _ in intersection.intergreen_s})
        },
        "lane_areas": [
            {
                "id": la.id,
                "group": la.group,
                "downstream": list(la.downstream),
                "saturation_flow_vph": la.saturation_flow_vph,
                **({"detector": la.detector} if la.detector else {}),
                **({"length_m": la.length_m} if la.length_m is not None else {}),
                **({"zone": la.zone} if la.zone else {}),
            }
            for la in intersection.lanes
        ],
        "fixed_plan": [{"stage": p.stage, "green_s": p.green_s} for p in intersection.fixed_plan.phases],
        "cycle": {"min_s": intersection.cycle_min_s, "max_s": intersection.cycle_max_s},
        "max_wait_s": intersection.max_wait_s,
    }
