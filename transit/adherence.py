"""One vehicle's positions -> the stops it passed, when, and how late it is.

GTFS-Realtime says where a bus is by the stop it is at (``STOPPED_AT``) or heading to
(``INCOMING_AT``/``IN_TRANSIT_TO``). A stop counts as passed once a position shows the bus at
it or beyond it; positions come every 10-30 s, so the passage time is estimated between the last
position before and the first one after (the middle of that interval, stops passed together
spread evenly over it). Between stops, the delay is the time since the timetable planned the bus
at this point of the road (the position projected on the segment between the two stops).

Bad input never raises and never produces a passage: a position older than the vehicle's last
one (``out_of_order``), the same moment again (``duplicate``), a trip or stop the timetable does
not know or that does not run then (``unknown_trip``), a jump no bus can make (``teleport``) or
a position older than ``stale_s`` when it arrives (``stale``) is returned as a rejection that the
caller counts, and the vehicle's state stays as it was.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from .schedule import ScheduledTrip, Timetable

Rejection = Literal["duplicate", "out_of_order", "unknown_trip", "teleport", "stale"]
REJECTIONS: tuple[Rejection, ...] = ("duplicate", "out_of_order", "unknown_trip", "teleport", "stale")


@dataclass(frozen=True)
class Limits:
    """What counts as bad input."""

    #: faster than this between two positions is a teleport (144 km/h: no city bus)
    max_speed_mps: float = 40.0
    #: jumps shorter than this are GPS noise, whatever the speed they imply
    min_jump_m: float = 500.0
    #: a position older than this when it arrives is stale
    stale_s: float = 300.0


@dataclass(frozen=True)
class Position:
    """A vehicle position as the core needs it (``streams`` builds it from ``BusPosition``)."""

    vehicle_id: str
    trip_id: str
    route_id: str
    t: float
    stop_sequence: int
    status: str | None
    lat: float
    lon: float
    occupancy: str | None = None


@dataclass(frozen=True)
class Passage:
    """A bus at a stop: when it arrived (estimated) and when the timetable planned it."""

    route_id: str
    direction_id: int
    trip_id: str
    vehicle_id: str
    stop_id: str
    index: int
    t: float
    scheduled: float

    @property
    def delay_s(self) -> float:
        return self.t - self.scheduled


@dataclass(frozen=True)
class VehicleState:
    """What the core remembers of one vehicle between its positions."""

    trip_id: str
    t: float
    lat: float
    lon: float
    reached: int  # index of the last stop passed on this trip; -1 before the first
    delay_s: float | None


@dataclass(frozen=True)
class Update:
    """The outcome of one position: a rejection, or the passages and the delay now."""

    rejected: Rejection | None = None
    passages: tuple[Passage, ...] = ()
    delay_s: float | None = None
    schedule: tuple[float, ...] = ()
    reached: int = -1


def distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Equirectangular distance: exact enough within a city, and cheap."""
    dy = (lat2 - lat1) * 111_320.0
    dx = (lon2 - lon1) * 111_320.0 * math.cos(math.radians((lat1 + lat2) / 2))
    return math.hypot(dx, dy)


def observe(
    state: VehicleState | None, pos: Position, timetable: Timetable, now: float, limits: Limits = Limits()
) -> tuple[VehicleState | None, Update]:
    """Apply one position to a vehicle's state: the new state and what it showed."""
    if now - pos.t > limits.stale_s:
        return state, Update(rejected="stale")
    if state is not None:
        if pos.t == state.t:
            return state, Update(rejected="duplicate")
        if pos.t < state.t:
            return state, Update(rejected="out_of_order")
        jump = distance_m(state.lat, state.lon, pos.lat, pos.lon)
        if jump > limits.min_jump_m and jump / (pos.t - state.t) > limits.max_speed_mps:
            return state, Update(rejected="teleport")
    trip = timetable.trips.get(pos.trip_id)
    sched = timetable.times(pos.trip_id, pos.t) if trip is not None else None
    index = trip.index_of(pos.stop_sequence) if trip is not None else None
    if trip is None or sched is None or index is None or trip.route_id != pos.route_id:
        return state, Update(rejected="unknown_trip")
    reached = index if pos.status == "STOPPED_AT" else index - 1
    passages: tuple[Passage, ...] = ()
    if state is not None and state.trip_id == pos.trip_id:
        if reached < state.reached:  # a bus does not drive backwards along its trip
            return state, Update(rejected="out_of_order")
        passages = _passed(trip, sched, pos, state.t, state.reached, reached)
    elif pos.status == "STOPPED_AT":  # first sight of this trip, at a stop
        passages = (_passage(trip, sched, pos, index, pos.t),)
    delay = _delay(trip, sched, pos, index, passages, state)
    new = VehicleState(pos.trip_id, pos.t, pos.lat, pos.lon, reached, delay)
    return new, Update(passages=passages, delay_s=delay, schedule=sched, reached=reached)


def _passage(trip: ScheduledTrip, sched: tuple[float, ...], pos: Position, k: int, t: float) -> Passage:
    return Passage(trip.route_id, trip.direction_id, trip.trip_id, pos.vehicle_id, trip.stops[k].stop_id, k, t, sched[k])


def _passed(trip: ScheduledTrip, sched: tuple[float, ...], pos: Position, t_before: float, before: int, now: int) -> tuple[Passage, ...]:
    """Stops ``before+1 .. now`` passed between two positions, spread evenly over the interval."""
    n = now - before
    if n <= 0:
        return ()
    dt = pos.t - t_before
    return tuple(_passage(trip, sched, pos, k, t_before + dt * (k - before - 0.5) / n) for k in range(before + 1, now + 1))


def _delay(
    trip: ScheduledTrip,
    sched: tuple[float, ...],
    pos: Position,
    index: int,
    passages: tuple[Passage, ...],
    state: VehicleState | None,
) -> float:
    """How late the bus is now: at a stop, since it was due there; between stops, since the
    timetable planned it at this point of the segment (by distance, when stops have places)."""
    last = passages[-1].delay_s if passages else (state.delay_s if state is not None and state.trip_id == pos.trip_id else None)
    if pos.status == "STOPPED_AT" or index == 0:
        late = pos.t - sched[index]
        return late if last is None else max(late, last)
    a, b = trip.stops[index - 1], trip.stops[index]
    if a.lat is not None and a.lon is not None and b.lat is not None and b.lon is not None:
        whole = distance_m(a.lat, a.lon, b.lat, b.lon)
        gone = distance_m(a.lat, a.lon, pos.lat, pos.lon)
        f = min(1.0, gone / whole) if whole > 1.0 else 1.0
        return pos.t - (sched[index - 1] + f * (sched[index] - sched[index - 1]))
    late = pos.t - sched[index]
    return late if last is None else max(late, last)
