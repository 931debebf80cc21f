"""Report counters agree with the FASTQ files (whose every record the golden tests check against the truth)."""

from __future__ import annotations

import csv
import json
from collections import Counter
from pathlib import Path

from services.ingest.bcl.demux import run_demux
from services.ingest.bcl.simulate import simulate_run

from .oracle import read_fastq


def _rows(path: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(path.read_text().splitlines()))


def test_demultiplex_stats_quality_and_stats_json(tmp_path: Path) -> None:
    res = simulate_run(
        tmp_path / "run",
        fmt="bcl.gz",
        clusters=800,
        lanes=2,
        tiles=2,
        reads="12,8,8,12",
        samples=3,
        seed=13,
        truth=False,
    )
    out = tmp_path / "out"
    result = run_demux(res.run_dir, out)
    sheet = {s.sample_id: (s.index, s.index2) for s in res.samples}
    rows = _rows(out / "Reports/Demultiplex_Stats.csv")
    stats = json.loads((out / "Stats/Stats.json").read_text())
    assert stats["RunNumber"] == 42 and stats["Flowcell"] == res.run_info.flowcell
    for lane in (1, 2):
        lane_rows = [r for r in rows if r["Lane"] == str(lane)]
        assert [r["SampleID"] for r in lane_rows] == ["Sample1", "Sample2", "Sample3", "Undetermined"]
        conv = next(c for c in stats["ConversionResults"] if c["LaneNumber"] == lane)
        assert conv["TotalClustersPF"] == sum(int(r["# Reads"]) for r in lane_rows) == result.lane_pf[lane]
        assert abs(sum(float(r["% Reads"]) for r in lane_rows) - 100) < 0.01
        for r in lane_rows:
            name = r["SampleID"]
            number = 0 if name == "Undetermined" else int(name.removeprefix("Sample"))
            records = read_fastq(out / f"{name}_S{number}_L00{lane}_R1_001.fastq.gz")
            assert int(r["# Reads"]) == len(records)
            if number == 0:
                assert conv["Undetermined"]["NumberReads"] == len(records)
                continue
            # mismatches recomputed from the observed index each header carries
            mm = Counter()
            for head, _, _ in records:
                observed = head.rsplit(":", 1)[1].split("+")
                mm[
                    sum(
                        o != e or o == "N"
                        for obs, exp in zip(observed, sheet[name], strict=True)
                        for o, e in zip(obs, exp, strict=True)
                    )
                ] += 1
            assert int(r["# Perfect Index Reads"]) == mm[0]
            assert int(r["# One Mismatch Index Reads"]) == mm[1]
            assert int(r["# Two Mismatch Index Reads"]) == mm[2]
            assert r["Index"] == "-".join(sheet[name])
            demux = next(d for d in conv["DemuxResults"] if d["SampleId"] == name)
            assert demux["NumberReads"] == len(records)
            assert demux["IndexMetrics"][0]["MismatchCounts"] == {"0": mm[0], "1": mm[1], "2": mm[2]}
            yield_r1 = sum(len(s) for _, s, _ in records)
            q30_r1 = sum(sum(ord(c) - 33 >= 30 for c in q) for _, _, q in records)
            assert demux["ReadMetrics"][0]["Yield"] == yield_r1
            assert demux["ReadMetrics"][0]["YieldQ30"] == q30_r1
    quality = _rows(out / "Reports/Quality_Metrics.csv")
    q1 = next(q for q in quality if q["Lane"] == "1" and q["SampleID"] == "Sample1" and q["ReadNumber"] == "R1")
    r1 = read_fastq(out / "Sample1_S1_L001_R1_001.fastq.gz")
    assert int(q1["QualityScoreSum"]) == sum(ord(c) - 33 for _, _, q in r1 for c in q)
    unknown = _rows(out / "Reports/Top_Unknown_Barcodes.csv")
    und = Counter(h.rsplit(":", 1)[1] for h, _, _ in read_fastq(out / "Undetermined_S0_L001_R1_001.fastq.gz"))
    top = [u for u in unknown if u["Lane"] == "1"]
    assert top and all(und[f"{u['index']}+{u['index2']}"] == int(u["# Reads"]) for u in top)
