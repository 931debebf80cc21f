"""Run use cases: register, show, list, delete, declare files, store a finished file, detect stalls.

`store_completed_file` is the heart of run assembly: in one transaction it records the file, bumps the
run's counters and — when the last expected file and the completion marker are in — marks the run
`uploaded` and adds RunUploaded to the outbox, so the event is published exactly once. No aiohttp, no
pymongo here: stores come in as arguments (`Ingest`), errors are domain exceptions.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from libs.common.errors import Conflict, Forbidden, NotFound, PayloadTooLarge
from libs.common.events import FileRef, RunRegistered, RunRegisteredData, RunUploaded, RunUploadedData
from libs.common.filestore import LocalFileStore, uri_of
from libs.common.outbox import Outbox

from . import manifest
from .metrics import RUNS_STALLED, RUNS_UPLOADED, set_run_counts
from .models import OPEN_STATUSES, DeclaredFile, RunCreate, RunPage, RunStatus, RunView, StoredFile
from .partfile import PartFiles, file_digest
from .paths import validate_relative_path, validate_run_name
from .store import DuplicateFile, RunStore, UploadStore, in_transaction

OPEN = [s.value for s in OPEN_STATUSES]


@dataclass(frozen=True)
class Limits:
    max_file_bytes: int
    max_run_bytes: int
    upload_ttl: timedelta
    lock_lease: timedelta
    stalled_after: timedelta
    tombstone_for: timedelta


@dataclass(frozen=True)
class Ingest:
    """The collaborators every ingest use case needs (built once per app in `app.py`)."""

    runs: RunStore
    uploads: UploadStore
    parts: PartFiles
    files: LocalFileStore
    outbox: Outbox
    limits: Limits
    # facts of a run that never change after registration (RunInfo, format, marker), by run id
    run_facts: dict[str, dict[str, Any]] = field(default_factory=dict)


class RunNotFound(NotFound):
    pass


class RunClosed(Conflict):
    pass


def now() -> datetime:
    return datetime.now(UTC)


def folder_key(run_id: str) -> str:
    return f"runs/{run_id}"


def file_key(run_id: str, path: str) -> str:
    return f"{folder_key(run_id)}/{path}"


def _file_id(run_id: str, path: str) -> str:
    return f"{run_id}/{path}"


async def register_run(body: RunCreate, *, owner: str, correlation_id: str | None, deps: Ingest) -> RunView:
    name = validate_run_name(body.name)
    info = manifest.parse_run_info(body.run_info_xml)
    expected = manifest.expected_paths(body.run_info_xml, body.format)
    declared = [_declared_doc("", f) for f in body.files]
    run_id = uuid.uuid4().hex
    at = now()
    run: dict[str, Any] = {
        "_id": run_id,
        "name": name,
        "instrument": body.instrument or info.instrument,
        "flowcell": body.flowcell or info.flowcell,
        "project": body.project,
        "owner": owner,
        "status": RunStatus.UPLOADING.value,
        "format": body.format,
        "run_info_xml": body.run_info_xml,
        "run_info": manifest.summarize(info, body.format).model_dump(mode="json"),
        "completion_marker": body.completion_marker,
        "expected_total": len(expected),
        "expected_stored": 0,
        "declared_pending": 0,
        "marker_stored": 0,
        "files_received": 0,
        "bytes_received": 0,
        "bytes_reserved": 0,
        "bytes_declared": 0,
        "sample_sheet_uri": None,
        "created_at": at,
        "updated_at": at,
        "last_activity_at": at,
        "uploaded_at": None,
    }
    for doc in declared:
        doc["_id"], doc["run_id"] = _file_id(run_id, doc["path"]), run_id
    if len({d["path"] for d in declared}) != len(declared):
        raise Conflict("files: the same path is declared twice")
    run["declared_pending"] = len(declared)
    run["bytes_declared"] = sum(d.get("size") or 0 for d in declared)
    event = RunRegistered(
        correlation_id=correlation_id,
        data=RunRegisteredData(
            run_id=run_id,
            run_name=name,
            instrument=run["instrument"],
            flowcell=run["flowcell"],
            project=body.project,
            owner=owner,
            expected_files=len(expected) + 1,
        ),
    )

    async def _write(session: Any) -> None:
        await deps.runs.insert(run, declared, session=session)
        await deps.outbox.add(event, session=session)

    await in_transaction(deps.outbox, _write)
    return to_view(run)


def _declared_doc(run_id: str, f: DeclaredFile) -> dict[str, Any]:
    path = validate_relative_path(f.path, field="files[].path")
    return {
        "_id": _file_id(run_id, path),
        "run_id": run_id,
        "path": path,
        "state": "declared",
        "size": f.size,
        "sha256": f.sha256,
    }


async def get_run(run_id: str, *, deps: Ingest) -> dict[str, Any]:
    run = await deps.runs.get(run_id)
    if run is None:
        raise RunNotFound(f"no run {run_id!r}")
    return run


def check_owner(run: dict[str, Any], subject: str) -> None:
    if run["owner"] != subject:
        raise Forbidden(f"run {run['_id']!r} belongs to another client")


async def list_runs(
    *, status: RunStatus | None, instrument: str | None, offset: int, limit: int, deps: Ingest
) -> RunPage:
    query: dict[str, Any] = {}
    if status is not None:
        query["status"] = status.value
    if instrument is not None:
        query["instrument"] = instrument
    docs, total = await deps.runs.page(query, offset=offset, limit=limit)
    return RunPage(items=[to_view(d) for d in docs], total=total, offset=offset, limit=limit)


async def delete_run(run_id: str, *, subject: str, deps: Ingest) -> None:
    """Abandon a run still being uploaded: its document, its files and its partial uploads go."""
    run = await get_run(run_id, deps=deps)
    check_owner(run, subject)
    if run["status"] not in OPEN:
        raise RunClosed(f"run {run_id!r} is {run['status']}; only runs still uploading can be deleted")

    async def _delete(session: Any) -> None:
        await deps.runs.delete(run_id, session=session)

    await in_transaction(deps.outbox, _delete)
    deps.run_facts.pop(run_id, None)
    await deps.files.delete(uri_of(folder_key(run_id)) + "/")


async def declare_files(run_id: str, files: list[DeclaredFile], *, subject: str, deps: Ingest) -> RunView:
    run = await get_run(run_id, deps=deps)
    check_owner(run, subject)
    docs = [_declared_doc(run_id, f) for f in files]
    paths = [d["path"] for d in docs]
    if len(set(paths)) != len(paths):
        raise Conflict("files: the same path is declared twice")

    async def _declare(session: Any) -> dict[str, Any]:
        known = {d["path"] for d in await deps.runs.files_in(run_id, paths, session=session)}
        new = [d for d in docs if d["path"] not in known]
        await deps.runs.add_declared(new, session=session)
        updated = await deps.runs.update_open(
            run_id,
            {"declared_pending": len(new), "bytes_declared": sum(d.get("size") or 0 for d in new)},
            {"updated_at": now()},
            open_statuses=OPEN,
            session=session,
        )
        if updated is None:
            raise RunClosed(f"run {run_id!r} is {run['status']}; it accepts no more files")
        return updated

    return to_view(await in_transaction(deps.outbox, _declare))


async def _run_facts(run_id: str, *, deps: Ingest) -> dict[str, Any]:
    facts = deps.run_facts.get(run_id)
    if facts is None:
        run = await get_run(run_id, deps=deps)
        facts = {k: run[k] for k in ("run_info_xml", "format", "completion_marker")}
        if len(deps.run_facts) > 1000:
            deps.run_facts.clear()
        deps.run_facts[run_id] = facts
    return facts


async def check_run_accepts(run_id: str, path: str, length: int | None, *, subject: str, deps: Ingest) -> None:
    """Fail fast when an upload could never be stored: unknown/closed run, taken path, over-size."""
    run = await get_run(run_id, deps=deps)
    check_owner(run, subject)
    if run["status"] not in OPEN:
        raise RunClosed(f"run {run_id!r} is {run['status']}; it accepts no more files")
    existing = await deps.runs.get_file(run_id, path)
    if existing is not None and existing["state"] == "stored":
        raise Conflict(f"{path!r} is already stored in run {run_id!r}; files cannot be overwritten")
    if existing is not None and existing.get("size") is not None and length is not None and length != existing["size"]:
        raise Conflict(f"{path!r} was declared with {existing['size']} bytes, the upload has {length}")


async def reserve(run_id: str, size: int, *, deps: Ingest) -> None:
    if size > deps.limits.max_file_bytes:
        raise PayloadTooLarge(f"file of {size} bytes exceeds the per-file limit of {deps.limits.max_file_bytes}")
    if (
        size
        and await deps.runs.reserve_bytes(run_id, size, max_bytes=deps.limits.max_run_bytes, open_statuses=OPEN) is None
    ):
        run = await get_run(run_id, deps=deps)
        if run["status"] not in OPEN:
            raise RunClosed(f"run {run_id!r} is {run['status']}; it accepts no more files")
        raise PayloadTooLarge(
            f"run {run_id!r} would exceed its limit of {deps.limits.max_run_bytes} bytes with {size} more"
        )


async def store_completed_file(
    *,
    upload_id: str,
    run_id: str,
    path: str,
    size: int,
    sha256: str,
    correlation_id: str | None,
    deps: Ingest,
) -> StoredFile:
    """Move a finished upload into the run folder and account for it; may complete the run (RunUploaded)."""
    run = await _run_facts(run_id, deps=deps)
    expected = manifest.expected_paths(run["run_info_xml"], run["format"])
    key = file_key(run_id, path)
    uri = uri_of(key)
    target = deps.files.path(key)
    source = deps.parts.path(upload_id)
    if source.exists():
        if target.exists() and not await _same_file(target, size, sha256):
            raise Conflict(f"{path!r} is already stored in run {run_id!r}; files cannot be overwritten")
        await _move_into_store(source, target)
    elif not target.exists() or target.stat().st_size != size:
        raise NotFound(f"the data of upload {upload_id} is gone")
    stored = StoredFile(path=path, size=size, sha256=sha256, uri=uri)
    await _account_file(
        stored,
        upload_id=upload_id,
        run_id=run_id,
        expected=path in expected,
        marker=path == run["completion_marker"],
        deps=deps,
    )
    await _complete_if_whole(run_id, correlation_id=correlation_id, deps=deps)
    return stored


async def _account_file(
    f: StoredFile, *, upload_id: str, run_id: str, expected: bool, marker: bool, deps: Ingest
) -> None:
    """Record a stored file and bump the run's counters — single-document atomic writes, no transaction, so
    parallel uploads of one run do not conflict. The run_files documents are the truth (completeness is
    counted from them); the counters on the run serve progress display."""
    at = now()
    doc: dict[str, Any] = {
        "_id": _file_id(run_id, f.path),
        "run_id": run_id,
        "path": f.path,
        "state": "stored",
        "size": f.size,
        "sha256": f.sha256,
        "uri": f.uri,
        "upload_id": upload_id,
        "stored_at": at,
        "expected": expected,
    }
    try:
        previous = await deps.runs.claim_file(doc)
    except DuplicateFile:
        existing = await deps.runs.get_file(run_id, f.path)
        if existing is not None and existing.get("upload_id") == upload_id:
            return  # a retried finalisation: already recorded
        if existing is not None and existing["state"] == "declared":
            raise Conflict(f"{f.path!r} does not match the sha256 declared for it") from None
        raise Conflict(f"{f.path!r} is already stored in run {run_id!r}; files cannot be overwritten") from None
    inc = {
        "files_received": 1,
        "bytes_received": f.size,
        "expected_stored": int(expected),
        "declared_pending": -int(previous is not None),
        "marker_stored": int(marker),
    }
    set_: dict[str, Any] = {"updated_at": at, "last_activity_at": at, "status": RunStatus.UPLOADING.value}
    if manifest.is_sample_sheet(f.path):
        set_["sample_sheet_uri"] = f.uri
    if await deps.runs.update_open(run_id, inc, set_, open_statuses=OPEN, session=None) is None:
        await deps.runs.unclaim_file(doc["_id"], previous)
        raise RunClosed(f"run {run_id!r} accepts no more files")
    await deps.uploads.update(upload_id, {"state": "stored", "uri": f.uri, "updated_at": at})


async def _complete_if_whole(run_id: str, *, correlation_id: str | None, deps: Ingest) -> None:
    """Once the completion marker is in, count the run's files; when whole, publish RunUploaded exactly once."""
    run = await deps.runs.get(run_id)
    if run is None or run["status"] not in OPEN or run["marker_stored"] <= 0:
        return
    expected_stored, declared_pending = await deps.runs.count_progress(run_id)
    progress = manifest.Progress(run["expected_total"], expected_stored, declared_pending, marker_stored=True)
    if not progress.complete:
        return

    async def _publish(session: Any) -> None:
        await _complete_run(run, correlation_id=correlation_id, session=session, deps=deps)

    await in_transaction(deps.outbox, _publish)


async def _same_file(path: Path, size: int, sha256: str) -> bool:
    """A finalisation interrupted after the move left exactly these bytes in the store."""

    def _same() -> bool:
        return path.stat().st_size == size and file_digest(path, "sha256") == sha256

    return await asyncio.to_thread(_same)


async def _move_into_store(source: Path, target: Path) -> None:
    def _move() -> None:
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.replace(source, target)
        except OSError:  # another filesystem: copy beside the target, then rename
            tmp = target.with_name(f".{target.name}.moving")
            shutil.copyfile(source, tmp)
            os.replace(tmp, target)
            source.unlink()

    await asyncio.to_thread(_move)


def progress_of(run: dict[str, Any]) -> manifest.Progress:
    return manifest.Progress(
        expected_total=run["expected_total"],
        expected_stored=run["expected_stored"],
        declared_pending=run["declared_pending"],
        marker_stored=run["marker_stored"] > 0,
    )


async def _complete_run(run: dict[str, Any], *, correlation_id: str | None, session: Any, deps: Ingest) -> None:
    at = now()
    done = await deps.runs.set_status(
        run["_id"],
        RunStatus.UPLOADED.value,
        from_statuses=OPEN,
        set_={"uploaded_at": at, "updated_at": at},
        session=session,
    )
    if done is None:
        return
    files = await deps.runs.stored_files(run["_id"], session=session)
    event = RunUploaded(
        correlation_id=correlation_id,
        data=RunUploadedData(
            run_id=run["_id"],
            run_name=run["name"],
            instrument=run["instrument"],
            flowcell=run["flowcell"],
            project=run["project"],
            owner=run["owner"],
            root_uri=uri_of(folder_key(run["_id"])) + "/",
            files=[FileRef(path=f["path"], uri=f["uri"], size=f["size"], sha256=f["sha256"]) for f in files],
            total_bytes=sum(f["size"] for f in files),
            run_info=run["run_info"],
            sample_sheet_uri=run.get("sample_sheet_uri"),
        ),
    )
    await deps.outbox.add(event, session=session)
    RUNS_UPLOADED.inc()


async def mark_stalled_runs(*, deps: Ingest, at: datetime | None = None) -> int:
    """Runs with no file stored for longer than the stall deadline become `stalled` (resumed by a file)."""
    before = (at or now()) - deps.limits.stalled_after
    stalled = 0
    for run in await deps.runs.idle_since(RunStatus.UPLOADING.value, before):
        if await deps.runs.set_status(
            run["_id"],
            RunStatus.STALLED.value,
            from_statuses=[RunStatus.UPLOADING.value],
            set_={"updated_at": now()},
        ):
            stalled += 1
    RUNS_STALLED.inc(stalled)
    return stalled


async def refresh_run_counts(*, deps: Ingest) -> dict[str, int]:
    """Publish the number of runs per status (`seqhub_ingest_runs`), counted by one aggregation."""
    counts = await deps.runs.count_by_status()
    set_run_counts(counts, [s.value for s in RunStatus])
    return counts


def to_view(run: dict[str, Any]) -> RunView:
    progress = progress_of(run)
    files_expected = run["expected_total"] + 1 + run["declared_pending"]
    return RunView(
        id=run["_id"],
        name=run["name"],
        instrument=run["instrument"],
        flowcell=run["flowcell"],
        project=run["project"],
        owner=run["owner"],
        status=RunStatus(run["status"]),
        completion_marker=run["completion_marker"],
        run_info=run["run_info"],
        files_expected=max(files_expected, run["files_received"]),
        files_received=run["files_received"],
        bytes_expected=run["bytes_declared"] or None,
        bytes_received=run["bytes_received"],
        missing_expected=progress.missing_expected,
        declared_pending=run["declared_pending"],
        folder_uri=uri_of(folder_key(run["_id"])) + "/",
        sample_sheet_uri=run.get("sample_sheet_uri"),
        created_at=run["created_at"],
        updated_at=run["updated_at"],
        last_activity_at=run["last_activity_at"],
        uploaded_at=run.get("uploaded_at"),
    )
