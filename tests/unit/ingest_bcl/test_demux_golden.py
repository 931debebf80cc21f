"""Golden tests: every record of every FASTQ file equals what the bcl2fastq rules say the
simulator's truth must produce (bases, qualities, header, file and order within the file)."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.ingest.bcl.demux import DemuxOptions, run_demux
from services.ingest.bcl.simulate import SimulationResult, simulate_run

from .oracle import Expect, expected_fastqs, read_fastq


def _check(res: SimulationResult, out: Path, e: Expect) -> dict[str, list[tuple[str, str, str]]]:
    assert res.truth_path is not None
    want = expected_fastqs(res.truth_path, e)
    got = {str(p.relative_to(out)): read_fastq(p) for p in out.rglob("*.fastq.gz")}
    for name, records in want.items():
        assert name in got, f"missing {name}"
        assert got[name] == records, f"{name} differs"
    extra = {n for n, r in got.items() if r and n not in want}
    assert not extra, f"unexpected non-empty files {extra}"
    return got


def _expect(res: SimulationResult, reads: list[str], **kw: object) -> Expect:
    info = res.run_info
    return Expect(info.instrument, info.number, info.flowcell, reads, res.samples, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize("fmt", ["bcl", "bcl.gz", "cbcl"])
@pytest.mark.parametrize("threads", [1, 2])
def test_dual_index_two_lanes_two_tiles(tmp_path: Path, fmt: str, threads: int) -> None:
    res = simulate_run(tmp_path / "run", fmt=fmt, clusters=600, lanes=2, tiles=2, reads="14,8,8,12", samples=3, seed=11)
    out = tmp_path / "out"
    result = run_demux(res.run_dir, out, DemuxOptions(threads=threads))
    got = _check(res, out, _expect(res, ["Y14", "I8", "I8", "Y12"]))
    assert "Undetermined_S0_L002_R2_001.fastq.gz" in got
    assert (out / "Logs/FastqComplete.txt").is_file()
    assert sum(len(r) for n, r in got.items() if "_R1_" in n) == sum(result.lane_pf.values())


@pytest.mark.parametrize("fmt", ["bcl.gz", "cbcl"])
def test_single_index_v1_sheet_uses_sample_order(tmp_path: Path, fmt: str) -> None:
    res = simulate_run(
        tmp_path / "run",
        fmt=fmt,
        clusters=300,
        lanes=1,
        tiles=2,
        reads="10,6,10",
        samples=4,
        seed=5,
        sample_sheet_version=1,
    )
    run_demux(res.run_dir, tmp_path / "out")
    got = _check(res, tmp_path / "out", _expect(res, ["Y10", "I6", "Y10"], tolerances=(1,)))
    assert {n.split("_")[1] for n in got} == {"S0", "S1", "S2", "S3", "S4"}


def test_no_index_single_sample(tmp_path: Path) -> None:
    res = simulate_run(tmp_path / "run", fmt="bcl", clusters=200, lanes=1, tiles=2, reads="16", samples=1, seed=2)
    run_demux(res.run_dir, tmp_path / "out")
    got = _check(res, tmp_path / "out", _expect(res, ["Y16"], tolerances=()))
    assert got["Undetermined_S0_L001_R1_001.fastq.gz"] == []
    assert got["Sample1_S1_L001_R1_001.fastq.gz"][0][0].endswith(" 1:N:0:1")


@pytest.mark.parametrize("mismatches", [0, 2])
def test_tolerance_edges(tmp_path: Path, mismatches: int) -> None:
    res = simulate_run(
        tmp_path / "run",
        fmt="bcl",
        clusters=500,
        lanes=1,
        tiles=1,
        reads="8,8,8,8",
        samples=3,
        seed=7,
        index_distance=5,
    )
    run_demux(res.run_dir, tmp_path / "out", DemuxOptions(barcode_mismatches=(mismatches,)))
    _check(res, tmp_path / "out", _expect(res, ["Y8", "I8", "I8", "Y8"], tolerances=(mismatches, mismatches)))


def test_include_non_pf_flags_them_y(tmp_path: Path) -> None:
    res = simulate_run(
        tmp_path / "run",
        fmt="cbcl",
        clusters=400,
        lanes=1,
        tiles=2,
        reads="10,8,10",
        samples=2,
        seed=3,
        cbcl_pf_excluded=False,
    )
    run_demux(res.run_dir, tmp_path / "out", DemuxOptions(include_non_pf=True))
    got = _check(res, tmp_path / "out", _expect(res, ["Y10", "I8", "Y10"], tolerances=(1,), include_non_pf=True))
    flags = [h.split(" ")[1].split(":")[1] for recs in got.values() for h, _, _ in recs]
    assert "Y" in flags and "N" in flags


def test_umi_from_override_cycles_and_no_lane_splitting_and_index_fastqs(tmp_path: Path) -> None:
    res = simulate_run(
        tmp_path / "run",
        fmt="bcl.gz",
        clusters=400,
        lanes=2,
        tiles=1,
        reads="16,8,8,16",
        samples=2,
        seed=9,
        override_cycles="U5Y11;I8;I8;Y16",
        extra_settings={"NoLaneSplitting": "true", "CreateFastqForIndexReads": "1"},
    )
    run_demux(res.run_dir, tmp_path / "out")
    got = _check(res, tmp_path / "out", _expect(res, ["U5Y11", "I8", "I8", "Y16"], lane_split=False, index_fastqs=True))
    head = got["Sample1_S1_R1_001.fastq.gz"][0][0]
    assert len(head.split(" ")[0].split(":")[-1]) == 5  # the UMI
    assert "Sample1_S1_I2_001.fastq.gz" in got


@pytest.mark.parametrize("behavior", ["trim", "mask"])
def test_adapters(tmp_path: Path, behavior: str) -> None:
    res = simulate_run(
        tmp_path / "run",
        fmt="bcl",
        clusters=300,
        lanes=1,
        tiles=1,
        reads="60,8,60",
        samples=2,
        seed=4,
        adapter_fraction=0.5,
        extra_settings={"AdapterBehavior": behavior},
    )
    from services.ingest.bcl.simulate import ADAPTER_READ1, ADAPTER_READ2

    run_demux(res.run_dir, tmp_path / "out")
    e = _expect(res, ["Y60", "I8", "Y60"], tolerances=(1,), adapters=(ADAPTER_READ1, ADAPTER_READ2))
    if behavior == "mask":
        e.min_len = 60
    got = _check(res, tmp_path / "out", e)
    lengths = {len(s) for recs in got.values() for _, s, _ in recs}
    assert (min(lengths) < 60) == (behavior == "trim")
