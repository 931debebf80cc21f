"""Run use cases: register, show, list, delete, declare files, store a finished file, detect stalls.

`store_completed_file` is the heart of run assembly: in one transaction it records the file, bumps the
run's counters and — when the last expected file and the completion marker are in — marks the run
`uploaded` and adds RunUploaded to the outbox, so the event is published exactly once. No aiohttp, no
pymongo here: stores come in as arguments (`Ingest`), errors are domain exceptions.
"""

from __future__ import annotations

import asyncio
import contextlib
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
from .models import OPEN_STATUSES, DeclaredFile, RunCreate, RunPage, RunStatus, RunView, StoredFile, UploadState
from .partfile import PartFiles, file_digest
from .paths import validate_relative_path, validate_run_name
from .store import DuplicateFile, RunStore, UploadStore, file_id, in_transaction

OPEN = [s.value for s in OPEN_STATUSES]


@dataclass(frozen=True)
class Limits:
    max_file_bytes: int
    max_run_bytes: int
    upload_ttl: timedelta
    lock_lease: timedelta
    stalled_after: timedelta
    tombstone_for: timedelta
    orphan_part_after: timedelta = timedelta(days=1)


@dataclass(frozen=True)
class Ingest:
    """The collaborators every ingest use case needs (built once per app in `app.py`)."""

    runs: RunStore
    uploads: UploadStore
    parts: PartFiles
    files: LocalFileStore
    outbox: Outbox
    limits: Limits
    # what this process knows of runs it takes files for (immutable facts + last seen status), by run id
    run_facts: dict[str, RunFacts] = field(default_factory=dict)
    # group commit of stored files' accounting
    ledger: Ledger = field(default_factory=lambda: Ledger())
    # upload locks this process holds between PATCHes (see uploads.Lease), by upload id
    leases: dict[str, Any] = field(default_factory=dict)


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
    return file_id(run_id, path)


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


@dataclass
class RunFacts:
    """What a process needs to know about a run to take a file: immutable facts plus the last status and
    reservation it saw (a hint for failing fast; the accounting write is what decides)."""

    owner: str
    expected: frozenset[str]
    completion_marker: str
    status: str
    bytes_reserved: int


async def run_facts(run_id: str, *, deps: Ingest) -> RunFacts:
    facts = deps.run_facts.get(run_id)
    if facts is None:
        facts = _remember_run(await get_run(run_id, deps=deps), deps=deps)
    return facts


def _remember_run(run: dict[str, Any], *, deps: Ingest) -> RunFacts:
    facts = deps.run_facts.get(run["_id"])
    if facts is None:
        if len(deps.run_facts) > 1000:
            deps.run_facts.clear()
        facts = RunFacts(
            owner=run["owner"],
            expected=manifest.expected_paths(run["run_info_xml"], run["format"]),
            completion_marker=run["completion_marker"],
            status=run["status"],
            bytes_reserved=run["bytes_reserved"],
        )
        deps.run_facts[run["_id"]] = facts
    else:
        facts.status, facts.bytes_reserved = run["status"], run["bytes_reserved"]
    return facts


async def check_run_accepts(run_id: str, path: str, length: int | None, *, subject: str, deps: Ingest) -> None:
    """Fail fast when an upload could never be stored: unknown/closed run, taken path, over-size."""
    run = await get_run(run_id, deps=deps)
    _remember_run(run, deps=deps)
    check_owner(run, subject)
    if run["status"] not in OPEN:
        raise RunClosed(f"run {run_id!r} is {run['status']}; it accepts no more files")
    existing = await deps.runs.get_file(run_id, path)
    if existing is not None and existing["state"] == "stored":
        raise Conflict(f"{path!r} is already stored in run {run_id!r}; files cannot be overwritten")
    if existing is not None and existing.get("size") is not None and length is not None and length != existing["size"]:
        raise Conflict(f"{path!r} was declared with {existing['size']} bytes, the upload has {length}")


async def check_run_takes(run_id: str, length: int, *, subject: str, deps: Ingest) -> None:
    """The cheap pre-check of a whole file sent in one request, from what this process knows of the run
    (no database round trip once the run is known): owner, open, room. The accounting write re-checks."""
    facts = await run_facts(run_id, deps=deps)
    if facts.owner != subject:
        raise Forbidden(f"run {run_id!r} belongs to another client")
    if facts.status not in OPEN:
        raise RunClosed(f"run {run_id!r} is {facts.status}; it accepts no more files")
    if facts.bytes_reserved + length > deps.limits.max_run_bytes:
        raise _run_full(run_id, length, deps=deps)


def _run_full(run_id: str, size: int, *, deps: Ingest) -> PayloadTooLarge:
    limit = deps.limits.max_run_bytes
    return PayloadTooLarge(f"run {run_id!r} would exceed its limit of {limit} bytes with {size} more")


async def reserve(run_id: str, size: int, *, deps: Ingest) -> None:
    if size > deps.limits.max_file_bytes:
        raise PayloadTooLarge(f"file of {size} bytes exceeds the per-file limit of {deps.limits.max_file_bytes}")
    if size:
        run = await deps.runs.reserve_bytes(run_id, size, max_bytes=deps.limits.max_run_bytes, open_statuses=OPEN)
        if run is not None:
            _remember_run(run, deps=deps)
            return
        run = await get_run(run_id, deps=deps)
        _remember_run(run, deps=deps)
        if run["status"] not in OPEN:
            raise RunClosed(f"run {run_id!r} is {run['status']}; it accepts no more files")
        raise _run_full(run_id, size, deps=deps)


async def store_completed_file(
    *,
    upload_id: str,
    run_id: str,
    path: str,
    size: int,
    sha256: str,
    correlation_id: str | None,
    deps: Ingest,
    new_upload: dict[str, Any] | None = None,
    placed: Placed | None = None,
) -> StoredFile:
    """Move a finished upload into the run folder and account for it; may complete the run (RunUploaded).

    `new_upload`: the upload document of a whole file received in one request, inserted (state stored) with
    the accounting instead of updated, its bytes reserved on the run in the same write. `placed`: what
    `place_file` returned when the upload's writer already moved the file (in the thread that wrote it)."""
    facts = await run_facts(run_id, deps=deps)
    key = file_key(run_id, path)
    uri = uri_of(key)
    if placed is None:
        source = deps.parts.path(upload_id)
        placed = await asyncio.to_thread(place_file, deps, run_id, path, source, size, sha256)
    moved, target = placed
    stored = StoredFile(path=path, size=size, sha256=sha256, uri=uri)
    entry = _Entry(
        file=stored,
        run_id=run_id,
        upload_id=upload_id,
        expected=path in facts.expected,
        marker=path == facts.completion_marker,
        new_upload=new_upload,
        correlation_id=correlation_id,
    )
    try:
        await deps.ledger.commit(entry, deps)
    except (Conflict, PayloadTooLarge, NotFound):
        if moved and not entry.recorded and not entry.stored_by_other:
            await asyncio.to_thread(target.unlink, missing_ok=True)
        raise
    return stored


@dataclass
class _Entry:
    """One stored file waiting for its accounting."""

    file: StoredFile
    run_id: str
    upload_id: str
    expected: bool
    marker: bool
    new_upload: dict[str, Any] | None
    correlation_id: str | None
    previous: dict[str, Any] | None = None  # the declaration its run_files document replaced
    recorded: bool = False  # a run_files document of this upload holds the path (ours, or from a retry)
    counted: bool = False  # this entry's counters are to be added to the run
    stored_by_other: bool = False  # another upload of the same bytes holds the path
    future: asyncio.Future[None] | None = None

    def doc(self, at: datetime) -> dict[str, Any]:
        f = self.file
        return {
            "_id": _file_id(self.run_id, f.path),
            "run_id": self.run_id,
            "path": f.path,
            "state": "stored",
            "size": f.size,
            "sha256": f.sha256,
            "uri": f.uri,
            "upload_id": self.upload_id,
            "stored_at": at,
            "expected": self.expected,
        }


class Ledger:
    """Group commit of stored files: what completes while a commit is being written is written together next.

    A lone upload is accounted at once (run_files insert, one `$inc` on the run, its upload marked stored);
    parallel uploads share those writes — one insert_many, one `$inc` per run, one upload write per batch —
    so the database cost per file falls as concurrency rises. Each caller returns when its own file is
    durably accounted (or with its own error). Single-document atomic writes, no transaction: the run_files
    documents are the truth and are written before the run's counters, so the batch whose `$inc` comes
    last sees every earlier file when it counts for completeness.
    """

    def __init__(self) -> None:
        self._queue: list[_Entry] = []
        self._task: asyncio.Task[None] | None = None

    async def commit(self, entry: _Entry, deps: Ingest) -> None:
        entry.future = asyncio.get_running_loop().create_future()
        self._queue.append(entry)
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._drain(deps), name="ingest-ledger")
        await asyncio.shield(entry.future)

    async def _drain(self, deps: Ingest) -> None:
        while self._queue:
            batch, self._queue = self._queue, []
            by_run: dict[str, list[_Entry]] = {}
            for e in batch:
                by_run.setdefault(e.run_id, []).append(e)
            await asyncio.gather(*(self._settle(entries, deps) for entries in by_run.values()))

    async def _settle(self, entries: list[_Entry], deps: Ingest) -> None:
        try:
            await _account(entries, deps=deps)
        except Exception as exc:
            for e in entries:
                if e.future is not None and not e.future.done():
                    e.future.set_exception(exc)
        for e in entries:
            if e.future is not None and not e.future.done():
                e.future.set_result(None)


def _fail(e: _Entry, exc: Exception) -> None:
    if e.future is not None and not e.future.done():
        e.future.set_exception(exc)


async def _account(entries: list[_Entry], *, deps: Ingest) -> None:
    """Account a batch of one run's stored files (see `Ledger`); failures are set on each entry's future."""
    run_id = entries[0].run_id
    at = now()
    docs = [e.doc(at) for e in entries]
    taken = await deps.runs.insert_files(docs)
    for i, e in enumerate(entries):
        if i not in taken:
            e.recorded = e.counted = True
            continue
        try:  # the path had a document: a declaration to replace, or a stored file
            e.previous = await deps.runs.claim_file(docs[i])
            e.recorded = e.counted = True
        except DuplicateFile:
            existing = await deps.runs.get_file(run_id, e.file.path)
            if existing is not None and existing.get("upload_id") == e.upload_id:
                e.recorded = True  # a retried finalisation: already counted
            elif existing is not None and existing["state"] == "declared":
                _fail(e, Conflict(f"{e.file.path!r} does not match the size or sha256 declared for it"))
            else:
                e.stored_by_other = True  # with the bytes now in the store (a hard link is made once)
                _fail(e, Conflict(f"{e.file.path!r} is already stored in run {run_id!r}; files cannot be overwritten"))
    counted = [e for e in entries if e.counted]
    try:
        run = await _count(run_id, counted, at, deps=deps) if counted else None
    except Exception:  # the files must not stay recorded uncounted: a retry would find them "already stored"
        for e in counted:
            with contextlib.suppress(Exception):
                await deps.runs.unclaim_file(_file_id(run_id, e.file.path), e.previous)
            e.recorded = e.counted = False
        raise
    if run is None and counted:
        if len(counted) > 1:  # closed, or full with the whole batch: settle them one by one
            for e in counted:
                await deps.runs.unclaim_file(_file_id(run_id, e.file.path), e.previous)
                e.recorded = e.counted = False
            await asyncio.gather(*(_account([e], deps=deps) for e in counted))
            return
        e = counted[0]
        await deps.runs.unclaim_file(_file_id(run_id, e.file.path), e.previous)
        e.recorded = e.counted = False
        current = await deps.runs.get(run_id)
        if current is None:
            _fail(e, RunNotFound(f"no run {run_id!r}"))
        elif current["status"] not in OPEN:
            _remember_run(current, deps=deps)
            _fail(e, RunClosed(f"run {run_id!r} is {current['status']}; it accepts no more files"))
        else:
            _fail(e, _run_full(run_id, e.file.size, deps=deps))
        return
    done = [e for e in entries if e.recorded]
    new = [{**e.new_upload, "uri": e.file.uri} for e in done if e.new_upload is not None]
    old = [e.upload_id for e in done if e.new_upload is None]
    writes = []
    if new:
        writes.append(deps.uploads.insert_many(new))
    if old:
        writes.append(deps.uploads.mark_stored(old, {"state": UploadState.STORED.value, "updated_at": at}))
    await asyncio.gather(*writes)
    if run is not None and run["marker_stored"] > 0:
        await _complete_if_whole(run, correlation_id=done[-1].correlation_id if done else None, deps=deps)


async def _count(run_id: str, counted: list[_Entry], at: datetime, *, deps: Ingest) -> dict[str, Any] | None:
    inc = {
        "files_received": len(counted),
        "bytes_received": sum(e.file.size for e in counted),
        "expected_stored": sum(e.expected for e in counted),
        "declared_pending": -sum(e.previous is not None for e in counted),
        "marker_stored": sum(e.marker for e in counted),
        "bytes_reserved": sum(e.file.size for e in counted if e.new_upload is not None),
    }
    set_: dict[str, Any] = {"updated_at": at, "last_activity_at": at, "status": RunStatus.UPLOADING.value}
    for e in counted:
        if manifest.is_sample_sheet(e.file.path):
            set_["sample_sheet_uri"] = e.file.uri
    run = await deps.runs.account(run_id, inc, set_, open_statuses=OPEN, max_bytes=deps.limits.max_run_bytes)
    if run is not None:
        _remember_run(run, deps=deps)
    return run


async def _complete_if_whole(run: dict[str, Any], *, correlation_id: str | None, deps: Ingest) -> None:
    """Once the completion marker is in, count the run's files; when whole, publish RunUploaded exactly once."""
    if run["status"] not in OPEN or run["marker_stored"] <= 0:
        return
    expected_stored, declared_pending = await deps.runs.count_progress(run["_id"])
    progress = manifest.Progress(run["expected_total"], expected_stored, declared_pending, marker_stored=True)
    if not progress.complete:
        return

    async def _publish(session: Any) -> None:
        await _complete_run(run, correlation_id=correlation_id, session=session, deps=deps)

    await in_transaction(deps.outbox, _publish)
    deps.run_facts.pop(run["_id"], None)


Placed = tuple[bool, Path]
"""What `place_file` did: (True, target) if it put the bytes there, (False, target) if they already were."""


def place_file(deps: Ingest, run_id: str, path: str, source: Path, size: int, sha256: str) -> Placed:
    """Move a part file into the run folder without ever replacing a stored file (a hard link fails if the target
    exists). Blocking: run it in a thread (the upload's writer calls it right after its fsync). (True, target) if
    this call put the bytes there; (False, target) if the same bytes already were (a retried finalisation).

    Raises:
        Conflict: another file is stored under that path.
        NotFound: the part file is gone and the target does not hold it.
    """
    target = deps.files.path(file_key(run_id, path))
    try:
        _link_new(source, target)
    except FileExistsError:
        if target.stat().st_size == size and file_digest(target, "sha256") == sha256:
            source.unlink(missing_ok=True)
            return False, target
        raise Conflict(f"{path!r} is already stored in run {run_id!r}; files cannot be overwritten") from None
    except FileNotFoundError:
        if source.exists():
            raise
        if target.exists() and target.stat().st_size == size:
            return False, target  # moved by an earlier attempt that died before accounting
        raise NotFound(f"the data of the upload of {path!r} is gone") from None
    source.unlink()
    return True, target


def _link_new(source: Path, target: Path) -> None:
    """Hard-link `source` as `target` (FileExistsError if it exists), creating the folder on first use; across
    filesystems, copy beside the target first."""
    try:
        os.link(source, target)
        return
    except FileNotFoundError:
        if not source.exists():
            raise
        target.parent.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise
    except OSError:  # no hard links between these folders: copy beside the target, then link that
        tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.moving")
        shutil.copyfile(source, tmp)
        try:
            os.link(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)
        return
    _link_new(source, target)


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
