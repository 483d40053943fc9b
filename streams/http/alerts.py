"""HTTP API for the people on duty: list open alarms, acknowledge, resolve.

Every call needs ``Authorization: Bearer <token>`` (streams/http/auth.py, exact bytes, constant
time): ``GET /alerts`` the API token or the read-only ``LEITSTAND_API_READ_TOKEN`` (the list
names operators and carries their notes), changes the API token. Without a configured token
the call is refused (403): an alarm system must not accept anonymous resolutions, nor show its
books to whoever reaches the port. The API is described in docs/openapi.yaml.

A per-user token of the console (``leitstand users token NAME``) also works, for its user's role:
the change is recorded as that user. With the shared token the actor is ``machine-token`` and a
``by`` in the body is kept only as a claim (``claimed_by``, and ahead of the note; streams/http/auth.py).

A change is written to ``alerts.acks`` (the audit trail of human actions) and applied by the
alarm books agent moments later, so the answer is ``202 Accepted`` with the command sent.
Reads come from the books this worker holds (run one worker, or put a router in front).
"""

from __future__ import annotations

import time
from datetime import datetime, timezone
from typing import Any

import faust
from faust.web import Request, Response, View

from ..agents.alarm_lifecycle import AlarmBooks, alarm_json
from ..records import AlertAction, AlertCommand
from ..settings import Settings
from .auth import ApiAuth, Refused, actor, free_text, only_fields, query_choice, read_json_object, recorded

STATES = ("open", "raised", "acknowledged", "escalated")
#: what a change body may hold
CHANGE_FIELDS = ("by", "note")


def refusal(view: View, refused: Refused) -> Response:
    """The JSON answer to a refused request (both APIs)."""
    return view.json({"error": refused.error}, status=refused.status, headers=refused.headers or None)


def register(app: faust.App, settings: Settings, books: AlarmBooks) -> None:
    auth = ApiAuth.from_settings(settings)

    def listing(request: Request) -> dict[str, Any]:
        auth.check(request.headers.get("Authorization"), "read")
        state = query_choice(request.query, "state", STATES)
        chosen = [a for a in books.all_alarms() if state == "open" or a.state == state]
        chosen.sort(key=lambda a: (("critical", "major", "minor").index(a.severity), a.raised_at))
        found = [alarm_json(a) for a in chosen]
        return {"alerts": found, "count": len(found)}

    @app.page("/alerts")
    class Alerts(View):
        async def get(self, request: Request) -> Response:
            try:
                return self.json(listing(request))
            except Refused as refused:
                return refusal(self, refused)

    async def change(view: View, request: Request, alert_id: str, action: AlertAction) -> Response:
        try:
            who = auth.check(request.headers.get("Authorization"), "write", "alarm.ack" if action == "acknowledge" else "alarm.resolve")
            body = await read_json_object(request)
            only_fields(body, CHANGE_FIELDS)
            by, note, claimed = recorded(who, actor(body, "by", default=""), free_text(body, "note"))
        except Refused as refused:
            return refusal(view, refused)
        alarm, closed = books.find(alert_id)
        if alarm is None:
            return view.json(
                {"error": "alarm already resolved" if closed else "no such open alarm", "alert_id": alert_id}, status=409 if closed else 404
            )
        try:
            cmd = AlertCommand(
                schema_version=1,
                event_time=datetime.fromtimestamp(time.time(), tz=timezone.utc),
                alert_id=alert_id,
                action=action,
                by=by,
                note=note or None,
                claimed_by=claimed,
            )
        except ValueError as exc:
            return view.json({"error": str(exc)}, status=400)
        await books.submit(cmd)
        return view.json({"accepted": action, "alert_id": alert_id, "by": by, "state_before": alarm.state}, status=202)

    @app.page("/alerts/{alert_id}/ack")
    class Ack(View):
        async def post(self, request: Request, alert_id: str) -> Response:
            return await change(self, request, alert_id, "acknowledge")

    @app.page("/alerts/{alert_id}/resolve")
    class Resolve(View):
        async def post(self, request: Request, alert_id: str) -> Response:
            return await change(self, request, alert_id, "resolve")
