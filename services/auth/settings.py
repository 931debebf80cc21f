"""Settings of the auth service: the common block plus its own `SEQHUB_AUTH_*` variables.

The issuer and audience of tokens are the common `SEQHUB_AUTH_ISSUER` / `SEQHUB_AUTH_AUDIENCE`, which every
resource service also verifies against, so they cannot disagree.
"""

from __future__ import annotations

import time
from pathlib import Path

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from libs.common.config import CommonSettings
from services.auth.signing import SigningKey


class AuthSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SEQHUB_AUTH_", frozen=True, extra="ignore")

    common: CommonSettings = Field(default_factory=CommonSettings)

    access_token_ttl: int = Field(600, ge=60, le=3600, description="JWT access token lifetime (s); keep short")
    refresh_token_ttl: int = Field(30 * 86400, ge=3600)
    code_ttl: int = Field(60, ge=10, le=600, description="authorization code lifetime (s)")
    device_code_ttl: int = Field(600, ge=60, le=3600)
    device_interval: int = Field(5, ge=1, le=60, description="minimum seconds between device polls")
    session_ttl: int = Field(8 * 3600, ge=300, description="browser sign-in session lifetime (s)")
    login_max_failures: int = Field(5, ge=1, description="consecutive failures that lock an account")
    lockout_seconds: int = Field(900, ge=1)
    login_rate: float = Field(1.0, gt=0, description="sustained login attempts per second per address")
    login_burst: int = Field(10, ge=1)
    token_rate: float = Field(200.0, gt=0, description="sustained token requests per second per address")
    token_burst: int = Field(400, ge=1)
    device_rate: float = Field(2.0, gt=0)
    device_burst: int = Field(20, ge=1)
    key_prepublish_seconds: int = Field(600, ge=0, description="a rotated-in key is published this long first")
    key_keep_seconds: int = Field(7200, ge=0, description="a rotated-out key stays published this long")
    signing_key_file: Path | None = Field(
        None,
        description="a PEM P-256 private key to sign with (a mounted secret); rotated in once, then kept like any key",
    )

    @field_validator("signing_key_file")
    @classmethod
    def _usable_key(cls, path: Path | None) -> Path | None:
        """Refuse to start on a missing or unusable key file, naming the file and the reason (never its bytes)."""
        if path is not None:
            read_pinned_key(path)
        return path

    key_reload_seconds: float = Field(60.0, gt=0, description="how often replicas reload the key ring")
    cli_client_id: str = Field("seqhub-cli", description="the public client `seqhub login` uses (created at start)")
    bootstrap_client_id: str | None = Field(None, description="a confidential admin client created at start")
    bootstrap_client_secret: SecretStr | None = None
    bootstrap_admin_username: str | None = Field(None, description="an admin user created at start if absent")
    bootstrap_admin_password: SecretStr | None = None


def read_pinned_key(path: Path) -> SigningKey:
    """The operator's pinned signing key from a PEM file.

    Raises:
        ValueError: the file is unreadable or holds no P-256 private key; the message names the file.
    """
    try:
        pem = path.read_bytes()
    except OSError as exc:
        raise ValueError(f"{path}: {exc.strerror or exc}") from None
    try:
        return SigningKey.from_pem(pem, now=time.time())
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None
