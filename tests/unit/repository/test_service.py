"""Use cases of the repository against an in-memory store: ownership, versions, review, analysis events."""

from __future__ import annotations

import pytest

from libs.common.errors import Conflict, Forbidden, NotFound, Unauthorized
from libs.common.events import AnalysisPublished, AnalysisWithdrawn, ReviewDecidedData
from services.repository import service
from services.repository.models import (
    DataFile,
    ListQuery,
    Resource,
    ResourceType,
    Review,
    ReviewDecision,
    ReviewStatus,
)
from services.repository.sra import xml_to_gmi
from tests.shared import SHARED

from .fakes import ANON, FakeResourceStore, caller

WRITER = caller("alice", "repository:write")
OTHER = caller("bob", "repository:write")
READER = caller("carol", "repository:read")
ADMIN = caller("root", "admin")
STUDY = {
    "alias": "proj-1",
    "descriptor": {"study_title": "T", "study_type": {"existing_study_type": "Other"}},
}


def sample(alias: str = "s1") -> dict[str, object]:
    return {"alias": alias, "title": f"sample {alias}", "sample_name": {"taxon_id": 9606}}


async def test_create_mints_a_seqhub_accession_and_keeps_the_insdc_identifiers() -> None:
    store = FakeResourceStore()
    [body] = xml_to_gmi((SHARED / "specs/sra-examples/SRS001433.xml").read_bytes(), ResourceType.SAMPLE)
    created = await service.create_resource(ResourceType.SAMPLE, body, caller=WRITER, store=store)
    assert not isinstance(created, Review)
    assert created.accession == "SHS000001"
    assert created.body["accession"] == "SHS000001"
    assert created.body["identifiers"]["primary_id"] == "SRS001433"
    assert created.owner == "alice"


async def test_write_needs_credentials_then_scope() -> None:
    store = FakeResourceStore()
    with pytest.raises(Unauthorized):
        await service.create_resource(ResourceType.SAMPLE, sample(), caller=ANON, store=store)
    with pytest.raises(Forbidden):
        await service.create_resource(ResourceType.SAMPLE, sample(), caller=READER, store=store)


async def test_project_scope_allows_writing_under_that_study_only() -> None:
    store = FakeResourceStore()
    study = await service.create_resource(ResourceType.STUDY, STUDY, caller=WRITER, store=store)
    assert not isinstance(study, Review)
    member = caller("dave", "project:proj-1:write")
    parent = (ResourceType.STUDY, study.accession)
    created = await service.create_resource(ResourceType.SAMPLE, sample(), caller=member, store=store, parent=parent)
    assert not isinstance(created, Review) and created.parents.study == study.accession
    with pytest.raises(Forbidden):
        await service.create_resource(ResourceType.SAMPLE, sample("s2"), caller=member, store=store)


async def test_alias_is_unique_per_owner() -> None:
    store = FakeResourceStore()
    await service.create_resource(ResourceType.SAMPLE, sample(), caller=WRITER, store=store)
    with pytest.raises(Conflict):
        await service.create_resource(ResourceType.SAMPLE, sample(), caller=WRITER, store=store)
    other = await service.create_resource(ResourceType.SAMPLE, sample(), caller=OTHER, store=store)
    assert not isinstance(other, Review) and other.accession == "SHS000002"


async def test_only_the_owner_changes_and_if_match_guards_lost_updates() -> None:
    store = FakeResourceStore()
    created = await service.create_resource(ResourceType.SAMPLE, sample(), caller=WRITER, store=store)
    assert not isinstance(created, Review)
    acc = created.accession
    with pytest.raises(Forbidden):
        await service.patch_resource(ResourceType.SAMPLE, acc, {"title": "x"}, caller=OTHER, store=store, if_match=None)
    patched = await service.patch_resource(
        ResourceType.SAMPLE, acc, {"title": "new"}, caller=WRITER, store=store, if_match=created.etag
    )
    assert patched.body["title"] == "new" and patched.version == 2 and patched.modified > created.modified
    with pytest.raises(service.StaleVersion):
        await service.patch_resource(
            ResourceType.SAMPLE, acc, {"title": "lost"}, caller=WRITER, store=store, if_match=created.etag
        )
    replaced, was_created = await service.replace_resource(
        ResourceType.SAMPLE, acc, sample(), caller=ADMIN, store=store, if_match=patched.etag
    )
    assert not was_created and replaced.body["title"] == "sample s1" and replaced.owner == "alice"


async def test_patch_is_a_json_merge_patch_and_is_validated() -> None:
    store = FakeResourceStore()
    created = await service.create_resource(
        ResourceType.SAMPLE, {**sample(), "description": "d"}, caller=WRITER, store=store
    )
    assert not isinstance(created, Review)
    patched = await service.patch_resource(
        ResourceType.SAMPLE,
        created.accession,
        {"description": None},
        caller=WRITER,
        store=store,
        if_match=None,
    )
    assert "description" not in patched.body
    with pytest.raises(service.InvalidFields) as info:
        await service.patch_resource(
            ResourceType.SAMPLE,
            created.accession,
            {"sample_name": {"taxon_id": "x"}},
            caller=WRITER,
            store=store,
            if_match=None,
        )
    assert info.value.errors[0].path == "/SAMPLE_SET/SAMPLE/SAMPLE_NAME/TAXON_ID"


async def test_put_creates_at_an_accession_and_the_counter_skips_it() -> None:
    store = FakeResourceStore()
    created, was_created = await service.replace_resource(
        ResourceType.SAMPLE, "SHS000007", sample(), caller=WRITER, store=store, if_match=None
    )
    assert was_created and created.accession == "SHS000007"
    nxt = await service.create_resource(ResourceType.SAMPLE, sample("s2"), caller=WRITER, store=store)
    assert not isinstance(nxt, Review) and nxt.accession == "SHS000008"


async def test_private_resources_are_hidden_from_others() -> None:
    store = FakeResourceStore()
    created = await service.create_resource(
        ResourceType.SAMPLE, {**sample(), "visibility": "private"}, caller=WRITER, store=store
    )
    assert not isinstance(created, Review)
    assert await service.get_resource(ResourceType.SAMPLE, created.accession, caller=WRITER, store=store)
    with pytest.raises(Unauthorized):
        await service.get_resource(ResourceType.SAMPLE, created.accession, caller=ANON, store=store)
    with pytest.raises(Forbidden):
        await service.get_resource(ResourceType.SAMPLE, created.accession, caller=OTHER, store=store)
    page = await service.list_resources(ResourceType.SAMPLE, ListQuery(), caller=OTHER, store=store)
    assert page.items == ()


async def test_review_flow_creates_the_study_on_approval_only() -> None:
    store = FakeResourceStore()
    review = await service.create_resource(
        ResourceType.STUDY, STUDY, caller=WRITER, store=store, review_types=frozenset({ResourceType.STUDY})
    )
    assert isinstance(review, Review) and review.status is ReviewStatus.PENDING
    assert await store.get_by_alias(ResourceType.STUDY, "alice", "proj-1") is None
    with pytest.raises(Forbidden):
        await service.decide_review(review.id, ReviewDecision(decision="approve"), caller=WRITER, store=store)
    decided = await service.decide_review(review.id, ReviewDecision(decision="approve"), caller=ADMIN, store=store)
    assert decided.status is ReviewStatus.APPROVED and decided.accession == "SHP000001"
    assert decided.modified.replace(microsecond=0) > review.modified.replace(microsecond=0)
    with pytest.raises(Conflict):
        await service.decide_review(review.id, ReviewDecision(decision="reject"), caller=ADMIN, store=store)


async def test_delete_refuses_while_children_exist() -> None:
    store = FakeResourceStore()
    study = await service.create_resource(ResourceType.STUDY, STUDY, caller=WRITER, store=store)
    assert not isinstance(study, Review)
    await service.create_resource(
        ResourceType.SAMPLE,
        sample(),
        caller=WRITER,
        store=store,
        parent=(ResourceType.STUDY, study.accession),
    )
    with pytest.raises(Conflict):
        await service.delete_resource(ResourceType.STUDY, study.accession, caller=WRITER, store=store, if_match=None)
    with pytest.raises(NotFound):
        await service.delete_resource(ResourceType.SAMPLE, "SHS000099", caller=WRITER, store=store, if_match=None)


def _vcf() -> DataFile:
    return DataFile(name="calls.vcf.gz", uri="store:x/calls.vcf.gz", size=10, sha256="a" * 64, md5="b" * 32)


def analysis(level: str = "REGISTERED") -> dict[str, object]:
    return {
        "alias": "calls",
        "title": "variant calls",
        "analysis_type": {"sequence_variation": {"assembly": {"standard": {"refname": "GRCh38"}}}},
        "analysis_attributes": {
            "analysis_attribute": [
                {"tag": "access_level", "value": level},
                {"tag": "beacon_dataset_id", "value": "ds1"},
            ]
        },
    }


async def test_analysis_with_a_vcf_is_published_and_withdrawn() -> None:
    store = FakeResourceStore()
    created = await service.create_resource(
        ResourceType.ANALYSIS, analysis(), caller=WRITER, store=store, files=[_vcf()]
    )
    assert not isinstance(created, Review)
    [published] = store.events
    assert isinstance(published, AnalysisPublished)
    assert published.data.dataset_id == "ds1" and published.data.assembly == "GRCh38"
    assert published.data.access_level.value == "REGISTERED" and published.data.files[0].uri == _vcf().uri
    assert created.body["files"]["file"][0]["checksum_method"] == "MD5"
    same = await service.patch_resource(
        ResourceType.ANALYSIS,
        created.accession,
        {"description": "more words"},
        caller=WRITER,
        store=store,
        if_match=None,
    )
    assert len(store.events) == 1  # nothing a consumer sees changed
    await service.patch_resource(
        ResourceType.ANALYSIS,
        same.accession,
        {"visibility": "private"},
        caller=WRITER,
        store=store,
        if_match=None,
    )
    assert isinstance(store.events[-1], AnalysisWithdrawn) and store.events[-1].data.reason == "access-revoked"


async def test_deleting_a_published_analysis_withdraws_it() -> None:
    store = FakeResourceStore()
    created = await service.create_resource(
        ResourceType.ANALYSIS, analysis("PUBLIC"), caller=WRITER, store=store, files=[_vcf()]
    )
    assert not isinstance(created, Review)
    await service.delete_resource(ResourceType.ANALYSIS, created.accession, caller=WRITER, store=store, if_match=None)
    assert [type(e) for e in store.events] == [AnalysisPublished, AnalysisWithdrawn]
    assert store.events[-1].data.reason == "deleted"  # type: ignore[attr-defined]


def test_merge_patch_follows_rfc_7396() -> None:
    assert service.merge_patch({"a": "b", "c": {"d": "e", "f": "g"}}, {"a": "z", "c": {"f": None}}) == {
        "a": "z",
        "c": {"d": "e"},
    }
    assert service.merge_patch({"a": [1]}, {"a": [2]}) == {"a": [2]}


async def test_a_set_is_created_whole_or_not_at_all() -> None:
    store = FakeResourceStore()
    pair = [sample("a"), sample("b")]
    created = await service.create_resources(ResourceType.SAMPLE, pair, caller=WRITER, store=store)
    assert [r.accession for r in created] == ["SHS000001", "SHS000002"]
    assert all(isinstance(r, Resource) for r in created)
    bad: list[dict[str, object]] = [
        sample("c"),
        {"alias": "d", "sample_name": {"taxon_id": "x"}},
        {"alias": "e", "sampleName": 1},
    ]
    with pytest.raises(service.InvalidFields) as info:
        await service.create_resources(ResourceType.SAMPLE, bad, caller=WRITER, store=store)
    paths = [e.path for e in info.value.errors]
    assert "/SAMPLE_SET/SAMPLE[2]/SAMPLE_NAME/TAXON_ID" in paths
    assert "/SAMPLE_SET/SAMPLE[3]/sampleName" in paths
    assert not any(p.startswith("/SAMPLE_SET/SAMPLE[1]") for p in paths)
    assert "2 of the 3 elements" in info.value.message
    with pytest.raises(service.AliasesTaken) as taken:
        await service.create_resources(ResourceType.SAMPLE, [sample("z"), sample("b")], caller=WRITER, store=store)
    assert [e.path for e in taken.value.errors] == ["/SAMPLE_SET/SAMPLE[2]/@alias"]
    assert len(store.items) == 2  # nothing of the refused sets was stored
    with pytest.raises(Forbidden):
        await service.create_resources(ResourceType.SAMPLE, [sample("r1"), sample("r2")], caller=READER, store=store)


async def test_an_unknown_reference_in_a_set_names_its_element() -> None:
    store = FakeResourceStore()
    experiment = {
        "alias": "x1",
        "study_ref": {"accession": "SHP000009"},
        "design": {
            "design_description": "d",
            "sample_descriptor": {"accession": "ERS000001"},
            "library_descriptor": {
                "library_strategy": "WGS",
                "library_source": "GENOMIC",
                "library_selection": "RANDOM",
                "library_layout": {"single": {}},
            },
        },
        "platform": {"illumina": {"instrument_model": "Illumina NovaSeq 6000"}},
    }
    with pytest.raises(service.InvalidFields) as info:
        await service.create_resources(
            ResourceType.EXPERIMENT, [experiment, {**experiment, "alias": "x2"}], caller=WRITER, store=store
        )
    assert [e.path for e in info.value.errors] == [
        "/EXPERIMENT_SET/EXPERIMENT[1]/study_ref/accession",
        "/EXPERIMENT_SET/EXPERIMENT[2]/study_ref/accession",
    ]


async def test_review_requests_and_decisions_are_events_written_with_the_review() -> None:
    store = FakeResourceStore()
    types = frozenset({ResourceType.STUDY})
    first = await service.create_resource(ResourceType.STUDY, STUDY, caller=WRITER, store=store, review_types=types)
    second = await service.create_resource(
        ResourceType.STUDY, {**STUDY, "alias": "proj-2"}, caller=WRITER, store=store, review_types=types
    )
    assert isinstance(first, Review) and isinstance(second, Review)
    await service.decide_review(first.id, ReviewDecision(decision="approve"), caller=ADMIN, store=store)
    await service.decide_review(second.id, ReviewDecision(decision="reject", comment="no"), caller=ADMIN, store=store)
    kinds = [(type(e).__name__, getattr(e.data, "review_id", None)) for e in store.events]
    assert kinds == [
        ("ReviewRequested", first.id),
        ("ReviewRequested", second.id),
        ("ReviewDecided", first.id),
        ("ReviewDecided", second.id),
    ]
    approved, rejected = (e.data for e in store.events[2:])
    assert isinstance(approved, ReviewDecidedData) and isinstance(rejected, ReviewDecidedData)
    assert (approved.decision, approved.accession, approved.reviewer) == ("approved", "SHP000001", "root")
    assert (rejected.decision, rejected.accession, rejected.comment) == ("rejected", None, "no")
