"""tus upload use cases: create, head, patch, terminate, expire — over `UploadStore` and `PartFiles`.

Durability rule: bytes are appended and fsynced before the new offset is recorded, and a PATCH first
truncates the part file to the recorded offset, so HEAD never reports bytes that are not durably stored. A body
without `Upload-Checksum` is answered once fsynced, its offset written behind (`_advance`): if the process dies
before that write lands, the next HEAD or PATCH adopts those bytes from the disk once the lease runs out (until
then, another process reports the recorded, lower offset).
One writer per upload across processes: a lease lock in the upload document (`find_one_and_update`),
renewed while a body streams; a second PATCH meanwhile gets 423.
No aiohttp, no pymongo here.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from libs.common.checksums import new_hasher
from libs.common.errors import Conflict

from . import service
from .metrics import ACTIVE_UPLOADS, ORPHAN_PARTS_REMOVED, UPLOAD_BYTES, UPLOAD_REQUESTS, UPLOADS_EXPIRED
from .models import UploadState
from .partfile import AppendResult, BodyInterrupted, BodyTooLong, file_digest
from .paths import validate_relative_path
from .service import Ingest, now
from .tus import (
    CHECKSUM_ALGORITHMS,
    Checksum,
    ChecksumMismatch,
    Concat,
    OffsetMismatch,
    TusBadRequest,
    TusConflict,
    UploadForbidden,
    UploadGone,
    UploadLocked,
    UploadNotFound,
    UploadTooLarge,
)

GONE = "gone"
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class UploadInfo:
    """What HEAD/PATCH/POST responses report about an upload."""

    id: str
    offset: int
    length: int | None
    metadata: dict[str, str]
    expires_at: datetime | None
    concat: str | None  # "partial", "final" or None
    parts: tuple[str, ...]
    state: str


@dataclass(frozen=True)
class CreateRequest:
    length: int | None
    defer_length: bool
    metadata: dict[str, str]
    concat: Concat | None


@dataclass(frozen=True)
class Body:
    """A request body to append: the offset the client claims, its per-request checksum, the bytes."""

    offset: int
    checksum: Checksum | None
    chunks: AsyncIterator[bytes]
    length: int | None = None  # Upload-Length sent on a PATCH (deferred length)


def _info(doc: dict[str, Any]) -> UploadInfo:
    return UploadInfo(
        id=doc["_id"],
        offset=doc["offset"],
        length=doc["length"],
        metadata=doc["metadata"],
        expires_at=doc["expires_at"] if doc["state"] == UploadState.RECEIVING.value else None,
        concat=doc.get("concat"),
        parts=tuple(doc.get("parts") or ()),
        state=doc["state"],
    )


def parse_expected_checksum(raw: str | None) -> tuple[str, str] | None:
    """Upload-Metadata `checksum`: '<sha256|sha1|md5> <hex or base64 digest>' of the whole file."""
    if raw is None:
        return None
    parts = raw.split()
    if len(parts) != 2 or parts[0].lower() not in CHECKSUM_ALGORITHMS:
        raise TusBadRequest("metadata checksum must be '<sha256|sha1|md5> <digest>'")
    algorithm, value = parts[0].lower(), parts[1]
    size = new_hasher(algorithm).digest_size
    try:
        digest = bytes.fromhex(value) if len(value) == 2 * size else base64.b64decode(value, validate=True)
    except (ValueError, binascii.Error):
        raise TusBadRequest("metadata checksum digest is neither hex nor base64") from None
    if len(digest) != size:
        raise TusBadRequest(f"metadata checksum digest has the wrong length for {algorithm}")
    return algorithm, digest.hex()


@dataclass
class Lease:
    """An upload's lock as the process holding it knows it. Taken once (one `find_one_and_update`), it is kept
    between PATCHes and renewed by every offset write, so a PATCH in steady state costs one database write:
    the new offset, written after fsync (the acknowledgement of a checked body; behind the answer otherwise,
    `recording`). `busy` while a request writes: a second request to the same upload in this process gets 423
    without asking the database."""

    token: str
    until: datetime  # as last confirmed by the database
    doc: dict[str, Any]  # the upload document as this process last wrote it (nobody else writes it meanwhile)
    checksum: bool  # what the stored lock says about the body being written (see UploadStore.lock)
    busy: bool = False
    recording: asyncio.Future[bool] | None = None  # the write-behind of the last acknowledged offset (`_advance`)


async def create_upload(
    req: CreateRequest, body: Body | None, *, subject: str, correlation_id: str | None, deps: Ingest
) -> UploadInfo:
    partial = req.concat is not None and not req.concat.final
    run_id, path = req.metadata.get("run_id"), req.metadata.get("path")
    if not partial and (not run_id or not path):
        raise TusBadRequest("Upload-Metadata must carry run_id and path (the file's path inside the run folder)")
    if path is not None:
        path = validate_relative_path(path, field="metadata path")
    expected = parse_expected_checksum(req.metadata.get("checksum"))
    parts: list[dict[str, Any]] = []
    length = req.length
    if req.concat is not None and req.concat.final:
        parts = await _final_parts(req.concat, subject=subject, deps=deps)
        length = sum(p["length"] for p in parts)
    elif length is None and not req.defer_length:
        raise TusBadRequest("Upload-Length or Upload-Defer-Length: 1 is required")
    if length is not None and length > deps.limits.max_file_bytes:
        raise UploadTooLarge(f"Upload-Length {length} exceeds Tus-Max-Size {deps.limits.max_file_bytes}")
    doc = _new_doc(
        req, subject=subject, run_id=run_id, path=path, length=length, expected=expected, parts=parts, deps=deps
    )
    if body is not None and run_id and path and length and not parts:
        with deps.parts.in_use(doc["_id"]):  # no upload document until the body is in: the sweep must spare it
            return await _create_with_body(doc, body, correlation_id=correlation_id, deps=deps)
    if run_id and path:
        await service.check_run_accepts(run_id, path, length, subject=subject, deps=deps)
        if length:
            await service.reserve(run_id, length, deps=deps)
    lease = None
    if body is not None and length != 0 and not parts:  # nobody knows the URL yet: we hold the lock from birth
        lease = Lease(uuid.uuid4().hex, now() + deps.limits.lock_lease, doc, body.checksum is not None, busy=True)
        doc["lock"] = {"token": lease.token, "until": lease.until, "checksum": lease.checksum}
        deps.leases[doc["_id"]] = lease
    deps.parts.create(doc["_id"])
    await deps.uploads.insert(doc)
    if parts:
        await deps.parts.concat(doc["_id"], [p["_id"] for p in parts])
        doc = await _record(doc["_id"], {"offset": length}, deps=deps)
    if body is not None and lease is not None:
        try:
            doc = await _write(lease, body, deps=deps)
        finally:
            lease.busy = False  # the lock stays held for the client's PATCHes, as after any PATCH
    if doc["length"] is not None and doc["offset"] == doc["length"]:
        doc = await _finish(doc, correlation_id=correlation_id, deps=deps)
    return _info(doc)


def _new_doc(
    req: CreateRequest,
    *,
    subject: str,
    run_id: str | None,
    path: str | None,
    length: int | None,
    expected: tuple[str, str] | None,
    parts: list[dict[str, Any]],
    deps: Ingest,
) -> dict[str, Any]:
    at = now()
    return {
        "_id": uuid.uuid4().hex,
        "owner": subject,
        "run_id": run_id,
        "path": path,
        "length": length,
        "offset": 0,
        "metadata": req.metadata,
        "expected_checksum": expected,
        "concat": None if req.concat is None else ("final" if req.concat.final else "partial"),
        "parts": [p["_id"] for p in parts],
        "state": UploadState.RECEIVING.value,
        "reserved": (length or 0) if run_id and path else 0,
        "expires_at": at + deps.limits.upload_ttl,
        "created_at": at,
        "updated_at": at,
        "lock": None,
        "purge_at": None,
    }


async def _create_with_body(
    doc: dict[str, Any], body: Body, *, correlation_id: str | None, deps: Ingest
) -> UploadInfo:
    """creation-with-upload into a run: the body is received before the upload document exists (nobody knows
    its URL yet, so nobody can race it). A whole file is verified, moved into the run folder and accounted with
    its upload document in one group commit (`service.Ledger`): no lock, no per-request state writes. A body
    shorter than Upload-Length leaves an ordinary upload at the received offset, to be continued by PATCH; a body
    that breaks off leaves nothing (the client never learnt the URL)."""
    upload_id, run_id, path, length = doc["_id"], doc["run_id"], doc["path"], doc["length"]
    await service.check_run_takes(run_id, length, subject=doc["owner"], deps=deps)

    def hand_over(source: Path, sha256: str) -> tuple[str, service.Placed]:
        """In the writer's thread, after its fsync: check the whole file, move it into the run folder."""
        _check_whole(doc, source, sha256, after="nothing was stored")
        return sha256, service.place_file(deps, run_id, path, source, length, sha256)

    ACTIVE_UPLOADS.inc()
    try:
        result = await deps.parts.append(
            upload_id, 0, body.chunks, limit=length, checksum=body.checksum, complete=hand_over
        )
    except BodyTooLong:
        deps.parts.delete(upload_id)
        UPLOAD_REQUESTS.labels(outcome="too_large").inc()
        raise UploadTooLarge(f"the body is longer than Upload-Length ({length})") from None
    except BodyInterrupted:  # the client went away before it could learn the upload's URL: keep nothing
        deps.parts.delete(upload_id)
        UPLOAD_REQUESTS.labels(outcome="interrupted").inc()
        raise TusBadRequest("the request body broke off before Content-Length bytes; nothing was stored") from None
    except BaseException:
        deps.parts.delete(upload_id)
        raise
    finally:
        ACTIVE_UPLOADS.dec()
    if not result.checksum_ok:
        deps.parts.delete(upload_id)
        UPLOAD_REQUESTS.labels(outcome="checksum_mismatch").inc()
        raise ChecksumMismatch("Upload-Checksum does not match the body; nothing was stored")
    written = result.written
    at = now()
    doc["expires_at"] = at + deps.limits.upload_ttl
    if written < length:  # the client sends the rest with PATCH
        try:
            await service.check_run_accepts(run_id, path, length, subject=doc["owner"], deps=deps)
            await service.reserve(run_id, length, deps=deps)
            doc.update(offset=written, updated_at=at)
            await deps.uploads.insert(doc)
        except BaseException:
            deps.parts.delete(upload_id)
            raise
        UPLOAD_BYTES.inc(written)
        return _info(doc)
    assert result.completed is not None  # the whole body is in and verified: its writer handed it over
    sha256, placed = result.completed
    doc.update(offset=length, state=UploadState.STORED.value, sha256=sha256, updated_at=at)
    try:
        await service.store_completed_file(
            upload_id=upload_id,
            run_id=run_id,
            path=path,
            size=length,
            sha256=sha256,
            correlation_id=correlation_id,
            deps=deps,
            new_upload=doc,
            placed=placed,
        )
    except BaseException:
        deps.parts.delete(upload_id)  # refused: the part file goes (once stored, it was moved)
        raise
    UPLOAD_REQUESTS.labels(outcome="stored").inc()
    UPLOAD_BYTES.inc(length)
    return _info(doc)


async def _verified_sha256(doc: dict[str, Any], *, deps: Ingest, after: str) -> str:
    """The whole file's SHA-256 (from the running hash), after checking the metadata checksum; 460 if it fails."""
    upload_id = doc["_id"]
    sha256 = str(doc.get("sha256") or await deps.parts.sha256(upload_id, doc["length"]))
    expected = doc.get("expected_checksum")
    if expected is not None and expected[0] != "sha256":  # reads the file
        await asyncio.to_thread(_check_whole, doc, deps.parts.path(upload_id), sha256, after=after)
    else:
        _check_whole(doc, deps.parts.path(upload_id), sha256, after=after)
    deps.parts.forget_hash(upload_id)
    return sha256


def _check_whole(doc: dict[str, Any], source: Path, sha256: str, *, after: str) -> None:
    """460 unless the whole file matches the checksum its Upload-Metadata announced (blocking for md5/sha1: the
    file is read; sha256 is the running hash's)."""
    expected = doc.get("expected_checksum")
    if expected is None:
        return
    algorithm, digest = expected
    actual = sha256 if algorithm == "sha256" else file_digest(source, algorithm)
    if actual != digest:
        UPLOAD_REQUESTS.labels(outcome="checksum_mismatch").inc()
        raise ChecksumMismatch(f"the whole file does not match the {algorithm} in Upload-Metadata; {after}")


async def _final_parts(concat: Concat, *, subject: str, deps: Ingest) -> list[dict[str, Any]]:
    found = {d["_id"]: d for d in await deps.uploads.get_many(list(concat.parts))}
    parts = []
    for part_id in concat.parts:
        part = found.get(part_id)
        if part is None or part["state"] == GONE or part["owner"] != subject:
            raise TusBadRequest(f"Upload-Concat: partial upload {part_id} does not exist")
        if part.get("concat") != "partial":
            raise TusBadRequest(f"Upload-Concat: upload {part_id} was not created as a partial upload")
        if part["length"] is None or part["offset"] != part["length"]:
            raise TusBadRequest(f"Upload-Concat: partial upload {part_id} is not finished")
        parts.append(part)
    return parts


async def _record(upload_id: str, set_: dict[str, Any], *, deps: Ingest) -> dict[str, Any]:
    doc = await deps.uploads.update_get(upload_id, {**set_, "updated_at": now()})
    if doc is None:
        raise UploadNotFound(f"no upload {upload_id}")
    return doc


async def _load(upload_id: str, *, subject: str, deps: Ingest) -> dict[str, Any]:
    doc = await deps.uploads.get(upload_id)
    if doc is None:
        raise UploadNotFound(f"no upload {upload_id}")
    if doc["state"] == GONE:
        raise UploadGone(f"upload {upload_id} was terminated or expired")
    if doc["owner"] != subject:
        raise UploadForbidden(f"upload {upload_id} belongs to another client")
    if doc["state"] == UploadState.RECEIVING.value and doc["expires_at"].replace(tzinfo=now().tzinfo) < now():
        raise UploadGone(f"upload {upload_id} expired")
    return doc


async def head_upload(upload_id: str, *, subject: str, deps: Ingest) -> UploadInfo:
    """The upload's state. The offset is never more than what is durably on disk; after a crash it is exactly
    that once the dead writer's lease has run out (before, the offset it last recorded)."""
    lease = deps.leases.get(upload_id)
    if lease is not None:  # an offset this process acknowledged may still be on its way to the database
        with contextlib.suppress(TusConflict):
            await _settle(lease, deps=deps)
    doc = await _load(upload_id, subject=subject, deps=deps)
    if doc["state"] == UploadState.COMPLETE.value and doc.get("run_id") and doc.get("path"):
        # every byte is in but the run has not got the file (its writer died, or the client left, in between):
        # hand it over now, so an offset equal to the length always means "stored"
        doc = await _finish(doc, correlation_id=None, deps=deps)
    elif doc["state"] == UploadState.RECEIVING.value:
        doc = await _match_disk(doc, deps=deps)
    return _info(doc)


async def _match_disk(doc: dict[str, Any], *, deps: Ingest) -> dict[str, Any]:
    """An unfinished upload as read from the database, with its offset matched to the bytes on disk: fewer (the
    file was cut) are recorded; more, left unchecked by a writer whose lease ran out, are adopted — they may be
    bytes it acknowledged before its offset write landed (`_advance`)."""
    on_disk = deps.parts.size(doc["_id"])
    if on_disk < doc["offset"]:
        deps.leases.pop(doc["_id"], None)
        return await _record(doc["_id"], {"offset": on_disk}, deps=deps)
    if on_disk > doc["offset"] and _abandoned_unchecked(doc):
        return await _adopt(doc, on_disk, deps=deps)
    return doc


def _abandoned_unchecked(doc: dict[str, Any]) -> bool:
    """A writer died mid-body (its lease ran out) and its bytes needed no per-request checksum."""
    lock: dict[str, Any] | None = doc.get("lock")
    if not lock:
        return False
    return bool(lock["until"].replace(tzinfo=now().tzinfo) < now()) and not lock.get("checksum")


async def _adopt(doc: dict[str, Any], on_disk: int, *, deps: Ingest) -> dict[str, Any]:
    """Keep the bytes a dead writer left (tus: keep as much as possible): fsync them, then record them."""
    token = uuid.uuid4().hex
    locked = await deps.uploads.lock(doc["_id"], token, now=now(), until=now() + deps.limits.lock_lease)
    if locked is None:
        return doc
    keep = on_disk if doc["length"] is None else min(on_disk, doc["length"])
    deps.parts.forget_hash(doc["_id"])
    await deps.parts.sync(doc["_id"], keep)
    return await deps.uploads.unlock(doc["_id"], token, {"offset": keep, "updated_at": now()}) or doc


async def patch_upload(
    upload_id: str, body: Body, *, subject: str, correlation_id: str | None, deps: Ingest
) -> UploadInfo:
    lease = deps.leases.get(upload_id)
    if lease is not None and lease.busy:
        raise _locked(upload_id, deps=deps)
    if lease is not None and lease.until - now() > deps.limits.lock_lease / 2:
        _check_access(lease.doc, subject=subject)  # we hold its lock: our copy is the upload's state
        lease.busy = True
    else:
        if lease is not None:  # its lease runs low: the database must hold our last offset before we read it
            with contextlib.suppress(TusConflict):
                await _settle(lease, deps=deps)
        deps.leases.pop(upload_id, None)  # none, or its lease runs low: take the lock through the database
        doc = await _load(upload_id, subject=subject, deps=deps)
        if doc.get("concat") == "final":
            raise UploadForbidden("a final (concatenated) upload cannot be patched")
        if doc["state"] != UploadState.RECEIVING.value:
            if doc["state"] == UploadState.COMPLETE.value and doc.get("run_id") and body.offset == doc["offset"]:
                return _info(await _finish(doc, correlation_id=correlation_id, deps=deps))
            raise UploadForbidden(f"upload {upload_id} is complete; it takes no more bytes")
        doc = await _match_disk(doc, deps=deps)
        token, at = uuid.uuid4().hex, now()
        until = at + deps.limits.lock_lease
        locked = await deps.uploads.lock(upload_id, token, now=at, until=until, checksum=body.checksum is not None)
        if locked is None:
            raise _locked(upload_id, deps=deps)
        lease = Lease(token, until, locked, body.checksum is not None, busy=True)
        deps.leases[upload_id] = lease
    try:
        if body.length is not None:
            await _settle(lease, deps=deps)  # the document read back must hold the last offset
            lease.doc = await _set_deferred_length(lease.doc, body.length, deps=deps)
        doc = await _write(lease, body, deps=deps)
    finally:
        lease.busy = False
    if doc["length"] is not None and doc["offset"] == doc["length"]:
        doc = await _finish(doc, correlation_id=correlation_id, deps=deps)
    return _info(doc)


def _locked(upload_id: str, *, deps: Ingest) -> UploadLocked:
    return UploadLocked(
        f"upload {upload_id} is being written by another request; retry after it ends",
        headers={"Retry-After": str(max(1, int(deps.limits.lock_lease.total_seconds())))},
    )


def _check_access(doc: dict[str, Any], *, subject: str) -> None:
    if doc["owner"] != subject:
        raise UploadForbidden(f"upload {doc['_id']} belongs to another client")
    if doc["expires_at"].replace(tzinfo=now().tzinfo) < now():
        raise UploadGone(f"upload {doc['_id']} expired")


async def _write(lease: Lease, body: Body, *, deps: Ingest) -> dict[str, Any]:
    """Append under the held lock; a lock lost, or an unexpected failure, releases it (and our claim to it)."""
    upload_id = lease.doc["_id"]
    try:
        if (body.checksum is not None) != lease.checksum:  # what a dead writer's bytes would be worth changes
            await _settle(lease, deps=deps)  # bytes acknowledged unchecked are recorded before the flag says checked
            lease.checksum = body.checksum is not None
            if not await deps.uploads.write_locked(upload_id, lease.token, {"lock.checksum": lease.checksum}):
                raise _taken_over(upload_id)
        return await _append_locked(lease, body, deps=deps)
    except (OffsetMismatch, UploadTooLarge, ChecksumMismatch, TusBadRequest):
        raise  # the request's fault: the lock is still ours, kept for the client's next try
    except TusConflict:
        deps.leases.pop(upload_id, None)
        raise
    except BaseException:
        deps.leases.pop(upload_id, None)
        with contextlib.suppress(Exception):  # with the last acknowledged offset, which may not be recorded yet
            await deps.uploads.unlock(upload_id, lease.token, {"offset": lease.doc["offset"], "updated_at": now()})
        raise


def _taken_over(upload_id: str) -> TusConflict:
    return TusConflict(f"upload {upload_id} was taken over by another request; HEAD and resume")


async def _set_deferred_length(doc: dict[str, Any], length: int, *, deps: Ingest) -> dict[str, Any]:
    if doc["length"] is not None:
        if doc["length"] != length:
            raise TusBadRequest(f"Upload-Length is already {doc['length']}; it cannot change to {length}")
        return doc
    if length < doc["offset"]:
        raise TusBadRequest(f"Upload-Length {length} is below the bytes already received ({doc['offset']})")
    if length > deps.limits.max_file_bytes:
        raise UploadTooLarge(f"Upload-Length {length} exceeds Tus-Max-Size {deps.limits.max_file_bytes}")
    if doc.get("run_id") and doc.get("path") and length:
        await service.reserve(doc["run_id"], length, deps=deps)
    return await _record(doc["_id"], {"length": length, "reserved": length if doc.get("run_id") else 0}, deps=deps)


async def _append_locked(lease: Lease, body: Body, *, deps: Ingest) -> dict[str, Any]:
    doc = lease.doc
    upload_id = doc["_id"]
    if body.offset != doc["offset"]:
        raise OffsetMismatch(expected=doc["offset"], provided=body.offset)
    room = (doc["length"] if doc["length"] is not None else deps.limits.max_file_bytes) - doc["offset"]
    renewer = asyncio.create_task(_renew(lease, deps=deps))
    ACTIVE_UPLOADS.inc()
    try:
        result: AppendResult[None] = await deps.parts.append(
            upload_id, doc["offset"], body.chunks, limit=room, checksum=body.checksum
        )
    except BodyTooLong:
        UPLOAD_REQUESTS.labels(outcome="too_large").inc()
        raise UploadTooLarge(f"the body is longer than the {room} bytes upload {upload_id} may still take") from None
    except BodyInterrupted as exc:
        UPLOAD_REQUESTS.labels(outcome="interrupted").inc()
        return await _advance(lease, exc.written, deps=deps)
    finally:
        ACTIVE_UPLOADS.dec()
        renewer.cancel()
    if not result.checksum_ok:
        UPLOAD_REQUESTS.labels(outcome="checksum_mismatch").inc()
        raise ChecksumMismatch(f"Upload-Checksum does not match the body; offset stays at {doc['offset']}")
    UPLOAD_REQUESTS.labels(outcome="stored").inc()
    if doc["length"] is not None and doc["offset"] + result.written == doc["length"]:
        return await _complete(lease, result.written, deps=deps)
    return await _advance(lease, result.written, deps=deps)


async def _advance(
    lease: Lease, written: int, *, deps: Ingest, complete: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Record the new offset (the bytes are fsynced): the one write a PATCH costs. It renews the lease too; the
    lock stays held for the client's next PATCH — unless `complete` (the state and sha256 of an upload whose last
    byte this is) comes in the same write: then the lock is released.

    The write is the acknowledgement when the body carried an `Upload-Checksum` (bytes past the recorded offset
    are then dropped after a crash: they cannot be verified again) and for the last byte (the run's hand-over
    follows it). Otherwise it is written behind: the answer goes out at once and the write lands while the
    client sends its next request; `_settle` awaits it before anything reads or writes the document after it."""
    await _settle(lease, deps=deps)  # one write at a time, in order
    doc = lease.doc
    at = now()
    until = at + deps.limits.lock_lease
    set_ = {"offset": doc["offset"] + written, "updated_at": at, "expires_at": at + deps.limits.upload_ttl}
    if complete is None and not lease.checksum:
        # Bytes that needed no verification, fsynced: should this process die before the write lands, the next
        # HEAD or PATCH adopts them once the lease runs out (`_match_disk`), so the answer need not wait for it.
        lease.doc = {**doc, **set_, "lock": {"token": lease.token, "until": until, "checksum": False}}
        _record_behind(lease, deps=deps)
        UPLOAD_BYTES.inc(written)
        return lease.doc
    if complete:
        recorded = await deps.uploads.write_locked(doc["_id"], lease.token, {**set_, **complete, "lock": None})
    else:
        recorded = await deps.uploads.write_locked(doc["_id"], lease.token, set_, until=until)
    if not recorded:
        # our lease ran out and another writer took over: our bytes are not ours to count
        deps.leases.pop(doc["_id"], None)
        raise _taken_over(doc["_id"])
    UPLOAD_BYTES.inc(written)
    if complete:
        deps.leases.pop(doc["_id"], None)
        return {**doc, **set_, **complete, "lock": None}
    lease.until = until
    lease.doc = {**doc, **set_, "lock": {"token": lease.token, "until": until, "checksum": lease.checksum}}
    return lease.doc


async def _complete(lease: Lease, written: int, *, deps: Ingest) -> dict[str, Any]:
    """The body brought the last byte: verify the whole file, then record offset, state `complete` and sha256 in
    one write. "Every byte recorded" and "complete" are thus one state: a process dying after it leaves an upload
    that HEAD, a PATCH retry or the sweep hands to its run (`_finish`), never one stuck at full offset."""
    await _settle(lease, deps=deps)  # a reset to 0 below must not be overtaken by an earlier offset's write
    doc = lease.doc
    upload_id = doc["_id"]
    try:
        sha256 = await _verified_sha256(doc, deps=deps, after="the upload restarts at 0")
    except ChecksumMismatch:
        deps.parts.delete(upload_id)
        deps.parts.create(upload_id)
        at = now()
        if await deps.uploads.write_locked(upload_id, lease.token, {"offset": 0, "updated_at": at}):
            lease.doc = {**doc, "offset": 0, "updated_at": at}
        raise
    return await _advance(
        lease, written, deps=deps, complete={"state": UploadState.COMPLETE.value, "sha256": sha256}
    )


def _record_behind(lease: Lease, *, deps: Ingest) -> None:
    """Start writing the lease's acknowledged state (offset and times, from `lease.doc`) and extending its lock:
    the write-behind of `_advance`, or `_settle`'s retry of one that failed."""
    doc = lease.doc
    fields = {k: doc[k] for k in ("offset", "updated_at", "expires_at")}
    recording = asyncio.ensure_future(_write_recorded(lease, fields, now() + deps.limits.lock_lease, deps=deps))
    recording.add_done_callback(_log_failed_record)
    lease.recording = recording


async def _write_recorded(lease: Lease, fields: dict[str, Any], until: datetime, *, deps: Ingest) -> bool:
    if not await deps.uploads.write_locked(lease.doc["_id"], lease.token, fields, until=until):
        return False  # the lock was lost meanwhile
    lease.until = max(lease.until, until)  # the database keeps the latest `until` whatever order writes land in
    return True


def _failed(recording: asyncio.Future[bool]) -> bool:
    return recording.cancelled() or recording.exception() is not None


def _log_failed_record(recording: asyncio.Future[bool]) -> None:
    if not recording.cancelled() and (error := recording.exception()) is not None:  # `_settle` writes it again
        log.warning("an acknowledged upload offset was not recorded yet: %s", error)


async def _settle(lease: Lease, *, deps: Ingest) -> None:
    """Wait until the lease's last acknowledged offset is in the database. If its write-behind failed, the first
    caller to find out writes it again and any other waits for that write; if it fails too, its error propagates
    (and the next caller tries again). TusConflict if the lock was lost meanwhile."""
    recording = lease.recording
    if recording is None:
        return
    await asyncio.wait([recording])  # a cancelled caller does not cancel the write
    if _failed(recording):
        if lease.recording is recording:
            _record_behind(lease, deps=deps)
        if (retry := lease.recording) is None:  # another caller's retry landed meanwhile
            return
        await asyncio.wait([retry])
        if retry.cancelled():
            raise ConnectionError("the upload's offset write was cancelled")
        if (error := retry.exception()) is not None:
            raise error
        recording = retry
    if lease.recording is recording:
        lease.recording = None
    if not recording.result():
        if deps.leases.get(lease.doc["_id"]) is lease:
            deps.leases.pop(lease.doc["_id"])
        raise _taken_over(lease.doc["_id"])


async def settle_leases(*, deps: Ingest) -> None:
    """At shutdown: let the acknowledged offsets written behind land (HEAD in another process would otherwise
    report fewer bytes until the lease runs out and the bytes on disk are adopted)."""
    await asyncio.gather(*(_settle(lease, deps=deps) for lease in list(deps.leases.values())), return_exceptions=True)


async def _renew(lease: Lease, *, deps: Ingest) -> None:
    period = deps.limits.lock_lease
    while True:
        await asyncio.sleep(period.total_seconds() / 3)
        until = now() + period
        with contextlib.suppress(Exception):
            if await deps.uploads.renew(lease.doc["_id"], lease.token, until):
                lease.until = until


async def _finish(doc: dict[str, Any], *, correlation_id: str | None, deps: Ingest) -> dict[str, Any]:
    """All bytes are in: verify the whole-file checksum, release the lock, then hand the file to its run."""
    upload_id = doc["_id"]
    if doc["state"] == UploadState.RECEIVING.value:
        if (lease := deps.leases.get(upload_id)) is not None:  # (a body that broke off right at the end)
            await _settle(lease, deps=deps)
        try:
            sha256 = await _verified_sha256(doc, deps=deps, after="the upload restarts at 0")
        except ChecksumMismatch:
            deps.parts.delete(upload_id)
            deps.parts.create(upload_id)
            lease = deps.leases.get(upload_id)
            reset = await _record(upload_id, {"offset": 0}, deps=deps)
            if lease is not None:
                lease.doc = reset
            raise
        doc = await _record(upload_id, {"state": UploadState.COMPLETE.value, "sha256": sha256, "lock": None}, deps=deps)
        deps.leases.pop(upload_id, None)
    else:
        sha256 = doc.get("sha256") or await deps.parts.sha256(upload_id, doc["length"])
        if doc["state"] == UploadState.COMPLETE.value and not doc.get("sha256"):
            doc = await _record(upload_id, {"sha256": sha256}, deps=deps)
    if doc.get("run_id") and doc.get("path"):
        try:
            await service.store_completed_file(
                upload_id=upload_id,
                run_id=doc["run_id"],
                path=doc["path"],
                size=doc["length"],
                sha256=sha256,
                correlation_id=correlation_id,
                deps=deps,
            )
        except Conflict:  # the path was stored by another upload, or the run closed: this one is moot
            await _bury(doc, deps=deps)
            raise
        doc = {**doc, "state": UploadState.STORED.value}
    return doc


async def terminate_upload(upload_id: str, *, subject: str, deps: Ingest) -> None:
    doc = await _load(upload_id, subject=subject, deps=deps)
    if doc["state"] == UploadState.STORED.value:
        raise UploadForbidden(f"upload {upload_id} is stored in its run and cannot be terminated")
    lease = deps.leases.get(upload_id)
    if lease is not None and lease.busy:
        raise UploadLocked(f"upload {upload_id} is being written; retry after the request ends")
    if lease is None:
        token = uuid.uuid4().hex
        if await deps.uploads.lock(upload_id, token, now=now(), until=now() + deps.limits.lock_lease) is None:
            raise UploadLocked(f"upload {upload_id} is being written; retry after the request ends")
    await _bury(doc, deps=deps)


async def _bury(doc: dict[str, Any], *, deps: Ingest) -> None:
    deps.leases.pop(doc["_id"], None)
    deps.parts.delete(doc["_id"])
    at = now()
    await deps.uploads.update(
        doc["_id"],
        {"state": GONE, "lock": None, "updated_at": at, "purge_at": at + deps.limits.tombstone_for},
    )
    if doc.get("reserved") and doc.get("run_id"):
        await deps.runs.release_bytes(doc["run_id"], doc["reserved"])


async def expire_uploads(*, deps: Ingest, at: datetime | None = None) -> int:
    """Remove unfinished uploads past `Upload-Expires` (and partial uploads nobody concatenated)."""
    when = at or now()
    for upload_id, lease in list(deps.leases.items()):  # locks this process kept but nobody used for a lease
        if not lease.busy and lease.until < when:
            deps.leases.pop(upload_id, None)
    expired = 0
    for state in (UploadState.RECEIVING.value, UploadState.COMPLETE.value):
        for doc in await deps.uploads.due(state, when):
            if state == UploadState.COMPLETE.value and doc.get("concat") != "partial":
                continue
            token = uuid.uuid4().hex
            if await deps.uploads.lock(doc["_id"], token, now=when, until=when + deps.limits.lock_lease) is None:
                continue  # a request is writing it right now: not idle
            await _bury(doc, deps=deps)
            expired += 1
    UPLOADS_EXPIRED.inc(expired)
    return expired


async def remove_orphan_parts(*, deps: Ingest, limit: int = 1000) -> int:
    """Delete part files that no upload document names and nobody has written for `Limits.orphan_part_after`.

    They are left by a process killed while receiving a whole file in one creation-with-upload request (its upload
    document is only written once the body is in; the client never learnt the URL, so nobody can resume it). A part
    file is spared while a request of this process works on it (`PartFiles.in_use`) and while its bytes are younger
    than the age — which covers requests in other processes: a body being received rewrites its file every buffer,
    and an upload document is inserted right after its body's last write. Its mtime is checked again just before
    the unlink. A part file whose upload exists is never touched here (expiry and termination remove those).
    Leftover `<id>.concat` files of a concatenation killed midway go too, by the same age."""
    age = deps.limits.orphan_part_after.total_seconds()
    removed = await asyncio.to_thread(deps.parts.remove_stale_temporaries, age)
    candidates = await asyncio.to_thread(deps.parts.stale, age, limit=limit)
    if candidates:
        known = await deps.uploads.existing(candidates)
        removed += await asyncio.to_thread(deps.parts.remove_stale, [c for c in candidates if c not in known], age)
    ORPHAN_PARTS_REMOVED.inc(removed)
    return removed


async def recover_completed(*, deps: Ingest, older_than_seconds: float = 60.0) -> int:
    """Finish uploads whose bytes were complete when a process died before handing them to their run."""
    recovered = 0
    for doc in await deps.uploads.in_state(
        UploadState.COMPLETE.value, updated_before=now() - timedelta(seconds=older_than_seconds)
    ):
        if doc.get("run_id") and doc.get("path"):
            with contextlib.suppress(Exception):
                await _finish(doc, correlation_id=None, deps=deps)
                recovered += 1
    return recovered
