"""The synthetic city's junctions as signal models, and the plans the control worker drives fed back
into the city's point-queue model (the demo's closed loop). Pure: no Kafka, no clock, no I/O.

* :func:`junction_model` writes a ``leitstand.intersection/1`` document per grid junction: two
  vehicle groups (``NS``: approaches N and S, ``EW``: E and W), two stages (``A`` = NS green,
  ``B`` = EW green), 4 s intergreens, one lane area per loop detector (``K3-N1``) and a fixed
  plan whose green shares are the city's constant ``green_share`` (a cycle of 80 s leaves 8 s
  to the two stage changes; where two main roads cross, the constants 0.5 / 0.5 leave no time
  for changes, so the fixed plan there is a 120 s cycle at 0.467 / 0.467).
* :func:`green_shares` maps a plan (``[(stage, green_s)]``) onto what the point-queue model
  needs: the share of the cycle each approach's group shows green, and the cycle length.
* :class:`ClosedLoop` holds, per junction, the shares of the plan last driven (kept until
  another plan arrives: the city never waits for the worker) and the delay ledger: vehicle-
  seconds of delay of the controlled queues and of a shadow fixed-time queue fed the same
  arrivals (:class:`DelayLedger`).

Delay per approach and frame interval = the residual queue integrated over the interval (the
trapezoid of the queue before and after it) plus the in-cycle delay of the interval's arrivals
(Webster's uniform term, C (1 - g/C)^2 / (2 (1 - min(1, x) g/C)) per vehicle): without the
second term the point queue would count no delay at all for a red light nobody queues past.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from signals.loader import intersection_from_dict
from signals.model import SCHEMA, Intersection, SignalPlan, StagePhase
from signals.timeline import SignalState, build_timeline


class _Approach(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def green_share(self) -> float: ...


class GridJunction(Protocol):
    """What this module reads of ``traffic.GridJunction`` (traffic imports this module, not the
    other way round)."""

    @property
    def intersection_id(self) -> str: ...
    @property
    def row(self) -> int: ...
    @property
    def col(self) -> int: ...
    @property
    def approaches(self) -> Sequence[_Approach]: ...
    def detector_ids(self) -> list[str]: ...


#: stage -> the approaches whose group it shows green
STAGE_APPROACHES = {"A": ("N", "S"), "B": ("E", "W")}
GROUP_OF = {"N": "NS", "S": "NS", "E": "EW", "W": "EW"}
INTERGREEN_S = 4.0
YELLOW_S = 3.0
RED_YELLOW_S = 1.0
CYCLE_MIN_S = 40.0
CYCLE_MAX_S = 120.0
MAX_GREEN_S = 100.0
MIN_GREEN_S = 8.0


@dataclass(frozen=True)
class Shares:
    """Per approach (N/E/S/W) the share of the cycle its group is green, and the cycle length."""

    by_approach: Mapping[str, float]
    cycle_s: float


def _fixed_greens(share_ns: float, share_ew: float) -> tuple[float, float]:
    """Greens of stages A and B that give the city's constant shares with two 4 s changes (lost
    time 8 s): cycle = 8 / (1 - share_ns - share_ew), at most ``CYCLE_MAX_S`` (then the
    shares are scaled down in proportion)."""
    lost = 2 * INTERGREEN_S
    free = 1.0 - share_ns - share_ew
    cycle = CYCLE_MAX_S if free <= lost / CYCLE_MAX_S else max(CYCLE_MIN_S, lost / free)
    green = cycle - lost
    total = share_ns + share_ew
    return round(green * share_ns / total, 1), round(green * share_ew / total, 1)


def two_stage_model(intersection_id: str, name: str, lanes: Iterable[tuple[str, str]], greens: tuple[float, float]) -> dict[str, Any]:
    """A ``leitstand.intersection/1`` crossing of two stages, A serving group ``NS`` and B ``EW``,
    with the city's timings; ``lanes`` are (lane area id, group) pairs, ``greens`` the fixed
    plan's green of A and B."""
    groups = [{"id": g, "kind": "vehicle", "min_green_s": 5, "yellow_s": YELLOW_S, "red_yellow_s": RED_YELLOW_S} for g in ("NS", "EW")]
    return {
        "schema": SCHEMA,
        "id": intersection_id,
        "name": name,
        "cycle": {"min_s": CYCLE_MIN_S, "max_s": CYCLE_MAX_S},
        "signal_groups": groups,
        "conflicts": [["NS", "EW"]],
        "intergreen_s": {"NS": {"EW": INTERGREEN_S}, "EW": {"NS": INTERGREEN_S}},
        "stages": [
            {"id": stage, "groups": [GROUP_OF[aps[0]]], "min_green_s": MIN_GREEN_S, "max_green_s": MAX_GREEN_S}
            for stage, aps in STAGE_APPROACHES.items()
        ],
        "lane_areas": [{"id": lane, "group": group, "saturation_flow_vph": 1800} for lane, group in lanes],
        "fixed_plan": [{"stage": "A", "green_s": greens[0]}, {"stage": "B", "green_s": greens[1]}],
    }


def junction_model(junction: GridJunction) -> dict[str, Any]:
    """The ``leitstand.intersection/1`` document of one grid junction (see the module docstring)."""
    by_name = {a.name: a for a in junction.approaches}
    return two_stage_model(
        junction.intersection_id,
        f"{junction.intersection_id} (synthetic city, row {junction.row} column {junction.col}, 2 stages)",
        ((det, GROUP_OF[det.rsplit("-", 1)[1][0]]) for det in junction.detector_ids()),
        _fixed_greens(by_name["N"].green_share, by_name["E"].green_share),
    )


def green_shares(intersection: Intersection, phases: Iterable[tuple[str, float]], cyclic: bool = True) -> Shares:
    """The share of the plan's duration (one cycle of a cyclic plan, the window of an acyclic one)
    each approach is green, from the plan's timeline (stage changes included); approaches are
    the letter after the dash of their lane areas' ids (``K3-N1`` -> ``N``). An approach whose
    group is never green gets 0."""
    plan = SignalPlan(tuple(StagePhase(s, float(g)) for s, g in phases), cyclic=cyclic)
    timeline = build_timeline(intersection, plan)
    duration = timeline.duration_s
    green = {
        g: sum(iv.duration_s for iv in ivs if iv.state == SignalState.GREEN) / duration if duration > 0 else 0.0
        for g, ivs in timeline.intervals.items()
    }
    out: dict[str, float] = {}
    for lane in intersection.lanes:
        if lane.group is not None:
            out[lane.id.rsplit("-", 1)[-1][0]] = green.get(lane.group, 0.0)
    return Shares(dict(sorted(out.items())), duration)


def uniform_delay_s(cycle_s: float, share: float, x: float) -> float:
    """Webster's uniform (in-cycle) delay per vehicle: the queue that builds in red and clears in
    green, C (1 - g/C)^2 / (2 (1 - min(1, x) g/C)); ``x`` the degree of saturation."""
    lam = min(max(share, 0.0), 1.0)
    denom = 1.0 - min(1.0, max(0.0, x)) * lam
    return cycle_s * (1.0 - lam) ** 2 / (2.0 * max(denom, 1e-6))


@dataclass
class DelayLedger:
    """Vehicle-seconds of delay, controlled against the shadow fixed-time queue, for one junction."""

    controlled_veh_s: float = 0.0
    fixed_veh_s: float = 0.0
    arrivals: int = 0
    intervals: int = 0
    controlled_intervals: int = 0  # intervals run on a plan from the worker (not the initial shares)

    def add(
        self,
        *,
        dt: float,
        arrivals: int,
        queue_before: tuple[float, float],
        queue_after: tuple[float, float],
        capacity: tuple[float, float],
        shares: tuple[float, float],
        cycles: tuple[float, float],
    ) -> None:
        """One approach, one interval; every pair is (controlled, fixed)."""
        self.arrivals += arrivals
        totals = []
        for i in (0, 1):
            x = arrivals / capacity[i] if capacity[i] > 0 else 1.0
            residual = 0.5 * (queue_before[i] + queue_after[i]) * dt
            totals.append(residual + arrivals * uniform_delay_s(cycles[i], shares[i], x))
        self.controlled_veh_s += totals[0]
        self.fixed_veh_s += totals[1]

    def summary(self) -> dict[str, Any]:
        ratio = self.controlled_veh_s / self.fixed_veh_s if self.fixed_veh_s > 0 else None
        return {
            "controlled_veh_h": round(self.controlled_veh_s / 3600.0, 2),
            "fixed_veh_h": round(self.fixed_veh_s / 3600.0, 2),
            "delay_ratio": None if ratio is None else round(ratio, 3),
            "arrivals": self.arrivals,
            "controlled_s_per_veh": round(self.controlled_veh_s / self.arrivals, 1) if self.arrivals else None,
            "fixed_s_per_veh": round(self.fixed_veh_s / self.arrivals, 1) if self.arrivals else None,
            "frames": self.intervals,
            "frames_on_worker_plan": self.controlled_intervals,
        }


@dataclass
class ClosedLoop:
    """What the city's traffic model reads each frame in closed loop: per junction the shares of
    the plan last driven (initially the fixed plan's) and the shadow fixed-time shares; and the
    delay ledgers. :meth:`apply` takes a drive message's plan; a plan that does not map (unknown
    junction or stage) is ignored, so the last shares stay."""

    models: Mapping[str, Intersection]
    fixed: dict[str, Shares] = field(init=False)
    current: dict[str, Shares] = field(init=False)
    ledgers: dict[str, DelayLedger] = field(init=False)
    from_worker: set[str] = field(init=False, default_factory=set)
    applied: int = 0
    ignored: int = 0

    def __post_init__(self) -> None:
        self.fixed = {
            iid: green_shares(m, [(p.stage, p.green_s) for p in m.fixed_plan.phases], m.fixed_plan.cyclic) for iid, m in self.models.items()
        }
        self.current = dict(self.fixed)
        self.ledgers = {iid: DelayLedger() for iid in self.models}

    @classmethod
    def for_grid(cls, grid: Iterable[GridJunction]) -> ClosedLoop:
        return cls({j.intersection_id: intersection_from_dict(junction_model(j)) for j in grid})

    def apply(self, intersection_id: str, phases: Iterable[tuple[str, float]], cyclic: bool = True) -> bool:
        """Drive ``intersection_id`` on this plan from the next frame; False (and nothing changes)
        if the junction is not controlled here or the plan does not fit its model."""
        model = self.models.get(intersection_id)
        if model is None:
            self.ignored += 1
            return False
        try:
            shares = green_shares(model, phases, cyclic)
        except (KeyError, ValueError):  # ModelError is a ValueError
            self.ignored += 1
            return False
        if shares.cycle_s <= 0:
            self.ignored += 1
            return False
        self.current[intersection_id] = shares
        self.from_worker.add(intersection_id)
        self.applied += 1
        return True

    def delays(self) -> dict[str, dict[str, Any]]:
        """Per junction (K1, K2, ... in number order) the delay summary of its ledger."""
        order = sorted(self.ledgers, key=lambda iid: (len(iid), iid))
        return {iid: self.ledgers[iid].summary() for iid in order}
