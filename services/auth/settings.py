"""Settings of the auth service: the common block plus its own `SEQHUB_AUTH_*` variables."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from libs.common.config import CommonSettings


class AuthSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SEQHUB_AUTH_", frozen=True, extra="ignore")

    common: CommonSettings = Field(default_factory=CommonSettings)
