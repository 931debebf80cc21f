"""Several matrices' slices as one: samples concatenated, features united, NaN where a matrix has no value."""

from __future__ import annotations

from pathlib import Path

import h5py
import loompy
import numpy as np
import pytest

from services.rnaget.formats import CONTINUOUS, EXPRESSION, iter_lines, tsv_chunks, write_loom
from services.rnaget.matrix import MatrixFile, Selection, write_matrix
from services.rnaget.merge import MergeError, merge
from services.rnaget.slicing import SliceQuery, select


def _expression(path: Path, genes: list[str], samples: list[str], seed: int, **cols: list[str]) -> np.ndarray:
    rng = np.random.default_rng(seed)
    values = rng.gamma(1.0, 10.0, size=(len(genes), len(samples))).astype(np.float32)
    values[rng.random(values.shape) < 0.1] = np.nan
    write_matrix(path, kind=EXPRESSION, values=values,
                 row_attrs={"GeneID": genes, "GeneName": [g.lower() for g in genes]},
                 col_attrs={"Sample": samples, **cols})
    return values


def test_expression_slices_merge_samples_side_by_side_and_unite_features(tmp_path: Path) -> None:
    genes_a = [f"G{i}" for i in range(0, 60)]
    genes_b = [f"G{i}" for i in range(90, 30, -1)]  # overlaps a, another order, new genes
    va = _expression(tmp_path / "a.h5", genes_a, ["a1", "a2", "a3"], 1, Tissue=["t1", "t2", "t3"])
    vb = _expression(tmp_path / "b.h5", genes_b, ["b1", "b2"], 2)
    q = SliceQuery(feature_ids=("G0", "G40", "G85", "G999"))
    with MatrixFile.open(tmp_path / "a.h5") as a, MatrixFile.open(tmp_path / "b.h5") as b:
        merged = merge(["A", "B"], [(a, select(a, q)), (b, select(b, q))])
        sel = merged.selection()
        assert merged.shape == (3, 5) and merged.sources == ["A", "B"]
        assert merged.row_attrs["GeneID"].tolist() == ["G0", "G40", "G85"]  # a's order, then b's new ones
        assert merged.row_attrs["GeneName"].tolist() == ["g0", "g40", "g85"]
        assert merged.col_attrs["Sample"].tolist() == ["a1", "a2", "a3", "b1", "b2"]
        assert merged.col_attrs["Tissue"].tolist() == ["t1", "t2", "t3", "", ""]
        expected = np.full((3, 5), np.nan, np.float32)
        expected[0, :3], expected[1, :3] = va[0], va[40]
        expected[1, 3:], expected[2, 3:] = vb[genes_b.index("G40")], vb[genes_b.index("G85")]
        blocks = list(merged.iter_blocks(sel, 2))
        assert [len(r) for r, _ in blocks] == [2, 1]
        assert np.array_equal(np.concatenate([v for _, v in blocks]), expected, equal_nan=True)

        lines = list(iter_lines(tsv_chunks(merged, sel)))
        assert lines[0] == b"GeneID\tGeneName\ta1, t1\ta2, t2\ta3, t3\tb1, \tb2, "
        assert lines[3].startswith(b"G85\tg85\tNaN\tNaN\tNaN\t")
        write_loom(merged, sel, tmp_path / "m.loom")
    with loompy.connect(str(tmp_path / "m.loom"), mode="r") as ds:
        assert np.array_equal(ds[:, :], expected, equal_nan=True)
        assert list(ds.ca.Sample) == ["a1", "a2", "a3", "b1", "b2"] and list(ds.ra.GeneID) == ["G0", "G40", "G85"]


def test_a_matrix_with_an_empty_slice_contributes_nothing(tmp_path: Path) -> None:
    _expression(tmp_path / "a.h5", ["G1", "G2"], ["a1"], 1)
    _expression(tmp_path / "b.h5", ["G3"], ["b1"], 2)
    q = SliceQuery(feature_ids=("G2",))
    with MatrixFile.open(tmp_path / "a.h5") as a, MatrixFile.open(tmp_path / "b.h5") as b:
        merged = merge(["A", "B"], [(a, select(a, q)), (b, select(b, q))])
        assert merged.shape == (1, 1) and merged.sources == ["A"]
        nothing = merge(["B"], [(b, select(b, q))])
        assert nothing.shape == (0, 0) and list(nothing.iter_blocks(nothing.selection())) == []


def test_a_sample_in_two_matrices_is_refused(tmp_path: Path) -> None:
    _expression(tmp_path / "a.h5", ["G1"], ["s1", "s2"], 1)
    _expression(tmp_path / "b.h5", ["G1"], ["s2"], 2)
    with MatrixFile.open(tmp_path / "a.h5") as a, MatrixFile.open(tmp_path / "b.h5") as b:
        with pytest.raises(MergeError, match="Sample 's2' is in both A and B"):
            merge(["A", "B"], [(a, select(a, SliceQuery())), (b, select(b, SliceQuery()))])
        with pytest.raises(ValueError, match="read whole"):
            m = merge(["A"], [(a, select(a, SliceQuery()))])
            list(m.iter_blocks(Selection(np.array([0]), np.array([0]))))


def test_continuous_tracks_concatenate_and_positions_unite_in_genome_order(tmp_path: Path) -> None:
    pos_a = ["chr1:5", "chr1:6", "chr1:7", "chr2:1"]
    pos_b = ["chr1:9", "chr1:6", "chr1:10"]
    va = np.arange(8, dtype=np.float32).reshape(2, 4)
    vb = np.arange(100, 103, dtype=np.float32).reshape(1, 3)
    write_matrix(tmp_path / "a.h5", kind=CONTINUOUS, values=va, row_attrs={"tracks": ["t1", "t2"]},
                 col_attrs={"position": pos_a})
    write_matrix(tmp_path / "b.h5", kind=CONTINUOUS, values=vb, row_attrs={"tracks": ["u1"]},
                 col_attrs={"position": pos_b})
    q = SliceQuery(chrom="chr1", start=6, end=11)
    with MatrixFile.open(tmp_path / "a.h5") as a, MatrixFile.open(tmp_path / "b.h5") as b:
        merged = merge(["A", "B"], [(a, select(a, q)), (b, select(b, q))])
        assert merged.row_attrs["tracks"].tolist() == ["t1", "t2", "u1"]
        assert merged.col_attrs["position"].tolist() == ["chr1:6", "chr1:7", "chr1:9", "chr1:10"]
        nan = np.nan
        expected = np.array([[1, 2, nan, nan], [5, 6, nan, nan], [101, nan, 100, 102]], dtype=np.float32)
        assert np.array_equal(next(merged.iter_blocks(merged.selection()))[1], expected, equal_nan=True)
        lines = list(iter_lines(tsv_chunks(merged, merged.selection())))
        assert lines[:2] == [b"#labels\ttracks", b"#range\tchr1:6-11"]
        write_loom(merged, merged.selection(), tmp_path / "c.loom")
    with h5py.File(tmp_path / "c.loom") as h5:
        assert h5["col_attrs/position"][()].tolist() == [b"chr1:6", b"chr1:7", b"chr1:9", b"chr1:10"]
