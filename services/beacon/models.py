"""Pydantic models of the Beacon v1 wire format (1.0.1 contract plus the 1.1.0 additions).

Plain pydantic: no aiohttp, no pymongo.  Field names are the spec's camelCase names so that
``model_dump(exclude_none=True)`` is the JSON body.  ``info`` objects follow 1.1.0 (objects, not
key/value arrays), which is what the 1.1.0 schema our tests validate against expects.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

API_VERSION = "v1.1.0"


class AccessLevel(StrEnum):
    PUBLIC = "PUBLIC"
    REGISTERED = "REGISTERED"
    CONTROLLED = "CONTROLLED"


IncludeDatasetResponses = Literal["ALL", "HIT", "MISS", "NONE"]


class _Wire(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AlleleRequest(_Wire):
    """A validated query, echoed back as ``alleleRequest``."""

    referenceName: str
    referenceBases: str
    assemblyId: str
    start: int | None = None
    end: int | None = None
    startMin: int | None = None
    startMax: int | None = None
    endMin: int | None = None
    endMax: int | None = None
    alternateBases: str | None = None
    variantType: str | None = None
    mateName: str | None = None
    datasetIds: list[str] | None = None
    includeDatasetResponses: IncludeDatasetResponses = "NONE"


class BeaconError(_Wire):
    errorCode: int
    errorMessage: str


class DatasetAlleleResponse(_Wire):
    datasetId: str
    exists: bool
    frequency: float | None = Field(default=None, ge=0, le=1)
    variantCount: int | None = Field(default=None, ge=0)
    callCount: int | None = Field(default=None, ge=0)
    sampleCount: int | None = Field(default=None, ge=0)
    note: str | None = None
    externalUrl: str | None = None
    info: dict[str, Any] | None = None


class AlleleResponse(_Wire):
    beaconId: str
    apiVersion: str = API_VERSION
    exists: bool | None = None
    alleleRequest: AlleleRequest | None = None
    datasetAlleleResponses: list[DatasetAlleleResponse] = Field(default_factory=list)
    error: BeaconError | None = None
    info: dict[str, Any] | None = None


class Organization(_Wire):
    id: str
    name: str
    description: str | None = None
    welcomeUrl: str | None = None
    contactUrl: str | None = None


class DatasetInfo(_Wire):
    """The public description of one dataset (``Beacon.datasets[]``)."""

    id: str
    name: str
    assemblyId: str
    createDateTime: str
    updateDateTime: str
    description: str | None = None
    version: str | None = None
    variantCount: int | None = Field(default=None, ge=0)
    callCount: int | None = Field(default=None, ge=0)
    sampleCount: int | None = Field(default=None, ge=0)
    externalUrl: str | None = None
    info: dict[str, Any] | None = None


class BeaconInfo(_Wire):
    id: str
    name: str
    apiVersion: str = API_VERSION
    organization: Organization
    datasets: list[DatasetInfo]
    description: str | None = None
    version: str | None = None
    welcomeUrl: str | None = None
    createDateTime: str | None = None
    updateDateTime: str | None = None
    sampleAlleleRequests: list[AlleleRequest] | None = None
    info: dict[str, Any] | None = None


class DatasetMeta(BaseModel):
    """A dataset as stored in MongoDB: public description, access level and the live index version."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    id: str
    name: str
    assemblyId: str
    accessType: AccessLevel
    indexVersion: str
    variantCount: int = Field(ge=0, description="ALT alleles indexed (multi-allelic records split).")
    callCount: int = Field(ge=0, description="VCF records indexed.")
    sampleCount: int = Field(ge=0, description="Samples in the VCF header.")
    createDateTime: str
    updateDateTime: str
    description: str | None = None
    analysisAccession: str | None = None
    externalUrl: str | None = None
    withdrawn: bool = False


class RegisteredBeacon(BaseModel):
    """A beacon of the network: where to query it and what it said about itself last time."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")
    url: str = Field(pattern=r"^https?://", description="Base URL: <url>/query and <url>/service-info.")
    name: str | None = None
    serviceInfo: dict[str, Any] | None = None
    healthy: bool | None = None
    checkedAt: str | None = None
