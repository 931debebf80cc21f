"""Settings of the repository service: the common block plus its own `SEQHUB_REPOSITORY_*` variables."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from libs.common.config import CommonSettings
from services.repository.models import ResourceType


class RepositorySettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SEQHUB_REPOSITORY_", frozen=True, extra="ignore")

    common: CommonSettings = Field(default_factory=CommonSettings)
    review_types: str = "study"
    """Comma-separated resource types whose POSTs wait for human review (202 + /<type>-to-review/{id})."""
    introspection_url: str | None = None
    """RFC 7662 endpoint of the auth service for Basic (user + personal access token); default
    `<public_url>/auth/introspect`."""
    introspection_client_id: str = "repository"
    introspection_client_secret: str = ""
    """Empty = HTTP Basic is not offered (Bearer only)."""
    basic_cache_seconds: float = 10.0
    max_body_bytes: int = 16 * 1024 * 1024
    """Largest JSON/XML body (ENA's per-document limit is 15 MB); multipart file parts stream past it."""
    max_upload_bytes: int = 5 * 1024**3
    """Total size of the file parts of one multipart/mixed creation; bigger data goes through resumable upload."""
    hold_sweep_seconds: float = Field(default=3600.0, ge=0)
    """How often objects held until a date (SUBMISSION HOLD / SUPPRESS with HoldUntilDate) are released once the
    date has come; also once at start-up. 0 = never."""

    @property
    def review_type_set(self) -> frozenset[ResourceType]:
        names = {n.strip() for n in self.review_types.split(",") if n.strip()}
        return frozenset(ResourceType.from_name(n) for n in names)

    @property
    def resolved_introspection_url(self) -> str:
        return self.introspection_url or f"{self.common.public_url.rstrip('/')}/auth/introspect"
