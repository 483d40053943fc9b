"""The fleet: every vehicle's adherence, every line's headways, punctuality and predictions.

:class:`BusMonitor` is what the bus agent and the benchmark drive with positions; it holds no
clock of its own (``now`` is an argument) and raises on nothing a feed can send: bad positions
come back as a counted rejection.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Literal

from .adherence import Limits, Passage, Position, Rejection, VehicleState, observe
from .headways import AlarmChange, Headway, HeadwayBook, HeadwayRules
from .predict import Pace, PaceRules, predict_arrivals
from .schedule import Timetable

PunctualityClass = Literal["early", "on_time", "late"]


@dataclass(frozen=True)
class MonitorRules:
    limits: Limits = field(default_factory=Limits)
    headways: HeadwayRules = field(default_factory=HeadwayRules)
    pace: PaceRules = field(default_factory=PaceRules)
    #: a passage between these delays (s) is on time: the German -1..+3 min convention
    on_time: tuple[float, float] = (-60.0, 180.0)

    def __post_init__(self) -> None:
        if not self.on_time[0] <= 0.0 <= self.on_time[1]:
            raise ValueError("the on-time window must contain 0 (early bound <= 0 <= late bound)")


@dataclass
class Punctuality:
    """Passages of a line counted early, on time and late."""

    early: int = 0
    on_time: int = 0
    late: int = 0

    @property
    def total(self) -> int:
        return self.early + self.on_time + self.late

    @property
    def share(self) -> float | None:
        return self.on_time / self.total if self.total else None


@dataclass(frozen=True)
class Prediction:
    stop_id: str
    index: int
    eta: float
    scheduled: float


@dataclass(frozen=True)
class Observed:
    """What one position changed."""

    rejected: Rejection | None = None
    delay_s: float | None = None
    passages: tuple[Passage, ...] = ()
    headways: tuple[Headway, ...] = ()
    alarms: tuple[AlarmChange, ...] = ()
    predictions: tuple[Prediction, ...] = ()
    direction_id: int | None = None


@dataclass
class BusMonitor:
    timetable: Timetable
    rules: MonitorRules = field(default_factory=MonitorRules)
    vehicles: dict[str, VehicleState] = field(default_factory=dict)
    rejected: Counter[str] = field(default_factory=Counter)
    punctuality: dict[str, Punctuality] = field(default_factory=dict)
    headways: HeadwayBook = field(init=False)
    pace: Pace = field(init=False)

    def __post_init__(self) -> None:
        self.headways = HeadwayBook(self.rules.headways)
        self.pace = Pace(self.rules.pace)

    def observe(self, pos: Position, now: float, *, predict: bool = True) -> Observed:
        """Apply one position; a rejection is counted here and changes nothing else."""
        state, update = observe(self.vehicles.get(pos.vehicle_id), pos, self.timetable, now, self.rules.limits)
        if update.rejected is not None:
            self.rejected[update.rejected] += 1
            return Observed(rejected=update.rejected)
        assert state is not None
        self.vehicles[pos.vehicle_id] = state
        trip = self.timetable.trips[pos.trip_id]
        heads: list[Headway] = []
        alarms: list[AlarmChange] = []
        for p in update.passages:
            self._count(p)
            self.pace.add(p)
            h, changes = self.headways.add(p)
            heads += [h] if h is not None else []
            alarms += changes
        preds: tuple[Prediction, ...] = ()
        if predict and update.delay_s is not None:
            ratio = self.pace.ratio(trip.route_id, trip.direction_id, pos.vehicle_id, trip.trip_id)
            preds = tuple(
                Prediction(trip.stops[j].stop_id, j, eta, update.schedule[j])
                for j, eta in predict_arrivals(pos.t, update.delay_s, update.schedule, update.reached, ratio)
            )
        return Observed(None, update.delay_s, update.passages, tuple(heads), tuple(alarms), preds, trip.direction_id)

    def expire(self, now: float) -> list[AlarmChange]:
        """End episodes whose buses went quiet; forget vehicles not seen for a day; once after
        the start, clear the alarms of lines with no episode open (``HeadwayBook.reconcile``)."""
        for vehicle, state in list(self.vehicles.items()):
            if now - state.t > 86_400.0:
                del self.vehicles[vehicle]
        changes = self.headways.expire(now)
        if self.headways.reconcile_due(now):  # the timetable's lines are gathered once, not every batch
            changes += self.headways.reconcile(now, {trip.route_id for trip in self.timetable.trips.values()})
        return changes

    def _count(self, p: Passage) -> None:
        book = self.punctuality.setdefault(p.route_id, Punctuality())
        match punctuality_of(p.delay_s, self.rules.on_time):
            case "early":
                book.early += 1
            case "late":
                book.late += 1
            case "on_time":
                book.on_time += 1


def punctuality_of(delay_s: float, on_time: tuple[float, float]) -> PunctualityClass:
    """Early, on time or late against the window ``on_time`` (s, both ends on time)."""
    low, high = on_time
    return "early" if delay_s < low else "late" if delay_s > high else "on_time"
