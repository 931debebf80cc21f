"""The beacon's own variant index: columnar numpy arrays per dataset version and chromosome.

Layout under the index root (``data_root/beacon/index``)::

    <dataset_id>/CURRENT                 name of the live version (replaced atomically)
    <dataset_id>/<version>/manifest.json counts, chromosomes, build facts
    <dataset_id>/<version>/<chrom>.<column>.npy   one file per column, memory-mapped by readers
    <dataset_id>/<version>/<chrom>.side.json      alleles that do not fit a packed key

Rows are one ALT allele each (multi-allelic records split), sorted by start.  Columns and bytes per
row: start int32 (4), end int32 (4), ref uint32 (4), alt uint64 (8), ac/an/sc uint32 (12), af float32
(4), vtype uint8 (1), mate uint8 (1) = 38 bytes.  A version is built in a hidden temporary directory,
renamed into place, and only then does CURRENT point at it, so a reader never sees a half-built
dataset.  Blocking code: callers run ``build_version`` in a thread or process.  No aiohttp, no pymongo.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import time
from array import array
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from .alleles import (
    ALT_CODEC,
    CHROMOSOME_CODE,
    CHROMOSOMES,
    NO_MATE,
    REF_CODEC,
    VARIANT_TYPE_CODE,
    VARIANT_TYPES,
)
from .vcf import AlleleRow, VcfSummary, read_alleles
from .vcf_fast import FastBatch

MISSING: Final = np.uint32(0xFFFFFFFF)
COLUMNS: Final[dict[str, type[np.generic]]] = {
    "start": np.int32,
    "end": np.int32,
    "ref": np.uint32,
    "alt": np.uint64,
    "ac": np.uint32,
    "an": np.uint32,
    "sc": np.uint32,
    "af": np.float32,
    "vtype": np.uint8,
    "mate": np.uint8,
}
BYTES_PER_ROW: Final = sum(np.dtype(t).itemsize for t in COLUMNS.values())
DATASET_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")
_MAX_POS: Final = 2**31 - 1


class IndexError_(ValueError):
    """A dataset cannot be indexed (bad id, unreadable or empty file)."""


@dataclass
class _ChromBuffer:
    start: array[int] = field(default_factory=lambda: array("q"))
    end: array[int] = field(default_factory=lambda: array("q"))
    ref: array[int] = field(default_factory=lambda: array("Q"))
    alt: array[int] = field(default_factory=lambda: array("Q"))
    ac: array[int] = field(default_factory=lambda: array("Q"))
    an: array[int] = field(default_factory=lambda: array("Q"))
    sc: array[int] = field(default_factory=lambda: array("Q"))
    af: array[float] = field(default_factory=lambda: array("d"))
    vtype: array[int] = field(default_factory=lambda: array("B"))
    mate: array[int] = field(default_factory=lambda: array("B"))
    batches: list[FastBatch] = field(default_factory=list)
    side_ref: list[str] = field(default_factory=list)
    side_alt: list[str] = field(default_factory=list)
    _side_ref_ix: dict[str, int] = field(default_factory=dict)
    _side_alt_ix: dict[str, int] = field(default_factory=dict)

    def add(self, row: AlleleRow) -> None:
        self.start.append(min(row.start, _MAX_POS))
        self.end.append(min(max(row.end, 0), _MAX_POS))
        self.ref.append(_key(REF_CODEC.pack(row.ref), row.ref, self.side_ref, self._side_ref_ix, REF_CODEC.side_key))
        self.alt.append(_key(ALT_CODEC.pack(row.alt), row.alt, self.side_alt, self._side_alt_ix, ALT_CODEC.side_key))
        self.ac.append(_count(row.ac))
        self.an.append(_count(row.an))
        self.sc.append(_count(row.samples_with_allele))
        self.af.append(row.af if row.af is not None else float("nan"))
        self.vtype.append(VARIANT_TYPE_CODE[row.variant_type])
        self.mate.append(CHROMOSOME_CODE[row.mate] if row.mate is not None else NO_MATE)

    def __len__(self) -> int:
        return len(self.start) + sum(int(b.start.size) for b in self.batches)

    def column(self, name: str, dtype: type[np.generic]) -> npt.NDArray[Any]:
        raw = getattr(self, name)
        parts = [np.frombuffer(raw, dtype=_ARRAY_DTYPES[raw.typecode]).astype(dtype)]
        parts += [_batch_column(b, name).astype(dtype) for b in self.batches]
        return np.concatenate(parts) if len(parts) > 1 else parts[0]


def _batch_column(b: FastBatch, name: str) -> npt.NDArray[Any]:
    n = b.start.size
    if name in ("start", "end", "ref", "alt", "vtype"):
        column: npt.NDArray[Any] = getattr(b, name)
        return column
    if name in ("ac", "an"):
        return np.minimum(b.ac if name == "ac" else b.an, int(MISSING) - 1)
    if name == "af":
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(b.an > 0, b.ac / np.maximum(b.an, 1), np.nan)
    if name == "sc":
        return np.full(n, MISSING, dtype=np.uint32)
    return np.full(n, NO_MATE, dtype=np.uint8)  # mate


def _key(packed: int | None, allele: str, side: list[str], ix: dict[str, int], side_key: Any) -> int:
    if packed is not None:
        return packed
    pos = ix.get(allele)
    if pos is None:
        pos = ix[allele] = len(side)
        side.append(allele)
    return int(side_key(pos))


def _count(value: int | None) -> int:
    if value is None or value < 0:
        return int(MISSING)
    return min(value, int(MISSING) - 1)


@dataclass(frozen=True)
class BuildResult:
    dataset_id: str
    version: str
    path: Path
    samples: int
    records: int
    alleles: int
    skipped_contigs: int
    chromosomes: dict[str, int]
    bytes_on_disk: int
    seconds: float

    def manifest(self) -> dict[str, Any]:
        return {
            "datasetId": self.dataset_id,
            "version": self.version,
            "samples": self.samples,
            "records": self.records,
            "alleles": self.alleles,
            "skippedContigs": self.skipped_contigs,
            "chromosomes": self.chromosomes,
            "bytesOnDisk": self.bytes_on_disk,
            "seconds": round(self.seconds, 3),
        }


def check_dataset_id(dataset_id: str) -> None:
    if not DATASET_ID.fullmatch(dataset_id):
        raise IndexError_(f"dataset id {dataset_id!r} must match {DATASET_ID.pattern}")


def build_version(root: Path, dataset_id: str, vcf: Path, *, activate: bool = True) -> BuildResult:
    """Index ``vcf`` as a new version of ``dataset_id``; with ``activate`` also make it the live one.

    The service passes ``activate=False`` and calls ``set_current`` only after the metadata naming the new
    version is committed, so the pointer on disk never runs ahead of MongoDB.
    """
    check_dataset_id(dataset_id)
    t0 = time.perf_counter()
    summary = VcfSummary()
    buffers = _collect(read_alleles(vcf, summary))
    if summary.records == 0:
        raise IndexError_(f"{vcf.name}: no variant records")
    version = f"v{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}-{secrets.token_hex(4)}"
    ds_dir = root / dataset_id
    ds_dir.mkdir(parents=True, exist_ok=True)
    tmp = ds_dir / f".tmp-{version}"
    tmp.mkdir()
    try:
        chromosomes = {chrom: _write_chrom(tmp, chrom, buf) for chrom, buf in buffers.items()}
        size = sum(p.stat().st_size for p in tmp.iterdir())
        result = BuildResult(
            dataset_id=dataset_id,
            version=version,
            path=ds_dir / version,
            samples=summary.samples,
            records=summary.records,
            alleles=summary.alleles,
            skipped_contigs=summary.skipped_contigs,
            chromosomes=chromosomes,
            bytes_on_disk=size,
            seconds=time.perf_counter() - t0,
        )
        _write_json(tmp / "manifest.json", result.manifest())
        os.replace(tmp, result.path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if activate:
        set_current(root, dataset_id, version)
    return result


def _collect(rows: Iterable[AlleleRow | FastBatch]) -> dict[str, _ChromBuffer]:
    buffers: dict[str, _ChromBuffer] = {}
    for row in rows:
        buf = buffers.get(row.chrom)
        if buf is None:
            buf = buffers[row.chrom] = _ChromBuffer()
        if isinstance(row, FastBatch):
            buf.batches.append(row)
        else:
            buf.add(row)
    return buffers


def _write_chrom(directory: Path, chrom: str, buf: _ChromBuffer) -> int:
    starts = buf.column("start", np.int32)
    order = None if bool((starts[1:] >= starts[:-1]).all()) else np.argsort(starts, kind="stable")
    for name, dtype in COLUMNS.items():
        values = starts if name == "start" else buf.column(name, dtype)
        np.save(directory / f"{chrom}.{name}.npy", values if order is None else values[order])
    _write_json(directory / f"{chrom}.side.json", {"ref": buf.side_ref, "alt": buf.side_alt})
    return len(buf)


_ARRAY_DTYPES: Final = {"q": np.int64, "Q": np.uint64, "d": np.float64, "B": np.uint8}


def _write_json(path: Path, payload: Any) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(payload))
    os.replace(tmp, path)


def set_current(root: Path, dataset_id: str, version: str) -> None:
    """Atomically point the dataset at ``version`` and drop versions no longer live."""
    ds_dir = root / dataset_id
    pointer = ds_dir / ".CURRENT.tmp"
    pointer.write_text(version)
    os.replace(pointer, ds_dir / "CURRENT")
    for old in ds_dir.iterdir():
        # Readers that still map an old version keep their open mappings (POSIX unlink semantics).
        if old.is_dir() and old.name != version and not old.name.startswith(".tmp-"):
            shutil.rmtree(old, ignore_errors=True)


def current_version(root: Path, dataset_id: str) -> str | None:
    try:
        return (root / dataset_id / "CURRENT").read_text().strip() or None
    except FileNotFoundError:
        return None


def remove_dataset(root: Path, dataset_id: str) -> None:
    check_dataset_id(dataset_id)
    shutil.rmtree(root / dataset_id, ignore_errors=True)


@dataclass(frozen=True)
class ChromColumns:
    start: npt.NDArray[np.int32]
    end: npt.NDArray[np.int32]
    ref: npt.NDArray[np.uint32]
    alt: npt.NDArray[np.uint64]
    ac: npt.NDArray[np.uint32]
    an: npt.NDArray[np.uint32]
    sc: npt.NDArray[np.uint32]
    af: npt.NDArray[np.float32]
    vtype: npt.NDArray[np.uint8]
    mate: npt.NDArray[np.uint8]
    side_ref: list[str]
    side_alt: list[str]

    def __len__(self) -> int:
        return int(self.start.shape[0])


@dataclass(frozen=True)
class DatasetIndex:
    """One live, immutable, memory-mapped version of a dataset."""

    dataset_id: str
    version: str
    manifest: dict[str, Any]
    chromosomes: dict[str, ChromColumns]

    @property
    def rows(self) -> int:
        return sum(len(c) for c in self.chromosomes.values())


def open_version(root: Path, dataset_id: str, version: str) -> DatasetIndex:
    directory = root / dataset_id / version
    manifest = json.loads((directory / "manifest.json").read_text())
    chromosomes = {}
    for chrom in manifest["chromosomes"]:
        if chrom not in CHROMOSOME_CODE:
            continue
        # Plain ndarray views of the mappings: the np.memmap subclass adds Python overhead to every slice.
        arrays = {name: np.load(directory / f"{chrom}.{name}.npy", mmap_mode="r").view(np.ndarray) for name in COLUMNS}
        side = json.loads((directory / f"{chrom}.side.json").read_text())
        chromosomes[chrom] = ChromColumns(**arrays, side_ref=side["ref"], side_alt=side["alt"])
    return DatasetIndex(dataset_id=dataset_id, version=version, manifest=manifest, chromosomes=chromosomes)


__all__ = [
    "BYTES_PER_ROW",
    "CHROMOSOMES",
    "VARIANT_TYPES",
    "BuildResult",
    "ChromColumns",
    "DatasetIndex",
    "IndexError_",
    "build_version",
    "current_version",
    "open_version",
    "remove_dataset",
    "set_current",
]
