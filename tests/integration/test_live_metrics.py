"""Every service's live `/metrics`: after a few real requests (real MongoDB-wire server), the exposition
passes `promtool check metrics`, the domain metrics move by what the requests did, and every metric name
the alert rules and the Grafana dashboard query is exported."""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import yaml
from aiohttp import web
from aiohttp.test_utils import TestClient
from prometheus_client.parser import text_string_to_metric_families
from pymongo import AsyncMongoClient

from libs.common.config import CommonSettings
from libs.common.events import SamplesDemultiplexed, parse_event
from libs.common.filestore import LocalFileStore
from libs.common.outbox import Outbox
from libs.common.testing import TokenMinter
from libs.common.web import root_app
from services.auth.app import create_app as auth_app
from services.auth.settings import AuthSettings
from services.beacon.app import create_app as beacon_app
from services.beacon.settings import BeaconSettings
from services.ingest import keys as ingest_keys
from services.ingest.app import create_app as ingest_app
from services.ingest.app import sweep_once
from services.ingest.demux.settings import DemuxSettings
from services.ingest.demux.worker import handle_run_uploaded
from services.ingest.settings import IngestSettings
from services.ingest.store import RunStore
from services.repository.app import create_app as repository_app
from services.repository.settings import RepositorySettings
from services.rnaget.app import create_app as rnaget_app
from services.rnaget.settings import RnagetSettings
from tests.integration.ingest.conftest import TINY_RUN, TINY_XML
from tests.integration.ingest_demux.test_worker import _event as demux_event
from tests.integration.ingest_demux.test_worker import _simulate as simulate_demux_run
from tests.shared import SHARED
from tests.unit.deploy.test_rules import BUILTIN, metric_names
from tests.unit.deploy.tooling import DASHBOARD, RULES, promtool_check_metrics

Client = TestClient[Any, Any]
MakeClient = Callable[[str, web.Application], Awaitable[Client]]
CHRMT = SHARED / "data/1000g-chrMT/ALL.chrMT.phase3_callmom-v0_4.20130502.genotypes.vcf.gz"


@pytest.fixture
def make_client(aiohttp_client: Any) -> MakeClient:
    async def make(prefix: str, app: web.Application) -> Client:
        client: Client = await aiohttp_client(root_app({prefix: app}))
        return client

    return make


async def scrape(client: Client, prefix: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """GET <prefix>/metrics, lint it with promtool, return {(sample name, sorted labels): value}."""
    response = await client.get(f"{prefix}/metrics")
    assert response.status == 200
    assert response.content_type == "text/plain"
    text = await response.text()
    result = promtool_check_metrics(text)
    assert result.clean, f"{prefix}/metrics: promtool check metrics exit {result.returncode}\n{result.output}"
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


async def test_ingest_runs_by_status_come_from_the_sweep(
    make_client: MakeClient, common_settings: CommonSettings, token_minter: TokenMinter
) -> None:
    settings = IngestSettings(common=common_settings, sweep=False, demultiplex=False)
    app = ingest_app(settings)
    client = await make_client("/ingest", app)
    auth = token_minter.bearer("instrument-1", "ingest:upload")
    for name in (TINY_RUN.run_id, "second_run"):
        body = {"name": name, "run_info_xml": TINY_XML, "format": "bcl"}
        response = await client.post("/ingest/runs", json=body, headers=auth)
        assert response.status == 201, await response.text()
    await sweep_once(app[ingest_keys.ingest])
    samples = await scrape(client, "/ingest")
    assert value(samples, "seqhub_ingest_runs", status="uploading") == 2
    # every status has a sample, so `> 0` alerts see the series return to 0 rather than vanish
    for status in ("uploaded", "demultiplexing", "demultiplexed", "failed", "stalled"):
        assert ("seqhub_ingest_runs", (("status", status),)) in samples
        assert value(samples, "seqhub_ingest_runs", status=status) == 0
    for name in (
        "seqhub_ingest_upload_bytes_total",
        "seqhub_demux_clusters_total",
        "seqhub_demux_duration_seconds_count",
    ):
        assert any(key[0] == name for key in samples), name


async def test_demultiplexer_counts_clusters_and_seconds_on_success_only(
    make_client: MakeClient, common_settings: CommonSettings
) -> None:
    app = ingest_app(IngestSettings(common=common_settings, sweep=False, demultiplex=False))
    client = await make_client("/ingest", app)
    files = LocalFileStore(common_settings.files_root)
    res = simulate_demux_run(files)
    mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(common_settings.mongo_url)
    try:
        db = mongo[common_settings.database_name("ingest")]
        await db["runs"].insert_one({"_id": res.run_info.run_id, "status": "uploaded"})
        runs, outbox, settings = RunStore(db), Outbox(db, service="ingest"), DemuxSettings(threads=1)
        before = await scrape(client, "/ingest")
        event = demux_event(res)
        assert (
            await handle_run_uploaded(event, runs=runs, outbox=outbox, files=files, settings=settings)
            == "demultiplexed"
        )
        published = await db["outbox"].find_one()
        assert published is not None
        demultiplexed = parse_event(published["body"])
        assert isinstance(demultiplexed, SamplesDemultiplexed)
        clusters = demultiplexed.data.total_clusters_pf
        after = await scrape(client, "/ingest")
        # a redelivery does nothing and observes nothing
        assert await handle_run_uploaded(event, runs=runs, outbox=outbox, files=files, settings=settings) == "skipped"
        again = await scrape(client, "/ingest")
    finally:
        await mongo.close()
    assert clusters > 0
    assert value(after, "seqhub_demux_clusters_total") - value(before, "seqhub_demux_clusters_total") == clusters
    seconds = "seqhub_demux_duration_seconds_count"
    assert value(after, seconds) - value(before, seconds) == 1
    assert value(after, "seqhub_demux_duration_seconds_sum") > value(before, "seqhub_demux_duration_seconds_sum")
    assert value(again, seconds) == value(after, seconds)
    assert value(again, "seqhub_demux_clusters_total") == value(after, "seqhub_demux_clusters_total")


async def test_beacon_counts_queries_by_result_and_indexed_variants(
    make_client: MakeClient, common_settings: CommonSettings, token_minter: TokenMinter
) -> None:
    client = await make_client("/beacon", beacon_app(BeaconSettings(common=common_settings)))
    loaded = await client.put(
        "/beacon/datasets/mt-metrics",
        params={"assembly": "GRCh37", "access": "PUBLIC"},
        data=CHRMT.read_bytes(),
        headers=token_minter.bearer("op", "admin"),
    )
    assert loaded.status == 201, await loaded.text()
    variants = (await loaded.json())["variantCount"]
    before = await scrape(client, "/beacon")
    query = {"referenceName": "MT", "start": "9", "referenceBases": "T", "assemblyId": "GRCh37"}
    hit = await client.get("/beacon/query", params={**query, "alternateBases": "C"})
    assert hit.status == 200 and (await hit.json())["exists"] is True
    miss = await client.get("/beacon/query", params={**query, "alternateBases": "G"})
    assert miss.status == 200 and (await miss.json())["exists"] is False
    bad = await client.get("/beacon/query", params={"referenceName": "MT"})
    assert bad.status == 400
    after = await scrape(client, "/beacon")
    for result in ("hit", "miss", "error"):
        delta = value(after, "seqhub_beacon_queries_total", result=result) - value(
            before, "seqhub_beacon_queries_total", result=result
        )
        assert delta == 1, result
    assert value(after, "seqhub_beacon_variants_indexed", access="public") == variants > 0
    assert ("seqhub_beacon_variants_indexed", (("access", "controlled"),)) in after


async def test_rnaget_counts_the_bytes_it_streams(
    make_client: MakeClient, common_settings: CommonSettings, token_minter: TokenMinter
) -> None:
    client = await make_client("/rnaget", rnaget_app(RnagetSettings(common=common_settings)))
    admin = token_minter.bearer("op", "rnaget:admin")
    r = await client.put("/rnaget/admin/projects/P1", json={"name": "P", "version": "1.0"}, headers=admin)
    assert r.status == 200, await r.text()
    study = {"name": "S", "parentProjectID": "P1", "version": "1.0"}
    r = await client.put("/rnaget/admin/studies/ST1", json=study, headers=admin)
    assert r.status == 200, await r.text()
    rows = ["gene_id\tgene_name\tS1\tS2", *(f"ENSG{i:011d}\tG{i}\t{i}.5\t{2 * i}.25" for i in range(20))]
    r = await client.put(
        "/rnaget/admin/expressions/E1",
        data=("\n".join(rows) + "\n").encode(),
        headers=admin,
        params={"format": "tsv", "units": "TPM", "studyID": "ST1", "version": "1.0"},
    )
    assert r.status == 201, await r.text()
    before = await scrape(client, "/rnaget")
    reader = token_minter.bearer("reader", "rnaget:read")
    r = await client.get("/rnaget/expressions/E1/bytes", params={"format": "tsv"}, headers=reader)
    assert r.status == 200, await r.text()
    body = await r.read()
    after = await scrape(client, "/rnaget")
    streamed = value(after, "seqhub_rnaget_bytes_streamed_total", format="tsv") - value(
        before, "seqhub_rnaget_bytes_streamed_total", format="tsv"
    )
    assert streamed == len(body) > 0


async def test_repository_and_auth_expositions_are_lint_clean(
    make_client: MakeClient, common_settings: CommonSettings, token_minter: TokenMinter
) -> None:
    repo = await make_client("/repository", repository_app(RepositorySettings(common=common_settings, review_types="")))
    before = await scrape(repo, "/repository")
    study = {
        "alias": "metrics-study",
        "descriptor": {
            "study_title": "Metrics",
            "study_type": {"existing_study_type": "Whole Genome Sequencing"},
            "study_abstract": "Counts writes.",
        },
    }
    r = await repo.post("/repository/studies", json=study, headers=token_minter.bearer("alice", "repository:write"))
    assert r.status == 201, await r.text()
    after = await scrape(repo, "/repository")
    labels = {"operation": "create", "type": "study"}
    written = "seqhub_repository_resources_written_total"
    assert value(after, written, **labels) - value(before, written, **labels) == 1
    auth = await make_client("/auth", auth_app(AuthSettings(common=common_settings)))
    assert any(key[0] == "http_server_requests_total" for key in await scrape(auth, "/auth"))


def _queried_names() -> set[str]:
    """Every metric the alert rules and the dashboard select (recording-rule outputs excluded)."""
    groups = yaml.safe_load(RULES.read_text())["groups"]
    recorded = {r["record"] for g in groups for r in g["rules"] if "record" in r}
    exprs = [r["expr"] for g in groups for r in g["rules"]]
    for panel in json.loads(DASHBOARD.read_text())["panels"]:
        exprs += [
            t["expr"].replace("$__rate_interval", "5m").replace("$service", ".*") for t in panel.get("targets", [])
        ]
    return {n for e in exprs for n in metric_names(e)} - recorded - BUILTIN


async def test_every_metric_the_rules_and_dashboard_query_is_exported(
    make_client: MakeClient, common_settings: CommonSettings
) -> None:
    app = ingest_app(IngestSettings(common=common_settings, sweep=False))
    client = await make_client("/ingest", app)
    await sweep_once(app[ingest_keys.ingest])
    text = await (await client.get("/ingest/metrics")).text()
    # families, with or without samples yet (a labelled metric has none before its first observation)
    exported = set(re.findall(r"^# HELP (\S+) ", text, flags=re.MULTILINE))
    queried = _queried_names()
    assert {"seqhub_ingest_runs", "seqhub_demux_clusters_total", "seqhub_rnaget_bytes_streamed_total"} <= queried
    missing = {n for n in queried if n not in exported and re.sub(r"_(bucket|sum|count)$", "", n) not in exported}
    assert missing == set(), f"queried by rules/dashboard but not exported: {sorted(missing)}"
