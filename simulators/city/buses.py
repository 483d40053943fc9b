"""Bus lines with a timetable, stochastic delays and bunching that emerges from them.

Each line runs both ways between two terminals; trips leave on a headway that follows the
time of day (10 min in the weekday daytime, 15-30 min evenings and weekends). Between stops a
bus takes the scheduled time stretched by traffic (the city's demand profile, rain) and a
random factor; at a stop it boards the passengers who arrived since the previous bus left.
That is the classic bunching loop: a late bus finds more people waiting, dwells longer and
falls further behind, while its follower finds the stop nearly empty and catches up. Nobody
injects bunching; it is read off the simulated arrivals afterwards and recorded as truth.

Vehicles are real blocks: a bus turns at the terminal after a minimum layover, so a late
arrival makes the next trip start late; if no bus is back within 3 minutes of the departure the depot
sends a reserve bus. Positions are GTFS-Realtime-like: the stop it is at or heading to, the delay
against the timetable, and an occupancy status from the passenger load.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

from streams.records import BusPosition, OccupancyStatus, VehicleStopStatus, encode

from .calendar import RainPeriod, day_kind, demand_profile, rain_at
from .types import CityConfig, Emission, GroundTruth, poisson, rng_for

CENTRE = (48.137, 11.575)
SCHEDULED_SPEED_KMH = 20.0  # between stops, signals included
LAYOVER_S = 240.0
LATE_START_S = 180.0  # later than this, the depot sends a reserve bus instead
CAPACITY = 90  # 40 seats, 50 standing
BUNCHED = 0.3  # a headway below this share of the scheduled one is bunching


@dataclass(frozen=True)
class Line:
    route_id: str
    stops: tuple[tuple[float, float], ...]  # (lat, lon), direction 0 order
    boardings_per_min: tuple[float, ...]  # at each stop at demand factor 1


def build_lines(config: CityConfig) -> list[Line]:
    """Straight-ish cross-town lines through the centre at different angles, 14-18 stops."""
    rng = rng_for(config, "bus-lines")
    lines = []
    for n in range(config.bus_lines):
        angle = math.pi * n / max(1, config.bus_lines)  # L1 west-east, L2 north-south, ...
        count = rng.randint(14, 18)
        half = (count - 1) * 0.0045 / 2  # ~450-500 m between stops
        stops = []
        for k in range(count):
            s = -half + k * 0.0045
            wiggle = rng.gauss(0, 0.0006)
            lat = CENTRE[0] + s * math.sin(angle) * 0.67 + wiggle * math.cos(angle)
            lon = CENTRE[1] + s * math.cos(angle) + wiggle * math.sin(angle)
            stops.append((round(lat, 6), round(lon, 6)))
        centre = (count - 1) / 2
        rates = tuple(round(rng.uniform(0.5, 1.1) * (1.8 - abs(k - centre) / centre), 3) for k in range(count))
        lines.append(Line(f"L{n + 1}", tuple(stops), rates))
    return lines


def _distance_m(a: tuple[float, float], b: tuple[float, float]) -> float:
    dy = (b[0] - a[0]) * 111_320.0
    dx = (b[1] - a[1]) * 111_320.0 * math.cos(math.radians(a[0]))
    return math.hypot(dx, dy)


def _bearing(a: tuple[float, float], b: tuple[float, float]) -> float:
    dy = b[0] - a[0]
    dx = (b[1] - a[1]) * math.cos(math.radians(a[0]))
    return round(math.degrees(math.atan2(dx, dy)) % 360.0, 1) % 360.0


def headway_s(t: float, config: CityConfig) -> float | None:
    """Timetable headway for a departure at ``t``; None outside service hours (00:30-05:00)."""
    local = datetime.fromtimestamp(t, ZoneInfo(config.timezone))
    h = local.hour + local.minute / 60.0
    if 0.5 <= h < 5.0:
        return None
    if day_kind(local.date(), config) == "weekday":
        return 600.0 if 6.0 <= h < 20.0 else 1200.0
    return 900.0 if 8.0 <= h < 20.0 else 1800.0


@dataclass
class Trip:
    trip_id: str
    route_id: str
    direction: int
    vehicle_id: str
    stops: tuple[tuple[float, float], ...]  # in travel order
    scheduled: list[float]  # scheduled arrival per stop
    arrive: list[float] = field(default_factory=list)
    depart: list[float] = field(default_factory=list)
    load: list[int] = field(default_factory=list)  # on board when leaving each stop


def _timetable(config: CityConfig, line: Line, start: float, end: float) -> list[tuple[float, int]]:
    """(scheduled departure, direction) from each terminal, both directions, sorted."""
    out = []
    for direction in (0, 1):
        t = start - start % 300 + direction * 120  # the two terminals are offset by 2 min
        while t < end:
            h = headway_s(t, config)
            if h is None:
                t += 300
                continue
            out.append((t, direction))
            t += h
    return sorted(out)


def _scheduled_times(config: CityConfig, dep: float, segs: list[float], rates: list[float]) -> list[float]:
    """Arrival times as the timetable plans them, with running and dwell times per time band.

    Planners know the peak is slow: they use the expected traffic and the expected boarding at
    the planned headway, so a bus is late only by chance, not by construction.
    """
    out = [dep]
    head = headway_s(dep, config) or 1200.0
    for k, s in enumerate(segs):
        factor = demand_profile(datetime.fromtimestamp(out[-1], timezone.utc), config)
        dwell = 6.0 + 2.2 * rates[k] / 60.0 * factor * head * 1.3
        out.append(out[-1] + dwell + s * (1.0 + 0.35 * factor) * 1.03)
    return out


def simulate_line(config: CityConfig, line: Line, t0: float, t1: float, rain: list[RainPeriod]) -> list[Trip]:
    """All trips that run during the run (and the ones before it that shape its delays)."""
    rng = rng_for(config, "bus", line.route_id)
    tz = ZoneInfo(config.timezone)
    seg_m = [_distance_m(a, b) for a, b in zip(line.stops, line.stops[1:])]
    seg_s = [m / (SCHEDULED_SPEED_KMH / 3.6) for m in seg_m]
    ready: dict[int, list[tuple[float, str]]] = {0: [], 1: []}  # terminal -> buses waiting there
    fleet = 0
    last: dict[int, Trip] = {}
    trips = []
    for sched_dep, direction in _timetable(config, line, t0 - 3 * 3600, t1):
        order = range(len(line.stops)) if direction == 0 else range(len(line.stops) - 1, -1, -1)
        stops = tuple(line.stops[k] for k in order)
        rates = [line.boardings_per_min[k] for k in order]
        segs = seg_s if direction == 0 else seg_s[::-1]
        scheduled = _scheduled_times(config, sched_dep, segs, rates)
        waiting = sorted(ready[direction])
        if waiting and waiting[0][0] <= sched_dep + LATE_START_S:
            ready_at, vehicle = waiting[0]
            ready[direction].remove(waiting[0])
        else:
            fleet += 1
            ready_at, vehicle = sched_dep, f"{line.route_id}-bus-{fleet:02d}"
        local = datetime.fromtimestamp(sched_dep, tz)
        trip = Trip(f"{line.route_id}-{direction}-{local:%Y%m%d-%H%M}", line.route_id, direction, vehicle, stops, scheduled)
        prev = last.get(direction)
        load = 0
        t = max(sched_dep, ready_at) + abs(rng.gauss(0, 20))
        for k in range(len(stops)):
            if k > 0:
                when = datetime.fromtimestamp(t, timezone.utc)
                traffic = 1.0 + 0.35 * demand_profile(when, config) + (0.1 if rain_at(t, rain) else 0.0)
                t += segs[k - 1] * traffic * math.exp(rng.gauss(0, 0.15))
                if rng.random() < 0.4:
                    t += rng.uniform(0, 25)  # caught by a red light
                if prev is not None and k < len(prev.arrive):
                    t = max(t, prev.arrive[k] + 10)  # one bus stop bay: the follower waits behind
            arrive = t
            if k == len(stops) - 1:
                alight, board = load, 0
            else:
                gap = arrive - prev.depart[k] if prev is not None and k < len(prev.depart) else 600.0
                demand = rates[k] / 60.0 * demand_profile(datetime.fromtimestamp(arrive, timezone.utc), config)
                board = poisson(rng, demand * max(0.0, gap))
                alight = sum(rng.random() < 0.12 for _ in range(load)) if k > 0 else 0
                board = min(board, CAPACITY - (load - alight))
            dwell = 0.0 if board + alight == 0 else min(180.0, 6.0 + 2.2 * board + 1.2 * alight)
            if k < len(stops) - 1 and rng.random() < 0.015:
                dwell += rng.uniform(60, 150)  # a wheelchair ramp, a ticket dispute, a driver change
            load = load - alight + board
            trip.arrive.append(arrive)
            trip.depart.append(arrive + dwell)
            trip.load.append(load)
            t = arrive + dwell
        ready[1 - direction].append((trip.arrive[-1] + LAYOVER_S, vehicle))
        last[direction] = trip
        trips.append(trip)
    return [tr for tr in trips if tr.arrive[-1] >= t0 and tr.arrive[0] < t1]


def _occupancy(load: int) -> OccupancyStatus:
    if load == 0:
        return "EMPTY"
    if load < 20:
        return "MANY_SEATS_AVAILABLE"
    if load < 40:
        return "FEW_SEATS_AVAILABLE"
    if load < 80:
        return "STANDING_ROOM_ONLY"
    return "CRUSHED_STANDING_ROOM_ONLY" if load < CAPACITY else "FULL"


def bus_emissions(config: CityConfig, trips: list[Trip], t0: float, t1: float) -> Iterator[Emission]:
    """A position per bus on a trip every ``bus_interval_s``, aligned to the run's start."""
    dt = config.bus_interval_s
    items: list[tuple[float, str, BusPosition]] = []
    for trip in trips:
        first = max(t0, trip.arrive[0])
        tick = t0 + math.ceil((first - t0) / dt - 1e-9) * dt
        k = 0
        while tick <= trip.arrive[-1] and tick < t1:
            while k + 1 < len(trip.arrive) and trip.arrive[k + 1] <= tick:
                k += 1
            items.append((tick, trip.vehicle_id, _position(trip, k, tick)))
            tick += dt
    items.sort(key=lambda x: (x[0], x[1]))
    for t, vehicle, record in items:
        yield Emission(t, "sensors.bus", vehicle, encode(record))


def _position(trip: Trip, k: int, t: float) -> BusPosition:
    """At stop ``k`` (dwelling) or between stop ``k`` and ``k + 1``."""
    n = len(trip.stops)
    status: VehicleStopStatus
    if t < trip.depart[k] or k == n - 1:
        lat, lon = trip.stops[k]
        status, seq, speed = "STOPPED_AT", k + 1, 0.0
        delay = trip.arrive[k] - trip.scheduled[k]
        bearing = _bearing(trip.stops[max(0, k - 1)], trip.stops[k]) if k else _bearing(trip.stops[0], trip.stops[1])
    else:
        a, b = trip.stops[k], trip.stops[k + 1]
        travel = max(1.0, trip.arrive[k + 1] - trip.depart[k])
        f = min(1.0, (t - trip.depart[k]) / travel)
        lat, lon = a[0] + f * (b[0] - a[0]), a[1] + f * (b[1] - a[1])
        status = "INCOMING_AT" if trip.arrive[k + 1] - t <= 20 else "IN_TRANSIT_TO"
        seq, speed = k + 2, min(60.0, _distance_m(a, b) / travel)
        # behind the timetable by how long ago it planned the bus at this point of the road
        delay = t - (trip.scheduled[k] + f * (trip.scheduled[k + 1] - trip.scheduled[k]))
        bearing = _bearing(a, b)
    stop_k = seq - 1
    original = stop_k if trip.direction == 0 else n - 1 - stop_k
    return BusPosition(
        schema_version=1,
        event_time=datetime.fromtimestamp(t, timezone.utc),
        vehicle_id=trip.vehicle_id,
        trip_id=trip.trip_id,
        route_id=trip.route_id,
        latitude=round(lat, 6),
        longitude=round(lon, 6),
        current_stop_sequence=seq,
        delay_s=round(max(-3600.0, delay), 1),
        stop_id=f"{trip.route_id}-S{original + 1:02d}",
        current_status=status,
        bearing_deg=bearing,
        speed_mps=round(speed, 1),
        occupancy_status=_occupancy(trip.load[k]),
    )


def bunching_truth(trips: list[Trip], t0: float, t1: float) -> list[GroundTruth]:
    """Episodes of two buses of a line arriving together at two or more stops in a row."""
    out = []
    by_dir: dict[tuple[str, int], list[Trip]] = {}
    for trip in sorted(trips, key=lambda tr: tr.scheduled[0]):
        by_dir.setdefault((trip.route_id, trip.direction), []).append(trip)
    for (route, direction), run in sorted(by_dir.items()):
        for prev, cur in zip(run, run[1:]):
            planned = cur.scheduled[0] - prev.scheduled[0]
            bunched = [cur.arrive[k] - prev.arrive[k] < BUNCHED * planned for k in range(len(cur.arrive))]
            k = 0
            while k < len(bunched):
                if not bunched[k]:
                    k += 1
                    continue
                j = k
                while j + 1 < len(bunched) and bunched[j + 1]:
                    j += 1
                start, end = cur.arrive[k], cur.arrive[j]
                if j > k and start < t1 and end >= t0:
                    out.append(
                        GroundTruth(
                            "bus_bunching",
                            route,
                            start,
                            end,
                            None,
                            None,
                            {
                                "direction": direction,
                                "trips": [prev.trip_id, cur.trip_id],
                                "vehicles": [prev.vehicle_id, cur.vehicle_id],
                                "stops": j - k + 1,
                                "first_stop_sequence": k + 1,
                                "min_headway_s": round(min(cur.arrive[i] - prev.arrive[i] for i in range(k, j + 1)), 1),
                                "scheduled_headway_s": round(planned, 1),
                            },
                        )
                    )
                k = j + 1
    return out
