"""Settings of the rnaget service: the common block plus its own `SEQHUB_RNAGET_*` variables."""

from __future__ import annotations

from pathlib import Path

from aiohttp import web
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from libs.common.config import CommonSettings
from services.rnaget.models import MatrixFormat


class RnagetSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SEQHUB_RNAGET_", frozen=True, extra="ignore")

    common: CommonSettings = Field(default_factory=CommonSettings)
    max_slice_cells: int = Field(default=50_000_000, ge=1)
    """Largest slice (rows x columns) one download may return; above it a 400 asks the client to narrow it."""
    default_format: MatrixFormat = MatrixFormat.LOOM
    """Format of by-id tickets and downloads when the client names none (the draft's default is loom)."""
    require_token: bool = False
    """When true every data route needs a bearer token with rnaget:read; otherwise public matrices are open."""
    base_url: str | None = None
    """Origin used in ticket URLs (e.g. https://seqhub.example.org); default: the request's own origin."""
    open_files: int = Field(default=16, ge=1)
    """Matrix files kept open (labels and id maps in memory)."""
    storage: Path | None = None
    """Where matrix files live; default: `<data_root>/rnaget`."""

    def data_dir(self, app: web.Application | None = None) -> Path:
        return self.storage or self.common.service_data_dir("rnaget")
