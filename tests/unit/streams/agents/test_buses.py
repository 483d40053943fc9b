"""The bus agent's translation (streams/agents/buses.py): priority requests, alarm commands."""

from __future__ import annotations

from datetime import datetime, timezone

from streams.agents.buses import BusWatch, alarm_command
from streams.records import BusPosition
from streams.settings import Settings
from tests.unit.transit.helpers import STEP_LON, line, when
from transit.headways import AlarmChange


def pos(trip: str, t: float, seq: int, status: str, k: float) -> BusPosition:
    return BusPosition(
        schema_version=1,
        event_time=datetime.fromtimestamp(t, timezone.utc),
        vehicle_id=f"v-{trip}",
        trip_id=trip,
        route_id="L1",
        latitude=48.0,
        longitude=11.0 + k * STEP_LON,
        current_stop_sequence=seq,
        current_status=status,  # type: ignore[arg-type]
    )


def test_only_a_late_bus_asks_for_priority_once_per_intersection() -> None:
    settings = Settings(_env_file=None, bus_priority_late_s=120.0, bus_priority_stops={"S2": ("K1", "A")})
    watch = BusWatch(settings, line(trips=2))
    on_time = [pos("L1-T0", when(8 * 3600 + 10), 1, "STOPPED_AT", 0), pos("L1-T0", when(8 * 3600 + 150), 3, "IN_TRANSIT_TO", 1.2)]
    late = [
        pos("L1-T1", when(8 * 3600 + 600 + d), s, st, k)
        for d, s, st, k in [
            (300, 1, "STOPPED_AT", 0),
            (420, 2, "STOPPED_AT", 1),
            (480, 3, "IN_TRANSIT_TO", 1.3),
            (500, 3, "IN_TRANSIT_TO", 1.5),
        ]
    ]
    _, requests = watch.positions(on_time + late)  # judged against the newest event time
    assert [(r.trip_id, r.intersection_id, r.approach) for r in requests] == [("L1-T1", "K1", "A")]
    assert requests[0].delay_s > 120 and requests[0].request_id == "tsp@K1~L1-T1"
    assert watch.line_figures()["L1"]["late"] >= 1


def test_alarm_commands_for_the_books() -> None:
    up = alarm_command(AlarmChange("bus_bunching", "L1", "raise", 1000.0, {"headway_s": 90.0, "scheduled_headway_s": 600.0}))
    assert (up.op, up.subject_id, up.subject_type, up.kind, up.severity) == ("raise", "L1", "bus_line", "bus_bunching", "minor")
    assert "90.0 s" in (up.message or "") and up.trigger == "bus_bunching:L1:1000"
    down = alarm_command(AlarmChange("bus_gap", "L1", "clear", 2000.0, {}))
    assert (down.op, down.kind, down.subject_type) == ("clear", "bus_gap", "bus_line")
