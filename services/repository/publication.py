"""When an analysis is announced to the beacon and rnaget: AnalysisPublished / AnalysisWithdrawn.

An analysis is publishable when it is public-visible and has stored files of a kind the platform indexes
(VCF -> variants, TSV / loom -> expression). What the consumers need travels in ANALYSIS_ATTRIBUTES, so it is
part of the SRA document and round-trips through XML: ``access_level`` (PUBLIC / REGISTERED / CONTROLLED),
``beacon_dataset_id``, ``assembly``, ``units``, ``feature_id_column``, ``sample_ids`` (comma separated),
``kind`` (variants / expression; otherwise derived from the file names). Pure logic.
"""

from __future__ import annotations

from typing import Any

from libs.common.events import (
    AccessLevel,
    AnalysisKind,
    AnalysisPublished,
    AnalysisPublishedData,
    AnalysisWithdrawn,
    AnalysisWithdrawnData,
    Event,
    FileRef,
    ReviewDecided,
    ReviewDecidedData,
    ReviewRequested,
    ReviewRequestedData,
)

from .models import DataFile, Resource, ResourceType, Review, ReviewStatus, Visibility

VARIANT_SUFFIXES = (".vcf", ".vcf.gz", ".bcf")
EXPRESSION_SUFFIXES = {".tsv": "tsv", ".tsv.gz": "tsv", ".loom": "loom"}


def filetype(rtype: ResourceType, name: str) -> str:
    """The XSD ``filetype`` for a stored file (the enumerations differ between RUN and ANALYSIS)."""
    lower = name.lower()
    if rtype is ResourceType.RUN:
        return "fastq" if ".fastq" in lower or ".fq" in lower else "srf" if lower.endswith(".srf") else "sra"
    if lower.endswith(VARIANT_SUFFIXES):
        return "vcf"
    if lower.endswith((".tsv", ".tsv.gz")):
        return "tsv"
    if lower.endswith((".bam", ".cram")):
        return lower.rsplit(".", 1)[-1]
    return "other"


def attributes(body: dict[str, Any]) -> dict[str, str]:
    container = body.get("analysis_attributes") or {}
    items = container.get("analysis_attribute") or []
    items = items if isinstance(items, list) else [items]
    return {str(i.get("tag")): str(i.get("value")) for i in items if isinstance(i, dict) and i.get("tag")}


def _kind(resource: Resource, attrs: dict[str, str]) -> AnalysisKind | None:
    if attrs.get("kind") in (AnalysisKind.VARIANTS.value, AnalysisKind.EXPRESSION.value):
        return AnalysisKind(attrs["kind"])
    names = [f.name.lower() for f in resource.files]
    if any(n.endswith(VARIANT_SUFFIXES) for n in names):
        return AnalysisKind.VARIANTS
    if any(n.endswith(tuple(EXPRESSION_SUFFIXES)) for n in names):
        return AnalysisKind.EXPRESSION
    return None


def _matrix_format(files: tuple[DataFile, ...]) -> str | None:
    for f in files:
        for suffix, fmt in EXPRESSION_SUFFIXES.items():
            if f.name.lower().endswith(suffix):
                return fmt
    return None


def published_event(resource: Resource) -> AnalysisPublished | None:
    """The AnalysisPublished event for this analysis, or None when it is not publishable."""
    if resource.rtype is not ResourceType.ANALYSIS or resource.visibility is not Visibility.PUBLIC:
        return None
    if not resource.files:
        return None
    attrs = attributes(resource.body)
    kind = _kind(resource, attrs)
    if kind is None:
        return None
    level = attrs.get("access_level", AccessLevel.PUBLIC.value).upper()
    sample_ids = [s.strip() for s in attrs["sample_ids"].split(",") if s.strip()] if "sample_ids" in attrs else None
    assembly = attrs.get("assembly") or _assembly(resource.body)
    return AnalysisPublished(
        data=AnalysisPublishedData(
            analysis_accession=resource.accession,
            study_accession=resource.parents.study,
            kind=kind,
            title=resource.title,
            access_level=AccessLevel(level) if level in AccessLevel.__members__ else AccessLevel.CONTROLLED,
            files=[FileRef(path=f.name, uri=f.uri, size=f.size, sha256=f.sha256) for f in resource.files],
            owner=resource.owner,
            dataset_id=attrs.get("beacon_dataset_id") if kind is AnalysisKind.VARIANTS else None,
            assembly=assembly if kind is AnalysisKind.VARIANTS else None,
            matrix_format=_matrix_format(resource.files) if kind is AnalysisKind.EXPRESSION else None,
            units=attrs.get("units") if kind is AnalysisKind.EXPRESSION else None,
            feature_id_column=attrs.get("feature_id_column"),
            sample_ids=sample_ids,
        )
    )


def _assembly(body: dict[str, Any]) -> str | None:
    variation = (body.get("analysis_type") or {}).get("sequence_variation") or {}
    standard = (variation.get("assembly") or {}).get("standard") or {}
    ref = standard.get("refname") or standard.get("accession")
    return ref if isinstance(ref, str) else None


def events_for_change(before: Resource | None, after: Resource | None) -> list[Event]:
    """Events announcing a create (before=None), update, or delete (after=None) of an analysis."""
    was = published_event(before) if before is not None else None
    now = published_event(after) if after is not None else None
    if now is not None:
        if was is not None and was.data == now.data:
            return []  # nothing the consumers see changed
        return [now]
    if was is not None:
        reason = "deleted" if after is None else "access-revoked"
        return [
            AnalysisWithdrawn(
                data=AnalysisWithdrawnData(
                    analysis_accession=was.data.analysis_accession,
                    kind=was.data.kind,
                    dataset_id=was.data.dataset_id,
                    reason=reason,
                )
            )
        ]
    return []


def review_requested(review: Review) -> ReviewRequested:
    """A resource was parked for human review (written with the review, in one transaction)."""
    alias = review.body.get("alias")
    return ReviewRequested(
        data=ReviewRequestedData(
            review_id=review.id,
            resource_type=review.rtype.info.name,
            alias=alias if isinstance(alias, str) else None,
            owner=review.owner,
        )
    )


def review_decided(review: Review, reviewer: str | None) -> ReviewDecided:
    """A reviewer approved (the resource now exists) or rejected a review."""
    return ReviewDecided(
        data=ReviewDecidedData(
            review_id=review.id,
            resource_type=review.rtype.info.name,
            decision="approved" if review.status is ReviewStatus.APPROVED else "rejected",
            accession=review.accession,
            owner=review.owner,
            reviewer=reviewer,
            comment=review.comment,
        )
    )
