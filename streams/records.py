"""Versioned record types for every input topic, with their physical validation.

Records are ``msgspec`` structs: one C-speed pass parses JSON, checks types, and checks the
declared ranges (``Meta(ge=..., le=...)``). What ranges cannot say (units, cross-field rules)
lives in ``__post_init__``, whose ``ValueError`` msgspec reports like any other validation
error. Units are part of the field name where a field has one fixed unit (``speed_kmh``) and
explicit (``Quantity.unit``) where field devices differ, as water sensors do.

Every record carries ``schema_version`` (``Literal[1]``: a version this code does not know is a
decode failure, never a guess) and ``event_time`` (timezone-aware ISO 8601). No record holds
personal data: vehicles are counts, swimmers are events.

Identifiers (intersections, detectors, pools, vehicles, trips, routes, stops, venues, events,
sessions, alarm kinds) are ``EntityId``: 1 to 64 characters from ``A-Z a-z 0-9 . _ : / @ + # ~ -``,
the first one a letter, a digit or ``_``. That covers everything the simulators, SUMO networks
(``gneJ5``, ``cluster_1_2``, detector ids such as ``in:-30503246#1_0``) and GTFS feeds produce,
and keeps NUL, control, whitespace and bidirectional-override characters (U+202E) out of keys,
aggregates and alarm ids, where they would corrupt logs and mislead operators. Alarm and plan
ids (``kind@subject~digest``) are ``RefId``: the same characters, up to 160.
"""

from __future__ import annotations

import functools
from datetime import date, datetime
from typing import Annotated, Any, ClassVar, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec
import orjson
from msgspec import Meta, Struct

AwareDatetime = Annotated[datetime, Meta(tz=True)]
#: the character set of every identifier (see the module docstring); ``\Z``, not ``$``, which
#: would also accept a trailing newline
ENTITY_ID_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9._:/@+#~-]{0,63}\Z"
REF_ID_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9._:/@+#~-]{0,159}\Z"
EntityId = Annotated[str, Meta(min_length=1, max_length=64, pattern=ENTITY_ID_PATTERN)]
#: free text people read (a camera zone, an alarm message, a note): no control characters but tab
#: and line breaks, no direction overrides or marks (a camera zone "\u202eevil" reached a critical
#: alarm's text on the console reversed; stop 54's probe)
TEXT_PATTERN = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029]*\Z"
RefId = Annotated[str, Meta(min_length=1, max_length=160, pattern=REF_ID_PATTERN)]
Fraction = Annotated[float, Meta(ge=0.0, le=1.0)]

SCHEMA_VERSION = 1


#: nesting a free-form JSON field (``evidence``, ``model``) may have: the alarm books and the
#: Faust tables serialise it inside their own structures with orjson, which stops at 255 levels
JSON_MAX_DEPTH = 32
_INT64 = (-(2**63), 2**63 - 1)


def check_json_safe(value: Any, field: str, depth: int = 0) -> None:
    """``ValueError`` unless ``value`` can be stored and re-serialised anywhere downstream.

    msgspec decodes any integer into ``Any`` (``2**100`` too) and nests as deep as the input
    does; orjson, which writes the alert records and every Faust table changelog, refuses
    integers beyond 64 bits and nesting beyond 255 levels. Such a value decoded fine and then
    made the agent raise on every retry: a poison pill that stopped the worker for good.
    """
    if depth > JSON_MAX_DEPTH:
        raise ValueError(f"{field} is nested deeper than {JSON_MAX_DEPTH} levels")
    if isinstance(value, bool) or value is None or isinstance(value, (str, float)):
        return
    if isinstance(value, int):
        if not _INT64[0] <= value <= _INT64[1]:
            raise ValueError(f"{field} holds an integer outside the 64-bit range")
        return
    if isinstance(value, dict):
        for v in value.values():
            check_json_safe(v, field, depth + 1)
        return
    if isinstance(value, list):
        for v in value:
            check_json_safe(v, field, depth + 1)
        return
    raise ValueError(f"{field} holds a {type(value).__name__}")


class Record(Struct, kw_only=True, frozen=True):
    """Base of every input record: what every topic has in common."""

    schema_version: Literal[1]
    event_time: AwareDatetime

    #: name of the field that must equal the Kafka message key (None: not keyed by a field)
    key_field: ClassVar[str | None] = None
    #: whether the decoder also refuses a key twice in one JSON object (``IntersectionConfig``:
    #: its model is safety configuration, and the last value silently won)
    unique_keys: ClassVar[bool] = False

    def key(self) -> str | None:
        return getattr(self, self.key_field) if self.key_field else None


# --- intersections ------------------------------------------------------------------------


class DetectorReading(Struct, kw_only=True, frozen=True):
    """One detector (usually one lane's loop or a camera zone) over the frame's interval."""

    detector_id: EntityId
    count: Annotated[int, Meta(ge=0, le=10_000)]
    occupancy: Fraction
    speed_kmh: Annotated[float, Meta(ge=0.0, le=300.0)] | None = None
    queue_veh: Annotated[float, Meta(ge=0.0, le=1_000.0)] | None = None
    #: vehicles inside a lane-area detector (queued and approaching); None for point detectors
    vehicles: Annotated[float, Meta(ge=0.0, le=1_000.0)] | None = None
    approach: Annotated[str, Meta(max_length=32, pattern=TEXT_PATTERN)] | None = None
    lane: Annotated[int, Meta(ge=0, le=32)] | None = None


class IntersectionFrame(Record, frozen=True):
    """All detectors of one intersection for one interval starting at ``event_time``.

    One message per intersection and interval (not per detector) keeps the message rate a
    city produces manageable and hands agents whole frames for vectorised maths.
    """

    key_field: ClassVar[str | None] = "intersection_id"

    intersection_id: EntityId
    interval_s: Annotated[float, Meta(gt=0.0, le=900.0)]
    detectors: Annotated[list[DetectorReading], Meta(min_length=1, max_length=256)]

    def __post_init__(self) -> None:
        ids = [d.detector_id for d in self.detectors]
        if len(set(ids)) != len(ids):
            raise ValueError("detector_id values must be unique within a frame")
        for d in self.detectors:
            # more vehicles than can physically pass even a multi-lane zone (3 per second)
            if d.count > self.interval_s * 3 + 5:
                raise ValueError(f"count {d.count} of detector {d.detector_id!r} is impossible in {self.interval_s:g} s")


class StageShown(Record, frozen=True):
    """``signals.state``: the stage an intersection's controller shows now, and since when.

    ``stage_started_exact`` says that ``stage_started_at`` is the controller's own time of the
    change, on the same clock as ``event_time``, not when a poller first saw the stage: only then
    can the desk learn how far the cabinet's clock is off (``signals.following``); a poller's
    first sighting lags each change by up to its interval and would look like a clock ahead.

    (Not ``signals.timeline.SignalState``, the colour a signal group shows at one moment.)"""

    key_field: ClassVar[str | None] = "intersection_id"

    intersection_id: EntityId
    stage: Annotated[str, Meta(min_length=1, max_length=32)]
    stage_started_at: AwareDatetime
    program_id: EntityId | None = None
    stage_started_exact: bool = False

    def __post_init__(self) -> None:
        if (self.stage_started_at - self.event_time).total_seconds() > 1.0:
            raise ValueError("stage_started_at lies after event_time")


# --- buses --------------------------------------------------------------------------------

OccupancyStatus = Literal[
    "EMPTY",
    "MANY_SEATS_AVAILABLE",
    "FEW_SEATS_AVAILABLE",
    "STANDING_ROOM_ONLY",
    "CRUSHED_STANDING_ROOM_ONLY",
    "FULL",
    "NOT_ACCEPTING_PASSENGERS",
]
VehicleStopStatus = Literal["INCOMING_AT", "STOPPED_AT", "IN_TRANSIT_TO"]


class BusPosition(Record, frozen=True):
    """A GTFS-Realtime ``VehiclePosition`` with the trip's delay, flattened for JSON."""

    key_field: ClassVar[str | None] = "vehicle_id"

    vehicle_id: EntityId
    trip_id: EntityId
    route_id: EntityId
    latitude: Annotated[float, Meta(ge=-90.0, le=90.0)]
    longitude: Annotated[float, Meta(ge=-180.0, le=180.0)]
    current_stop_sequence: Annotated[int, Meta(ge=0, le=10_000)]
    #: the feed's own delay claim (None: a VehiclePosition carries none); the bus agent computes
    #: the delay from the timetable itself
    delay_s: Annotated[float, Meta(ge=-3_600.0, le=86_400.0)] | None = None
    stop_id: EntityId | None = None
    current_status: VehicleStopStatus | None = None
    bearing_deg: Annotated[float, Meta(ge=0.0, lt=360.0)] | None = None
    speed_mps: Annotated[float, Meta(ge=0.0, le=60.0)] | None = None
    occupancy_status: OccupancyStatus | None = None


class ScheduledStopTime(Struct, kw_only=True, frozen=True):
    """One GTFS stop time: ``arrival_s`` after the service day's origin (noon minus 12 h)."""

    stop_id: EntityId
    sequence: Annotated[int, Meta(ge=0, le=100_000)]
    arrival_s: Annotated[int, Meta(ge=0, le=7 * 86_400)]
    lat: Annotated[float, Meta(ge=-90.0, le=90.0)] | None = None
    lon: Annotated[float, Meta(ge=-180.0, le=180.0)] | None = None


@functools.lru_cache(maxsize=256)
def known_time_zone(name: str) -> bool:
    """Whether ``ZoneInfo`` takes ``name`` (``Europe/Berlin/`` and ``Europe/Berln`` it does not)."""
    try:
        ZoneInfo(name)
    except (ValueError, ZoneInfoNotFoundError):
        return False
    return True


class TripSchedule(Record, frozen=True):
    """``transit.schedule`` (compacted, keyed by trip): one GTFS trip with its stop times and
    the service dates it runs on, as ``leitstand gtfs load`` read them from a static feed."""

    key_field: ClassVar[str | None] = "trip_id"

    trip_id: EntityId
    route_id: EntityId
    service_dates: Annotated[list[date], Meta(max_length=1_000)]
    stops: Annotated[list[ScheduledStopTime], Meta(min_length=2, max_length=1_000)]
    direction_id: Literal[0, 1] = 0
    timezone: Annotated[str, Meta(min_length=1, max_length=64)] = "UTC"
    feed_id: Annotated[str, Meta(max_length=64, pattern=TEXT_PATTERN)] = ""

    def __post_init__(self) -> None:
        if not known_time_zone(self.timezone):
            # a zone ZoneInfo refuses crashed the bus agent's timetable task, and the worker with it
            raise ValueError(f"unknown time zone {self.timezone!r} (an IANA name such as Europe/Berlin)")
        seqs = [s.sequence for s in self.stops]
        if any(b <= a for a, b in zip(seqs, seqs[1:])):
            raise ValueError("stop sequences must increase")
        if any(b.arrival_s < a.arrival_s for a, b in zip(self.stops, self.stops[1:])):
            raise ValueError("arrival times must not go backwards")


class PriorityRequest(Record, frozen=True):
    """``signals.priority`` (keyed by intersection): a late bus asks for green on its approach."""

    key_field: ClassVar[str | None] = "intersection_id"

    intersection_id: EntityId
    vehicle_id: EntityId
    trip_id: EntityId
    route_id: EntityId
    delay_s: Annotated[float, Meta(ge=-3_600.0, le=86_400.0)]
    eta_s: Annotated[float, Meta(ge=0.0, le=3_600.0)]
    request_id: RefId
    approach: Annotated[str, Meta(max_length=32, pattern=TEXT_PATTERN)] | None = None


class BusPassage(Record, frozen=True):
    """``transit.passages`` (keyed by route): a bus at a stop, as the bus agent estimated it.

    Written so the history keeps adherence per line and stop (the dashboards' punctuality and
    delay panels); the agent's counters only know the network since the worker started.
    ``event_time`` is the estimated passage time, ``scheduled_at`` the timetable's; ``punctuality``
    is judged with the worker's on-time window (``LEITSTAND_BUS_ON_TIME_*``) so no reader repeats
    that rule; the headway fields are set when a bus of the same line and direction passed the
    stop before it (``headway_kind`` as the bunching rule classed it).
    """

    key_field: ClassVar[str | None] = "route_id"

    route_id: EntityId
    direction_id: Annotated[int, Meta(ge=0, le=1)]
    trip_id: EntityId
    vehicle_id: EntityId
    stop_id: EntityId
    stop_index: Annotated[int, Meta(ge=0, le=10_000)]
    scheduled_at: AwareDatetime
    delay_s: Annotated[float, Meta(ge=-86_400.0, le=86_400.0)]
    punctuality: Literal["early", "on_time", "late"]
    headway_s: Annotated[float, Meta(ge=0.0, le=86_400.0)] | None = None
    scheduled_headway_s: Annotated[float, Meta(gt=0.0, le=86_400.0)] | None = None
    headway_kind: Literal["bunched", "gap", "regular"] | None = None


# --- pools --------------------------------------------------------------------------------


class Quantity(Struct, frozen=True):
    """A measured value with the unit the sensor reported it in."""

    value: float
    unit: Annotated[str, Meta(min_length=1, max_length=16)]


#: per water parameter: accepted units -> factor/offset to the canonical unit, and the
#: physically possible range in the canonical unit (not the legal range: that is detection's)
_UNITS: dict[str, tuple[str, dict[str, tuple[float, float]], float, float]] = {
    "free_chlorine": ("mg/l", {"mg/l": (1.0, 0.0), "mg/L": (1.0, 0.0), "ppm": (1.0, 0.0)}, 0.0, 20.0),
    "combined_chlorine": ("mg/l", {"mg/l": (1.0, 0.0), "mg/L": (1.0, 0.0), "ppm": (1.0, 0.0)}, 0.0, 20.0),
    "ph": ("pH", {"pH": (1.0, 0.0), "1": (1.0, 0.0)}, 0.0, 14.0),
    "redox": ("mV", {"mV": (1.0, 0.0), "V": (1000.0, 0.0)}, -2_000.0, 2_000.0),
    "temperature": ("degC", {"degC": (1.0, 0.0), "°C": (1.0, 0.0), "K": (1.0, -273.15)}, 0.0, 60.0),
    "turbidity": ("FNU", {"FNU": (1.0, 0.0), "NTU": (1.0, 0.0)}, 0.0, 1_000.0),
}


def canonical(parameter: str, quantity: Quantity) -> float:
    """The quantity in the parameter's canonical unit; ``ValueError`` for a wrong unit/range."""
    unit, accepted, low, high = _UNITS[parameter]
    try:
        factor, offset = accepted[quantity.unit]
    except KeyError:
        raise ValueError(f"{parameter}: unit {quantity.unit!r} is not one of {sorted(accepted)}") from None
    value = quantity.value * factor + offset
    if not low <= value <= high:
        raise ValueError(f"{parameter}: {value:g} {unit} outside physical range [{low:g}, {high:g}]")
    return value


class PoolReading(Record, frozen=True):
    """Water quality of one basin (DIN 19643 parameters) and how many people are in."""

    key_field: ClassVar[str | None] = "pool_id"

    pool_id: EntityId
    free_chlorine: Quantity | None = None
    combined_chlorine: Quantity | None = None
    ph: Quantity | None = None
    redox: Quantity | None = None
    temperature: Quantity | None = None
    turbidity: Quantity | None = None
    visitors: Annotated[int, Meta(ge=0, le=100_000)] | None = None

    def __post_init__(self) -> None:
        present = [p for p in _UNITS if getattr(self, p) is not None]
        if not present and self.visitors is None:
            raise ValueError("a pool reading needs at least one measurement or a visitor count")
        for parameter in present:
            canonical(parameter, getattr(self, parameter))

    def values(self) -> dict[str, float]:
        """Present parameters in canonical units (mg/l, pH, mV, degC, FNU)."""
        return {p: canonical(p, getattr(self, p)) for p in _UNITS if getattr(self, p) is not None}


SupervisionKind = Literal[
    "motionless_swimmer",
    "person_in_closed_zone",
    "overcrowding",
    "camera_fault",
    "camera_restored",
]


class PoolSupervisionEvent(Record, frozen=True):
    """An event of the pool's camera system. Events, never images or identities."""

    key_field: ClassVar[str | None] = "pool_id"

    pool_id: EntityId
    event_id: EntityId
    kind: SupervisionKind
    zone: Annotated[str, Meta(max_length=64, pattern=TEXT_PATTERN)] | None = None
    duration_s: Annotated[float, Meta(ge=0.0, le=86_400.0)] | None = None
    confidence: Fraction | None = None
    persons: Annotated[int, Meta(ge=0, le=100_000)] | None = None


# --- schedule -----------------------------------------------------------------------------


class WeatherForecast(Struct, kw_only=True, frozen=True):
    temperature_c: Annotated[float, Meta(ge=-60.0, le=60.0)] | None = None
    precipitation_mm_h: Annotated[float, Meta(ge=0.0, le=500.0)] | None = None
    wind_kmh: Annotated[float, Meta(ge=0.0, le=400.0)] | None = None
    condition: Annotated[str, Meta(max_length=32, pattern=TEXT_PATTERN)] | None = None


ScheduleKind = Literal["concert", "match", "fair", "holiday", "school_holiday", "weather", "roadworks", "other"]


#: the years an announced event may lie in, as ``forecasting.events.EVENT_YEARS`` for calendar
#: imports (the core imports no shell module): a weather event ending in 9999 was accepted and
#: then broke every forecast refit, pandas' nanosecond times ending in 2262
SCHEDULE_YEARS = (1900, 2200)


class ScheduledEvent(Record, frozen=True):
    """Something planned that moves load: an event at a venue, a holiday, a weather forecast."""

    key_field: ClassVar[str | None] = "venue_id"

    venue_id: EntityId
    event_id: EntityId
    kind: ScheduleKind
    starts_at: AwareDatetime
    ends_at: AwareDatetime
    title: Annotated[str, Meta(max_length=200, pattern=TEXT_PATTERN)] | None = None
    expected_attendance: Annotated[int, Meta(ge=0, le=1_000_000)] | None = None
    weather: WeatherForecast | None = None

    def __post_init__(self) -> None:
        if self.ends_at < self.starts_at:
            raise ValueError("ends_at lies before starts_at")
        low, high = SCHEDULE_YEARS
        if not (low <= self.starts_at.year <= high and low <= self.ends_at.year <= high):
            raise ValueError(f"starts_at and ends_at must lie in the years {low}..{high}")


# --- alarm lifecycle ----------------------------------------------------------------------

AlertAction = Literal["acknowledge", "resolve"]


class AlertCommand(Record, frozen=True):
    """A person acknowledges or resolves an alarm (``alerts.acks``, keyed by alert id).

    ``by`` names a role or duty account (``pool-supervisor-1``), not a private person's data
    beyond what the operator chooses to enter.
    """

    key_field: ClassVar[str | None] = "alert_id"

    alert_id: RefId
    action: AlertAction
    by: Annotated[str, Meta(min_length=1, max_length=64)]
    note: Annotated[str, Meta(max_length=500, pattern=TEXT_PATTERN)] | None = None
    #: the name a caller of the shared-token API wrote; ``by`` is then "machine-token" (issue 16)
    claimed_by: Annotated[str, Meta(min_length=1, max_length=64)] | None = None

    def __post_init__(self) -> None:
        from detection.alarms import subject_of

        if subject_of(self.alert_id) is None:
            raise ValueError(f"alert_id {self.alert_id!r} is not a Leitstand alarm id (kind@subject~digest)")


class Silence(Record, frozen=True):
    """A maintenance window on ``alerts.silences`` (keyed by subject id; the latest per subject counts).

    A pool closed for cleaning or an intersection under construction: its alarms are still raised
    and recorded in the books, but not delivered while ``starts_at <= t < ends_at``. Sending the
    same subject with ``ends_at <= starts_at`` lifts the silence early.
    """

    key_field: ClassVar[str | None] = "subject_id"

    silence_id: RefId
    subject_id: EntityId
    starts_at: AwareDatetime
    ends_at: AwareDatetime
    reason: Annotated[str, Meta(min_length=1, max_length=500, pattern=TEXT_PATTERN)]
    #: the authenticated person who set it (console user name or API token owner)
    by: Annotated[str, Meta(min_length=1, max_length=64, pattern=TEXT_PATTERN)]


LifecycleOp = Literal["raise", "clear", "acknowledge", "resolve"]


class LifecycleCommand(Record, frozen=True):
    """Internal (``alerts.lifecycle``, keyed by subject): everything that moves an alarm.

    Detectors, the acknowledgement router and the HTTP API all speak this one language to the
    single writer of the alarm books, so every change is ordered per subject.
    """

    key_field: ClassVar[str | None] = "subject_id"

    op: LifecycleOp
    subject_id: EntityId
    kind: EntityId
    subject_type: Annotated[str, Meta(max_length=32, pattern=TEXT_PATTERN)] = "pool"
    severity: Literal["critical", "major", "minor"] | None = None
    trigger: Annotated[str, Meta(max_length=128, pattern=TEXT_PATTERN)] | None = None
    alert_id: RefId | None = None
    by: Annotated[str, Meta(max_length=64, pattern=TEXT_PATTERN)] | None = None
    message: Annotated[str, Meta(max_length=500, pattern=TEXT_PATTERN)] | None = None
    note: Annotated[str, Meta(max_length=500, pattern=TEXT_PATTERN)] | None = None
    evidence: dict[str, Any] = {}
    #: a person's command, identified: the books apply each one once (the router re-keying them
    #: is at-least-once, and a repeat after a crash acknowledged a re-armed alarm)
    command_id: Annotated[str, Meta(max_length=64, pattern=TEXT_PATTERN)] | None = None

    def __post_init__(self) -> None:
        # anyone who can write the topic can write this: it must not crash the single writer
        check_json_safe(self.evidence, "evidence")
        ids = self.evidence.get("trigger_ids")
        if ids is not None and not (isinstance(ids, list) and all(isinstance(i, str) for i in ids)):
            raise ValueError("evidence.trigger_ids must be a list of strings")


# --- signal control -------------------------------------------------------------------------

SignalMode = Literal["automatic", "advisory", "off"]
SignalAction = Literal["approve", "reject", "set_mode"]


class SignalCommand(Record, frozen=True):
    """An operator's decision on ``signals.approvals`` (keyed by intersection): approve or reject
    a pending plan, or change the intersection's mode. ``actor`` names a duty account."""

    key_field: ClassVar[str | None] = "intersection_id"

    intersection_id: EntityId
    action: SignalAction
    actor: Annotated[str, Meta(min_length=1, max_length=64)]
    plan_id: RefId | None = None
    mode: SignalMode | None = None
    reason: Annotated[str, Meta(max_length=500, pattern=TEXT_PATTERN)] = ""
    #: the name a caller of the shared-token API wrote; ``actor`` is then "machine-token" (issue 16)
    claimed_by: Annotated[str, Meta(min_length=1, max_length=64)] | None = None

    def __post_init__(self) -> None:
        if self.action == "set_mode" and self.mode is None:
            raise ValueError("set_mode needs a mode")
        if self.action in ("approve", "reject") and self.plan_id is None:
            raise ValueError(f"{self.action} needs a plan_id")


class IntersectionConfig(Record, frozen=True):
    """``signals.config`` (keyed by intersection): the intersection model (schema
    ``leitstand.intersection/1``, docs/signals.md), its controller and mode. A new ``session``
    restarts the controller from scratch (a SUMO run, a re-timed junction)."""

    key_field: ClassVar[str | None] = "intersection_id"
    unique_keys: ClassVar[bool] = True

    intersection_id: EntityId
    model: dict[str, Any]
    controller: Annotated[str, Meta(min_length=1, max_length=32)] = "leitstand"
    mode: SignalMode = "automatic"
    session: EntityId = "default"
    approval_timeout_s: Annotated[float, Meta(gt=0.0, le=86_400.0)] = 120.0
    params: dict[str, float] = {}

    def __post_init__(self) -> None:
        check_json_safe(self.model, "model")


#: input topic (catalogue name) -> the record type its values decode into
INPUT_RECORDS: dict[str, type[Record]] = {
    "sensors.intersection": IntersectionFrame,
    "signals.state": StageShown,
    "sensors.bus": BusPosition,
    "sensors.pool": PoolReading,
    "pool.supervision": PoolSupervisionEvent,
    "events.schedule": ScheduledEvent,
    "alerts.acks": AlertCommand,
    "signals.approvals": SignalCommand,
    "signals.config": IntersectionConfig,
}

#: every catalogue topic whose records are keyed by an entity: the inputs and the internal topics
#: a person may still write by hand (``leitstand produce`` keys them by that field by default)
KEYED_RECORDS: dict[str, type[Record]] = {
    **INPUT_RECORDS,
    "alerts.lifecycle": LifecycleCommand,
    "alerts.silences": Silence,
    "signals.priority": PriorityRequest,
    "transit.schedule": TripSchedule,
    "transit.passages": BusPassage,
}


# --- outputs of the foundation ------------------------------------------------------------


class DeadLetter(Struct, kw_only=True, frozen=True):
    """A record that did not decode: enough to find, understand, verify and replay it.

    A dead letter must always fit on the dead-letter topic, however large the bad record was
    (a base64 copy of a 800 KB record alone exceeds the producer's 1 MB request limit, and a
    failed dead letter used to cost the rest of the batch). So it carries at most
    ``DEADLETTER_RAW_BYTES`` (64 KiB) of the value and of the key, and a reason of at most
    ``DEADLETTER_REASON_CHARS`` characters; ``raw_size`` and ``raw_sha256`` describe the whole
    value, and ``raw_truncated`` says whether ``raw_b64`` holds less than all of it (an empty
    ``raw_b64`` with ``raw_truncated`` set: the raw bytes were dropped because even the bounded
    dead letter was refused). The original stays on ``source_topic`` at ``partition``/``offset``
    until retention removes it; fetch it there and compare its SHA-256 with ``raw_sha256``.

    The fields after ``key_b64`` are optional with defaults so dead letters written before they
    existed still decode (``raw_size`` -1 and ``raw_sha256`` "" mean "not recorded").
    """

    schema_version: int = SCHEMA_VERSION
    event_time: datetime
    source_topic: str
    partition: int
    offset: int
    reason_code: str
    reason: str
    raw_b64: str
    key_b64: str | None = None
    #: length in bytes of the whole raw value (0 for a message without a value)
    raw_size: int = -1
    #: hex SHA-256 of the whole raw value, to verify the original found by topic/partition/offset
    raw_sha256: str = ""
    #: True when ``raw_b64`` holds only a prefix of the value (or nothing)
    raw_truncated: bool = False
    #: True when ``key_b64`` holds only a prefix of the key (or nothing)
    key_truncated: bool = False


class DetectorAggregate(Struct, kw_only=True, frozen=True):
    """One detector over one closed tumbling window.

    ``aggregate_id`` is deterministic, so a re-emitted window (at-least-once delivery)
    overwrites rather than duplicates wherever it is stored.
    """

    schema_version: int = SCHEMA_VERSION
    aggregate_id: str
    intersection_id: str
    detector_id: str
    window_start: datetime
    window_end: datetime
    frames: int
    count_sum: int
    occupancy_mean: float
    speed_kmh_mean: float | None
    event_time: datetime
    #: mean queue (vehicles) over the window's readings that reported one; None when none did.
    #: Last and defaulted: records written before it existed still decode, old readers ignore it
    queue_veh_mean: float | None = None


class PlanPhase(Struct, frozen=True):
    stage: str
    green_s: float


class SignalPlanMessage(Struct, kw_only=True, frozen=True):
    """``signals.plans``: a validated plan with its explanation, mode and status.

    One ``active`` / ``fallback`` / ``fixed`` message per processed frame says what the signal
    drives now (``changed`` marks the ones a dashboard needs); ``pending`` messages are proposals
    awaiting an operator (advisory mode); ``approved`` / ``rejected`` / ``expired`` retire them.
    ``time_s`` is the frame's event time in epoch seconds; the plan's time 0 lies at ``origin_s``.
    """

    schema_version: int = SCHEMA_VERSION
    event_time: datetime
    intersection_id: str
    plan_id: str
    session: str
    time_s: float
    origin_s: float
    cyclic: bool
    phases: list[PlanPhase]
    mode: str
    status: str
    changed: bool = True
    controller: str
    version: str
    rule: str
    explanation: dict[str, Any]
    violations: list[str] = []
    expires_at_s: float | None = None
    #: on a drive record: the field controller reports another stage than this plan's for longer
    #: than a change takes (``signal_not_following`` raised), so the street does not show it;
    #: None in records of workers from before stop 46 (not said)
    not_following: bool | None = None
    #: on a proposal: a request to let the controller drive for this many seconds (advisory mode
    #: with an acyclic controller, ``signals.advisory``), not a plan to run; None otherwise
    mandate_s: float | None = None


class SignalAuditMessage(Struct, kw_only=True, frozen=True):
    """``signals.audit``: every decision change, proposal, approval, expiry and mode change."""

    schema_version: int = SCHEMA_VERSION
    event_time: datetime
    intersection_id: str
    session: str
    action: str
    actor: str
    detail: dict[str, Any] = {}


class ForecastPoint(Struct, frozen=True):
    """One forecast hour: ISO 8601 start of the hour, the forecast and its 80 % interval."""

    timestamp: str
    yhat: float
    yhat_lower: float
    yhat_upper: float


class Forecast(Struct, kw_only=True, frozen=True):
    """``forecasts`` (keyed by series): one refit of one series.

    Times are ISO 8601 strings as the refit wrote them (pandas' and Python's ``isoformat``,
    ``+00:00``, not msgspec's ``Z``), and the record is sent with ``encode_orjson``: the topic
    had these exact bytes before it had a record type, and its readers (the harness's
    ``forecasts.jsonl``, the run report) are not to notice the change. The field order is the
    order on the wire. ``event_time`` is when the forecast was published; ``trigger`` why the
    series was refitted (``schedule``: its refresh was due, ``event``: an announced event).
    """

    schema_version: int = SCHEMA_VERSION
    series_id: str
    model: str
    model_version: str
    #: the last complete hour of history the forecast starts after
    origin: str
    event_ids: list[str]
    points: list[ForecastPoint]
    event_time: str
    trigger: str


_encoder = msgspec.json.Encoder()


def encode(record: Struct) -> bytes:
    """JSON bytes of any record (msgspec: datetimes as RFC 3339)."""
    return _encoder.encode(record)


def encode_orjson(record: Struct) -> bytes:
    """JSON bytes of ``record`` as orjson writes them (floats of 1e16 and more as ``1e+16``,
    where msgspec writes ``1e16``): for topics that were written with orjson before they had a
    record type, so their bytes stay the same (``Forecast``)."""
    return orjson.dumps(msgspec.to_builtins(record))
