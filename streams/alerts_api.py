"""HTTP API for the people on duty: list open alarms, acknowledge, resolve.

``GET /alerts?state=open`` needs no token (a wall display may poll it); every change needs
``Authorization: Bearer <LEITSTAND_API_TOKEN>``, compared in constant time. Without a
configured token changes are refused: an alarm system must not accept anonymous resolutions.

A change is written to ``alerts.acks`` (the audit trail of human actions) and applied by the
alarm books agent moments later, so the answer is ``202 Accepted`` with the command sent.
Reads come from the books this worker holds (run one worker, or put a router in front).
"""

from __future__ import annotations

import hmac
import time
from datetime import datetime, timezone
from typing import Any

import faust
from faust.web import Request, Response, View

from .agents.alarm_lifecycle import AlarmBooks, alarm_json
from .records import AlertCommand
from .settings import Settings

STATES = ("open", "raised", "acknowledged", "escalated")


def authorised(settings: Settings, header: str | None) -> bool:
    if settings.api_token is None or not header or not header.startswith("Bearer "):
        return False
    given = header[len("Bearer "):].strip().encode()
    return hmac.compare_digest(given, settings.api_token.get_secret_value().encode())


def register(app: faust.App, settings: Settings, books: AlarmBooks) -> None:
    @app.page("/alerts")
    class Alerts(View):
        async def get(self, request: Request) -> Response:
            state = request.query.get("state", "open")
            if state not in STATES:
                return self.json({"error": f"state must be one of {', '.join(STATES)}"}, status=400)
            chosen = [a for a in books.all_alarms() if state == "open" or a.state == state]
            chosen.sort(key=lambda a: (("critical", "major", "minor").index(a.severity), a.raised_at))
            found = [alarm_json(a) for a in chosen]
            return self.json({"alerts": found, "count": len(found)})

    async def change(view: View, request: Request, alert_id: str, action: str) -> Response:
        if settings.api_token is None:
            return view.json({"error": "no API token configured (LEITSTAND_API_TOKEN); changes are refused"}, status=403)
        if not authorised(settings, request.headers.get("Authorization")):
            return view.json({"error": "missing or wrong bearer token"}, status=401)
        try:
            body: dict[str, Any] = await request.json() if request.can_read_body else {}
        except ValueError:
            return view.json({"error": "body must be JSON: {\"by\": \"...\", \"note\": \"...\"}"}, status=400)
        by, note = str(body.get("by") or "api")[:64], body.get("note")
        alarm, closed = books.find(alert_id)
        if alarm is None:
            return view.json({"error": "alarm already resolved" if closed else "no such open alarm", "alert_id": alert_id},
                             status=409 if closed else 404)
        try:
            cmd = AlertCommand(schema_version=1, event_time=datetime.fromtimestamp(time.time(), tz=timezone.utc),
                               alert_id=alert_id, action=action, by=by, note=str(note)[:500] if note else None)
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
