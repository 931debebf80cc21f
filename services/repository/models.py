"""Plain models of the repository: resource types, stored resources, field errors, reviews.

Pure pydantic and stdlib; imports neither aiohttp nor pymongo.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

GMI_LINKS = "http://www.g-m-i.org/links/"


@dataclass(frozen=True, slots=True)
class TypeInfo:
    """Everything that differs between resource types."""

    name: str  # "study"
    collection: str  # URL segment and Mongo collection: "studies"
    xsd: str  # schema file
    set_tag: str  # "STUDY_SET"
    tag: str  # "STUDY"
    prefix: str  # accession prefix (seqhub's, like ENA's ERP/ERS/ERX/ERR/ERZ/ERA)

    @property
    def json_type(self) -> str:
        return f"application/vnd.gmi.{self.name}-v1+json"

    @property
    def xml_type(self) -> str:
        return f"application/vnd.gmi.{self.name}-v1+xml"


class ResourceType(enum.Enum):
    STUDY = TypeInfo("study", "studies", "SRA.study.xsd", "STUDY_SET", "STUDY", "SHP")
    SAMPLE = TypeInfo("sample", "samples", "SRA.sample.xsd", "SAMPLE_SET", "SAMPLE", "SHS")
    EXPERIMENT = TypeInfo("experiment", "experiments", "SRA.experiment.xsd", "EXPERIMENT_SET", "EXPERIMENT", "SHX")
    RUN = TypeInfo("run", "runs", "SRA.run.xsd", "RUN_SET", "RUN", "SHR")
    ANALYSIS = TypeInfo("analysis", "analyses", "SRA.analysis.xsd", "ANALYSIS_SET", "ANALYSIS", "SHZ")
    SUBMISSION = TypeInfo("submission", "submissions", "SRA.submission.xsd", "SUBMISSION_SET", "SUBMISSION", "SHA")

    @property
    def info(self) -> TypeInfo:
        value: TypeInfo = self.value
        return value

    @classmethod
    def from_collection(cls, collection: str) -> ResourceType:
        return _BY_COLLECTION[collection]

    @classmethod
    def from_name(cls, name: str) -> ResourceType:
        for rtype in cls:
            if rtype.info.name == name:
                return rtype
        raise KeyError(name)

    @classmethod
    def from_set_tag(cls, tag: str) -> ResourceType | None:
        for rtype in cls:
            if tag in (rtype.info.set_tag, rtype.info.tag):
                return rtype
        return None


_BY_COLLECTION: dict[str, ResourceType] = {rtype.info.collection: rtype for rtype in ResourceType}


def format_accession(rtype: ResourceType, number: int) -> str:
    """Stable seqhub accession, e.g. SHS000042 for the 42nd sample."""
    return f"{rtype.info.prefix}{number:06d}"


class FieldError(BaseModel):
    """One invalid field: the XSD path, the GMI JSON field name and the reason."""

    model_config = ConfigDict(frozen=True)

    path: str
    field: str
    reason: str


class Visibility(enum.StrEnum):
    PUBLIC = "public"
    PRIVATE = "private"


class AccessLevel(enum.StrEnum):
    PUBLIC = "PUBLIC"
    REGISTERED = "REGISTERED"
    CONTROLLED = "CONTROLLED"


class Parents(BaseModel):
    """Accessions of the resources this one hangs under in the GMI hierarchy."""

    model_config = ConfigDict(frozen=True)

    study: str | None = None
    sample: str | None = None
    experiment: str | None = None
    runs: tuple[str, ...] = ()
    samples: tuple[str, ...] = ()


class DataFile(BaseModel):
    """A file of a run or analysis held in the file store."""

    model_config = ConfigDict(frozen=True)

    name: str
    uri: str
    size: int
    sha256: str
    content_type: str = "application/octet-stream"
    md5: str | None = None


class ActionResult(BaseModel):
    """What one executed SUBMISSION action did (kept with the submission as its receipt)."""

    model_config = ConfigDict(frozen=True)

    action: str  # RELEASE, HOLD, SUPPRESS, CANCEL, KILL
    target: str  # accession
    type: str  # resource type name
    result: str  # "public", "private" or "deleted"
    hold_until: date | None = None


class Resource(BaseModel):
    """A stored resource: the GMI JSON body (the XSD element in GMI form) plus bookkeeping."""

    model_config = ConfigDict(frozen=True)

    accession: str
    rtype: ResourceType
    alias: str
    owner: str
    body: dict[str, Any]
    parents: Parents = Parents()
    files: tuple[DataFile, ...] = ()
    visibility: Visibility = Visibility.PUBLIC
    version: int = 1
    created: datetime
    modified: datetime
    analysis_meta: dict[str, Any] | None = None
    receipt: tuple[ActionResult, ...] = ()  # submissions: what their actions did
    hold_until: date | None = None  # private until this day (HOLD / SUPPRESS with HoldUntilDate), then released

    @property
    def etag(self) -> str:
        return f'"{self.accession}-{self.version}"'

    @property
    def title(self) -> str | None:
        return _title(self.rtype, self.body)


def _title(rtype: ResourceType, body: dict[str, Any]) -> str | None:
    if rtype is ResourceType.STUDY:
        descriptor = body.get("descriptor") or {}
        title = descriptor.get("study_title")
    else:
        title = body.get("title")
    return title.strip() if isinstance(title, str) else None


class ReviewStatus(enum.StrEnum):
    PENDING = "pending review"
    APPROVED = "review complete"
    REJECTED = "rejected"


class Review(BaseModel):
    """A resource waiting for (or past) human review before it is created."""

    model_config = ConfigDict(frozen=True)

    id: str
    rtype: ResourceType
    owner: str
    body: dict[str, Any]
    parents: Parents = Parents()
    status: ReviewStatus = ReviewStatus.PENDING
    comment: str | None = None
    accession: str | None = None  # set on approval
    created: datetime
    modified: datetime


class ReviewDecision(BaseModel):
    model_config = ConfigDict(extra="forbid")

    decision: str = Field(pattern="^(approve|reject)$")
    comment: str | None = Field(default=None, max_length=2000)


class ListQuery(BaseModel):
    """Filters and paging of a collection GET."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    title: str | None = Field(default=None, max_length=200)
    alias: str | None = Field(default=None, max_length=200)
    taxon: int | None = None
    attribute: tuple[str, str] | None = None  # (tag, value)
    created_after: datetime | None = None
    created_before: datetime | None = None
    modified_after: datetime | None = None
    limit: int = Field(default=20, ge=1, le=200)
    after: str | None = Field(default=None, max_length=64)  # cursor: last accession of the previous page


class Page(BaseModel):
    model_config = ConfigDict(frozen=True)

    items: tuple[Resource, ...]
    next_after: str | None
