"""Fixtures for the repository's integration tests: the real app (mounted under /repository, as in
production) on the real MongoDB-wire server and bus, plus a stand-in introspection endpoint for Basic auth."""

from __future__ import annotations

import base64
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from libs.common.config import CommonSettings
from libs.common.testing import TokenMinter
from libs.common.web import root_app
from services.repository.app import create_app
from services.repository.settings import RepositorySettings

INTROSPECTION_CLIENT = ("repository", "s3cret")
PATS: dict[str, dict[str, Any]] = {
    "pat-alice": {"active": True, "sub": "alice", "username": "alice", "scope": "repository:write"},
    "pat-revoked": {"active": False},
}

Client = TestClient[web.Request, web.Application]
MakeClient = Callable[..., Awaitable[Client]]


@pytest.fixture
async def introspection_url(aiohttp_server: Any) -> str:
    """An RFC 7662 endpoint answering like the auth service does for personal access tokens."""
    expected = "Basic " + base64.b64encode(":".join(INTROSPECTION_CLIENT).encode()).decode()

    async def introspect(request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != expected:
            return web.json_response({"error": "invalid_client"}, status=401)
        form = await request.post()
        return web.json_response(PATS.get(str(form.get("token")), {"active": False}))

    app = web.Application()
    app.router.add_post("/auth/introspect", introspect)
    server: TestServer = await aiohttp_server(app)
    return str(server.make_url("/auth/introspect"))


@pytest.fixture
def make_client(aiohttp_client: Any, common_settings: CommonSettings, introspection_url: str) -> MakeClient:
    async def make(**overrides: Any) -> Client:
        values: dict[str, Any] = {
            "common": common_settings,
            "review_types": "",
            "introspection_url": introspection_url,
            "introspection_client_id": INTROSPECTION_CLIENT[0],
            "introspection_client_secret": INTROSPECTION_CLIENT[1],
            "basic_cache_seconds": 0.0,
        }
        values.update(overrides)
        app = create_app(RepositorySettings(**values))
        client: Client = await aiohttp_client(root_app({"/repository": app}))
        return client

    return make


@pytest.fixture
async def client(make_client: MakeClient) -> Client:
    return await make_client()


@pytest.fixture
def alice(token_minter: TokenMinter) -> dict[str, str]:
    return token_minter.bearer("alice", "repository:write")


@pytest.fixture
def bob(token_minter: TokenMinter) -> dict[str, str]:
    return token_minter.bearer("bob", "repository:write")


@pytest.fixture
def admin(token_minter: TokenMinter) -> dict[str, str]:
    return token_minter.bearer("root", "admin")


def basic(user: str, token: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{token}".encode()).decode()}


@pytest.fixture
def make_app_client(
    aiohttp_client: Any, common_settings: CommonSettings, introspection_url: str
) -> Callable[..., Awaitable[tuple[web.Application, Client]]]:
    """Like `make_client`, also returning the repository app (to reach its bus and database)."""

    async def make(common: CommonSettings | None = None, **overrides: Any) -> tuple[web.Application, Client]:
        values: dict[str, Any] = {
            "common": common or common_settings,
            "review_types": "",
            "introspection_url": introspection_url,
            "introspection_client_id": INTROSPECTION_CLIENT[0],
            "introspection_client_secret": INTROSPECTION_CLIENT[1],
            "basic_cache_seconds": 0.0,
        }
        values.update(overrides)
        app = create_app(RepositorySettings(**values))
        client: Client = await aiohttp_client(root_app({"/repository": app}))
        return app, client

    return make
