"""The event contracts between services: one envelope, one pydantic model per event of the catalog.

Every event travels as JSON in the envelope `{id, type, version, occurred_at, producer, correlation_id, data}`.
Consumers ignore fields they do not know (adding a field is compatible); renaming or removing a field means a
new `version`. Big data never rides the bus: events carry file-store URIs, sizes and sha256 digests.
Plain pydantic only — no I/O, no aiohttp, no pymongo here. `docs/events.md` is generated from this module
(`python -m libs.common.events > docs/events.md`).
"""

from __future__ import annotations

import sys
import uuid
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError


class Payload(BaseModel):
    """Base of every event payload: immutable, tolerant of fields added by newer producers."""

    model_config = ConfigDict(frozen=True, extra="ignore")


def _new_id() -> str:
    return uuid.uuid4().hex


def _now() -> datetime:
    return datetime.now(UTC)


class Event(Payload):
    """The envelope. Subclasses fix `type`, `data`, the routing key and the producing service."""

    routing_key: ClassVar[str] = ""
    producer_service: ClassVar[str] = ""

    id: str = Field(default_factory=_new_id, description="Unique per event; consumers deduplicate on it.")
    type: str
    version: int = 1
    occurred_at: datetime = Field(default_factory=_now)
    producer: str = Field(default="", description="Service (and instance) that produced the event.")
    correlation_id: str | None = Field(default=None, description="X-Request-ID of the request that caused it.")
    data: Payload


class AccessLevel(StrEnum):
    PUBLIC = "PUBLIC"
    REGISTERED = "REGISTERED"
    CONTROLLED = "CONTROLLED"


class FileRef(Payload):
    """A file in the file store."""

    path: str = Field(description="Path relative to the run/analysis root, POSIX separators.")
    uri: str = Field(description="File-store URI, e.g. store:runs/<run_id>/RunInfo.xml.")
    size: int = Field(ge=0, description="Bytes.")
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")


# --- ingest -----------------------------------------------------------------------------------------------


class RunRegisteredData(Payload):
    run_id: str
    run_name: str = Field(description="The instrument's run folder name.")
    instrument: str
    flowcell: str
    project: str | None = Field(default=None, description="Target project the run's samples go to.")
    owner: str = Field(description="Subject (user or client) that registered the run.")
    expected_files: int = Field(ge=0)


class RunRegistered(Event):
    routing_key = "ingest.run.registered"
    producer_service = "ingest"
    type: Literal["RunRegistered"] = "RunRegistered"
    data: RunRegisteredData


class ReadSummary(Payload):
    number: int = Field(ge=1)
    cycles: int = Field(ge=1)
    is_index: bool
    reverse_complement: bool = False


class RunInfoSummary(Payload):
    run_number: int | None = None
    run_date: str | None = None
    instrument_model: str | None = None
    lanes: int = Field(ge=1)
    tiles_per_lane: int | None = None
    reads: list[ReadSummary]
    basecall_format: str = Field(description="bcl, bcl.gz or cbcl.")


class RunUploadedData(Payload):
    run_id: str
    run_name: str
    instrument: str
    flowcell: str
    project: str | None = None
    owner: str
    root_uri: str = Field(description="File-store URI prefix of the complete run folder (ends with '/').")
    files: list[FileRef] = Field(description="Every file of the run folder, with size and sha256.")
    total_bytes: int = Field(ge=0)
    run_info: RunInfoSummary
    sample_sheet_uri: str | None = None


class RunUploaded(Event):
    routing_key = "ingest.run.uploaded"
    producer_service = "ingest"
    type: Literal["RunUploaded"] = "RunUploaded"
    data: RunUploadedData


class FastqFile(Payload):
    read: str = Field(description="R1, R2, I1, I2.")
    lane: int | None = Field(default=None, description="None when lane splitting is off.")
    uri: str
    size: int = Field(ge=0)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    reads: int = Field(ge=0, description="Records in this file.")


class DemultiplexedSample(Payload):
    sample_id: str
    sample_name: str
    sample_number: int = Field(ge=0, description="The S<n> of the file names; 0 = Undetermined.")
    project: str | None = None
    index: str | None = None
    index2: str | None = None
    lanes: list[int]
    read_count: int = Field(ge=0, description="Clusters (read pairs) assigned to the sample, PF only by default.")
    base_count: int = Field(ge=0, description="Bases written over all non-index reads.")
    q30_fraction: float = Field(ge=0.0, le=1.0, description="Fraction of written bases with quality >= 30.")
    files: list[FastqFile]


class DemultiplexedRunSummary(Payload):
    instrument_model: str | None = None
    read_lengths: list[int] = Field(description="Cycles per non-index read, in read order.")
    index_lengths: list[int] = Field(default_factory=list)
    paired: bool


class SamplesDemultiplexedData(Payload):
    run_id: str
    run_name: str
    instrument: str
    flowcell: str
    project: str | None = None
    owner: str
    output_root_uri: str
    run: DemultiplexedRunSummary
    samples: list[DemultiplexedSample]
    undetermined: DemultiplexedSample | None = None
    reports: list[FileRef] = Field(default_factory=list)
    total_clusters_pf: int = Field(ge=0)


class SamplesDemultiplexed(Event):
    routing_key = "ingest.samples.demultiplexed"
    producer_service = "ingest"
    type: Literal["SamplesDemultiplexed"] = "SamplesDemultiplexed"
    data: SamplesDemultiplexedData


class DemultiplexingFailedData(Payload):
    run_id: str
    run_name: str
    stage: str = Field(description="Where it failed: sample-sheet, basecalls, output, ...")
    reason: str = Field(description="What a person can act on, naming the file and the problem.")


class DemultiplexingFailed(Event):
    routing_key = "ingest.demultiplexing.failed"
    producer_service = "ingest"
    type: Literal["DemultiplexingFailed"] = "DemultiplexingFailed"
    data: DemultiplexingFailedData


# --- repository --------------------------------------------------------------------------------------------


class AnalysisKind(StrEnum):
    VARIANTS = "variants"
    EXPRESSION = "expression"


class AnalysisPublishedData(Payload):
    analysis_accession: str
    study_accession: str | None = None
    kind: AnalysisKind
    title: str | None = None
    access_level: AccessLevel = AccessLevel.PUBLIC
    files: list[FileRef]
    owner: str | None = None
    # variants
    dataset_id: str | None = Field(default=None, description="Beacon dataset the VCF feeds (variants).")
    assembly: str | None = Field(default=None, description="GRCh37, GRCh38, ... (variants).")
    # expression
    matrix_format: str | None = Field(default=None, description="tsv or loom (expression).")
    units: str | None = Field(default=None, description="TPM, FPKM, counts, ... (expression).")
    feature_id_column: str | None = None
    sample_ids: list[str] | None = None


class AnalysisPublished(Event):
    routing_key = "repository.analysis.published"
    producer_service = "repository"
    type: Literal["AnalysisPublished"] = "AnalysisPublished"
    data: AnalysisPublishedData


class AnalysisWithdrawnData(Payload):
    analysis_accession: str
    kind: AnalysisKind
    dataset_id: str | None = None
    reason: str = Field(description="deleted, access-revoked, superseded, ...")


class AnalysisWithdrawn(Event):
    routing_key = "repository.analysis.withdrawn"
    producer_service = "repository"
    type: Literal["AnalysisWithdrawn"] = "AnalysisWithdrawn"
    data: AnalysisWithdrawnData


class ReviewRequestedData(Payload):
    review_id: str
    resource_type: str = Field(description="study, sample, ... (the types configured to need human review).")
    alias: str | None = None
    owner: str = Field(description="Subject of the submitter.")


class ReviewRequested(Event):
    routing_key = "repository.review.requested"
    producer_service = "repository"
    type: Literal["ReviewRequested"] = "ReviewRequested"
    data: ReviewRequestedData


class ReviewDecidedData(Payload):
    review_id: str
    resource_type: str
    decision: Literal["approved", "rejected"]
    accession: str | None = Field(default=None, description="The resource created on approval.")
    owner: str = Field(description="Subject of the submitter.")
    reviewer: str | None = None
    comment: str | None = None


class ReviewDecided(Event):
    routing_key = "repository.review.decided"
    producer_service = "repository"
    type: Literal["ReviewDecided"] = "ReviewDecided"
    data: ReviewDecidedData


# --- beacon / rnaget -------------------------------------------------------------------------------------


class VariantsIndexedData(Payload):
    dataset_id: str
    analysis_accession: str | None = None
    assembly: str
    index_version: str
    variant_count: int = Field(ge=0, description="Distinct (chrom, pos, ref, alt) alleles indexed.")
    call_count: int = Field(ge=0)
    sample_count: int = Field(ge=0)


class VariantsIndexed(Event):
    routing_key = "beacon.variants.indexed"
    producer_service = "beacon"
    type: Literal["VariantsIndexed"] = "VariantsIndexed"
    data: VariantsIndexedData


class ExpressionIndexedData(Payload):
    expression_id: str
    analysis_accession: str | None = None
    study_id: str | None = None
    features: int = Field(ge=0)
    samples: int = Field(ge=0)
    units: str | None = None


class ExpressionIndexed(Event):
    routing_key = "rnaget.expression.indexed"
    producer_service = "rnaget"
    type: Literal["ExpressionIndexed"] = "ExpressionIndexed"
    data: ExpressionIndexedData


# --- auth ---------------------------------------------------------------------------------------------------


class TokenRevokedData(Payload):
    jti: str | None = Field(default=None, description="The revoked access token's id, if one token.")
    client_id: str | None = Field(default=None, description="Every token of this client issued before revoked_at.")
    subject: str | None = Field(default=None, description="Every token of this subject issued before revoked_at.")
    revoked_at: datetime = Field(default_factory=_now)
    expires_at: datetime | None = Field(default=None, description="When the deny entry may be forgotten.")
    reason: str = "revoked"


class TokenRevoked(Event):
    routing_key = "auth.token.revoked"
    producer_service = "auth"
    type: Literal["TokenRevoked"] = "TokenRevoked"
    data: TokenRevokedData


CATALOG: tuple[type[Event], ...] = (
    RunRegistered,
    RunUploaded,
    SamplesDemultiplexed,
    DemultiplexingFailed,
    AnalysisPublished,
    AnalysisWithdrawn,
    ReviewRequested,
    ReviewDecided,
    VariantsIndexed,
    ExpressionIndexed,
    TokenRevoked,
)
EVENT_TYPES: dict[str, type[Event]] = {cls.model_fields["type"].default: cls for cls in CATALOG}
ROUTING_KEYS: dict[str, type[Event]] = {cls.routing_key: cls for cls in CATALOG}


class UnknownEvent(ValueError):
    """The body is not an event of the catalog (unknown type, or not JSON)."""


def parse_event(body: bytes | str) -> Event:
    """Decode an envelope into its catalog class.

    Raises:
        UnknownEvent: the type is not in the catalog.
        pydantic.ValidationError: the payload does not match the contract.
    """
    try:
        head = _EnvelopeHead.model_validate_json(body)
    except ValidationError as exc:
        raise UnknownEvent(f"not an event envelope: {exc.errors()[0]['msg']}") from exc
    cls = EVENT_TYPES.get(head.type)
    if cls is None:
        raise UnknownEvent(f"unknown event type {head.type!r}")
    return cls.model_validate_json(body)


class _EnvelopeHead(BaseModel):
    model_config = ConfigDict(extra="ignore")
    type: str


def render_markdown() -> str:
    """The event catalog as Markdown, generated from the models (`docs/events.md`)."""
    out = [
        "# Events",
        "",
        "Generated from `libs/common/events.py` by `python -m libs.common.events > docs/events.md`; do not edit.",
        "",
        "Envelope: `id` (unique, consumers deduplicate on it), `type`, `version`, `occurred_at` (UTC),",
        "`producer`, `correlation_id` (the X-Request-ID that caused the event), `data` (below).",
        "Exchange `seqhub.events` (topic); routing key per type; consumers ignore unknown fields.",
        "",
    ]
    for cls in CATALOG:
        out += [f"## {cls.model_fields['type'].default}", "", f"Routing key `{cls.routing_key}`, produced by "
                f"`{cls.producer_service}`.", ""]
        out += _fields_table(cls.model_fields["data"].annotation)
    return "\n".join(out) + "\n"


def _fields_table(model: Any, prefix: str = "") -> list[str]:
    rows = ["| field | type | meaning |", "|---|---|---|"] if not prefix else []
    nested: list[tuple[str, Any]] = []
    for name, field in model.model_fields.items():
        ann = field.annotation
        type_name = getattr(ann, "__name__", None) or str(ann).replace("libs.common.events.", "")
        type_name = type_name.replace("|", "\\|")
        rows.append(f"| `{prefix}{name}` | {type_name} | {field.description or ''} |")
        for candidate in (*getattr(ann, "__args__", ()), ann):
            if isinstance(candidate, type) and issubclass(candidate, Payload):
                nested.append((f"{prefix}{name}.", candidate))
    for sub_prefix, sub in nested:
        rows += _fields_table(sub, sub_prefix)
    return rows + ([""] if not prefix else [])


if __name__ == "__main__":
    sys.stdout.write(render_markdown())
