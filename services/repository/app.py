"""Composition root of the repository service: `create_app(settings)` wires everything and does no I/O."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

from aiohttp import web

from libs.common import keys as common_keys
from libs.common.auth import BasicVerifier as VerifyBasic
from libs.common.periodic import periodic
from libs.common.web import service_app
from services.repository import api, consumers, keys, service, store
from services.repository.basic import BasicVerifier, HttpIntrospector
from services.repository.errors import render_error
from services.repository.settings import RepositorySettings
from services.repository.sra import load_schemas

PREFIX = "/repository"
log = logging.getLogger(__name__)


def create_app(settings: RepositorySettings) -> web.Application:
    app = service_app(
        "repository",
        settings.common,
        error_renderer=render_error,
        openapi=Path(__file__).with_name("openapi.yaml"),
        indexes=store.INDEXES,
        contexts=[_repository_ctx],
        subscriptions=consumers.SUBSCRIPTIONS,
        client_max_size=settings.max_body_bytes,
    )
    app[keys.settings] = settings
    app.add_routes(api.routes)
    return app


async def _repository_ctx(app: web.Application) -> AsyncIterator[None]:
    """Compile the SRA schemas (off the loop), build the store and the Basic verifier."""
    settings = app[keys.settings]
    # mounted (add_subapp) before start-up, so the prefix is final; links are built from it on every response
    app[keys.mount_path] = app.router["studies"].canonical.removesuffix("/studies")
    await asyncio.to_thread(load_schemas)
    app[keys.resource_store] = store.MongoResourceStore(app[common_keys.mongo_db], app[common_keys.outbox])
    if settings.introspection_client_secret:
        introspect = HttpIntrospector(
            app[common_keys.http_client],
            settings.resolved_introspection_url,
            settings.introspection_client_id,
            settings.introspection_client_secret,
        )
        verifier: VerifyBasic = BasicVerifier(introspect, ttl=settings.basic_cache_seconds)
        app[common_keys.basic_verifier] = verifier
    sweep = functools.partial(_release_held, app[keys.resource_store])
    async with periodic(
        settings.hold_sweep_seconds or None,  # 0: no hold sweep
        sweep,
        name="repository:hold-sweep",
        failure="hold sweep failed; retrying at the next interval",
        log=log,
        at_start=True,
    ):
        yield


async def _release_held(resource_store: service.ResourceStore) -> None:
    """Release held objects whose HoldUntilDate has come."""
    released = await service.release_due(resource_store, today=datetime.now(UTC).date())
    if released:
        log.info("released held objects", extra={"accessions": [r.accession for r in released]})
