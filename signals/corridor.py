"""Corridor awareness: neighbouring intersections lend each other their detectors.

On a short link between two signals the upstream signal's exit zone and the downstream signal's
approach zone are the same stretch of road (``LaneArea.zone`` names it alike in both models), so
two independent detectors see the same vehicles. When one of them freezes, the other still tells
the truth: a detector stuck reading *empty* on a 12 m link looks exactly like an empty lane from
inside its own intersection (ingolstadt21 seed 5 jammed through one), but not beside the
neighbour's reading of the same vehicles.

Pure functions over the models and the latest frames; the control desk (stream) and the SUMO
in-process source call them with the frames they hold. Decisions stay per intersection and the
controller decides what a neighbour's reading is worth: leitstand uses it to find a frozen
reading of its own and to stand in for it (not for a dead one, whose estimate did better).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping

from signals.controllers.base import DetectorObservation, NeighbourReading
from signals.model import Intersection

#: a neighbour's frame older than this (or than 1.5 of its own interval, if longer) is not lent:
#: a queue on a short link changes by a vehicle every two seconds at saturation flow
FRESH_S = 5.0

#: own detector -> the (intersection, detector) pairs of other intersections on the same zone
Peers = dict[str, tuple[tuple[str, str], ...]]


def zone_peers(intersections: Iterable[Intersection]) -> dict[str, Peers]:
    """For every intersection, which of its detectors share a zone with another intersection's."""
    intersections = list(intersections)
    by_zone: dict[str, set[tuple[str, str]]] = defaultdict(set)
    for x in intersections:
        for la in x.lanes:
            if la.zone:
                by_zone[la.zone].add((x.id, la.measured_by))
    out: dict[str, Peers] = {}
    for x in intersections:
        peers: Peers = {}
        for la in x.lanes:
            if la.zone and la.measured_by not in peers:
                others = tuple(sorted(p for p in by_zone[la.zone] if p[0] != x.id))
                if others:
                    peers[la.measured_by] = others
        out[x.id] = peers
    return out


def fresh(own: DetectorObservation, other: DetectorObservation) -> bool:
    """Whether ``other``'s frame is recent enough to stand in at ``own``'s time."""
    return abs(own.time_s - other.time_s) <= max(FRESH_S, 1.5 * other.interval_s)


def with_neighbours(obs: DetectorObservation, peers: Peers, latest: Mapping[str, DetectorObservation]) -> DetectorObservation:
    """``obs`` with the neighbours' recent readings of its shared zones attached (the first peer,
    in id order, whose detector is in its latest fresh frame)."""
    lent: dict[str, NeighbourReading] = {}
    for det, others in peers.items():
        for iid, other_det in others:
            frame = latest.get(iid)
            if frame is not None and other_det in frame.lanes and fresh(obs, frame):
                lent[det] = NeighbourReading(iid, other_det, frame.lanes[other_det])
                break
    if not lent:
        return obs
    return DetectorObservation(obs.intersection_id, obs.time_s, obs.interval_s, obs.lanes, lent)
