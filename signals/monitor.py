"""Independent safety monitor of the signal states actually shown, step by step.

The validator judges plans; this judges the street: whatever drove the signal (an adapter, a
fallback, a bug), the monitor re-checks the applied states against the same rules - conflicting
greens, intergreens (and a group's yielding clearance, when its green ended while it only
yielded), yellow and red-yellow order and duration, minimum green, maximum wait - and
``leitstand sumo eval`` reports its count as ``safety_violations``.

The monitor sees groups, not stages: whether a group only yielded when its green ended is read
from the groups green just before, as the largest stage among them that holds it; when none
does (a combination no stage shows) or two such stages disagree, it counts as yielded, the
stricter reading.
"""

from __future__ import annotations

from collections.abc import Mapping

from signals.model import Intersection
from signals.timeline import EPS, SignalState
from signals.validator import Violation

R, RY, G, Y = SignalState.RED, SignalState.RED_YELLOW, SignalState.GREEN, SignalState.YELLOW


class SafetyMonitor:
    def __init__(self, intersection: Intersection) -> None:
        self.intersection = intersection
        self._state: dict[str, SignalState] = {}
        self._since: dict[str, float] = {}
        self._green_end: dict[str, float] = {}
        #: the groups whose green ended while they only yielded (their clearance holds)
        self._yielded: set[str] = set()
        self._wait_flagged: set[str] = set()
        self._first_seen = 0.0
        self.violations: list[Violation] = []

    def observe(self, t: float, states: Mapping[str, SignalState]) -> list[Violation]:
        """Record the states shown from ``t`` on; returns the violations this step revealed."""
        intersection, found = self.intersection, []
        before = frozenset(g for g, s in self._state.items() if s is G)
        # a group not in ``states`` still shows what it showed: the street is judged whole
        shown = {**self._state, **states}
        greens = sorted(g for g, s in shown.items() if s is G)
        for i, a in enumerate(greens):
            for b in greens[i + 1 :]:
                if intersection.conflicting(a, b):
                    found.append(Violation("conflicting_greens", f"{a}/{b}", t, "shown green together"))
        # greens that end now first: an entering group's intergreen is measured from them, so a
        # group listed before the one it clears for must not be judged against the old state
        ending = [g for g, new in states.items() if self._state.get(g) is G and new is not G]
        for g, new in [(g, states[g]) for g in ending] + [(g, n) for g, n in states.items() if g not in ending]:
            old = self._state.get(g)
            if old is None:
                self._state[g], self._since[g] = new, t
                self._first_seen = t
                continue
            grp = intersection.groups[g]
            if new is not old:
                held = t - self._since[g]
                if old is G:
                    self._yielded.discard(g)
                    if grp.yielding_clearance_s is not None and self._only_yielded(g, before):
                        self._yielded.add(g)
                found += self._change(g, old, new, held, t, grp.yellow_s, grp.red_yellow_s, grp.min_green_s)
                self._state[g], self._since[g] = new, t
                if new is G:
                    self._wait_flagged.discard(g)
            if new is not G and g not in self._wait_flagged and t - self._since_green(g) > intersection.group_max_wait_s(g) + EPS:
                self._wait_flagged.add(g)
                found.append(Violation("max_wait", g, t, f"not green for more than {intersection.group_max_wait_s(g):g} s"))
        self.violations += found
        return found

    def _only_yielded(self, g: str, greens: frozenset[str]) -> bool:
        """Did ``g`` only yield in the stage shown while ``greens`` were green (the largest stage
        among them holding ``g``)? Unknown or ambiguous counts as yielded."""
        fits = [s for s in self.intersection.stages if g in s.groups and s.groups <= greens]
        if not fits:
            return True
        largest = max(len(s.groups) for s in fits)
        return any(g in s.yielding for s in fits if len(s.groups) == largest)

    def _since_green(self, g: str) -> float:
        if self._state[g] is G:
            return float("inf")
        return self._green_end.get(g, self._first_seen)

    def _change(
        self, g: str, old: SignalState, new: SignalState, held: float, t: float, yellow_s: float, red_yellow_s: float, min_green_s: float
    ) -> list[Violation]:
        out = []
        legal = {R: RY if red_yellow_s > 0 else G, RY: G, G: Y if yellow_s > 0 else R, Y: R}
        if new is not legal[old]:
            out.append(Violation("signal_sequence", g, t, f"{old.value} followed by {new.value}"))
        if old is Y and held < yellow_s - EPS:
            out.append(Violation("yellow_duration", g, t, f"yellow {held:g} s < {yellow_s:g} s"))
        if old is RY and held < red_yellow_s - EPS:
            out.append(Violation("red_yellow_duration", g, t, f"red-yellow {held:g} s < {red_yellow_s:g} s"))
        if old is G:
            self._green_end[g] = t
            if held < min_green_s - EPS:
                out.append(Violation("min_green", g, t, f"green {held:g} s < {min_green_s:g} s"))
        if new is G:
            for (c, e), ig in self.intersection.intergreen_s.items():
                if e != g or c not in self._green_end or self._state.get(c) is G:
                    continue
                own = self.intersection.groups[c].yielding_clearance_s
                need = max(ig, own) if own is not None and c in self._yielded else ig
                if t - self._green_end[c] < need - EPS:
                    why = " (its turners may still wait inside: it only yielded)" if need > ig else ""
                    out.append(Violation("intergreen", f"{c}->{g}", t, f"{t - self._green_end[c]:g} s < {need:g} s{why}"))
        return out
