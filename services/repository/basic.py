"""HTTP Basic credentials (user name + personal access token) checked with the auth service.

The GMI draft asks for Basic auth. The password is a personal access token that the auth service issued;
we ask its RFC 7662 introspection endpoint (client-authenticated) whether the token is active and belongs to
that user, and cache the answer briefly (positive and negative) so a burst of requests costs one call.
A revoked token is refused once the cache entry expires (``basic_cache_seconds``, default 10 s).
The introspection call is a port (`Introspector`), so unit tests pass a fake.
"""

from __future__ import annotations

import hashlib
import logging
import time
from typing import Any, Protocol

import aiohttp

from libs.common.auth import Principal
from libs.common.errors import ServiceUnavailable

log = logging.getLogger(__name__)


class Introspector(Protocol):
    async def __call__(self, token: str) -> dict[str, Any]: ...


class HttpIntrospector:
    """POST token=... to the introspection endpoint with the repository's client credentials."""

    def __init__(self, http: aiohttp.ClientSession, url: str, client_id: str, client_secret: str) -> None:
        self._http = http
        self._url = url
        self._authorization = aiohttp.encode_basic_auth(client_id, client_secret)

    async def __call__(self, token: str) -> dict[str, Any]:
        try:
            async with self._http.post(
                self._url,
                data={"token": token, "token_type_hint": "access_token"},
                headers={"Authorization": self._authorization},
                timeout=aiohttp.ClientTimeout(total=5),
            ) as response:
                response.raise_for_status()
                answer = await response.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            log.warning("token introspection failed", exc_info=True)
            raise ServiceUnavailable("cannot verify Basic credentials right now; try again") from exc
        return answer if isinstance(answer, dict) else {"active": False}


class BasicVerifier:
    """`libs.common.auth.BasicVerifier`: (user, token) -> Principal, or None when not recognised."""

    def __init__(self, introspect: Introspector, *, ttl: float = 10.0, max_entries: int = 10_000) -> None:
        self._introspect = introspect
        self._ttl = ttl
        self._max = max_entries
        self._cache: dict[str, tuple[float, Principal | None]] = {}

    async def __call__(self, user: str, token: str) -> Principal | None:
        if not user or not token:
            return None
        key = hashlib.sha256(f"{user}\0{token}".encode()).hexdigest()
        hit = self._cache.get(key)
        now = time.monotonic()
        if hit is not None and hit[0] > now:
            return hit[1]
        principal = _principal(user, await self._introspect(token))
        if len(self._cache) >= self._max:
            self._cache = {k: v for k, v in self._cache.items() if v[0] > now}
            if len(self._cache) >= self._max:
                self._cache.clear()
        self._cache[key] = (now + self._ttl, principal)
        return principal


def _principal(user: str, answer: dict[str, Any]) -> Principal | None:
    if answer.get("active") is not True:
        return None
    subject = answer.get("sub")
    if not isinstance(subject, str) or user not in (subject, answer.get("username")):
        return None  # a valid token of somebody else
    if isinstance(answer.get("exp"), int | float) and answer["exp"] < time.time():
        return None
    scope = answer.get("scope", "")
    return Principal(
        subject=subject,
        client_id=answer.get("client_id"),
        scopes=frozenset(str(scope).split()),
        token_id=answer.get("jti"),
        issued_at=answer.get("iat"),
        claims=answer,
        via="basic",
    )
