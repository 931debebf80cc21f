"""The instrument simulator: a complete, parseable run folder written in instrument order."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from services.ingest.bcl import codecs
from services.ingest.bcl.errors import DemuxError
from services.ingest.bcl.runinfo import parse_runinfo
from services.ingest.bcl.samplesheet import parse_samplesheet
from services.ingest.bcl.simulate import parse_reads_spec, simulate_run


@pytest.mark.parametrize("fmt", ["bcl", "bcl.gz", "cbcl"])
def test_folder_is_exactly_the_manifest_plus_sheet(tmp_path: Path, fmt: str) -> None:
    run = tmp_path / "run"
    order: list[int] = []
    res = simulate_run(
        run,
        fmt=fmt,
        clusters=200,
        lanes=2,
        tiles=2,
        reads="12,6,6,12",
        samples=3,
        seed=1,
        on_cycle=lambda c, total: order.append(c),
    )
    info = parse_runinfo(run / "RunInfo.xml")
    on_disk = {str(p.relative_to(run)) for p in run.rglob("*") if p.is_file()}
    assert on_disk == set(info.expected_files(fmt)) | {"SampleSheet.csv", "RunParameters.xml"}
    assert res.files[-1] == "CopyComplete.txt" and res.files[-2] == "RTAComplete.txt"
    assert order == list(range(1, 37))
    sheet = parse_samplesheet(run / "SampleSheet.csv")
    assert [s.sample_id for s in sheet.samples] == ["Sample1", "Sample2", "Sample3"]
    assert all(len(s.index) == 6 and len(s.index2) == 6 for s in sheet.samples)


def test_truth_matches_base_calls_and_has_errors(tmp_path: Path) -> None:
    res = simulate_run(tmp_path / "run", fmt="bcl", clusters=400, tiles=1, reads="10,8,10", samples=4, seed=3)
    assert res.truth_path is not None
    rows = [line.rstrip("\n").split("\t") for line in gzip.open(res.truth_path, "rt")][1:]
    assert len(rows) == 400
    calls = [
        codecs.read_bcl_file(tmp_path / f"run/Data/Intensities/BaseCalls/L001/C{c}.1/s_1_1101.bcl")
        for c in range(1, 29)
    ]
    for r in rows[:50]:
        i = int(r[2])
        bases = "".join("N" if (col[i] >> 2) == 0 else "ACGT"[col[i] & 3] for col in calls)
        assert bases == r[8]
    kinds = {r[7] for r in rows}
    assert {"exact", "mm1", "n1", "random"} <= kinds
    pf = [r[5] for r in rows]
    assert pf.count("0") > 0 and pf.count("1") > 300


def test_reads_spec() -> None:
    assert parse_reads_spec("151,8,8,151") == [(151, False), (8, True), (8, True), (151, False)]
    assert parse_reads_spec("151,151") == [(151, False), (151, False)]
    assert parse_reads_spec("26,8") == [(26, False), (8, True)]
    assert parse_reads_spec("20,10I,20") == [(20, False), (10, True), (20, False)]
    with pytest.raises(DemuxError, match="invalid read length"):
        parse_reads_spec("151,x")


def test_refuses_non_empty_folder(tmp_path: Path) -> None:
    (tmp_path / "junk").write_text("x")
    with pytest.raises(DemuxError, match="not empty"):
        simulate_run(tmp_path, clusters=10)
