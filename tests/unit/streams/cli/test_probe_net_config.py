"""Probe of the network surface: ``leitstand config`` must not print a webhook secret kept in the
URL's path.

docs/security.md counts "a token in the path" among the secrets and calls ``leitstand config
--json`` output "safe to attach", but the masking kept the whole path: Slack, Discord and Teams
incoming-webhook URLs carry their only credential there
(``https://hooks.slack.com/services/T0.../B0.../<24-character secret>``) and it was printed in
full. Path segments that look like credentials are now masked; short words stay readable so an
operator can still tell receivers apart.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli_helpers import leitstand

pytestmark = pytest.mark.slow  # child processes (the CLI) or SUMO runs

CLEAN = {
    "LEITSTAND_API_TOKEN": "t" * 32,
    "LEITSTAND_ALARM_CONTACT_LEVELS": "[]",
    "LEITSTAND_POOLS": "{}",
    "LEITSTAND_VENUES": "{}",
    "LEITSTAND_WEBHOOK_ALLOWED_HOSTS": "",
    "LEITSTAND_POSTGRES_DSN": "",
}

SLACK = "https://hooks.slack.com/services/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"
DISCORD = "https://discord.com/api/webhooks/1187654321098765432/aB3dE5fG7hI9jK1lM3nO5pQ7rS9tU1vW3xY5zA7bC9dE1fG3hI5jK7lM9nO1pQ3rS5tU7"
TEAMS = (
    "https://contoso.webhook.office.com/webhookb2/7c5f3b1e-2a4d-4e6f-8a9b-0c1d2e3f4a5b@"
    "9e8d7c6b-5a4f-3e2d-1c0b-a9f8e7d6c5b4/IncomingWebhook/0123456789abcdef0123456789abcdef/"
    "a1b2c3d4-e5f6-7a8b-9c0d-e1f2a3b4c5d6"
)


def test_config_masks_credentials_in_webhook_paths(tmp_path: Path) -> None:
    proc = leitstand(
        "config",
        "--json",
        cwd=tmp_path,
        timeout=60,
        env={**CLEAN, "LEITSTAND_ALARM_CONTACT_LEVELS": json.dumps([[SLACK, DISCORD], [TEAMS, "https://pager.example/duty"]])},
    )
    assert proc.returncode == 0, proc.stderr
    for secret in (
        "Xq7Lm2Np9Rs4Tv6Wy8Za1Bc3",
        "aB3dE5fG7hI9jK1lM3nO5pQ7rS9tU1vW3xY5zA7bC9dE1fG3hI5jK7lM9nO1pQ3rS5tU7",
        "0123456789abcdef0123456789abcdef",
        "a1b2c3d4-e5f6-7a8b-9c0d-e1f2a3b4c5d6",
    ):
        assert secret not in proc.stdout, secret
    shown = json.loads(proc.stdout)["alarm_contact_levels"]
    assert shown[0][0].startswith("https://hooks.slack.com/services/") and "***" in shown[0][0], shown
    assert shown[0][1].startswith("https://discord.com/api/webhooks/"), shown
    assert shown[1][1] == "https://pager.example/duty", shown  # nothing secret-looking: unchanged
