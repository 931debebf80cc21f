"""The GMI REST API end to end over HTTP: real ENA documents, the draft's walk-throughs, conditional requests,
content negotiation, pagination, field errors, hostile XML, deletion."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import pytest

from services.repository.models import ResourceType
from services.repository.sra import xml_to_gmi
from tests.shared import SHARED

from .conftest import Client, MakeClient

EXAMPLES = (SHARED / "specs/sra-examples")
GMI = "http://www.g-m-i.org/links/"
DOCS = [
    ("SRS001433.xml", ResourceType.SAMPLE),
    ("SRP000539.xml", ResourceType.STUDY),
    ("ERR000076.xml", ResourceType.RUN),
]
STUDY = {
    "alias": "proj-1",
    "descriptor": {
        "study_title": "A very interesting study.",
        "study_type": {"existing_study_type": "Whole Genome Sequencing"},
        "study_abstract": "Completed by very interesting people.",
    },
}


def sample(alias: str, taxon: int = 9606, **extra: Any) -> dict[str, Any]:
    return {"alias": alias, "title": f"Sample {alias}", "sample_name": {"taxon_id": taxon}, **extra}


def path_of(client: Client, url: str) -> str:
    return url.removeprefix(str(client.make_url("")).rstrip("/"))


def canonical(elem: ET.Element, *, skip_accession: bool = True) -> tuple[Any, ...]:
    attrs = sorted(
        (k, v)
        for k, v in elem.attrib.items()
        if not (skip_accession and k == "accession" and elem.tag.endswith(("SAMPLE", "STUDY", "RUN")))
    )
    return (elem.tag, attrs, (elem.text or "").strip(), [canonical(c) for c in elem])


def link(doc: dict[str, Any], rel: str) -> str:
    return next(item["href"] for item in doc["links"] if item["rel"] == rel)


@pytest.mark.parametrize(("name", "rtype"), DOCS)
async def test_real_ena_document_posted_as_xml_reads_back_as_xml_and_json(
    client: Client, alice: dict[str, str], name: str, rtype: ResourceType
) -> None:
    original = (EXAMPLES / name).read_bytes()
    xml_type = rtype.info.xml_type
    created = await client.post(
        f"/repository/{rtype.info.collection}", data=original, headers={**alice, "Content-Type": xml_type}
    )
    assert created.status == 201, await created.text()
    assert created.headers["Content-Type"] == xml_type
    location = path_of(client, created.headers["Location"])

    as_xml = await client.get(location, headers={"Accept": xml_type})
    assert as_xml.status == 200 and as_xml.headers["Content-Type"] == xml_type
    body = await as_xml.read()
    xml_to_gmi(body, rtype)  # raises unless schema-valid
    assert canonical(ET.fromstring(body)) == canonical(ET.fromstring(original))  # noqa: S314 - our own output
    assert 'rel="self"' in as_xml.headers["Link"]

    as_json = await (await client.get(location, headers={"Accept": rtype.info.json_type})).json()
    accession = location.rsplit("/", 1)[-1]
    assert as_json["accession"] == accession and link(as_json, "self").endswith(location)

    # the same resource POSTed as JSON (another alias) reads back as the same XML
    resend = {k: v for k, v in as_json.items() if k not in ("links", "external_ids", "visibility")}
    resend["alias"] = resend["alias"] + "-json"
    again = await client.post(f"/repository/{rtype.info.collection}", json=resend, headers=alice)
    assert again.status == 201, await again.text()
    again_xml = await (
        await client.get(path_of(client, again.headers["Location"]), headers={"Accept": xml_type})
    ).read()
    first, second = ET.fromstring(body), ET.fromstring(again_xml)  # noqa: S314
    second[0].set("alias", first[0].get("alias", ""))
    assert canonical(second) == canonical(first)


async def test_sample_json_links_to_insdc_records(client: Client, alice: dict[str, str]) -> None:
    created = await client.post(
        "/repository/samples",
        data=(EXAMPLES / "SRS001433.xml").read_bytes(),
        headers={**alice, "Content-Type": "application/xml", "Accept": "application/json"},
    )
    doc = await created.json()
    assert {
        "namespace": "BioSample",
        "id": "SAMN00000985",
        "href": "https://www.ebi.ac.uk/biosamples/samples/SAMN00000985",
    } in doc["external_ids"]
    assert doc["sample_name"] == {"taxon_id": 9606, "scientific_name": "Homo sapiens"}


async def test_walkthrough_create_a_study_that_goes_to_review(
    make_client: MakeClient, alice: dict[str, str], admin: dict[str, str]
) -> None:
    client = await make_client(review_types="study")
    posted = await client.post(
        "/repository/studies", json=STUDY, headers={**alice, "Content-Type": "application/vnd.gmi.study-v1+json"}
    )
    assert posted.status == 202, await posted.text()
    assert "accepted for review" in (await posted.json())["response"]
    review = path_of(client, posted.headers["Location"])
    assert review.startswith("/repository/studies-to-review/")

    first = await client.get(review, headers={**alice, "Accept": "application/json"})
    assert first.status == 200 and (await first.json()) == {"status": {"message": "pending review"}}
    t1 = first.headers["Last-Modified"]
    unchanged = await client.get(review, headers={**alice, "If-Modified-Since": t1})
    assert unchanged.status == 304

    decided = await client.post(f"{review}/decision", json={"decision": "approve"}, headers=admin)
    assert decided.status == 200, await decided.text()

    done = await client.get(review, headers={**alice, "If-Modified-Since": t1})
    assert done.status == 200 and done.headers["Last-Modified"] != t1
    status = (await done.json())["status"]
    assert status["message"] == "review complete"
    study = await client.get(path_of(client, status[GMI + "study"]), headers={"Accept": "application/json"})
    assert study.status == 200 and (await study.json())["alias"] == "proj-1"


async def test_walkthrough_add_a_sample_through_the_samples_link(client: Client, alice: dict[str, str]) -> None:
    created = await client.post("/repository/studies", json=STUDY, headers=alice)
    assert created.status == 201
    study = await (
        await client.get(
            path_of(client, created.headers["Location"]), headers={"Accept": "application/vnd.gmi.study-v1+json"}
        )
    ).json()
    rels = {item["rel"] for item in study["links"]}
    assert {
        "self",
        GMI + "study/samples",
        GMI + "submitter",
        GMI + "study/related-studies",
        GMI + "related-resources",
    } <= rels
    samples_url = path_of(client, link(study, GMI + "study/samples"))

    added = await client.post(
        samples_url, json=sample("s-1"), headers={**alice, "Content-Type": "application/vnd.gmi.sample-v1+json"}
    )
    assert added.status == 201, await added.text()
    listing = await (await client.get(samples_url, headers={"Accept": "application/json"})).json()
    [member] = listing["resources"]
    assert member["alias"] == "s-1" and link(member, "self") == added.headers["Location"]
    assert link(member, GMI + "study").endswith(path_of(client, created.headers["Location"]))

    rejected = await client.post(samples_url, json={"sampleName": "sample"}, headers=alice)
    assert rejected.status == 400
    error = await rejected.json()
    assert error["message"] == "sample is not valid against SRA.sample.xsd"
    fields = {f["field"]: f for f in error["invalidFields"]}
    assert fields["sampleName"]["path"] == "/SAMPLE_SET/SAMPLE/sampleName"
    assert "unknown property" in fields["sampleName"]["reason"]
    assert any("SAMPLE_NAME" in f["reason"] for f in error["invalidFields"])  # the required element is missing


async def test_conditional_get_put_and_patch(client: Client, alice: dict[str, str]) -> None:
    created = await client.post("/repository/samples", json=sample("c-1"), headers=alice)
    url = path_of(client, created.headers["Location"])
    first = await client.get(url)
    etag, modified = first.headers["ETag"], first.headers["Last-Modified"]
    assert (await client.get(url, headers={"If-None-Match": etag})).status == 304
    assert (await client.get(url, headers={"If-Modified-Since": modified})).status == 304
    earlier = format_datetime(datetime.now(UTC) - timedelta(days=1), usegmt=True)
    assert (await client.get(url, headers={"If-Modified-Since": earlier})).status == 200

    patched = await client.patch(
        url,
        data=json.dumps({"description": "patched"}),
        headers={**alice, "If-Match": etag, "Content-Type": "application/merge-patch+json"},
    )
    assert patched.status == 200, await patched.text()
    assert patched.headers["ETag"] != etag and (await patched.json())["description"] == "patched"

    lost = await client.put(url, json=sample("c-1", description="lost update"), headers={**alice, "If-Match": etag})
    assert lost.status == 412
    assert (await (await client.get(url)).json())["description"] == "patched"
    replaced = await client.put(url, json=sample("c-1"), headers={**alice, "If-Match": patched.headers["ETag"]})
    assert replaced.status == 200 and "description" not in await replaced.json()
    assert replaced.headers["Location"].endswith(url)


async def test_put_creates_at_an_unused_accession(client: Client, alice: dict[str, str]) -> None:
    created = await client.put("/repository/samples/SHS000500", json=sample("p-1"), headers=alice)
    assert created.status == 201 and created.headers["Location"].endswith("/repository/samples/SHS000500")
    bad = await client.put("/repository/samples/whatever", json=sample("p-2"), headers=alice)
    assert bad.status == 400


async def test_content_negotiation(client: Client, alice: dict[str, str]) -> None:
    created = await client.post("/repository/samples", json=sample("n-1"), headers=alice)
    url = path_of(client, created.headers["Location"])
    cases = {
        "application/vnd.gmi.sample-v1+xml": "application/vnd.gmi.sample-v1+xml",
        "application/json": "application/json",
        "text/html": "text/html; charset=utf-8",
        "application/vnd.gmi.sample-v1+json;q=0.4, application/vnd.gmi.sample-v1+xml;q=0.8": (
            "application/vnd.gmi.sample-v1+xml"
        ),
    }
    for accept, expected in cases.items():
        response = await client.get(url, headers={"Accept": accept})
        assert response.status == 200 and response.headers["Content-Type"] == expected, accept
    page = await (await client.get(url, headers={"Accept": "text/html"})).text()
    assert "<h1>Sample n-1</h1>" in page
    refused = await client.get(url, headers={"Accept": "image/png"})
    assert refused.status == 406 and "acceptable" in (await refused.json())["message"]
    unsupported = await client.post("/repository/samples", data=b"x", headers={**alice, "Content-Type": "text/plain"})
    assert unsupported.status == 415


async def test_pagination_links_and_filters(client: Client, alice: dict[str, str]) -> None:
    for i in range(5):
        attrs = {"sample_attributes": {"sample_attribute": [{"tag": "site", "value": "gut" if i % 2 else "skin"}]}}
        response = await client.post(
            "/repository/samples", json=sample(f"pg-{i}", 9606 if i < 3 else 10090, **attrs), headers=alice
        )
        assert response.status == 201
    seen: list[str] = []
    url: str | None = "/repository/samples?limit=2"
    while url:
        response = await client.get(url)
        seen += [r["alias"] for r in (await response.json())["resources"]]
        links = {
            part.split('rel="')[1].rstrip('"'): part.split(">")[0].lstrip("<")
            for part in response.headers["Link"].split(", ")
        }
        assert "first" in links
        url = path_of(client, links["next"]) if "next" in links else None
    assert seen == [f"pg-{i}" for i in range(5)]

    async def aliases(query: str) -> list[str]:
        return [r["alias"] for r in (await (await client.get(f"/repository/samples?{query}")).json())["resources"]]

    assert await aliases("taxon=10090") == ["pg-3", "pg-4"]
    assert await aliases("alias=pg-2") == ["pg-2"]
    assert await aliases("title=sample%20pg-1") == ["pg-1"]
    assert await aliases("attribute=site:gut") == ["pg-1", "pg-3"]
    assert (await client.get("/repository/samples?limit=0")).status == 400
    assert (await client.get("/repository/samples?bogus=1")).status == 400


async def test_invalid_xml_answers_with_xml_field_errors(client: Client, alice: dict[str, str]) -> None:
    bad = (EXAMPLES / "SRS001433.xml").read_bytes().replace(b"<TAXON_ID>9606", b"<TAXON_ID>human")
    response = await client.post(
        "/repository/samples", data=bad, headers={**alice, "Content-Type": "application/vnd.gmi.sample-v1+xml"}
    )
    assert response.status == 400 and response.headers["Content-Type"].startswith("application/xml")
    root = ET.fromstring(await response.read())  # noqa: S314 - our own output
    [field] = root.findall("INVALID_FIELDS/FIELD")
    assert field.get("path") == "/SAMPLE_SET/SAMPLE/SAMPLE_NAME/TAXON_ID" and "human" in (field.text or "")


@pytest.mark.parametrize(
    "hostile",
    [
        b'<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">'
        b'<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">]><SAMPLE_SET>&c;</SAMPLE_SET>',
        b'<?xml version="1.0"?><!DOCTYPE s [<!ENTITY x SYSTEM "file:///etc/passwd">]><SAMPLE_SET>&x;</SAMPLE_SET>',
        b"<SAMPLE_SET>" + b"<a>" * 5000 + b"</a>" * 5000 + b"</SAMPLE_SET>",
    ],
)
async def test_hostile_xml_is_refused_without_harm(client: Client, alice: dict[str, str], hostile: bytes) -> None:
    response = await client.post(
        "/repository/samples", data=hostile, headers={**alice, "Content-Type": "application/vnd.gmi.sample-v1+xml"}
    )
    assert response.status == 400
    assert b"root:" not in await response.read()
    assert (await client.get("/repository/healthz")).status == 200


async def test_delete_links_back_to_the_collection(client: Client, alice: dict[str, str]) -> None:
    created = await client.post("/repository/samples", json=sample("d-1"), headers=alice)
    url = path_of(client, created.headers["Location"])
    deleted = await client.delete(url, headers=alice)
    assert deleted.status == 200
    assert (await deleted.json())["links"][0]["href"].endswith("/repository/samples")
    assert (await client.get(url)).status == 404
    assert (await client.delete(url, headers=alice)).status == 404


async def test_study_with_samples_cannot_be_deleted(client: Client, alice: dict[str, str]) -> None:
    created = await client.post("/repository/studies", json=STUDY, headers=alice)
    url = path_of(client, created.headers["Location"])
    await client.post(f"{url}/samples", json=sample("child"), headers=alice)
    response = await client.delete(url, headers=alice)
    assert response.status == 409 and "dependent" in (await response.json())["message"]


async def test_openapi_document_is_served(client: Client) -> None:
    document = await (await client.get("/repository/openapi.json")).json()
    assert {"/{collection}", "/{collection}/{accession}", "/{collection}-to-review/{id}"} <= set(document["paths"])


async def test_domain_metrics_count_writes_and_refusals(client: Client, alice: dict[str, str]) -> None:
    await client.post("/repository/samples", json=sample("m-1"), headers=alice)
    await client.post("/repository/samples", json={"title": "no name"}, headers=alice)
    text = await (await client.get("/repository/metrics")).text()
    assert 'seqhub_repository_resources_written_total{operation="create",type="sample"}' in text
    assert 'seqhub_repository_invalid_documents_total{type="sample"}' in text
