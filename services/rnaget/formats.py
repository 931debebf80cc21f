"""Matrix import (TSV, loom) and streamed output (TSV, loom) for the RNAget matrix store.

Expression matrices: features are rows (``GeneID``, ``GeneName``), samples are columns
(``Sample`` plus any further column attributes such as ``Condition``/``Tissue``). Continuous
matrices: tracks are rows (``tracks``), genomic positions are columns (``position`` = ``chrN:pos``).
Those are the loom attribute names the GA4GH compliance suites read.

Output writers are generators of ``bytes`` chunks so a large slice is never built whole in memory;
loom output is written block by block to a temporary file (HDF5 needs seeks) and then streamed.
Pure numpy/h5py/orjson: no aiohttp, no pymongo; synchronous, run in worker threads.
"""

from __future__ import annotations

import datetime as dt
import html
import os
import re
from collections.abc import Generator, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from itertools import chain
from pathlib import Path
from typing import IO, Any, TypeVar

import h5py
import numpy as np
import orjson

from .matrix import (
    BLOCK_ROWS,
    FloatArray,
    IndexArray,
    MatrixFormatError,
    MatrixSource,
    MatrixWriter,
    Selection,
)

EXPRESSION = "expression"
CONTINUOUS = "continuous"
ROW_ATTRS = {EXPRESSION: ("GeneID", "GeneName"), CONTINUOUS: ("tracks",)}
SAMPLE_ATTR = "Sample"
POSITION_ATTR = "position"
_POSITION = re.compile(r"^([^:\s]+):(\d+)$")
_STREAM_CHUNK = 1 << 20
_T = TypeVar("_T")


# -- import ------------------------------------------------------------------------------------


def _label_columns(kind: str) -> int:
    return len(ROW_ATTRS[kind])


def import_tsv(src: IO[bytes], dest: Path, *, kind: str = EXPRESSION, source: str = "TSV") -> tuple[int, int]:
    """Parse a TSV matrix (``#`` comments, one header row, label columns, float columns) into ``dest``.

    Returns (rows, cols). Raises MatrixFormatError naming the line of the first problem.
    """
    n_labels = _label_columns(kind)
    lineno, header = _read_header(src, source)
    cells = header.rstrip(b"\r\n").split(b"\t")
    if len(cells) <= n_labels:
        raise MatrixFormatError(f"{source} line {lineno}: header has no value columns")
    columns = [c.decode("utf-8", "replace").strip() for c in cells[n_labels:]]
    col_attrs = {POSITION_ATTR if kind == CONTINUOUS else SAMPLE_ATTR: columns}
    _check_unique(columns, f"{source} header", "column")
    if kind == CONTINUOUS:
        for c in columns:
            if not _POSITION.match(c):
                raise MatrixFormatError(f"{source} header: column {c!r} is not a position like chr1:100")
    with MatrixWriter(dest, kind=kind, col_attrs=col_attrs) as writer:
        seen: set[str] = set()
        for first_line, labels, values in _tsv_blocks(src, lineno, n_labels, len(columns), source):
            _check_unique(labels[0], f"{source} from line {first_line}", "row", seen)
            writer.append(values, dict(zip(ROW_ATTRS[kind], labels, strict=True)))
    return len(seen), len(columns)


def _read_header(src: IO[bytes], source: str) -> tuple[int, bytes]:
    lineno = 0
    for line in src:
        lineno += 1
        if line.startswith(b"#") or not line.strip():
            continue
        return lineno, line
    raise MatrixFormatError(f"{source}: no header row")


def _tsv_blocks(
    src: IO[bytes], lineno: int, n_labels: int, n_cols: int, source: str
) -> Iterator[tuple[int, list[list[str]], FloatArray]]:
    labels: list[list[str]] = [[] for _ in range(n_labels)]
    rests: list[bytes] = []
    first = lineno + 1
    for line in src:
        lineno += 1
        if not line.strip() or line.startswith(b"#"):
            continue
        parts = line.rstrip(b"\r\n").split(b"\t", n_labels)
        if len(parts) <= n_labels:
            raise MatrixFormatError(f"{source} line {lineno}: expected {n_labels} label columns and values")
        for i in range(n_labels):
            labels[i].append(parts[i].decode("utf-8", "replace").strip())
        rests.append(parts[n_labels])
        if len(rests) == BLOCK_ROWS:
            yield first, labels, _parse_values(rests, n_cols, first, source)
            labels, rests, first = [[] for _ in range(n_labels)], [], lineno + 1
    if rests:
        yield first, labels, _parse_values(rests, n_cols, first, source)


def _parse_values(rests: list[bytes], n_cols: int, first: int, source: str) -> FloatArray:
    try:
        values = np.loadtxt(rests, delimiter="\t", dtype=np.float32, ndmin=2, comments=None)
    except ValueError as e:
        raise MatrixFormatError(f"{source} rows from line {first}: {_loadtxt_message(e)}") from None
    if values.shape[1] != n_cols:
        raise MatrixFormatError(
            f"{source} rows from line {first}: {values.shape[1]} values per row, header has {n_cols} columns"
        )
    return values


def _loadtxt_message(e: ValueError) -> str:
    # numpy: "could not convert string 'x' to float32 at row 3, column 5." (row relative to block)
    return str(e).split("\n")[0][:300]


def _check_unique(values: Sequence[str], where: str, what: str, seen: set[str] | None = None) -> None:
    seen = set() if seen is None else seen
    for v in values:
        if not v:
            raise MatrixFormatError(f"{where}: empty {what} id")
        if v in seen:
            raise MatrixFormatError(f"{where}: duplicate {what} id {v!r}")
        seen.add(v)


def import_loom(src: Path, dest: Path, *, kind: str = EXPRESSION) -> tuple[int, int]:
    """Copy a loom file's /matrix and the RNAget row/column attributes into the store."""
    try:
        h5 = h5py.File(src, "r")
    except OSError as e:
        raise MatrixFormatError(f"{src.name}: not an HDF5/loom file ({e})") from None
    with h5:
        if "matrix" not in h5 or len(h5["matrix"].shape) != 2:
            raise MatrixFormatError(f"{src.name}: no 2-dimensional /matrix")
        n_rows, n_cols = h5["matrix"].shape
        row_attrs = _loom_attrs(h5, "row_attrs", ROW_ATTRS[kind], n_rows, src.name)
        wanted = (POSITION_ATTR,) if kind == CONTINUOUS else (SAMPLE_ATTR,)
        col_attrs = _loom_attrs(h5, "col_attrs", wanted, n_cols, src.name, extra=True)
        _check_unique(row_attrs[ROW_ATTRS[kind][0]], src.name, "row")
        _check_unique(col_attrs[wanted[0]], src.name, "column")
        with MatrixWriter(dest, kind=kind, col_attrs=col_attrs) as writer:
            for r0 in range(0, n_rows, BLOCK_ROWS):
                r1 = min(n_rows, r0 + BLOCK_ROWS)
                writer.append(h5["matrix"][r0:r1], {k: v[r0:r1] for k, v in row_attrs.items()})
    return n_rows, n_cols


def _loom_attrs(
    h5: Any, group: str, required: Sequence[str], n: int, name: str, extra: bool = False
) -> dict[str, list[str]]:
    if group not in h5:
        raise MatrixFormatError(f"{name}: no /{group}")
    names = list(required) + ([k for k in h5[group] if k not in required] if extra else [])
    out: dict[str, list[str]] = {}
    for attr in names:
        if attr not in h5[group]:
            raise MatrixFormatError(f"{name}: missing /{group}/{attr}")
        ds = h5[group][attr]
        if ds.shape != (n,):
            if attr in required:
                raise MatrixFormatError(f"{name}: /{group}/{attr} has shape {ds.shape}, expected ({n},)")
            continue
        out[attr] = [_text(v) for v in ds[()]]
    return out


def _text(v: object) -> str:
    if isinstance(v, bytes):
        return html.unescape(v.decode("utf-8", "replace"))
    return str(v)


# -- output ------------------------------------------------------------------------------------


def format_block(values: FloatArray) -> list[bytes]:
    """One tab-joined line (without newline) per row; shortest float32 repr, NaN as ``NaN``."""
    return [bytes(line[:-1]) for line in format_lines(values)]


def format_lines(values: FloatArray) -> list[memoryview]:
    """One line per row, each ending in a newline: values tab-separated, shortest float32 repr, NaN as ``NaN``.

    orjson writes the block as ``[[a,b],[c,d]]`` (ryu's shortest float32 text; NaN as ``null``). Then:
    each ``null`` becomes ``NaN!`` in place (numpy finds them: an ``n`` occurs in no number), and one
    translate turns ``,`` into a tab and ``]`` into a newline while deleting ``[`` and ``!``, giving
    ``a<TAB>b<NL><TAB>c<TAB>d<NL><NL>``. Rows are the views between newlines (numpy finds those too):
    a few passes over the bytes in C, no per-value Python and no copy per row.
    """
    n_rows = values.shape[0]
    if n_rows == 0:
        return []
    if values.shape[1] == 0:
        return [memoryview(b"\n")] * n_rows
    if np.isinf(values).any():  # rare: orjson has no spelling for inf; numpy's text, NaN kept as NaN
        text_rows = np.where(np.isnan(values), "NaN", values.astype(str)).tolist()
        return [memoryview(("\t".join(row) + "\n").encode()) for row in text_rows]
    text: bytes | bytearray = orjson.dumps(np.ascontiguousarray(values), option=orjson.OPT_SERIALIZE_NUMPY)
    nulls = np.flatnonzero(np.frombuffer(text, np.uint8) == _N)
    if nulls.size:
        text = bytearray(text)
        chars = np.frombuffer(text, np.uint8)
        for offset, char in enumerate(b"NaN!"):
            chars[nulls + offset] = char
        del chars  # the bytearray must not stay exported
    out = text.translate(_TSV_TABLE, b"[!")
    ends = (np.flatnonzero(np.frombuffer(out, np.uint8) == _NL)[:n_rows] + 1).tolist()
    view = memoryview(out)
    # row i runs from just after the TAB that followed row i-1's newline (the comma between rows)
    return [view[start:end] for start, end in zip([0, *(e + 1 for e in ends[:-1])], ends, strict=True)]


_TSV_TABLE = bytes.maketrans(b",]", b"\t\n")
_N, _NL = ord("n"), ord("\n")
_CHUNK_CELLS = 1 << 18  # values per streamed TSV chunk: ~2.5 MB of text, so reading, formatting and sending overlap


def tsv_chunks(
    mf: MatrixSource, sel: Selection, *, comments: Sequence[str] = (), chunk_cells: int = _CHUNK_CELLS
) -> Generator[bytes, None, None]:
    """Stream a slice as TSV: comments, a header row, then one row per feature/track.

    Blocks are read from HDF5 one ahead in a worker thread (h5py releases the GIL while reading)
    while the current block is formatted.
    """
    head = [f"# {c}" for c in comments]
    row_names = list(mf.row_attrs)
    col_labels = _column_labels(mf, sel)
    if mf.kind == CONTINUOUS:
        head.insert(0, "#labels\t" + "\t".join(row_names))
        rng = _range_comment(col_labels)
        if rng:
            head.insert(1, f"#range\t{rng}")
    head.append("\t".join([*row_names, *col_labels]))
    yield ("\n".join(head) + "\n").encode()
    chunk_rows = max(1, chunk_cells // max(1, int(sel.cols.size)))
    for rows, values in read_ahead(mf.iter_blocks(sel, chunk_rows)):
        yield _tsv_rows(mf, row_names, rows, values)


def _tsv_rows(mf: MatrixSource, row_names: list[str], rows: IndexArray, values: FloatArray) -> bytes:
    labels = zip(*(mf.row_attrs[n][rows].tolist() for n in row_names), strict=True)
    prefixes = [("\t".join(t) + "\t").encode() for t in labels]
    # label TAB values NEWLINE, joined in one call: the chunk is written as one buffer
    return b"".join(chain.from_iterable(zip(prefixes, format_lines(values), strict=True)))


def read_ahead(blocks: Iterator[_T]) -> Generator[_T, None, None]:
    """Iterate ``blocks`` in a worker thread, one item ahead of the consumer.

    Closing the generator (client gone) waits for the one read in flight and no more.
    """
    with ThreadPoolExecutor(1, thread_name_prefix="rnaget-read") as pool:
        pending = pool.submit(next, blocks, _DONE)
        while (item := pending.result()) is not _DONE:
            pending = pool.submit(next, blocks, _DONE)
            yield item


_DONE: Any = object()


def _column_labels(mf: MatrixSource, sel: Selection) -> list[str]:
    if mf.kind == CONTINUOUS:
        return list(mf.col_attrs[POSITION_ATTR][sel.cols].tolist())
    # the suites split the header cell on ", " into Sample, Condition, Tissue
    parts = [mf.col_attrs[name][sel.cols].tolist() for name in mf.col_attrs]
    return [", ".join(t) for t in zip(*parts, strict=True)]


def _range_comment(positions: Sequence[str]) -> str | None:
    if not positions:
        return None
    chroms = {p.split(":")[0] for p in positions}
    if len(chroms) != 1:
        return None
    coords = [int(p.split(":")[1]) for p in positions]
    return f"{chroms.pop()}:{min(coords)}-{max(coords) + 1}"


def write_loom(mf: MatrixSource, sel: Selection, dest: Path) -> None:
    """Write a slice as a loom 2.0.1 file (h5py; NaN kept, which loompy.create would refuse)."""
    tmp = dest.with_name(f".{dest.name}.tmp")
    try:
        with h5py.File(tmp, "w") as h5:
            n_rows, n_cols = int(sel.rows.size), int(sel.cols.size)
            h5.attrs["LOOM_SPEC_VERSION"] = "2.0.1"
            h5.attrs["CreationDate"] = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S.%fZ")
            chunks = (max(1, min(64, n_rows)), max(1, min(64, n_cols))) if n_rows and n_cols else None
            matrix = h5.create_dataset(
                "matrix", shape=(n_rows, n_cols), dtype=np.float32, chunks=chunks, fillvalue=np.nan
            )
            pos = 0
            for rows, values in mf.iter_blocks(sel, BLOCK_ROWS):
                matrix[pos : pos + rows.size] = values
                pos += rows.size
            parts = (("row_attrs", mf.row_attrs, sel.rows), ("col_attrs", mf.col_attrs, sel.cols))
            for group, attrs, idx in parts:
                g = h5.create_group(group)
                for name, labels in attrs.items():
                    g.create_dataset(name, data=_ascii(labels[idx].tolist()))
            for group in ("layers", "row_graphs", "col_graphs"):
                h5.create_group(group)
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)


def _ascii(values: list[str]) -> np.ndarray[Any, Any]:
    # loom 2.0.1 strings: fixed-length ASCII, non-ASCII as XML entities (loompy unescapes them)
    encoded = [v.encode("ascii", "xmlcharrefreplace") for v in values]
    width = max((len(e) for e in encoded), default=1) or 1
    return np.array(encoded, dtype=f"S{width}")


def file_chunks(path: Path, *, delete: bool = False, size: int = _STREAM_CHUNK) -> Generator[bytes, None, None]:
    """Stream a file in chunks; optionally delete it when done (or abandoned)."""
    try:
        with path.open("rb") as f:
            while chunk := f.read(size):
                yield chunk
    finally:
        if delete:
            path.unlink(missing_ok=True)


def iter_lines(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """Helper for tests and the CLI: re-split streamed TSV chunks into lines."""
    rest = b""
    for chunk in chunks:
        data = rest + chunk
        *lines, rest = data.split(b"\n")
        yield from lines
    if rest:
        yield rest
