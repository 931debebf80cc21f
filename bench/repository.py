"""Repository API throughput vs bare pymongo against the same database server, in the same run.

    .venv/bin/python bench/repository.py [--mongo-url URL] [--n 400] [--concurrency 8]

Operations: GET item (JSON), GET collection page (20 items, JSON), POST (JSON sample, XSD-validated).
Baselines: the database work each operation needs at minimum, as bare AsyncMongoClient calls with the same
concurrency — find_one by _id; find().sort(_id).limit(21); insert_one of a stored-shape document.
The API side goes through real HTTP on 127.0.0.1 (JWT verification, middlewares, negotiation, rendering).
Without --mongo-url a local secantusdb (the test server) is started; point it at a real MongoDB for
production-like absolute numbers (ratios against secantusdb flatter the API, whose own costs are hidden
behind a slow server).
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import random
import statistics
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from pymongo import AsyncMongoClient

from libs.common.config import CommonSettings
from libs.common.testing import TokenMinter
from libs.common.web import root_app
from services import platform
from services.repository.app import create_app
from services.repository.settings import RepositorySettings


def sample(i: int, tag: str) -> dict[str, Any]:
    return {
        "alias": f"bench-{tag}-{i}",
        "title": f"Benchmark sample {i}",
        "sample_name": {"taxon_id": 9606, "scientific_name": "Homo sapiens"},
        "sample_attributes": {"sample_attribute": [{"tag": "batch", "value": str(i % 7)}]},
    }


async def measure(n: int, concurrency: int, op: Callable[[int], Awaitable[None]]) -> tuple[float, float]:
    """(requests per second, p99 latency in ms) of n calls of op with `concurrency` in flight."""
    latencies: list[float] = []
    counter = iter(range(n))

    async def worker() -> None:
        for i in counter:
            started = time.perf_counter()
            await op(i)
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    p99 = statistics.quantiles(latencies, n=100)[98] if len(latencies) >= 100 else max(latencies)
    return n / elapsed, p99 * 1000


def serve(common: CommonSettings, port: int) -> None:
    """The repository in its own process, as deployed (the load generator must not share its CPU)."""
    app = root_app({"/repository": create_app(RepositorySettings(common=common, review_types=""))})
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None)


async def run(mongo_url: str, n: int, concurrency: int) -> list[tuple[str, float, float, float, float]]:
    minter = TokenMinter()
    tag = uuid.uuid4().hex[:8]
    root = Path(tempfile.mkdtemp(prefix="bench-repo-"))
    common = CommonSettings(
        mongo_url=mongo_url,
        db_prefix=f"bench{tag}_",
        bus_url="embedded",
        files_root=root / "files",
        data_root=root / "data",
        auth_jwks=minter.jwks,
        auth_issuer=minter.issuer,
        auth_audience=minter.audience,
        log_json=False,
        log_level="WARNING",
    )
    port = platform.free_port()
    server = multiprocessing.get_context("spawn").Process(target=serve, args=(common, port), daemon=True)
    server.start()
    await asyncio.to_thread(platform.wait_for_port, "127.0.0.1", port, 60.0)
    base = f"http://127.0.0.1:{port}/repository"
    headers = {"Authorization": f"Bearer {minter.mint('bench', 'repository:write', expires_in=3600)}"}
    mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongo_url)
    baseline_db = mongo[f"bench{tag}_baseline"]["samples"]
    results = []
    try:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency * 2)) as http:
            accessions: list[str] = []

            async def api_post(i: int) -> None:
                async with http.post(f"{base}/samples", json=sample(i, "api"), headers=headers) as r:
                    assert r.status == 201, await r.text()
                    accessions.append((await r.json())["accession"])

            async def db_post(i: int) -> None:
                now = datetime.now(UTC)
                await baseline_db.insert_one(
                    {
                        "_id": f"SHS{i:06d}",
                        "alias": f"bench-db-{i}",
                        "owner": "bench",
                        "body": sample(i, "db"),
                        "parents": {},
                        "files": [],
                        "visibility": "public",
                        "version": 1,
                        "created": now,
                        "modified": now,
                        "title_lc": f"benchmark sample {i}",
                        "taxon": 9606,
                        "attrs": [],
                    }
                )

            async def api_item(i: int) -> None:
                async with http.get(f"{base}/samples/{random.choice(accessions)}") as r:
                    assert r.status == 200
                    await r.read()

            async def db_item(i: int) -> None:
                assert await baseline_db.find_one({"_id": f"SHS{random.randrange(n):06d}"}) is not None

            async def api_page(i: int) -> None:
                async with http.get(f"{base}/samples?limit=20&after={random.choice(accessions[: n // 2])}") as r:
                    assert r.status == 200
                    await r.read()

            async def db_page(i: int) -> None:
                after = f"SHS{random.randrange(n // 2):06d}"
                cursor = baseline_db.find({"_id": {"$gt": after}, "$or": [{"visibility": "public"}]})
                assert len(await cursor.sort("_id", 1).limit(21).to_list()) == 21

            for name, api_op, db_op in (
                ("POST sample", api_post, db_post),
                ("GET item", api_item, db_item),
                ("GET page (20)", api_page, db_page),
            ):
                db_rate, db_p99 = await measure(n, concurrency, db_op)
                api_rate, api_p99 = await measure(n, concurrency, api_op)
                results.append((name, api_rate, api_p99, db_rate, db_p99))
    finally:
        await mongo.drop_database(f"bench{tag}_baseline")
        await mongo.drop_database(f"bench{tag}_repository")
        await mongo.close()
        server.terminate()
        server.join(20)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mongo-url")
    parser.add_argument("--n", type=int, default=400)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    process = None
    url = args.mongo_url
    if url is None:
        url = f"mongodb://127.0.0.1:{platform.free_port()}/"
        process = platform.start_database(url, ":memory:")
    try:
        results = asyncio.run(run(url, args.n, args.concurrency))
    finally:
        if process is not None:
            process.terminate()
            process.wait(20)
    print(f"repository API vs bare pymongo, same server, n={args.n}, concurrency={args.concurrency}")
    print(f"{'operation':<16}{'API req/s':>11}{'API p99 ms':>12}{'DB ops/s':>11}{'DB p99 ms':>11}{'cost x':>9}")
    for name, api_rate, api_p99, db_rate, db_p99 in results:
        print(f"{name:<16}{api_rate:>11.0f}{api_p99:>12.1f}{db_rate:>11.0f}{db_p99:>11.1f}{db_rate / api_rate:>9.2f}")


if __name__ == "__main__":
    main()
