"""Settings of the ingest service: the common block plus its own `SEQHUB_INGEST_*` variables."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from libs.common.config import CommonSettings


class IngestSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SEQHUB_INGEST_", frozen=True, extra="ignore")

    common: CommonSettings = Field(default_factory=CommonSettings)
    max_file_bytes: int = Field(default=100 << 30, ge=1, description="Tus-Max-Size: largest single file")
    max_run_bytes: int = Field(default=8 << 40, ge=1, description="largest run folder")
    upload_ttl_seconds: float = Field(default=7 * 24 * 3600, gt=0, description="idle time before an upload expires")
    lock_lease_seconds: float = Field(default=15.0, gt=0, description="lease of the per-upload writer lock")
    stalled_after_seconds: float = Field(default=6 * 3600, gt=0, description="no file for this long: stalled")
    tombstone_seconds: float = Field(default=7 * 24 * 3600, gt=0, description="expired uploads answer 410 this long")
    orphan_part_seconds: float = Field(
        default=24 * 3600,
        ge=60,
        description="a part file no upload document names, unwritten this long, is removed by the sweep",
    )
    sweep_interval_seconds: float = Field(default=60.0, gt=0, description="expiry/stall sweep period (seconds)")
    sweep: bool = Field(default=True, description="run the background sweep task")
    buffer_bytes: int = Field(default=1 << 20, ge=4096, description="write buffer per upload request")
    fsync: bool = Field(default=True, description="fsync part files before recording a new offset")
    demultiplex: bool = Field(default=True, description="consume RunUploaded and demultiplex in this process")
