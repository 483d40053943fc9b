"""A simulated pool day: deterministic ground truth, and the core alarms what it must."""

from __future__ import annotations

from datetime import datetime, timezone

from detection.evaluation import RaisedAlarm, Truth, evaluate_alarms
from simulators.city.pool_day import simulate_pool_day
from simulators.harness.bench_alarms import replay_pool_day_through_core

DAY0 = datetime(2026, 7, 4, tzinfo=timezone.utc).timestamp()


def test_same_seed_same_day_other_seed_other_day() -> None:
    a, b = simulate_pool_day(DAY0, pools=2, seed=7), simulate_pool_day(DAY0, pools=2, seed=7)
    assert a.readings == b.readings and a.truth == b.truth and a.camera == b.camera
    assert simulate_pool_day(DAY0, pools=2, seed=8).truth != a.truth


def test_visitors_follow_opening_hours() -> None:
    day = simulate_pool_day(DAY0, pools=1, seed=1)
    by_hour: dict[int, list[int]] = {}
    for t, _, _, visitors in day.readings:
        by_hour.setdefault(int((t - DAY0) // 3600), []).append(visitors)
    assert max(by_hour[3]) == 0 and max(by_hour[23]) == 0
    assert max(by_hour[17]) > 2 * max(by_hour[7])  # after-work peak


def test_every_critical_incident_alarmed_and_few_false_water_alarms() -> None:
    truth, raised = [], []
    for d in range(2):
        day = simulate_pool_day(DAY0 + d * 86_400, pools=2, seed=10 + d)
        truth += [Truth(i.pool_id, i.kind, i.start, i.end, i.expected_alarm, i.severity) for i in day.truth]
        raised += replay_pool_day_through_core(day, capacity=200, min_duration_s=30.0)
    result = evaluate_alarms(truth, raised, days=2, subjects=2)
    assert result["critical_incidents"] == 8 and result["critical_alarmed"] == 8
    assert result["false_water_alarms_per_subject_day"] <= 1.0
    assert result["per_kind"]["water_free_chlorine"]["recall"] == 1.0
    # the naive band check rings far more often on the same data
    naive = []
    for d in range(2):
        naive += replay_pool_day_through_core(simulate_pool_day(DAY0 + d * 86_400, pools=2, seed=10 + d), 200, 30.0, naive=True)
    assert evaluate_alarms(truth, naive, days=2, subjects=2)["false_water_alarms_per_subject_day"] > 3.0


def test_evaluation_counts_matches_misses_and_false_alarms() -> None:
    truth = [Truth("P1", "spill", 100.0, 200.0, "water_ph", "major"), Truth("P1", "cam", 50.0, 60.0, "motionless_swimmer", "critical")]
    raised = [
        RaisedAlarm("P1", "water_ph", "major", 130.0),
        RaisedAlarm("P1", "water_ph", "major", 5000.0),
        RaisedAlarm("P2", "motionless_swimmer", "critical", 55.0),
    ]
    r = evaluate_alarms(truth, raised, days=1, subjects=2, grace_s=60.0)
    row = r["per_kind"]["water_ph"]
    assert (row["incidents"], row["detected"], row["false_alarms"], row["delays_s"]) == (1, 1, 1, [30.0])
    assert (row["recall"], row["precision"]) == (1.0, 0.5)
    assert r["critical_alarmed"] == 0 and r["critical_missed"][0]["subject_id"] == "P1"
    assert r["false_water_alarms_per_subject_day"] == 0.5
