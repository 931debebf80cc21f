"""Domain metrics of the beacon service (`seqhub_beacon_*`), in the process-wide default registry.

Labels are low-cardinality only (access level, query result), never dataset ids or alleles.
"""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import Counter, Gauge

from .models import AccessLevel, DatasetMeta

VARIANTS_INDEXED = Gauge(
    "seqhub_beacon_variants_indexed",
    "Alleles in the datasets this process answers from, by dataset access level.",
    ["access"],
)
QUERIES = Counter(
    "seqhub_beacon_queries",
    "Allele queries (GET/POST /query), by result: hit (exists), miss, error (refused or failed).",
    ["result"],
)


def set_variants_indexed(metas: Iterable[DatasetMeta]) -> None:
    """Recount the live datasets' alleles; every access level keeps a sample (0 when none)."""
    totals = dict.fromkeys((level.value.lower() for level in AccessLevel), 0)
    for meta in metas:
        access = meta.accessType.value.lower()
        totals[access] = totals.get(access, 0) + meta.variantCount
    for access, total in totals.items():
        VARIANTS_INDEXED.labels(access=access).set(total)
