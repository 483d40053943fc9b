"""The synthetic city: deterministic, decodable, shaped like a city, and honest about its truth."""

from __future__ import annotations

import statistics
from collections import defaultdict
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import msgspec
import pytest

from simulators.city import City, CityConfig, city_stream, city_truth, demand_profile, load_school_holidays, truth_jsonl
from simulators.city.calendar import VenueEvent
from streams.codec import DecodeFailure, TopicDecoder, decoder_for
from streams.records import DetectorReading, IntersectionFrame, PoolSupervisionEvent, Record, ScheduledEvent

START = datetime(2026, 7, 7, 4, 0, tzinfo=timezone.utc)  # Tuesday 06:00 in Munich, no holiday
HOURS = 6.0
BUSY = CityConfig(
    intersections=9,
    pools=2,
    bus_lines=2,
    incident_rate_per_day=30,
    detector_fault_rate_per_day=30,
    camera_incidents_per_pool_day=12,
    dosing_failures_per_pool_day=8,
    sensor_faults_per_pool_day=8,
    warmup_s=1800,
    seed=7,
)


@pytest.fixture(scope="module")
def run() -> tuple[City, list, list]:
    city = City(BUSY, START, HOURS * 3600)
    return city, list(city.stream()), city.truth()


def _day(d: date, config: CityConfig, step_min: int = 15) -> list[float]:
    """The profile over one local day, every ``step_min`` minutes (Berlin summer time = UTC+2)."""
    t0 = datetime(d.year, d.month, d.day, tzinfo=timezone.utc) - timedelta(hours=2)
    return [demand_profile(t0 + timedelta(minutes=m), config) for m in range(0, 24 * 60, step_min)]


def _at(d: date, hh: float) -> datetime:
    return datetime(d.year, d.month, d.day, tzinfo=timezone.utc) + timedelta(hours=hh - 2)


# --- determinism ----------------------------------------------------------------------------


def test_same_seed_byte_identical_other_seed_different(run) -> None:
    city, emissions, truth = run
    again = list(city_stream(BUSY, START, HOURS * 3600))
    assert again == emissions
    assert truth_jsonl(city_truth(BUSY, START, HOURS * 3600)) == truth_jsonl(truth)
    other = CityConfig(**{**BUSY.__dict__, "seed": 8})
    assert truth_jsonl(city_truth(other, START, HOURS * 3600)) != truth_jsonl(truth)


def test_truth_does_not_depend_on_consuming_the_stream() -> None:
    fresh = City(BUSY, START, 3 * 3600)
    before = truth_jsonl(fresh.truth())
    for _ in fresh.stream():
        pass
    assert truth_jsonl(fresh.truth()) == before == truth_jsonl(city_truth(BUSY, START, 3 * 3600))


# --- the stream -----------------------------------------------------------------------------


def test_every_emission_decodes_with_its_key_and_time(run) -> None:
    _, emissions, _ = run
    decoders: dict[str, TopicDecoder[Record]] = {}
    topics = set()
    for e in emissions:
        dec = decoders.setdefault(e.topic, decoder_for(e.topic, clock_skew_s=1e12))
        record = dec.decode(e.value, now=e.t, key=e.key.encode())
        assert not isinstance(record, DecodeFailure), (e.topic, record)
        assert record.event_time.timestamp() == pytest.approx(e.t, abs=1e-3)
        topics.add(e.topic)
    assert topics == {"sensors.intersection", "sensors.pool", "pool.supervision", "sensors.bus", "events.schedule"}


def test_emissions_time_ordered_and_schedule_first(run) -> None:
    city, emissions, _ = run
    assert all(a.t <= b.t for a, b in zip(emissions, emissions[1:]))
    schedule = [e for e in emissions if e.topic == "events.schedule"]
    assert schedule and all(e.t == city.t0 for e in schedule)
    events = [msgspec.json.decode(e.value, type=ScheduledEvent) for e in schedule]
    kinds = {s.kind for s in events}
    assert {"match", "concert", "weather"} <= kinds
    assert all(s.starts_at.timestamp() > city.t0 for s in events if s.kind in ("match", "concert"))  # ahead of time


def test_frames_are_four_approaches_of_two_lanes(run) -> None:
    _, emissions, _ = run
    frame = msgspec.json.decode(next(e.value for e in emissions if e.topic == "sensors.intersection"), type=IntersectionFrame)
    assert sorted((d.approach, d.lane) for d in frame.detectors) == [(a, lane) for a in "ENSW" for lane in (1, 2)]
    assert all(d.detector_id == f"{frame.intersection_id}-{d.approach}{d.lane}" for d in frame.detectors)


# --- profiles -------------------------------------------------------------------------------


def test_weekday_peaks_where_they_should_be() -> None:
    cfg = CityConfig()
    tue = date(2026, 7, 7)
    day = _day(tue, cfg)
    morning = max(range(len(day)), key=lambda i: day[i] if i < 48 else -1) / 4  # hour of the morning max
    evening = max(range(len(day)), key=lambda i: day[i] if i >= 52 else -1) / 4
    assert 7.0 <= morning <= 8.5 and 16.0 <= evening <= 18.0
    noon = demand_profile(_at(tue, 12), cfg)
    assert demand_profile(_at(tue, 7.75), cfg) > 1.3 * noon and demand_profile(_at(tue, 17), cfg) > 1.2 * noon
    assert demand_profile(_at(tue, 3), cfg) < 0.15 * max(day)


def test_weekend_flatter_and_lower() -> None:
    cfg = CityConfig()
    tue, sat, sun = date(2026, 7, 7), date(2026, 7, 11), date(2026, 7, 12)
    wd, sa, su = _day(tue, cfg), _day(sat, cfg), _day(sun, cfg)
    assert max(sa) < 0.75 * max(wd) and sum(su) < sum(sa) < sum(wd)
    assert demand_profile(_at(sat, 7.75), cfg) < demand_profile(_at(sat, 13), cfg)  # no morning peak
    daytime = slice(9 * 4, 19 * 4)
    assert max(sa[daytime]) / statistics.mean(sa[daytime]) < max(wd[daytime]) / statistics.mean(wd[daytime])


def test_public_holiday_lower_and_depends_on_state() -> None:
    cfg = CityConfig(state="BY")
    ascension, thursday = date(2026, 5, 14), date(2026, 5, 21)
    assert sum(_day(ascension, cfg)) < 0.7 * sum(_day(thursday, cfg))
    assert demand_profile(_at(ascension, 7.75), cfg) < 0.5 * demand_profile(_at(thursday, 7.75), cfg)
    corpus_christi = date(2026, 6, 4)  # a holiday in Bavaria, not in Berlin
    assert sum(_day(corpus_christi, cfg)) < sum(_day(corpus_christi, CityConfig(state="BE")))


def test_school_holiday_lowers_the_morning_peak() -> None:
    tue = date(2026, 7, 7)
    school = CityConfig(school_holidays=((date(2026, 7, 6), date(2026, 7, 10)),))
    plain = CityConfig()
    assert demand_profile(_at(tue, 7.75), school) < 0.9 * demand_profile(_at(tue, 7.75), plain)
    assert demand_profile(_at(tue, 12), school) == pytest.approx(demand_profile(_at(tue, 12), plain), rel=0.1)


def test_the_schedule_announces_holidays_as_whole_local_days() -> None:
    """A run whose week ahead holds a public and a school holiday publishes both, midnight to midnight."""
    config = CityConfig(intersections=4, pools=1, bus_lines=1, school_holidays=((date(2026, 12, 28), date(2026, 12, 30)),))
    city = City(config, start=datetime(2026, 12, 23, 6, tzinfo=timezone.utc), duration_s=3600)
    days = {s.event_id: s for s in city.schedule() if s.kind in ("holiday", "school_holiday")}
    christmas, school = days["holiday-2026-12-25"], days["school_holiday-2026-12-28"]
    berlin = ZoneInfo(config.timezone)
    assert christmas.starts_at == datetime(2026, 12, 25, tzinfo=berlin) and christmas.ends_at == datetime(2026, 12, 26, tzinfo=berlin)
    assert school.starts_at == datetime(2026, 12, 28, tzinfo=berlin) and school.ends_at == datetime(2026, 12, 31, tzinfo=berlin)


def test_rain_lowers_volume() -> None:
    t = _at(date(2026, 7, 7), 17)
    assert demand_profile(t, CityConfig(), rain_mm_h=4.0) < 0.95 * demand_profile(t, CityConfig())


def test_events_raise_demand_before_and_after() -> None:
    ev = VenueEvent("m", "stadium", "match", "x", 10_000.0, 16_300.0, 25_000, 30_000, ("K12",))
    assert ev.demand_factor(ev.start - 45 * 60, True) > 1.2
    assert ev.demand_factor(ev.end + 20 * 60, True) > ev.demand_factor(ev.start - 45 * 60, True)
    assert ev.demand_factor(ev.start - 45 * 60, False) < ev.demand_factor(ev.start - 45 * 60, True)
    assert ev.demand_factor(ev.start - 4 * 3600, True) == 1.0


# --- truth ----------------------------------------------------------------------------------


def _approach_series(emissions) -> dict[tuple[str, str], list[tuple[float, float, float | None, int]]]:
    out: dict[tuple[str, str], list] = defaultdict(list)
    for e in emissions:
        if e.topic != "sensors.intersection":
            continue
        frame = msgspec.json.decode(e.value, type=IntersectionFrame)
        by: dict[str, list[DetectorReading]] = defaultdict(list)
        for d in frame.detectors:
            assert d.approach is not None  # the city names every detector's approach
            by[d.approach].append(d)
        for a, ds in by.items():
            speeds = [d.speed_kmh for d in ds if d.speed_kmh is not None]
            out[(frame.intersection_id, a)].append(
                (e.t, statistics.mean(d.occupancy for d in ds), statistics.mean(speeds) if speeds else None, sum(d.count for d in ds))
            )
    return out


def test_incidents_raise_occupancy_and_lower_speed(run) -> None:
    _, emissions, truth = run
    series = _approach_series(emissions)
    incidents = [g for g in truth if g.kind == "incident"]
    assert incidents
    for g in incidents:
        assert g.expected_alarm == f"incident_{g.details['approach']}" and 15 * 60 <= g.end - g.start <= 46 * 60
        s = series[(g.subject_id, g.details["approach"])]
        during = [x for x in s if g.start <= x[0] < g.end]
        before = [x for x in s if g.start - 3600 <= x[0] < g.start]
        occ = statistics.mean(x[1] for x in during)
        assert occ > max(0.3, 3 * statistics.mean(x[1] for x in before))
        assert statistics.mean(x[2] for x in during if x[2]) < 0.6 * statistics.mean(x[2] for x in before if x[2])


def test_truth_covers_every_injection(run) -> None:
    city, emissions, truth = run
    kinds = {g.kind for g in truth}
    assert {
        "incident",
        "detector_stuck",
        "detector_silent",
        "detector_noisy",
        "sensor_stuck",
        "sensor_spike",
        "water_violation",
        "event",
        "weather",
    } <= kinds
    assert kinds & {"motionless_swimmer", "person_in_closed_zone"} and kinds & {"dosing_failure", "ph_pump_failure"}
    windows = defaultdict(list)
    for g in truth:
        if "detector_id" in g.details:
            windows[(g.kind, g.details["detector_id"])].append((g.start, g.end))

    def covered(kind: str, det: str, t: float) -> bool:
        return any(a <= t < b for a, b in windows[(kind, det)])

    detectors: dict[str, set[str]] = {}
    for e in emissions:
        if e.topic == "sensors.intersection":
            frame = msgspec.json.decode(e.value, type=IntersectionFrame)
            ids = {d.detector_id for d in frame.detectors}
            full = detectors.setdefault(frame.intersection_id, set()) | ids
            detectors[frame.intersection_id] = full
            for missing in full - ids:  # a detector vanishes only when the truth says it is silent
                assert covered("detector_silent", missing, e.t)
            for d in frame.detectors:
                if d.occupancy >= 0.999:
                    assert covered("detector_stuck", d.detector_id, e.t)
        elif e.topic == "pool.supervision":
            event = msgspec.json.decode(e.value, type=PoolSupervisionEvent)
            assert any(g.kind == event.kind and g.details.get("event_id") == event.event_id for g in truth)
    camera_truth = [g for g in truth if g.expected_alarm in ("motionless_swimmer", "person_in_closed_zone")]
    assert len(camera_truth) == sum(e.topic == "pool.supervision" for e in emissions)
    assert all(g.severity == "critical" for g in camera_truth)
    water = [g for g in truth if g.kind == "water_violation"]
    assert all(g.expected_alarm in ("water_free_chlorine", "water_ph", "water_redox") for g in water)
    for g in truth:
        assert g.to_json()["kind"] == g.kind and g.start <= g.end


def test_bus_positions_and_bunching_truth_are_consistent() -> None:
    city = City(CityConfig(seed=2), START, 10 * 3600)
    truth = [g for g in city.truth() if g.kind == "bus_bunching"]
    assert truth  # nobody injects it: it emerges from delays and headway-driven boarding
    for g in truth:
        assert g.expected_alarm is None and g.details["min_headway_s"] < 0.3 * g.details["scheduled_headway_s"]
    trips = city._bus_trips()
    for trip in trips:  # one bus never runs two trips at once
        assert all(a <= b for a, b in zip(trip.arrive, trip.arrive[1:]))
        for other in trips:
            if other is not trip and other.vehicle_id == trip.vehicle_id:
                assert other.arrive[0] >= trip.arrive[-1] or other.arrive[-1] <= trip.arrive[0]


# --- school holiday files -------------------------------------------------------------------


def test_load_school_holidays_csv_and_ics(tmp_path: Path) -> None:
    csv_file = tmp_path / "ferien.csv"
    csv_file.write_text(
        "# Bayern 2026\nstart,end,name\n2026-08-03,2026-09-14,Sommerferien\n\n2026-05-26,2026-06-05,Pfingstferien\n", encoding="utf-8"
    )
    assert load_school_holidays(csv_file) == ((date(2026, 5, 26), date(2026, 6, 5)), (date(2026, 8, 3), date(2026, 9, 14)))
    ics = tmp_path / "ferien.ics"
    ics.write_text(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\nBEGIN:VEVENT\r\nUID:1\r\n"
        "DTSTART;VALUE=DATE:20260803\r\nDTEND;VALUE=DATE:20260915\r\nSUMMARY:Sommerferien\r\n"
        "END:VEVENT\r\nEND:VCALENDAR\r\n",
        encoding="utf-8",
    )
    assert load_school_holidays(ics) == ((date(2026, 8, 3), date(2026, 9, 14)),)
    bad = tmp_path / "bad.csv"
    bad.write_text("2026-09-14,2026-08-03\n", encoding="utf-8")
    with pytest.raises(ValueError):
        load_school_holidays(bad)
