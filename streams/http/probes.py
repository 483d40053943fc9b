"""The pages every worker role serves without a token: ``GET /ready`` (readiness for
orchestrators and tests), ``GET /metrics`` (Prometheus) and ``GET /openapi.yaml`` (the API
description). None of them holds data about alarms, people or plans.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import faust
from aiohttp import web as aioweb
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from ..metrics import REGISTRY

#: the API description (docs/openapi.yaml); present in a checkout and an editable install
DESCRIPTION = Path(__file__).resolve().parents[2] / "docs" / "openapi.yaml"


def register(app: faust.App) -> None:
    """Called once per worker from ``streams/app.py``, whatever its role."""
    register_description(app)

    @app.page("/metrics")
    async def metrics(web: Any, request: Any) -> Any:
        return aioweb.Response(body=generate_latest(REGISTRY), headers={"Content-Type": CONTENT_TYPE_LATEST})

    @app.page("/ready")
    async def ready(web: Any, request: Any) -> Any:
        """200 while this worker owns partitions, is not rebalancing or recovering, and its consumer
        hears from the broker; else 503 with the reason (docs/brokers.md, "Readiness")."""
        from ..faust_transport import readiness

        ok, reason, assigned = readiness(app)
        body: dict[str, Any] = {"ready": ok, "assigned": assigned}
        if reason is not None:
            body["reason"] = reason
        return web.json(body, status=200 if ok else 503)


def register_description(app: faust.App) -> None:
    """``GET /openapi.yaml``: the OpenAPI description of every endpoint, no token (it holds no data).

    Read per request, so a missing file is a 404 rather than a failed start.
    """

    @app.page("/openapi.yaml")
    async def description(web: Any, request: Any) -> Any:
        if not DESCRIPTION.is_file():
            return web.json({"error": "docs/openapi.yaml is not installed with this worker"}, status=404)
        return web.bytes(DESCRIPTION.read_bytes(), content_type="application/yaml")
