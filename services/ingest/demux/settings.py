"""Settings of the demultiplexing worker (`SEQHUB_INGEST_DEMUX_*`)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class DemuxSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SEQHUB_INGEST_DEMUX_", frozen=True, extra="ignore")

    threads: int = Field(default=2, ge=1, le=256, description="Worker processes per run (tiles in parallel).")
    compression_level: int = Field(default=4, ge=0, le=9, description="FASTQ gzip level, zlib scale.")
    barcode_mismatches: int | None = Field(default=None, ge=0, le=2, description="Override the sample sheet.")
    output_prefix: str = Field(default="demux", description="File-store folder: <prefix>/<run_id>/.")
