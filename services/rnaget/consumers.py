"""Event consumers of the rnaget service: analyses published with an expression matrix are imported
(→ ExpressionIndexed via the outbox); withdrawn analyses disappear. Both are idempotent."""

from __future__ import annotations

import logging

from aiohttp import web

from libs.common import keys as common_keys
from libs.common.bus import Subscription
from libs.common.events import AnalysisKind, AnalysisPublished, AnalysisWithdrawn
from services.rnaget import keys, service
from services.rnaget.models import Kind

log = logging.getLogger(__name__)


async def on_analysis_published(event: AnalysisPublished, app: web.Application) -> None:
    data = event.data
    if data.kind is not AnalysisKind.EXPRESSION:
        return
    by_path = {f.path: f for f in data.files}
    picked = service.pick_matrix_file(by_path, data.matrix_format)
    if picked is None:
        log.warning("analysis %s has no tsv/loom expression matrix; nothing to index", data.analysis_accession)
        return
    path, fmt = picked
    src = app[common_keys.files].path(by_path[path].uri)
    req = service.ImportRequest(
        matrix_id=data.analysis_accession,
        kind=Kind.EXPRESSION,
        format=fmt,
        units=data.units or "unknown",
        study_id=data.study_accession,
        name=data.title,
        analysis_accession=data.analysis_accession,
        access_level=data.access_level.value,
    )
    record = await service.import_matrix(
        src, req, store=app[keys.metadata_store], files=app[keys.matrix_files], outbox=app[common_keys.outbox]
    )
    log.info("indexed expression %s: %d features x %d samples", record.id, record.rows, record.cols)


async def on_analysis_withdrawn(event: AnalysisWithdrawn, app: web.Application) -> None:
    if event.data.kind is not AnalysisKind.EXPRESSION:
        return
    removed = await service.withdraw_analysis(
        event.data.analysis_accession, store=app[keys.metadata_store], files=app[keys.matrix_files]
    )
    log.info("withdrew analysis %s: %d matrices removed", event.data.analysis_accession, removed)


SUBSCRIPTIONS: list[Subscription] = [
    Subscription(
        queue="rnaget.analyses",
        handlers={AnalysisPublished: on_analysis_published, AnalysisWithdrawn: on_analysis_withdrawn},
        prefetch=1,
    ),
]
