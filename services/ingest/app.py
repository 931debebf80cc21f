"""Composition root of the ingest service: `create_app(settings)` wires everything and does no I/O."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import AsyncIterator
from datetime import timedelta

from aiohttp import web

from libs.common import keys as common_keys
from libs.common.periodic import periodic
from libs.common.web import service_app
from services.ingest import api, consumers, keys, service, store, uploads
from services.ingest.partfile import PartFiles
from services.ingest.settings import IngestSettings

PREFIX = "/ingest"
log = logging.getLogger(__name__)


def create_app(settings: IngestSettings) -> web.Application:
    app = service_app(
        "ingest",
        settings.common,
        subscriptions=consumers.subscriptions(demultiplex=settings.demultiplex),
        indexes=store.INDEXES,
        retired_indexes=store.RETIRED_INDEXES,
        contexts=[_ingest_ctx, _sweep_ctx],
    )
    app[keys.settings] = settings
    app.add_routes(api.routes)
    return app


def limits_of(settings: IngestSettings) -> service.Limits:
    return service.Limits(
        max_file_bytes=settings.max_file_bytes,
        max_run_bytes=settings.max_run_bytes,
        upload_ttl=timedelta(seconds=settings.upload_ttl_seconds),
        lock_lease=timedelta(seconds=settings.lock_lease_seconds),
        stalled_after=timedelta(seconds=settings.stalled_after_seconds),
        tombstone_for=timedelta(seconds=settings.tombstone_seconds),
        orphan_part_after=timedelta(seconds=settings.orphan_part_seconds),
    )


async def _ingest_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[keys.settings]
    db = app[common_keys.mongo_db]
    parts_root = settings.common.data_root / "ingest" / "uploads"
    await asyncio.to_thread(parts_root.mkdir, parents=True, exist_ok=True)
    parts = PartFiles(parts_root, buffer_size=settings.buffer_bytes, fsync=settings.fsync)
    app[keys.ingest] = service.Ingest(
        runs=store.RunStore(db),
        uploads=store.UploadStore(db),
        parts=parts,
        files=app[common_keys.files],
        outbox=app[common_keys.outbox],
        limits=limits_of(settings),
    )
    yield
    await uploads.settle_leases(deps=app[keys.ingest])
    await parts.close()


async def sweep_once(deps: service.Ingest) -> None:
    """Expire idle uploads, remove orphan part files, finish uploads a dead process left complete, mark stalled
    runs, count runs."""
    await uploads.expire_uploads(deps=deps)
    await uploads.remove_orphan_parts(deps=deps)
    await uploads.recover_completed(deps=deps)
    await service.mark_stalled_runs(deps=deps)
    await service.refresh_run_counts(deps=deps)


async def _sweep_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[keys.settings]
    sweep = functools.partial(sweep_once, app[keys.ingest])
    async with periodic(
        settings.sweep_interval_seconds if settings.sweep else None,
        sweep,
        name="ingest-sweep",
        failure="ingest sweep failed; retrying next period",
        log=log,
    ):
        yield
