"""Use cases of the beacon: answer allele queries over the live datasets the caller may see, describe the
beacon, index and withdraw datasets.  Imports neither aiohttp nor pymongo: stores, the outbox and the
clock come in as arguments.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import MappingProxyType
from typing import Any, Protocol

from libs.common.auth import bearer_challenge
from libs.common.errors import BadRequest, Forbidden, NotFound, TooManyRequests, Unauthorized
from libs.common.events import VariantsIndexed, VariantsIndexedData

from . import metrics
from .index import DatasetIndex, build_version, open_version, set_current
from .matcher import DatasetMatch, candidate_rows, match
from .models import (
    AccessLevel,
    AlleleRequest,
    AlleleResponse,
    BeaconInfo,
    DatasetAlleleResponse,
    DatasetInfo,
    DatasetMeta,
    Organization,
)

log = logging.getLogger(__name__)

# Position ranges covering more rows than this are matched in a worker thread so a whole-chromosome bracket
# query cannot stall the event loop; smaller ones stay inline (a thread hop costs more than the lookup).
INLINE_ROWS = 50_000


class InvalidRequest(BadRequest):
    """400 with the Beacon error object; ``alleleRequest`` echoes the parsed request when there is one."""


@dataclass(frozen=True)
class LiveDataset:
    meta: DatasetMeta
    index: DatasetIndex


class Catalog:
    """The live datasets of this process.  Replaced copy-on-write, so a query holds one consistent snapshot
    and a dataset being withdrawn or re-indexed is either fully in it or not at all."""

    def __init__(self) -> None:
        self._live: Mapping[str, LiveDataset] = MappingProxyType({})
        self.locks: dict[str, asyncio.Lock] = {}
        metrics.set_variants_indexed(())

    def snapshot(self) -> Mapping[str, LiveDataset]:
        return self._live

    def activate(self, live: LiveDataset) -> None:
        self._live = MappingProxyType({**self._live, live.meta.id: live})
        metrics.set_variants_indexed(d.meta for d in self._live.values())

    def drop(self, dataset_id: str) -> None:
        self._live = MappingProxyType({k: v for k, v in self._live.items() if k != dataset_id})
        metrics.set_variants_indexed(d.meta for d in self._live.values())

    def lock(self, dataset_id: str) -> asyncio.Lock:
        return self.locks.setdefault(dataset_id, asyncio.Lock())


@dataclass(frozen=True)
class Access:
    """What a caller may query: computed at the edge from token scopes and verified passport visas."""

    authenticated: bool = False
    registered: bool = False
    datasets: frozenset[str] = frozenset()
    everything: bool = False

    def allows(self, meta: DatasetMeta) -> bool:
        if meta.accessType is AccessLevel.PUBLIC or self.everything:
            return True
        if meta.id in self.datasets:
            return True
        return meta.accessType is AccessLevel.REGISTERED and self.registered


ANONYMOUS_ACCESS = Access()


class QueryBudget:
    """At most ``limit`` queries per ``window`` seconds per caller (subject, else client address): the
    membership-inference defence the reference notes ask for.  Token bucket per caller, in process memory
    (per replica); ``limit`` 0 turns it off."""

    MAX_CALLERS = 100_000

    def __init__(self, limit: int, window: float, clock: Any = time.monotonic) -> None:
        self.limit = limit
        self.window = window
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}

    def spend(self, caller: str) -> None:
        if self.limit <= 0:
            return
        now = self._clock()
        rate = self.limit / self.window
        tokens, last = self._buckets.pop(caller, (float(self.limit), now))
        tokens = min(float(self.limit), tokens + (now - last) * rate)
        if tokens < 1.0:
            self._buckets[caller] = (tokens, now)
            retry = max(1, int((1.0 - tokens) / rate + 0.999))
            raise TooManyRequests(
                f"query budget of {self.limit} per {self.window:g} s used up; retry in {retry} s",
                headers={"Retry-After": str(retry)},
            )
        self._buckets[caller] = (tokens - 1.0, now)  # re-inserted last: dict order = least recently used
        if len(self._buckets) > self.MAX_CALLERS:
            del self._buckets[next(iter(self._buckets))]


@dataclass(frozen=True)
class BeaconIdentity:
    id: str
    name: str
    organization: Organization
    description: str | None = None
    welcome_url: str | None = None
    sample_requests: tuple[AlleleRequest, ...] = field(default_factory=tuple)


async def answer(
    req: AlleleRequest, *, datasets: Mapping[str, LiveDataset], access: Access, beacon_id: str
) -> AlleleResponse:
    """Answer ``req`` over the datasets the caller may see; forbidden datasets are never touched."""
    selected = select_datasets(req, datasets=datasets, access=access)
    matches = [(live, await _match(live, req)) for live in selected]
    responses = [
        _dataset_response(live, found)
        for live, found in matches
        if req.includeDatasetResponses == "ALL"
        or (req.includeDatasetResponses == "HIT" and found.exists)
        or (req.includeDatasetResponses == "MISS" and not found.exists)
    ]
    # model_construct: every value is built here from validated data; skipping re-validation is ~20% of a HIT.
    return AlleleResponse.model_construct(
        beaconId=beacon_id,
        exists=any(found.exists for _, found in matches),
        alleleRequest=req,
        datasetAlleleResponses=responses,
    )


async def _match(live: LiveDataset, req: AlleleRequest) -> DatasetMatch:
    if req.start is None and candidate_rows(live.index, req) > INLINE_ROWS:
        return await asyncio.to_thread(match, live.index, req, samples=live.meta.sampleCount or None)
    return match(live.index, req, samples=live.meta.sampleCount or None)


def select_datasets(req: AlleleRequest, *, datasets: Mapping[str, LiveDataset], access: Access) -> list[LiveDataset]:
    wanted = req.assemblyId.casefold()
    if req.datasetIds:
        unknown = [d for d in req.datasetIds if d not in datasets]
        if unknown:
            raise InvalidRequest(f"datasetIds: unknown dataset {', '.join(unknown)}", extra=_echo(req))
        candidates = [datasets[d] for d in req.datasetIds]
        for live in candidates:
            if live.meta.assemblyId.casefold() != wanted:
                raise InvalidRequest(
                    f"assemblyId {req.assemblyId} does not match dataset {live.meta.id} ({live.meta.assemblyId})",
                    extra=_echo(req),
                )
    else:
        candidates = [live for live in datasets.values() if live.meta.assemblyId.casefold() == wanted]
        if not candidates:
            raise InvalidRequest(f"assemblyId: no dataset with assembly {req.assemblyId}", extra=_echo(req))
    allowed = [live for live in candidates if access.allows(live.meta)]
    if not allowed:
        if not access.authenticated:
            raise Unauthorized(
                "the requested datasets need an access token",
                extra=_echo(req),
                headers={"WWW-Authenticate": bearer_challenge()},
            )
        raise Forbidden("the access token grants none of the requested datasets", extra=_echo(req))
    return allowed


def _echo(req: AlleleRequest) -> dict[str, Any]:
    return {"alleleRequest": req.model_dump(exclude_none=True)}


def _dataset_response(live: LiveDataset, found: DatasetMatch) -> DatasetAlleleResponse:
    info: dict[str, Any] = {"accessType": live.meta.accessType.value, "indexVersion": live.meta.indexVersion}
    if found.exists:
        info["matchedAlleleCount"] = found.alleles
        info["matchedAlleles"] = list(found.examples)
    return DatasetAlleleResponse.model_construct(
        datasetId=live.meta.id,
        exists=found.exists,
        frequency=round(found.frequency, 9) if found.frequency is not None else None,
        variantCount=found.variant_count,
        callCount=found.call_count,
        sampleCount=found.sample_count,
        info=info,
    )


def describe(identity: BeaconIdentity, *, datasets: Mapping[str, LiveDataset], access: Access) -> BeaconInfo:
    """The Beacon object; counts of datasets the caller may not query are left out (they are content)."""
    return BeaconInfo(
        id=identity.id,
        name=identity.name,
        organization=identity.organization,
        description=identity.description,
        welcomeUrl=identity.welcome_url,
        datasets=[_dataset_info(live.meta, visible=access.allows(live.meta)) for live in datasets.values()],
        sampleAlleleRequests=list(identity.sample_requests) or None,
        info={
            "bracketBounds": "inclusive",
            "coordinates": "0-based, end exclusive",
            "wildcard": "N = one base",
        },
    )


def _dataset_info(meta: DatasetMeta, *, visible: bool) -> DatasetInfo:
    counts = {"variantCount": meta.variantCount, "callCount": meta.callCount, "sampleCount": meta.sampleCount}
    return DatasetInfo(
        id=meta.id,
        name=meta.name,
        assemblyId=meta.assemblyId,
        createDateTime=meta.createDateTime,
        updateDateTime=meta.updateDateTime,
        description=meta.description,
        version=meta.indexVersion,
        externalUrl=meta.externalUrl,
        info={"accessType": meta.accessType.value},
        **(counts if visible else {}),
    )


# --- indexing ---------------------------------------------------------------------------------------------


class DatasetStorePort(Protocol):
    async def save(self, meta: DatasetMeta, *, session: Any = None) -> None: ...
    async def get(self, dataset_id: str) -> DatasetMeta | None: ...
    async def list_live(self) -> list[DatasetMeta]: ...
    async def withdraw(self, dataset_id: str, *, session: Any = None) -> bool: ...


class OutboxPort(Protocol):
    def transaction(self) -> Any: ...
    async def add(self, event: Any, *, session: Any = None) -> None: ...


@dataclass(frozen=True)
class LoadSpec:
    dataset_id: str
    assembly: str
    access: AccessLevel
    name: str | None = None
    description: str | None = None
    analysis_accession: str | None = None
    correlation_id: str | None = None


async def load_dataset(
    vcf: Path, spec: LoadSpec, *, root: Path, store: DatasetStorePort, outbox: OutboxPort, catalog: Catalog
) -> DatasetMeta:
    """Index ``vcf`` beside the live version, commit its metadata and VariantsIndexed together, then swap."""
    async with catalog.lock(spec.dataset_id):
        built = await asyncio.to_thread(build_version, root, spec.dataset_id, vcf, activate=False)
        try:
            index = await asyncio.to_thread(open_version, root, spec.dataset_id, built.version)
            previous = await store.get(spec.dataset_id)
            now = datetime.now(UTC).isoformat()
            meta = DatasetMeta(
                id=spec.dataset_id,
                name=spec.name or (previous.name if previous else spec.dataset_id),
                description=spec.description or (previous.description if previous else None),
                assemblyId=spec.assembly,
                accessType=spec.access,
                indexVersion=built.version,
                variantCount=built.alleles,
                callCount=built.records,
                sampleCount=built.samples,
                createDateTime=previous.createDateTime if previous and not previous.withdrawn else now,
                updateDateTime=now,
                analysisAccession=spec.analysis_accession,
            )
            event = VariantsIndexed(
                correlation_id=spec.correlation_id,
                data=VariantsIndexedData(
                    dataset_id=spec.dataset_id,
                    analysis_accession=spec.analysis_accession,
                    assembly=spec.assembly,
                    index_version=built.version,
                    variant_count=built.alleles,
                    call_count=built.records,
                    sample_count=built.samples,
                ),
            )
            async with outbox.transaction() as session:
                await store.save(meta, session=session)
                await outbox.add(event, session=session)
        except BaseException:
            await asyncio.to_thread(shutil.rmtree, built.path, True)
            raise
        await asyncio.to_thread(set_current, root, spec.dataset_id, built.version)
        catalog.activate(LiveDataset(meta=meta, index=index))
        log.info(
            "dataset indexed",
            extra={
                "dataset_id": spec.dataset_id,
                "version": built.version,
                "alleles": built.alleles,
                "seconds": round(built.seconds, 3),
            },
        )
        return meta


async def withdraw_dataset(dataset_id: str, *, root: Path, store: DatasetStorePort, catalog: Catalog) -> bool:
    """Take a dataset out of every answer at once, then delete its index files."""
    async with catalog.lock(dataset_id):
        catalog.drop(dataset_id)
        changed = await store.withdraw(dataset_id)
        # In-flight queries keep their mapped arrays; unlinking does not disturb them.
        await asyncio.to_thread(shutil.rmtree, root / dataset_id, True)
        return changed


async def require_dataset(dataset_id: str, *, store: DatasetStorePort) -> DatasetMeta:
    meta = await store.get(dataset_id)
    if meta is None or meta.withdrawn:
        raise NotFound(f"dataset {dataset_id} not found")
    return meta


async def refresh(*, root: Path, store: DatasetStorePort, catalog: Catalog) -> None:
    """Bring the catalog in line with MongoDB (other replicas' loads and withdrawals)."""
    live = {meta.id: meta for meta in await store.list_live()}
    for dataset_id in set(catalog.snapshot()) | set(live):
        current = catalog.snapshot().get(dataset_id)
        if current is not None and current.meta == live.get(dataset_id):
            continue
        async with catalog.lock(dataset_id):  # a local load or withdrawal may be under way: re-read
            await _refresh_one(dataset_id, root=root, store=store, catalog=catalog)


async def _refresh_one(dataset_id: str, *, root: Path, store: DatasetStorePort, catalog: Catalog) -> None:
    meta = await store.get(dataset_id)
    current = catalog.snapshot().get(dataset_id)
    if meta is None or meta.withdrawn:
        catalog.drop(dataset_id)
        return
    if current is not None and current.meta.indexVersion == meta.indexVersion:
        catalog.activate(LiveDataset(meta=meta, index=current.index))
        return
    try:
        index = await asyncio.to_thread(open_version, root, meta.id, meta.indexVersion)
    except (OSError, ValueError, KeyError):
        log.warning("index version not readable", extra={"dataset_id": meta.id, "version": meta.indexVersion})
        return
    catalog.activate(LiveDataset(meta=meta, index=index))
