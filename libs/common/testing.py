"""Test helpers usable from any service's tests: mint access tokens with a local key, no auth service needed.

`TokenMinter` holds an EC key pair; its `.jwks` goes into `CommonSettings(auth_jwks=...)` and `.mint(...)`
produces RFC 9068 access tokens the services accept. Not imported by production code.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from joserfc import jwt
from joserfc.jwk import ECKey


class TokenMinter:
    """Signs access tokens like the auth service does (ES256, `typ: at+jwt`)."""

    def __init__(self, *, issuer: str = "http://127.0.0.1:8080/auth", audience: str = "seqhub",
                 kid: str | None = None) -> None:
        self.issuer = issuer
        self.audience = audience
        self.kid = kid or uuid.uuid4().hex[:12]
        self.key = ECKey.generate_key("P-256", parameters={"kid": self.kid, "alg": "ES256", "use": "sig"})

    @property
    def jwks(self) -> dict[str, Any]:
        return {"keys": [self.key.as_dict(private=False)]}

    def mint(self, subject: str = "tester", scopes: str | list[str] = "", *, expires_in: int = 300,
             header: dict[str, Any] | None = None, **claims: Any) -> str:
        """An access token for `subject` with `scopes` (space-separated or a list); extra claims override."""
        now = int(time.time())
        scope = scopes if isinstance(scopes, str) else " ".join(scopes)
        body: dict[str, Any] = {
            "iss": self.issuer, "sub": subject, "aud": self.audience, "iat": now, "exp": now + expires_in,
            "jti": uuid.uuid4().hex, "client_id": "test-client", "scope": scope,
        }
        body.update(claims)
        return jwt.encode({"alg": "ES256", "kid": self.kid, "typ": "at+jwt", **(header or {})}, body, self.key)

    def bearer(self, subject: str = "tester", scopes: str | list[str] = "", **claims: Any) -> dict[str, str]:
        """An Authorization header dict, for aiohttp test clients."""
        return {"Authorization": f"Bearer {self.mint(subject, scopes, **claims)}"}
