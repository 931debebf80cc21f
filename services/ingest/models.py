"""Pydantic models of the ingest service: API request/response bodies and the stored documents.

Plain pydantic only (no aiohttp, no pymongo). Request models forbid unknown fields so typos are a 400.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from libs.common.events import RunInfoSummary


class RunStatus(StrEnum):
    UPLOADING = "uploading"
    UPLOADED = "uploaded"
    DEMULTIPLEXING = "demultiplexing"
    DEMULTIPLEXED = "demultiplexed"
    FAILED = "failed"
    STALLED = "stalled"


# Runs in these states still accept files.
OPEN_STATUSES = frozenset({RunStatus.UPLOADING, RunStatus.STALLED})

COMPLETION_MARKERS = ("CopyComplete.txt", "RTAComplete.txt")

Sha256Hex = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]


class DeclaredFile(BaseModel):
    """A file the agent says the run folder holds (beyond what RunInfo implies)."""

    model_config = ConfigDict(extra="forbid")
    path: str
    size: int | None = Field(default=None, ge=0)
    sha256: Sha256Hex | None = None


class RunCreate(BaseModel):
    """Body of POST /runs."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(description="run folder name, e.g. 240601_A00123_0042_AHXXXXXXXX")
    instrument: str | None = None
    flowcell: str | None = None
    run_info_xml: str = Field(min_length=1, max_length=4_000_000, description="the content of RunInfo.xml")
    format: Literal["bcl", "bcl.gz", "cbcl", "bcl.bgzf"] = Field(description="base-call layout of the run folder")
    project: str | None = None
    completion_marker: Literal["CopyComplete.txt", "RTAComplete.txt"] = "CopyComplete.txt"
    files: list[DeclaredFile] = Field(default_factory=list)


class DeclareFiles(BaseModel):
    """Body of POST /runs/{id}/files: more files the run folder holds."""

    model_config = ConfigDict(extra="forbid")
    files: list[DeclaredFile] = Field(min_length=1)


class StoredFile(BaseModel):
    """One file of a run held in the file store."""

    path: str
    size: int
    sha256: str
    uri: str


class RunView(BaseModel):
    """A run as GET /runs/{id} shows it."""

    id: str
    name: str
    instrument: str | None
    flowcell: str | None
    project: str | None
    owner: str
    status: RunStatus
    completion_marker: str
    run_info: RunInfoSummary
    files_expected: int
    files_received: int
    bytes_expected: int | None
    bytes_received: int
    missing_expected: int
    declared_pending: int
    folder_uri: str
    sample_sheet_uri: str | None = None
    created_at: datetime
    updated_at: datetime
    last_activity_at: datetime
    uploaded_at: datetime | None = None


class RunPage(BaseModel):
    items: list[RunView]
    total: int
    offset: int
    limit: int


class UploadState(StrEnum):
    """Life of one tus upload: receiving → complete (all bytes) → stored (moved into its run), or gone."""

    RECEIVING = "receiving"
    COMPLETE = "complete"
    STORED = "stored"
