"""Event consumers of the beacon: published variant analyses are indexed into their dataset (then
VariantsIndexed goes out through the outbox); withdrawn analyses disappear from every answer."""

from __future__ import annotations

import logging

from aiohttp import web

from libs.common import keys as common_keys
from libs.common.bus import Subscription
from libs.common.events import AnalysisKind, AnalysisPublished, AnalysisWithdrawn, FileRef

from . import keys, service
from .models import AccessLevel

log = logging.getLogger(__name__)
VCF_SUFFIXES = (".vcf", ".vcf.gz", ".vcf.bgz", ".bcf")


def vcf_file(files: list[FileRef]) -> FileRef | None:
    return next((f for f in files if f.path.lower().endswith(VCF_SUFFIXES)), None)


async def on_analysis_published(event: AnalysisPublished, app: web.Application) -> None:
    data = event.data
    vcf = vcf_file(data.files) if data.kind is AnalysisKind.VARIANTS else None
    if vcf is None:
        return
    dataset_id = data.dataset_id or data.analysis_accession
    store = app[keys.dataset_store]
    previous = await store.get(dataset_id)
    if previous is not None and previous.withdrawn and previous.analysisAccession == data.analysis_accession:
        log.info("analysis already withdrawn; not re-indexing", extra={"dataset_id": dataset_id})
        return
    spec = service.LoadSpec(
        dataset_id=dataset_id,
        assembly=data.assembly or "GRCh38",
        access=AccessLevel(data.access_level.value),
        name=data.title,
        analysis_accession=data.analysis_accession,
        correlation_id=event.correlation_id,
    )
    await service.load_dataset(
        app[common_keys.files].path(vcf.uri),
        spec,
        root=app[keys.settings].index_root(),
        store=store,
        outbox=app[common_keys.outbox],
        catalog=app[keys.catalog],
    )


async def on_analysis_withdrawn(event: AnalysisWithdrawn, app: web.Application) -> None:
    data = event.data
    if data.kind is not AnalysisKind.VARIANTS:
        return
    dataset_id = data.dataset_id or data.analysis_accession
    store = app[keys.dataset_store]
    meta = await store.get(dataset_id)
    if meta is None or (data.dataset_id is None and meta.analysisAccession != data.analysis_accession):
        return
    await service.withdraw_dataset(
        dataset_id, root=app[keys.settings].index_root(), store=store, catalog=app[keys.catalog]
    )


SUBSCRIPTIONS: list[Subscription] = [
    Subscription(
        queue="beacon.analyses",
        handlers={AnalysisPublished: on_analysis_published, AnalysisWithdrawn: on_analysis_withdrawn},
        prefetch=1,
    )
]
