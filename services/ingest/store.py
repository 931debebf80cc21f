"""MongoDB persistence of the ingest service: runs, their files, and tus upload sessions.

The only module of the service that imports pymongo. Collections (database `seqhub_ingest`):
- `runs`: one document per run, with counters that decide completeness without listing files;
- `run_files`: one document per (run, relative path): declared by the agent and/or stored;
- `uploads`: tus upload sessions (offset, length, metadata, lock lease, expiry).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from typing import Any, TypeVar

from pymongo import ASCENDING, DESCENDING, IndexModel, ReturnDocument, UpdateOne
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, DuplicateKeyError, OperationFailure, PyMongoError

from libs.common.outbox import Outbox

Doc = dict[str, Any]
T = TypeVar("T")

INDEXES: dict[str, list[IndexModel]] = {
    "runs": [
        # GET /runs?status=&instrument= newest first
        IndexModel([("status", ASCENDING), ("created_at", DESCENDING)], name="status_created"),
        IndexModel([("instrument", ASCENDING), ("created_at", DESCENDING)], name="instrument_created"),
        # stalled-run sweep: open runs by last activity
        IndexModel([("status", ASCENDING), ("last_activity_at", ASCENDING)], name="status_activity"),
    ],
    # run_files has no secondary index (older ones: RETIRED_INDEXES): its _id
    # is "<run_id>/<path>", so one run's files are an _id range
    # (in path order) and a path is unique by construction; each stored file costs one index entry, not three
    "uploads": [
        # expiry sweep: unfinished uploads past their deadline
        IndexModel([("state", ASCENDING), ("expires_at", ASCENDING)], name="state_expires"),
        # tombstones of expired/terminated uploads answer 410 for a while, then go
        IndexModel([("purge_at", ASCENDING)], name="purge", expireAfterSeconds=0),
    ],
}

RETIRED_INDEXES: dict[str, list[str]] = {
    # dropped at startup where an older version made them: the run_files _id range replaced both, and
    # uploads are never looked up by run
    "run_files": ["run_path", "run_state"],
    "uploads": ["run"],
}


async def in_transaction(outbox: Outbox, work: Callable[[Any], Awaitable[T]], *, attempts: int = 30) -> T:
    """Run `work(session)` in a transaction, retrying transient conflicts (concurrent file completions of a run
    all update the run document) — `Outbox.run_transaction`."""
    return await outbox.run_transaction(work, attempts=attempts)


def file_id(run_id: str, path: str) -> str:
    return f"{run_id}/{path}"


def _run_files(run_id: str) -> dict[str, Any]:
    """The _id range of one run's files ('0' follows '/')."""
    return {"$gte": f"{run_id}/", "$lt": f"{run_id}0"}


class DuplicateFile(Exception):
    """The path is already stored in the run."""


class RunStore:
    """Runs and their files."""

    def __init__(self, db: AsyncDatabase[Doc]) -> None:
        self.runs = db["runs"]
        self.files = db["run_files"]

    async def insert(self, run: Doc, declared: list[Doc], *, session: Any) -> None:
        await self.runs.insert_one(run, session=session)
        if declared:
            await self.files.insert_many(declared, session=session)

    async def get(self, run_id: str, *, session: Any = None) -> Doc | None:
        return await self.runs.find_one({"_id": run_id}, session=session)

    async def page(self, query: Mapping[str, Any], *, offset: int, limit: int) -> tuple[list[Doc], int]:
        total = await self.runs.count_documents(dict(query))
        cursor = self.runs.find(dict(query)).sort([("created_at", DESCENDING), ("_id", ASCENDING)])
        return await cursor.skip(offset).limit(limit).to_list(), total

    async def delete(self, run_id: str, *, session: Any) -> bool:
        result = await self.runs.delete_one({"_id": run_id}, session=session)
        await self.files.delete_many({"_id": _run_files(run_id)}, session=session)
        return result.deleted_count == 1

    async def get_file(self, run_id: str, path: str, *, session: Any = None) -> Doc | None:
        return await self.files.find_one({"_id": file_id(run_id, path)}, session=session)

    async def files_in(self, run_id: str, paths: list[str], *, session: Any = None) -> list[Doc]:
        ids = [file_id(run_id, p) for p in paths]
        return await self.files.find({"_id": {"$in": ids}}, session=session).to_list()

    async def add_declared(self, docs: list[Doc], *, session: Any) -> None:
        if docs:
            await self.files.bulk_write(
                [UpdateOne({"_id": d["_id"]}, {"$setOnInsert": d}, upsert=True) for d in docs],
                session=session,
            )

    async def store_file(self, doc: Doc, *, session: Any) -> None:
        await self.files.update_one({"_id": doc["_id"]}, {"$set": doc}, upsert=True, session=session)

    async def insert_files(self, docs: list[Doc]) -> set[int]:
        """Record new stored files in one command; the indexes of the documents whose path already had a document
        (declared, or stored by another upload): those need `claim_file`."""
        try:
            await self.files.insert_many(docs, ordered=False)
        except BulkWriteError as exc:
            errors = exc.details.get("writeErrors", [])
            if any(e.get("code") != 11000 for e in errors):
                raise
            return {int(e["index"]) for e in errors}
        return set()

    async def claim_file(self, doc: Doc) -> Doc | None:
        """Mark a path stored unless it already is (or was declared with another size or sha256): the document
        it replaced (a declaration) or None. Raises DuplicateFile when the path is taken."""
        try:
            return await self.files.find_one_and_update(
                {
                    "_id": doc["_id"],
                    "state": {"$ne": "stored"},
                    "$and": [
                        {"$or": [{"sha256": None}, {"sha256": doc["sha256"]}]},
                        {"$or": [{"size": None}, {"size": doc["size"]}]},
                    ],
                },
                {"$set": doc},
                upsert=True,
                return_document=ReturnDocument.BEFORE,
            )
        except PyMongoError as exc:
            if is_duplicate(exc):
                raise DuplicateFile(doc["_id"]) from None
            raise

    async def unclaim_file(self, file_id: str, previous: Doc | None) -> None:
        if previous is None:
            await self.files.delete_one({"_id": file_id})
        else:
            await self.files.replace_one({"_id": file_id}, previous)

    async def count_progress(self, run_id: str) -> tuple[int, int]:
        """(RunInfo-implied files stored, declared files still missing), counted from the file documents."""
        run = _run_files(run_id)
        expected = await self.files.count_documents({"_id": run, "state": "stored", "expected": True})
        declared = await self.files.count_documents({"_id": run, "state": "declared"})
        return expected, declared

    async def stored_files(self, run_id: str, *, session: Any = None) -> list[Doc]:
        cursor = self.files.find({"_id": _run_files(run_id), "state": "stored"}, session=session).sort("_id", ASCENDING)
        return await cursor.to_list()

    async def update_open(
        self,
        run_id: str,
        inc: Mapping[str, int],
        set_: Mapping[str, Any],
        *,
        open_statuses: list[str],
        session: Any,
    ) -> Doc | None:
        """Apply counters to a run that still accepts files; None if it does not (or is gone)."""
        return await self.runs.find_one_and_update(
            {"_id": run_id, "status": {"$in": open_statuses}},
            {"$inc": dict(inc), "$set": dict(set_)},
            return_document=ReturnDocument.AFTER,
            session=session,
        )

    async def account(
        self, run_id: str, inc: Mapping[str, int], set_: Mapping[str, Any], *, open_statuses: list[str], max_bytes: int
    ) -> Doc | None:
        """Apply a batch of stored files' counters to a run that still accepts files, reserving
        `inc["bytes_reserved"]` under the run's limit in the same atomic write; the run after, or None."""
        query: dict[str, Any] = {"_id": run_id, "status": {"$in": open_statuses}}
        reserve = inc.get("bytes_reserved", 0)
        if reserve:
            query["bytes_reserved"] = {"$lte": max_bytes - reserve}
        return await self.runs.find_one_and_update(
            query, {"$inc": dict(inc), "$set": dict(set_)}, return_document=ReturnDocument.AFTER
        )

    async def reserve_bytes(self, run_id: str, size: int, *, max_bytes: int, open_statuses: list[str]) -> Doc | None:
        """Reserve room for `size` bytes under the run's limit; None if the run is closed or full."""
        return await self.runs.find_one_and_update(
            {"_id": run_id, "status": {"$in": open_statuses}, "bytes_reserved": {"$lte": max_bytes - size}},
            {"$inc": {"bytes_reserved": size}},
            return_document=ReturnDocument.AFTER,
        )

    async def release_bytes(self, run_id: str, size: int) -> None:
        await self.runs.update_one({"_id": run_id}, {"$inc": {"bytes_reserved": -size}})

    async def set_status(
        self,
        run_id: str,
        status: str,
        *,
        from_statuses: list[str],
        set_: Mapping[str, Any],
        session: Any = None,
    ) -> Doc | None:
        return await self.runs.find_one_and_update(
            {"_id": run_id, "status": {"$in": from_statuses}},
            {"$set": {"status": status, **set_}},
            return_document=ReturnDocument.AFTER,
            session=session,
        )

    async def idle_since(self, status: str, before: datetime) -> list[Doc]:
        return await self.runs.find({"status": status, "last_activity_at": {"$lt": before}}).to_list()

    async def count_by_status(self) -> dict[str, int]:
        """Number of runs per status, in one aggregation (served by the `status_created` index)."""
        rows = await (await self.runs.aggregate([{"$group": {"_id": "$status", "n": {"$sum": 1}}}])).to_list()
        return {str(row["_id"]): int(row["n"]) for row in rows}


class UploadStore:
    """tus upload sessions with a lease lock held across processes."""

    def __init__(self, db: AsyncDatabase[Doc]) -> None:
        self.uploads = db["uploads"]

    async def insert(self, doc: Doc) -> None:
        await self.uploads.insert_one(doc)

    async def insert_many(self, docs: list[Doc]) -> None:
        await self.uploads.insert_many(docs)

    async def mark_stored(self, upload_ids: list[str], set_: Mapping[str, Any]) -> None:
        await self.uploads.update_many({"_id": {"$in": upload_ids}}, {"$set": dict(set_)})

    async def get(self, upload_id: str, *, session: Any = None) -> Doc | None:
        return await self.uploads.find_one({"_id": upload_id}, session=session)

    async def get_many(self, upload_ids: list[str]) -> list[Doc]:
        return await self.uploads.find({"_id": {"$in": upload_ids}}).to_list()

    async def existing(self, upload_ids: list[str]) -> set[str]:
        """Those of `upload_ids` that have an upload document (in any state, tombstones included)."""
        docs = await self.uploads.find({"_id": {"$in": upload_ids}}, {"_id": 1}).to_list()
        return {str(d["_id"]) for d in docs}

    async def lock(
        self, upload_id: str, token: str, *, now: datetime, until: datetime, checksum: bool = False
    ) -> Doc | None:
        """Take the upload's lock if free or its lease ran out; the document, or None if held/absent.

        `checksum` records whether the writer's body is covered by an Upload-Checksum: if the writer dies,
        the bytes it left on disk may only be adopted when they needed no verification.
        """
        return await self.uploads.find_one_and_update(
            {"_id": upload_id, "$or": [{"lock": None}, {"lock.until": {"$lt": now}}]},
            {"$set": {"lock": {"token": token, "until": until, "checksum": checksum}}},
            return_document=ReturnDocument.AFTER,
        )

    async def renew(self, upload_id: str, token: str, until: datetime) -> bool:
        """Extend the lock `token` to `until` (never shortening it); False if it was lost."""
        result = await self.uploads.update_one({"_id": upload_id, "lock.token": token}, {"$max": {"lock.until": until}})
        return result.matched_count == 1

    async def write_locked(
        self, upload_id: str, token: str, set_: Mapping[str, Any], *, until: datetime | None = None
    ) -> bool:
        """Apply `set_` while still holding the lock `token` (the lock stays held), extending it to `until` if
        given — never shortening it, whatever order concurrent writes land in; False if the lock was lost."""
        update: dict[str, Any] = {"$set": dict(set_)}
        if until is not None:
            update["$max"] = {"lock.until": until}
        result = await self.uploads.update_one({"_id": upload_id, "lock.token": token}, update)
        return result.matched_count == 1

    async def unlock(self, upload_id: str, token: str, set_: Mapping[str, Any] | None = None) -> Doc | None:
        """Release the lock, applying `set_` atomically; None if the lock was lost meanwhile."""
        return await self.uploads.find_one_and_update(
            {"_id": upload_id, "lock.token": token},
            {"$set": {"lock": None, **(set_ or {})}},
            return_document=ReturnDocument.AFTER,
        )

    async def update_get(self, upload_id: str, set_: Mapping[str, Any]) -> Doc | None:
        return await self.uploads.find_one_and_update(
            {"_id": upload_id}, {"$set": dict(set_)}, return_document=ReturnDocument.AFTER
        )

    async def update(self, upload_id: str, set_: Mapping[str, Any], *, session: Any = None) -> None:
        await self.uploads.update_one({"_id": upload_id}, {"$set": dict(set_)}, session=session)

    async def due(self, state: str, before: datetime, *, limit: int = 500) -> list[Doc]:
        return await self.uploads.find({"state": state, "expires_at": {"$lt": before}}).limit(limit).to_list()

    async def in_state(self, state: str, *, updated_before: datetime, limit: int = 500) -> list[Doc]:
        return await self.uploads.find({"state": state, "updated_at": {"$lt": updated_before}}).limit(limit).to_list()


def is_duplicate(exc: Exception) -> bool:
    return isinstance(exc, DuplicateKeyError) or (isinstance(exc, OperationFailure) and exc.code == 11000)
