"""Composition root of the rnaget service: `create_app(settings)` wires everything and does no I/O."""

from __future__ import annotations

from aiohttp import web

from libs.common.web import service_app
from services.rnaget import api, consumers, keys
from services.rnaget.settings import RnagetSettings

PREFIX = "/rnaget"


def create_app(settings: RnagetSettings) -> web.Application:
    app = service_app(
        "rnaget",
        settings.common,
        subscriptions=consumers.SUBSCRIPTIONS,
        cors=True,
    )
    app[keys.settings] = settings
    app.add_routes(api.routes)
    return app
