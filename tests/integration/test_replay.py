"""`leitstand replay` through a real broker: every row arrives, in order, keyed. Both brokers."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from tests.cli_helpers import leitstand

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_replay_csv_into_a_topic(broker, settings_for, tmp_path: Path) -> None:
    s = settings_for(broker)
    env = {"LEITSTAND_KAFKA_BOOTSTRAP_SERVERS": s.kafka_bootstrap_servers, "LEITSTAND_TOPIC_PREFIX": s.topic_prefix}
    lines = ["timestamp,value,pool_id"] + [f"2015-09-01T10:{i:02d}:00,{i},P{i % 2}" for i in range(40)]
    (tmp_path / "in.csv").write_text("\n".join(lines) + "\n")
    sent = leitstand(
        "replay", str(tmp_path / "in.csv"), "--topic", "sensors.pool", "--key-col", "pool_id", "--speed", "1200", env=env, timeout=120
    )  # 39 dataset minutes in ~2 s
    assert sent.returncode == 0, sent.stderr
    assert "replayed 40 rows" in sent.stderr
    tailed = leitstand("tail", "sensors.pool", "--from-beginning", "-n", "40", "--meta", env=env, timeout=60)
    rows = [orjson.loads(line) for line in tailed.stdout.splitlines()]
    assert sorted(r["value"]["value"] for r in rows) == list(range(40))
    for pool in ("P0", "P1"):
        mine = [r for r in rows if r["key"] == pool]
        assert [r["value"]["value"] for r in mine] == sorted(r["value"]["value"] for r in mine)  # per key, in order
