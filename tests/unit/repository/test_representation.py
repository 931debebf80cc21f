"""Link relations and renderings of stored resources."""

from __future__ import annotations

from datetime import UTC, datetime

from services.repository.models import GMI_LINKS, Parents, Resource, ResourceType
from services.repository.representation import external_ids, link_header, links, to_html

BASE = "http://repo.example/repository"
NOW = datetime(2026, 1, 1, tzinfo=UTC)


def resource(rtype: ResourceType, accession: str, parents: Parents = Parents(), **body: object) -> Resource:
    return Resource(
        accession=accession,
        rtype=rtype,
        alias="a",
        owner="alice",
        body={"accession": accession, **body},
        parents=parents,
        created=NOW,
        modified=NOW,
    )


def rels(r: Resource) -> dict[str, str]:
    return {link["rel"].removeprefix(GMI_LINKS): link["href"] for link in links(r, BASE)}


def test_sample_links_follow_the_draft() -> None:
    found = rels(resource(ResourceType.SAMPLE, "SHS000001", Parents(study="SHP000001")))
    assert found["self"] == f"{BASE}/samples/SHS000001"
    assert found["study"] == f"{BASE}/studies/SHP000001"
    assert found["study/samples"] == f"{BASE}/studies/SHP000001/samples"
    assert found["study/sample/experiments"] == f"{BASE}/samples/SHS000001/experiments"
    assert found["submitter"] == f"{BASE}/submitters/alice"
    assert "related-resources" in found


def test_run_and_analysis_links() -> None:
    run = rels(resource(ResourceType.RUN, "SHR000001", Parents(experiment="SHX000001")))
    assert run["study/sample/experiment"] == f"{BASE}/experiments/SHX000001"
    assert run["run/data"] == f"{BASE}/runs/SHR000001/data"
    analysis = links(resource(ResourceType.ANALYSIS, "SHZ000001", Parents(runs=("SHR000001", "SHR000002"))), BASE)
    assert [x["href"] for x in analysis if x["rel"] == GMI_LINKS + "run"] == [
        f"{BASE}/runs/SHR000001",
        f"{BASE}/runs/SHR000002",
    ]
    assert link_header(analysis[:1]) == f'<{BASE}/analyses/SHZ000001>; rel="self"'


def test_external_ids_link_to_the_archives() -> None:
    body = {
        "identifiers": {"primary_id": "SRS001433", "external_id": [{"namespace": "BioSample", "value": "SAMN00000985"}]}
    }
    assert external_ids(body) == [
        {"namespace": "INSDC", "id": "SRS001433", "href": "https://www.ebi.ac.uk/ena/browser/view/SRS001433"},
        {
            "namespace": "BioSample",
            "id": "SAMN00000985",
            "href": "https://www.ebi.ac.uk/biosamples/samples/SAMN00000985",
        },
    ]


def test_html_escapes_user_content() -> None:
    page = to_html(resource(ResourceType.SAMPLE, "SHS000001", title="<script>alert(1)</script>"), BASE)
    assert "<script>" not in page and "&lt;script&gt;" in page
