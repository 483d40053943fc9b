"""The weeks before a run (``CityHistory``): counts as the loops count them, rain and events of their own."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timezone

import msgspec

from simulators.city import City, CityConfig, CityHistory
from simulators.city.calendar import RainPeriod
from simulators.city.traffic import hourly_served, traffic_emissions
from streams.records import IntersectionFrame

CONFIG = CityConfig(intersections=4, pools=0, bus_lines=0, seed=3)
START = datetime(2026, 12, 4, 5, tzinfo=timezone.utc)


def _loop_counts(city: City) -> Counter[int]:
    """Vehicles the loops counted per hour of day (UTC), open loop, nothing injected."""
    out: Counter[int] = Counter()
    for e in traffic_emissions(city.config, city.grid, city.t0, city.t1, [], [], [], []):
        frame = msgspec.json.decode(e.value, type=IntersectionFrame)
        out[datetime.fromtimestamp(e.t, timezone.utc).hour] += sum(r.count for r in frame.detectors)
    return out


def test_history_counts_what_the_loops_count_at_night_too() -> None:
    """A history drawn from the demand profile overstated the loops by 13-15 % at night (the
    model's upstream coupling thins quiet hours): the forecaster's band was then off at night."""
    city = City(CONFIG, START, 3 * 86_400)
    loops = _loop_counts(city)
    served: Counter[int] = Counter()
    for _, hour, n in hourly_served(city.config, city.grid, city.t0, city.t1, [], [], stream="other"):
        served[datetime.fromtimestamp(hour, timezone.utc).hour] += n
    # measured: 0.995-0.998 overall, 0.988-1.011 at night over four random streams; the
    # demand-profile history this replaced: 1.022 and 1.067 on the same city and days
    assert abs(sum(served.values()) / sum(loops.values()) - 1) < 0.012
    night = range(0, 4)  # 01:00-05:00 in Berlin
    ratio = sum(served[h] for h in night) / sum(loops[h] for h in night)
    assert abs(ratio - 1) < 0.04, ratio


def test_history_has_rain_and_events_of_its_own_and_ends_where_the_run_begins() -> None:
    city = City(CONFIG, START, 10 * 3600)
    history = CityHistory(city, 14)
    assert history.t1 == city.t0 and history.t0 == city.t0 - 14 * 86_400
    assert len(history.rain) == 14 and all(history.t0 <= r.start < r.end <= history.t1 for r in history.rain)
    # its own random stream: the first day does not rain at the hour the run's first day does
    assert history.rain[0].start - history.t0 != city.rain[0].start - city.t0
    assert history.events and all(e.influence()[1] <= history.t1 for e in history.events)
    kinds = Counter(s.kind for s in history.schedule())
    assert kinds["weather"] == 14 and kinds["match"] + kinds["concert"] == len(history.events)
    assert all(s.weather is not None and s.weather.precipitation_mm_h for s in history.schedule() if s.kind == "weather")
    # imported at the run's start: a stream-clocked worker would dead-letter the run's schedule
    # behind entries stamped weeks earlier
    assert {s.event_time.timestamp() for s in history.schedule()} == {city.t0}
    rows = list(history.counts())
    hours = sorted({t for _, t, _ in rows})
    assert len(rows) == 14 * 24 * len(city.grid) and hours[0] == history.t0 and hours[-1] == history.t1 - 3600


def test_history_counts_feel_rain_and_a_match() -> None:
    city = City(CONFIG, START, 86_400)
    t0, t1 = city.t0, city.t0 + 12 * 3600
    dry = {(i, h): n for i, h, n in hourly_served(city.config, city.grid, t0, t1, [], [], stream="h")}
    shower = [RainPeriod(t0 + 4 * 3600, t0 + 7 * 3600, 6.0, 5.0)]
    wet = {(i, h): n for i, h, n in hourly_served(city.config, city.grid, t0, t1, [], shower, stream="h")}
    rain_hours = [k for k in dry if t0 + 4 * 3600 <= k[1] < t0 + 7 * 3600]
    assert sum(wet[k] for k in rain_hours) < 0.93 * sum(dry[k] for k in rain_hours)
    match = CityHistory(city, 7).events[0]
    lo = match.start - match.start % 3600 - 6 * 3600
    hi = lo + 12 * 3600
    around = {(i, h): n for i, h, n in hourly_served(city.config, city.grid, lo, hi, [match], [], stream="h")}
    calm = {(i, h): n for i, h, n in hourly_served(city.config, city.grid, lo, hi, [], [], stream="h")}
    venue = match.near[0]
    peak = max((k for k in around if k[0] == venue), key=lambda k: around[k] - calm[k])
    assert around[peak] > 1.1 * calm[peak]
