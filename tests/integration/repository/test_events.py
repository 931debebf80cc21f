"""Events in and out: a SamplesDemultiplexed event registers the run's tree once (delivered twice or thrice);
an analysis created by multipart/mixed with a VCF is announced on RabbitMQ, and withdrawn when deleted."""

from __future__ import annotations

import asyncio
import hashlib
import json
from typing import Any

import aio_pika
import aiohttp

from libs.common import keys as common_keys
from libs.common.config import CommonSettings
from libs.common.events import (
    AnalysisPublished,
    AnalysisWithdrawn,
    DemultiplexedRunSummary,
    DemultiplexedSample,
    FastqFile,
    ReviewDecided,
    ReviewRequested,
    SamplesDemultiplexed,
    SamplesDemultiplexedData,
    parse_event,
)

from .conftest import Client


def demultiplexed(owner: str = "alice") -> SamplesDemultiplexed:
    samples = [
        DemultiplexedSample(
            sample_id=f"S{i}",
            sample_name=f"lib{i}",
            sample_number=i,
            project="PRJ-EV",
            index="ACGTACGT",
            index2=None,
            lanes=[1, 2],
            read_count=500,
            base_count=75000,
            q30_fraction=0.9,
            files=[
                FastqFile(
                    read=r,
                    lane=None,
                    uri=f"store:demux/r1/lib{i}_S{i}_{r}_001.fastq.gz",
                    size=10,
                    sha256=hashlib.sha256(f"{i}{r}".encode()).hexdigest(),
                    reads=500,
                )
                for r in ("R1", "R2")
            ],
        )
        for i in (1, 2, 3)
    ]
    return SamplesDemultiplexed(
        data=SamplesDemultiplexedData(
            run_id="r1",
            run_name="231123_A01234_0042_BHXXXXXX",
            instrument="A01234",
            flowcell="HXXXXXX",
            project=None,
            owner=owner,
            output_root_uri="store:demux/r1/",
            run=DemultiplexedRunSummary(
                instrument_model="NovaSeq 6000", read_lengths=[151, 151], index_lengths=[8], paired=True
            ),
            samples=samples,
            total_clusters_pf=1500,
        )
    )


async def _eventually(check: Any, timeout: float = 20.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await check():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.1)


async def _aliases(client: Client, collection: str, headers: dict[str, str]) -> list[str]:
    body = await (await client.get(f"/repository/{collection}?limit=200", headers=headers)).json()
    return [r["alias"] for r in body["resources"]]


async def test_samples_demultiplexed_builds_the_tree_once(make_app_client: Any, alice: dict[str, str]) -> None:
    app, client = await make_app_client()
    event = demultiplexed()
    bus, inbox = app[common_keys.bus], app[common_keys.mongo_db]["inbox"]
    await bus.publish(event)
    await bus.publish(event)  # redelivery of the same event
    await bus.publish(event.model_copy(update={"id": "another-id"}))  # the same facts under a new id

    async def processed() -> bool:
        return await inbox.count_documents({}) >= 2 and len(await _aliases(client, "runs", alice)) == 3

    await _eventually(processed)
    await asyncio.sleep(0.5)  # let any straggling delivery finish
    assert await _aliases(client, "studies", alice) == ["PRJ-EV"]
    assert sorted(await _aliases(client, "samples", alice)) == ["PRJ-EV:S1", "PRJ-EV:S2", "PRJ-EV:S3"]
    assert len(await _aliases(client, "experiments", alice)) == 3
    assert len(await _aliases(client, "runs", alice)) == 3
    assert await _aliases(client, "runs", {}) == []  # private to the run's owner until released

    runs = (await (await client.get("/repository/runs", headers=alice)).json())["resources"]
    run = runs[0]
    experiment_url = next(link["href"] for link in run["links"] if link["rel"].endswith("/study/sample/experiment"))
    experiment_path = "/repository" + experiment_url.split("/repository", 1)[1]
    experiment = await (await client.get(experiment_path, headers=alice)).json()
    assert experiment["platform"] == {"illumina": {"instrument_model": "Illumina NovaSeq 6000"}}
    assert {f["sha256"] for f in run["files"]} <= {f.sha256 for s in event.data.samples for f in s.files}
    xml = await client.get(f"/repository/runs/{run['accession']}", headers={**alice, "Accept": "application/xml"})
    assert b'checksum_method="SHA-256"' in await xml.read()


VCF = (
    b"##fileformat=VCFv4.2\n##contig=<ID=MT,length=16569>\n"
    b"#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\nMT\t73\t.\tA\tG\t.\tPASS\t.\n"
)
ANALYSIS = {
    "alias": "mt-calls",
    "title": "chrMT calls",
    "analysis_type": {"sequence_variation": {"assembly": {"standard": {"refname": "GRCh37"}}}},
    "analysis_attributes": {
        "analysis_attribute": [
            {"tag": "access_level", "value": "PUBLIC"},
            {"tag": "beacon_dataset_id", "value": "mt-test"},
        ]
    },
}


async def _next_event(queue: aio_pika.abc.AbstractQueue, timeout: float = 20.0) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        message = await queue.get(fail=False)
        if message is not None:
            await message.ack()
            return parse_event(message.body)
        assert asyncio.get_running_loop().time() < deadline, "no event arrived"
        await asyncio.sleep(0.1)


async def test_multipart_analysis_is_announced_on_rabbitmq(
    make_app_client: Any, amqp_settings: CommonSettings, amqp_url: str, alice: dict[str, str]
) -> None:
    app, client = await make_app_client(common=amqp_settings)
    with aiohttp.MultipartWriter("mixed") as body:
        body.append_json(ANALYSIS)
        part = body.append(VCF, {"Content-Type": "text/x-vcf"})
        part.set_content_disposition("attachment", filename="calls.vcf")
    created = await client.post("/repository/analyses", data=body, headers=alice)
    assert created.status == 201, await created.text()
    doc = await created.json()
    assert doc["files"][0]["sha256"] == hashlib.sha256(VCF).hexdigest()
    assert doc["files"][0]["size"] == len(VCF)
    data_url = doc["files"][0]["href"].split(str(client.make_url("")).rstrip("/"))[-1]
    assert await (await client.get(data_url)).read() == VCF
    xml = await (
        await client.get(f"/repository/analyses/{doc['accession']}", headers={"Accept": "application/xml"})
    ).read()
    assert hashlib.md5(VCF, usedforsecurity=False).hexdigest().encode() in xml

    connection = await aio_pika.connect(amqp_url)
    try:
        channel = await connection.channel()
        queue = await channel.declare_queue(f"{amqp_settings.bus_queue_prefix}beacon.analyses", passive=True)
        published = await _next_event(queue)
        assert isinstance(published, AnalysisPublished)
        assert published.data.analysis_accession == doc["accession"]
        assert published.data.dataset_id == "mt-test" and published.data.assembly == "GRCh37"
        assert published.data.files[0].sha256 == hashlib.sha256(VCF).hexdigest()
        assert app[common_keys.files].path(published.data.files[0].uri).read_bytes() == VCF

        deleted = await client.delete(f"/repository/analyses/{doc['accession']}", headers=alice)
        assert deleted.status == 200
        withdrawn = await _next_event(queue)
        assert isinstance(withdrawn, AnalysisWithdrawn) and withdrawn.data.reason == "deleted"
    finally:
        await connection.close()


async def test_multipart_with_bad_metadata_stores_nothing(
    make_app_client: Any, common_settings: CommonSettings, alice: dict[str, str]
) -> None:
    _app, client = await make_app_client()
    with aiohttp.MultipartWriter("mixed") as body:
        body.append_json({**ANALYSIS, "analysis_type": {"no_such_type": {}}})
        part = body.append(VCF, {"Content-Type": "text/x-vcf"})
        part.set_content_disposition("attachment", filename="calls.vcf")
    response = await client.post("/repository/analyses", data=body, headers=alice)
    assert response.status == 400
    assert "analysis_type.no_such_type" in json.dumps(await response.json())
    stored = [p for p in common_settings.files_root.rglob("*") if p.is_file()]
    assert stored == []


async def test_multipart_over_the_upload_limit_is_413_and_stores_nothing(
    make_app_client: Any, common_settings: CommonSettings, alice: dict[str, str]
) -> None:
    _app, client = await make_app_client(max_upload_bytes=len(VCF) - 1)
    with aiohttp.MultipartWriter("mixed") as body:
        body.append_json(ANALYSIS)
        part = body.append(VCF, {"Content-Type": "text/x-vcf"})
        part.set_content_disposition("attachment", filename="calls.vcf")
    response = await client.post("/repository/analyses", data=body, headers=alice)
    assert response.status == 413 and "resumable upload" in (await response.json())["message"]
    assert [p for p in common_settings.files_root.rglob("*") if p.is_file()] == []


async def test_nested_chain_and_multipart_run(make_app_client: Any, alice: dict[str, str]) -> None:
    _app, client = await make_app_client()
    study = await client.post(
        "/repository/studies",
        headers=alice,
        json={"alias": "chain", "descriptor": {"study_title": "chain", "study_type": {"existing_study_type": "Other"}}},
    )
    study_acc = (await study.json())["accession"]
    sample = await client.post(
        f"/repository/studies/{study_acc}/samples",
        headers=alice,
        json={"alias": "s", "sample_name": {"taxon_id": 9606}},
    )
    sample_acc = (await sample.json())["accession"]
    experiment = await client.post(
        f"/repository/samples/{sample_acc}/experiments",
        headers=alice,
        json={
            "alias": "lib",
            "design": {
                "design_description": "d",
                "library_descriptor": {
                    "library_strategy": "WGS",
                    "library_source": "GENOMIC",
                    "library_selection": "RANDOM",
                    "library_layout": {"single": {}},
                },
            },
            "platform": {"illumina": {"instrument_model": "Illumina MiSeq"}},
        },
    )
    assert experiment.status == 201, await experiment.text()
    exp = await experiment.json()
    assert exp["study_ref"] == {"accession": study_acc}  # filled in from the URL
    assert exp["design"]["sample_descriptor"] == {"accession": sample_acc}
    fastq = b"@r1\nACGT\n+\nIIII\n"
    with aiohttp.MultipartWriter("mixed") as body:
        body.append_json({"alias": "run-1", "title": "one run"})
        part = body.append(fastq, {"Content-Type": "text/plain"})
        part.set_content_disposition("attachment", filename="s_R1.fastq")
    run = await client.post(f"/repository/experiments/{exp['accession']}/runs", data=body, headers=alice)
    assert run.status == 201, await run.text()
    doc = await run.json()
    [entry] = doc["data_block"]["files"]["file"]
    assert entry["checksum"] == hashlib.sha256(fastq).hexdigest() and entry["checksum_method"] == "SHA-256"
    rels = {link["rel"].rsplit("/links/", 1)[-1]: link["href"] for link in doc["links"]}
    assert rels["study/sample/experiment"].endswith(f"/experiments/{exp['accession']}")
    runs = await (await client.get(f"/repository/experiments/{exp['accession']}/runs")).json()
    assert [r["accession"] for r in runs["resources"]] == [doc["accession"]]
    blocked = await client.delete(f"/repository/experiments/{exp['accession']}", headers=alice)
    assert blocked.status == 409


async def test_review_requests_and_decisions_are_announced_on_rabbitmq(
    make_app_client: Any, amqp_settings: CommonSettings, amqp_url: str, alice: dict[str, str], admin: dict[str, str]
) -> None:
    _app, client = await make_app_client(common=amqp_settings, review_types="study")
    connection = await aio_pika.connect(amqp_url)
    try:
        channel = await connection.channel()
        exchange = await channel.get_exchange(amqp_settings.bus_exchange)  # declared by the app at start-up
        queue = await channel.declare_queue(exclusive=True, auto_delete=True)
        await queue.bind(exchange, "repository.review.#")
        study = {"alias": "rev-ev", "descriptor": {"study_title": "T", "study_type": {"existing_study_type": "Other"}}}
        posted = await client.post("/repository/studies", json=study, headers=alice)
        assert posted.status == 202, await posted.text()
        review_path = posted.headers["Location"].split(str(client.make_url("")).rstrip("/"))[-1]
        review_id = review_path.rsplit("/", 1)[1]
        requested = await _next_event(queue)
        assert isinstance(requested, ReviewRequested)
        assert requested.data.review_id == review_id and requested.data.resource_type == "study"
        assert requested.data.alias == "rev-ev" and requested.data.owner == "alice"

        decided = await client.post(
            f"{review_path}/decision", json={"decision": "approve", "comment": "fine"}, headers=admin
        )
        assert decided.status == 200, await decided.text()
        accession = decided.headers["Location"].rsplit("/", 1)[1]
        outcome = await _next_event(queue)
        assert isinstance(outcome, ReviewDecided)
        assert (outcome.data.decision, outcome.data.accession, outcome.data.reviewer, outcome.data.comment) == (
            "approved",
            accession,
            "root",
            "fine",
        )
    finally:
        await connection.close()
