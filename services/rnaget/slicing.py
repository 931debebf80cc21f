"""Turn an RNAget slice request (ids, names, thresholds, ranges) into matrix indices.

Semantics (documented in docs/rnaget.md):

- ``featureIDList`` / ``featureNameList`` / ``sampleIDList``: the union of the listed rows (a gene
  name that occurs on several rows selects all of them); lists AND-combine with each other and
  with thresholds. An id the matrix does not hold selects nothing (an empty slice, not an error:
  the same query runs over many matrices).
- ``minExpression`` / ``maxExpression`` (seed): each ``{threshold, featureID|featureName}`` keeps the
  samples whose value for that feature is ``>=`` (min) / ``<=`` (max) the threshold; a threshold
  without a feature keeps samples where *any* selected feature satisfies it. All thresholds AND.
- ``feature_min_value`` / ``feature_max_value`` (1.2.0): keep the features that have at least one
  value ``>=`` min (resp. ``<=`` max) among the selected samples.
- NaN (not measured) never satisfies a bound.
- continuous ``chr``/``start``/``end``: columns on ``chr`` with ``start <= pos < end``.

Pure numpy: no aiohttp, no pymongo.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from .formats import CONTINUOUS, ROW_ATTRS, SAMPLE_ATTR
from .matrix import FloatArray, IndexArray, MatrixFile, Selection, all_indices

_SCAN_ROWS = 4096


@dataclass(frozen=True)
class Threshold:
    threshold: float
    feature_id: str | None = None
    feature_name: str | None = None


@dataclass(frozen=True)
class SliceQuery:
    feature_ids: tuple[str, ...] | None = None
    feature_names: tuple[str, ...] | None = None
    sample_ids: tuple[str, ...] | None = None
    min_expression: tuple[Threshold, ...] = ()
    max_expression: tuple[Threshold, ...] = ()
    feature_min_value: float | None = None
    feature_max_value: float | None = None
    chrom: str | None = None
    start: int | None = None
    end: int | None = None
    extra: dict[str, str] = field(default_factory=dict)


def select(mf: MatrixFile, q: SliceQuery) -> Selection:
    """Resolve ``q`` against one matrix (no values read unless thresholds need them)."""
    rows = _rows(mf, q)
    cols = _cols(mf, q)
    if q.min_expression or q.max_expression:
        cols = _apply_sample_thresholds(mf, q, rows, cols)
    if q.feature_min_value is not None or q.feature_max_value is not None:
        rows = _apply_feature_bounds(mf, q, rows, cols)
    return Selection(rows=rows, cols=cols)


def _indices(lookup: dict[str, list[int]], wanted: Sequence[str]) -> IndexArray:
    found = [i for key in wanted for i in lookup.get(key, ())]
    return np.unique(np.asarray(found, dtype=np.intp))


def _intersect(a: IndexArray, b: IndexArray) -> IndexArray:
    # both sorted and unique: skip intersect1d's own unique pass (a hash over a whole axis, ~3 ms per 60,000)
    return np.intersect1d(a, b, assume_unique=True)


def _rows(mf: MatrixFile, q: SliceQuery) -> IndexArray:
    rows = all_indices(mf.shape[0])
    names = ROW_ATTRS[mf.kind]
    if q.feature_ids is not None:
        rows = _intersect(rows, _indices(mf.row_lookup(names[0]), q.feature_ids))
    if q.feature_names is not None:
        if len(names) < 2:
            return np.empty(0, np.intp)
        rows = _intersect(rows, _indices(mf.row_lookup(names[1]), q.feature_names))
    if q.sample_ids is not None and mf.kind == CONTINUOUS:
        rows = _intersect(rows, _indices(mf.row_lookup(names[0]), q.sample_ids))
    return rows


def _cols(mf: MatrixFile, q: SliceQuery) -> IndexArray:
    cols = all_indices(mf.shape[1])
    if mf.kind == CONTINUOUS:
        return cols if q.chrom is None else _position_range(mf, q)
    if q.sample_ids is not None:
        cols = _intersect(cols, _indices(mf.col_lookup(SAMPLE_ATTR), q.sample_ids))
    return cols


def _position_range(mf: MatrixFile, q: SliceQuery) -> IndexArray:
    chroms, coords = mf.positions()
    mask = chroms == q.chrom
    if q.start is not None:
        mask &= coords >= q.start
    if q.end is not None:
        mask &= coords < q.end
    return np.flatnonzero(mask).astype(np.intp)


def _threshold_rows(mf: MatrixFile, t: Threshold, rows: IndexArray) -> IndexArray:
    names = ROW_ATTRS[mf.kind]
    if t.feature_id is not None:
        return _indices(mf.row_lookup(names[0]), [t.feature_id])
    if t.feature_name is not None:
        return _indices(mf.row_lookup(names[1]), [t.feature_name])
    return rows


def _apply_sample_thresholds(mf: MatrixFile, q: SliceQuery, rows: IndexArray, cols: IndexArray) -> IndexArray:
    keep = np.ones(cols.size, dtype=bool)
    bounds = [(t, True) for t in q.min_expression] + [(t, False) for t in q.max_expression]
    for t, is_min in bounds:
        t_rows = _threshold_rows(mf, t, rows)
        keep &= _any_satisfies(mf, t_rows, cols, t.threshold, is_min, axis=0)
    return cols[keep]


def _apply_feature_bounds(mf: MatrixFile, q: SliceQuery, rows: IndexArray, cols: IndexArray) -> IndexArray:
    keep = np.ones(rows.size, dtype=bool)
    if q.feature_min_value is not None:
        keep &= _any_satisfies(mf, rows, cols, q.feature_min_value, True, axis=1)
    if q.feature_max_value is not None:
        keep &= _any_satisfies(mf, rows, cols, q.feature_max_value, False, axis=1)
    return rows[keep]


def _any_satisfies(
    mf: MatrixFile, rows: IndexArray, cols: IndexArray, bound: float, is_min: bool, axis: int
) -> npt.NDArray[np.bool_]:
    """Per column (axis=0) or per row (axis=1): does any cell of the slice satisfy the bound?"""
    size = cols.size if axis == 0 else rows.size
    if rows.size == 0 or cols.size == 0:
        return np.zeros(size, dtype=bool)
    full_other = (rows.size == mf.shape[0]) if axis == 0 else (cols.size == mf.shape[1])
    if full_other:
        # unsliced along the other axis: the stored NaN-ignoring min/max answers without a scan
        key = ("col_" if axis == 0 else "row_") + ("max" if is_min else "min")
        extreme = mf.stats[key][cols if axis == 0 else rows]
        return _compare(extreme, bound, is_min)
    out = np.zeros(size, dtype=bool)
    sel = Selection(rows=rows, cols=cols)
    pos = 0
    for block_rows, values in mf.iter_blocks(sel, _SCAN_ROWS):
        hits = _compare(values, bound, is_min)
        if axis == 0:
            out |= hits.any(axis=0)
        else:
            out[pos : pos + block_rows.size] = hits.any(axis=1)
        pos += block_rows.size
    return out


def _compare(values: FloatArray, bound: float, is_min: bool) -> npt.NDArray[np.bool_]:
    # NaN compares False either way: not measured never satisfies a bound
    limit = np.float32(bound)
    result: npt.NDArray[np.bool_] = values >= limit if is_min else values <= limit
    return result
