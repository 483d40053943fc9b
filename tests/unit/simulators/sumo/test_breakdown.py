"""The capacity breakdown (simulators/sumo/breakdown.py) on the example junction: each green
second lands in served / standing / empty by what its lanes' detectors saw, changes and halted
vehicles are summed, rules are counted once per decision; and in a SUMO closed loop the shares add
up and dead detectors are reported."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from signals.controllers import make_controller
from signals.controllers.base import DetectorObservation
from signals.loader import load_intersection
from signals.timeline import SignalState
from simulators.sumo.breakdown import Breakdown, merge
from simulators.sumo.evaluation import RunOptions, evaluate
from simulators.sumo.faults import FailureKind
from streams.records import DetectorReading, IntersectionFrame
from tests.paths import EXAMPLE_INTERSECTION
from tests.sumo_nets import build

pytestmark = pytest.mark.slow  # the closed-loop test runs SUMO (tests/unit/test_markers.py)

X = load_intersection(EXAMPLE_INTERSECTION)
RED = {g: SignalState.RED for g in X.groups}


def _frame(readings: dict[str, tuple[int, float]]) -> IntersectionFrame:
    return IntersectionFrame(
        schema_version=1,
        event_time=datetime(2026, 1, 1, tzinfo=UTC),
        intersection_id=X.id,
        interval_s=1.0,
        detectors=[DetectorReading(detector_id=d, count=c, occupancy=0.0, queue_veh=q) for d, (c, q) in readings.items()],
    )


def test_green_seconds_are_split_by_what_the_lanes_saw() -> None:
    b = Breakdown({X.id: X})
    decision = make_controller("fixed", X).decide(DetectorObservation(X.id, 0.0, 1.0, {}))
    green = {**RED, "K1": SignalState.GREEN, "K3": SignalState.GREEN, "K2": SignalState.GREEN}
    # K1 (N_in, S_in) discharges; K3 (E_in, W_in) has a standing queue; K2 (lefts) nobody
    b.observe(_frame({"N_in": (1, 0.0), "E_in": (0, 4.0), "E_out": (0, 2.0)}), green, False, decision, 1.0)
    b.observe(_frame({}), RED, True, decision, 1.0)
    b.network(pending_vehicles=3, step_s=1.0)
    b.network(pending_vehicles=1, step_s=1.0)
    out = b.finish({X.id: 1})
    row = out["intersections"][X.id]
    assert row["green_group_s"] == 3.0
    assert (row["served_share"], row["standing_share"], row["arriving_share"], row["empty_share"]) == (0.333, 0.333, 0.0, 0.333)
    assert row["change_s"] == 1.0
    assert row["approach_halted_veh_h"] == round(4.0 / 3600, 2) and row["exit_halted_veh_h"] == round(2.0 / 3600, 2)
    assert row["rules"] == {"fixed_program": 1}  # the same decision twice is one decision
    assert row["switches_per_hour"] == 1800.0  # one change in two seconds
    assert (out["insertion_backlog_mean_veh"], out["insertion_backlog_max_veh"]) == (2.0, 3)
    both = merge([out, out])
    assert both["intersections"][X.id]["green_group_s"] == 6.0
    assert both["intersections"][X.id]["served_share"] == 0.333
    assert both["intersections"][X.id]["rules"] == {"fixed_program": 2}


def test_closed_loop_breakdown_and_failed_detectors(tmp_path: Path) -> None:
    """SUMO on a generated crossing: the breakdown's shares add up to one, and with a third of
    the detectors dead the same ones fail for every controller of a seed."""
    scenario = build("single", tmp_path, end_s=300)
    options = RunOptions(breakdown=True, failed_detectors=0.34)
    rows = {c: evaluate(scenario, c, [1], options=options) for c in ("fixed", "leitstand")}
    for row in rows.values():
        (light,) = row["breakdown"]["intersections"].values()
        assert light["green_group_s"] > 0
        assert abs(sum(light[f"{k}_share"] for k in ("served", "standing", "arriving", "empty")) - 1.0) < 0.01
        assert light["served_share"] > 0.2 and light["switches_per_hour"] > 0
        assert row["safety_violations"] == 0 and row["teleports"] == 0
    assert rows["fixed"]["failed_detectors_per_seed"] == rows["leitstand"]["failed_detectors_per_seed"] != [0]


@pytest.mark.parametrize("kind", [FailureKind.STUCK, FailureKind.NOISY])
def test_closed_loop_with_stuck_or_noisy_detectors(tmp_path: Path, kind: FailureKind) -> None:
    """Stuck and noisy detectors change what leitstand sees, never what the validator lets through."""
    scenario = build("single", tmp_path, end_s=300)
    clean = evaluate(scenario, "leitstand", [1])
    broken = evaluate(scenario, "leitstand", [1], options=RunOptions(failed_detectors=0.34, failure_kind=kind))
    assert broken["failure_kind"] == kind.value and broken["failed_detectors_per_seed"] != [0]
    assert broken["safety_violations"] == 0 and broken["teleports"] == 0
    assert broken["delay_mean"] != clean["delay_mean"]  # the faults reached the controller
