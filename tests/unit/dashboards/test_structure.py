"""The dashboards' JSON: what the issue and the contract ask of every dashboard and panel.

Stable uids, the current schemaVersion, datasource variables instead of fixed datasources,
German titles with English descriptions, a unit and thresholds on every panel, only the
contract's tables and metric names, water thresholds equal to detection/water_rules.py's
DIN 19643 bands, and a layout Grafana can draw (no overlapping panels)."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from detection.water_rules import BASIN_TYPES, UNITS
from streams.dashboards import DEFAULT_SOURCE, Dashboard, SqlContext, TimeRange, expand_sql, load, panels, queries, variable_queries

DASHBOARDS = load()
BY_UID = {d.uid: d for d in DASHBOARDS}
#: Grafana 12/13's dashboard schema version (@grafana/schema 13.2 defaultDashboard)
SCHEMA_VERSION = 42
#: the contract's tables and view (docs: /work/notes/issue15-contract.md, streams/db/migrations)
TABLES = {"aggregates", "pool_readings", "signal_decisions", "audit_log", "alarm_transitions", "alarms_current", "forecasts"}
TABLES |= {"scheduled_events"}  # migration 0002: events.schedule (announced events, holidays)
TABLES |= {"bus_passages"}  # migration 0004: transit.passages (bus stop passages)
#: the contract's Prometheus metrics the dashboards may read
METRICS = {
    "leitstand_event_to_output_seconds_bucket",
    "leitstand_alarm_ack_seconds_bucket",
    "leitstand_forecast_abs_error",
    "leitstand_forecast_interval_total",
    "leitstand_forecast_refreshes_total",
    "leitstand_water_rules_behind_seconds",
}
DATASOURCES = {"grafana-postgresql-datasource": "${DS_POSTGRES}", "prometheus": "${DS_PROMETHEUS}"}


def all_panels() -> list[tuple[Dashboard, dict]]:
    return [(d, p) for d in DASHBOARDS for p in panels(d.model)]


def test_the_three_dashboards_with_stable_uids() -> None:
    assert {d.uid: d.title for d in DASHBOARDS} == {
        "leitstand-verkehr": "Verkehrsleitzentrale",
        "leitstand-baeder": "Bäderaufsicht",
        "leitstand-planung": "Planung",
    }


@pytest.mark.parametrize("dashboard", DASHBOARDS, ids=lambda d: d.name)
def test_dashboard_header(dashboard: Dashboard) -> None:
    m = dashboard.model
    assert m["schemaVersion"] == SCHEMA_VERSION
    assert "id" not in m, "an id is Grafana-instance specific; dashboards are keyed by uid"
    assert 8 <= len(m["uid"]) <= 40 and re.fullmatch(r"[a-z0-9-]+", m["uid"])
    assert m["description"] and "leitstand" in m["tags"]
    variables = {v["name"]: v for v in m["templating"]["list"]}
    assert variables["DS_POSTGRES"]["type"] == "datasource" and variables["DS_POSTGRES"]["query"] == "grafana-postgresql-datasource"
    assert variables["DS_PROMETHEUS"]["type"] == "datasource" and variables["DS_PROMETHEUS"]["query"] == "prometheus"
    ids = [p["id"] for p in panels(m)]
    assert len(ids) == len(set(ids)), "panel ids are unique within a dashboard"


@pytest.mark.parametrize(("dashboard", "panel"), all_panels(), ids=lambda x: x.get("title", "") if isinstance(x, dict) else x.name)
def test_every_panel_has_units_thresholds_and_a_description(dashboard: Dashboard, panel: dict) -> None:
    defaults = panel["fieldConfig"]["defaults"]
    assert defaults.get("unit"), "a unit on every panel"
    steps = defaults["thresholds"]["steps"]
    assert steps and steps[0]["value"] is None, "thresholds start with the base step (value null)"
    assert [s["value"] for s in steps[1:]] == sorted(s["value"] for s in steps[1:])
    description = panel["description"]
    assert len(description) >= 40 and description.isascii(), "an English description (ASCII) that says what is shown"
    assert panel["title"] and panel["title"] != description
    ds = panel["datasource"]
    assert DATASOURCES[ds["type"]] == ds["uid"], "datasources only through the dashboard's datasource variables"
    for target in panel["targets"]:
        assert target["datasource"] == ds


def test_titles_are_german() -> None:
    titles = " ".join(p["title"] for _, p in all_panels())
    # a few words no English title would use; and no English control-room words
    assert {"je", "und", "Alarme", "Prognose"} <= set(re.findall(r"\w+", titles))
    assert not re.search(r"\b(Open|Alarms|Forecast|Latency|Visitors)\b", titles)


def test_layout_fits_the_grid_without_overlap() -> None:
    for d in DASHBOARDS:
        cells: set[tuple[int, int]] = set()
        for p in panels(d.model):
            g = p["gridPos"]
            assert g["x"] >= 0 and g["x"] + g["w"] <= 24 and g["h"] > 0
            mine = {(x, y) for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])}
            assert not cells & mine, f"{d.name}: {p['title']!r} overlaps another panel"
            cells |= mine


def test_queries_read_only_the_contracts_tables_and_metrics() -> None:
    for d in DASHBOARDS:
        for q in queries(d):
            if q.kind == "sql":
                sql = re.sub(r"extract\(epoch from", "", q.text, flags=re.IGNORECASE)
                named = set(re.findall(r"\b(?:FROM|JOIN)\s+([a-z_]+)\b", sql, flags=re.IGNORECASE))
                named -= set(re.findall(r"\b([a-z_]+) AS \(", sql))  # a WITH query's own names
                assert named <= TABLES, f"{q.where}: {named - TABLES}"
                assert named, f"{q.where}: reads no table"
            else:
                metrics = set(re.findall(r"\b(leitstand_[a-z_]+)", q.text))
                assert metrics and metrics <= METRICS, f"{q.where}: {metrics - METRICS}"


def test_every_query_expands_completely() -> None:
    rng = TimeRange(datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 2, tzinfo=UTC))
    for d in DASHBOARDS:
        variables = {v["name"]: "x" for v in d.model["templating"]["list"]}
        for q in queries(d):
            if q.kind == "sql":
                sql = expand_sql(q.text, SqlContext(rng, variables=variables))
                assert "$" not in sql, f"{q.where}: left unexpanded: {sql}"
        for name, sql in variable_queries(d).items():
            assert "$" not in expand_sql(sql, SqlContext(rng)), name


def test_water_thresholds_are_the_din_19643_bands_of_water_rules() -> None:
    baeder = BY_UID["leitstand-baeder"]
    swimmer = BASIN_TYPES["swimmer"]
    checked = set()
    for p in panels(baeder.model):
        params = [q for q in UNITS if re.search(rf"\b{q} AS", p["targets"][0]["rawSql"] if "rawSql" in p["targets"][0] else "")]
        if len(params) != 1:
            continue
        band = swimmer.bands[params[0]]
        limits = [s["value"] for s in p["fieldConfig"]["defaults"]["thresholds"]["steps"][1:]]
        assert limits == [v for v in (band.low, band.high) if v is not None], params[0]
        assert band.describe() in p["description"]
        checked.add(params[0])
    assert checked == set(UNITS), "one panel per DIN 19643 parameter"


def test_panels_ask_for_the_users_needs() -> None:
    """What the issue lists per dashboard is there (by the data each panel reads)."""
    text = {d.uid: " ".join(q.text for q in queries(d)) for d in DASHBOARDS}
    verkehr, baeder, planung = text["leitstand-verkehr"], text["leitstand-baeder"], text["leitstand-planung"]
    for needle in ("count_sum", "occupancy_mean", "queue_veh_mean", "status = 'pending'", "explanation", "detector", "frame_to_decision"):
        assert needle in verkehr, needle
    for needle in ("state <> 'resolved'", "acknowledged_by", "visitors", "sensor", "leitstand_alarm_ack_seconds_bucket"):
        assert needle in baeder, needle
    for needle in ("yhat_lower", "yhat_upper", "aggregates", "pool_readings", "series_kind", "mae_seasonal_naive", "interval '7 days'"):
        assert needle in planung, needle
    annotations = [a["target"]["rawSql"] for a in BY_UID["leitstand-planung"].model["annotations"]["list"] if a.get("target")]
    assert any("scheduled_events" in sql and "'match'" in sql for sql in annotations), "event annotations"
    assert any("scheduled_events" in sql and "'holiday'" in sql for sql in annotations), "holiday annotations"


def test_the_readme_describes_every_panel() -> None:
    """dashboards/README.md's panel tables are the JSON's titles and descriptions."""
    readme = (DEFAULT_SOURCE / "README.md").read_text(encoding="utf-8")
    for d in DASHBOARDS:
        assert f"### {d.title} (`{d.uid}`" in readme
        for p in panels(d.model):
            assert f"| {p['title']} | {p['description']} |" in readme, p["title"]
