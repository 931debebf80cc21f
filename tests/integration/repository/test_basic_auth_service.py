"""HTTP Basic against the real auth service: a personal access token works until it is revoked."""

from __future__ import annotations

import base64
from typing import Any

from libs.common.config import CommonSettings
from libs.common.web import root_app
from services import platform
from services.auth.app import create_app as create_auth_app
from services.auth.settings import AuthSettings
from services.repository.app import create_app
from services.repository.settings import RepositorySettings

CLIENT_ID, CLIENT_SECRET = "repository-introspection", "introspection-secret-0123456789"


def basic(user: str, token: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{token}".encode()).decode()}


async def test_personal_access_token_via_introspection(
    aiohttp_server: Any, aiohttp_client: Any, common_settings: CommonSettings
) -> None:
    port = platform.free_port()
    repository = create_app(
        RepositorySettings(
            common=common_settings,
            review_types="",
            introspection_url=f"http://127.0.0.1:{port}/auth/introspect",
            introspection_client_id=CLIENT_ID,
            introspection_client_secret=CLIENT_SECRET,
            basic_cache_seconds=0.0,
        )
    )
    base = f"http://127.0.0.1:{port}"
    auth_common = common_settings.model_copy(
        update={"auth_issuer": f"{base}/auth", "auth_jwks": None, "public_url": base}
    )
    auth = create_auth_app(
        AuthSettings(common=auth_common, bootstrap_client_id=CLIENT_ID, bootstrap_client_secret=CLIENT_SECRET)
    )  # type: ignore[arg-type]
    server = await aiohttp_server(root_app({"/auth": auth, "/repository": repository}), port=port)
    client = await aiohttp_client(server)
    granted = await client.post(
        "/auth/token",
        data={"grant_type": "client_credentials", "scope": "admin"},
        headers=basic(CLIENT_ID, CLIENT_SECRET),
    )
    assert granted.status == 200, await granted.text()
    admin = {"Authorization": f"Bearer {(await granted.json())['access_token']}"}
    user = await client.post(
        "/auth/admin/users", json={"username": "alice", "password": "correct-horse-battery"}, headers=admin
    )
    assert user.status == 201, await user.text()
    issued = await client.post(
        "/auth/admin/users/alice/tokens", json={"name": "ci", "scope": "repository:write"}, headers=admin
    )
    assert issued.status == 201, await issued.text()
    pat = await issued.json()
    sample = {"alias": "via-pat", "title": "t", "sample_name": {"taxon_id": 9606}}

    created = await client.post("/repository/samples", json=sample, headers=basic("alice", pat["token"]))
    assert created.status == 201, await created.text()
    assert (await client.post("/repository/samples", json=sample, headers=basic("mallory", pat["token"]))).status == 401

    revoked = await client.delete(f"/auth/admin/tokens/{pat['token_id']}", headers=admin)
    assert revoked.status in (200, 204), await revoked.text()
    refused = await client.post(
        "/repository/samples", json={**sample, "alias": "after-revocation"}, headers=basic("alice", pat["token"])
    )
    assert refused.status == 401 and "Basic" in refused.headers["WWW-Authenticate"]
