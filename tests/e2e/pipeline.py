"""Helpers of the end-to-end pipeline tests: the distributed cluster, the checks made after a flow."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from pymongo import MongoClient

from services import platform
from services.demo import ABSENT, MATRIX_ROWS, SLICED_GENE, VARIANT, Pipeline, parse_tsv_slice

ADMIN_ID, ADMIN_SECRET = "e2e-pipeline-ops", "e2e-pipeline-ops-secret-0123456789"
SAMPLES = 3
SIZES: dict[str, Any] = {"clusters": 300, "samples": SAMPLES, "tiles": 2, "reads": (16, 6, 16), "cycles_per_second": 40}


def cluster_env(mongo_url: str, amqp_url: str, tmp_path: Path, auth_port: int) -> dict[str, str]:
    tag = os.urandom(4).hex()
    return {
        "SEQHUB_MONGO_URL": mongo_url,
        "SEQHUB_DB_PREFIX": f"e2epipe{tag}_",
        "SEQHUB_BUS_URL": amqp_url,
        "SEQHUB_BUS_EXCHANGE": f"e2e.{tag}.events",
        "SEQHUB_BUS_DEAD_EXCHANGE": f"e2e.{tag}.dead",
        "SEQHUB_BUS_QUEUE_PREFIX": f"e2e.{tag}.",
        "SEQHUB_FILES_ROOT": str(tmp_path / "files"),
        "SEQHUB_DATA_ROOT": str(tmp_path / "data"),
        "SEQHUB_AUTH_ISSUER": f"http://127.0.0.1:{auth_port}/auth",
        "SEQHUB_AUTH_BOOTSTRAP_CLIENT_ID": ADMIN_ID,
        "SEQHUB_AUTH_BOOTSTRAP_CLIENT_SECRET": ADMIN_SECRET,
    }


@contextmanager
def distributed(mongo_url: str, amqp_url: str, tmp_path: Path) -> Iterator[platform.Distributed]:
    ports = {name: platform.free_port() for name in platform.SERVICE_NAMES}
    (tmp_path / "logs").mkdir()
    cluster = platform.Distributed(
        env=cluster_env(mongo_url, amqp_url, tmp_path, ports["auth"]), log_dir=tmp_path / "logs"
    )
    try:
        cluster.start_all(ports)
        for name in ports:
            wait_ready(f"{cluster.url(name)}/readyz")
        yield cluster
    finally:
        cluster.stop()


def wait_ready(url: str, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"{url} not ready after {timeout}s")


def _get(url: str, token: str | None = None, **params: Any) -> Any:
    headers = {"Accept": "application/json", **({"Authorization": f"Bearer {token}"} if token else {})}
    response = httpx.get(url, headers=headers, params=params, timeout=30)
    assert response.status_code == 200, f"GET {url}: {response.status_code} {response.text[:300]}"
    return response.json()


def check_outcome(pipeline: Pipeline, result: Mapping[str, Any]) -> None:
    """What a user relies on, read back through each service's API, and that nothing happened twice."""
    urls, admin = pipeline.endpoints.urls, pipeline.tokens["admin"]
    run = result["run"]
    assert _get(f"{urls['ingest']}/runs/{run.run_id}", admin)["status"] == "demultiplexed"

    # one study, one sample / experiment / run per demultiplexed sample, each run carrying its FASTQ files
    listed = {
        c: _get(f"{urls['repository']}/{c}", admin, limit=200)["resources"]
        for c in ("studies", "samples", "experiments", "runs", "analyses")
    }
    assert [s["alias"] for s in listed["studies"]] == [run.project]
    for collection in ("samples", "experiments", "runs"):
        assert len(listed[collection]) == SAMPLES, (collection, [r["alias"] for r in listed[collection]])
        assert len({r["alias"] for r in listed[collection]}) == SAMPLES
    for repo_run in listed["runs"]:
        files = repo_run["data_block"]["files"]["file"]
        files = files if isinstance(files, list) else [files]
        assert {f["filetype"] for f in files} == {"fastq"} and len(files) == 2, repo_run["alias"]  # R1 + R2
    assert len(listed["analyses"]) == 2

    # Beacon: the VCF's variant is a HIT with the VCF's counts, another allele at the same site a MISS
    hit, miss = (
        pipeline.beacon_query(result["ids"]["dataset"], VARIANT),
        pipeline.beacon_query(result["ids"]["dataset"], ABSENT),
    )
    assert hit["exists"] is True, hit
    [entry] = hit["datasetAlleleResponses"]
    assert (entry["datasetId"], entry["variantCount"], entry["callCount"]) == (result["ids"]["dataset"], 3, 10)
    assert miss["exists"] is False, miss
    datasets = _get(f"{urls['beacon']}/")["datasets"]
    assert [d["id"] for d in datasets] == [result["ids"]["dataset"]]

    # RNAget: the slice holds exactly the matrix's values for the gene asked for; one expression exists
    sliced = parse_tsv_slice(result["matrix"])
    _name, *values = MATRIX_ROWS[SLICED_GENE]
    assert sliced == {SLICED_GENE: [float(v) for v in values]}
    found = _get(f"{urls['rnaget']}/expressions/search", format="tsv")
    assert [f["id"] for f in found] == [result["ids"]["expression"]], found


def dead_letters(env: Mapping[str, str]) -> list[dict[str, Any]]:
    """`seqhub admin dlq list --json` with the cluster's environment (the operator's view)."""
    result = subprocess.run(
        [sys.executable, "-m", "libs.sdk.cli", "admin", "dlq", "list", "--json"],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    letters: list[dict[str, Any]] = json.loads(result.stdout)
    return letters


def outbox_events(env: Mapping[str, str]) -> Counter[str]:
    """Events each service wrote to its outbox (what it published, or will publish), by type."""
    counts: Counter[str] = Counter()
    client: MongoClient[dict[str, Any]] = MongoClient(env["SEQHUB_MONGO_URL"], serverSelectionTimeoutMS=10_000)
    with client:
        for service in platform.SERVICE_NAMES:
            for doc in client[f"{env['SEQHUB_DB_PREFIX']}{service}"]["outbox"].find({}, {"type": 1}):
                counts[str(doc["type"])] += 1
    return counts


def check_events_once(env: Mapping[str, str]) -> None:
    """Each step's event was produced once: a crash and redelivery never re-announce a run or an analysis."""
    counts = outbox_events(env)
    once = {
        "RunRegistered": 1,
        "RunUploaded": 1,
        "SamplesDemultiplexed": 1,
        "AnalysisPublished": 2,
        "VariantsIndexed": 1,
        "ExpressionIndexed": 1,
    }
    assert {t: counts[t] for t in once} == once, counts


def publish_garbage(env: Mapping[str, str], routing_key: str) -> None:
    """An undecodable message on the cluster's exchange: consumers must dead-letter it at once (a control)."""
    import asyncio

    import aio_pika

    async def publish() -> None:
        connection = await aio_pika.connect(env["SEQHUB_BUS_URL"])
        async with connection:
            channel = await connection.channel()
            exchange = await channel.get_exchange(env["SEQHUB_BUS_EXCHANGE"])
            await exchange.publish(aio_pika.Message(b"not an event"), routing_key=routing_key)

    asyncio.run(publish())
