"""Forged tokens are rejected everywhere: by a resource service (libs/common), by the auth service's own API,
and by introspection — alg none, HS256 keyed with the public key, wrong iss/aud/typ, expired, unknown kid,
tampered payload."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any

import aiohttp
import pytest
from joserfc import jwt
from joserfc.jwk import ECKey

from services.auth import keys
from tests.integration.auth.conftest import LiveAuth, Resource, basic


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def _unb64(segment: str) -> dict[str, Any]:
    return dict(json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))))


def _hs256(header: dict[str, Any], claims: dict[str, Any], secret: bytes) -> str:
    """By hand: joserfc itself refuses to use an asymmetric public key as an HMAC secret."""
    signing_input = f"{_b64(header)}.{_b64(claims)}"
    mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return signing_input + "." + base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


async def _forgeries(live: LiveAuth, genuine: str) -> dict[str, str]:
    head, payload, sig = genuine.split(".")
    header, claims = _unb64(head), _unb64(payload)
    ring = live.app[keys.service].keys.ring
    public_pem = ring.active().key().as_pem(private=False)
    stranger = ECKey.generate_key("P-256", parameters={"kid": "unknown-kid"}, private=True)
    now = int(time.time())
    return {
        "alg none": f"{_b64({**header, 'alg': 'none'})}.{payload}.",
        "HS256 keyed with the public key": _hs256({**header, "alg": "HS256"}, claims, public_pem),
        "wrong issuer": ring.sign({**claims, "iss": "http://127.0.0.1:1/evil"}),
        "wrong audience": ring.sign({**claims, "aud": "somebody-else"}),
        "expired": ring.sign({**claims, "iat": now - 7200, "nbf": now - 7200, "exp": now - 3600}),
        "not an access token (typ)": ring.sign(claims, typ="JWT"),
        "unknown kid": jwt.encode({**header, "kid": "unknown-kid"}, claims, stranger),
        "tampered payload": f"{head}.{_b64({**claims, 'scope': 'repository:read admin'})}.{sig}",
    }


@pytest.fixture
async def genuine(live_auth: LiveAuth) -> str:
    client = await live_auth.create_client(
        grant_types=["client_credentials"], scopes=["repository:read", "admin"], can_introspect=True
    )
    live_auth.introspector = client  # type: ignore[attr-defined]
    async with live_auth.http.post(
        live_auth.issuer + "/token",
        data={"grant_type": "client_credentials", "scope": "repository:read"},
        headers=basic(client["client_id"], client["client_secret"]),
    ) as r:
        return str((await r.json())["access_token"])


async def test_forged_tokens_are_rejected_by_a_resource_service(
    live_auth: LiveAuth, resource: Resource, genuine: str
) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.get(resource.url, headers={"Authorization": f"Bearer {genuine}"}) as r:
            assert r.status == 200  # the control: the genuine token works
        for name, token in (await _forgeries(live_auth, genuine)).items():
            async with http.get(resource.url, headers={"Authorization": f"Bearer {token}"}) as r:
                assert r.status == 401, name
                assert 'error="invalid_token"' in r.headers["WWW-Authenticate"], name


async def test_forged_tokens_are_rejected_by_the_auth_service_itself(live_auth: LiveAuth, genuine: str) -> None:
    client = live_auth.introspector  # type: ignore[attr-defined]
    for name, token in (await _forgeries(live_auth, genuine)).items():
        async with live_auth.http.get(
            live_auth.issuer + "/admin/users", headers={"Authorization": f"Bearer {token}"}
        ) as r:
            assert r.status == 401, name
        async with live_auth.http.post(
            live_auth.issuer + "/introspect",
            data={"token": token},
            headers=basic(client["client_id"], client["client_secret"]),
        ) as r:
            assert await r.json() == {"active": False}, name
