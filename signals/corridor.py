"""Corridor awareness: neighbouring intersections lend each other their detectors.

On a short link between two signals the upstream signal's exit zone and the downstream signal's
approach zone are the same stretch of road (``LaneArea.zone`` names it alike in both models), so
two independent detectors see the same vehicles. When one of them freezes, the other still tells
the truth: a detector stuck reading *empty* on a 12 m link looks exactly like an empty lane from
inside its own intersection (ingolstadt21 seed 5 jammed through one), but not beside the
neighbour's reading of the same vehicles.

Neighbours on a *very* short link (``SHORT_LINK_M``: two or three vehicles) also tell each other
what they show: traffic sent onto such a link while the far signal is red for it stops there and
blocks the junction it came from (ingolstadt21's two pairs on 12 m and 15 m links deadlocked this
way, docs/signals.md), so the upstream signal learns which of its exits lead into red now
(``DetectorObservation.exits_into_red``), as the offsets of a coordinated fixed program arrange,
and the downstream signal learns which of its approaches the upstream one is still feeding
(``DetectorObservation.fed_now``: a feeding group green now, or within its yellow and
``FEED_TRAVEL_S`` before), so it does not stop at red the vehicles it has just been sent.

Pure functions over the models and the latest frames; the control desk (stream) and the SUMO
in-process source call them with the frames and plans they hold. Decisions stay per intersection
and the controller decides what a neighbour's reading is worth: leitstand uses it to find a frozen
reading of its own and to stand in for it (not for a dead one, whose estimate did better), and
counts an exit into red as full.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping

from signals.controllers.base import DetectorObservation, NeighbourReading
from signals.explain import StageDecision
from signals.model import Intersection, SignalPlan
from signals.timeline import SignalTimeline, build_timeline

#: a neighbour's frame older than this (or than 1.5 of its own interval, if longer) is not lent:
#: a queue on a short link changes by a vehicle every two seconds at saturation flow
FRESH_S = 5.0

#: a link between two signals no longer than this (metres) holds at most two or three standing
#: vehicles (``JAM_SPACING_M``, 7.5 m each): the two stop lines work as one junction. Physics, not
#: tuned: the development maps' shared links are 12 m and 15 m, the next longest 43 m
SHORT_LINK_M = 20.0

#: own detector -> the (intersection, detector) pairs of other intersections on the same zone
Peers = dict[str, tuple[tuple[str, str], ...]]

#: own exit detector on a short link -> (the downstream intersection, its groups draining the link)
Drains = dict[str, tuple[str, frozenset[str]]]

#: own approach detector on a short link -> (the upstream intersection, its groups feeding the
#: link, seconds after such a group's green ends that vehicles may still be entering the link)
Feeds = dict[str, tuple[str, frozenset[str], float]]

#: seconds a vehicle that crossed the upstream stop line at the end of yellow needs to be on its
#: way across a link of at most ``SHORT_LINK_M`` (20 m at 50 km/h: 1.4 s; one decision step).
#: Physics, rounded to the step, not tuned: it was the only value tried
FEED_TRAVEL_S = 1.0


#: intersections whose models may name one zone: the two signals at the ends of a stretch of
#: road. A zone named in more models is a configuration error (a copied model, a name reused for
#: every zone of a corridor) and lends nothing, as a zone two signals both claim to serve does
#: not (``_one_claim``): a reading lent from the wrong junction would be believed. It also keeps
#: the corridor cheap to lay out: one name on 500 models made each rebuild 0.7 s (stop 43)
ZONE_SHARERS = 2


def crowded_zones(intersections: Iterable[Intersection]) -> dict[str, tuple[str, ...]]:
    """Zones named in more than ``ZONE_SHARERS`` intersections' models -> those intersections."""
    named: dict[str, set[str]] = defaultdict(set)
    for x in intersections:
        for la in x.lanes:
            if la.zone:
                named[la.zone].add(x.id)
    return {zone: tuple(sorted(ids)) for zone, ids in sorted(named.items()) if len(ids) > ZONE_SHARERS}


def zone_peers(intersections: Iterable[Intersection]) -> dict[str, Peers]:
    """For every intersection, which of its detectors share a zone with another intersection's
    (a crowded zone, ``crowded_zones``, with nobody)."""
    intersections = list(intersections)
    crowded = crowded_zones(intersections)
    by_zone: dict[str, set[tuple[str, str]]] = defaultdict(set)
    for x in intersections:
        for la in x.lanes:
            if la.zone and la.zone not in crowded:
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
    return dataclasses.replace(obs, neighbours=lent)


def short_drains(intersections: Iterable[Intersection]) -> dict[str, Drains]:
    """For every intersection, its exit detectors on a shared zone of at most ``SHORT_LINK_M``
    and which groups of the downstream intersection serve that zone (its approach there)."""
    intersections = list(intersections)
    crowded = crowded_zones(intersections)
    by_zone: dict[str, dict[str, set[str]]] = defaultdict(dict)
    for x in intersections:
        for la in x.lanes:
            if la.zone and la.zone not in crowded and la.group is not None and la.length_m is not None and la.length_m <= SHORT_LINK_M:
                by_zone[la.zone].setdefault(x.id, set()).add(la.group)
    draining = _one_claim(by_zone)
    out: dict[str, Drains] = {}
    for x in intersections:
        drains: Drains = {}
        for la in x.lanes:
            if la.group is None and la.zone in draining and draining[la.zone][0] != x.id:
                nb, groups = draining[la.zone]
                drains[la.measured_by] = (nb, frozenset(groups))
        out[x.id] = drains
    return out


class ShownGreens:
    """Which groups each intersection's driven plan shows green at a time: the neighbours' view.

    Keeps the last timeline per intersection, since a plan is repeated for many frames and laying
    one out is the expensive part."""

    def __init__(self) -> None:
        self._timelines: dict[str, tuple[Intersection, SignalPlan, SignalTimeline]] = {}

    def green(self, intersection: Intersection, shown: StageDecision, t: float) -> frozenset[str]:
        cached = self._timelines.get(intersection.id)
        # a reconfigured model (other intergreens) lays the same plan out differently
        if cached is None or cached[0] is not intersection or cached[1] != shown.plan:
            cached = (intersection, shown.plan, build_timeline(intersection, shown.plan))
            self._timelines[intersection.id] = cached
        return cached[2].green_at(t - shown.origin_s)


def short_feeds(intersections: Iterable[Intersection]) -> dict[str, Feeds]:
    """For every intersection, its approach detectors on a shared zone of at most
    ``SHORT_LINK_M`` and which groups of the upstream intersection send traffic onto it (the
    groups of the lanes whose exit area covers that zone)."""
    intersections = list(intersections)
    crowded = crowded_zones(intersections)
    by_zone: dict[str, dict[str, set[str]]] = defaultdict(dict)
    lags: dict[str, float] = defaultdict(float)
    for x in intersections:
        exits = {la.id: la for la in x.lanes if la.group is None and la.zone not in crowded}
        for la in x.lanes:
            if la.group is None:
                continue
            for d in la.downstream:
                e = exits.get(d)
                if e is not None and e.zone and e.length_m is not None and e.length_m <= SHORT_LINK_M:
                    by_zone[e.zone].setdefault(x.id, set()).add(la.group)
                    lags[e.zone] = max(lags[e.zone], x.groups[la.group].yellow_s + FEED_TRAVEL_S)
    feeding = _one_claim(by_zone)
    out: dict[str, Feeds] = {}
    for x in intersections:
        feeds: Feeds = {}
        for la in x.lanes:
            if la.group is not None and la.zone in feeding and feeding[la.zone][0] != x.id:
                nb, groups = feeding[la.zone]
                feeds[la.measured_by] = (nb, groups, lags[la.zone])
        out[x.id] = feeds
    return out


def _one_claim(by_zone: Mapping[str, Mapping[str, set[str]]]) -> dict[str, tuple[str, frozenset[str]]]:
    """Zone -> the one intersection whose groups serve it (drain or feed it) and those groups. A
    zone claimed by two intersections is a stretch of road two models both say they serve, a
    configuration error (a copied model, a zone name reused): nothing is claimed about it, rather
    than one signal's state read against the other's group names."""
    return {zone: (iid, frozenset(groups)) for zone, claims in by_zone.items() if len(claims) == 1 for iid, groups in claims.items()}


def with_fed_now(obs: DetectorObservation, feeds: Feeds, green_of: Callable[[str, float], frozenset[str] | None]) -> DetectorObservation:
    """``obs`` with its approaches that the upstream signal is feeding marked: a feeding group
    green at ``obs``'s time or ``lag`` seconds before (``green_of(intersection, t)``, None when its
    plan is not known here: nothing is claimed)."""
    fed = set()
    for det, (nb, groups, lag) in feeds.items():
        for t in (obs.time_s, obs.time_s - lag):
            green = green_of(nb, t)
            if green is not None and green & groups:
                fed.add(det)
                break
    return dataclasses.replace(obs, fed_now=frozenset(fed)) if fed else obs


@dataclasses.dataclass(frozen=True)
class Corridor:
    """What the intersections controlled together lend each other, per intersection: the shared
    zones, the exits onto short links and the approaches fed over them. The control desk and the
    SUMO in-process source hold one and let each frame be seen through it, so both attach exactly
    the same neighbour information."""

    peers: dict[str, Peers]
    drains: dict[str, Drains]
    feeds: dict[str, Feeds]
    #: zones named by too many models (``crowded_zones``): ignored, for the operator to hear of
    crowded: dict[str, tuple[str, ...]] = dataclasses.field(default_factory=dict)

    @classmethod
    def of(cls, intersections: Iterable[Intersection]) -> Corridor:
        xs = list(intersections)
        return cls(zone_peers(xs), short_drains(xs), short_feeds(xs), crowded_zones(xs))

    def seen_by(
        self,
        obs: DetectorObservation,
        latest: Mapping[str, DetectorObservation],
        green_of: Callable[[str, float], frozenset[str] | None],
    ) -> DetectorObservation:
        """``obs`` with the neighbours' fresh readings of its shared zones (from ``latest``), its
        exits into a neighbour's red and its approaches a neighbour still feeds marked
        (``green_of(intersection, t)``: the groups a neighbour shows green at ``t``, None when not
        known here)."""
        iid = obs.intersection_id
        seen = with_neighbours(obs, self.peers.get(iid, {}), latest)
        seen = with_exits_into_red(seen, self.drains.get(iid, {}), lambda nb: green_of(nb, obs.time_s))
        return with_fed_now(seen, self.feeds.get(iid, {}), green_of)


def into_red(drains: Drains, green_of: Callable[[str], frozenset[str] | None]) -> frozenset[str]:
    """The exits whose downstream intersection shows none of the draining groups green now
    (``green_of`` gives an intersection's green groups, None when its plan is not known here:
    then nothing is claimed about its links)."""
    out = set()
    for det, (nb, groups) in drains.items():
        green = green_of(nb)
        if green is not None and not green & groups:
            out.add(det)
    return frozenset(out)


def with_exits_into_red(obs: DetectorObservation, drains: Drains, green_of: Callable[[str], frozenset[str] | None]) -> DetectorObservation:
    """``obs`` with its exits into a red neighbour marked (unchanged when there are none)."""
    red = into_red(drains, green_of)
    return dataclasses.replace(obs, exits_into_red=red) if red else obs
