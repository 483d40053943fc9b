"""Neighbours controlled by another control worker: what the corridor rules need of them.

Frames are spread over the control workers by intersection id, so the two signals of a short
link can be controlled by different workers (a city of 2,000 intersections needs two: one worker
decides about 1,200-1,900 frames per CPU second, docs/capacity.md). The corridor rules (a frozen
detector read through the neighbour's, no traffic sent into a neighbour's red, the short-link
hold) need three things of a neighbour: its model (which zones it shares), its latest frame and
the plan it drives. The stream shell reads them for the intersections of other workers (their
saved configurations, ``sensors.intersection``, the drive records on ``signals.plans``) and
hands them to the desk, which lays its corridor out over its own intersections and the others
that share a zone with one of them. Decisions stay per intersection, on the worker that owns it.

What is not known of another worker's intersection: whether its field controller follows its
plan (``signals.following`` runs where it is controlled), so its plan is believed; and its
drive arrives after its frame was decided there (tens of milliseconds on a healthy group), so a
neighbour's plan can be one frame old when a stage changes. A frame older than
``corridor.FRESH_S`` lends nothing, here as on one worker.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from signals.explain import StageDecision
from signals.loader import intersection_from_dict
from signals.model import Intersection


def model_zones(model: Mapping[str, Any]) -> frozenset[str]:
    """The zones a model's lane areas name (read from the raw document: most intersections
    share none and are never built here)."""
    lanes = model.get("lane_areas")
    if not isinstance(lanes, list):
        return frozenset()
    return frozenset(z for la in lanes if isinstance(la, dict) and isinstance(z := la.get("zone"), str) and z)


@dataclass
class Remote:
    """One intersection of another worker: its model as configured, the zones it names, the
    model built once it neighbours one of ours, and the plan it drives (last drive record)."""

    model: Mapping[str, Any]
    zones: frozenset[str]
    intersection: Intersection | None = None
    shown: StageDecision | None = None
    #: its worker found the field controller showing something else than ``shown``
    #: (``signals.following``): its plan says nothing about what the street shows
    not_following: bool = False
    #: the model did not build (a config refused where it is controlled): never lent
    broken: bool = False


class RemoteNeighbours:
    """The other workers' intersections that have zones, and which of them neighbour ours."""

    def __init__(self) -> None:
        self.known: dict[str, Remote] = {}
        #: the ones sharing a zone with an intersection controlled here (``lay_out``)
        self.lending: frozenset[str] = frozenset()
        #: the zones named by the intersections controlled here, at the last ``lay_out``
        self.here: frozenset[str] = frozenset()

    def configure(self, intersection_id: str, model: Mapping[str, Any]) -> bool:
        """Another worker's intersection has this model; True when the corridor must be laid out
        again (it is lent now, or it names a zone of ours)."""
        zones = model_zones(model)
        old = self.known.get(intersection_id)
        if old is not None and old.model == model:
            return False
        if zones:
            self.known[intersection_id] = Remote(model, zones)
        else:
            self.known.pop(intersection_id, None)
        return intersection_id in self.lending or bool(zones & self.here)

    def lay_out(self, own: Mapping[str, Intersection]) -> list[Intersection]:
        """The models of the others that share a zone with one of ``own`` (id -> model); an
        intersection controlled here is never taken from another worker's record."""
        self.here = frozenset(la.zone for x in own.values() for la in x.lanes if la.zone)
        lent: list[Intersection] = []
        for iid, remote in self.known.items():
            if iid in own or remote.broken or not remote.zones & self.here:
                continue
            if remote.intersection is None:
                try:
                    built = intersection_from_dict(dict(remote.model))
                except (ValueError, TypeError):  # refused where it is controlled, too: nothing to lend
                    remote.broken = True
                    continue
                if built.id != iid:
                    remote.broken = True
                    continue
                remote.intersection = built
            lent.append(remote.intersection)
        self.lending = frozenset(x.id for x in lent)
        return lent

    def drove(self, intersection_id: str, decision: StageDecision, not_following: bool = False) -> None:
        """Another worker drives ``decision`` at that intersection now (kept for a neighbour
        only); ``not_following``: that worker knows the field controller shows something else."""
        remote = self.known.get(intersection_id)
        if remote is not None and intersection_id in self.lending:
            remote.shown, remote.not_following = decision, not_following

    def shown(self, intersection_id: str) -> tuple[Intersection, StageDecision] | None:
        """A lent neighbour's model and the plan it drives, if both are known and its worker does
        not know the street to show something else (as for a neighbour on the same worker)."""
        remote = self.known.get(intersection_id)
        if remote is None or intersection_id not in self.lending or remote.intersection is None or remote.shown is None:
            return None
        if remote.not_following:
            return None
        return remote.intersection, remote.shown
