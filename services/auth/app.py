"""Composition root of the auth service: `create_app(settings)` wires everything and does no I/O."""

from __future__ import annotations

from aiohttp import web

from libs.common.web import service_app
from services.auth import api, consumers, keys
from services.auth.settings import AuthSettings

PREFIX = "/auth"


def create_app(settings: AuthSettings) -> web.Application:
    app = service_app(
        "auth",
        settings.common,
        subscriptions=consumers.SUBSCRIPTIONS,
        authenticate=False,
    )
    app[keys.settings] = settings
    app.add_routes(api.routes)
    return app
