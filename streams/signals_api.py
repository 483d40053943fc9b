"""HTTP API for signal operators: list pending proposals, approve / reject one, change a mode.

``GET /signals/plans?status=pending`` needs no token (a wall display may poll it); every change
needs ``Authorization: Bearer <LEITSTAND_API_TOKEN>`` (the alerts API's rule and helper; without a
configured token changes are refused). A change is published as a ``SignalCommand`` on
``signals.approvals`` (the audit trail of human actions) and applied by the control agent
moments later, so the answer is ``202 Accepted``; the agent writes the outcome to
``signals.plans`` and ``signals.audit``. The checks here (404 unknown intersection or plan, 409
wrong mode, 400 bad body) read this worker's control state; the agent checks again when it
applies the command and audits a refusal (``command_refused``) if the state moved in between.
"""

from __future__ import annotations

import time
from datetime import datetime, timezone
from typing import Any

import faust
import msgspec
from faust.web import Request, Response, View

from signals.control import MODES

from .agents.signal_control import SignalControls
from .alerts_api import authorised
from .records import SignalCommand
from .settings import Settings

STATUSES = ("pending",)


def register(app: faust.App, settings: Settings, controls: SignalControls) -> None:
    desk = controls.desk

    @app.page("/signals/plans")
    class Plans(View):
        async def get(self, request: Request) -> Response:
            status = request.query.get("status", "pending")
            if status not in STATUSES:
                return self.json({"error": f"status must be one of {', '.join(STATUSES)}"}, status=400)
            found = [msgspec.to_builtins(m) for m in desk.pending_messages()]
            return self.json({"plans": found, "count": len(found)})

    async def body_of(view: View, request: Request) -> tuple[dict[str, Any] | None, Response | None]:
        if settings.api_token is None:
            return None, view.json({"error": "no API token configured (LEITSTAND_API_TOKEN); changes are refused"},
                                   status=403)
        if not authorised(settings, request.headers.get("Authorization")):
            return None, view.json({"error": "missing or wrong bearer token"}, status=401)
        try:
            body = await request.json() if request.can_read_body else {}
        except ValueError:
            return None, view.json({"error": "body must be JSON"}, status=400)
        if not isinstance(body, dict):
            return None, view.json({"error": "body must be a JSON object"}, status=400)
        return body, None

    async def submit(view: View, body: dict[str, Any], **fields: Any) -> Response:
        actor = str(body.get("actor") or body.get("by") or "api")[:64]
        reason = body.get("reason") or ""
        if not isinstance(reason, str):
            return view.json({"error": "reason must be a string"}, status=400)
        try:
            cmd = SignalCommand(schema_version=1, event_time=datetime.fromtimestamp(time.time(), tz=timezone.utc),
                                actor=actor, reason=reason[:500], **fields)
        except (ValueError, TypeError) as exc:
            return view.json({"error": str(exc)}, status=400)
        await controls.submit(cmd)
        return view.json({"accepted": cmd.action, **fields, "actor": actor}, status=202)

    async def decide(view: View, request: Request, intersection: str, plan_id: str, action: str) -> Response:
        body, refused = await body_of(view, request)
        if refused is not None:
            return refused
        assert body is not None
        if not desk.known(intersection):
            return view.json({"error": "no such intersection", "intersection": intersection}, status=404)
        slot = desk.slot(intersection)
        if slot is not None and slot.control.mode != "advisory":
            return view.json({"error": f"intersection is in mode {slot.control.mode}, not advisory",
                              "intersection": intersection}, status=409)
        if slot is None or plan_id not in slot.control.pending:
            return view.json({"error": "no such pending plan (unknown, decided or expired)", "plan_id": plan_id},
                             status=404)
        return await submit(view, body, intersection_id=intersection, action=action, plan_id=plan_id)

    @app.page("/signals/{intersection}/plans/{plan_id}/approve")
    class Approve(View):
        async def post(self, request: Request, intersection: str, plan_id: str) -> Response:
            return await decide(self, request, intersection, plan_id, "approve")

    @app.page("/signals/{intersection}/plans/{plan_id}/reject")
    class Reject(View):
        async def post(self, request: Request, intersection: str, plan_id: str) -> Response:
            return await decide(self, request, intersection, plan_id, "reject")

    @app.page("/signals/{intersection}/mode")
    class Mode(View):
        async def post(self, request: Request, intersection: str) -> Response:
            body, refused = await body_of(self, request)
            if refused is not None:
                return refused
            assert body is not None
            mode = body.get("mode")
            if mode not in MODES:
                return self.json({"error": f"mode must be one of {', '.join(MODES)}"}, status=400)
            if not desk.known(intersection):
                return self.json({"error": "no such intersection", "intersection": intersection}, status=404)
            return await submit(self, body, intersection_id=intersection, action="set_mode", mode=mode)
