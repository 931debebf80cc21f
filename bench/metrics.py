"""Cost of the domain metrics, each against a baseline measured in the same run (compare the ratios).

  .venv/bin/python bench/metrics.py [--runs N] [--rounds R]

- runs by status: ingest's sweep refreshes `seqhub_ingest_runs{status}` with one `$group` aggregation over
  the runs collection (`RunStore.count_by_status`), vs the baseline `count_documents({})` on the same
  collection, on a local secantusdb with N runs.
- scrape: rendering `/metrics` of a process that imported every service's metrics (with samples), vs
  the baseline of rendering only libs/common's RED + bus families.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import time
from typing import Any

from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.metrics import MetricWrapperBase
from pymongo import AsyncMongoClient

from libs.common import metrics as common_metrics
from services import platform
from services.auth import metrics as auth_metrics  # noqa: F401
from services.beacon import metrics as beacon_metrics
from services.ingest import metrics as ingest_metrics
from services.ingest.models import RunStatus
from services.ingest.store import RunStore
from services.repository import metrics as repository_metrics
from services.rnaget import metrics as rnaget_metrics


def median_seconds(fn: Any, rounds: int) -> float:
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


async def amedian_seconds(fn: Any, rounds: int) -> float:
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        await fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


async def bench_runs(n: int, rounds: int) -> None:
    url = f"mongodb://127.0.0.1:{platform.free_port()}/"
    process = platform.start_database(url, ":memory:")
    try:
        client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(url)
        db = client["bench_metrics_ingest"]
        store = RunStore(db)
        await db["runs"].create_index([("status", 1), ("created_at", -1)], name="status_created")
        statuses = [s.value for s in RunStatus]
        rng = random.Random(7)
        for start in range(0, n, 1000):
            await db["runs"].insert_many(
                [{"_id": f"run-{i}", "status": rng.choice(statuses)} for i in range(start, min(n, start + 1000))]
            )
        counts = await store.count_by_status()
        assert sum(counts.values()) == n, counts
        base = await amedian_seconds(lambda: db["runs"].count_documents({}), rounds)
        agg = await amedian_seconds(store.count_by_status, rounds)
        print(
            f"runs by status, {n} runs: aggregation {agg * 1e3:.1f} ms, baseline count_documents "
            f"{base * 1e3:.1f} ms, ratio {agg / base:.2f}"
        )
        await client.close()
    finally:
        process.terminate()
        process.wait(20)


def bench_scrape(rounds: int) -> None:
    for route in ("/beacon/query", "/rnaget/expressions/{id}/bytes", "/ingest/files/{id}"):
        common_metrics.HTTP_REQUESTS.labels(service="x", method="GET", route=route, status="200").inc()
        common_metrics.HTTP_DURATION.labels(service="x", method="GET", route=route, status="200").observe(0.01)
    ingest_metrics.set_run_counts({"uploading": 3}, [s.value for s in RunStatus])
    ingest_metrics.DEMUX_SECONDS.observe(42)
    for result in ("hit", "miss", "error"):
        beacon_metrics.QUERIES.labels(result=result).inc()
    beacon_metrics.set_variants_indexed(())
    rnaget_metrics.BYTES_STREAMED.labels(format="tsv").inc(100)
    repository_metrics.RESOURCES_WRITTEN.labels(type="study", operation="create").inc()
    common_only = CollectorRegistry()
    for family in vars(common_metrics).values():
        if isinstance(family, MetricWrapperBase):
            common_only.register(family)
    base = median_seconds(lambda: generate_latest(common_only), rounds)
    full = median_seconds(lambda: generate_latest(REGISTRY), rounds)
    size = len(generate_latest(REGISTRY))
    print(
        f"scrape render: every service's families {full * 1e6:.0f} us ({size} bytes), baseline libs/common only "
        f"{base * 1e6:.0f} us, ratio {full / base:.2f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    asyncio.run(bench_runs(args.runs, args.rounds))
    bench_scrape(args.rounds * 20)


if __name__ == "__main__":
    main()
