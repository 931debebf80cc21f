"""Composition root of the repository service: `create_app(settings)` wires everything and does no I/O."""

from __future__ import annotations

from aiohttp import web

from libs.common.web import service_app
from services.repository import api, consumers, keys
from services.repository.settings import RepositorySettings

PREFIX = "/repository"


def create_app(settings: RepositorySettings) -> web.Application:
    app = service_app(
        "repository",
        settings.common,
        subscriptions=consumers.SUBSCRIPTIONS,
    )
    app[keys.settings] = settings
    app.add_routes(api.routes)
    return app
