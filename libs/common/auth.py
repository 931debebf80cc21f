"""Access-token verification for resource services: RFC 9068 JWTs checked locally against the issuer's JWKS.

`TokenVerifier` fetches the JWKS lazily (the issuer may start after us, or be the same process), caches it,
and refetches once when a token names an unknown `kid` (key rotation) — rate-limited so forged kids cannot
make us hammer the issuer. Only asymmetric algorithms are accepted, so `alg: none` and HS256-signed-with-the-
public-key tokens fail. `RevocationList` denies tokens revoked before expiry (fed by TokenRevoked events).
`require_scopes` is the one way handlers check permissions.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import aiohttp
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from libs.common.config import AuthSettings
from libs.common.errors import Forbidden, ServiceUnavailable, Unauthorized

ALGORITHMS = ["ES256", "RS256", "PS256", "EdDSA"]
ACCESS_TOKEN_TYPES = {"at+jwt", "application/at+jwt"}
REFETCH_INTERVAL = 30.0


@dataclass(frozen=True)
class Principal:
    """Who is calling and what they may do. Anonymous callers have no subject and no scopes."""

    subject: str | None = None
    client_id: str | None = None
    scopes: frozenset[str] = frozenset()
    token_id: str | None = None
    issued_at: int | None = None
    claims: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)
    via: str = "anonymous"
    """How the caller authenticated: anonymous, bearer or basic."""

    @property
    def authenticated(self) -> bool:
        return self.subject is not None

    def has(self, scope: str) -> bool:
        return scope in self.scopes or "admin" in self.scopes


ANONYMOUS = Principal()


def bearer_challenge(error: str | None = None, description: str | None = None, *, realm: str = "seqhub") -> str:
    parts = [f'realm="{realm}"']
    if error:
        parts.append(f'error="{error}"')
    if description:
        parts.append('error_description="{}"'.format(description.replace('"', "'")))
    return "Bearer " + ", ".join(parts)


def require_scopes(principal: Principal, *scopes: str, any_of: bool = False) -> None:
    """Raise Unauthorized for anonymous callers and Forbidden when scopes are missing.

    Args:
        principal: the caller (`request[keys.principal]`).
        scopes: required scopes (`admin` satisfies any).
        any_of: one of the scopes suffices instead of all.
    """
    if not principal.authenticated:
        raise Unauthorized("authentication required", headers={"WWW-Authenticate": bearer_challenge()})
    held = [principal.has(s) for s in scopes]
    if scopes and not (any(held) if any_of else all(held)):
        missing = " ".join(s for s, ok in zip(scopes, held, strict=True) if not ok)
        raise Forbidden(
            f"the token lacks the scope{'s' if len(scopes) > 1 else ''}: {missing}",
            headers={"WWW-Authenticate": bearer_challenge("insufficient_scope", f"requires {missing}")},
        )


class RevocationList:
    """Tokens denied before their expiry: by token id, or every token of a client/subject issued before a time."""

    def __init__(self) -> None:
        self.token_ids: set[str] = set()
        self.clients: dict[str, float] = {}
        self.subjects: dict[str, float] = {}

    def add(self, *, jti: str | None, client_id: str | None, subject: str | None, revoked_at: datetime) -> None:
        stamp = revoked_at.timestamp()
        if jti:
            self.token_ids.add(jti)
        if client_id:
            self.clients[client_id] = max(stamp, self.clients.get(client_id, 0.0))
        if subject:
            self.subjects[subject] = max(stamp, self.subjects.get(subject, 0.0))

    def denies(self, principal: Principal) -> bool:
        if principal.token_id and principal.token_id in self.token_ids:
            return True
        issued = float(principal.issued_at or 0)
        if principal.client_id and issued <= self.clients.get(principal.client_id, -1.0):
            return True
        return bool(principal.subject and issued <= self.subjects.get(principal.subject, -1.0))


class TokenVerifier:
    """Verifies bearer access tokens issued by one authorization server.

    Args:
        settings: issuer, audience, JWKS location or inline JWKS.
        http: client session used to fetch the JWKS (not needed with inline JWKS).
        revocations: deny list consulted after the signature checks.
    """

    def __init__(
        self, settings: AuthSettings, *, http: aiohttp.ClientSession | None = None,
        revocations: RevocationList | None = None, leeway: int = 30, max_verified: int = 10_000,
    ) -> None:
        self.settings = settings
        self.http = http
        self.revocations = revocations or RevocationList()
        self.leeway = leeway
        self._keys: KeySet | None = KeySet.import_key_set(settings.jwks) if settings.jwks else None  # type: ignore[arg-type]
        self._fetched_at = 0.0
        self._lock = asyncio.Lock()
        self._verified: dict[str, Principal] = {}
        self._max_verified = max_verified
        self._claims = jwt.JWTClaimsRegistry(
            leeway=leeway,
            iss={"essential": True, "value": settings.issuer},
            aud={"essential": True, "value": settings.audience},
            exp={"essential": True},
            sub={"essential": True},
        )

    async def verify(self, token: str) -> Principal:
        """Check signature, type, issuer, audience, expiry and revocation; returns the caller.

        A token verified once is remembered until it expires (bounded), so a client reusing its token pays one
        signature check, not one per request (an ES256 check costs more than a small request); the revocation
        list is still consulted on every request.

        Raises:
            Unauthorized: with an RFC 6750 `invalid_token` challenge, for any defect.
            ServiceUnavailable: the issuer's keys cannot be fetched.
        """
        hit = self._verified.get(token)
        if hit is not None and float(hit.claims.get("exp", 0)) > time.time():
            if self.revocations.denies(hit):
                raise _invalid("token revoked")
            return hit
        principal = await self._verify(token)
        if len(self._verified) >= self._max_verified:
            self._verified.clear()
        self._verified[token] = principal
        return principal

    async def _verify(self, token: str) -> Principal:
        kid = _unverified_kid(token)
        keys = await self._key_set(kid)
        try:
            decoded = jwt.decode(token, keys, algorithms=ALGORITHMS)
            self._claims.validate(decoded.claims)
        except JoseError as exc:
            raise _invalid(f"invalid token: {exc.description or exc.error}") from exc
        except ValueError as exc:
            raise _invalid("malformed token") from exc
        if decoded.header.get("typ", "").lower() not in ACCESS_TOKEN_TYPES:
            raise _invalid("not an access token (typ must be at+jwt)")
        principal = _principal(decoded.claims)
        if self.revocations.denies(principal):
            raise _invalid("token revoked")
        return principal

    async def _key_set(self, kid: str | None) -> KeySet:
        if self.settings.jwks:
            assert self._keys is not None
            return self._keys
        stale = time.monotonic() - self._fetched_at > self.settings.jwks_cache_seconds
        unknown = self._keys is not None and kid is not None and not _has_kid(self._keys, kid)
        if self._keys is None or stale or (unknown and time.monotonic() - self._fetched_at > REFETCH_INTERVAL):
            async with self._lock:
                if self._keys is None or time.monotonic() - self._fetched_at > REFETCH_INTERVAL or stale:
                    await self._fetch()
        assert self._keys is not None
        return self._keys

    async def _fetch(self) -> None:
        if self.http is None:
            raise ServiceUnavailable("token verification is not configured (no JWKS)")
        url = self.settings.resolved_jwks_url()
        try:
            async with self.http.get(url, timeout=aiohttp.ClientTimeout(total=5)) as response:
                response.raise_for_status()
                self._keys = KeySet.import_key_set(await response.json(content_type=None))
        except (aiohttp.ClientError, TimeoutError, ValueError, JoseError) as exc:
            if self._keys is None:
                raise ServiceUnavailable("the authorization server's keys are unavailable; try again") from exc
        self._fetched_at = time.monotonic()


def _has_kid(keys: KeySet, kid: str) -> bool:
    return any(key.kid == kid for key in keys.keys)


def _unverified_kid(token: str) -> str | None:
    try:
        head = token.split(".", 1)[0]
        header = jwt_header(head)
    except ValueError as exc:
        raise _invalid("malformed token") from exc
    kid = header.get("kid")
    return kid if isinstance(kid, str) else None


def jwt_header(segment: str) -> dict[str, Any]:
    """Decode a JWT header segment without verifying anything."""
    padded = segment + "=" * (-len(segment) % 4)
    value = json.loads(base64.urlsafe_b64decode(padded.encode()))
    if not isinstance(value, dict):
        raise ValueError("header is not an object")
    return value


def _principal(claims: dict[str, Any]) -> Principal:
    scope = claims.get("scope", "")
    scopes = frozenset(scope.split() if isinstance(scope, str) else scope)
    return Principal(
        subject=str(claims["sub"]), client_id=claims.get("client_id"), scopes=scopes,
        token_id=claims.get("jti"), issued_at=claims.get("iat"), claims=claims, via="bearer",
    )


def _invalid(description: str) -> Unauthorized:
    return Unauthorized(description, headers={"WWW-Authenticate": bearer_challenge("invalid_token", description)})


BasicVerifier = Callable[[str, str], Awaitable[Principal | None]]
"""(user name, password or personal access token) → the caller, or None when the credentials are wrong."""


def parse_basic(value: str) -> tuple[str, str]:
    """Decode the credentials of an `Authorization: Basic …` header (RFC 7617)."""
    try:
        user, _, password = base64.b64decode(value, validate=True).decode("utf-8").partition(":")
    except (ValueError, UnicodeDecodeError) as exc:
        raise Unauthorized("malformed Basic credentials", headers={"WWW-Authenticate": 'Basic realm="seqhub"'}) from exc
    return user, password
