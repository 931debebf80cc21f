"""Several matrices' slices as one matrix: what the 1.0.0 multi routes (/expressions/bytes, /ticket) return.

The spec's ``GET /expressions/bytes`` returns "an expression data file matching filters" — one file, so
when the filters match several matrices their slices are merged:

- along the **sample axis** the slices are concatenated in record order (expression: sample columns;
  continuous: track rows). A sample id held by two matched matrices is ambiguous: `MergeError`;
- along the **feature axis** they are united (expression: features by ``GeneID``, first-seen order;
  continuous: positions, sorted by chromosome and coordinate);
- a cell a matrix does not hold (its samples x a feature only another matrix has) is NaN: the spec's
  "not measured / not applicable";
- a matrix whose slice is empty (none of the listed ids, thresholds keep nothing) contributes nothing.

`MergedMatrix` offers what the writers (formats.tsv_chunks, formats.write_loom) read from a MatrixFile:
kind, row/column attributes and ``iter_blocks``. Pure numpy: no aiohttp, no pymongo.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from .formats import CONTINUOUS, POSITION_ATTR, ROW_ATTRS, SAMPLE_ATTR
from .matrix import BLOCK_ROWS, FloatArray, IndexArray, MatrixFile, Selection, all_indices

Labels = npt.NDArray[np.object_]


class MergeError(ValueError):
    """The matched slices cannot form one matrix (an id on the sample axis occurs in two of them)."""


@dataclass
class _Part:
    mf: MatrixFile
    rows: IndexArray  # per merged row: the row in mf, or -1
    cols: IndexArray  # per merged column: the column in mf, or -1


@dataclass
class MergedMatrix:
    kind: str
    shape: tuple[int, int]
    row_attrs: dict[str, Labels]
    col_attrs: dict[str, Labels]
    sources: list[str]
    _parts: list[_Part]

    def selection(self) -> Selection:
        return Selection(all_indices(self.shape[0]), all_indices(self.shape[1]))

    def iter_blocks(self, sel: Selection, block_rows: int = BLOCK_ROWS) -> Iterator[tuple[IndexArray, FloatArray]]:
        """Blocks of merged rows (``sel`` must be the whole merged matrix); absent cells are NaN."""
        if sel.rows.size != self.shape[0] or sel.cols.size != self.shape[1]:
            raise ValueError("a merged matrix is read whole: slice the members instead")
        if sel.cols.size == 0:
            return
        for start in range(0, self.shape[0], block_rows):
            stop = min(self.shape[0], start + block_rows)
            out = np.full((stop - start, self.shape[1]), np.nan, np.float32)
            for part in self._parts:
                _fill(out, part, start, stop)
            yield sel.rows[start:stop], out


def _fill(out: FloatArray, part: _Part, start: int, stop: int) -> None:
    rows = part.rows[start:stop]
    at_rows = np.flatnonzero(rows >= 0)
    at_cols = np.flatnonzero(part.cols >= 0)
    if at_rows.size == 0 or at_cols.size == 0:
        return
    # the member is read in its own (sorted) order, then scattered to the merged positions
    src_rows, src_cols = rows[at_rows], part.cols[at_cols]
    row_order, col_order = np.argsort(src_rows), np.argsort(src_cols)
    values = part.mf.read(Selection(src_rows[row_order], src_cols[col_order]))
    out[np.ix_(at_rows[row_order], at_cols[col_order])] = values


def merge(ids: Sequence[str], slices: Sequence[tuple[MatrixFile, Selection]]) -> MergedMatrix:
    """One matrix from the slices of several matrices of one kind (``ids`` name them, same order)."""
    kept = [(i, mf, sel) for i, (mf, sel) in zip(ids, slices, strict=True) if sel.rows.size and sel.cols.size]
    kind = slices[0][0].kind if slices else "expression"
    if kind == CONTINUOUS:
        return _merge_continuous(kind, kept)
    return _merge_expression(kind, kept)


def _merge_expression(kind: str, kept: list[tuple[str, MatrixFile, Selection]]) -> MergedMatrix:
    # features united by GeneID (first-seen order), samples concatenated
    key, name = ROW_ATTRS[kind]
    row_index: dict[str, int] = {}
    gene_names: list[str] = []
    for _, mf, sel in kept:
        for gene, gene_name in zip(mf.row_attrs[key][sel.rows].tolist(), mf.row_attrs[name][sel.rows].tolist(),
                                   strict=True):
            if gene not in row_index:
                row_index[gene] = len(row_index)
                gene_names.append(gene_name)
    n_rows = len(row_index)
    col_attrs = _concat_attrs(kept, SAMPLE_ATTR, lambda mf: mf.col_attrs, lambda sel: sel.cols)
    n_cols = len(col_attrs[SAMPLE_ATTR])
    parts, offset = [], 0
    for _, mf, sel in kept:
        rows = np.full(n_rows, -1, np.intp)
        rows[[row_index[g] for g in mf.row_attrs[key][sel.rows].tolist()]] = sel.rows
        cols = np.full(n_cols, -1, np.intp)
        cols[offset : offset + sel.cols.size] = sel.cols
        offset += sel.cols.size
        parts.append(_Part(mf, rows, cols))
    row_attrs = {key: _labels(list(row_index)), name: _labels(gene_names)}
    return MergedMatrix(kind, (n_rows, n_cols), row_attrs, col_attrs, [i for i, _, _ in kept], parts)


def _merge_continuous(kind: str, kept: list[tuple[str, MatrixFile, Selection]]) -> MergedMatrix:
    # tracks (the samples) concatenated, positions united and sorted by chromosome and coordinate
    (track,) = ROW_ATTRS[kind]
    positions: dict[str, tuple[str, int]] = {}
    for _, mf, sel in kept:
        chroms, coords = mf.positions()
        for pos, chrom, coord in zip(
            mf.col_attrs[POSITION_ATTR][sel.cols].tolist(), chroms[sel.cols].tolist(), coords[sel.cols].tolist(),
            strict=True,
        ):
            positions.setdefault(pos, (chrom, coord))
    ordered = sorted(positions, key=positions.__getitem__)
    col_index = {pos: i for i, pos in enumerate(ordered)}
    row_attrs = _concat_attrs(kept, track, lambda mf: mf.row_attrs, lambda sel: sel.rows)
    n_rows, n_cols = len(row_attrs[track]), len(ordered)
    parts, offset = [], 0
    for _, mf, sel in kept:
        rows = np.full(n_rows, -1, np.intp)
        rows[offset : offset + sel.rows.size] = sel.rows
        offset += sel.rows.size
        cols = np.full(n_cols, -1, np.intp)
        cols[[col_index[p] for p in mf.col_attrs[POSITION_ATTR][sel.cols].tolist()]] = sel.cols
        parts.append(_Part(mf, rows, cols))
    col_attrs = {POSITION_ATTR: _labels(ordered)}
    return MergedMatrix(kind, (n_rows, n_cols), row_attrs, col_attrs, [i for i, _, _ in kept], parts)


def _concat_attrs(
    kept: list[tuple[str, MatrixFile, Selection]],
    key: str,
    attrs_of: Callable[[MatrixFile], Mapping[str, Labels]],
    index_of: Callable[[Selection], IndexArray],
) -> dict[str, Labels]:
    """The sample axis: every member's labels one after the other; an attribute a member lacks is ''."""
    names: list[str] = [key]
    for _, mf, _sel in kept:
        names += [n for n in attrs_of(mf) if n not in names]
    out: dict[str, list[str]] = {n: [] for n in names}
    owner: dict[str, str] = {}
    for matrix_id, mf, sel in kept:
        idx = index_of(sel)
        attrs = attrs_of(mf)
        for n in names:
            out[n] += attrs[n][idx].tolist() if n in attrs else [""] * int(idx.size)
        for label in attrs[key][idx].tolist():
            if label in owner:
                raise MergeError(
                    f"{key} {label!r} is in both {owner[label]} and {matrix_id}; narrow the filters "
                    "(studyID, version) so one matrix holds each sample, or ask /{id}/bytes per matrix"
                )
            owner[label] = matrix_id
    return {n: _labels(v) for n, v in out.items()}


def _labels(values: list[str]) -> Labels:
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return out
