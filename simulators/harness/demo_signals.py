"""The demo's signal control: the city's junctions configured on the control worker, its drive
messages fed back into the city (closed loop), a simulated operator for the advisory junctions,
and the figures the report shows.

* every junction gets a ``signals.config`` record (its model from
  ``simulators.city.signal_plans.junction_model``, controller ``webster``); ``ADVISORY_COUNT`` of
  them in mode ``advisory``, the rest ``automatic``;
* the demo reads ``signals.plans``: each frame's drive message (``active`` / ``fallback`` /
  ``fixed``) sets that junction's green shares in the city's :class:`ClosedLoop` for the next
  frames (the city never waits: no message, the last shares stay); ``pending`` proposals go to
  the simulated operator, who approves about half of them over the worker's HTTP API and lets
  the others expire;
* :meth:`SignalDemo.summary` is what ``summary.json`` and the report show per junction: mode,
  decisions per rule with a few explained examples, proposals approved / expired, and the delay
  against the shadow fixed-time queue (vehicle-hours).

Why Webster and not ``leitstand``: the city's point-queue model steps once per detector frame
(60 s) and knows green only as a share of the cycle; a cyclic plan maps onto that exactly. The
acyclic controllers decide every second on second-by-second lane-area counts; fed one frame a
minute they hold one stage for the whole minute (in process on 6 junctions, seed 3, 5 hours:
leitstand 2.5-3.7 x the fixed-time delay, Webster 0.61-0.84 x). Advisory mode suits cyclic
controllers too (docs/signals.md).
"""

from __future__ import annotations

import json
import random
import urllib.error
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from simulators.city.signal_plans import ClosedLoop, junction_model
from simulators.city.traffic import GridJunction
from streams.records import IntersectionConfig, SignalPlanMessage
from streams.signal_codec import decision_from_message

CONTROLLER = "webster"
#: advisory junctions: the operator has to approve Webster's re-timings there
ADVISORY_COUNT = 2
#: share of proposals the simulated operator approves (the others expire)
APPROVE_SHARE = 0.5
#: wall seconds the operator takes to approve
APPROVE_DELAY_S = (0.3, 1.5)
DRIVE_STATUSES = ("active", "fallback", "fixed")
EXAMPLES = 3


def advisory_junctions(grid: list[GridJunction]) -> tuple[str, ...]:
    """The second junction and the second-to-last one (one of them if the grid is small): a
    side-road crossing and one near the stadium, so both kinds are seen; none for one junction."""
    ids = [j.intersection_id for j in grid]
    if len(ids) < 2:
        return ()
    picks = [ids[1], ids[-2]] if len(ids) >= 4 else [ids[0]]
    return tuple(dict.fromkeys(picks))[:ADVISORY_COUNT]


def approval_timeout_s(speed: float) -> float:
    """Simulated seconds a proposal waits for approval: at least 10 minutes, and at least 6 wall
    seconds at the demo's speed, so the operator's delay fits in it."""
    return max(600.0, 6.0 * speed)


def signal_configs(
    grid: list[GridJunction], *, session: str, advisory: tuple[str, ...], speed: float, at: datetime
) -> list[IntersectionConfig]:
    """One ``signals.config`` record per junction."""
    return [
        IntersectionConfig(
            schema_version=1,
            event_time=at,
            intersection_id=j.intersection_id,
            model=junction_model(j),
            controller=CONTROLLER,
            mode="advisory" if j.intersection_id in advisory else "automatic",
            session=session,
            approval_timeout_s=approval_timeout_s(speed),
        )
        for j in grid
    ]


@dataclass
class _Junction:
    mode: str
    frames: int = 0  # drive messages: one per frame the worker processed
    statuses: Counter[str] = field(default_factory=Counter)
    changes: int = 0  # drive messages with another plan (phases or rule) than the one before
    rules: Counter[str] = field(default_factory=Counter)  # per decision (plan change or proposal)
    examples: dict[str, dict[str, Any]] = field(default_factory=dict)  # the first decision of each rule
    last: dict[str, Any] | None = None  # the latest decision
    driven: tuple[Any, ...] | None = None  # (status, rule, phases) of the last drive message
    proposals: int = 0
    retired: Counter[str] = field(default_factory=Counter)  # approved / rejected / expired
    approvals_sent: int = 0
    approvals_answered: Counter[int] = field(default_factory=Counter)  # HTTP status of the operator's requests


@dataclass
class SignalDemo:
    """The demo's side of the closed loop (no I/O of its own but :func:`approve`)."""

    loop: ClosedLoop
    modes: dict[str, str]
    session: str
    rng: random.Random
    junctions: dict[str, _Junction] = field(init=False)
    foreign: int = 0  # messages of another session (a previous run on the same topics)

    def __post_init__(self) -> None:
        self.junctions = {iid: _Junction(mode) for iid, mode in self.modes.items()}

    @classmethod
    def for_grid(cls, grid: list[GridJunction], session: str, rng: random.Random) -> SignalDemo:
        advisory = advisory_junctions(grid)
        modes = {j.intersection_id: ("advisory" if j.intersection_id in advisory else "automatic") for j in grid}
        return cls(ClosedLoop.for_grid(grid), modes, session, rng)

    def on_plan(self, msg: SignalPlanMessage) -> bool:
        """Book one ``signals.plans`` message; a drive message steers the city. True when it is a
        proposal the operator will approve."""
        j = self.junctions.get(msg.intersection_id)
        if j is None or msg.session != self.session:
            self.foreign += 1
            return False
        if msg.status in DRIVE_STATUSES:
            j.frames += 1
            j.statuses[msg.status] += 1
            phases = [(p.stage, p.green_s) for p in msg.phases]
            self.loop.apply(msg.intersection_id, phases, msg.cyclic)
            # a decision: another plan or rule than the frame before (Webster's plan moves its
            # origin every cycle, so 'changed' alone would count every frame); in advisory mode
            # the decisions are the proposals, and a new plan driven is an approval, not counted again
            driven = (msg.status, msg.rule, tuple(phases))
            if driven != j.driven and msg.status != "fixed" and j.mode != "advisory":
                self._decision(j, msg)
            j.driven = driven
            return False
        if msg.status == "pending":
            j.proposals += 1
            self._decision(j, msg)
            return self.rng.random() < APPROVE_SHARE
        j.retired[msg.status] += 1
        return False

    def _decision(self, j: _Junction, msg: SignalPlanMessage) -> None:
        j.changes += msg.status != "pending"
        j.rules[msg.rule] += 1
        example = {
            "time": msg.event_time.isoformat(),
            "status": msg.status,
            "rule": msg.rule,
            "plan": ", ".join(f"{p.stage} {p.green_s:g} s" for p in msg.phases),
            "summary": decision_from_message(msg).explanation.summary(),
        }
        j.examples.setdefault(msg.rule, example)
        j.last = example

    def decisions(self) -> int:
        return sum(sum(j.rules.values()) for j in self.junctions.values())

    def status_line(self) -> str:
        retired: Counter[str] = Counter()
        for j in self.junctions.values():
            retired.update(j.retired)
        frames = sum(j.frames for j in self.junctions.values())
        return (
            f"{self.decisions():,} by {CONTROLLER} ({frames:,} frames answered, {len(self.junctions)} junctions); "
            f"proposals approved {retired['approved']}, expired {retired['expired']}"
        )

    def summary(self) -> dict[str, Any]:
        delays = self.loop.delays()
        out: dict[str, Any] = {}
        for iid, j in self.junctions.items():
            out[iid] = {
                "mode": j.mode,
                "controller": CONTROLLER,
                "frames_answered": j.frames,
                "drive_statuses": dict(j.statuses),
                "decisions": sum(j.rules.values()),
                "plan_changes": j.changes,
                "rules": dict(j.rules.most_common()),
                "examples": _examples(j),
                **(
                    {
                        "proposals": j.proposals,
                        "approved": j.retired["approved"],
                        "expired": j.retired["expired"],
                        "rejected": j.retired["rejected"],
                        "pending_at_end": j.proposals - sum(j.retired.values()),
                        "operator_approvals_sent": j.approvals_sent,
                        # 404: the proposal had expired or been superseded before the approval reached the worker
                        "operator_http_status": {str(k): v for k, v in sorted(j.approvals_answered.items())},
                    }
                    if j.mode == "advisory"
                    else {}
                ),
                "delay": delays.get(iid),
            }
        controlled = sum(d["controlled_veh_h"] for d in delays.values())
        fixed = sum(d["fixed_veh_h"] for d in delays.values())
        return {
            "controller": CONTROLLER,
            "session": self.session,
            "plans_applied_to_city": self.loop.applied,
            "plans_ignored": self.loop.ignored,
            "foreign_messages": self.foreign,
            "delay_controlled_veh_h": round(controlled, 2),
            "delay_fixed_veh_h": round(fixed, 2),
            "delay_ratio": round(controlled / fixed, 3) if fixed > 0 else None,
            "intersections": out,
        }


def _examples(j: _Junction) -> list[dict[str, Any]]:
    """The first decision of each rule (most frequent rules first) and the latest, at most ``EXAMPLES``."""
    out = [j.examples[r] for r, _ in j.rules.most_common() if r in j.examples][: EXAMPLES - 1]
    if j.last is not None and j.last not in out:
        out.append(j.last)
    return out


def approve(web_port: int, token: str, intersection_id: str, plan_id: str) -> int:
    """The operator's approval over the control worker's HTTP API; the HTTP status (0: no answer)."""
    return post_as_operator(web_port, token, f"/signals/{intersection_id}/plans/{plan_id}/approve", {"actor": "demo-duty-operator"})


def post_as_operator(web_port: int, token: str, path: str, body: dict[str, str]) -> int:
    """One POST of the demo's duty operator to a worker's HTTP API (loopback, API token); the
    HTTP status, 0 when nothing answered."""
    req = urllib.request.Request(
        f"http://127.0.0.1:{web_port}{path}",
        method="POST",
        data=json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(req, timeout=5) as r:  # loopback only
            return int(r.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except OSError:
        return 0
