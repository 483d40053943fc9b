"""Advisory mode for the acyclic controllers: a person approves a period, not each window.

max-pressure and leitstand decide every second or two, and each decision is a window of a few
seconds. Proposed one by one they came at 1,100-2,800 an hour per intersection (stop 49, a
simulated operator in SUMO), each stale before anyone could read it: the "needs approval" hold
that ARCHITECTURE.md promises for *any* intersection was unusable for the controllers most
intersections run. Cycle plans standing in for them were tried first (stop 50: the program's
cycle, its greens re-split by Webster for the counted flows, within 25 %): approved by a
simulated operator they gave 1.03-1.05 of fixed time's delay on the three small development
maps, so a person who followed that advice made the street slightly worse.

So in advisory mode such an intersection asks for a **mandate**: "let leitstand drive K101 for
the next 15 minutes", with what it would do now and why. Nothing but the fixed program drives
until a person approves; once approved, the controller's decisions drive as in automatic mode
(every one still passes the safety validator, is explained and audited) until the mandate ends,
and the fixed program takes over again unless a renewal was approved. A renewal is asked for in
the last ``approval_timeout_s`` of a mandate; a request nobody approves is not repeated for
``ASK_EVERY_S``. Leaving advisory mode ends the mandate.
"""

from __future__ import annotations

from dataclasses import replace

from signals.explain import StageDecision

#: how long an approval lets an acyclic controller drive (a control-room shift's attention span
#: for one junction; traffic-responsive plan selection changes plans at 5-15 minutes)
MANDATE_S = 900.0

#: at most one request per intersection in this long (an ignored request is not repeated sooner)
ASK_EVERY_S = 300.0


def mandate_request(decision: StageDecision, intersection_id: str, controller: str) -> StageDecision:
    """``decision`` as the proposal a person approves: its explanation says what approving means
    and keeps what the controller would do now and why."""
    own = decision.explanation
    effect = (
        f"approve to let {controller} drive {intersection_id} for {MANDATE_S / 60:g} min "
        f"(advisory mode: it decides second by second, too often to approve one by one; each of its plans is still "
        f"checked by the safety validator and logged; the fixed program drives again afterwards); now: {own.expected_effect}"
    )
    return replace(decision, explanation=replace(own, expected_effect=effect))
