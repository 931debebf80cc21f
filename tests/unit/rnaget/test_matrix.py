"""The dual-layout matrix file: every slice reads back exactly the source cells, NaN included."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from services.rnaget.matrix import MatrixFile, MatrixFormatError, MatrixWriter, Selection, write_matrix

from .conftest import SourceMatrix


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and bool(np.array_equal(a, b, equal_nan=True))


def test_full_matrix_round_trips_with_nan(source: SourceMatrix, opened: MatrixFile) -> None:
    sel = Selection(np.arange(opened.shape[0]), np.arange(opened.shape[1]))
    assert opened.shape == source.values.shape
    assert _same(opened.read(sel), source.values)
    assert np.isnan(opened.read(sel)[3]).all()


@pytest.mark.parametrize("seed", range(12))
def test_random_slices_match_source_cell_by_cell(source: SourceMatrix, opened: MatrixFile, seed: int) -> None:
    rng = np.random.default_rng(seed)
    n_rows = int(rng.integers(1, 3000))
    n_cols = int(rng.integers(1, source.values.shape[1] + 1))
    rows = np.sort(rng.choice(source.values.shape[0], n_rows, replace=False))
    cols = np.sort(rng.choice(source.values.shape[1], n_cols, replace=False))
    got = opened.read(Selection(rows, cols))
    assert _same(got, source.values[np.ix_(rows, cols)])


def test_both_layouts_serve_the_same_cells(source: SourceMatrix, opened: MatrixFile) -> None:
    # few rows x all cols reads /by_row; all rows x one col reads /by_col
    rows = np.array([0, 1, 2, 4095, 4096, 4999])
    assert _same(opened.read(Selection(rows, np.arange(37))), source.values[rows])
    col = np.array([17])
    assert _same(opened.read(Selection(np.arange(5000), col)), source.values[:, col])


def test_blocks_come_in_matrix_order_and_bounded_size(opened: MatrixFile) -> None:
    sel = Selection(np.arange(0, 5000, 3), np.arange(37))
    blocks = list(opened.iter_blocks(sel, block_rows=100))
    assert all(len(rows) <= 100 for rows, _ in blocks)
    assert np.array_equal(np.concatenate([rows for rows, _ in blocks]), sel.rows)


def test_blocks_from_the_transposed_copy_are_bounded_and_exact(source: SourceMatrix, opened: MatrixFile) -> None:
    # all rows x two columns reads /by_col in wide spans and hands them out in blocks of block_rows
    sel = Selection(np.arange(5000), np.array([2, 30]))
    blocks = list(opened.iter_blocks(sel, block_rows=333))
    assert [len(rows) for rows, _ in blocks] == [333] * 15 + [5]
    assert _same(np.concatenate([values for _, values in blocks]), source.values[:, [2, 30]])


def test_stats_ignore_nan(source: SourceMatrix, opened: MatrixFile) -> None:
    assert np.isnan(opened.stats["row_max"][3])
    assert opened.stats["row_max"][0] == np.nanmax(source.values[0])
    assert opened.stats["col_min"][5] == np.nanmin(source.values[:, 5])


def test_labels_are_kept_in_order(source: SourceMatrix, opened: MatrixFile) -> None:
    assert opened.row_attrs["GeneID"].tolist() == source.gene_ids
    assert list(opened.col_attrs) == ["Sample", "Tissue"]
    assert opened.col_lookup("Sample")[source.samples[9]] == [9]


def test_failed_write_leaves_no_file(tmp_path: Path) -> None:
    dest = tmp_path / "x.h5"
    writer = MatrixWriter(dest, kind="expression", col_attrs={"Sample": ["a", "b"]})
    with pytest.raises(MatrixFormatError), writer as w:
        w.append(np.zeros((2, 3)), {"GeneID": ["g1", "g2"]})
    assert list(tmp_path.iterdir()) == []


def test_empty_matrix_is_refused(tmp_path: Path) -> None:
    with pytest.raises(MatrixFormatError, match="no rows"):
        write_matrix(tmp_path / "e.h5", kind="expression", values=np.zeros((0, 2)),
                     row_attrs={"GeneID": []}, col_attrs={"Sample": ["a", "b"]})
    assert not (tmp_path / "e.h5").exists()


def test_foreign_hdf5_is_refused(tmp_path: Path) -> None:
    import h5py

    with h5py.File(tmp_path / "f.h5", "w") as h5:
        h5["matrix"] = np.zeros((2, 2))
    with pytest.raises(MatrixFormatError, match="not a seqhub matrix"):
        MatrixFile.open(tmp_path / "f.h5")


def test_a_file_dropped_from_the_open_set_keeps_serving_a_download_in_flight(tmp_path: Path) -> None:
    from services.rnaget.formats import tsv_chunks
    from services.rnaget.models import Kind, MatrixRecord
    from services.rnaget.service import MatrixFiles

    wide = np.arange(30 * 5000, dtype=np.float32).reshape(30, 5000)  # wide: read row by row from /by_row
    genes = [f"g{i}" for i in range(30)]
    write_matrix(tmp_path / "a.h5", kind="expression", values=wide, row_attrs={"GeneID": genes, "GeneName": genes},
                 col_attrs={"Sample": [f"s{j}" for j in range(5000)]})
    write_matrix(tmp_path / "b.h5", kind="expression", values=np.zeros((1, 1)),
                 row_attrs={"GeneID": ["g"], "GeneName": ["g"]}, col_attrs={"Sample": ["s"]})
    files = MatrixFiles(tmp_path, capacity=1)
    first = MatrixRecord(id="A", kind=Kind.EXPRESSION, units="TPM", file="a.h5", rows=30, cols=5000)
    second = MatrixRecord(id="B", kind=Kind.EXPRESSION, units="TPM", file="b.h5", rows=1, cols=1)
    mf = files.get(first)
    chunks = tsv_chunks(mf, Selection(np.arange(30), np.arange(5000)), chunk_cells=5000)  # one row per chunk
    started = [next(chunks), next(chunks)]
    files.get(second)  # drops A from the open set while its download is under way
    lines = [ln for ln in b"".join([*started, *chunks]).split(b"\n") if ln]
    assert len(lines) == 1 + 30 and lines[-1].split(b"\t")[-1] == b"149999.0"
    assert files.get(first) is not mf  # opened again for the next request
    files.close()
