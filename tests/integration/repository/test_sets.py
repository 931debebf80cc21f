"""POST of a multi-element ``*_SET`` document over HTTP: every element is created, or none is."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from aiohttp import ClientResponse

from services.repository.models import ResourceType
from services.repository.sra import xml_to_gmi

from .conftest import Client, MakeClient

XML = {"Content-Type": "application/vnd.gmi.sample-v1+xml"}


def sample_xml(alias: str, taxon: str = "9606", extra: str = "") -> str:
    return (
        f'<SAMPLE alias="{alias}"><TITLE>Sample {alias}</TITLE>'
        f"<SAMPLE_NAME><TAXON_ID>{taxon}</TAXON_ID></SAMPLE_NAME>{extra}</SAMPLE>"
    )


def sample_set(*samples: str) -> bytes:
    return f"<SAMPLE_SET>{''.join(samples)}</SAMPLE_SET>".encode()


async def xml_fields(response: ClientResponse) -> list[tuple[str | None, str | None, str | None]]:
    """(path, field, reason) of an XML error body (errors follow the request's XML Content-Type)."""
    root = ET.fromstring(await response.read())  # noqa: S314 - our own output
    return [(f.get("path"), f.get("name"), f.text) for f in root.iter("FIELD")]


async def count_samples(client: Client, alice: dict[str, str]) -> int:
    listed = await client.get("/repository/samples?limit=200", headers=alice)
    assert listed.status == 200
    return int((await listed.json())["count"])


async def test_a_sample_set_creates_every_sample(client: Client, alice: dict[str, str]) -> None:
    posted = await client.post(
        "/repository/samples", data=sample_set(*(sample_xml(f"set-{i}") for i in range(3))), headers={**alice, **XML}
    )
    assert posted.status == 201, await posted.text()
    assert posted.headers["Content-Type"] == "application/vnd.gmi.sample-v1+xml"
    assert "Location" not in posted.headers  # several resources: one Link rel="item" each instead
    items = [part.split(">")[0].lstrip("<").strip("<") for part in posted.headers["Link"].split(", ")]
    assert len(items) == 3 and all('rel="item"' in part for part in posted.headers["Link"].split(", "))
    # the answer is the stored set, schema-valid, in document order, with our accessions
    stored = xml_to_gmi(await posted.read(), ResourceType.SAMPLE)
    assert [s["alias"] for s in stored] == ["set-0", "set-1", "set-2"]
    accessions = [s["accession"] for s in stored]
    assert [url.rsplit("/", 1)[1] for url in items] == accessions
    for accession, alias in zip(accessions, ["set-0", "set-1", "set-2"], strict=True):
        got = await client.get(f"/repository/samples/{accession}", headers={"Accept": "application/json"})
        assert got.status == 200 and (await got.json())["alias"] == alias


async def test_a_sample_set_answers_json_when_asked(client: Client, alice: dict[str, str]) -> None:
    posted = await client.post(
        "/repository/samples",
        data=sample_set(sample_xml("j-1"), sample_xml("j-2")),
        headers={**alice, **XML, "Accept": "application/json"},
    )
    assert posted.status == 201, await posted.text()
    body = await posted.json()
    assert body["count"] == 2 and [r["alias"] for r in body["resources"]] == ["j-1", "j-2"]
    assert all(r["links"][0]["rel"] == "self" for r in body["resources"])


async def test_one_invalid_sample_creates_nothing_and_names_each_failing_element(
    client: Client, alice: dict[str, str]
) -> None:
    before = await count_samples(client, alice)
    document = sample_set(
        sample_xml("ok-1"),
        sample_xml("bad-2", taxon="human"),
        sample_xml("ok-3"),
        sample_xml("bad-4", extra="<BOGUS/>"),
    )
    posted = await client.post("/repository/samples", data=document, headers={**alice, **XML})
    assert posted.status == 400
    paths = {path for path, _, _ in await xml_fields(posted)}  # an XML request gets an XML error
    assert "/SAMPLE_SET/SAMPLE[2]/SAMPLE_NAME/TAXON_ID" in paths
    assert any(p is not None and p.startswith("/SAMPLE_SET/SAMPLE[4]") for p in paths)
    assert not any(p is not None and p.startswith(("/SAMPLE_SET/SAMPLE[1]", "/SAMPLE_SET/SAMPLE[3]")) for p in paths)
    assert await count_samples(client, alice) == before


async def test_repeated_and_taken_aliases_create_nothing(client: Client, alice: dict[str, str]) -> None:
    repeated = await client.post(
        "/repository/samples",
        data=sample_set(sample_xml("dup"), sample_xml("other"), sample_xml("dup")),
        headers={**alice, **XML, "Accept": "application/json"},
    )
    assert repeated.status == 400
    assert await xml_fields(repeated) == [
        ("/SAMPLE_SET/SAMPLE[3]/@alias", "alias", "alias 'dup' is also used by SAMPLE[1] of this document")
    ]
    single = await client.post("/repository/samples", data=sample_set(sample_xml("mine")), headers={**alice, **XML})
    assert single.status == 201 and "Location" in single.headers  # a one-element set is a plain create
    before = await count_samples(client, alice)
    taken = await client.post(
        "/repository/samples",
        data=sample_set(sample_xml("fresh"), sample_xml("mine")),
        headers={**alice, **XML, "Accept": "application/json"},
    )
    assert taken.status == 409
    assert [path for path, _, _ in await xml_fields(taken)] == ["/SAMPLE_SET/SAMPLE[2]/@alias"]
    assert await count_samples(client, alice) == before


async def test_a_set_under_a_study_is_checked_as_the_caller(
    client: Client, alice: dict[str, str], bob: dict[str, str]
) -> None:
    study = await client.post(
        "/repository/studies",
        json={"alias": "p-set", "descriptor": {"study_title": "T", "study_type": {"existing_study_type": "Other"}},
              "visibility": "private"},
        headers=alice,
    )
    assert study.status == 201
    accession = (await study.json())["accession"]
    document = sample_set(sample_xml("under-1"), sample_xml("under-2"))
    anonymous = await client.post(f"/repository/studies/{accession}/samples", data=document, headers=XML)
    assert anonymous.status == 401
    other = await client.post(f"/repository/studies/{accession}/samples", data=document, headers={**bob, **XML})
    assert other.status == 403  # bob may not see alice's private study
    nested = await client.post(
        f"/repository/studies/{accession}/samples",
        data=document,
        headers={**alice, **XML, "Accept": "application/json"},
    )
    assert nested.status == 201, await nested.text()
    listed = await client.get(f"/repository/studies/{accession}/samples", headers=alice)
    assert sorted(r["alias"] for r in (await listed.json())["resources"]) == ["under-1", "under-2"]


async def test_a_study_set_goes_to_review_element_by_element(
    make_client: MakeClient, alice: dict[str, str], admin: dict[str, str]
) -> None:
    client = await make_client(review_types="study")
    study = (
        '<STUDY alias="{a}"><DESCRIPTOR><STUDY_TITLE>T {a}</STUDY_TITLE>'
        '<STUDY_TYPE existing_study_type="Other"/></DESCRIPTOR></STUDY>'
    )
    document = f"<STUDY_SET>{study.format(a='r-1')}{study.format(a='r-2')}</STUDY_SET>".encode()
    posted = await client.post(
        "/repository/studies", data=document, headers={**alice, "Content-Type": "application/xml"}
    )
    assert posted.status == 202, await posted.text()
    reviews = (await posted.json())["reviews"]
    assert len(reviews) == 2
    for url in reviews:
        path = url.removeprefix(str(client.make_url("")).rstrip("/"))
        pending = await client.get(path, headers=alice)
        assert (await pending.json())["status"]["message"] == "pending review"
