"""Retention rules (streams/db/prune.py): ages per table from the settings, the audit log's floor."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from streams.db.prune import Retention, RetentionRefused, retention_rules
from streams.settings import MIN_AUDIT_LOG_DAYS, Settings, SettingsInvalid, load_settings


def _settings(**kw: object) -> Settings:
    return Settings(_env_file=None, **kw)  # type: ignore[arg-type]


def test_defaults_keep_raw_aggregates_shortest_and_the_audit_log_six_months() -> None:
    days = {r.table: r.days for r in retention_rules(_settings())}
    assert days == {
        "aggregates": 30,
        "pool_readings": 90,
        "forecasts": 90,
        "signal_decisions": 183,
        "audit_log": 183,
        "alarm_transitions": 365,
        "scheduled_events": 730,
        "bus_passages": 183,
    }
    assert MIN_AUDIT_LOG_DAYS == 183


def test_every_history_table_has_a_rule_on_a_time_column() -> None:
    from streams.db.rows import TABLES

    rules = retention_rules(_settings())
    assert {r.table for r in rules} == set(TABLES)
    for r in rules:
        assert r.column in TABLES[r.table]


def test_an_audit_log_kept_under_six_months_is_refused_in_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    sneaky = _settings().model_copy(update={"retention_audit_log_days": 30})
    monkeypatch.setenv("LEITSTAND_RETENTION_AUDIT_LOG_DAYS", "182")
    with pytest.raises(SettingsInvalid) as raised:
        load_settings()
    message = str(raised.value)
    assert "\n" not in message and "LEITSTAND_RETENTION_AUDIT_LOG_DAYS" in message and "183" in message
    # settings built around the validator are refused by the rules themselves
    with pytest.raises(RetentionRefused):
        retention_rules(sneaky)


def test_longer_retentions_are_taken_from_the_settings() -> None:
    days = {r.table: r.days for r in retention_rules(_settings(retention_audit_log_days=400, retention_aggregates_days=7))}
    assert days["audit_log"] == 400 and days["aggregates"] == 7


def test_cutoff_and_conditions() -> None:
    now = datetime(2026, 12, 1, tzinfo=timezone.utc)
    assert Retention("aggregates", "window_start", 30).cutoff(now) == datetime(2026, 11, 1, tzinfo=timezone.utc)
    assert Retention("aggregates", "window_start", 30).where() == "window_start < %(cutoff)s"
    # an alarm's history goes as a whole, once its newest transition is older than the cutoff
    assert "HAVING max(event_time) < %(cutoff)s" in Retention("alarm_transitions", "event_time", 365).where()
