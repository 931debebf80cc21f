"""A live auth service on a real 127.0.0.1 port (mounted under /auth as in the embedded mode), plus helpers
to provision users and clients through the real admin API, and a resource service that trusts it through
libs/common with only the JWKS URL configured."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from libs.common import keys as common_keys
from libs.common.auth import require_scopes
from libs.common.config import CommonSettings
from libs.common.web import service_app
from services import platform
from services.auth.app import create_app
from services.auth.settings import AuthSettings

ADMIN_CLIENT = "admin-bootstrap"
ADMIN_SECRET = "admin-bootstrap-secret-0123456789"


@dataclass
class LiveAuth:
    base: str
    issuer: str
    settings: AuthSettings
    app: web.Application
    http: aiohttp.ClientSession
    admin_token: str = ""

    async def admin(self, method: str, path: str, json: Any = None) -> Any:
        headers = {"Authorization": f"Bearer {self.admin_token}"}
        async with self.http.request(method, self.issuer + path, json=json, headers=headers) as response:
            body = await response.json(content_type=None) if response.status != 204 else None
            assert response.status < 300, (response.status, body)
            return body

    async def create_user(
        self,
        username: str | None = None,
        password: str = "correct horse battery",  # noqa: S107 - test users only
        **extra: Any,
    ) -> tuple[str, str]:
        username = username or f"u{uuid.uuid4().hex[:8]}"
        await self.admin("POST", "/admin/users", {"username": username, "password": password, **extra})
        return username, password

    async def create_client(self, **fields: Any) -> dict[str, Any]:
        body = {"client_id": f"c{uuid.uuid4().hex[:8]}", "name": "Test App", **fields}
        result: dict[str, Any] = await self.admin("POST", "/admin/clients", body)
        return result

    async def purge_expired(self, now: float) -> dict[str, int]:
        from services.auth import keys

        return await self.app[keys.service].store.purge_expired(now=now)


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": aiohttp.encode_basic_auth(user, password)}


@pytest.fixture(autouse=True)
def _loopback_oauth(monkeypatch: pytest.MonkeyPatch) -> None:
    """requests-oauthlib refuses plain HTTP even on loopback unless told otherwise (test servers only)."""
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")


async def start_site(app: web.Application, port: int) -> web.AppRunner:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner


@asynccontextmanager
async def serve_auth(common_settings: CommonSettings, **overrides: Any) -> AsyncIterator[LiveAuth]:
    port = platform.free_port()
    base = f"http://127.0.0.1:{port}"
    issuer = f"{base}/auth"
    common = common_settings.model_copy(update={"auth_issuer": issuer, "auth_jwks": None, "public_url": base})
    settings = AuthSettings(
        common=common,
        bootstrap_client_id=ADMIN_CLIENT,
        bootstrap_client_secret=ADMIN_SECRET,  # type: ignore[arg-type]
        device_interval=1,
        **{"login_rate": 0.5, "login_burst": 20, **overrides},
    )
    auth_app = create_app(settings)
    root = web.Application()
    root.add_subapp("/auth", auth_app)
    runner = await start_site(root, port)
    async with aiohttp.ClientSession() as http:
        live = LiveAuth(base=base, issuer=issuer, settings=settings, app=auth_app, http=http)
        async with http.post(
            issuer + "/token",
            data={"grant_type": "client_credentials", "scope": "admin"},
            headers=basic(ADMIN_CLIENT, ADMIN_SECRET),
        ) as response:
            assert response.status == 200, await response.text()
            live.admin_token = (await response.json())["access_token"]
        try:
            yield live
        finally:
            await runner.cleanup()


@pytest.fixture
async def live_auth(common_settings: CommonSettings) -> AsyncIterator[LiveAuth]:
    """The auth service with the embedded bus."""
    async with serve_auth(common_settings) as live:
        yield live


@pytest.fixture
async def live_auth_amqp(amqp_settings: CommonSettings) -> AsyncIterator[LiveAuth]:
    """The auth service publishing through RabbitMQ."""
    async with serve_auth(amqp_settings) as live:
        yield live


@dataclass
class Resource:
    url: str
    app: web.Application


@asynccontextmanager
async def serve_resource(live_auth: LiveAuth, common_settings: CommonSettings) -> AsyncIterator[Resource]:
    """Another seqhub service verifying tokens through libs/common, configured with only the JWKS URL."""
    common = common_settings.model_copy(
        update={
            "auth_issuer": live_auth.issuer,
            "auth_jwks": None,
            "auth_jwks_url": live_auth.issuer + "/.well-known/jwks.json",
        }
    )
    app = service_app("beacon", common)  # a real service name: its revocations queue is in the topology

    async def whoami(request: web.Request) -> web.Response:
        principal = request[common_keys.principal]
        require_scopes(principal, "repository:read")
        return web.json_response({"sub": principal.subject, "scopes": sorted(principal.scopes)})

    app.router.add_get("/whoami", whoami)
    port = platform.free_port()
    runner = await start_site(app, port)
    try:
        yield Resource(url=f"http://127.0.0.1:{port}/whoami", app=app)
    finally:
        await runner.cleanup()


@pytest.fixture
async def resource(live_auth: LiveAuth, common_settings: CommonSettings) -> AsyncIterator[Resource]:
    async with serve_resource(live_auth, common_settings) as served:
        yield served


@pytest.fixture
async def resource_amqp(live_auth_amqp: LiveAuth, amqp_settings: CommonSettings) -> AsyncIterator[Resource]:
    async with serve_resource(live_auth_amqp, amqp_settings) as served:
        yield served
