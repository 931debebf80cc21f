"""Property tests: every codec round-trips (write -> read), and corrupt input is named, not crashed on."""

from __future__ import annotations

import struct

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.ingest.bcl import codecs
from services.ingest.bcl.errors import BaseCallFileError

calls_st = st.lists(st.integers(0, 255), max_size=300).map(lambda v: np.array(v, dtype=np.uint8))


@given(calls_st)
def test_bcl_round_trip(calls: np.ndarray) -> None:
    assert np.array_equal(codecs.decode_bcl(codecs.encode_bcl(calls)), calls)


@given(calls_st)
@settings(max_examples=30)
def test_bcl_gz_stream_round_trip_in_chunks(tmp_path_factory: pytest.TempPathFactory, calls: np.ndarray) -> None:
    p = tmp_path_factory.mktemp("bcl") / "s_1_1101.bcl.gz"
    p.write_bytes(codecs.gzip_bytes(codecs.encode_bcl(calls)))
    s = codecs.BclStream(p)
    parts = [s.read(min(7, calls.size - i)) for i in range(0, calls.size, 7)]
    s.finish()
    assert np.array_equal(np.concatenate(parts) if parts else np.zeros(0, np.uint8), calls)


@given(st.lists(st.booleans(), max_size=500))
def test_filter_round_trip(pf: list[bool]) -> None:
    assert codecs.decode_filter(codecs.encode_filter(pf)).tolist() == pf


@given(st.lists(st.tuples(st.floats(0, 2040, width=32), st.floats(0, 30000, width=32)), max_size=200))
def test_locs_round_trip(xy: list[tuple[float, float]]) -> None:
    arr = np.array(xy, dtype=np.float32).reshape(-1, 2)
    assert np.array_equal(codecs.decode_locs(codecs.encode_locs(arr)), arr)


@given(st.lists(st.tuples(st.integers(0, 20490), st.integers(0, 20000)), max_size=300))
def test_clocs_round_trip_on_the_tenth_pixel_grid(xy10: list[tuple[int, int]]) -> None:
    arr = (np.array(xy10, dtype=np.float64).reshape(-1, 2) / 10).astype(np.float32)
    arr = arr[codecs.clocs_order(arr)]
    again = codecs.decode_clocs(codecs.encode_clocs(arr))
    assert np.allclose(again, arr, atol=1e-3)
    x, y = codecs.fastq_coordinates(again)
    assert x.tolist() == [int(10 * float(a) + 1000 + 0.5) for a in again[:, 0]]
    assert y.tolist() == [int(10 * float(b) + 1000 + 0.5) for b in again[:, 1]]


cbcl_tiles = st.lists(
    st.lists(st.integers(0, 63 * 4 + 3), min_size=0, max_size=101).map(lambda v: np.array(v, dtype=np.uint8)),
    min_size=1,
    max_size=3,
)


def _binned(calls: np.ndarray) -> np.ndarray:
    """What a CBCL keeps: the nearest of the 3 call bins; quality 0 stays a no-call."""
    q = calls >> 2
    bins = np.array([12, 23, 37])
    nearest = bins[np.abs(q[:, None].astype(int) - bins[None, :]).argmin(axis=1)]
    return np.where(q == 0, 0, (nearest << 2) | (calls & 3)).astype(np.uint8)


@given(cbcl_tiles, st.booleans())
@settings(max_examples=40)
def test_cbcl_round_trip_and_tile_stream(
    tmp_path_factory: pytest.TempPathFactory, tiles: list[np.ndarray], excluded: bool
) -> None:
    entries = [(1101 + i, int(t.size), t) for i, t in enumerate(tiles)]
    data = codecs.encode_cbcl(entries, pf_excluded=excluded)
    header, decoded = codecs.decode_cbcl(data)
    assert header.pf_excluded == excluded
    assert [t.tile for t in header.tiles] == [e[0] for e in entries]
    for tile, _, calls in entries:
        assert np.array_equal(decoded[tile][: calls.size], _binned(calls))
    p = tmp_path_factory.mktemp("cbcl") / "L001_1.cbcl"
    p.write_bytes(data)
    last_tile, _, last = entries[-1]
    s = codecs.CbclTileStream(p, last_tile, stored=last.size)
    got = [s.read(min(5, last.size - i)) for i in range(0, last.size, 5)]
    s.close()
    assert np.array_equal(np.concatenate(got) if got else np.zeros(0, np.uint8), _binned(last))


def test_bcl_example_from_the_reference() -> None:
    calls = codecs.decode_bcl(struct.pack("<I", 2) + bytes([0x8B, 0x00]))
    from services.ingest.bcl.fastq import calls_to_text

    seq, qual = calls_to_text(calls)
    assert seq.tobytes() == b"TN" and qual.tobytes() == bytes([34 + 33, ord("#")])


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (b"\x01\x00", "truncated BCL"),
        (struct.pack("<I", 5) + b"abc", "says 5 clusters but the file holds 3"),
    ],
)
def test_bad_bcl(data: bytes, problem: str) -> None:
    with pytest.raises(BaseCallFileError, match=problem):
        codecs.decode_bcl(data, path="C1.1/s_1_1101.bcl")


def test_bad_filter_version_and_flag() -> None:
    with pytest.raises(BaseCallFileError, match="unsupported filter version 2"):
        codecs.decode_filter(struct.pack("<III", 0, 2, 1) + b"\x01")
    with pytest.raises(BaseCallFileError, match="invalid PF flag 0x07 at cluster 1"):
        codecs.decode_filter(struct.pack("<III", 0, 3, 2) + b"\x01\x07")


def test_truncated_and_corrupt_compressed_files(tmp_path) -> None:  # type: ignore[no-untyped-def]
    gz = codecs.gzip_bytes(codecs.encode_bcl(np.arange(1000, dtype=np.uint8) % 251))
    p = tmp_path / "s_1_1101.bcl.gz"
    p.write_bytes(gz[: len(gz) // 2])
    with pytest.raises(BaseCallFileError, match="truncated") as e:
        s = codecs.BclStream(p)
        s.read(1000)
    assert e.value.path is not None and e.value.path.endswith("s_1_1101.bcl.gz")
    data = codecs.encode_cbcl([(1101, 50, np.full(50, 0x8B, dtype=np.uint8))])
    with pytest.raises(BaseCallFileError, match="truncated CBCL"):
        codecs.decode_cbcl(data[:-5])
    with pytest.raises(BaseCallFileError, match="unsupported CBCL version"):
        codecs.decode_cbcl(b"\x02\x00" + data[2:])
    with pytest.raises(BaseCallFileError, match="truncated clocs"):
        codecs.decode_clocs(codecs.encode_clocs(np.array([[1.0, 1.0], [2.0, 2.0]], dtype=np.float32))[:-1])
