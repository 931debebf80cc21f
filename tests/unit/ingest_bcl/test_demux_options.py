"""Options that change how indexes are read: a separate sample sheet, reverse-complement i5 reads."""

from __future__ import annotations

import gzip
from dataclasses import replace
from pathlib import Path

from services.ingest.bcl.demux import DemuxOptions, run_demux
from services.ingest.bcl.samplesheet import write_samplesheet_v2
from services.ingest.bcl.simulate import simulate_run

COMPLEMENT = str.maketrans("ACGT", "TGCA")


def _contents(out: Path) -> dict[str, bytes]:
    return {p.name: gzip.decompress(p.read_bytes()) for p in sorted(out.glob("*.fastq.gz"))}


def test_reverse_complement_i5_uses_the_forward_sheet_orientation(tmp_path: Path) -> None:
    res = simulate_run(
        tmp_path / "run", fmt="bcl", clusters=400, tiles=2, reads="10,8,8,10", samples=3, seed=8, truth=False
    )
    run_demux(res.run_dir, tmp_path / "plain")
    # the instrument reads i5 as the reverse complement; the sheet gives i5 in forward orientation
    info = res.run_dir / "RunInfo.xml"
    info.write_text(
        info.read_text().replace(
            'Number="3" NumCycles="8" IsIndexedRead="Y" IsReverseComplement="N"',
            'Number="3" NumCycles="8" IsIndexedRead="Y" IsReverseComplement="Y"',
        )
    )
    forward = [replace(s, index2=s.index2.translate(COMPLEMENT)[::-1]) for s in res.samples]
    sheet = tmp_path / "forward.csv"
    sheet.write_text(write_samplesheet_v2(forward, reads={"Read1Cycles": 10, "Read2Cycles": 10}))
    run_demux(res.run_dir, tmp_path / "rc", DemuxOptions(sample_sheet=sheet))
    plain, rc = _contents(tmp_path / "plain"), _contents(tmp_path / "rc")
    assert plain.keys() == rc.keys()
    assert plain == rc  # same assignments; headers keep the observed (as read) index
    assert sum(len(v) for k, v in rc.items() if not k.startswith("Undetermined")) > 0
