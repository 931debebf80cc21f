"""Settings of the beacon service: the common block plus its own `SEQHUB_BEACON_*` variables."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from libs.common.config import CommonSettings
from libs.common.passports import TrustedIssuer

from .models import RegisteredBeacon


class BeaconSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SEQHUB_BEACON_", frozen=True, extra="ignore")

    common: CommonSettings = Field(default_factory=CommonSettings)
    beacon_id: str = "org.seqhub.beacon"
    name: str = "seqhub beacon"
    description: str = "GA4GH Beacon v1 over seqhub's published variant analyses"
    organization_id: str = "org.seqhub"
    organization_name: str = "seqhub"
    trusted_visa_issuers: list[TrustedIssuer] = Field(default_factory=list)
    """Passport visa issuers we accept, with inline `jwks` or a `jwks_url` loaded at startup."""
    dataset_url_prefix: str | None = None
    """Prefix stripped from ControlledAccessGrants values; default `<public_url>/beacon/datasets/`."""
    refresh_seconds: float = 5.0
    """How often the live datasets are re-read from MongoDB (loads and withdrawals by other replicas)."""
    query_budget: int = 0
    """Queries per caller per `query_budget_window_seconds` (0 = unlimited)."""
    query_budget_window_seconds: float = 60.0
    network_beacons: list[RegisteredBeacon] = Field(default_factory=list)
    network_timeout_seconds: float = 5.0
    index_dir: Path | None = None
    """Where index files live; default `<data_root>/beacon/index`."""

    def index_root(self) -> Path:
        return self.index_dir or self.common.service_data_dir("beacon") / "index"

    def grant_prefix(self) -> str:
        return self.dataset_url_prefix or f"{self.common.public_url.rstrip('/')}/beacon/datasets/"
