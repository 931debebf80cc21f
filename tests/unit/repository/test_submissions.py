"""SUBMISSION actions executed against an in-memory store: RELEASE, HOLD, SUPPRESS, CANCEL, KILL and refusals."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest

from libs.common.errors import BadRequest
from libs.common.events import AnalysisPublished, AnalysisWithdrawn
from services.repository import service
from services.repository.models import Resource, ResourceType, Visibility

from .fakes import FakeResourceStore, caller
from .test_service import _vcf, analysis

WRITER = caller("alice", "repository:write")
OTHER = caller("bob", "repository:write")
ADMIN = caller("root", "admin")


def submission(*actions: dict[str, Any], alias: str = "sub-1") -> dict[str, Any]:
    return {"alias": alias, "actions": {"action": list(actions)}}


async def new_sample(store: FakeResourceStore, alias: str, visibility: str = "private", who: Any = WRITER) -> Resource:
    created = await service.create_resource(
        ResourceType.SAMPLE,
        {"alias": alias, "sample_name": {"taxon_id": 9606}, "visibility": visibility},
        caller=who,
        store=store,
    )
    assert isinstance(created, Resource)
    return created


async def submit(store: FakeResourceStore, body: dict[str, Any], who: Any = WRITER) -> Resource:
    created = await service.create_resource(ResourceType.SUBMISSION, body, caller=who, store=store)
    assert isinstance(created, Resource)
    return created


async def test_release_and_hold_change_visibility_and_are_kept_as_the_receipt() -> None:
    store = FakeResourceStore()
    first = await new_sample(store, "s1")
    second = await new_sample(store, "s2", "public")
    until = date.today() + timedelta(days=30)
    done = await submit(
        store,
        submission({"release": {"target": first.accession}}, {"hold": {"target": "s2", "HoldUntilDate": str(until)}}),
    )
    released = await store.get(ResourceType.SAMPLE, first.accession)
    held = await store.get(ResourceType.SAMPLE, second.accession)
    assert released is not None and released.visibility is Visibility.PUBLIC and released.version == 2
    assert held is not None and held.visibility is Visibility.PRIVATE
    assert [(a.action, a.target, a.type, a.result, a.hold_until) for a in done.receipt] == [
        ("RELEASE", first.accession, "sample", "public", None),
        ("HOLD", second.accession, "sample", "private", until),
    ]
    stored = await store.get(ResourceType.SUBMISSION, done.accession)
    assert stored is not None and stored.receipt == done.receipt


async def test_hold_then_release_of_the_same_object_in_one_submission() -> None:
    store = FakeResourceStore()
    sample = await new_sample(store, "s1", "public")
    await submit(store, submission({"hold": {"target": "s1"}}, {"release": {"target": "s1"}}))
    final = await store.get(ResourceType.SAMPLE, sample.accession)
    assert final is not None and final.visibility is Visibility.PUBLIC and final.version == 3


async def test_cancel_deletes_a_private_object_and_kill_a_public_one() -> None:
    store = FakeResourceStore()
    private = await new_sample(store, "p")
    public = await new_sample(store, "q", "public")
    done = await submit(store, submission({"cancel": {"target": "p"}}, {"kill": {"target": public.accession}}))
    assert await store.get(ResourceType.SAMPLE, private.accession) is None
    assert await store.get(ResourceType.SAMPLE, public.accession) is None
    assert [a.result for a in done.receipt] == ["deleted", "deleted"]


async def test_suppressing_a_published_analysis_withdraws_it() -> None:
    store = FakeResourceStore()
    created = await service.create_resource(
        ResourceType.ANALYSIS, analysis("PUBLIC"), caller=WRITER, store=store, files=[_vcf()]
    )
    assert isinstance(created, Resource)
    await submit(store, submission({"suppress": {"target": created.accession}}))
    assert [type(e) for e in store.events] == [AnalysisPublished, AnalysisWithdrawn]
    assert store.events[-1].data.reason == "access-revoked"  # type: ignore[attr-defined]


async def test_every_bad_action_is_named_and_nothing_changes() -> None:
    store = FakeResourceStore()
    private = await new_sample(store, "p")
    public = await new_sample(store, "q", "public")
    theirs = await new_sample(store, "b", "public", who=OTHER)
    before = dict(store.items)
    body = submission(
        {"release": {"target": private.accession}},  # fine on its own
        {"release": {"target": theirs.accession}},  # someone else's: reported like an unknown one
        {"release": {"target": "SHS999999"}},
        {"cancel": {"target": public.accession}},
        {"kill": {"target": "p"}},
        {"hold": {"target": "p", "HoldUntilDate": str(date.today())}},
        {"hold": {"target": "p", "HoldUntilDate": str(date.today() + timedelta(days=800))}},
        {"add": {"source": "samples.xml", "schema": "sample"}},
        {"release": None},
        {"rollback": None},
    )
    with pytest.raises(service.InvalidFields) as info:
        await submit(store, body)
    paths = [e.path for e in info.value.errors]
    base = "/SUBMISSION_SET/SUBMISSION/ACTIONS/ACTION"
    assert paths == [
        f"{base}[2]/RELEASE/@target",
        f"{base}[3]/RELEASE/@target",
        f"{base}[4]/CANCEL",
        f"{base}[5]/KILL",
        f"{base}[6]/HOLD/@HoldUntilDate",
        f"{base}[7]/HOLD/@HoldUntilDate",
        f"{base}[8]/ADD",
        f"{base}[9]/RELEASE",
        f"{base}[10]/ROLLBACK",
    ]
    reasons = [e.reason for e in info.value.errors]
    assert reasons[0] == f"no object {theirs.accession} of yours" and reasons[1] == "no object SHS999999 of yours"
    assert "POST the document" in reasons[6]
    assert store.items == before  # nothing changed, no submission stored


async def test_an_admin_may_target_anyones_object_by_accession() -> None:
    store = FakeResourceStore()
    sample = await new_sample(store, "s1")
    await submit(store, submission({"release": {"target": sample.accession}}), who=ADMIN)
    released = await store.get(ResourceType.SAMPLE, sample.accession)
    assert released is not None and released.visibility is Visibility.PUBLIC


async def test_objects_with_dependents_cannot_be_cancelled_and_sets_are_one_at_a_time() -> None:
    store = FakeResourceStore()
    study = await service.create_resource(
        ResourceType.STUDY,
        {"alias": "st", "descriptor": {"study_title": "T", "study_type": {"existing_study_type": "Other"}},
         "visibility": "private"},
        caller=WRITER,
        store=store,
    )
    assert isinstance(study, Resource)
    await service.create_resource(
        ResourceType.SAMPLE, {"alias": "child", "sample_name": {"taxon_id": 9606}}, caller=WRITER, store=store,
        parent=(ResourceType.STUDY, study.accession),
    )
    with pytest.raises(service.InvalidFields) as info:
        await submit(store, submission({"cancel": {"target": "st"}}))
    assert "dependent" in info.value.errors[0].reason
    with pytest.raises(BadRequest):
        await service.create_resources(
            ResourceType.SUBMISSION, [submission(alias="a"), submission(alias="b")], caller=WRITER, store=store
        )


class RacingStore(FakeResourceStore):
    """A store where another writer changes `racing` right after the submission's check has read it."""

    racing = ""

    async def get(self, rtype: ResourceType, accession: str) -> Resource | None:
        found = await super().get(rtype, accession)
        if found is not None and accession == self.racing:
            self.items[(rtype, accession)] = found.model_copy(update={"version": found.version + 1})
        return found


async def test_a_concurrent_change_fails_the_whole_submission() -> None:
    store = RacingStore()
    first = await new_sample(store, "s1")
    second = await new_sample(store, "s2")
    store.racing = second.accession
    with pytest.raises(service.StaleVersion):
        body = submission({"release": {"target": first.accession}}, {"release": {"target": second.accession}})
        await submit(store, body)
    unchanged = await store.get(ResourceType.SAMPLE, first.accession)
    assert unchanged is not None and unchanged.visibility is Visibility.PRIVATE and unchanged.version == 1
    assert not [r for (t, _), r in store.items.items() if t is ResourceType.SUBMISSION]


async def test_a_hold_with_a_date_is_released_on_that_day_and_release_or_patch_clears_it() -> None:
    store = FakeResourceStore()
    held = await new_sample(store, "h1", "public")
    other = await new_sample(store, "h2", "public")
    until = date.today() + timedelta(days=10)
    await submit(
        store,
        submission(
            {"hold": {"target": "h1", "HoldUntilDate": str(until)}},
            {"suppress": {"target": "h2", "HoldUntilDate": str(until)}},
        ),
    )
    current = await store.get(ResourceType.SAMPLE, held.accession)
    assert current is not None and current.hold_until == until and current.visibility is Visibility.PRIVATE
    assert await service.release_due(store, today=until - timedelta(days=1)) == []
    # h2 is released by its owner before the day: the hold is gone with it
    await service.patch_resource(
        ResourceType.SAMPLE, other.accession, {"visibility": "public"}, caller=WRITER, store=store, if_match=None
    )
    patched = await store.get(ResourceType.SAMPLE, other.accession)
    assert patched is not None and patched.hold_until is None
    released = await service.release_due(store, today=until)
    assert [r.accession for r in released] == [held.accession]
    final = await store.get(ResourceType.SAMPLE, held.accession)
    assert final is not None and final.visibility is Visibility.PUBLIC and final.hold_until is None
    assert final.version == current.version + 1
    assert await service.release_due(store, today=until + timedelta(days=1)) == []


async def test_a_held_analysis_is_announced_again_when_its_hold_ends() -> None:
    store = FakeResourceStore()
    created = await service.create_resource(
        ResourceType.ANALYSIS, analysis("PUBLIC"), caller=WRITER, store=store, files=[_vcf()]
    )
    assert isinstance(created, Resource)
    until = date.today() + timedelta(days=1)
    await submit(store, submission({"hold": {"target": created.accession, "HoldUntilDate": str(until)}}))
    await service.release_due(store, today=until)
    assert [type(e) for e in store.events] == [AnalysisPublished, AnalysisWithdrawn, AnalysisPublished]
