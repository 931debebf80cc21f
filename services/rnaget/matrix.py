"""The RNAget matrix store: one HDF5 file per matrix, readable fast along both axes.

A stored matrix is ``rows x cols`` float32 (expression: features x samples; continuous: tracks x
genomic positions), NaN = not measured. The file holds the values twice:

- ``/by_row``  rows x cols, chunks (4, 4096) — a few named rows x all columns touches few chunks;
- ``/by_col``  cols x rows (the transpose), same chunk shape — all rows x a few columns likewise.

Both are written in one pass (blocks of 4,096 rows fill whole chunks of both datasets), and the
reader picks the dataset whose chunks the selection touches least. The 2x disk cost buys the
"100 features x all samples" and "all features x 100 samples" queries the same speed (see
docs/rnaget.md for the benchmark that decided it). ``/row_attrs/*`` and ``/col_attrs/*`` hold the
labels (UTF-8), ``/stats`` the NaN-ignoring per-row and per-column min/max that answer unsliced
threshold questions without a scan.

Pure numpy/h5py: no aiohttp, no pymongo. Synchronous; callers run it in a worker thread.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol

import h5py
import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float32]
IndexArray = npt.NDArray[np.intp]

CHUNK_ROWS = 4
CHUNK_COLS = 4096
BLOCK_ROWS = CHUNK_COLS  # rows per write block: fills whole chunks of /by_row and /by_col
FORMAT_VERSION = "seqhub-matrix-1"
_READ_CELLS = 1 << 22  # values per read from /by_col (16 MB of float32)
_STR = h5py.string_dtype("utf-8")


class MatrixFormatError(ValueError):
    """The input cannot become a matrix (ragged rows, bad numbers, duplicate ids...)."""


def _chunks(n_rows: int, n_cols: int) -> tuple[int, int]:
    return (max(1, min(CHUNK_ROWS, n_rows)), max(1, min(CHUNK_COLS, n_cols)))


class MatrixWriter:
    """Builds a matrix file from row blocks; the file appears (atomic rename) only on ``close``."""

    def __init__(self, path: Path, *, kind: str, col_attrs: Mapping[str, Sequence[str]]) -> None:
        if not col_attrs:
            raise MatrixFormatError("a matrix needs at least one column label")
        lengths = {len(v) for v in col_attrs.values()}
        if len(lengths) != 1 or 0 in lengths:
            raise MatrixFormatError("column attributes must be non-empty and of equal length")
        self.path = path
        self.n_cols = lengths.pop()
        self._tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        path.parent.mkdir(parents=True, exist_ok=True)
        self._h5 = h5py.File(self._tmp, "w")
        self._h5.attrs["format"] = FORMAT_VERSION
        self._h5.attrs["kind"] = kind
        self._col_attrs = {k: list(v) for k, v in col_attrs.items()}
        self._row_attrs: dict[str, list[str]] = {}
        self._pending: list[FloatArray] = []
        self._pending_rows = 0
        self._n_rows = 0
        self._row_min: list[FloatArray] = []
        self._row_max: list[FloatArray] = []
        self._col_min = np.full(self.n_cols, np.nan, np.float32)
        self._col_max = np.full(self.n_cols, np.nan, np.float32)
        self._by_row: Any = None
        self._by_col: Any = None
        self._closed = False

    def __enter__(self) -> MatrixWriter:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    def append(self, values: npt.ArrayLike, row_attrs: Mapping[str, Sequence[str]]) -> None:
        block = np.asarray(values, dtype=np.float32)
        if block.ndim != 2 or block.shape[1] != self.n_cols:
            raise MatrixFormatError(f"row block has shape {block.shape}, expected (n, {self.n_cols})")
        if not self._row_attrs:
            self._row_attrs = {k: [] for k in row_attrs}
        if set(row_attrs) != set(self._row_attrs):
            raise MatrixFormatError("every row block must carry the same row attributes")
        for name, labels in row_attrs.items():
            if len(labels) != block.shape[0]:
                raise MatrixFormatError(f"row attribute {name!r} has {len(labels)} values for {block.shape[0]} rows")
            self._row_attrs[name].extend(labels)
        self._pending.append(block)
        self._pending_rows += block.shape[0]
        while self._pending_rows >= BLOCK_ROWS:
            self._flush(BLOCK_ROWS)

    def _flush(self, n: int) -> None:
        merged = np.concatenate(self._pending) if len(self._pending) > 1 else self._pending[0]
        block, rest = merged[:n], merged[n:]
        self._pending = [rest] if rest.shape[0] else []
        self._pending_rows = rest.shape[0]
        if self._by_row is None:
            self._create_datasets()
        r0, r1 = self._n_rows, self._n_rows + block.shape[0]
        self._by_row.resize(r1, axis=0)
        self._by_col.resize(r1, axis=1)
        self._by_row[r0:r1] = block
        self._by_col[:, r0:r1] = block.T
        self._n_rows = r1
        self._row_min.append(np.fmin.reduce(block, axis=1))
        self._row_max.append(np.fmax.reduce(block, axis=1))
        self._col_min = np.fmin(self._col_min, np.fmin.reduce(block, axis=0))
        self._col_max = np.fmax(self._col_max, np.fmax.reduce(block, axis=0))

    def _create_datasets(self) -> None:
        rc, cc = _chunks(BLOCK_ROWS, self.n_cols)
        self._by_row = self._h5.create_dataset(
            "by_row",
            shape=(0, self.n_cols),
            maxshape=(None, self.n_cols),
            dtype=np.float32,
            chunks=(rc, cc),
            fillvalue=np.nan,
        )
        self._by_col = self._h5.create_dataset(
            "by_col",
            shape=(self.n_cols, 0),
            maxshape=(self.n_cols, None),
            dtype=np.float32,
            chunks=(min(CHUNK_ROWS, self.n_cols), CHUNK_COLS),
            fillvalue=np.nan,
        )

    def close(self) -> None:
        if self._closed:
            return
        if self._pending_rows:
            self._flush(self._pending_rows)
        if self._n_rows == 0:
            self.abort()
            raise MatrixFormatError("the matrix has no rows")
        h5 = self._h5
        for group, attrs in (("row_attrs", self._row_attrs), ("col_attrs", self._col_attrs)):
            g = h5.create_group(group)
            g.attrs["order"] = list(attrs)
            for name, values in attrs.items():
                g.create_dataset(name, data=np.asarray(values, dtype=object), dtype=_STR)
        stats = h5.create_group("stats")
        stats["row_min"] = np.concatenate(self._row_min)
        stats["row_max"] = np.concatenate(self._row_max)
        stats["col_min"] = self._col_min
        stats["col_max"] = self._col_max
        h5.close()
        os.replace(self._tmp, self.path)
        self._closed = True

    def abort(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._h5.close()
        self._tmp.unlink(missing_ok=True)


@dataclass
class Selection:
    """Sorted, unique row and column indices of a slice (matrix order is kept)."""

    rows: IndexArray
    cols: IndexArray

    @property
    def cells(self) -> int:
        return int(self.rows.size) * int(self.cols.size)


class MatrixSource(Protocol):
    """What the output writers read: a MatrixFile, or several slices merged into one (merge.py)."""

    kind: str
    row_attrs: dict[str, npt.NDArray[np.object_]]
    col_attrs: dict[str, npt.NDArray[np.object_]]

    def iter_blocks(self, sel: Selection, block_rows: int = ...) -> Iterator[tuple[IndexArray, FloatArray]]: ...


@dataclass
class MatrixFile:
    """An open matrix file: labels in memory, values read lazily by slice."""

    path: Path
    kind: str
    shape: tuple[int, int]
    row_attrs: dict[str, npt.NDArray[np.object_]]
    col_attrs: dict[str, npt.NDArray[np.object_]]
    stats: dict[str, FloatArray]
    _h5: Any = field(repr=False)
    _row_index: dict[str, dict[str, list[int]]] = field(default_factory=dict, repr=False)
    _col_index: dict[str, dict[str, list[int]]] = field(default_factory=dict, repr=False)
    _positions: tuple[npt.NDArray[np.str_], npt.NDArray[np.int64]] | None = field(default=None, repr=False)

    @classmethod
    def open(cls, path: Path) -> MatrixFile:
        # no HDF5 chunk cache: a slice wants one row (16 KB) of a 4-row chunk, and a direct read of just
        # that is half the time of pulling the whole 64 KB chunk through the cache (bench: 6.6 → 3.2 ms
        # for 100 rows x 10,000, 49 → 29 ms for 60,000 x 100); values are read once per request anyway
        h5 = h5py.File(path, "r", rdcc_nbytes=0)
        try:
            if h5.attrs.get("format") != FORMAT_VERSION:
                raise MatrixFormatError(f"{path} is not a seqhub matrix file")
            return cls(
                path=path,
                kind=str(h5.attrs["kind"]),
                shape=tuple(h5["by_row"].shape),
                row_attrs=_read_attrs(h5["row_attrs"]),
                col_attrs=_read_attrs(h5["col_attrs"]),
                stats={k: h5["stats"][k][()] for k in h5["stats"]},
                _h5=h5,
            )
        except Exception:
            h5.close()
            raise

    def close(self) -> None:
        self._h5.close()

    def __enter__(self) -> MatrixFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- label lookups -----------------------------------------------------------------------

    def row_lookup(self, attr: str) -> dict[str, list[int]]:
        return _lookup(self._row_index, self.row_attrs, attr)

    def col_lookup(self, attr: str) -> dict[str, list[int]]:
        return _lookup(self._col_index, self.col_attrs, attr)

    def positions(self) -> tuple[npt.NDArray[np.str_], npt.NDArray[np.int64]]:
        """(chromosome, coordinate) per column of a continuous matrix (``position`` = ``chrN:pos``)."""
        if self._positions is None:
            split = [p.rsplit(":", 1) for p in self.col_attrs["position"].tolist()]
            self._positions = (
                np.array([c for c, _ in split], dtype=str),
                np.array([int(x) for _, x in split], dtype=np.int64),
            )
        return self._positions

    # -- value access ------------------------------------------------------------------------

    def read(self, sel: Selection) -> FloatArray:
        """The whole slice in memory (for small slices, thresholds and tests)."""
        parts = [block for _, block in self.iter_blocks(sel)]
        if not parts:
            return np.empty((sel.rows.size, sel.cols.size), np.float32)
        return np.concatenate(parts)

    def iter_blocks(self, sel: Selection, block_rows: int = BLOCK_ROWS) -> Iterator[tuple[IndexArray, FloatArray]]:
        """Yield (row indices, values) blocks of at most ``block_rows`` rows, in matrix order.

        From ``/by_row`` each block is one read. From ``/by_col`` a read spans up to two chunk widths
        (8,192 rows, fewer for wide slices): narrower reads cut chunks and repeat the per-run calls.
        """
        if sel.cols.size == 0:
            return
        if not _prefer_by_col(sel, self.shape):
            for start in range(0, sel.rows.size, block_rows):
                rows = sel.rows[start : start + block_rows]
                yield rows, _read_runs(self._h5["by_row"], rows, sel.cols)
            return
        read_rows = max(block_rows, min(2 * CHUNK_COLS, _READ_CELLS // int(sel.cols.size)))
        for start in range(0, sel.rows.size, read_rows):
            rows = sel.rows[start : start + read_rows]
            values = _read_runs(self._h5["by_col"], sel.cols, rows).T
            for sub in range(0, rows.size, block_rows):
                yield rows[sub : sub + block_rows], values[sub : sub + block_rows]


def _read_attrs(group: Any) -> dict[str, npt.NDArray[np.object_]]:
    order = [str(n) for n in group.attrs.get("order", list(group))]
    return {name: group[name].asstr()[()] for name in order}


def _lookup(
    cache: dict[str, dict[str, list[int]]], attrs: Mapping[str, npt.NDArray[np.object_]], attr: str
) -> dict[str, list[int]]:
    if attr not in cache:
        mapping: dict[str, list[int]] = {}
        for i, v in enumerate(attrs[attr].tolist()):
            mapping.setdefault(v, []).append(i)
        cache[attr] = mapping
    return cache[attr]


def _prefer_by_col(sel: Selection, shape: tuple[int, int]) -> bool:
    """Pick the copy whose chunks the selection touches least (bands of CHUNK_ROWS)."""
    row_bands = np.unique(sel.rows // CHUNK_ROWS).size * -(-shape[1] // CHUNK_COLS)
    col_bands = np.unique(sel.cols // CHUNK_ROWS).size * -(-shape[0] // CHUNK_COLS)
    return bool(col_bands < row_bands)


def _read_runs(ds: Any, rows: IndexArray, cols: IndexArray) -> FloatArray:
    """ds[rows][:, cols] for sorted index arrays, reading contiguous spans of rows."""
    c0, c1 = int(cols[0]), int(cols[-1]) + 1
    full_cols = cols.size == c1 - c0
    out = np.empty((rows.size, cols.size), np.float32)
    breaks = np.flatnonzero(np.diff(rows) > CHUNK_ROWS) + 1
    pos = 0
    for run in np.split(rows, breaks):
        r0, r1 = int(run[0]), int(run[-1]) + 1
        span = ds[r0:r1, c0:c1]
        picked = span if run.size == r1 - r0 else span[run - r0]
        out[pos : pos + run.size] = picked if full_cols else picked[:, cols - c0]
        pos += run.size
    return out


def all_indices(n: int) -> IndexArray:
    return np.arange(n, dtype=np.intp)


def write_matrix(
    path: Path,
    *,
    kind: str,
    values: npt.ArrayLike,
    row_attrs: Mapping[str, Sequence[str]],
    col_attrs: Mapping[str, Sequence[str]],
) -> None:
    """Write an in-memory matrix (tests, small imports)."""
    with MatrixWriter(path, kind=kind, col_attrs=col_attrs) as w:
        w.append(values, row_attrs)


def iter_row_blocks(
    values: FloatArray, row_attrs: Mapping[str, Sequence[str]], n: int = BLOCK_ROWS
) -> Iterable[tuple[FloatArray, dict[str, Sequence[str]]]]:
    for i in range(0, values.shape[0], n):
        yield values[i : i + n], {k: v[i : i + n] for k, v in row_attrs.items()}
