"""RNAget use cases: metadata lookups, slice planning and streaming, imports and withdrawals.

Handlers (api.py) and consumers (consumers.py) call these with explicit dependencies. Raises the
domain errors of libs.common.errors; imports neither aiohttp nor pymongo (the store and the outbox
are passed in). Matrix work (h5py) runs in worker threads via ``asyncio.to_thread``.
"""

from __future__ import annotations

import asyncio
import gzip
import logging
import re
import shutil
import threading
import uuid
from collections import OrderedDict
from collections.abc import Generator, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from libs.common.errors import BadRequest, Forbidden, NotFound, Unauthorized

from . import formats
from .matrix import MatrixFile, MatrixFormatError, MatrixSource, Selection
from .merge import MergedMatrix, MergeError, merge
from .models import FilterInfo, Kind, MatrixFormat, MatrixRecord, Project, Study
from .params import Params
from .slicing import select

if TYPE_CHECKING:
    from libs.common.outbox import Outbox

    from .store import MetadataStore

log = logging.getLogger(__name__)
PUBLIC = "PUBLIC"
READ_SCOPE = "rnaget:read"
ADMIN_SCOPE = "rnaget:admin"


# -- access --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Access:
    """What the caller may see: public matrices always; others with the rnaget:read scope."""

    authenticated: bool
    can_read: bool

    @property
    def levels(self) -> tuple[str, ...]:
        return ("PUBLIC", "REGISTERED", "CONTROLLED") if self.can_read else (PUBLIC,)

    def check(self, record: MatrixRecord) -> None:
        if record.access_level == PUBLIC or self.can_read:
            return
        if not self.authenticated:
            raise Unauthorized(f"{record.kind.value} {record.id} needs a bearer token with scope {READ_SCOPE}")
        raise Forbidden(f"the token lacks the scope {READ_SCOPE} needed for {record.kind.value} {record.id}")


# -- projects and studies -----------------------------------------------------------------------


async def get_project(project_id: str, *, store: MetadataStore) -> Project:
    project = await store.get_project(project_id)
    if project is None:
        raise NotFound(f"project {project_id!r} not found")
    return project


async def get_study(study_id: str, *, store: MetadataStore) -> Study:
    study = await store.get_study(study_id)
    if study is None:
        raise NotFound(f"study {study_id!r} not found")
    return study


_METADATA_FILTERS: dict[str, tuple[tuple[str, str, str], ...]] = {
    # collection → (filter name, stored field, description) of each string filter its /filters route lists
    "projects": (
        ("version", "version", "version to match"),
        ("name", "name", "project name to match"),
    ),
    "studies": (
        ("version", "version", "version to match"),
        ("name", "name", "study name to match"),
        ("projectID", "parentProjectID", "ID of the parent project"),
    ),
}


async def metadata_filters(collection: str, *, store: MetadataStore) -> list[FilterInfo]:
    """The filters of `/projects/filters` or `/studies/filters`, each with the values stored now."""
    return [
        FilterInfo(
            filter=name, fieldType="string", description=description, values=await store.distinct(collection, field)
        )
        for name, field, description in _METADATA_FILTERS[collection]
    ]


_FEATURE_FILTERS = [
    FilterInfo(filter="featureIDList", fieldType="string", description="comma separated feature IDs", values=[]),
    FilterInfo(filter="featureNameList", fieldType="string", description="comma separated feature names", values=[]),
    FilterInfo(
        filter="minExpression",
        fieldType="threshold array",
        description='JSON array of {"threshold", "featureID"|"featureName"}: samples at or above',
        values=[],
    ),
    FilterInfo(
        filter="maxExpression",
        fieldType="threshold array",
        description='JSON array of {"threshold", "featureID"|"featureName"}: samples at or below',
        values=[],
    ),
    FilterInfo(
        filter="feature_min_value",
        fieldType="float",
        description="features with a value at or above this in a selected sample",
        values=[],
    ),
    FilterInfo(
        filter="feature_max_value",
        fieldType="float",
        description="features with a value at or below this in a selected sample",
        values=[],
    ),
]


async def matrix_filters(kind: Kind, axis: str | None, *, store: MetadataStore) -> list[FilterInfo]:
    if axis not in (None, "", "feature", "sample"):
        raise BadRequest(f"type must be 'feature' or 'sample', got {axis!r}")
    query = {"kind": kind.value}
    sample = [
        FilterInfo(
            filter="version",
            fieldType="string",
            description="version to match",
            values=await store.distinct("matrices", "version", query),
        ),
        FilterInfo(
            filter="studyID",
            fieldType="string",
            description="ID of the parent study",
            values=await store.distinct("matrices", "studyID", query),
        ),
        FilterInfo(
            filter="projectID",
            fieldType="string",
            description="ID of the parent project",
            values=await store.distinct("matrices", "projectID", query),
        ),
        FilterInfo(filter="sampleIDList", fieldType="string", description="comma separated sample IDs", values=[]),
    ]
    if kind is Kind.CONTINUOUS:
        sample += [
            FilterInfo(filter=n, fieldType=t, description=d, values=[])
            for n, t, d in (
                ("chr", "string", "reference name, e.g. chr1"),
                ("start", "uint32", "0-based inclusive start (needs chr)"),
                ("end", "uint32", "0-based exclusive end (needs chr)"),
            )
        ]
        return sample
    if axis == "sample":
        return sample
    if axis == "feature":
        return list(_FEATURE_FILTERS)
    return sample + _FEATURE_FILTERS


# -- matrices -------------------------------------------------------------------------------------


async def get_matrix(kind: Kind, matrix_id: str, *, store: MetadataStore, access: Access) -> MatrixRecord:
    record = await store.get_matrix(kind, matrix_id)
    if record is None:
        raise NotFound(f"{kind.value} {matrix_id!r} not found")
    access.check(record)
    return record


async def find_matrices(kind: Kind, params: Params, *, store: MetadataStore, access: Access) -> list[MatrixRecord]:
    return await store.find_matrices(kind, params.filters, access.levels)


async def find_for_download(
    kind: Kind, params: Params, *, store: MetadataStore, access: Access, max_matrices: int
) -> list[MatrixRecord]:
    """The matrices the 1.0.0 multi routes (/expressions/ticket, /bytes) return as one (merged) file.

    One file has one ``units`` (the ticket's required field), so matrices in different units are not
    merged: 400 naming them (``units=`` picks one). More than ``max_matrices`` (the open-file limit) → 400.
    """
    records = await find_matrices(kind, params, store=store, access=access)
    if not records:
        raise NotFound(f"no {kind.value} matrix matches the filters")
    units = sorted({r.units for r in records})
    if len(units) > 1:
        by_units = "; ".join(f"{u}: {', '.join(r.id for r in records if r.units == u)}" for u in units)
        raise BadRequest(
            f"{len(records)} {kind.value} matrices match in different units ({by_units}); one file has one unit: "
            "add units=… (or studyID, version) to the filters"
        )
    if len(records) > max_matrices:
        ids = ", ".join(r.id for r in records[:10])
        raise BadRequest(
            f"{len(records)} {kind.value} matrices match ({ids}, …); at most {max_matrices} are merged into one "
            "file: narrow with studyID, projectID or version"
        )
    return records


def common_value(records: list[MatrixRecord], field: str) -> str | None:
    """A ticket field of a merged download: the records' value if they agree, else none."""
    values = {getattr(r, field) for r in records}
    return values.pop() if len(values) == 1 else None


def _route(kind: Kind) -> str:
    return "expressions" if kind is Kind.EXPRESSION else "continuous"


class MatrixFiles:
    """Open matrix files (labels and id maps in memory), least recently used dropped first."""

    def __init__(self, root: Path, capacity: int = 16) -> None:
        self.root = root
        self.capacity = capacity
        self._open: OrderedDict[Path, MatrixFile] = OrderedDict()
        self._lock = threading.Lock()

    def path(self, record: MatrixRecord) -> Path:
        return self.root / record.file

    def get(self, record: MatrixRecord) -> MatrixFile:
        path = self.path(record)
        with self._lock:
            mf = self._open.get(path)
            if mf is not None:
                self._open.move_to_end(path)
                return mf
            mf = MatrixFile.open(path)
            self._open[path] = mf
            while len(self._open) > self.capacity:
                # not closed here: a download may still be streaming from it (h5py's close would pull the
                # file from under it); h5py closes the file when the last reference goes
                self._open.popitem(last=False)
            return mf

    def forget(self, path: Path) -> None:
        with self._lock:
            mf = self._open.pop(path, None)
            if mf is not None:
                mf.close()

    def close(self) -> None:
        with self._lock:
            for mf in self._open.values():
                mf.close()
            self._open.clear()


@dataclass
class Download:
    """A planned matrix download: what to send and a generator that produces it."""

    name: str
    format: MatrixFormat
    rows: int
    cols: int
    chunks: Generator[bytes, None, None]

    @property
    def filename(self) -> str:
        return f"{self.name}.{self.format.value}"


async def plan_download(
    record: MatrixRecord,
    params: Params,
    fmt: MatrixFormat,
    *,
    files: MatrixFiles,
    tmp_dir: Path,
    max_cells: int,
) -> Download:
    """Resolve the slice (in a thread), refuse it if too large, and prepare the byte stream."""
    mf, sel = await asyncio.to_thread(_resolve, files, record, params)
    _check_size(record.kind, sel, max_cells)
    comments = [f"seqhub RNAget {record.kind.value} {record.id}", f"units: {record.units}"]
    chunks = _chunks(mf, sel, fmt, tmp_dir, comments)
    return Download(record.id, fmt, int(sel.rows.size), int(sel.cols.size), chunks)


def _resolve(files: MatrixFiles, record: MatrixRecord, params: Params) -> tuple[MatrixFile, Selection]:
    mf = files.get(record)
    return mf, select(mf, params.slice)


async def plan_merged_download(
    records: list[MatrixRecord],
    params: Params,
    fmt: MatrixFormat,
    *,
    files: MatrixFiles,
    tmp_dir: Path,
    max_cells: int,
) -> Download:
    """Several matching matrices as one file (merge.py: samples concatenated, features united, NaN elsewhere)."""
    merged = await asyncio.to_thread(_resolve_merged, files, records, params)
    sel = merged.selection()
    _check_size(records[0].kind, sel, max_cells)
    head = records[0]
    comments = [
        f"seqhub RNAget {head.kind.value} merged from {', '.join(merged.sources) or 'no matrix with data'}",
        f"units: {head.units}",
    ]
    chunks = _chunks(merged, sel, fmt, tmp_dir, comments)
    name = re.sub(r"[^A-Za-z0-9._~-]", "_", f"{common_value(records, 'studyID') or _route(head.kind)}-merged")
    return Download(name, fmt, int(sel.rows.size), int(sel.cols.size), chunks)


async def check_merge(records: list[MatrixRecord], params: Params, *, files: MatrixFiles, max_cells: int) -> None:
    """A merged ticket fails for the reasons its download would (a sample in two matrices, too large)."""
    merged = await asyncio.to_thread(_resolve_merged, files, records, params)
    _check_size(records[0].kind, merged.selection(), max_cells)


def _resolve_merged(files: MatrixFiles, records: list[MatrixRecord], params: Params) -> MergedMatrix:
    slices = [_resolve(files, r, params) for r in records]
    try:
        return merge([r.id for r in records], slices)
    except MergeError as e:
        raise BadRequest(str(e)) from None


def _check_size(kind: Kind, sel: Selection, max_cells: int) -> None:
    if sel.cells > max_cells:
        what = "features x samples" if kind is Kind.EXPRESSION else "tracks x positions"
        raise BadRequest(
            f"the slice has {sel.rows.size} x {sel.cols.size} = {sel.cells} cells ({what}), above "
            f"this server's limit of {max_cells}; narrow it with featureIDList, featureNameList, "
            "sampleIDList, thresholds or a chr/start/end range"
        )


def _chunks(
    source: MatrixSource, sel: Selection, fmt: MatrixFormat, tmp_dir: Path, comments: list[str]
) -> Generator[bytes, None, None]:
    if fmt is MatrixFormat.TSV:
        return formats.tsv_chunks(source, sel, comments=comments)
    return _loom_chunks(source, sel, tmp_dir)


def _loom_chunks(mf: MatrixSource, sel: Selection, tmp_dir: Path) -> Generator[bytes, None, None]:
    tmp_dir.mkdir(parents=True, exist_ok=True)
    path = tmp_dir / f"{uuid.uuid4().hex}.loom"
    try:
        formats.write_loom(mf, sel, path)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    yield from formats.file_chunks(path, delete=True)


async def next_chunk(chunks: Iterator[bytes]) -> bytes | None:
    """The next chunk of a download, produced in a worker thread (h5py and formatting block)."""
    return await asyncio.to_thread(next, chunks, None)


# -- imports and withdrawals ----------------------------------------------------------------------


@dataclass(frozen=True)
class ImportRequest:
    matrix_id: str
    kind: Kind
    format: MatrixFormat
    units: str
    study_id: str | None = None
    project_id: str | None = None
    version: str | None = None
    name: str | None = None
    description: str | None = None
    tags: tuple[str, ...] | None = None
    analysis_accession: str | None = None
    access_level: str = PUBLIC


def matrix_file_name(matrix_id: str) -> str:
    return f"matrices/{matrix_id}.{uuid.uuid4().hex[:8]}.h5"


def convert(src: Path, fmt: MatrixFormat, kind: Kind, dest: Path) -> tuple[int, int]:
    """Import a TSV (optionally gzipped) or loom file into the matrix store (sync; run in a thread)."""
    try:
        if fmt is MatrixFormat.LOOM:
            return formats.import_loom(src, dest, kind=kind.value)
        with _open_text(src) as f:
            return formats.import_tsv(f, dest, kind=kind.value, source=src.name)
    except MatrixFormatError as e:
        raise BadRequest(f"cannot import {src.name}: {e}") from None
    except (OSError, EOFError, gzip.BadGzipFile) as e:
        raise BadRequest(f"cannot read {src.name}: {e}") from None


def _open_text(src: Path) -> IO[bytes]:
    with src.open("rb") as probe:
        magic = probe.read(2)
    if magic == b"\x1f\x8b":
        return gzip.open(src, "rb")  # type: ignore[return-value]
    return src.open("rb")


async def import_matrix(
    src: Path, req: ImportRequest, *, store: MetadataStore, files: MatrixFiles, outbox: Outbox | None = None
) -> MatrixRecord:
    """Convert ``src`` into a new matrix file, then point the record at it (and announce it, atomically)."""
    if req.study_id:
        study = await store.ensure_study(req.study_id)
        project_id = req.project_id or study.parentProjectID
    else:
        project_id = req.project_id
    rel = matrix_file_name(req.matrix_id)
    dest = files.root / rel
    rows, cols = await asyncio.to_thread(convert, src, req.format, req.kind, dest)
    record = MatrixRecord(
        id=req.matrix_id,
        kind=req.kind,
        version=req.version,
        tags=list(req.tags) if req.tags else None,
        name=req.name,
        description=req.description,
        studyID=req.study_id,
        projectID=project_id,
        units=req.units,
        file=rel,
        rows=rows,
        cols=cols,
        analysis_accession=req.analysis_accession,
        access_level=req.access_level,
        created_at=datetime.now(UTC),
    )
    previous = await store.get_matrix(req.kind, req.matrix_id)
    try:
        await _save(record, store=store, outbox=outbox)
    except BaseException:
        dest.unlink(missing_ok=True)
        raise
    if previous is not None and previous.file != record.file:
        await asyncio.to_thread(_remove, files, files.root / previous.file)
    return record


async def _save(record: MatrixRecord, *, store: MetadataStore, outbox: Outbox | None) -> None:
    if outbox is None or record.kind is not Kind.EXPRESSION:
        await store.put_matrix(record)
        return
    from libs.common.events import ExpressionIndexed, ExpressionIndexedData

    event = ExpressionIndexed(
        data=ExpressionIndexedData(
            expression_id=record.id,
            analysis_accession=record.analysis_accession,
            study_id=record.studyID,
            features=record.rows,
            samples=record.cols,
            units=record.units,
        )
    )
    async with outbox.transaction() as session:
        await store.put_matrix(record, session=session)
        await outbox.add(event, session=session)


async def delete_matrix(record: MatrixRecord, *, store: MetadataStore, files: MatrixFiles) -> None:
    await store.delete_matrix(record.id)
    await asyncio.to_thread(_remove, files, files.root / record.file)


def _remove(files: MatrixFiles, path: Path) -> None:
    files.forget(path)
    path.unlink(missing_ok=True)


async def withdraw_analysis(accession: str, *, store: MetadataStore, files: MatrixFiles) -> int:
    """AnalysisWithdrawn: its matrices disappear from every route. Idempotent."""
    records = await store.matrices_of_analysis(accession)
    for record in records:
        await delete_matrix(record, store=store, files=files)
    return len(records)


def pick_matrix_file(paths: Mapping[str, Any], declared: str | None) -> tuple[str, MatrixFormat] | None:
    """The expression matrix among an analysis's files: declared format first, else by extension."""
    for path in paths:
        lower = path.lower()
        if lower.endswith(".loom") and declared in (None, "loom"):
            return path, MatrixFormat.LOOM
        if lower.endswith((".tsv", ".tsv.gz", ".txt", ".txt.gz")) and declared in (None, "tsv"):
            return path, MatrixFormat.TSV
    return None


def copy_stream(src: IO[bytes], dest: Path) -> int:
    with dest.open("wb") as out:
        shutil.copyfileobj(src, out, 1 << 20)
    return dest.stat().st_size
