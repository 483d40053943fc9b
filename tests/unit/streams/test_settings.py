"""Settings precedence (defaults < .env < environment < flags), secret masking, and the values
refused at start-up (weak API tokens, unsafe webhook targets, malformed JSON)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from streams.settings import Settings, SettingsInvalid, _mask_dsn, load_settings

STRONG_TOKEN = "s3cret-token-" + "x" * 32


def test_defaults_point_at_the_embedded_broker(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    s = Settings()
    assert s.kafka_bootstrap_servers == "127.0.0.1:9092"
    assert s.topic("sensors.intersection") == "leitstand.sensors.intersection"
    assert s.table_store == "memory://"


def test_precedence(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("LEITSTAND_TOPIC_PREFIX=fromdotenv.\nLEITSTAND_TOPIC_PARTITIONS=8\n")
    assert Settings().topic_prefix == "fromdotenv."
    monkeypatch.setenv("LEITSTAND_TOPIC_PREFIX", "fromenv.")
    s = Settings()
    assert s.topic_prefix == "fromenv." and s.topic_partitions == 8
    assert load_settings(topic_prefix="fromflag.", kafka_bootstrap_servers=None).topic_prefix == "fromflag."


def test_secrets_are_masked(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LEITSTAND_POSTGRES_DSN", "postgresql://ops:hunter2@db:5432/leitstand")
    monkeypatch.setenv("LEITSTAND_API_TOKEN", STRONG_TOKEN)
    monkeypatch.setenv("LEITSTAND_KAFKA_SASL_PASSWORD", "kafkapw")
    shown = Settings().masked()
    text = repr(shown)
    assert "hunter2" not in text and "s3cret-token" not in text and "kafkapw" not in text
    assert shown["postgres_dsn"] == "postgresql://ops:***@db:5432/leitstand"
    assert shown["api_token"] == "***"


@pytest.mark.parametrize(
    "name, value",
    [
        ("LEITSTAND_TOPIC_PARTITIONS", "0"),
        ("LEITSTAND_TABLE_STORE", "redis://x"),
        ("LEITSTAND_TOPIC_PREFIX", "a b"),
        # under the water worker's commit interval: it would alarm on a healthy worker
        ("LEITSTAND_WATER_WATCH_AFTER_S", "2"),
        ("LEITSTAND_WATER_WATCH_AFTER_S", "-1"),
        ("LEITSTAND_FORECAST_TIMEZONE", "Mars/Olympus"),
        ("LEITSTAND_FORECAST_TIMEZONE", "../../etc/passwd"),
        ("LEITSTAND_FORECAST_TIMEZONE", "Europe"),
    ],
)
def test_invalid_values_are_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, name: str, value: str) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError):
        Settings()


def test_sasl_options_pass_through(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    s = Settings(
        kafka_security_protocol="SASL_PLAINTEXT", kafka_sasl_mechanism="SCRAM-SHA-512", kafka_sasl_username="u", kafka_sasl_password="p"
    )
    opts = s.kafka_client_options()
    assert opts == {
        "security_protocol": "SASL_PLAINTEXT",
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "u",
        "sasl_plain_password": "p",
    }


@pytest.mark.parametrize(
    "dsn, shown",
    [
        ("postgresql://ops:hunter2@db:5432/leitstand", "postgresql://ops:***@db:5432/leitstand"),
        ("host=db user=pg password=hunter2 dbname=x", "host=db user=pg password=*** dbname=x"),
        ("host=db password = 'hun ter\\'2' sslmode=require", "host=db password=*** sslmode=require"),
        ("host=db sslpassword=hunter2", "host=db sslpassword=***"),
        (
            "postgresql://db/leitstand?user=ops&password=hunter2&sslmode=require",
            "postgresql://db/leitstand?user=ops&password=***&sslmode=require",
        ),
        ("postgresql://ops@db/x?sslpassword=hunter2", "postgresql://ops@db/x?sslpassword=***"),
        ("garbage 'hunter2", "***"),
        # libpq reads a password up to the '@' even with '?', '#' or '/' in it (urlsplit does not)
        ("postgresql://ops:hunter2?x@db/x", "postgresql://ops:***@db/x"),
        ("postgresql://ops:hun#ter2@db/x", "postgresql://ops:***@db/x"),
        ("postgresql://ops:hun/ter2@db:5432/x?sslmode=require", "postgresql://ops:***@db:5432/x?sslmode=require"),
        ("postgresql://db:5432/x?application_name=a@b", "postgresql://db:5432/x?application_name=a@b"),
    ],
)
def test_both_dsn_forms_are_masked(dsn: str, shown: str) -> None:
    assert _mask_dsn(dsn) == shown and "hunter2" not in _mask_dsn(dsn)


def test_webhook_urls_are_masked(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    s = Settings(alarm_contact_levels=[["https://bot:pw1@pager.example/duty?token=tk1&x=1"], ["https://m.example/m"]])
    shown = s.masked()["alarm_contact_levels"]
    assert shown == [["https://***@pager.example/duty?token=***&x=***"], ["https://m.example/m"]]


@pytest.mark.parametrize("token", ["", "short", "x" * 31, "\u00a0" * 16, "x" * 31 + " ", "ä" * 20])
def test_weak_api_tokens_are_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, token: str) -> None:
    """An empty token matched a stripped header: with it set, anyone could acknowledge alarms."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LEITSTAND_API_TOKEN", token)
    with pytest.raises(SettingsInvalid) as info:
        load_settings()
    assert "LEITSTAND_API_TOKEN" in str(info.value) and (not token.strip() or token.strip() not in str(info.value))


def test_unset_or_strong_api_token_is_fine(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    assert load_settings().api_token is None
    monkeypatch.setenv("LEITSTAND_API_TOKEN", "A" * 32)
    assert load_settings().api_token is not None


@pytest.mark.parametrize(
    "url",
    [
        "http://pager.example/duty",
        "file:///etc/passwd",
        "https://169.254.169.254/latest/meta-data/",
        "https://127.0.0.1:9/x",
        "https://[fe80::1]/x",
        "https://localhost/x",
    ],
)
def test_unsafe_webhook_targets_are_refused_at_start_up(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, url: str) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LEITSTAND_ALARM_CONTACT_LEVELS", f'[["https://ok.example/a"], ["{url}?token=SECRET"]]')
    with pytest.raises(SettingsInvalid) as info:
        load_settings()
    assert "LEITSTAND_ALARM_CONTACT_LEVELS" in str(info.value) and "SECRET" not in str(info.value)


def test_allowed_hosts_admit_an_internal_http_receiver(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LEITSTAND_WEBHOOK_ALLOWED_HOSTS", "127.0.0.1, pager.internal")
    monkeypatch.setenv("LEITSTAND_ALARM_CONTACT_LEVELS", '[["http://127.0.0.1:8080/duty"], ["http://pager.internal/m"]]')
    s = load_settings()
    assert s.webhook_allowed_hosts == ["127.0.0.1", "pager.internal"]
    monkeypatch.setenv("LEITSTAND_WEBHOOK_ALLOWED_HOSTS", '["169.254.169.254"]')
    monkeypatch.setenv("LEITSTAND_ALARM_CONTACT_LEVELS", '[["http://169.254.169.254/latest"]]')
    with pytest.raises(SettingsInvalid, match="link-local"):
        load_settings()


@pytest.mark.parametrize("name", ["LEITSTAND_POOLS", "LEITSTAND_ALARM_CONTACT_LEVELS", "LEITSTAND_VENUES"])
def test_malformed_json_names_the_variable(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, name: str) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(name, '{"unterminated')
    with pytest.raises(SettingsInvalid) as info:
        load_settings()
    assert str(info.value).startswith(f"invalid setting {name[10:].lower()} ({name})") and "JSON" in str(info.value)


def test_the_water_watch_is_off_at_zero_and_on_from_five_seconds(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LEITSTAND_WATER_WATCH_AFTER_S", "0")
    assert Settings().water_watch_after_s == 0
    monkeypatch.setenv("LEITSTAND_WATER_WATCH_AFTER_S", "5")
    assert Settings().water_watch_after_s == 5


def test_the_forecast_clock_is_berlin_unless_set_and_empty_means_utc(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    assert Settings().forecast_timezone == "Europe/Berlin"
    monkeypatch.setenv("LEITSTAND_FORECAST_TIMEZONE", " America/Chicago ")
    assert Settings().forecast_timezone == "America/Chicago"
    monkeypatch.setenv("LEITSTAND_FORECAST_TIMEZONE", "")
    assert Settings().forecast_timezone is None


def test_settings_a_probe_found_accepted_are_refused_in_one_line(tmp_path: Path) -> None:
    """Stop 55's probe: ``inf`` for a duration (critical alarms never escalated), a retention of a
    million days (``db prune`` crashed after pruning another table), TLS files that are not
    there or not PEM (a stack trace in every Kafka command)."""

    from streams.errors import CliError

    bad: list[dict[str, Any]] = [
        {"alarm_ack_timeout_critical_s": "inf"},
        {"batch_within_s": "nan"},
        {"retention_bus_passages_days": 1_000_000},
    ]
    for fields in bad:
        with pytest.raises(ValidationError):
            Settings(_env_file=None, **fields)
    Settings(_env_file=None, retention_bus_passages_days=36_500)  # a hundred years is allowed
    with pytest.raises(ValidationError, match="no such file"):
        Settings(_env_file=None, kafka_ssl_cafile=tmp_path / "missing.pem")
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate")
    tls = Settings(_env_file=None, kafka_security_protocol="SSL", kafka_ssl_cafile=junk)
    with pytest.raises(CliError, match="LEITSTAND_KAFKA_SSL_CAFILE"):
        tls.kafka_client_options()


def test_a_dot_env_that_is_not_utf8_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / ".env").write_bytes(b"\xff\xfeLEITSTAND_TOPIC_PREFIX=x\n")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SettingsInvalid, match="not UTF-8"):
        load_settings()
