"""Settings of the repository service: the common block plus its own `SEQHUB_REPOSITORY_*` variables."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from libs.common.config import CommonSettings


class RepositorySettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SEQHUB_REPOSITORY_", frozen=True, extra="ignore")

    common: CommonSettings = Field(default_factory=CommonSettings)
