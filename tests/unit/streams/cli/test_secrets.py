"""Secrets and bad settings through the real ``leitstand`` console script (a child process).

#6: a weak API token stops every command at start-up; #8: ``leitstand config`` shows no secret
(key=value DSNs, ``?password=`` queries, webhook URLs); #16: malformed JSON in a variable is one
line naming it, for every command, never a traceback.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from streams.stack import free_port
from tests.cli_helpers import leitstand, one_clean_line

pytestmark = pytest.mark.slow  # child processes (the CLI) or SUMO runs

# the variables the tests set must not leak in from the developer's shell or a .env
CLEAN = {
    "LEITSTAND_API_TOKEN": "t" * 32,
    "LEITSTAND_ALARM_CONTACT_LEVELS": "[]",
    "LEITSTAND_POOLS": "{}",
    "LEITSTAND_VENUES": "{}",
    "LEITSTAND_WEBHOOK_ALLOWED_HOSTS": "",
    "LEITSTAND_POSTGRES_DSN": "",
}


def run(tmp_path: Path, *args: str, **env: str):
    return leitstand(*args, env={**CLEAN, **env}, cwd=tmp_path, timeout=60)


def test_config_json_masks_every_secret(tmp_path: Path) -> None:
    proc = run(
        tmp_path,
        "config",
        "--json",
        LEITSTAND_POSTGRES_DSN="host=db user=pg password=Hunter2pw dbname=leitstand",
        LEITSTAND_KAFKA_SASL_PASSWORD="SaslPw9",
        LEITSTAND_WEBHOOK_SECRET="WhSecretValue",
        LEITSTAND_API_TOKEN="TokenValue" + "0" * 30,
        LEITSTAND_ALARM_CONTACT_LEVELS=json.dumps(
            [["https://bot:UserInfoPw@pager.example/duty?token=QueryTok"], ["https://pager.example/manager?password=QueryPw"]]
        ),
    )
    assert proc.returncode == 0, proc.stderr
    for secret in ("Hunter2pw", "SaslPw9", "WhSecretValue", "TokenValue", "UserInfoPw", "QueryTok", "QueryPw"):
        assert secret not in proc.stdout, secret
    shown = json.loads(proc.stdout)
    assert shown["postgres_dsn"] == "host=db user=pg password=*** dbname=leitstand"
    assert shown["alarm_contact_levels"] == [["https://***@pager.example/duty?token=***"], ["https://pager.example/manager?password=***"]]


def test_config_masks_a_password_in_a_dsn_query(tmp_path: Path) -> None:
    proc = run(
        tmp_path, "config", "--json", LEITSTAND_POSTGRES_DSN="postgresql://db:5432/leitstand?user=ops&password=Hunter2pw&sslmode=require"
    )
    assert proc.returncode == 0, proc.stderr
    assert "Hunter2pw" not in proc.stdout
    assert json.loads(proc.stdout)["postgres_dsn"] == "postgresql://db:5432/leitstand?user=ops&password=***&sslmode=require"


def test_the_config_table_masks_too(tmp_path: Path) -> None:
    proc = run(tmp_path, "config", LEITSTAND_POSTGRES_DSN="host=db password=Hunter2pw")
    assert proc.returncode == 0 and "Hunter2pw" not in proc.stdout and "password=***" in proc.stdout


@pytest.mark.parametrize("name", ["LEITSTAND_POOLS", "LEITSTAND_ALARM_CONTACT_LEVELS", "LEITSTAND_VENUES"])
@pytest.mark.parametrize("command", [("config",), ("worker",), ("demo", "--minutes", "0.1")])
def test_malformed_json_is_one_line_naming_the_variable(tmp_path: Path, name: str, command: tuple[str, ...]) -> None:
    # an unused port: should settings ever pass, the command fails fast instead of finding a broker
    port = str(free_port())
    line = one_clean_line(
        run(tmp_path, "-b", f"127.0.0.1:{port}", "--state-dir", str(tmp_path), *command, **{name: '{"P1": {"basin_type": '})
    )
    assert name in line and "not valid JSON" in line, line


@pytest.mark.parametrize("token", ["", "short-token", "x" * 31, "\u00a0" * 16])
@pytest.mark.parametrize("command", [("config",), ("worker",)])
def test_weak_api_token_stops_the_command(tmp_path: Path, token: str, command: tuple[str, ...]) -> None:
    port = str(free_port())
    line = one_clean_line(run(tmp_path, "-b", f"127.0.0.1:{port}", *command, LEITSTAND_API_TOKEN=token))
    assert "LEITSTAND_API_TOKEN" in line, line
    assert not token.strip() or token not in line


@pytest.mark.parametrize(
    "url", ["http://pager.example/duty?token=QueryTok", "file:///etc/passwd", "https://169.254.169.254/latest/meta-data/?token=QueryTok"]
)
def test_unsafe_webhook_target_stops_the_worker(tmp_path: Path, url: str) -> None:
    port = str(free_port())
    line = one_clean_line(run(tmp_path, "-b", f"127.0.0.1:{port}", "worker", LEITSTAND_ALARM_CONTACT_LEVELS=json.dumps([[url]])))
    assert "LEITSTAND_ALARM_CONTACT_LEVELS" in line and "QueryTok" not in line, line
