"""TSV/loom import and streamed output: round trips (NaN included), loompy-valid loom, clear errors."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import h5py
import loompy
import numpy as np
import orjson
import pytest

from services.rnaget.formats import (
    CONTINUOUS,
    file_chunks,
    format_block,
    format_lines,
    import_loom,
    import_tsv,
    iter_lines,
    read_ahead,
    tsv_chunks,
    write_loom,
)
from services.rnaget.matrix import MatrixFile, MatrixFormatError, Selection
from services.rnaget.slicing import SliceQuery, select
from tests.shared import SHARED

from .conftest import SourceMatrix

DATA = (SHARED / "data/rnaget-compliance")


def _parse_tsv(data: bytes, n_labels: int = 2) -> tuple[list[str], list[list[str]], np.ndarray]:
    lines = [ln for ln in data.decode().split("\n") if ln and not ln.startswith("#")]
    header = lines[0].split("\t")
    labels = [ln.split("\t")[:n_labels] for ln in lines[1:]]
    values = np.array([[float(x) for x in ln.split("\t")[n_labels:]] for ln in lines[1:]], dtype=np.float32)
    return header, labels, values


def test_format_block_uses_shortest_float32_repr() -> None:
    block = np.array([[0.4, 1.0, np.nan], [0.7, 1e-7, 2755.0]], dtype=np.float32)
    assert format_block(block) == [b"0.4\t1.0\tNaN", b"0.7\t1e-7\t2755.0"]
    assert format_block(np.array([[np.inf, 1.5], [np.nan, -np.inf]], dtype=np.float32)) == [
        b"inf\t1.5",
        b"NaN\t-inf",
    ]


def _reference_line(row: np.ndarray) -> bytes:
    # the slow way: every value on its own through orjson (ryu's shortest float32 text), NaN spelled out
    return b"\t".join(
        b"NaN" if np.isnan(x) else orjson.dumps(x, option=orjson.OPT_SERIALIZE_NUMPY) for x in row
    )


@pytest.mark.parametrize("shape", [(1, 1), (1, 700), (300, 1), (64, 33), (3, 2000)])
def test_format_block_matches_value_by_value_formatting(shape: tuple[int, int]) -> None:
    rng = np.random.default_rng(shape[0] * 1000 + shape[1])
    # any bit pattern: subnormals, -0.0, extremes, NaN with payloads (inf has its own test)
    values = rng.integers(0, 2**32, size=shape, dtype=np.uint32).view(np.float32)
    values[np.isinf(values)] = 1.0
    values[rng.random(shape) < 0.1] = np.nan
    values[0, 0] = np.nan  # a line that starts with NaN ...
    values[-1, -1] = np.nan  # ... and one that ends with it
    lines = format_block(values)
    assert lines == [_reference_line(row) for row in values]
    parsed = np.array([[float(x) for x in ln.split(b"\t")] for ln in lines], dtype=np.float32)
    assert np.array_equal(parsed, values, equal_nan=True)


def test_format_lines_end_in_newlines_and_handle_empty_shapes() -> None:
    assert [bytes(ln) for ln in format_lines(np.array([[1.5, np.nan]], dtype=np.float32))] == [b"1.5\tNaN\n"]
    assert format_lines(np.empty((0, 4), np.float32)) == []
    assert [bytes(ln) for ln in format_lines(np.empty((2, 0), np.float32))] == [b"\n", b"\n"]


def test_read_ahead_keeps_order_and_stops_when_closed() -> None:
    assert list(read_ahead(iter(range(5)))) == [0, 1, 2, 3, 4]
    produced: list[int] = []

    def source() -> Iterator[int]:
        for i in range(100):
            produced.append(i)
            yield i

    reader = read_ahead(source())
    assert next(reader) == 0
    reader.close()  # waits for the one read in flight, starts no other
    assert produced == [0, 1]


def test_tsv_output_round_trips_a_random_slice(source: SourceMatrix, opened: MatrixFile) -> None:
    rng = np.random.default_rng(3)
    sel = Selection(np.sort(rng.choice(5000, 2500, replace=False)), np.array([0, 3, 4, 30]))
    header, labels, values = _parse_tsv(b"".join(tsv_chunks(opened, sel, comments=["test"])))
    assert header[:2] == ["GeneID", "GeneName"]
    assert header[2] == f"{source.samples[0]}, {source.tissues[0]}"
    assert [lab[0] for lab in labels] == [source.gene_ids[r] for r in sel.rows]
    assert np.array_equal(values, source.values[np.ix_(sel.rows, sel.cols)], equal_nan=True)


def test_tsv_output_streams_in_bounded_chunks(opened: MatrixFile) -> None:
    sel = select(opened, SliceQuery())
    chunks = list(tsv_chunks(opened, sel, chunk_cells=20_000))
    assert len(chunks) > 2
    assert max(len(c) for c in chunks) < 2 * sum(len(c) for c in chunks) / (len(chunks) - 1)


def test_loom_output_opens_in_loompy_with_nan(
    tmp_path: Path, source: SourceMatrix, opened: MatrixFile
) -> None:
    sel = Selection(np.array([1, 3, 77, 4999]), np.arange(37))
    write_loom(opened, sel, tmp_path / "out.loom")
    with loompy.connect(str(tmp_path / "out.loom"), mode="r", validate=True) as ds:
        assert ds.shape == (4, 37)
        assert np.array_equal(ds[:, :], source.values[sel.rows], equal_nan=True)
        assert np.isnan(ds[1, :]).all()
        assert list(ds.ra.GeneID) == [source.gene_ids[r] for r in sel.rows]
        assert ds.ca.Sample[5] == source.samples[5] and ds.ca.Tissue[5] == source.tissues[5]
    with h5py.File(tmp_path / "out.loom") as h5:
        assert h5["matrix"].dtype == np.float32 and h5.attrs["LOOM_SPEC_VERSION"] == "2.0.1"


def test_loom_output_of_an_empty_slice_is_valid(tmp_path: Path, opened: MatrixFile) -> None:
    write_loom(opened, Selection(np.array([], dtype=np.intp), np.arange(37)), tmp_path / "e.loom")
    with h5py.File(tmp_path / "e.loom") as h5:
        assert h5["matrix"].shape == (0, 37)


def test_file_chunks_deletes_the_temp_file(tmp_path: Path) -> None:
    p = tmp_path / "x"
    p.write_bytes(b"a" * 3000)
    assert b"".join(file_chunks(p, delete=True, size=1000)) == b"a" * 3000
    assert not p.exists()


def test_compliance_loom_and_tsv_import_to_the_same_matrix(tmp_path: Path) -> None:
    import_loom(DATA / "expression.loom", tmp_path / "a.h5")
    with (DATA / "expression.tsv").open("rb") as f:
        assert import_tsv(f, tmp_path / "b.h5") == (100, 100)
    with MatrixFile.open(tmp_path / "a.h5") as a, MatrixFile.open(tmp_path / "b.h5") as b:
        sel = select(a, SliceQuery())
        assert np.array_equal(a.read(sel), b.read(sel))
        assert a.col_attrs["Condition"][8] == "bladder transitional cell carcinoma"
        with h5py.File(DATA / "expression.loom") as src:
            assert np.array_equal(a.read(sel), src["matrix"][()].astype(np.float32))


def test_continuous_tsv_and_loom_import(tmp_path: Path) -> None:
    import_loom(DATA / "continuous.loom", tmp_path / "c.h5", kind=CONTINUOUS)
    with (DATA / "continuous.tsv").open("rb") as f:
        import_tsv(f, tmp_path / "d.h5", kind=CONTINUOUS)
    with MatrixFile.open(tmp_path / "c.h5") as c, MatrixFile.open(tmp_path / "d.h5") as d:
        sel = select(c, SliceQuery())
        assert np.allclose(c.read(sel), d.read(sel), atol=1e-3)
        assert c.col_attrs["position"][212] == "chr5:143"
        part = select(c, SliceQuery(chrom="chr1", start=5, end=9))
        lines = list(iter_lines(tsv_chunks(c, part)))
        assert lines[0] == b"#labels\ttracks" and lines[1] == b"#range\tchr1:5-9"
        assert lines[2].split(b"\t") == [b"tracks", b"chr1:5", b"chr1:6", b"chr1:7", b"chr1:8"]


def test_nan_round_trips_through_tsv_import(tmp_path: Path) -> None:
    text = b"# comment\nid\tname\ts1\ts2\ng1\tA\t1.5\tNaN\ng2\tB\tnan\t0.25\n"
    import_tsv(io.BytesIO(text), tmp_path / "n.h5")
    with MatrixFile.open(tmp_path / "n.h5") as mf:
        out = b"".join(tsv_chunks(mf, select(mf, SliceQuery())))
    assert out.endswith(b"g1\tA\t1.5\tNaN\ng2\tB\tNaN\t0.25\n")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (b"", "no header row"),
        (b"id\tname\n", "no value columns"),
        (b"id\tname\ts1\ts1\n", "duplicate column id 's1'"),
        (b"id\tname\ts1\ts2\ng1\tA\t1\t2\ng1\tB\t3\t4\n", "duplicate row id 'g1'"),
        (b"id\tname\ts1\ts2\ng1\tA\t1\tabc\n", "line 2: could not convert string 'abc'"),
        (b"id\tname\ts1\ts2\ng1\tA\t1\n", "rows from line 2"),
        (b"id\tname\ts1\ts2\ng1\n", "line 2: expected 2 label columns"),
    ],
)
def test_bad_tsv_is_refused_with_location(tmp_path: Path, text: bytes, message: str) -> None:
    with pytest.raises(MatrixFormatError, match=message):
        import_tsv(io.BytesIO(text), tmp_path / "bad.h5", source="upload.tsv")
    assert list(tmp_path.iterdir()) == []


def test_bad_continuous_header_is_refused(tmp_path: Path) -> None:
    with pytest.raises(MatrixFormatError, match="not a position"):
        import_tsv(io.BytesIO(b"track\tchr1:0\tfoo\n"), tmp_path / "c.h5", kind=CONTINUOUS)


def test_non_loom_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "x.loom").write_bytes(b"not hdf5")
    with pytest.raises(MatrixFormatError, match="not an HDF5/loom file"):
        import_loom(tmp_path / "x.loom", tmp_path / "y.h5")
