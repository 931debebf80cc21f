"""Composition root of the ingest service: `create_app(settings)` wires everything and does no I/O."""

from __future__ import annotations

from aiohttp import web

from libs.common.web import service_app
from services.ingest import api, consumers, keys
from services.ingest.settings import IngestSettings

PREFIX = "/ingest"


def create_app(settings: IngestSettings) -> web.Application:
    app = service_app(
        "ingest",
        settings.common,
        subscriptions=consumers.SUBSCRIPTIONS,
    )
    app[keys.settings] = settings
    app.add_routes(api.routes)
    return app
