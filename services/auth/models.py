"""Records of the auth service (users, clients, codes, device grants, refresh tokens, consents, personal
access tokens) and the request/response models of its admin API. Plain pydantic: no I/O.

Secrets are never stored in clear: client secrets, refresh tokens, codes, device codes and personal
access tokens are stored as SHA-256 digests (`hashing.digest`), passwords as argon2id hashes.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from libs.common import scopes

USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,63}$")
CLIENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{1,63}$")
GRANT_TYPES = (
    "authorization_code",
    "refresh_token",
    "client_credentials",
    "urn:ietf:params:oauth:grant-type:device_code",
)
DEFAULT_USER_SCOPES = (
    "repository:read",
    "repository:write",
    "project:*:read",
    "project:*:write",
    "ingest:upload",
    "beacon:registered",
    "rnaget:read",
    "offline_access",
    "ga4gh_passport_v1",
)
"""What an ordinary user may delegate to an app (admins also get `admin` and `beacon:dataset:*`)."""

AuthMethod = Literal["client_secret_basic", "client_secret_post", "none"]


def _check_patterns(values: list[str]) -> list[str]:
    for value in values:
        if not scopes.is_valid_pattern(value):
            raise ValueError(f"unknown scope or pattern {value[:80]!r}")
    return sorted(set(values))


class VisaGrant(BaseModel):
    """A visa the auth service asserts for a user (issued as a signed visa JWT on `/passport`)."""

    model_config = ConfigDict(extra="forbid")
    type: Literal["ResearcherStatus", "AcceptedTermsAndPolicies", "ControlledAccessGrants"]
    value: str = Field(min_length=1, max_length=512)
    source: str = Field(min_length=1, max_length=512)
    by: Literal["self", "peer", "system", "so", "dac"] | None = None
    asserted: int
    expires_at: int


class User(BaseModel):
    """A person who logs in. `scopes` are the patterns this user may grant to apps."""

    username: str
    password_hash: str
    display_name: str = ""
    email: str = ""
    scopes: list[str] = Field(default_factory=lambda: list(DEFAULT_USER_SCOPES))
    disabled: bool = False
    failed_logins: int = 0
    locked_until: float = 0.0
    visas: list[VisaGrant] = Field(default_factory=list)
    created_at: float = 0.0


class Client(BaseModel):
    """A registered OAuth2 client (RFC 6749 §2). Public clients have no secret and must use PKCE."""

    client_id: str
    name: str
    secret_digest: str | None = None
    redirect_uris: list[str] = Field(default_factory=list)
    grant_types: list[str] = Field(default_factory=list)
    scopes: list[str] = Field(default_factory=list)
    can_introspect: bool = False
    disabled: bool = False
    created_at: float = 0.0

    @property
    def public(self) -> bool:
        return self.secret_digest is None


class AuthorizationCode(BaseModel):
    """An issued authorization code (stored by digest), bound to client, redirect URI, PKCE challenge."""

    code_digest: str
    client_id: str
    username: str
    redirect_uri: str
    scope: str
    code_challenge: str
    code_challenge_method: str
    auth_time: float
    expires_at: float
    used_at: float | None = None
    family_id: str
    issued_jti: str | None = None
    issued_exp: float | None = None


class DeviceGrant(BaseModel):
    """An RFC 8628 device authorization: pending until the user approves or denies it."""

    device_code_digest: str
    user_code: str
    client_id: str
    scope: str
    expires_at: float
    interval: int
    last_poll_at: float | None = None
    status: Literal["pending", "approved", "denied", "consumed"] = "pending"
    username: str | None = None


class RefreshToken(BaseModel):
    """A refresh token (by digest). Rotation marks it `rotated_at`; a second use revokes its family."""

    token_digest: str
    family_id: str
    client_id: str
    username: str
    scope: str
    issued_at: float
    expires_at: float
    rotated_at: float | None = None
    revoked_at: float | None = None


class PersonalAccessToken(BaseModel):
    """A user's token for HTTP Basic (RFC 7617) on the repository; shown once, stored by digest."""

    token_id: str
    token_digest: str
    username: str
    name: str
    scope: str
    created_at: float
    expires_at: float | None = None
    revoked_at: float | None = None


# ---- admin API bodies --------------------------------------------------------------------------------


class CreateUser(BaseModel):
    model_config = ConfigDict(extra="forbid")
    username: str
    password: str = Field(min_length=10, max_length=256)
    display_name: str = Field(default="", max_length=200)
    email: str = Field(default="", max_length=320)
    scopes: list[str] | None = None

    @field_validator("username")
    @classmethod
    def _username(cls, v: str) -> str:
        if not USERNAME.match(v):
            raise ValueError("2-64 characters: lower-case letters, digits, '.', '_' or '-'")
        return v

    @field_validator("scopes")
    @classmethod
    def _scopes(cls, v: list[str] | None) -> list[str] | None:
        return None if v is None else _check_patterns(v)


class CreateClient(BaseModel):
    model_config = ConfigDict(extra="forbid")
    client_id: str
    name: str = Field(min_length=1, max_length=200)
    public: bool = False
    redirect_uris: list[str] = Field(default_factory=list, max_length=20)
    grant_types: list[str] = Field(min_length=1)
    scopes: list[str] = Field(min_length=1)
    can_introspect: bool = False

    @field_validator("client_id")
    @classmethod
    def _client_id(cls, v: str) -> str:
        if not CLIENT_ID.match(v):
            raise ValueError("2-64 characters: letters, digits, '.', '_' or '-'")
        return v

    @field_validator("grant_types")
    @classmethod
    def _grants(cls, v: list[str]) -> list[str]:
        for g in v:
            if g not in GRANT_TYPES:
                raise ValueError(f"unsupported grant type {g[:80]!r}")
        return sorted(set(v))

    @field_validator("scopes")
    @classmethod
    def _scopes(cls, v: list[str]) -> list[str]:
        return _check_patterns(v)

    @field_validator("redirect_uris")
    @classmethod
    def _uris(cls, v: list[str]) -> list[str]:
        for uri in v:
            if not re.match(r"^(https://|http://(127\.0\.0\.1|localhost|\[::1\])[:/])[^#\s]+$", uri):
                raise ValueError(f"redirect URI must be https (or http on loopback), no fragment: {uri[:80]!r}")
        return v


class CreateToken(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=100)
    scope: str
    expires_in_days: int | None = Field(default=90, ge=1, le=3650)

    @field_validator("scope")
    @classmethod
    def _scope(cls, v: str) -> str:
        return scopes.format_scopes(scopes.parse_scopes(v))


class GrantVisa(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["ResearcherStatus", "AcceptedTermsAndPolicies", "ControlledAccessGrants"]
    value: str = Field(min_length=1, max_length=512)
    source: str = Field(min_length=1, max_length=512)
    by: Literal["self", "peer", "system", "so", "dac"] | None = "dac"
    valid_days: int = Field(default=365, ge=1, le=3650)
