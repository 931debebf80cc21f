"""Bad input ends with a DemuxError naming the file and the problem -- and no output folder."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from services.ingest.bcl import codecs
from services.ingest.bcl.demux import DemuxOptions, plan_demux, run_demux
from services.ingest.bcl.errors import (
    BarcodeCollisionError,
    BaseCallFileError,
    OutputError,
    RunFolderError,
    SampleSheetError,
)
from services.ingest.bcl.samplesheet import Sample, write_samplesheet_v2
from services.ingest.bcl.simulate import SimulationResult, simulate_run


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, SimulationResult]:
    base = tmp_path_factory.mktemp("runs")
    return {
        fmt: simulate_run(base / fmt, fmt=fmt, clusters=120, tiles=2, reads="10,8,8,10", samples=3, seed=1, truth=False)
        for fmt in ("bcl", "bcl.gz", "cbcl")
    }


def _copy(res: SimulationResult, tmp_path: Path) -> Path:
    dst = tmp_path / "run"
    shutil.copytree(res.run_dir, dst)
    return dst


def _fails(run: Path, tmp_path: Path, exc: type[Exception], problem: str, **opts: object) -> Exception:
    out = tmp_path / "out"
    with pytest.raises(exc, match=problem) as e:
        run_demux(run, out, DemuxOptions(**opts))  # type: ignore[arg-type]
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out.partial")]
    return e.value


def test_truncated_bcl_gz(runs: dict[str, SimulationResult], tmp_path: Path) -> None:
    run = _copy(runs["bcl.gz"], tmp_path)
    f = run / "Data/Intensities/BaseCalls/L001/C7.1/s_1_1102.bcl.gz"
    f.write_bytes(f.read_bytes()[:-9])
    e = _fails(run, tmp_path, BaseCallFileError, "truncated|corrupt")
    assert "C7.1/s_1_1102.bcl.gz" in str(e)


def test_cluster_count_differs_between_cycles(runs: dict[str, SimulationResult], tmp_path: Path) -> None:
    run = _copy(runs["bcl"], tmp_path)
    f = run / "Data/Intensities/BaseCalls/L001/C12.1/s_1_1101.bcl"
    f.write_bytes(codecs.encode_bcl(np.zeros(59, dtype=np.uint8)))
    _fails(run, tmp_path, BaseCallFileError, "C12.1/s_1_1101.bcl: 59 clusters but the filter")


def test_unknown_filter_version(runs: dict[str, SimulationResult], tmp_path: Path) -> None:
    run = _copy(runs["cbcl"], tmp_path)
    f = run / "Data/Intensities/BaseCalls/L001/s_1_2101.filter"
    data = bytearray(f.read_bytes())
    data[4] = 2
    f.write_bytes(bytes(data))
    _fails(run, tmp_path, BaseCallFileError, "s_1_2101.filter: unsupported filter version 2")


def test_corrupt_cbcl_block(runs: dict[str, SimulationResult], tmp_path: Path) -> None:
    run = _copy(runs["cbcl"], tmp_path)
    f = run / "Data/Intensities/BaseCalls/L001/C3.1/L001_1.cbcl"
    data = bytearray(f.read_bytes())
    data[-20:-10] = b"\x00" * 10
    f.write_bytes(bytes(data))
    _fails(run, tmp_path, BaseCallFileError, "C3.1/L001_1.cbcl")


def test_missing_cycle_and_missing_tile(runs: dict[str, SimulationResult], tmp_path: Path) -> None:
    run = _copy(runs["bcl"], tmp_path)
    shutil.rmtree(run / "Data/Intensities/BaseCalls/L001/C28.1")
    _fails(run, tmp_path, RunFolderError, r"2 file\(s\) missing from the run folder: .*C28.1/s_1_1101.bcl")
    shutil.rmtree(run)
    run = _copy(runs["bcl"], tmp_path)
    (run / "Data/Intensities/BaseCalls/L001/s_1_1102.filter").unlink()
    _fails(run, tmp_path, RunFolderError, "s_1_1102.filter")


def _sheet(run: Path, samples: list[Sample], **settings: str) -> None:
    (run / "SampleSheet.csv").write_text(
        write_samplesheet_v2(samples, reads={"Read1Cycles": 10}, settings=dict(settings))
    )


def test_collision_names_the_pair_and_lane(runs: dict[str, SimulationResult], tmp_path: Path) -> None:
    run = _copy(runs["bcl"], tmp_path)
    _sheet(
        run,
        [
            Sample("A", 1, index="AAAAAAAA", index2="CCCCCCCC"),
            Sample("B", 2, index="AAAAAAAT", index2="CCCCCCCG"),
        ],
    )
    _fails(run, tmp_path, BarcodeCollisionError, r"lane 1: A \(AAAAAAAA\+CCCCCCCC\) and B .*differ by 1/1")
    # tolerance 0 resolves it, as the error suggests
    plan_demux(run, DemuxOptions(barcode_mismatches=(0,)))
    # close on index 1 only: not a collision with dual indexes
    _sheet(
        run,
        [
            Sample("A", 1, index="AAAAAAAA", index2="CCCCCCCC"),
            Sample("B", 2, index="AAAAAAAT", index2="GGGGGGGG"),
        ],
    )
    plan_demux(run, DemuxOptions())


def test_index_length_mismatch(runs: dict[str, SimulationResult], tmp_path: Path) -> None:
    run = _copy(runs["bcl"], tmp_path)
    _sheet(run, [Sample("A", 1, index="AAAAAA", index2="CCCCCCCC")])
    e = _fails(run, tmp_path, SampleSheetError, "sample A: Index 'AAAAAA' has 6 bases but index read 1 uses 8")
    assert "SampleSheet.csv" in str(e)


def test_override_cycles_must_fit_runinfo(runs: dict[str, SimulationResult], tmp_path: Path) -> None:
    run = _copy(runs["bcl"], tmp_path)
    _sheet(run, [Sample("A", 1, index="AAAAAAAA", index2="CCCCCCCC")], OverrideCycles="Y10;I8;I8;Y9")
    _fails(run, tmp_path, SampleSheetError, "OverrideCycles read 4 covers 9 cycles, RunInfo.xml says 10")


def test_output_folder_not_empty(runs: dict[str, SimulationResult], tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(OutputError, match="exists and is not empty"):
        run_demux(runs["bcl"].run_dir, out)
    assert (out / "keep.txt").read_text() == "mine"


def test_worker_error_in_pool_is_reported_and_cleaned(runs: dict[str, SimulationResult], tmp_path: Path) -> None:
    run = _copy(runs["bcl"], tmp_path)
    f = run / "Data/Intensities/BaseCalls/L001/C20.1/s_1_1102.bcl"
    f.write_bytes(f.read_bytes()[:-1])
    _fails(run, tmp_path, BaseCallFileError, "C20.1/s_1_1102.bcl", threads=2)
