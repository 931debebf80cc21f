"""Use cases of the repository: create, read, list, replace, patch, delete, review, publish analyses.

Every function takes its collaborators as keyword arguments (the `ResourceStore` port, the caller, the set of
types that need review). Bodies arrive in GMI JSON form (XML is converted at the edge by `sra`), are
validated against the XSD here (in a worker thread) and stored with their bookkeeping. Analysis events go
through the store together with the state change (transactional outbox). No aiohttp or pymongo here.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Protocol

from libs.common.errors import BadRequest, Conflict, NotFound, PreconditionFailed
from libs.common.events import Event

from . import access, metrics, publication, submissions
from .access import Caller
from .models import (
    DataFile,
    FieldError,
    ListQuery,
    Page,
    Parents,
    Resource,
    ResourceType,
    Review,
    ReviewDecision,
    ReviewStatus,
    Visibility,
    format_accession,
)
from .sra import InvalidDocument, validate_gmi

SERVER_KEYS = frozenset(
    {"links", "external_ids", "files", "created", "modified", "submitter", "visibility", "receipt", "hold_until"}
)
OUR_ACCESSION = re.compile(r"^SH[PSXRZA]\d{6,}$")


class InvalidFields(BadRequest):
    """400 with the list of invalid fields (GMI field errors)."""

    def __init__(self, message: str, errors: Sequence[FieldError]) -> None:
        super().__init__(
            message,
            extra={"invalidFields": [e.model_dump() for e in errors]},
        )
        self.errors = tuple(errors)


class AliasTaken(Conflict):
    """The owner already has a resource of this type with this alias."""


class AliasesTaken(Conflict):
    """409 for a set document: the owner already uses some of its aliases (listed like invalid fields)."""

    def __init__(self, message: str, errors: Sequence[FieldError]) -> None:
        super().__init__(message, extra={"invalidFields": [e.model_dump() for e in errors]})
        self.errors = tuple(errors)


class StaleVersion(PreconditionFailed):
    """The resource changed since the client read it (If-Match failed, or a concurrent write won)."""


class ResourceStore(Protocol):
    async def allocate_accession(self, rtype: ResourceType) -> str: ...
    async def reserve_accession(self, rtype: ResourceType, accession: str) -> None: ...
    async def get(self, rtype: ResourceType, accession: str) -> Resource | None: ...
    async def get_by_alias(self, rtype: ResourceType, owner: str, alias: str) -> Resource | None: ...
    async def insert(self, resource: Resource, events: Sequence[Event] = ()) -> None: ...
    async def insert_all(self, resources: Sequence[Resource], events: Sequence[Event] = ()) -> None: ...
    async def insert_with_changes(
        self,
        resource: Resource,
        changes: Sequence[tuple[Resource, Resource | None]],
        events: Sequence[Event] = (),
    ) -> None: ...
    async def replace(self, resource: Resource, *, expected_version: int, events: Sequence[Event] = ()) -> None: ...
    async def remove(self, resource: Resource, events: Sequence[Event] = ()) -> None: ...
    async def count_children(self, rtype: ResourceType, accession: str) -> int: ...
    async def held_until(self, day: date) -> list[Resource]: ...
    async def list(
        self,
        rtype: ResourceType,
        query: ListQuery,
        *,
        parent: tuple[str, str] | None,
        viewer: str | None,
        admin: bool,
    ) -> Page: ...
    async def insert_reviews(self, reviews: Sequence[Review], events: Sequence[Event] = ()) -> None: ...
    async def get_review(self, review_id: str) -> Review | None: ...
    async def replace_review(
        self, review: Review, *, expected_modified: datetime, events: Sequence[Event] = ()
    ) -> None: ...


def now() -> datetime:
    """The current time at MongoDB's (millisecond) precision, so stored and in-memory values compare equal."""
    current = datetime.now(UTC)
    return current.replace(microsecond=current.microsecond // 1000 * 1000)


def next_modified(previous: datetime | None) -> datetime:
    """A modification time that moves Last-Modified (one-second resolution) forward on every change.

    If-Modified-Since compares whole seconds; two changes within one second would otherwise look unchanged.
    """
    current = now()
    if previous is None:
        return current
    floor = previous.replace(microsecond=0) + timedelta(seconds=1)
    return max(current, floor)


# --- reading ------------------------------------------------------------------------------------------------


async def get_resource(rtype: ResourceType, accession: str, *, caller: Caller, store: ResourceStore) -> Resource:
    resource = await store.get(rtype, accession)
    if resource is None:
        raise NotFound(f"no {rtype.info.name} {accession!r}")
    access.check_read(caller, resource)
    return resource


async def list_resources(
    rtype: ResourceType,
    query: ListQuery,
    *,
    caller: Caller,
    store: ResourceStore,
    parent: tuple[ResourceType, str] | None = None,
) -> Page:
    parent_filter = None
    if parent is not None:
        parent_type, parent_accession = parent
        await get_resource(parent_type, parent_accession, caller=caller, store=store)
        parent_filter = (parent_type.info.name, parent_accession)
    return await store.list(rtype, query, parent=parent_filter, viewer=caller.subject, admin=access.is_admin(caller))


# --- writing ------------------------------------------------------------------------------------------------


async def create_resource(
    rtype: ResourceType,
    raw: dict[str, Any],
    *,
    caller: Caller,
    store: ResourceStore,
    review_types: frozenset[ResourceType] = frozenset(),
    parent: tuple[ResourceType, str] | None = None,
    files: Sequence[DataFile] = (),
) -> Resource | Review:
    """POST: validate and store (201), or park for human review (202) when the type needs it."""
    new = await _prepare(rtype, raw, caller=caller, store=store, parent=parent, files=files)
    if rtype in review_types:
        review = _review_of(rtype, new)
        await store.insert_reviews([review], events=[publication.review_requested(review)])
        return review
    return await insert_new(
        rtype,
        new.body,
        owner=new.owner,
        parents=new.parents,
        visibility=new.visibility,
        files=files,
        store=store,
        admin=access.is_admin(caller),
    )


@dataclass(frozen=True, slots=True)
class _NewResource:
    """A validated POSTed element, ready to be stored (or reviewed)."""

    body: dict[str, Any]
    visibility: Visibility
    parents: Parents
    owner: str


async def _prepare(
    rtype: ResourceType,
    raw: dict[str, Any],
    *,
    caller: Caller,
    store: ResourceStore,
    parent: tuple[ResourceType, str] | None,
    files: Sequence[DataFile] = (),
) -> _NewResource:
    body, visibility = _split_meta(raw, rtype)
    body = await _with_parent_refs(rtype, body, parent=parent, caller=caller, store=store)
    body = with_files(rtype, body, files)
    body.pop("accession", None)
    validated = await validate(body, rtype)
    parents = await _resolve_parents(rtype, validated, store=store, parent=parent)
    owner = access.check_create(caller, project=await _project_of(rtype, validated, parents, store))
    return _NewResource(validated, visibility, parents, owner)


def _review_of(rtype: ResourceType, new: _NewResource) -> Review:
    stamp = now()
    return Review(
        id=uuid.uuid4().hex[:16],
        rtype=rtype,
        owner=new.owner,
        body=new.body,
        parents=new.parents,
        created=stamp,
        modified=stamp,
    )


async def create_resources(
    rtype: ResourceType,
    raws: Sequence[dict[str, Any]],
    *,
    caller: Caller,
    store: ResourceStore,
    review_types: frozenset[ResourceType] = frozenset(),
    parent: tuple[ResourceType, str] | None = None,
) -> list[Resource] | list[Review]:
    """POST of a ``*_SET`` with several elements: every element is created (or parked for review), or none.

    Each element goes through the same checks as a single POST. Invalid elements are reported together in one
    400 whose paths name the element (``/SAMPLE_SET/SAMPLE[2]/…``); aliases that repeat inside the document are
    invalid fields too; aliases the caller already uses are one 409 listing the elements. Access errors (401/403)
    stop the request as they are. The inserts run in one transaction.
    """
    info = rtype.info
    if rtype is ResourceType.SUBMISSION:
        raise BadRequest("a SUBMISSION_SET is executed one SUBMISSION per request; post them one at a time")
    prepared: list[_NewResource] = []
    invalid: list[FieldError] = []
    taken: list[FieldError] = []
    first_seen: dict[str, int] = {}
    for number, raw in enumerate(raws, 1):
        where = f"/{info.set_tag}/{info.tag}[{number}]"
        try:
            new = await _prepare(rtype, raw, caller=caller, store=store, parent=parent)
        except InvalidFields as exc:
            invalid += [_in_element(error, rtype, where) for error in exc.errors]
            continue
        alias = new.body.get("alias")
        if isinstance(alias, str) and alias:
            if alias in first_seen:
                reason = f"alias {alias!r} is also used by {info.tag}[{first_seen[alias]}] of this document"
                invalid.append(FieldError(path=f"{where}/@alias", field="alias", reason=reason))
            else:
                first_seen[alias] = number
                if rtype not in review_types and await store.get_by_alias(rtype, new.owner, alias) is not None:
                    reason = f"you already have a {info.name} with alias {alias!r}"
                    taken.append(FieldError(path=f"{where}/@alias", field="alias", reason=reason))
        prepared.append(new)
    if invalid:
        raise InvalidFields(
            f"{len({e.path.split(']')[0] for e in invalid})} of the {len(raws)} elements of the {info.set_tag} "
            "are invalid; nothing was created",
            invalid,
        )
    if taken:
        raise AliasesTaken(f"{len(taken)} alias(es) of the {info.set_tag} are taken; nothing was created", taken)
    if rtype in review_types:
        reviews = [_review_of(rtype, new) for new in prepared]
        await store.insert_reviews(reviews, events=[publication.review_requested(r) for r in reviews])
        return reviews
    stamp = now()
    resources: list[Resource] = []
    for new in prepared:
        accession = await store.allocate_accession(rtype)
        body = {"accession": accession, **{k: v for k, v in new.body.items() if k != "accession"}}
        if not body.get("alias"):
            body["alias"] = accession
        resources.append(
            Resource(
                accession=accession,
                rtype=rtype,
                alias=body["alias"],
                owner=new.owner,
                body=body,
                parents=new.parents,
                visibility=new.visibility,
                created=stamp,
                modified=stamp,
            )
        )
    events = [event for r in resources for event in publication.events_for_change(None, r)]
    await store.insert_all(resources, events=events)
    metrics.RESOURCES_WRITTEN.labels(type=info.name, operation="create").inc(len(resources))
    return resources


def _in_element(error: FieldError, rtype: ResourceType, where: str) -> FieldError:
    """A single element's field error, re-pathed to its position in the set document."""
    single = f"/{rtype.info.set_tag}/{rtype.info.tag}"
    if error.path == single or error.path.startswith(single + "/"):
        path = where + error.path[len(single) :]
    else:
        path = where + error.path
    return error.model_copy(update={"path": path})


async def insert_new(
    rtype: ResourceType,
    body: dict[str, Any],
    *,
    owner: str,
    parents: Parents,
    visibility: Visibility,
    files: Sequence[DataFile],
    store: ResourceStore,
    accession: str | None = None,
    admin: bool = False,
) -> Resource:
    """Store a new resource; a submission's actions are checked, then executed, before it is stored."""
    alias = body.get("alias")
    if alias and await store.get_by_alias(rtype, owner, alias) is not None:
        raise AliasTaken(f"you already have a {rtype.info.name} with alias {alias!r}")
    steps: list[submissions.Step] = []
    if rtype is ResourceType.SUBMISSION:
        try:
            steps = await submissions.plan(body, owner=owner, admin=admin, store=store, today=now().date())
        except submissions.PlanErrors as exc:
            message = "the submission's actions cannot be executed; nothing was changed"
            raise InvalidFields(message, exc.errors) from None
    if accession is None:
        accession = await store.allocate_accession(rtype)
    else:
        await store.reserve_accession(rtype, accession)
    body = {"accession": accession, **{k: v for k, v in body.items() if k != "accession"}}
    if not alias:
        body["alias"] = accession
    stamp = now()
    resource = Resource(
        accession=accession,
        rtype=rtype,
        alias=body["alias"],
        owner=owner,
        body=body,
        parents=parents,
        files=tuple(files),
        visibility=visibility,
        created=stamp,
        modified=stamp,
        receipt=tuple(step.result() for step in steps),
    )
    events = publication.events_for_change(None, resource)
    if steps:
        changes = _changes(steps)
        events = [e for before, after in changes for e in publication.events_for_change(before, after)] + events
        await store.insert_with_changes(resource, changes, events=events)
        for before, after in changes:
            operation = "delete" if after is None else "update"
            metrics.RESOURCES_WRITTEN.labels(type=before.rtype.info.name, operation=operation).inc()
    else:
        await store.insert(resource, events=events)
    metrics.RESOURCES_WRITTEN.labels(type=rtype.info.name, operation="create").inc()
    return resource


def _changes(steps: Sequence[submissions.Step]) -> list[tuple[Resource, Resource | None]]:
    """(before, after) of every object a submission's checked actions change (after None: deleted), in order;
    an object changed twice is chained (its second change starts from the first one's result)."""
    latest: dict[str, Resource] = {}
    changes: list[tuple[Resource, Resource | None]] = []
    for step in steps:
        current = latest.get(step.target.accession, step.target)
        if step.visibility is None:
            changes.append((current, None))
        elif current.visibility is not step.visibility or current.hold_until != step.hold_until:
            updated = current.model_copy(
                update={
                    "visibility": step.visibility,
                    "hold_until": step.hold_until,  # RELEASE clears it; HOLD/SUPPRESS set (or clear) it
                    "version": current.version + 1,
                    "modified": next_modified(current.modified),
                }
            )
            changes.append((current, updated))
            latest[current.accession] = updated
    return changes


async def release_due(store: ResourceStore, *, today: date) -> list[Resource]:
    """Make public every held object whose HoldUntilDate has come (the periodic sweep; safe in every replica:
    each release is version-guarded, and one another writer got to first is skipped)."""
    released: list[Resource] = []
    for current in await store.held_until(today):
        updated = current.model_copy(
            update={
                "visibility": Visibility.PUBLIC,
                "hold_until": None,
                "version": current.version + 1,
                "modified": next_modified(current.modified),
            }
        )
        try:
            await store.replace(
                updated, expected_version=current.version, events=publication.events_for_change(current, updated)
            )
        except StaleVersion:
            continue
        metrics.RESOURCES_WRITTEN.labels(type=current.rtype.info.name, operation="update").inc()
        released.append(updated)
    return released


async def replace_resource(
    rtype: ResourceType,
    accession: str,
    raw: dict[str, Any],
    *,
    caller: Caller,
    store: ResourceStore,
    if_match: str | None,
) -> tuple[Resource, bool]:
    """PUT: full replacement, or creation at this URL when nothing is there yet (returns created=True)."""
    current = await store.get(rtype, accession)
    if current is None:
        if if_match is not None:
            raise StaleVersion(f"no {rtype.info.name} {accession!r} to match If-Match against")
        if not OUR_ACCESSION.match(accession) or not accession.startswith(rtype.info.prefix):
            raise BadRequest(f"{accession!r} is not a {rtype.info.name} accession ({rtype.info.prefix}NNNNNN)")
        body, visibility = _split_meta(raw, rtype)
        body.pop("accession", None)
        validated = await validate(body, rtype)
        parents = await _resolve_parents(rtype, validated, store=store, parent=None)
        owner = access.check_create(caller, project=await _project_of(rtype, validated, parents, store))
        created = await insert_new(
            rtype,
            validated,
            owner=owner,
            parents=parents,
            visibility=visibility,
            files=(),
            store=store,
            accession=accession,
            admin=access.is_admin(caller),
        )
        return created, True
    body, visibility = _split_meta(raw, rtype, default=current.visibility)
    return await _update(current, body, visibility, caller=caller, store=store, if_match=if_match), False


async def patch_resource(
    rtype: ResourceType,
    accession: str,
    patch: dict[str, Any],
    *,
    caller: Caller,
    store: ResourceStore,
    if_match: str | None,
) -> Resource:
    """PATCH with a JSON merge patch (RFC 7396) over the GMI JSON form."""
    current = await store.get(rtype, accession)
    if current is None:
        raise NotFound(f"no {rtype.info.name} {accession!r}")
    if not isinstance(patch, dict):
        raise BadRequest("a merge patch must be a JSON object")
    merged = merge_patch({**current.body, "visibility": current.visibility.value}, patch)
    body, visibility = _split_meta(merged, rtype, default=current.visibility)
    return await _update(current, body, visibility, caller=caller, store=store, if_match=if_match)


async def _update(
    current: Resource,
    body: dict[str, Any],
    visibility: Visibility,
    *,
    caller: Caller,
    store: ResourceStore,
    if_match: str | None,
) -> Resource:
    rtype = current.rtype
    access.check_change(caller, current, project=await _project_of(rtype, current.body, current.parents, store))
    _check_if_match(current, if_match)
    body = {**body, "accession": current.accession}
    body.setdefault("alias", current.alias)
    if current.files and rtype in (ResourceType.RUN, ResourceType.ANALYSIS):
        body = with_files(rtype, body, current.files)
    validated = await validate(body, rtype)
    if validated["alias"] != current.alias:
        other = await store.get_by_alias(rtype, current.owner, validated["alias"])
        if other is not None:
            raise AliasTaken(f"you already have a {rtype.info.name} with alias {validated['alias']!r}")
    parents = await _resolve_parents(rtype, validated, store=store, parent=None, current=current.parents)
    updated = current.model_copy(
        update={
            "body": validated,
            "alias": validated["alias"],
            "parents": parents,
            "visibility": visibility,
            "hold_until": None if visibility is Visibility.PUBLIC else current.hold_until,
            "version": current.version + 1,
            "modified": next_modified(current.modified),
        }
    )
    await store.replace(
        updated, expected_version=current.version, events=publication.events_for_change(current, updated)
    )
    metrics.RESOURCES_WRITTEN.labels(type=rtype.info.name, operation="update").inc()
    return updated


async def delete_resource(
    rtype: ResourceType, accession: str, *, caller: Caller, store: ResourceStore, if_match: str | None
) -> None:
    current = await store.get(rtype, accession)
    if current is None:
        raise NotFound(f"no {rtype.info.name} {accession!r}")
    access.check_change(caller, current, project=await _project_of(rtype, current.body, current.parents, store))
    _check_if_match(current, if_match)
    children = await store.count_children(rtype, accession)
    if children:
        raise Conflict(f"{accession} still has {children} dependent resource(s); delete those first")
    await store.remove(current, events=publication.events_for_change(current, None))
    metrics.RESOURCES_WRITTEN.labels(type=rtype.info.name, operation="delete").inc()


def _check_if_match(current: Resource, if_match: str | None) -> None:
    if if_match is None:
        return
    tags = {tag.strip().removeprefix("W/") for tag in if_match.split(",")}
    if "*" not in tags and current.etag not in tags:
        raise StaleVersion(f"{current.accession} changed since you read it (current ETag {current.etag})")


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7396 JSON merge patch."""
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


# --- reviews ------------------------------------------------------------------------------------------------


async def get_review(review_id: str, *, caller: Caller, store: ResourceStore) -> Review:
    review = await store.get_review(review_id)
    if review is None:
        raise NotFound(f"no review {review_id!r}")
    if caller.subject != review.owner and not access.is_admin(caller):
        access.check_reviewer(caller)
    return review


async def decide_review(review_id: str, decision: ReviewDecision, *, caller: Caller, store: ResourceStore) -> Review:
    access.check_reviewer(caller)
    review = await store.get_review(review_id)
    if review is None:
        raise NotFound(f"no review {review_id!r}")
    if review.status is not ReviewStatus.PENDING:
        raise Conflict(f"review {review_id} was already decided ({review.status.value})")
    accession = None
    if decision.decision == "approve":
        resource = await insert_new(
            review.rtype,
            review.body,
            owner=review.owner,
            parents=review.parents,
            visibility=Visibility.PUBLIC,
            files=(),
            store=store,
        )
        accession = resource.accession
    status = ReviewStatus.APPROVED if accession else ReviewStatus.REJECTED
    decided = review.model_copy(
        update={
            "status": status,
            "comment": decision.comment,
            "accession": accession,
            "modified": next_modified(review.modified),
        }
    )
    await store.replace_review(
        decided, expected_modified=review.modified, events=[publication.review_decided(decided, caller.subject)]
    )
    return decided


# --- helpers ------------------------------------------------------------------------------------------------


def _split_meta(
    raw: dict[str, Any], rtype: ResourceType, *, default: Visibility = Visibility.PUBLIC
) -> tuple[dict[str, Any], Visibility]:
    if not isinstance(raw, dict):
        raise BadRequest(f"a {rtype.info.name} must be a JSON object")
    visibility_value = raw.get("visibility", default.value)
    try:
        visibility = Visibility(visibility_value)
    except ValueError:
        raise InvalidFields(
            "Invalid property fields named.",
            [FieldError(path="/visibility", field="visibility", reason="must be 'public' or 'private'")],
        ) from None
    return {k: v for k, v in raw.items() if k not in SERVER_KEYS}, visibility


async def validate(body: dict[str, Any], rtype: ResourceType) -> dict[str, Any]:
    try:
        return await asyncio.to_thread(validate_gmi, body, rtype)
    except InvalidDocument as exc:
        metrics.INVALID_DOCUMENTS.labels(type=rtype.info.name).inc()
        raise InvalidFields(exc.message, exc.errors) from None


def with_files(rtype: ResourceType, body: dict[str, Any], files: Sequence[DataFile]) -> dict[str, Any]:
    """Describe stored files in the XSD's FILE elements (SHA-256 checksums; filetype from the name)."""
    if not files:
        return body
    if rtype is ResourceType.ANALYSIS and any(f.md5 is None for f in files):
        raise BadRequest("analysis files need an MD5 checksum (the SRA analysis schema knows no other)")
    entries = [
        {
            "filename": f.name,
            "filetype": publication.filetype(rtype, f.name),
            "checksum_method": "SHA-256" if rtype is ResourceType.RUN else "MD5",
            "checksum": f.sha256 if rtype is ResourceType.RUN else f.md5,
        }
        for f in files
    ]
    if rtype is ResourceType.RUN:
        return {**body, "data_block": {"files": {"file": entries}}}
    if rtype is ResourceType.ANALYSIS:
        return {**body, "files": {"file": entries}}
    raise BadRequest(f"files can only be attached to runs and analyses, not to a {rtype.info.name}")


async def _with_parent_refs(
    rtype: ResourceType,
    body: dict[str, Any],
    *,
    parent: tuple[ResourceType, str] | None,
    caller: Caller,
    store: ResourceStore,
) -> dict[str, Any]:
    """A POST to a nested collection fills the references the XSD needs from the URL."""
    if parent is None:
        return body
    parent_type, parent_accession = parent
    owner = await get_resource(parent_type, parent_accession, caller=caller, store=store)
    body = dict(body)
    if rtype is ResourceType.EXPERIMENT and parent_type is ResourceType.SAMPLE:
        if owner.parents.study:
            body.setdefault("study_ref", {"accession": owner.parents.study})
        design = dict(body.get("design") or {})
        design.setdefault("sample_descriptor", {"accession": parent_accession})
        body["design"] = design
    elif rtype is ResourceType.RUN and parent_type is ResourceType.EXPERIMENT:
        body.setdefault("experiment_ref", {"accession": parent_accession})
    return body


def _ref(body: dict[str, Any], *path: str) -> str | None:
    node: Any = body
    for step in path:
        if not isinstance(node, dict):
            return None
        node = node.get(step)
    return node if isinstance(node, str) else None


def _refs(body: dict[str, Any], key: str) -> list[str]:
    value = body.get(key) or []
    items = value if isinstance(value, list) else [value]
    return [item["accession"] for item in items if isinstance(item, dict) and isinstance(item.get("accession"), str)]


async def _ours(rtype: ResourceType, accession: str | None, field: str, store: ResourceStore) -> Resource | None:
    """The referenced resource when the accession is one of ours; 400 when it is ours but unknown."""
    if not accession or not OUR_ACCESSION.match(accession):
        return None
    found = await store.get(rtype, accession)
    if found is None:
        raise InvalidFields(
            "Invalid property fields named.",
            [
                FieldError(
                    path=f"/{field.replace('.', '/')}",
                    field=field,
                    reason=f"no {rtype.info.name} {accession}",
                )
            ],
        )
    return found


async def _resolve_parents(
    rtype: ResourceType,
    body: dict[str, Any],
    *,
    store: ResourceStore,
    parent: tuple[ResourceType, str] | None,
    current: Parents | None = None,
) -> Parents:
    if rtype is ResourceType.SAMPLE:
        if parent is not None and parent[0] is ResourceType.STUDY:
            return Parents(study=parent[1])
        return current or Parents()
    if rtype is ResourceType.EXPERIMENT:
        study = await _ours(ResourceType.STUDY, _ref(body, "study_ref", "accession"), "study_ref.accession", store)
        sample = await _ours(
            ResourceType.SAMPLE,
            _ref(body, "design", "sample_descriptor", "accession"),
            "design.sample_descriptor.accession",
            store,
        )
        return Parents(study=study.accession if study else None, sample=sample.accession if sample else None)
    if rtype is ResourceType.RUN:
        experiment = await _ours(
            ResourceType.EXPERIMENT,
            _ref(body, "experiment_ref", "accession"),
            "experiment_ref.accession",
            store,
        )
        if experiment is None:
            return Parents()
        return Parents(
            study=experiment.parents.study, sample=experiment.parents.sample, experiment=experiment.accession
        )
    if rtype is ResourceType.ANALYSIS:
        study = await _ours(ResourceType.STUDY, _ref(body, "study_ref", "accession"), "study_ref.accession", store)
        return Parents(
            study=study.accession if study else None,
            samples=tuple(a for a in _refs(body, "sample_ref") if OUR_ACCESSION.match(a)),
            runs=tuple(a for a in _refs(body, "run_ref") if OUR_ACCESSION.match(a)),
        )
    return current or Parents()


async def _project_of(rtype: ResourceType, body: dict[str, Any], parents: Parents, store: ResourceStore) -> str | None:
    """The project id a ``project:<id>:write`` scope names: the alias of the owning study."""
    if rtype is ResourceType.STUDY:
        alias = body.get("alias")
        return alias if isinstance(alias, str) else None
    if parents.study:
        study = await store.get(ResourceType.STUDY, parents.study)
        return study.alias if study else None
    return None


def accession_number(accession: str) -> int:
    return int(accession[3:])


__all__ = ["format_accession"]
