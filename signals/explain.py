"""Explanations and decisions: what a controller decided, why, and what it expects.

Automated signal decisions are high-risk under the EU AI Act (Annex III), so every decision
carries the measured inputs that drove it, the controller and its version, the rule that fired
and the expected effect, in words an operator can read on a dashboard.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from signals.model import SignalPlan


@dataclass(frozen=True)
class Explanation:
    controller: str
    version: str
    rule: str
    #: the measured inputs that drove the rule, e.g. ("pressure.A", 12.0), ("flow_vph.N_in", 540.0)
    inputs: tuple[tuple[str, float], ...]
    expected_effect: str
    #: detectors whose readings were degraded when this decision was made, with their issues
    #: (``stuck``, ``missing``, ``out_of_range``; ``signals.desk`` fills it from
    #: ``detection.data_quality``): an auditor must see that a decision rested on doubtful data
    degraded: tuple[tuple[str, tuple[str, ...]], ...] = ()

    def summary(self) -> str:
        """One operator-readable line: controller, rule, the top inputs and the expected effect,
        and a warning when the inputs were degraded."""
        shown = ", ".join(f"{k}={v:g}" for k, v in self.inputs[:6])
        more = f" (+{len(self.inputs) - 6} more)" if len(self.inputs) > 6 else ""
        line = f"[{self.controller} {self.version}] {self.rule}: {shown}{more} -> {self.expected_effect}"
        if self.degraded:
            line += " [degraded inputs: " + "; ".join(f"{d} {'+'.join(issues)}" for d, issues in self.degraded) + "]"
        return line

    def to_dict(self) -> dict[str, Any]:
        """JSON form; ``degraded_inputs`` only when there were any (clean decisions look as before)."""
        out: dict[str, Any] = {
            "controller": self.controller,
            "version": self.version,
            "rule": self.rule,
            "inputs": dict(self.inputs),
            "expected_effect": self.expected_effect,
            "summary": self.summary(),
        }
        if self.degraded:
            out["degraded_inputs"] = {d: list(issues) for d, issues in self.degraded}
        return out


@dataclass(frozen=True)
class StageDecision:
    """A controller's output: the plan to drive and its explanation."""

    intersection_id: str
    time_s: float
    plan: SignalPlan
    explanation: Explanation
    #: wall time (s) at which the plan's time 0 lies: the start of the first phase's green. A
    #: signal adapter drives ``build_timeline(plan).state_at(group, t - origin_s)``.
    origin_s: float = 0.0

    @property
    def controller(self) -> str:
        return self.explanation.controller

    def to_dict(self) -> dict[str, Any]:
        return {
            "intersection_id": self.intersection_id,
            "time_s": self.time_s,
            "origin_s": self.origin_s,
            "cyclic": self.plan.cyclic,
            "phases": [{"stage": p.stage, "green_s": p.green_s} for p in self.plan.phases],
            "explanation": self.explanation.to_dict(),
        }
