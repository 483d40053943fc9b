"""`leitstand events import` through a real broker: the calendar's events land on events.schedule."""

from __future__ import annotations

import json
from pathlib import Path

import msgspec
import pytest

from streams.records import ScheduledEvent
from tests.cli_helpers import leitstand
from tests.unit.streams.cli.test_forecast import ICS, VENUES

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_events_import_publishes_scheduled_events(broker, settings_for, tmp_path: Path) -> None:
    s = settings_for(broker)
    env = {"LEITSTAND_KAFKA_BOOTSTRAP_SERVERS": s.kafka_bootstrap_servers, "LEITSTAND_TOPIC_PREFIX": s.topic_prefix}
    ics, venues = tmp_path / "cal.ics", tmp_path / "venues.json"
    ics.write_text(ICS)
    venues.write_text(json.dumps(VENUES))
    sent = leitstand("events", "import", str(ics), "--venue-map", str(venues), env=env, timeout=120)
    assert sent.returncode == 0, sent.stderr
    tailed = leitstand("tail", "events.schedule", "--from-beginning", "-n", "3", "--meta", env=env, timeout=60)
    rows = [json.loads(line) for line in tailed.stdout.splitlines()]
    events = [msgspec.json.decode(json.dumps(r["value"]).encode(), type=ScheduledEvent) for r in rows]
    assert len(events) == 3 and {r["key"] for r in rows} == {e.venue_id for e in events}
    assert any(e.venue_id == "stadium" and e.expected_attendance == 42000 for e in events)
