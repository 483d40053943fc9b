"""Traffic incidents and broken detectors from one intersection's detector frames.

**Incident** on an approach (a blocked lane, a breakdown): its occupancy rises well above its
own profile for this hour of the day *and* above the other approaches of the same
intersection, while its speed falls well below its profile, for several consecutive frames.
Comparing with the neighbours keeps a city-wide rush hour (all approaches up together) from
looking like an incident; comparing with the own profile keeps a always-busy main road from
looking like one. The profile is not learned while an incident is open, so a long blockage
does not become normal.

**Detector faults**, per detector: *stuck on* (occupancy near 1 for minutes while the other
detectors of the intersection are not congested), *dead* (nothing counted for a long time while
the others counted plenty), *silent* (missing from the frames).

State per intersection is a JSON-able dict (a Faust table keeps it).
"""

from __future__ import annotations

import bisect
import functools
import hashlib
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .alarms import AlarmTrigger


@dataclass(frozen=True, slots=True)
class DetectorValue:
    """One detector's reading in a frame (slots: one is made per detector per frame)."""

    detector_id: str
    approach: str
    count: int
    occupancy: float
    speed_kmh: float | None


@dataclass(frozen=True)
class IncidentConfig:
    occupancy_rise: float = 0.20  # above the own profile
    occupancy_floor: float = 0.30  # never an incident below this occupancy
    neighbour_ratio: float = 1.8  # times the median of the other approaches
    speed_drop: float = 0.55  # speed below this share of the profile
    confirm_frames: int = 3
    clear_frames: int = 3
    profile_halflife_frames: float = 40.0  # per hour-of-day bin
    warmup_frames: int = 20  # frames an approach needs before it can raise an incident
    stuck_on_occupancy: float = 0.95
    stuck_on_s: float = 300.0
    dead_after_s: float = 1800.0
    dead_min_neighbour_count: int = 100  # vehicles the others counted meanwhile
    silent_after_s: float = 600.0


@dataclass
class IncidentOutcome:
    triggers: list[AlarmTrigger] = field(default_factory=list)
    clears: list[str] = field(default_factory=list)


#: what an approach or detector name may be inside an alarm kind as it is: the id character set
#: without '@' (the alarm id ``kind@subject~digest`` is routed by its first '@'), short enough
#: that ``detector_fault_`` + name stays within the 64 characters of a kind
_KIND_PART = re.compile(r"[A-Za-z0-9._:/+#~-]{1,48}\Z")


@functools.lru_cache(maxsize=65_536)
def alarm_kind_part(name: str) -> str:
    """``name`` as it may appear in an alarm kind: unchanged when it can, else a readable,
    stable stand-in (the allowed characters of it, cut short, and a digest of the whole).

    Detector ids may hold '@' and be 64 characters long, approaches are free text: used as they
    were, the kind either failed the books' decoder (the alarm was dead-lettered, never raised)
    or put a second '@' into the alarm id, so acknowledgements went to the wrong subject and the
    alarm could never be acknowledged. The full name stays in the alarm's evidence.
    """
    if _KIND_PART.match(name):
        return name
    digest = hashlib.blake2b(name.encode("utf-8", "surrogatepass"), digest_size=6).hexdigest()
    return f"{re.sub(r'[^A-Za-z0-9._:/+#~-]+', '_', name)[:32]}-{digest}"


def _median_without(ordered: Sequence[float], x: float) -> float:
    """The median of ``ordered`` (sorted) with one occurrence of ``x`` left out: each approach's
    neighbours from one sort per frame instead of one per approach."""
    skip = bisect.bisect_left(ordered, x)
    n = len(ordered) - 1
    mid = n // 2

    def at(i: int) -> float:
        return ordered[i] if i < skip else ordered[i + 1]

    return at(mid) if n % 2 else (at(mid - 1) + at(mid)) / 2


def _approaches(values: Sequence[DetectorValue]) -> dict[str, tuple[float, float | None, int]]:
    """approach -> (mean occupancy, mean speed or None, total count)."""
    # approach -> [occupancy sum, detectors, speed sum, speeds, count]
    sums: dict[str, list[Any]] = {}
    for v in values:
        acc = sums.get(v.approach)
        if acc is None:
            acc = sums[v.approach] = [0.0, 0, 0.0, 0, 0]
        acc[0] += v.occupancy
        acc[1] += 1
        if v.speed_kmh is not None:
            acc[2] += v.speed_kmh
            acc[3] += 1
        acc[4] += v.count
    return {a: (occ / n, speed / speeds if speeds else None, count) for a, (occ, n, speed, speeds, count) in sums.items()}


def frame_outcome(
    state: Mapping[str, Any] | None,
    intersection_id: str,
    at: float,
    values: Sequence[DetectorValue],
    cfg: IncidentConfig = IncidentConfig(),
) -> tuple[dict[str, Any], IncidentOutcome]:
    """Fold one frame. Frames older than the newest seen are ignored (redelivery, reordering)."""
    st, outcomes = frames_outcome(state, intersection_id, [(at, values)], cfg)
    return st, outcomes[0]


def frames_outcome(
    state: Mapping[str, Any] | None,
    intersection_id: str,
    frames: Iterable[tuple[float, Sequence[DetectorValue]]],
    cfg: IncidentConfig = IncidentConfig(),
) -> tuple[dict[str, Any], list[IncidentOutcome]]:
    """Fold several frames of one intersection in order: the new state and one outcome per frame.

    The same as ``frame_outcome`` frame by frame, but the state is copied once for the whole
    group and folded in place (the given state is never touched: a table may still be
    serialising it), which is what a batch with several frames per intersection needs.
    """
    st = _owned(state)
    outcomes: list[IncidentOutcome] = []
    for at, values in frames:
        out = IncidentOutcome()
        outcomes.append(out)
        if not math.isfinite(at) or at <= st["last_t"] or not values:
            continue
        st["last_t"] = at
        _approach_incidents(st["approaches"], intersection_id, at, values, cfg, out)
        _detector_faults(st["detectors"], intersection_id, at, values, cfg, out)
    return st, outcomes


def _owned(state: Mapping[str, Any] | None) -> dict[str, Any]:
    """A copy of ``state`` deep enough to be folded in place."""
    st: dict[str, Any] = {"last_t": -math.inf, "approaches": {}, "detectors": {}, **(state or {})}
    st["approaches"] = {k: {**v, "occ": dict(v["occ"]), "speed": dict(v["speed"])} for k, v in st["approaches"].items()}
    st["detectors"] = {k: dict(v) for k, v in st["detectors"].items()}
    return st


@dataclass(frozen=True)
class _ApproachView:
    """One approach in one frame, next to what is usual for it and what its neighbours show."""

    name: str
    occ: float
    speed: float | None
    base_occ: float | None  # the approach's profile for this hour (or over all hours)
    base_speed: float | None
    neighbours: float | None  # median occupancy of the other approaches


def _approach_incidents(
    approaches: dict[str, Any],
    intersection_id: str,
    at: float,
    values: Sequence[DetectorValue],
    cfg: IncidentConfig,
    out: IncidentOutcome,
) -> None:
    """Per approach: confirm, hold or clear an incident, else learn the profile (in place:
    ``approaches`` belongs to the caller's own copy of the state)."""
    hour = str(int(at // 3600) % 24)
    alpha = 1.0 - 0.5 ** (1.0 / cfg.profile_halflife_frames)
    per_approach = _approaches(values)
    ordered = sorted(o for o, _, _ in per_approach.values()) if len(per_approach) > 1 else []
    for name, (occ, speed, _) in per_approach.items():
        a = approaches.get(name)
        if a is None:
            a = approaches[name] = {"occ": {}, "speed": {}, "n": 0, "hits": 0, "calm": 0, "open": False}
        occ_profile, speed_profile = a["occ"], a["speed"]
        base_occ = occ_profile.get(hour)
        if base_occ is None:
            base_occ = occ_profile.get("all")
        base_speed = speed_profile.get(hour)
        if base_speed is None:
            base_speed = speed_profile.get("all")
        neighbours = _median_without(ordered, occ) if ordered else None
        suspicious = _suspicious(a, occ, speed, base_occ, base_speed, neighbours, cfg)
        if a["open"]:
            if _calmed(a, suspicious, cfg):
                out.clears.append(f"incident_{alarm_kind_part(name)}")
            continue  # no learning while an incident is open
        a["hits"] = a["hits"] + 1 if suspicious else 0
        if a["hits"] >= cfg.confirm_frames:
            a["open"], a["calm"] = True, 0
            view = _ApproachView(name, occ, speed, base_occ, base_speed, neighbours)
            out.triggers.append(_incident_trigger(intersection_id, f"incident_{alarm_kind_part(name)}", at, view))
            continue
        if not suspicious:
            _learn_profile(a, hour, occ, speed, alpha)


def _suspicious(
    a: Mapping[str, Any],
    occ: float,
    speed: float | None,
    base_occ: float | None,
    base_speed: float | None,
    neighbours: float | None,
    cfg: IncidentConfig,
) -> bool:
    """Occupancy well above the own profile *and* the neighbours, speed well below its profile.

    The neighbours keep a city-wide rush hour from looking like an incident, the own profile an
    always-busy main road; nothing is judged before the approach has ``warmup_frames`` of history.
    (Scalars, not an ``_ApproachView``: called for every approach of every frame.)
    """
    return (
        a["n"] >= cfg.warmup_frames
        and base_occ is not None
        and occ >= max(cfg.occupancy_floor, base_occ + cfg.occupancy_rise)
        and (neighbours is None or occ >= cfg.neighbour_ratio * max(neighbours, 0.02))
        and (speed is None or base_speed is None or speed <= cfg.speed_drop * base_speed)
    )


def _calmed(a: dict[str, Any], suspicious: bool, cfg: IncidentConfig) -> bool:
    """Count calm frames of an open incident; close it after ``clear_frames`` in a row."""
    a["calm"] = 0 if suspicious else a["calm"] + 1
    if a["calm"] >= cfg.clear_frames:
        a["open"], a["hits"] = False, 0
        return True
    return False


def _incident_trigger(intersection_id: str, kind: str, at: float, view: _ApproachView) -> AlarmTrigger:
    """The major alarm of a confirmed incident, with the figures that made it suspicious."""
    name, occ, speed, base_occ, base_speed, neighbours = view.name, view.occ, view.speed, view.base_occ, view.base_speed, view.neighbours
    return AlarmTrigger(
        intersection_id,
        kind,
        "major",
        f"{at:.3f}",
        at,
        f"possible incident on approach {name}: occupancy {occ:.0%} (usual {base_occ:.0%})"
        + (f", speed {speed:.0f} km/h (usual {base_speed:.0f})" if speed is not None and base_speed else ""),
        {
            "approach": name,
            "occupancy": round(occ, 3),
            "usual_occupancy": round(base_occ or 0.0, 3),
            "speed_kmh": speed,
            "usual_speed_kmh": base_speed,
            "neighbour_occupancy": None if neighbours is None else round(neighbours, 3),
        },
        subject_type="intersection",
    )


#: decimal places of a learned profile value (occupancy share, speed in km/h)
PROFILE_DECIMALS = 5


def _learn_profile(a: dict[str, Any], hour: str, occ: float, speed: float | None, alpha: float) -> None:
    """Move this hour's and the all-hours profile towards a normal frame (EWMA).

    Profiles are kept to ``PROFILE_DECIMALS`` places: the state is written to the table's
    changelog after every batch, and 17-digit floats made up most of its bytes (an occupancy
    to 1e-5 and a speed to 1e-5 km/h are far below what a loop detector measures)."""
    _learn(a["occ"], hour, occ, alpha)
    if speed is not None:
        _learn(a["speed"], hour, speed, alpha)
    a["n"] += 1


def _learn(profile: dict[str, float], hour: str, x: float, alpha: float) -> None:
    """One profile's hour and all-hours values one EWMA step towards ``x`` (``_ewma`` inlined:
    four of these per approach and frame)."""
    old = profile.get(hour)
    profile[hour] = round(x if old is None else old + alpha * (x - old), PROFILE_DECIMALS)
    old = profile.get("all")
    profile["all"] = round(x if old is None else old + alpha * (x - old), PROFILE_DECIMALS)


def _detector_faults(
    dets: dict[str, Any], iid: str, at: float, values: Sequence[DetectorValue], cfg: IncidentConfig, out: IncidentOutcome
) -> None:
    """Per detector: stuck on, dead or silent (in place, like ``_approach_incidents``)."""
    total = sum(v.count for v in values)
    congested = sum(v.occupancy >= 0.5 for v in values)
    seen = set()
    for v in values:
        seen.add(v.detector_id)
        d = dets.setdefault(v.detector_id, {"on_since": None, "zero_since": None, "others": 0, "fault": None, "last": at})
        d["last"] = at
        others_congested = congested - (v.occupancy >= 0.5)
        d["on_since"] = (d["on_since"] or at) if v.occupancy >= cfg.stuck_on_occupancy and others_congested == 0 else None
        if v.count == 0 and v.occupancy == 0.0:
            d["zero_since"] = d["zero_since"] or at
            d["others"] += total - v.count
        else:
            d["zero_since"], d["others"] = None, 0
        reason = None
        if d["on_since"] is not None and at - d["on_since"] >= cfg.stuck_on_s:
            reason = "stuck_on"
        elif d["zero_since"] is not None and at - d["zero_since"] >= cfg.dead_after_s and d["others"] >= cfg.dead_min_neighbour_count:
            reason = "dead"
        _fault_change(d, iid, v.detector_id, reason, at, out)
    for det_id, d in dets.items():
        if det_id not in seen and at - d["last"] >= cfg.silent_after_s:
            _fault_change(d, iid, det_id, "silent", at, out)


def _fault_change(d: dict[str, Any], iid: str, det_id: str, reason: str | None, at: float, out: IncidentOutcome) -> None:
    kind = f"detector_fault_{alarm_kind_part(det_id)}"
    if reason is not None and d["fault"] is None:
        d["fault"] = reason
        out.triggers.append(
            AlarmTrigger(
                iid,
                kind,
                "minor",
                f"{reason}:{at:.3f}",
                at,
                f"detector {det_id}: {reason.replace('_', ' ')}",
                {"detector_id": det_id, "reason": reason},
                subject_type="intersection",
            )
        )
    elif reason is None and d["fault"] is not None:
        d["fault"] = None
        out.clears.append(kind)
