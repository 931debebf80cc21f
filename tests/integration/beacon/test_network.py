"""The beacon network on 127.0.0.1: an aggregator fans out to two seqhub beacons, a slow one and a failing
one; it answers inside the per-beacon timeout with partial results and an aggregate `exists`."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from libs.common.config import CommonSettings
from libs.common.testing import TokenMinter
from services.beacon.app import create_app
from services.beacon.index import BuildResult

from .conftest import beacon_settings, install_chrmt

HIT = {
    "referenceName": "MT",
    "start": "9",
    "referenceBases": "T",
    "alternateBases": "C",
    "assemblyId": "GRCh37",
}


def _slow_and_failing_beacon() -> web.Application:
    app = web.Application()

    async def service_info(request: web.Request) -> web.Response:
        return web.json_response({"id": "slow", "type": {"group": "org.ga4gh", "artifact": "beacon"}})

    async def query(request: web.Request) -> web.Response:
        if request.query.get("fail") or request.path.startswith("/fail"):
            return web.json_response({"error": {"errorCode": 500}}, status=500)
        await asyncio.sleep(30)
        return web.json_response({"beaconId": "slow", "exists": True})

    app.router.add_get("/slow/service-info", service_info)
    app.router.add_route("*", "/slow/query", query)
    app.router.add_route("*", "/fail/query", query)
    return app


async def test_network_aggregates_partial_results_within_the_timeout(
    aiohttp_server: Callable[..., Awaitable[TestServer]],
    aiohttp_client: Callable[..., Awaitable[TestClient[Any, Any]]],
    common_settings: CommonSettings,
    chrmt_versions: tuple[Path, dict[str, BuildResult]],
    token_minter: TokenMinter,
) -> None:
    second = common_settings.model_copy(
        update={"db_prefix": common_settings.db_prefix + "b_", "data_root": common_settings.data_root / "b"}
    )
    seqhub_a = await aiohttp_server(create_app(beacon_settings(common_settings)), host="127.0.0.1")
    seqhub_b = await aiohttp_server(create_app(beacon_settings(second)), host="127.0.0.1")
    other = await aiohttp_server(_slow_and_failing_beacon(), host="127.0.0.1")
    for server in (seqhub_a, seqhub_b):
        await install_chrmt(server.app, chrmt_versions)

    aggregator = await aiohttp_client(
        create_app(
            beacon_settings(
                common_settings.model_copy(update={"db_prefix": common_settings.db_prefix + "agg_"}),
                network_timeout_seconds=1.0,
            )
        )
    )
    admin = token_minter.bearer("ops", "admin")
    beacons = {
        "a": seqhub_a.make_url(""),
        "b": seqhub_b.make_url(""),
        "slow": other.make_url("/slow"),
        "failing": other.make_url("/fail"),
    }
    for beacon_id, url in beacons.items():
        resp = await aggregator.post(
            "/network/beacons", json={"id": beacon_id, "url": str(url).rstrip("/")}, headers=admin
        )
        assert resp.status == 201, await resp.text()

    started = time.perf_counter()
    resp = await aggregator.get("/network/query", params=HIT)
    elapsed = time.perf_counter() - started
    body = await resp.json()
    assert resp.status == 200
    assert elapsed < 3.0, elapsed  # the slow beacon sleeps 30 s; its 1 s timeout bounds the answer
    by_id = {r["beaconId"]: r for r in body["responses"]}
    assert by_id["a"]["status"] == "ok" and by_id["a"]["exists"] is True
    assert by_id["b"]["status"] == "ok" and by_id["b"]["exists"] is True
    assert by_id["slow"]["status"] == "timeout"
    assert by_id["failing"]["status"] == "error"
    assert body["exists"] is True

    miss = await (await aggregator.post("/network/query", json={**HIT, "start": 9, "alternateBases": "G"})).json()
    assert miss["exists"] is False

    listed = await (await aggregator.get("/network/beacons")).json()
    health = {b["id"]: b["healthy"] for b in listed["beacons"]}
    assert health == {"a": True, "b": True, "slow": True, "failing": False}


async def test_registering_a_beacon_needs_admin_and_a_valid_url(
    beacon: TestClient[Any, Any], token_minter: TokenMinter
) -> None:
    body = {"id": "x", "url": "http://127.0.0.1:9/"}
    assert (await beacon.post("/network/beacons", json=body)).status == 401
    admin = token_minter.bearer("ops", "admin")
    bad = await beacon.post("/network/beacons", json={"id": "x", "url": "ftp://x"}, headers=admin)
    assert bad.status == 400
    bad_query = await beacon.get("/network/query", params={"referenceName": "chr1"})
    assert bad_query.status == 400
