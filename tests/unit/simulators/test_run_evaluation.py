"""The run evaluation's fairness and bus parts: each pool judged on its own, bus bunching against the truth."""

from __future__ import annotations

from detection.evaluation import RaisedAlarm, Truth
from simulators.harness.run_evaluation import bus_evaluation, per_pool

DAY = 86_400.0


def test_a_pool_served_worse_shows_up_beside_the_others() -> None:
    judged = [
        Truth("P1", "motionless_swimmer", 100.0, 160.0, "motionless_swimmer", "critical"),
        Truth("P2", "motionless_swimmer", 100.0, 160.0, "motionless_swimmer", "critical"),
        Truth("P2", "water_violation", 1000.0, 4000.0, "water_ph", "major"),
    ]
    raised = [
        RaisedAlarm("P1", "motionless_swimmer", "critical", 101.0),
        RaisedAlarm("P1", "water_ph", "major", 5000.0),  # nothing in P1's truth: a false alarm
        RaisedAlarm("P2", "water_ph", "major", 1600.0),  # the camera event in P2 was missed
    ]
    out = per_pool(judged, raised, days=0.5)
    assert out["P1"] == {"incidents": 1, "recall": 1.0, "delay_median_s": 1.0, "false_alarms_per_day": 2.0, "critical_alarmed": "1/1"}
    assert out["P2"]["recall"] == 0.5 and out["P2"]["critical_alarmed"] == "0/1" and out["P2"]["false_alarms_per_day"] == 0.0


def test_bunching_episodes_are_matched_by_line_and_time() -> None:
    truth = [
        {"kind": "bus_bunching", "subject_id": "L1", "start": 1000.0, "end": 1300.0},
        {"kind": "bus_bunching", "subject_id": "L2", "start": 1000.0, "end": 1300.0},
    ]
    alerts = [
        {"transition": "raised", "kind": "bus_bunching", "subject_id": "L1", "raised_at": "1970-01-01T00:20:00+00:00"},
        {"transition": "raised", "kind": "bus_bunching", "subject_id": "L2", "raised_at": "1970-01-01T05:00:00+00:00"},  # hours later
        {"transition": "raised", "kind": "bus_gap", "subject_id": "L2", "raised_at": "1970-01-01T00:20:00+00:00"},
    ]
    out = bus_evaluation(truth, alerts, {"punctuality": 0.9})
    assert (out["bunching_episodes"], out["episodes_alarmed"], out["bunching_alarms"], out["gap_alarms"]) == (2, 1, 2, 1)
    assert out["measured"] == {"punctuality": 0.9}
