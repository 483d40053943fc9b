"""HTTP API for signal operators: list pending proposals, approve / reject one, change a mode.

Every call needs ``Authorization: Bearer <token>`` (streams/http/auth.py, the alerts API's rule):
``GET /signals/plans`` the API token or the read-only ``LEITSTAND_API_READ_TOKEN``, changes the
API token or a console user's token whose role may decide plans / change modes (recorded as that
user; the shared token is recorded as ``machine-token``, a written ``actor`` kept as a claim);
without a configured token the call is refused (403). A change is published as a ``SignalCommand`` on
``signals.approvals`` (the audit trail of human actions) and applied by the control agent
moments later, so the answer is ``202 Accepted``; the agent writes the outcome to
``signals.plans`` and ``signals.audit``. The checks here (404 unknown intersection or plan, 409
wrong mode, 400 bad body) read the control state of the worker that holds the intersection; the
agent checks again when it applies the command and audits a refusal (``command_refused``) if the
state moved in between.

With several control workers each holds the intersections of its partitions; whichever worker a
request reaches answers for all of them, as the alarm API does (streams/http/owners.py): a
change for an intersection another worker holds is forwarded to it (body and ``Authorization``
included) and its answer returned as it is; ``GET /signals/plans`` merges every worker's pending
proposals and names a worker that did not answer (``unreachable``). While a rebalance leaves the
holder unknown, a change for an intersection this worker does not hold is answered 503 with
``Retry-After`` rather than 404.
"""

from __future__ import annotations

import time
from datetime import datetime, timezone
from typing import Any

import faust
import msgspec
from faust.web import Request, Response, View

from signals.control import MODES

from ..agents.signal_control import SignalControls
from ..console.policy import Action
from ..records import SignalCommand
from ..settings import Settings
from .alerts import refusal
from .auth import ApiAuth, Refused, actor, free_text, only_fields, query_choice, read_json_object, recorded
from .owners import Owners, is_forwarded, merged_plans

STATUSES = ("pending",)
#: what a change body may hold (``by`` is accepted for ``actor``, as in the alerts API)
DECISION_FIELDS = ("actor", "by", "reason")
MODE_FIELDS = ("mode", *DECISION_FIELDS)


class SignalsApi:
    """The checks and the publishing behind the views; the views only route to it."""

    def __init__(self, settings: Settings, controls: SignalControls, owners: Owners | None = None) -> None:
        self.controls = controls
        self.desk = controls.desk
        self.auth = ApiAuth.from_settings(settings)
        #: who holds which intersection (None: this worker alone, nothing forwarded)
        self.owners = owners

    async def plans(self, view: View, request: Request) -> Response:
        try:
            self.auth.check(request.headers.get("Authorization"), "read")
            query_choice(request.query, "status", STATUSES)
        except Refused as refused:
            return refusal(view, refused)
        found = [msgspec.to_builtins(m) for m in self.controls.pending_messages()]
        if self.owners is None or is_forwarded(request):
            return view.json({"plans": found, "count": len(found)})
        others, unreachable = await self.owners.gather(request, "plans")
        plans = merged_plans([found, *others])
        return view.json({"plans": plans, "count": len(plans), "workers": 1 + len(others), "unreachable": unreachable})

    async def elsewhere(self, view: View, request: Request, intersection: str) -> Response | None:
        """The answer of the control worker holding ``intersection`` when it is another one (the
        request forwarded), a 503 while nobody can say and this worker does not hold it, or None:
        answer here."""
        if self.owners is None or is_forwarded(request) or self.desk.slot(intersection) is not None:
            return None
        owner = self.owners.owner(intersection)
        if owner is not None and owner != self.owners.own_url:
            return await self.owners.forward(view, request, owner, f"intersection {intersection}")
        if owner is None and self.owners.others():
            return view.json(
                {"error": "signal control is moving between workers; retry in a few seconds", "intersection": intersection},
                status=503,
                headers={"Retry-After": "5"},
            )
        return None

    async def body_of(self, view: View, request: Request, fields: tuple[str, ...], action: Action) -> dict[str, Any] | Response:
        """The authorised change's body (a JSON object of known fields) or the refusal to send.

        ``actor`` becomes the authenticated principal (a user, or ``machine-token``); a name the
        caller wrote is kept as ``claimed_by`` and ahead of the reason (streams/http/auth.py)."""
        try:
            who = self.auth.check(request.headers.get("Authorization"), "write", action)
            body = await read_json_object(request)
            only_fields(body, fields)
            claimed, text = actor(body, "actor", "by", default=""), free_text(body, "reason")
            body["actor"], reason, body["claimed_by"] = recorded(who, claimed, text)
            body["reason"] = reason or ""
        except Refused as refused:
            return refusal(view, refused)
        return body

    async def submit(self, view: View, body: dict[str, Any], **fields: Any) -> Response:
        try:
            cmd = SignalCommand(
                schema_version=1,
                event_time=datetime.fromtimestamp(time.time(), tz=timezone.utc),
                actor=body["actor"],
                reason=body["reason"],
                claimed_by=body["claimed_by"],
                **fields,
            )
        except (ValueError, TypeError) as exc:
            return view.json({"error": str(exc)}, status=400)
        await self.controls.submit(cmd)
        return view.json({"accepted": cmd.action, **fields, "actor": cmd.actor}, status=202)

    async def decide(self, view: View, request: Request, intersection: str, plan_id: str, action: str) -> Response:
        body = await self.body_of(view, request, DECISION_FIELDS, "plan.decide")
        if not isinstance(body, dict):  # a refusal (aiohttp's response, not faust.web.Response)
            return body
        if (answer := await self.elsewhere(view, request, intersection)) is not None:
            return answer
        if not self.desk.known(intersection):
            return view.json({"error": "no such intersection", "intersection": intersection}, status=404)
        slot = self.desk.slot(intersection)
        if slot is not None and slot.control.mode != "advisory":
            return view.json(
                {"error": f"intersection is in mode {slot.control.mode}, not advisory", "intersection": intersection}, status=409
            )
        if slot is None or plan_id not in slot.control.pending:
            return view.json({"error": "no such pending plan (unknown, decided or expired)", "plan_id": plan_id}, status=404)
        if self.desk.lapsed(intersection, plan_id, time.time()):
            error = "the proposal expired while no detector frames came: its data is older than its approval window"
            return view.json({"error": error, "plan_id": plan_id}, status=404)
        return await self.submit(view, body, intersection_id=intersection, action=action, plan_id=plan_id)

    async def set_mode(self, view: View, request: Request, intersection: str) -> Response:
        body = await self.body_of(view, request, MODE_FIELDS, "signal.mode")
        if not isinstance(body, dict):  # a refusal (aiohttp's response, not faust.web.Response)
            return body
        mode = body.get("mode")
        if mode not in MODES:
            return view.json({"error": f"mode must be one of {', '.join(MODES)}"}, status=400)
        if (answer := await self.elsewhere(view, request, intersection)) is not None:
            return answer
        if not self.desk.known(intersection):
            return view.json({"error": "no such intersection", "intersection": intersection}, status=404)
        return await self.submit(view, body, intersection_id=intersection, action="set_mode", mode=mode)


def register(app: faust.App, settings: Settings, controls: SignalControls) -> None:
    api = SignalsApi(settings, controls, Owners(app, controls.table))

    @app.page("/signals/plans")
    class Plans(View):
        async def get(self, request: Request) -> Response:
            return await api.plans(self, request)

    @app.page("/signals/{intersection}/plans/{plan_id}/approve")
    class Approve(View):
        async def post(self, request: Request, intersection: str, plan_id: str) -> Response:
            return await api.decide(self, request, intersection, plan_id, "approve")

    @app.page("/signals/{intersection}/plans/{plan_id}/reject")
    class Reject(View):
        async def post(self, request: Request, intersection: str, plan_id: str) -> Response:
            return await api.decide(self, request, intersection, plan_id, "reject")

    @app.page("/signals/{intersection}/mode")
    class Mode(View):
        async def post(self, request: Request, intersection: str) -> Response:
            return await api.set_mode(self, request, intersection)
