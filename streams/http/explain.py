"""HTTP API for explanations: why a signal showed what it showed, the story of an alarm.

``GET /explain/signals/{intersection}?at=TIME[&source=db]`` and
``GET /explain/alarms/{alarm_id}[?source=db]`` answer what ``leitstand explain`` prints (the
same functions, streams/transparency/). They need the read token (docs/security.md): an
explanation names the operators who approved or acknowledged. ``TIME`` is ISO 8601 (naive
means UTC) or epoch seconds. Answers: 200 with the explanation, 404 when the log holds
nothing for the question (the body says why), 400 for a bad time or source, 409 for
``source=db`` on a worker without a history database, 503 when the broker or database cannot
be read. Reading a topic from the start takes seconds: dashboards should ask on a click, not poll.
"""

from __future__ import annotations

import math
from typing import Any

import faust
import orjson
from faust.web import Request, Response, View

from ..settings import Settings
from ..timeparse import parse_time
from ..transparency.sources import ExplainSourceError, explain_alarm_from, explain_signal_from
from .alerts import refusal
from .auth import ApiAuth, Refused

SOURCES = ("topics", "db")


def _answer(view: View, found: dict[str, Any]) -> Response:
    body = orjson.loads(orjson.dumps(found, default=str))  # datetimes from the database as text
    return view.json(body, status=200 if found.get("found") else 404)


def register(app: faust.App, settings: Settings) -> None:
    auth = ApiAuth.from_settings(settings)
    has_database = settings.postgres_dsn is not None and bool(settings.postgres_dsn.get_secret_value().strip())

    def source(request: Request, allowed: tuple[str, ...]) -> bool:
        """Authorised, only known query parameters, each once; True for ``source=db``."""
        auth.check(request.headers.get("Authorization"), "read")
        unknown = sorted(set(request.query) - set(allowed))
        if unknown:
            raise Refused(400, f"unknown query parameter(s) {', '.join(map(repr, unknown))}; allowed: {', '.join(allowed)}")
        query: Any = request.query  # a MultiDict: repeated parameters are visible
        for name in allowed:
            if len(query.getall(name, [])) > 1:
                raise Refused(400, f"{name} given more than once")
        chosen = request.query.get("source", SOURCES[0])
        if chosen not in SOURCES:
            raise Refused(400, f"source must be one of {', '.join(SOURCES)}")
        if chosen == "db" and not has_database:
            # this deployment keeps no history database: a conflict with its set-up, not a server fault
            raise Refused(409, "source=db needs the history database, and this worker has none (LEITSTAND_POSTGRES_DSN)")
        return bool(chosen == "db")

    @app.page("/explain/signals/{intersection}")
    class ExplainSignal(View):
        async def get(self, request: Request, intersection: str) -> Response:
            try:
                use_db = source(request, ("at", "source"))
            except Refused as refused:
                return refusal(self, refused)
            at = parse_time(request.query.get("at", ""))
            if not math.isfinite(at):
                return self.json({"error": "at must be ISO 8601 or epoch seconds"}, status=400)
            try:
                return _answer(self, await explain_signal_from(settings, intersection, at, use_db))
            except (ExplainSourceError, OSError) as exc:
                return self.json({"error": str(exc)}, status=503)

    @app.page("/explain/alarms/{alarm_id}")
    class ExplainAlarm(View):
        async def get(self, request: Request, alarm_id: str) -> Response:
            try:
                use_db = source(request, ("source",))
            except Refused as refused:
                return refusal(self, refused)
            try:
                return _answer(self, await explain_alarm_from(settings, alarm_id, use_db))
            except (ExplainSourceError, OSError) as exc:
                return self.json({"error": str(exc)}, status=503)
