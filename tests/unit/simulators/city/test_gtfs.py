"""The synthetic city's GTFS feed: what the loader reads back is the timetable the city ran."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from simulators.city.gtfs import city_trips, feed_tables, timetable_of, write_feed
from simulators.city.types import CityConfig
from streams.transit_codec import load_feed
from streams.transit_codec import timetable_of as timetable_of_records


def test_feed_round_trip(tmp_path: Path) -> None:
    config = CityConfig(bus_lines=2, seed=3)
    t0 = datetime(2026, 3, 3, 4, 0, tzinfo=timezone.utc).timestamp()
    lines, trips = city_trips(config, t0, t0 + 4 * 3600)
    assert write_feed(tmp_path / "city.zip", config, lines, trips) == len(trips) > 10
    loaded = load_feed(tmp_path / "city.zip")
    assert loaded.skipped == {} and len(loaded.records) == len(trips)
    direct, read = timetable_of(config, lines, trips), timetable_of_records(loaded.records)
    assert read.timezone == "Europe/Berlin" and dict(read.trips) == dict(direct.trips)
    for trip in trips[:20]:  # the scheduled epoch times the simulator used, to the second
        times = read.times(trip.trip_id, trip.scheduled[0])
        assert times is not None and max(abs(a - b) for a, b in zip(times, trip.scheduled)) <= 0.5
    # the unpacked folder reads the same (the help says "zip or folder"; a folder was refused until stop 55)
    import zipfile

    with zipfile.ZipFile(tmp_path / "city.zip") as z:
        z.extractall(tmp_path / "unpacked")
    assert timetable_of_records(load_feed(tmp_path / "unpacked").records).trips == read.trips
    # the same run writes the same bytes
    write_feed(tmp_path / "again.zip", config, lines, trips)
    assert (tmp_path / "city.zip").read_bytes() == (tmp_path / "again.zip").read_bytes()
    assert feed_tables(config, lines, trips)["calendar_dates.txt"].startswith("service_id,date,exception_type\nD20260303,20260303,1")


def test_bench_arrivals_beats_schedule_only() -> None:
    from simulators.harness.bench_arrivals import arrivals_benchmark

    result = arrivals_benchmark(lines=4, hours=18.0, seeds=1)
    ten = result["horizons"]["10min"]
    assert ten["n"] > 1000 and ten["improvement_vs_schedule_only"] > 0.3
    alarms = result["bunching_alarms"]
    assert result["rejected_positions"] == {} and alarms["truth_episodes"] > 0 and alarms["recall"] > 0.5
