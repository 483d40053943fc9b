"""Settings precedence (defaults < .env < environment < flags) and secret masking."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from streams.settings import Settings, load_settings


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
    monkeypatch.setenv("LEITSTAND_API_TOKEN", "s3cret-token")
    monkeypatch.setenv("LEITSTAND_KAFKA_SASL_PASSWORD", "kafkapw")
    shown = Settings().masked()
    text = repr(shown)
    assert "hunter2" not in text and "s3cret-token" not in text and "kafkapw" not in text
    assert shown["postgres_dsn"] == "postgresql://ops:***@db:5432/leitstand"
    assert shown["api_token"] == "***"


@pytest.mark.parametrize(
    "name, value",
    [("LEITSTAND_TOPIC_PARTITIONS", "0"), ("LEITSTAND_TABLE_STORE", "redis://x"), ("LEITSTAND_TOPIC_PREFIX", "a b")],
)
def test_invalid_values_are_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, name: str, value: str) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError):
        Settings()


def test_sasl_options_pass_through(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    s = Settings(kafka_security_protocol="SASL_PLAINTEXT", kafka_sasl_mechanism="SCRAM-SHA-512",
                 kafka_sasl_username="u", kafka_sasl_password="p")
    opts = s.kafka_client_options()
    assert opts == {"security_protocol": "SASL_PLAINTEXT", "sasl_mechanism": "SCRAM-SHA-512",
                    "sasl_plain_username": "u", "sasl_plain_password": "p"}
