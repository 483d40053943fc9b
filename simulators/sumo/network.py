"""Intersection models from a SUMO network: its ``tlLogic`` plus the junctions' link conflicts.

SUMO describes a traffic light by a state string per phase, one character per controlled link.
Here:

* a **signal group** is a set of links that show the same character in every phase of the
  program (one signal head drives them); links never green or never signalled (``o``, ``O``,
  ``s``) keep their shipped character and are not controlled;
* a **stage** is a green phase of the program (no ``y``), holding the groups green in it;
  duplicate phases share one stage; the **fixed plan** is the program's green phases with
  their durations;
* two groups **conflict** when the program never shows them green together and a pair of their
  links are foes in the junction's right-of-way matrix (``<request foes=...>``, read by
  sumolib), or lie on different junctions of a joint (clustered) signal, where the matrix says
  nothing: then the program's separation is taken as the rule;
* **yellow** per group is the shortest yellow the program gives it, **intergreen** from a
  clearing to an entering conflicting group is the shortest gap the program leaves between
  them, never less than the clearing group's yellow; SUMO programs have no red-yellow, so 0 s;
  no group gets a yielding clearance (``SignalGroup.yielding_clearance_s``): derived from the
  junctions' geometry it cost the adaptive controllers more than the locks it prevented
  (docs/signals.md, "Yielding clearance").

What SUMO itself needs to drive a group (``G`` or ``g`` for permissive movements that yield)
is kept beside the model in :class:`SumoSignals`.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import sumolib
from sumolib.net.connection import Connection
from sumolib.net.node import Node

from signals.loader import ensure_safe
from signals.model import (
    DEFAULT_MAX_CYCLE_S,
    RILSA_MIN_GREEN_S,
    GroupKind,
    Intersection,
    LaneArea,
    ModelError,
    SignalGroup,
    SignalPlan,
    Stage,
    StagePhase,
)

GREEN_CHARS = frozenset("Gg")
#: characters SUMO keeps constant and that no stage change touches (off, off-blinking, stop sign)
UNCONTROLLED = frozenset("oOs")
#: longest stage green an adaptive controller may hold (the shipped program's longer ones raise it)
DEFAULT_MAX_GREEN_S = 60.0
#: a detection zone covers up to this much of an approach lane before the stop line (exits: after
#: the junction)
APPROACH_M = 75.0
#: a lane shorter than this (about three cars) is an artefact of how the map splits a road at a
#: junction, not a place to measure a queue: its zone continues over the lane before (after) it
STUB_M = 25.0


@dataclass(frozen=True)
class SumoSignals:
    """One SUMO traffic light as a Leitstand intersection, plus how to drive it through TraCI."""

    tls_id: str
    program_id: str
    intersection: Intersection
    #: signal group of each link index; None for uncontrolled links
    link_groups: tuple[str | None, ...]
    #: the shipped character of every uncontrolled link
    constant: Mapping[int, str]
    #: per stage, the green character of each of its groups (``G`` priority, ``g`` permissive)
    green_chars: Mapping[str, Mapping[str, str]]
    #: detector id -> (lane id, "in" for an approach lane ending at the stop line, "out" for an exit lane)
    detectors: Mapping[str, tuple[str, str]]


def _at_most_64(prefix: str, name: str) -> str:
    """``prefix + name``, or, past 64 characters (the record's and the model's id limit), the
    prefix, the name's first 40 characters and a hash of the whole name: readable and unique."""
    if len(prefix) + len(name) <= 64:
        return prefix + name
    return f"{prefix}{name[:40]}~{hashlib.blake2b(name.encode(), digest_size=6).hexdigest()}"


def detector_id(kind: str, lane_id: str) -> str:
    """Readable, unique and at most 64 characters (the frame record's limit)."""
    return _at_most_64(f"{kind}:", lane_id)


def load_sumo_net(net_file: str | Path) -> sumolib.net.Net:
    return sumolib.net.readNet(str(net_file), withLatestPrograms=True, withPedestrianConnections=True)


def intersections_from_sumo(net_file: str | Path | sumolib.net.Net) -> dict[str, SumoSignals]:
    """Every traffic light of the network that has at least two green stages."""
    net = net_file if isinstance(net_file, sumolib.net.Net) else load_sumo_net(net_file)
    out = {}
    for tls in net.getTrafficLights():
        programs = tls.getPrograms()
        if not programs:
            continue
        program_id, program = next(iter(programs.items()))
        try:
            out[tls.getID()] = _from_tls(tls, program_id, program)
        except ModelError as exc:
            raise ModelError(f"traffic light {tls.getID()}: {exc}") from None
    return out


def _from_tls(tls: sumolib.net.TLS, program_id: str, program: sumolib.net.TLSProgram) -> SumoSignals:
    """One program of a traffic light as a checked intersection model (see the module text)."""
    p = _read_program(program)
    stages, green_chars, plan = _stages(p)
    yellow, gaps = _clearances(p.phases, p.green_idx, p.greens_in, p.group_links)
    conn_by_link = _connections(tls)
    conflicts = _conflicts(p, conn_by_link)
    groups = {
        g: SignalGroup(g, kind=_kind(links, conn_by_link), min_green_s=RILSA_MIN_GREEN_S, yellow_s=yellow.get(g, 3.0), red_yellow_s=0.0)
        for g, links in p.group_links.items()
    }
    longest = max((ph.green_s for ph in plan), default=0.0)
    stage_objs = tuple(
        Stage(
            sid,
            groups_,
            min_green_s=RILSA_MIN_GREEN_S,
            max_green_s=max(DEFAULT_MAX_GREEN_S, longest),
            yielding=frozenset(g for g, ch in green_chars[sid].items() if ch == "g"),
        )
        for groups_, sid in stages.items()
    )
    lanes, detectors = _lane_areas(conn_by_link, p.link_groups)
    cycle = sum(float(ph.duration) for ph in p.phases)
    # the RiLSA bounds and a safe fixed plan, as for every model from outside: a program with,
    # say, 3 s greens or 2 s yellows is refused by name rather than driven (docs/signals.md)
    intersection = ensure_safe(
        Intersection(
            id=tls.getID(),
            groups=groups,
            stages=stage_objs,
            conflicts=frozenset(conflicts),
            intergreen_s=_intergreens(conflicts, yellow, gaps),
            fixed_plan=SignalPlan(tuple(plan)),
            lanes=lanes,
            cycle_min_s=min(30.0, cycle),
            cycle_max_s=max(DEFAULT_MAX_CYCLE_S, cycle),
            max_wait_s=max(DEFAULT_MAX_CYCLE_S, cycle),
            name=f"SUMO tls {tls.getID()} program {program_id}",
        )
    )
    return SumoSignals(tls.getID(), program_id, intersection, tuple(p.link_groups), p.constant, green_chars, detectors)


@dataclass(frozen=True)
class _Program:
    """A SUMO program read column by column: its signal groups and its green phases."""

    phases: Sequence[sumolib.net.Phase]
    states: list[str]  # one state string per phase, one character per link
    link_groups: list[str | None]  # signal group of each link index; None: uncontrolled
    constant: dict[int, str]  # the shipped character of every uncontrolled link
    group_links: dict[str, list[int]]  # signal group -> its link indices
    green_idx: list[int]  # phases with some green and no yellow

    def greens_in(self, k: int) -> frozenset[str]:
        """The groups green in phase ``k``."""
        return frozenset(g for g, links in self.group_links.items() if self.states[k][links[0]] in GREEN_CHARS)


def _read_program(program: sumolib.net.TLSProgram) -> _Program:
    """Links showing the same character in every phase form one group (one signal head drives
    them); links never green or ever off / a stop sign keep their shipped character."""
    phases = program.getPhases()
    states = [ph.state for ph in phases]
    n_links = len(states[0])
    if any(len(s) != n_links for s in states):
        raise ModelError("phase state strings differ in length")
    columns = ["".join(s[i] for s in states) for i in range(n_links)]
    link_groups: list[str | None] = []
    constant: dict[int, str] = {}
    group_links: dict[str, list[int]] = {}
    by_column: dict[str, str] = {}
    for i, col in enumerate(columns):
        if not (set(col) & GREEN_CHARS) or set(col) & UNCONTROLLED:
            link_groups.append(None)
            constant[i] = col[0]
            continue
        gid = by_column.setdefault(col, f"sg{i}")
        link_groups.append(gid)
        group_links.setdefault(gid, []).append(i)
    if not group_links:
        raise ModelError("no signalled links")
    green_idx = [k for k, s in enumerate(states) if "y" not in s and set(s) & GREEN_CHARS]
    return _Program(phases, states, link_groups, constant, group_links, green_idx)


def _stages(p: _Program) -> tuple[dict[frozenset[str], str], dict[str, dict[str, str]], list[StagePhase]]:
    """Stages (green groups -> stage id; duplicate phases share one), each stage's green
    characters (``G`` or permissive ``g``, what SUMO needs to drive it) and the fixed plan."""
    stages: dict[frozenset[str], str] = {}
    green_chars: dict[str, dict[str, str]] = {}
    plan: list[StagePhase] = []
    for k in p.green_idx:
        green_groups = p.greens_in(k)
        if not green_groups:
            continue
        sid = stages.setdefault(green_groups, f"p{k}")
        green_chars.setdefault(sid, {g: p.states[k][p.group_links[g][0]] for g in green_groups})
        plan.append(StagePhase(sid, float(p.phases[k].duration)))
    if len(stages) < 2:
        raise ModelError("fewer than two distinct green stages")
    return stages, green_chars, plan


def _conflicts(p: _Program, conn_by_link: Mapping[int, list[Connection]]) -> set[frozenset[str]]:
    """Group pairs with foe links that the program never shows green together."""
    foes = _foe_pairs(p.group_links, conn_by_link)
    together = {frozenset((a, b)) for k in p.green_idx for a in p.greens_in(k) for b in p.greens_in(k) if a != b}
    return {frozenset(pair) for pair in foes} - together


def _intergreens(
    conflicts: set[frozenset[str]], yellow: Mapping[str, float], gaps: Mapping[tuple[str, str], float]
) -> dict[tuple[str, str], float]:
    """Both directions of every conflict: the program's shortest gap, never below the clearing
    group's yellow (3 s when the program shows it none)."""
    intergreen = {}
    for pair in conflicts:
        a, b = sorted(pair)
        for c, e in ((a, b), (b, a)):
            intergreen[(c, e)] = max(yellow.get(c, 3.0), gaps.get((c, e), 0.0))
    return intergreen


def _clearances(
    phases: Sequence[sumolib.net.Phase],
    green_idx: Sequence[int],
    greens_in: Callable[[int], frozenset[str]],
    group_links: Mapping[str, list[int]],
) -> tuple[dict[str, float], dict[tuple[str, str], float]]:
    """Shortest yellow per group and shortest clearing->entering gap per group pair, from the program."""
    n = len(phases)
    yellow: dict[str, float] = {}
    gaps: dict[tuple[str, str], float] = {}
    for pos, k in enumerate(green_idx):
        nxt = green_idx[(pos + 1) % len(green_idx)]
        between = [(k + j) % n for j in range(1, (nxt - k) % n or n)]
        gap = sum(float(phases[j].duration) for j in between)
        here, there = greens_in(k), greens_in(nxt)
        for g in here - there:
            y = sum(float(phases[j].duration) for j in between if phases[j].state[group_links[g][0]] == "y")
            if y > 0:
                yellow[g] = min(yellow.get(g, y), y)
            for e in there - here:
                gaps[(g, e)] = min(gaps.get((g, e), gap), gap)
    return yellow, gaps


def _connections(tls: sumolib.net.TLS) -> dict[int, list[Connection]]:
    """sumolib connection objects per link index (they know their junction and foes)."""
    out: dict[int, list[Connection]] = defaultdict(list)
    for in_lane, out_lane, idx in tls.getConnections():
        for conn in in_lane.getOutgoing():
            if conn.getToLane() is out_lane and conn.getTLLinkIndex() == idx:
                out[idx].append(conn)
    return out


def _foe_pairs(group_links: Mapping[str, list[int]], conns: Mapping[int, list[Connection]]) -> set[tuple[str, str]]:
    index: dict[int, tuple[Node, int]] = {}
    for idx, cs in conns.items():
        for c in cs:
            node = c.getJunction()
            index.setdefault(idx, (node, node.getLinkIndex(c)))
    pairs = set()
    names = sorted(group_links)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            if any(_foes(index.get(la), index.get(lb)) for la in group_links[a] for lb in group_links[b]):
                pairs.add((a, b))
    return pairs


def _foes(ja: tuple[Node, int] | None, jb: tuple[Node, int] | None) -> bool:
    if ja is None or jb is None or ja[1] < 0 or jb[1] < 0:
        return True  # unknown: treat the program's separation as the rule
    (na, ia), (nb, ib) = ja, jb
    if na is not nb:
        return True  # different junctions of a clustered signal: no matrix covers the pair
    try:
        return bool(na.areFoes(ia, ib) or na.areFoes(ib, ia))
    except (KeyError, IndexError):
        return True


def _kind(links: list[int], conns: Mapping[int, list[Connection]]) -> GroupKind:
    for idx in links:
        for c in conns.get(idx, []):
            if c.getFromLane().getEdge().getFunction() in ("walkingarea", "crossing"):
                return "pedestrian"
    return "vehicle"


def _lane_areas(
    conns: Mapping[int, list[Connection]], link_groups: list[str | None]
) -> tuple[tuple[LaneArea, ...], dict[str, tuple[str, str]]]:
    """One lane area per (approach lane, signal group) measured by the lane's detector, plus exits."""
    feeds: dict[tuple[str, str], set[str]] = defaultdict(set)
    detectors: dict[str, tuple[str, str]] = {}
    length: dict[str, float] = {}
    zone: dict[str, str] = {}
    for idx, cs in conns.items():
        group = link_groups[idx] if idx < len(link_groups) else None
        for c in cs:
            in_lane, out_lane = c.getFromLane(), c.getToLane()
            if in_lane.getEdge().getFunction() or group is None:
                continue  # walking areas / crossings carry no vehicle detectors
            din = detector_id("in", in_lane.getID())
            dout = detector_id("out", out_lane.getID())
            detectors[din] = (in_lane.getID(), "in")
            detectors[dout] = (out_lane.getID(), "out")
            length[din], length[dout] = zone_length_m(in_lane, "in"), zone_length_m(out_lane, "out")
            zone[din], zone[dout] = zone_id(in_lane, "in"), zone_id(out_lane, "out")
            feeds[(din, group)].add(dout)
    exits = sorted({d for d, (_, kind) in detectors.items() if kind == "out"})
    lanes = [LaneArea(id=d, group=None, length_m=round(length[d], 2), zone=zone[d]) for d in exits]
    for (din, group), outs in sorted(feeds.items()):
        lanes.append(
            LaneArea(
                id=f"{din}@{group}",
                group=group,
                downstream=tuple(sorted(outs)),
                detector=din,
                length_m=round(length[din], 2),
                zone=zone[din],
            )
        )
    return tuple(lanes), detectors


def detection_zone(lane: sumolib.net.lane.Lane, upstream: bool) -> list[sumolib.net.lane.Lane]:
    """The lanes a detection zone covers, in driving order, ending (approach) or starting (exit)
    at ``lane``: a stub (shorter than ``STUB_M``) is extended to ``APPROACH_M`` while exactly one
    lane continues it through a junction that has no traffic light; other lanes are their own zone."""
    chain = [lane]
    length = lane.getLength()
    if length >= STUB_M:
        return chain
    while length < APPROACH_M - 1e-6 and len(chain) < 8:
        end = chain[0] if upstream else chain[-1]
        node = end.getEdge().getFromNode() if upstream else end.getEdge().getToNode()
        if node.getType() == "traffic_light" or "traffic_light" in node.getType():
            break
        nxt = [x for x in (end.getIncoming() if upstream else end.getOutgoingLanes()) if not x.getID().startswith(":")]
        if len(nxt) != 1 or nxt[0] in chain:
            break
        chain = [nxt[0], *chain] if upstream else [*chain, nxt[0]]
        length += nxt[0].getLength()
    return chain


def zone_id(lane: sumolib.net.lane.Lane, kind: str) -> str:
    """The name of the road a detection zone covers: its lanes in driving order (``_at_most_64``).
    An exit zone starting at a signal and an approach zone ending at the next one get
    the same name exactly when both cover the whole link between them, i.e. see the same vehicles."""
    chain = detection_zone(lane, upstream=kind == "in")
    raw = "+".join(x.getID() for x in chain)
    if sum(x.getLength() for x in chain) > APPROACH_M:  # the detector covers one end of the road only
        raw += f"@{'end' if kind == 'in' else 'start'}"
    return _at_most_64("", raw)


def zone_length_m(lane: sumolib.net.lane.Lane, kind: str) -> float:
    """Length of the detection zone of an approach (``kind`` "in") or exit ("out") lane: its
    ``detection_zone`` up to ``APPROACH_M`` (what ``loop.write_detectors`` places on the map)."""
    return min(APPROACH_M, sum(x.getLength() for x in detection_zone(lane, upstream=kind == "in")))
