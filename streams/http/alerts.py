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
With several critical workers each holds the books of its partitions; whichever worker a
request reaches answers for all of them (streams/http/owners.py): a change is forwarded to the
worker holding the alarm's book, the listing merges every worker's books.
"""

from __future__ import annotations

import time
from datetime import datetime, timezone
from typing import Any

import faust
from faust.web import Request, Response, View

from detection.alarms import subject_of

from ..agents.alarm_lifecycle import AlarmBooks, alarm_json
from ..records import AlertAction, AlertCommand
from ..settings import Settings
from .auth import ApiAuth, Refused, actor, free_text, only_fields, query_choice, read_json_object, recorded
from .owners import Owners, is_forwarded, merged

STATES = ("open", "raised", "acknowledged", "escalated")
#: what a change body may hold
CHANGE_FIELDS = ("by", "note")


def refusal(view: View, refused: Refused) -> Response:
    """The JSON answer to a refused request (both APIs)."""
    return view.json({"error": refused.error}, status=refused.status, headers=refused.headers or None)


def register(app: faust.App, settings: Settings, books: AlarmBooks) -> None:
    auth = ApiAuth.from_settings(settings)
    owners = Owners(app, books.table)

    def local_listing(request: Request) -> list[dict[str, Any]]:
        auth.check(request.headers.get("Authorization"), "read")
        state = query_choice(request.query, "state", STATES)
        return [alarm_json(a) for a in books.all_alarms() if state == "open" or a.state == state]

    @app.page("/alerts")
    class Alerts(View):
        async def get(self, request: Request) -> Response:
            try:
                found = local_listing(request)
            except Refused as refused:
                return refusal(self, refused)
            if is_forwarded(request):
                return self.json({"alerts": found, "count": len(found)})
            others, unreachable = await owners.gather(request)
            alerts = merged([found, *others])
            return self.json({"alerts": alerts, "count": len(alerts), "workers": 1 + len(others), "unreachable": unreachable})

    async def change(view: View, request: Request, alert_id: str, action: AlertAction) -> Response:
        try:
            who = auth.check(request.headers.get("Authorization"), "write", "alarm.ack" if action == "acknowledge" else "alarm.resolve")
            body = await read_json_object(request)
            only_fields(body, CHANGE_FIELDS)
            by, note, claimed = recorded(who, actor(body, "by", default=""), free_text(body, "note"))
        except Refused as refused:
            return refusal(view, refused)
        subject = subject_of(alert_id)
        owner = owners.owner(subject) if subject else owners.own_url
        if owner is not None and owner != owners.own_url and not is_forwarded(request):
            return await owners.forward(view, request, owner)
        alarm, closed = books.find(alert_id)
        if alarm is None and owner is None:
            return view.json(
                {"error": "the alarm books are moving between workers; retry in a few seconds", "alert_id": alert_id},
                status=503,
                headers={"Retry-After": "5"},
            )
        if alarm is None:
            return view.json(
                {"error": "alarm already resolved" if closed else "no such open alarm", "alert_id": alert_id}, status=409 if closed else 404
            )
        if action == "acknowledge" and alarm.state == "acknowledged":  # the books would drop it, and its note with it
            return view.json(
                {"error": f"alarm already acknowledged by {alarm.acknowledged_by}", "alert_id": alert_id, "state": alarm.state}, status=409
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
