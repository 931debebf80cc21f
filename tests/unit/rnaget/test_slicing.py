"""Slice resolution: ids, names, thresholds (seed and 1.2.0) and ranges, checked against numpy."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from services.rnaget.formats import CONTINUOUS
from services.rnaget.matrix import MatrixFile, write_matrix
from services.rnaget.slicing import SliceQuery, Threshold, select

from .conftest import SourceMatrix


def test_no_filter_selects_everything_in_order(opened: MatrixFile) -> None:
    sel = select(opened, SliceQuery())
    assert np.array_equal(sel.rows, np.arange(5000)) and np.array_equal(sel.cols, np.arange(37))


def test_ids_names_and_samples_and_combine(source: SourceMatrix, opened: MatrixFile) -> None:
    q = SliceQuery(feature_ids=(source.gene_ids[10], source.gene_ids[20], "nope"),
                   feature_names=(source.gene_names[20], source.gene_names[30]),
                   sample_ids=(source.samples[4], source.samples[2]))
    sel = select(opened, q)
    assert sel.rows.tolist() == [20]
    assert sel.cols.tolist() == [2, 4]


def test_repeated_gene_name_selects_every_row(source: SourceMatrix, opened: MatrixFile) -> None:
    name = source.gene_names[4995]  # G4995 % 4990 -> G5, also row 5
    assert select(opened, SliceQuery(feature_names=(name,))).rows.tolist() == [5, 4995]


def test_unknown_ids_give_an_empty_slice(opened: MatrixFile) -> None:
    assert select(opened, SliceQuery(sample_ids=("missing",))).cells == 0


@pytest.mark.parametrize("seed", range(6))
def test_per_feature_min_and_max_thresholds(source: SourceMatrix, opened: MatrixFile, seed: int) -> None:
    rng = np.random.default_rng(seed)
    f1, f2 = (int(x) for x in rng.choice(5000, 2, replace=False))
    lo, hi = float(rng.uniform(0, 30)), float(rng.uniform(10, 80))
    q = SliceQuery(min_expression=(Threshold(lo, feature_id=source.gene_ids[f1]),),
                   max_expression=(Threshold(hi, feature_id=source.gene_ids[f2]),))
    sel = select(opened, q)
    v = source.values
    expected = np.flatnonzero((v[f1] >= np.float32(lo)) & (v[f2] <= np.float32(hi)))
    assert sel.cols.tolist() == expected.tolist()


def test_threshold_without_feature_means_any_selected_feature(
    source: SourceMatrix, opened: MatrixFile
) -> None:
    rows = [7, 8, 9]
    q = SliceQuery(feature_ids=tuple(source.gene_ids[r] for r in rows), min_expression=(Threshold(60.0),))
    sel = select(opened, q)
    expected = np.flatnonzero((source.values[rows] >= 60.0).any(axis=0))
    assert sel.cols.tolist() == expected.tolist()
    # unsliced rows: answered from the stored column maxima, same semantics
    full = select(opened, SliceQuery(min_expression=(Threshold(250.0),)))
    assert full.cols.tolist() == np.flatnonzero((source.values >= 250.0).any(axis=0)).tolist()


def test_nan_never_satisfies_a_bound(source: SourceMatrix, opened: MatrixFile) -> None:
    q = SliceQuery(min_expression=(Threshold(-1e30, feature_id=source.gene_ids[3]),))
    assert select(opened, q).cols.size == 0
    q2 = SliceQuery(feature_max_value=1e30)
    assert 3 not in select(opened, q2).rows.tolist()


@pytest.mark.parametrize("with_samples", [False, True])
def test_feature_min_max_value_keep_features(
    source: SourceMatrix, opened: MatrixFile, with_samples: bool
) -> None:
    cols = [1, 5, 9] if with_samples else list(range(37))
    q = SliceQuery(sample_ids=tuple(source.samples[c] for c in cols) if with_samples else None,
                   feature_min_value=40.0, feature_max_value=2.0)
    sel = select(opened, q)
    sub = source.values[:, cols]
    expected = np.flatnonzero((sub >= 40.0).any(axis=1) & (sub <= 2.0).any(axis=1))
    assert sel.rows.tolist() == expected.tolist()


def test_continuous_range(tmp_path: Path) -> None:
    positions = [f"chr1:{i}" for i in range(10)] + [f"chr5:{i}" for i in range(100, 120)]
    values = np.arange(3 * 30, dtype=np.float32).reshape(3, 30)
    write_matrix(tmp_path / "c.h5", kind=CONTINUOUS, values=values, row_attrs={"tracks": ["a", "b", "c"]},
                 col_attrs={"position": positions})
    with MatrixFile.open(tmp_path / "c.h5") as mf:
        sel = select(mf, SliceQuery(chrom="chr5", start=105, end=108, sample_ids=("c", "a")))
        assert [positions[c] for c in sel.cols] == ["chr5:105", "chr5:106", "chr5:107"]
        assert sel.rows.tolist() == [0, 2]
        assert select(mf, SliceQuery(chrom="chr1")).cols.tolist() == list(range(10))
        assert select(mf, SliceQuery(chrom="chr9")).cells == 0
