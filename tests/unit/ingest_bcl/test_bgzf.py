"""NextSeq 500/550 layout: lane-wide `<cccc>.bcl.bgzf` per cycle + `s_<lane>.bci` tile index,
lane-level `s_<lane>.filter` / `s_<lane>.locs`. Codecs round-trip, the demultiplexed output equals
the simulator's truth, and damaged files end in a DemuxError naming the file."""

from __future__ import annotations

import shutil
import struct
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pysam.libcbgzf import BGZFile

from services.ingest.bcl import codecs
from services.ingest.bcl.demux import DemuxOptions, run_demux
from services.ingest.bcl.errors import BaseCallFileError, RunFolderError
from services.ingest.bcl.runinfo import parse_runinfo
from services.ingest.bcl.simulate import SimulationResult, simulate_run

from .oracle import Expect, expected_fastqs, read_fastq

BASE = "Data/Intensities/BaseCalls"


# --------------------------------------------------------------------------------- codecs


@given(st.lists(st.tuples(st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1)), max_size=50, unique_by=lambda r: r[0]))
def test_bci_round_trip_and_offsets(recs: list[tuple[int, int]]) -> None:
    data = codecs.encode_bci(recs)
    if not recs:
        with pytest.raises(BaseCallFileError, match="no tile records"):
            codecs.decode_bci(data, path="L001/s_1.bci")
        return
    assert codecs.decode_bci(data) == recs
    offsets = codecs.bci_offsets(recs)
    assert [offsets[t][1] for t, _ in recs] == [n for _, n in recs]
    assert [offsets[t][0] for t, _ in recs] == [sum(n for _, n in recs[:i]) for i in range(len(recs))]


def test_bad_bci() -> None:
    with pytest.raises(BaseCallFileError, match="truncated tile index: 12 bytes") as e:
        codecs.decode_bci(struct.pack("<III", 1101, 5, 1102), path="BaseCalls/L001/s_1.bci")
    assert str(e.value).startswith("BaseCalls/L001/s_1.bci: ")
    with pytest.raises(BaseCallFileError, match="tile 1101 is listed twice"):
        codecs.decode_bci(codecs.encode_bci([(1101, 5), (1101, 6)]))


calls_st = st.lists(st.integers(0, 255), max_size=400).map(lambda v: np.array(v, dtype=np.uint8))


@given(st.lists(calls_st, min_size=1, max_size=4), st.integers(1, 64))
@settings(max_examples=40, deadline=None)
def test_bgzf_tile_streams_round_trip(
    tmp_path_factory: pytest.TempPathFactory, tiles: list[np.ndarray], block: int
) -> None:
    """Each tile read from its offset, in uneven chunks, across block edges; pysam reads the same file."""
    lane = np.concatenate(tiles)
    raw = codecs.encode_bcl(lane)
    p = tmp_path_factory.mktemp("bgzf") / "0001.bcl.bgzf"
    p.write_bytes(codecs.bgzf_bytes(raw, block_size=block))
    with BGZFile(str(p), "rb", index=None) as f:
        assert f.read() == raw
    start = 0
    for calls in tiles:
        s = codecs.BgzfTileStream(p, start=start, clusters=calls.size, lane_clusters=lane.size)
        parts = [s.read(min(5, calls.size - i)) for i in range(0, calls.size, 5)]
        s.close()
        assert np.array_equal(np.concatenate(parts) if parts else np.zeros(0, np.uint8), calls)
        start += calls.size


def test_pysam_written_bgzf_is_read(tmp_path: Path) -> None:
    calls = (np.arange(200_000) % 251).astype(np.uint8)
    p = tmp_path / "0001.bcl.bgzf"
    with BGZFile(str(p), "wb", index=None) as f:
        f.write(codecs.encode_bcl(calls))
    assert len(codecs.bgzf_index(p)[0]) > 2  # several blocks
    s = codecs.BgzfTileStream(p, start=150_000, clusters=50_000, lane_clusters=200_000)
    assert np.array_equal(s.read(50_000), calls[150_000:])
    s.close()


def test_truncated_and_corrupt_bgzf(tmp_path: Path) -> None:
    data = codecs.bgzf_bytes(codecs.encode_bcl((np.arange(3000) % 251).astype(np.uint8)), block_size=500)
    p = tmp_path / "0007.bcl.bgzf"
    p.write_bytes(data[: len(data) // 2])
    with pytest.raises(BaseCallFileError, match="truncated BGZF block") as e:
        codecs.BgzfTileStream(p, start=0, clusters=3000, lane_clusters=3000, display="L001/0007.bcl.bgzf")
    assert e.value.path == "L001/0007.bcl.bgzf"
    bad = bytearray(data)
    bad[40:60] = b"\xff" * 20  # inside the first block's deflate data
    p.write_bytes(bytes(bad))
    with pytest.raises(BaseCallFileError, match="corrupt BGZF block at byte 0"):
        s = codecs.BgzfTileStream(p, start=0, clusters=3000, lane_clusters=3000)
        s.read(3000)
    p.write_bytes(codecs.gzip_bytes(codecs.encode_bcl(np.zeros(10, np.uint8))))  # plain gzip: no BC field
    with pytest.raises(BaseCallFileError, match=r"not a BGZF block|no BGZF block size"):
        codecs.BgzfTileStream(p, start=0, clusters=10, lane_clusters=10)
    p.write_bytes(data)
    with pytest.raises(BaseCallFileError, match=r"header says 3000 clusters but s_<lane>\.bci lists 2999"):
        codecs.BgzfTileStream(p, start=0, clusters=2999, lane_clusters=2999)


# ------------------------------------------------------------------------------ simulator


def test_simulated_layout_matches_the_manifest(tmp_path: Path) -> None:
    res = simulate_run(tmp_path / "run", fmt="bcl.bgzf", clusters=90, lanes=2, tiles=3, reads="5,4", samples=2)
    info = parse_runinfo(res.run_dir / "RunInfo.xml")
    expected = info.expected_files("bcl.bgzf")
    assert set(expected) == set(res.files) - {"RunParameters.xml", "SampleSheet.csv"}
    assert f"{BASE}/L002/0009.bcl.bgzf" in expected and f"{BASE}/L001/s_1.bci" in expected
    bci = codecs.decode_bci((res.run_dir / f"{BASE}/L002/s_2.bci").read_bytes())
    assert bci == [(1101, 15), (1102, 15), (1103, 15)]


# ------------------------------------------------------------------------------- golden


def _run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **kw: object) -> SimulationResult:
    monkeypatch.setattr(codecs, "BGZF_MAX_INPUT", 97)  # many blocks; tiles start inside blocks
    args: dict[str, object] = {"clusters": 900, "lanes": 2, "tiles": 3, "reads": "14,8,8,12", "samples": 3, "seed": 7}
    args.update(kw)
    return simulate_run(tmp_path / "run", fmt="bcl.bgzf", **args)  # type: ignore[arg-type]


@pytest.mark.parametrize("threads", [1, 2])
def test_golden_dual_index_two_lanes_three_tiles(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, threads: int) -> None:
    res = _run(tmp_path, monkeypatch)
    assert len(codecs.bgzf_index(res.run_dir / f"{BASE}/L001/0001.bcl.bgzf")[0]) >= 5
    out = tmp_path / "out"
    result = run_demux(res.run_dir, out, DemuxOptions(threads=threads, chunk_clusters=64))
    assert res.truth_path is not None
    info = res.run_info
    want = expected_fastqs(
        res.truth_path, Expect(info.instrument, info.number, info.flowcell, ["Y14", "I8", "I8", "Y12"], res.samples)
    )
    got = {str(p.relative_to(out)): read_fastq(p) for p in out.rglob("*.fastq.gz")}
    for name, records in want.items():
        assert got.get(name) == records, f"{name} differs"
    assert not {n for n, r in got.items() if r and n not in want}
    assert sum(len(r) for n, r in got.items() if "_R1_" in n) == sum(result.lane_pf.values())
    assert (out / "Logs/FastqComplete.txt").is_file()


# ---------------------------------------------------------------------------- bad input


@pytest.fixture(scope="module")
def bgzf_run(tmp_path_factory: pytest.TempPathFactory) -> SimulationResult:
    base = tmp_path_factory.mktemp("bgzfrun")
    return simulate_run(base / "run", fmt="bcl.bgzf", clusters=120, tiles=2, reads="10,8,8,10", samples=3, truth=False)


def _fails(res: SimulationResult, tmp_path: Path, damage: str, exc: type[Exception], problem: str) -> str:
    run = tmp_path / "run"
    shutil.copytree(res.run_dir, run)
    f = run / BASE / damage
    data = f.read_bytes()
    if damage.endswith(".bci"):
        f.write_bytes(data[:-3])
    elif damage.endswith(".filter"):
        f.write_bytes(data[:-1])
    else:
        f.write_bytes(data[: len(data) - 40])
    out = tmp_path / "out"
    with pytest.raises(exc, match=problem) as e:
        run_demux(run, out, DemuxOptions())
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out.partial")]
    return str(e.value)


@pytest.mark.parametrize(
    ("damage", "problem"),
    [
        ("L001/0013.bcl.bgzf", "L001/0013.bcl.bgzf: truncated"),
        ("L001/s_1.bci", "L001/s_1.bci: truncated tile index"),
        ("L001/s_1.filter", "L001/s_1.filter: filter header says 120 clusters but the file holds 119"),
    ],
)
def test_damaged_files_are_named(bgzf_run: SimulationResult, tmp_path: Path, damage: str, problem: str) -> None:
    _fails(bgzf_run, tmp_path, damage, BaseCallFileError, problem)


def test_tile_index_must_match_runinfo(bgzf_run: SimulationResult, tmp_path: Path) -> None:
    run = tmp_path / "run"
    shutil.copytree(bgzf_run.run_dir, run)
    (run / BASE / "L001/s_1.bci").write_bytes(codecs.encode_bci([(1101, 60), (1109, 60)]))
    with pytest.raises(BaseCallFileError, match=r"s_1.bci: tiles differ from RunInfo.xml for lane 1: missing \[1102\]"):
        run_demux(run, tmp_path / "out", DemuxOptions())


def test_missing_cycle_file(bgzf_run: SimulationResult, tmp_path: Path) -> None:
    run = tmp_path / "run"
    shutil.copytree(bgzf_run.run_dir, run)
    (run / BASE / "L001/0030.bcl.bgzf").unlink()
    with pytest.raises(RunFolderError, match=r"1 file\(s\) missing from the run folder: .*L001/0030.bcl.bgzf"):
        run_demux(run, tmp_path / "out", DemuxOptions())


def test_cli_simulate_bgzf_then_demux(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from libs.sdk.commands import demux as demux_cmd
    from libs.sdk.commands import simulate as simulate_cmd

    run = tmp_path / "run"
    argv = [str(run), "--format", "bcl.bgzf", "--clusters", "200", "--reads", "12,8,12", "--samples", "2", "--quiet"]
    assert simulate_cmd.main(argv) == 0
    assert (run / BASE / "L001/0032.bcl.bgzf").is_file()
    out = tmp_path / "fq"
    assert demux_cmd.main([str(run), "--out", str(out), "--threads", "1"]) == 0
    assert (out / "Sample2_S2_L001_R2_001.fastq.gz").is_file()
    with BGZFile(str(run / BASE / "L001/0001.bcl.bgzf"), "rb", index=None) as f:
        assert struct.unpack("<I", f.read(4))[0] == 200
    capsys.readouterr()
