"""The shared service skeleton, through a real app on the real database server and the embedded bus."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from libs.common import keys
from libs.common.auth import require_scopes
from libs.common.config import CommonSettings
from libs.common.errors import NotFound
from libs.common.testing import TokenMinter
from libs.common.web import root_app, service_app


def _app(settings: CommonSettings) -> web.Application:
    routes = web.RouteTableDef()

    @routes.get("/items/{id}")
    async def item(request: web.Request) -> web.Response:
        raise NotFound(f"no item {request.match_info['id']}")

    @routes.get("/secret")
    async def secret(request: web.Request) -> web.Response:
        require_scopes(request[keys.principal], "repository:read")
        return web.json_response({"subject": request[keys.principal].subject})

    @routes.get("/boom")
    async def boom(request: web.Request) -> web.Response:
        raise RuntimeError("database password is hunter2")

    app = service_app("webtest", settings)
    app.add_routes(routes)
    return app


async def test_probes_answer_when_database_and_bus_are_up(aiohttp_client: Any, common_settings: CommonSettings) -> None:
    client = await aiohttp_client(_app(common_settings))
    assert (await client.get("/healthz")).status == 200
    ready = await client.get("/readyz")
    assert ready.status == 200
    assert (await ready.json())["checks"] == {"serving": True, "database": True, "bus": True}


async def test_domain_error_is_problem_json_with_request_id(
    aiohttp_client: Any, common_settings: CommonSettings
) -> None:
    client = await aiohttp_client(_app(common_settings))
    response = await client.get("/items/42", headers={"X-Request-ID": "abc-123"})
    assert response.status == 404
    assert response.content_type == "application/problem+json"
    body = await response.json()
    assert body["detail"] == "no item 42" and body["request_id"] == "abc-123"
    assert response.headers["X-Request-ID"] == "abc-123"


async def test_unexpected_error_hides_its_text(aiohttp_client: Any, common_settings: CommonSettings) -> None:
    client = await aiohttp_client(_app(common_settings))
    response = await client.get("/boom")
    assert response.status == 500
    text = await response.text()
    assert "hunter2" not in text and "Traceback" not in text
    assert (await response.json())["request_id"] == response.headers["X-Request-ID"]


async def test_scopes_are_checked(aiohttp_client: Any, common_settings: CommonSettings,
                                  token_minter: TokenMinter) -> None:
    client = await aiohttp_client(_app(common_settings))
    anonymous = await client.get("/secret")
    assert anonymous.status == 401 and "Bearer" in anonymous.headers["WWW-Authenticate"]
    wrong = await client.get("/secret", headers=token_minter.bearer("ann", "beacon:registered"))
    assert wrong.status == 403 and "insufficient_scope" in wrong.headers["WWW-Authenticate"]
    right = await client.get("/secret", headers=token_minter.bearer("ann", "repository:read"))
    assert right.status == 200 and (await right.json()) == {"subject": "ann"}
    forged = await client.get("/secret", headers=TokenMinter().bearer("ann", "repository:read"))
    assert forged.status == 401 and "invalid_token" in forged.headers["WWW-Authenticate"]


async def test_metrics_count_requests_by_route_template(aiohttp_client: Any, common_settings: CommonSettings) -> None:
    client = await aiohttp_client(_app(common_settings))
    await client.get("/items/7")
    text = await (await client.get("/metrics")).text()
    assert 'http_server_requests_total{method="GET",route="/items/{id}",service="webtest",status="404"}' in text


async def test_remembered_token_is_still_denied_after_revocation(
    aiohttp_client: Any, common_settings: CommonSettings, token_minter: TokenMinter
) -> None:
    from datetime import UTC, datetime

    from libs.common.events import TokenRevoked, TokenRevokedData

    app = _app(common_settings)
    client = await aiohttp_client(app)
    headers = token_minter.bearer("bob", "repository:read")
    assert (await client.get("/secret", headers=headers)).status == 200
    assert (await client.get("/secret", headers=headers)).status == 200  # served from the verified-token cache
    await app[keys.bus].publish(TokenRevoked(data=TokenRevokedData(subject="bob", revoked_at=datetime.now(UTC))))
    for _ in range(100):
        if (await client.get("/secret", headers=headers)).status == 401:
            break
        await asyncio.sleep(0.05)
    else:
        raise AssertionError("a revoked token is still accepted")
    fresh = token_minter.bearer("carol", "repository:read")
    assert (await client.get("/secret", headers=fresh)).status == 200


async def test_mounted_service_answers_with_one_request_id(
    aiohttp_client: Any, common_settings: CommonSettings
) -> None:
    """Under root_app (as `make run` and every deployment serve it) the id in the header, the error body and
    the logs is one id, generated once: the root and the service both carry the middleware."""
    client = await aiohttp_client(root_app({"/webtest": _app(common_settings)}))
    for path in ("/webtest/boom", "/webtest/items/7"):
        response = await client.get(path)
        assert response.status in (404, 500)
        assert (await response.json())["request_id"] == response.headers["X-Request-ID"]
    ok = await client.get("/webtest/healthz", headers={"X-Request-ID": "given-id-1"})
    assert ok.headers["X-Request-ID"] == "given-id-1"


async def test_retired_indexes_are_dropped_and_declared_ones_kept(
    aiohttp_client: Any, common_settings: CommonSettings
) -> None:
    """A database made by an older version still has an index the store no longer declares: it costs every
    write, so the service drops it at startup (and starts fine where it never existed)."""
    from pymongo import ASCENDING, AsyncMongoClient, IndexModel

    name = "webtest"
    old: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(common_settings.mongo_url)
    files = old[common_settings.database_name(name)]["files"]
    await files.create_indexes([IndexModel([("run_id", ASCENDING), ("path", ASCENDING)], name="run_path")])
    app = service_app(
        name,
        common_settings,
        indexes={"files": [IndexModel([("state", ASCENDING)], name="by_state")]},
        retired_indexes={"files": ["run_path", "never_made"]},
    )
    client = await aiohttp_client(app)
    assert (await client.get("/readyz")).status == 200
    names = {index["name"] async for index in await files.list_indexes()}
    assert names == {"_id_", "by_state"}
    await old.close()
