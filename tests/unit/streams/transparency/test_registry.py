"""The algorithm register: complete against the code's registries, every entry names real code,
figures copied from benchmark outputs, JSON and HTML written."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from detection.registry import DETECTOR_NAMES
from forecasting import FORECASTER_NAMES
from signals.controllers import CONTROLLERS
from streams.transparency import registry
from streams.transparency.entries import ENTRIES
from streams.transparency.registry import RegisterIncomplete, check_complete, components, export, pick

OWNER = {"organisation": "Stadt Musterstadt", "role": "Leitung Verkehrsrechnerzentrale", "contact": "transparenz@example.org"}


def test_every_registered_component_has_an_entry_and_every_entry_names_real_code() -> None:
    check_complete()  # the completeness test of issue 18: fails on a missing or dangling entry
    ids = components()
    assert len(ids) == len(set(ids)) == len(ENTRIES)
    assert {f"signals.controller.{n}" for n in CONTROLLERS} <= set(ids)
    assert {f"detection.detector.{n}" for n in DETECTOR_NAMES} <= set(ids)
    assert {f"forecasting.forecaster.{n}" for n in FORECASTER_NAMES} <= set(ids)


def test_a_new_component_without_an_entry_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry, "SINGLE_COMPONENTS", (*registry.SINGLE_COMPONENTS, "signals.controller.new_one"))
    with pytest.raises(RegisterIncomplete, match="signals.controller.new_one: registered, no entry"):
        check_complete()


def test_an_entry_naming_nothing_or_left_empty_fails() -> None:
    broken = dict(ENTRIES)
    broken["signals.controller.fixed"] = dataclasses.replace(ENTRIES["signals.controller.fixed"], code="signals.controllers.fixed:Gone")
    broken["detection.water_rules"] = dataclasses.replace(ENTRIES["detection.water_rules"], limitations="")
    broken["retired.thing"] = ENTRIES["detection.incidents"]
    with pytest.raises(RegisterIncomplete) as err:
        check_complete(broken)
    text = str(err.value)
    assert "signals.controller.fixed: entry code" in text and "names nothing" in text
    assert "detection.water_rules: empty limitations" in text and "retired.thing: entry, no such component" in text


def test_pick_walks_maps_and_filters_lists() -> None:
    data = {"scenarios": {"a": {"x": 1}, "b": {"y": 2}}, "results": [{"model": "m", "v": 1}, {"model": "n", "v": 2}]}
    assert pick(data, ("scenarios", "*", "x")) == {"a": 1}
    assert pick(data, ("results", "model=n")) == [{"model": "n", "v": 2}]
    assert pick(data, ("nothing",)) is None


def test_export_writes_json_after_atrs_and_html_with_figures_from_benchmarks(tmp_path: Path) -> None:
    bench = tmp_path / "bench"
    bench.mkdir()
    (bench / "signals.json").write_text(json.dumps({"scenarios": {"cologne1": {"leitstand": {"delay_mean": 18.9}}}}))
    table = {"default": {"dev_in_sample": 75.62, "dev_cross_validated_by_category": 72.75, "realTraffic": 78.43},
             "zscore": {"dev_in_sample": 34.44, "dev_cross_validated_by_category": -21.08, "realTraffic": 85.6}}  # fmt: skip
    (bench / "nab-table.json").write_text(json.dumps({"detectors": table}))
    js, page = export(tmp_path / "out", OWNER, bench)
    register = json.loads(js.read_text())
    assert register["schema"].startswith("UK Algorithmic Transparency Recording Standard")
    by_id = {r["metadata"]["id"]: r for r in register["records"]}
    assert set(by_id) == set(components())
    lst = by_id["signals.controller.leitstand"]
    assert lst["owner_and_responsibility"]["senior_responsible_owner"] == OWNER["role"]
    assert lst["tier_1"]["contact_email"] == OWNER["contact"]
    assert lst["tool_specification"]["component_version"] == CONTROLLERS["leitstand"].version
    perf = lst["tool_specification"]["performance"]
    assert perf[0]["figures"] == {"cologne1": {"delay_mean": 18.9}} and perf[0]["reproduce_with"].startswith("leitstand bench signals")
    assert perf[2]["figures"] is None and "run it and export again" in perf[2]["note"]  # no fairness.json given
    assert [p["what"].split(":")[0] for p in perf] == [
        "RESCO delay (timeLoss+departDelay) per vehicle on the development maps cologne1, cologne3, ingolstadt1, ingolstadt21",
        "fairness",
        "fairness target",
    ]
    assert len(by_id["signals.controller.fixed"]["tool_specification"]["performance"]) == 2  # the baseline is not judged
    default = by_id["detection.detector.default"]["tool_specification"]["performance"]
    assert [p["figures"] for p in default] == [75.62, 72.75, 78.43]
    assert [p["figures"] for p in by_id["detection.detector.zscore"]["tool_specification"]["performance"]] == [34.44, -21.08, 85.6]
    # what the detectors do is said as it is (stop 46): a score for a person, no live alarm, except
    # the general default, which feeds the pool early warning and says so (stop 47)
    assert "raises no alarm" in by_id["detection.detector.zscore"]["decision_making_process"]["process_integration"]
    assert "early warning" in by_id["detection.detector.default"]["decision_making_process"]["process_integration"]
    assert "detection.probe_warning" in by_id
    for r in register["records"]:
        assert r["data_specification"]["inputs"] and all(i["personal_data"] for i in r["data_specification"]["inputs"])
    # only the escalation policy sees staff names; no component reads personal data of citizens
    assert [i for i, r in by_id.items() if r["data_specification"]["personal_data_in_inputs"]] == ["detection.alarm_escalation"]
    html = page.read_text()
    assert html.count("<section") == len(by_id) and "Leitstand adaptive controller" in html


def test_html_escapes_what_settings_put_in(tmp_path: Path) -> None:
    _, page = export(tmp_path, {**OWNER, "contact": "<script>alert(1)</script>"}, None)
    text = page.read_text()
    assert "<script>" not in text and "&lt;script&gt;" in text


def test_a_benchmark_file_with_nan_leaves_the_register_readable_json(tmp_path: Path) -> None:
    """NaN in nab-table.json was copied into register.json, which strict readers (orjson) refuse."""
    import orjson

    bench = tmp_path / "bench"
    bench.mkdir()
    (bench / "nab-table.json").write_text('{"detectors": {"default": {"dev_in_sample": NaN, "realTraffic": Infinity}}}')
    js, _ = export(tmp_path / "out", OWNER, bench)
    register = orjson.loads(js.read_bytes())
    by_id = {r["metadata"]["id"]: r for r in register["records"]}
    assert all(p["figures"] is None for p in by_id["detection.detector.default"]["tool_specification"]["performance"])
