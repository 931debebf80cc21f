"""Composition root of the beacon service: `create_app(settings)` wires everything and does no I/O."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from aiohttp import web

from libs.common import keys as common_keys
from libs.common.passports import PassportVerifier, load_issuer_keys
from libs.common.periodic import periodic
from libs.common.web import service_app

from . import api, consumers, keys, service
from .models import Organization
from .network import Network
from .settings import BeaconSettings
from .store import INDEXES, BeaconRegistryStore, DatasetStore

PREFIX = "/beacon"
OPENAPI = Path(__file__).with_name("openapi.yaml")
log = logging.getLogger(__name__)


def create_app(settings: BeaconSettings) -> web.Application:
    app = service_app(
        "beacon",
        settings.common,
        error_renderer=api.beacon_error,
        openapi=OPENAPI,
        indexes=INDEXES,
        contexts=[_beacon_ctx],
        subscriptions=consumers.SUBSCRIPTIONS,
        cors=True,
    )
    app[keys.settings] = settings
    app[keys.catalog] = service.Catalog()
    app[keys.query_budget] = service.QueryBudget(settings.query_budget, settings.query_budget_window_seconds)
    app[keys.identity] = service.BeaconIdentity(
        id=settings.beacon_id,
        name=settings.name,
        description=settings.description,
        organization=Organization(id=settings.organization_id, name=settings.organization_name),
        welcome_url=settings.common.public_url,
    )
    app.add_routes(api.routes)
    return app


async def _beacon_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[keys.settings]
    db = app[common_keys.mongo_db]
    http = app[common_keys.http_client]
    store = DatasetStore(db)
    app[keys.dataset_store] = store

    async def fetch_json(url: str) -> dict[str, Any]:
        async with http.get(url) as resp:
            resp.raise_for_status()
            body = await resp.json(content_type=None)
            return body if isinstance(body, dict) else {}

    app[keys.passports] = PassportVerifier(await load_issuer_keys(settings.trusted_visa_issuers, fetch_json))
    app[keys.network] = Network(
        http=http,
        registry=BeaconRegistryStore(db),
        configured=settings.network_beacons,
        timeout=settings.network_timeout_seconds,
    )
    await asyncio.to_thread(settings.index_root().mkdir, parents=True, exist_ok=True)
    catalog = app[keys.catalog]
    await service.refresh(root=settings.index_root(), store=store, catalog=catalog)
    refresh = functools.partial(service.refresh, root=settings.index_root(), store=store, catalog=catalog)
    async with periodic(
        settings.refresh_seconds,
        refresh,
        name="beacon-refresh",
        failure="could not refresh the live datasets; will retry",
        log=log,
    ):
        yield
