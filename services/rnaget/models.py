"""RNAget objects as the API serves them (pydantic, plain data; no aiohttp, no pymongo).

Field names follow the spec (camelCase). The released 1.0.0 objects are Project, Study, Ticket and
Filter; the draft's "file objects" (``/expressions/{id}``, ``/…/search``) are `FileObject`.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

MEDIA_TYPE = "application/vnd.ga4gh.rnaget.v1.0.0+json"
ID_PATTERN = r"^[A-Za-z0-9._~-]{1,128}$"


class Kind(StrEnum):
    EXPRESSION = "expression"
    CONTINUOUS = "continuous"


class MatrixFormat(StrEnum):
    LOOM = "loom"
    TSV = "tsv"

    @property
    def media_type(self) -> str:
        return "application/vnd.loom" if self is MatrixFormat.LOOM else "text/tab-separated-values"


class _Api(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    def dump(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=True, by_alias=True)


class Project(_Api):
    id: str = Field(pattern=ID_PATTERN)
    version: str | None = None
    tags: list[str] | None = None
    name: str | None = None
    description: str | None = None


class Study(Project):
    parentProjectID: str | None = None
    genome: str | None = None


class MatrixRecord(BaseModel):
    """A stored expression or continuous matrix: metadata in MongoDB, values in the matrix file."""

    model_config = ConfigDict(extra="ignore")
    id: str = Field(pattern=ID_PATTERN)
    kind: Kind
    version: str | None = None
    tags: list[str] | None = None
    name: str | None = None
    description: str | None = None
    studyID: str | None = None
    projectID: str | None = None
    units: str
    file: str = Field(description="Matrix file path relative to the service data directory.")
    rows: int = Field(ge=0)
    cols: int = Field(ge=0)
    analysis_accession: str | None = None
    access_level: str = "PUBLIC"
    created_at: datetime | None = None


class Ticket(_Api):
    id: str | None = None
    version: str | None = None
    studyID: str | None = None
    fileType: MatrixFormat
    units: str | None = None
    url: str
    headers: dict[str, str] | None = None


class FileObject(_Api):
    """The draft's expression/continuous object: where to download the (sliced) matrix."""

    id: str
    version: str | None = None
    tags: list[str] | None = None
    fileType: MatrixFormat
    studyID: str | None = None
    units: str | None = None
    url: str
    URL: str = Field(description="The seed's upper-case spelling of url, kept for draft clients.")
    headers: dict[str, str] | None = None


class FilterInfo(_Api):
    filter: str
    fieldType: str
    description: str
    values: list[str] | None = None


class ServiceInfo(_Api):
    id: str
    name: str
    type: dict[str, str]
    description: str
    organization: dict[str, str]
    version: str
    supported: dict[str, bool] | None = None
