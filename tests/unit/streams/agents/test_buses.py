"""The bus agent's translation (streams/agents/buses.py): priority requests, alarm commands, stop
passages for the history."""

from __future__ import annotations

from datetime import datetime, timezone

import msgspec

from streams.agents.buses import BusWatch, alarm_command
from streams.db.rows import TABLES, TOPIC_TABLES, RowMapper
from streams.records import BusPassage, BusPosition, encode
from streams.settings import Settings
from streams.topics import TRANSIT_PASSAGES
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
    requests = watch.positions(on_time + late).requests  # judged against the newest event time
    assert [(r.trip_id, r.intersection_id, r.approach) for r in requests] == [("L1-T1", "K1", "A")]
    assert requests[0].delay_s > 120 and requests[0].request_id == "tsp@K1~L1-T1"
    assert watch.line_figures()["L1"]["late"] >= 1


def test_alarm_commands_for_the_books() -> None:
    up = alarm_command(AlarmChange("bus_bunching", "L1", "raise", 1000.0, {"headway_s": 90.0, "scheduled_headway_s": 600.0}))
    assert (up.op, up.subject_id, up.subject_type, up.kind, up.severity) == ("raise", "L1", "bus_line", "bus_bunching", "minor")
    assert "90.0 s" in (up.message or "") and up.trigger == "bus_bunching:L1:1000"
    down = alarm_command(AlarmChange("bus_gap", "L1", "clear", 2000.0, {}))
    assert (down.op, down.kind, down.subject_type) == ("clear", "bus_gap", "bus_line")


def test_every_stop_passage_becomes_a_history_row_with_its_delay_and_headway() -> None:
    """T0 on time, T1 about six minutes late behind it (scheduled 600 s apart): each stop passage
    is a record on ``transit.passages``, judged with the worker's own on-time window, and T1's
    carry the headway to T0 (1,000 s: a gap, above 1.5 x); the sink's row mapper takes them. A
    passage between two positions is estimated half-way between them (adherence.py)."""
    settings = Settings(_env_file=None, bus_on_time_early_s=-60.0, bus_on_time_late_s=180.0)
    watch = BusWatch(settings, line(trips=2))
    t0 = [pos("L1-T0", when(8 * 3600 + 120 * k + 5), k + 1, "STOPPED_AT", k) for k in range(3)]
    t1 = [pos("L1-T1", when(8 * 3600 + 600 + 400 + 120 * k + 5), k + 1, "STOPPED_AT", k) for k in range(3)]
    out = watch.positions(t0 + t1)
    by_trip: dict[str, list[BusPassage]] = {}
    for p in out.passages:
        by_trip.setdefault(p.trip_id, []).append(p)
    assert [p.stop_id for p in by_trip["L1-T0"]] == ["S0", "S1", "S2"]
    assert [p.stop_id for p in by_trip["L1-T1"]] == ["S0", "S1", "S2"]
    assert {p.punctuality for p in by_trip["L1-T0"]} == {"on_time"} and all(p.headway_s is None for p in by_trip["L1-T0"])
    late = by_trip["L1-T1"]
    assert {p.punctuality for p in late} == {"late"} and [p.delay_s for p in late] == [405.0, 345.0, 345.0]
    assert all(p.scheduled_headway_s == 600.0 and p.headway_s is not None and p.headway_s == 1000.0 for p in late)
    assert {p.headway_kind for p in late} == {"gap"}
    # the same delay under a wider window is on time: the worker's settings decide, not the reader
    lenient = BusWatch(Settings(_env_file=None, bus_on_time_late_s=420.0), line(trips=2)).positions(t0 + t1)
    assert {p.punctuality for p in lenient.passages} == {"on_time"}
    # on the wire and into the history: one row per passage, in the table's column order
    mapper = RowMapper()
    for p in out.passages:
        assert msgspec.json.decode(encode(p), type=BusPassage) == p
        [row] = mapper.rows(TRANSIT_PASSAGES, 0, 7, p.route_id.encode(), encode(p), 0)  # type: ignore[misc]
        named = dict(zip(TABLES[TOPIC_TABLES[TRANSIT_PASSAGES]], row, strict=True))
        assert (named["trip_id"], named["stop_id"], named["punctuality"], named["src_offset"]) == (p.trip_id, p.stop_id, p.punctuality, 7)
        assert named["delay_s"] == p.delay_s and named["headway_kind"] == p.headway_kind
