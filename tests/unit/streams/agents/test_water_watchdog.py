"""The water watch's commands to the alarm books, and how often it samples."""

from __future__ import annotations

from detection.reader_backlog import Backlog, observe
from streams.agents.water_watchdog import commands, sample_interval_s


def test_raise_and_clear_speak_the_alarm_books_language() -> None:
    backlog = observe(observe(Backlog(), 0.0, {0: 12}, {}), 90.0, {0: 40}, {})
    [raised] = commands("raise", backlog, 90.0, "sensors.pool", "leitstand-water")
    assert (raised.op, raised.subject_id, raised.subject_type, raised.kind, raised.severity) == (
        "raise",
        "water-rules",
        "system",
        "evaluation_behind",
        "major",
    )
    assert raised.evidence["waiting_readings"] == 40 and "90 s" in (raised.message or "")
    [cleared] = commands("clear", backlog, 120.0, "sensors.pool", "leitstand-water")
    assert (cleared.op, cleared.subject_id, cleared.kind) == ("clear", "water-rules", "evaluation_behind")
    assert cleared.event_time.timestamp() == 120.0


def test_the_watch_samples_a_tenth_of_its_threshold_within_bounds() -> None:
    assert sample_interval_s(60.0) == 6.0
    assert sample_interval_s(5.0) == 0.5
    assert sample_interval_s(3600.0) == 10.0
