"""MongoDB store of the repository: one collection per resource type, plus reviews and accession counters.

Each resource document keeps the validated GMI body and the fields the collection queries filter on
(title, taxon, attributes, parents, owner, visibility), so lists never look inside the body. Writes that
announce something (analysis published / withdrawn) go in one transaction with their outbox events.
The only module of the service that imports pymongo.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from pymongo import ASCENDING, IndexModel, ReturnDocument
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from libs.common.errors import ServiceUnavailable
from libs.common.events import Event
from libs.common.outbox import Outbox

from .models import (
    ActionResult,
    DataFile,
    ListQuery,
    Page,
    Parents,
    Resource,
    ResourceType,
    Review,
    Visibility,
    format_accession,
)
from .service import AliasTaken, StaleVersion

Document = dict[str, Any]


def _resource_indexes() -> list[IndexModel]:
    return [
        # alias is unique per submitter (ENA semantics: resubmitting the same alias is a conflict, not a copy)
        IndexModel([("owner", ASCENDING), ("alias", ASCENDING)], name="owner_alias", unique=True),
        # ?alias= filter
        IndexModel([("alias", ASCENDING)], name="alias"),
        # ?title= prefix filter (anchored, case-insensitive through the lower-cased copy)
        IndexModel([("title_lc", ASCENDING)], name="title_lc"),
        # ?taxon= filter (samples)
        IndexModel([("taxon", ASCENDING)], name="taxon"),
        # ?attribute=tag:value filter
        IndexModel([("attrs.tag", ASCENDING), ("attrs.value", ASCENDING)], name="attrs"),
        # nested collections: /studies/{a}/samples, /samples/{a}/experiments, /experiments/{a}/runs,
        # /runs/{a}/analyses, and the "still has children" check before a delete
        IndexModel([("parents.study", ASCENDING)], name="parent_study"),
        IndexModel([("parents.sample", ASCENDING)], name="parent_sample"),
        IndexModel([("parents.experiment", ASCENDING)], name="parent_experiment"),
        IndexModel([("parents.runs", ASCENDING)], name="parent_runs"),
        # ?modified_after= (harvesting changes)
        IndexModel([("modified", ASCENDING)], name="modified"),
        # the hold-until sweep
        IndexModel([("hold_until", ASCENDING)], name="hold_until"),
    ]


INDEXES: dict[str, list[IndexModel]] = {rtype.info.collection: _resource_indexes() for rtype in ResourceType}
INDEXES["reviews"] = [IndexModel([("owner", ASCENDING), ("created", ASCENDING)], name="owner_created")]

_CHILDREN: dict[ResourceType, list[tuple[ResourceType, str]]] = {
    ResourceType.STUDY: [
        (ResourceType.SAMPLE, "parents.study"),
        (ResourceType.EXPERIMENT, "parents.study"),
        (ResourceType.ANALYSIS, "parents.study"),
    ],
    ResourceType.SAMPLE: [(ResourceType.EXPERIMENT, "parents.sample")],
    ResourceType.EXPERIMENT: [(ResourceType.RUN, "parents.experiment")],
    ResourceType.RUN: [(ResourceType.ANALYSIS, "parents.runs")],
}


class MongoResourceStore:
    """Satisfies `service.ResourceStore`."""

    def __init__(self, db: AsyncDatabase[Document], outbox: Outbox) -> None:
        self._db = db
        self._outbox = outbox
        # pymongo builds a new Collection object on every db[name]; build each once
        self._collections = {rtype: db[rtype.info.collection] for rtype in ResourceType}

    def _coll(self, rtype: ResourceType) -> Any:
        return self._collections[rtype]

    async def allocate_accession(self, rtype: ResourceType) -> str:
        # Concurrent first upserts of a counter can collide (duplicate key, or no document returned by some
        # servers); the counter exists after the first success, so a retry is a plain atomic $inc.
        for _ in range(5):
            try:
                doc = await self._db["counters"].find_one_and_update(
                    {"_id": rtype.info.name}, {"$inc": {"seq": 1}}, upsert=True, return_document=ReturnDocument.AFTER
                )
            except DuplicateKeyError:
                continue
            if doc is not None:
                return format_accession(rtype, int(doc["seq"]))
        raise ServiceUnavailable("could not allocate an accession; retry")

    async def reserve_accession(self, rtype: ResourceType, accession: str) -> None:
        """PUT-create at an explicit accession: later allocations must never mint it again."""
        await self._db["counters"].update_one(
            {"_id": rtype.info.name}, {"$max": {"seq": int(accession[3:])}}, upsert=True
        )

    async def get(self, rtype: ResourceType, accession: str) -> Resource | None:
        doc = await self._coll(rtype).find_one({"_id": accession})
        return _from_doc(rtype, doc) if doc else None

    async def get_by_alias(self, rtype: ResourceType, owner: str, alias: str) -> Resource | None:
        doc = await self._coll(rtype).find_one({"owner": owner, "alias": alias})
        return _from_doc(rtype, doc) if doc else None

    async def insert(self, resource: Resource, events: Sequence[Event] = ()) -> None:
        doc = _to_doc(resource)
        try:
            if not events:
                await self._coll(resource.rtype).insert_one(doc)
                return
            async def work(session: AsyncClientSession) -> None:
                await self._coll(resource.rtype).insert_one(doc, session=session)
                await self._add_events(events, session)

            await self._outbox.run_transaction(work)
        except DuplicateKeyError as exc:
            raise AliasTaken(f"you already have a {resource.rtype.info.name} with alias {resource.alias!r}") from exc

    async def insert_all(self, resources: Sequence[Resource], events: Sequence[Event] = ()) -> None:
        """Insert several resources of one type and their events in one transaction: all of them or none."""
        if not resources:
            return
        rtype = resources[0].rtype
        docs = [_to_doc(r) for r in resources]

        async def work(session: AsyncClientSession) -> None:
            await self._coll(rtype).insert_many(docs, session=session)
            await self._add_events(events, session)

        try:
            await self._outbox.run_transaction(work)
        except DuplicateKeyError as exc:
            message = f"an alias of these {rtype.info.collection} was taken meanwhile; nothing was created"
            raise AliasTaken(message) from exc

    async def insert_with_changes(
        self,
        resource: Resource,
        changes: Sequence[tuple[Resource, Resource | None]],
        events: Sequence[Event] = (),
    ) -> None:
        """Insert a resource and apply version-guarded changes to others (after None: delete), with the events,
        in one transaction: a submission and everything its actions change, or nothing."""
        doc = _to_doc(resource)

        async def work(session: AsyncClientSession) -> None:
            for before, after in changes:
                query = {"_id": before.accession, "version": before.version}
                coll = self._coll(before.rtype)
                if after is None:
                    done = (await coll.delete_one(query, session=session)).deleted_count
                else:
                    update = _to_doc(after)
                    update.pop("_id")
                    done = (await coll.update_one(query, {"$set": update}, session=session)).matched_count
                if not done:
                    raise StaleVersion(f"{before.accession} was changed meanwhile; nothing was changed, submit again")
            await self._coll(resource.rtype).insert_one(doc, session=session)
            await self._add_events(events, session)

        try:
            await self._outbox.run_transaction(work)
        except DuplicateKeyError as exc:
            raise AliasTaken(f"you already have a {resource.rtype.info.name} with alias {resource.alias!r}") from exc

    async def replace(self, resource: Resource, *, expected_version: int, events: Sequence[Event] = ()) -> None:
        doc = _to_doc(resource)
        doc.pop("_id")
        query = {"_id": resource.accession, "version": expected_version}
        try:
            if not events:
                result = await self._coll(resource.rtype).update_one(query, {"$set": doc})
            else:
                async def work(session: AsyncClientSession) -> Any:
                    result = await self._coll(resource.rtype).update_one(query, {"$set": doc}, session=session)
                    if result.matched_count:
                        await self._add_events(events, session)
                    return result

                result = await self._outbox.run_transaction(work)
        except DuplicateKeyError as exc:
            raise AliasTaken(f"you already have a {resource.rtype.info.name} with alias {resource.alias!r}") from exc
        if not result.matched_count:
            raise StaleVersion(f"{resource.accession} was changed by someone else; read it again")

    async def remove(self, resource: Resource, events: Sequence[Event] = ()) -> None:
        query = {"_id": resource.accession, "version": resource.version}
        if not events:
            result = await self._coll(resource.rtype).delete_one(query)
        else:
            async def work(session: AsyncClientSession) -> Any:
                result = await self._coll(resource.rtype).delete_one(query, session=session)
                if result.deleted_count:
                    await self._add_events(events, session)
                return result

            result = await self._outbox.run_transaction(work)
        if not result.deleted_count:
            raise StaleVersion(f"{resource.accession} was changed by someone else; read it again")

    async def _add_events(self, events: Sequence[Event], session: AsyncClientSession) -> None:
        for event in events:
            await self._outbox.add(event, session=session)

    async def held_until(self, day: date) -> list[Resource]:
        """Private resources of every type whose hold ends on or before `day`."""
        due: list[Resource] = []
        for rtype in ResourceType:
            cursor = self._coll(rtype).find({"hold_until": {"$lte": day.isoformat()}, "visibility": "private"})
            due += [_from_doc(rtype, doc) for doc in await cursor.to_list(1000)]
        return due

    async def count_children(self, rtype: ResourceType, accession: str) -> int:
        total = 0
        for child, field in _CHILDREN.get(rtype, []):
            total += await self._coll(child).count_documents({field: accession}, limit=1)
        return total

    async def list(
        self,
        rtype: ResourceType,
        query: ListQuery,
        *,
        parent: tuple[str, str] | None,
        viewer: str | None,
        admin: bool,
    ) -> Page:
        flt = _filter(query, parent)
        if not admin:
            readable: list[Document] = [{"visibility": Visibility.PUBLIC.value}]
            if viewer:
                readable.append({"owner": viewer})
            flt["$or"] = readable
        if query.after:
            flt["_id"] = {"$gt": query.after}
        cursor = self._coll(rtype).find(flt).sort("_id", ASCENDING).limit(query.limit + 1)
        docs = await cursor.to_list()
        items = tuple(_from_doc(rtype, d) for d in docs[: query.limit])
        next_after = items[-1].accession if len(docs) > query.limit else None
        return Page(items=items, next_after=next_after)

    async def insert_reviews(self, reviews: Sequence[Review], events: Sequence[Event] = ()) -> None:
        """Park resources for review (with their events) in one transaction."""
        docs = [_review_doc(review) for review in reviews]

        async def work(session: AsyncClientSession) -> None:
            await self._db["reviews"].insert_many(docs, session=session)
            await self._add_events(events, session)

        await self._outbox.run_transaction(work)

    async def get_review(self, review_id: str) -> Review | None:
        doc = await self._db["reviews"].find_one({"_id": review_id})
        if doc is None:
            return None
        doc["id"] = doc.pop("_id")
        doc["rtype"] = ResourceType.from_name(doc["rtype"])
        return Review.model_validate(doc)

    async def replace_review(
        self, review: Review, *, expected_modified: datetime, events: Sequence[Event] = ()
    ) -> None:
        doc = _review_doc(review)
        doc.pop("_id")

        async def work(session: AsyncClientSession) -> Any:
            result = await self._db["reviews"].update_one(
                {"_id": review.id, "modified": expected_modified}, {"$set": doc}, session=session
            )
            if result.matched_count:
                await self._add_events(events, session)
            return result

        result = await self._outbox.run_transaction(work)
        if not result.matched_count:
            raise StaleVersion(f"review {review.id} was decided concurrently")


def _filter(query: ListQuery, parent: tuple[str, str] | None) -> Document:
    flt: Document = {}
    if parent is not None:
        name, accession = parent
        flt["parents.runs" if name == "run" else f"parents.{name}"] = accession
    if query.alias is not None:
        flt["alias"] = query.alias
    if query.title is not None:
        flt["title_lc"] = {"$regex": "^" + re.escape(query.title.lower())}
    if query.taxon is not None:
        flt["taxon"] = query.taxon
    if query.attribute is not None:
        flt["attrs"] = {"$elemMatch": {"tag": query.attribute[0], "value": query.attribute[1]}}
    created: Document = {}
    if query.created_after is not None:
        created["$gt"] = query.created_after
    if query.created_before is not None:
        created["$lt"] = query.created_before
    if created:
        flt["created"] = created
    if query.modified_after is not None:
        flt["modified"] = {"$gt": query.modified_after}
    return flt


def _attributes(rtype: ResourceType, body: Document) -> list[Document]:
    name = rtype.info.name
    container = body.get(f"{name}_attributes") or {}
    items = container.get(f"{name}_attribute") or [] if isinstance(container, dict) else []
    items = items if isinstance(items, list) else [items]
    return [{"tag": str(i.get("tag")), "value": str(i.get("value"))} for i in items if isinstance(i, dict)]


def _taxon(body: Document) -> int | None:
    name = body.get("sample_name")
    taxon = name.get("taxon_id") if isinstance(name, dict) else None
    return taxon if isinstance(taxon, int) else None


def _to_doc(resource: Resource) -> Document:
    title = resource.title
    return {
        "_id": resource.accession,
        "alias": resource.alias,
        "owner": resource.owner,
        "body": resource.body,
        "parents": resource.parents.model_dump(),
        "files": [f.model_dump() for f in resource.files],
        "visibility": resource.visibility.value,
        "version": resource.version,
        "created": resource.created,
        "modified": resource.modified,
        "title_lc": title.lower() if title else None,
        "taxon": _taxon(resource.body),
        "attrs": _attributes(resource.rtype, resource.body),
        **({"receipt": [a.model_dump(mode="json") for a in resource.receipt]} if resource.receipt else {}),
        # an ISO day string (BSON has no date type; ISO days sort as dates); null when not held, so that an
        # update's $set also clears it
        "hold_until": resource.hold_until.isoformat() if resource.hold_until else None,
    }


def _from_doc(rtype: ResourceType, doc: Document) -> Resource:
    # validated construction measures faster than pydantic's model_construct (pure Python) in pydantic 2
    return Resource(
        accession=doc["_id"],
        rtype=rtype,
        alias=doc["alias"],
        owner=doc["owner"],
        body=doc["body"],
        parents=Parents.model_validate(doc.get("parents") or {}),
        files=tuple(DataFile.model_validate(f) for f in doc.get("files") or []),
        visibility=Visibility(doc["visibility"]),
        version=doc["version"],
        created=doc["created"],
        modified=doc["modified"],
        receipt=tuple(ActionResult.model_validate(a) for a in doc.get("receipt") or ()),
        hold_until=doc.get("hold_until"),
    )


def _review_doc(review: Review) -> Document:
    doc = review.model_dump(mode="python")
    doc["_id"] = doc.pop("id")
    doc["rtype"] = review.rtype.info.name
    doc["status"] = review.status.value
    return doc
