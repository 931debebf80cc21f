"""Composition root of the rnaget service: `create_app(settings)` wires everything and does no I/O."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

from aiohttp import web

from libs.common import keys as common_keys
from libs.common.web import service_app
from services.rnaget import api, consumers, keys, media
from services.rnaget.service import MatrixFiles
from services.rnaget.settings import RnagetSettings
from services.rnaget.store import INDEXES, MetadataStore

PREFIX = "/rnaget"


async def _stores_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[keys.settings]
    root = settings.data_dir(app)
    await asyncio.to_thread((root / "matrices").mkdir, parents=True, exist_ok=True)
    files = MatrixFiles(root, capacity=settings.open_files)
    app[keys.metadata_store] = MetadataStore(app[common_keys.mongo_db])
    app[keys.matrix_files] = files
    try:
        yield
    finally:
        await asyncio.to_thread(files.close)


def create_app(settings: RnagetSettings) -> web.Application:
    app = service_app(
        "rnaget",
        settings.common,
        error_renderer=media.error_renderer,
        openapi=Path(__file__).with_name("openapi.yaml"),
        indexes=INDEXES,
        contexts=[_stores_ctx],
        subscriptions=consumers.SUBSCRIPTIONS,
        cors=True,
    )
    app[keys.settings] = settings
    app.add_routes(api.routes)
    return app
