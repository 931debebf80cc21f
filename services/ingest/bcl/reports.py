"""Conversion reports: BCL Convert ``Reports/*.csv`` and bcl2fastq ``Stats/Stats.json``.

Counts are PF reads only (as both tools report them). Percentages are written with 4 decimals.
``fastq_list.csv`` paths are relative to the output folder (the folder may move into the file store).
"""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .demux import DemuxResult, PlanSample, SampleLaneStats

TOP_UNKNOWN_CSV = 100
TOP_UNKNOWN_JSON = 1000


def _pct(a: int, b: int) -> str:
    return f"{(100.0 * a / b) if b else 0.0:.4f}"


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def _csv(rows: list[list[Any]]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerows(rows)
    return buf.getvalue()


def write_reports(result: DemuxResult, root: Path) -> list[str]:
    plan = result.plan
    by_number: dict[int, PlanSample] = {}
    for s in plan.samples:
        by_number.setdefault(s.number, s)
    lanes = plan.info.lanes

    def index_of(num: int, lane: int) -> tuple[str, ...]:
        s = next((x for x in plan.samples if x.number == num and x.lane in (None, lane)), None)
        return s.indexes if s else ()

    def lane_rows(lane: int) -> list[tuple[int, SampleLaneStats]]:
        stats = result.lane_stats.get(lane, {})
        seen: list[int] = []
        for s in plan.samples:
            if s.lane in (None, lane) and s.number not in seen:
                seen.append(s.number)
        from .demux import SampleLaneStats as _S

        return [(n, stats.get(n, _S())) for n in [*seen, 0]]

    out: list[str] = []
    # ---- Demultiplex_Stats.csv
    rows: list[list[Any]] = [
        [
            "Lane",
            "SampleID",
            "Index",
            "# Reads",
            "# Perfect Index Reads",
            "# One Mismatch Index Reads",
            "# Two Mismatch Index Reads",
            "% Reads",
            "% Perfect Index Reads",
            "% One Mismatch Index Reads",
            "% Two Mismatch Index Reads",
        ]
    ]
    for lane in lanes:
        total = sum(st.reads for _, st in lane_rows(lane))
        for num, st in lane_rows(lane):
            sid = by_number[num].sample_id if num else "Undetermined"
            idx = "-".join(index_of(num, lane)) if num else ""
            p, o, t = st.mismatches[0], st.mismatches[1], st.mismatches[2]
            if num == 0:
                p = o = t = 0
            rows.append(
                [
                    lane,
                    sid,
                    idx,
                    st.reads,
                    p,
                    o,
                    t,
                    _pct(st.reads, total),
                    _pct(p, st.reads),
                    _pct(o, st.reads),
                    _pct(t, st.reads),
                ]
            )
    _write(root / "Reports/Demultiplex_Stats.csv", _csv(rows))
    out.append("Reports/Demultiplex_Stats.csv")

    # ---- Top_Unknown_Barcodes.csv
    n_idx = len(plan.index_reads)
    head = ["Lane", *["index", "index2"][:n_idx], "# Reads", "% of Unknown Barcodes", "% of All Reads"]
    rows = [head]
    for lane in lanes:
        unk = result.unknown.get(lane)
        if not unk:
            continue
        n_und = result.unknown_total.get(lane, 0)
        total = sum(st.reads for _, st in lane_rows(lane))
        for seq, cnt in unk.most_common(TOP_UNKNOWN_CSV):
            rows.append([lane, *seq.split("+"), cnt, _pct(cnt, n_und), _pct(cnt, total)])
    _write(root / "Reports/Top_Unknown_Barcodes.csv", _csv(rows))
    out.append("Reports/Top_Unknown_Barcodes.csv")

    # ---- Quality_Metrics.csv
    rows = [
        [
            "Lane",
            "SampleID",
            "index",
            "index2",
            "ReadNumber",
            "Yield",
            "YieldQ30",
            "QualityScoreSum",
            "Mean Quality Score (PF)",
            "% Q30",
        ]
    ]
    for lane in lanes:
        for num, st in lane_rows(lane):
            sid = by_number[num].sample_id if num else "Undetermined"
            idxs = [*index_of(num, lane), "", ""]
            for r in plan.output_reads:
                rs = st.per_read.get(r.label)
                y, q30, qs = (rs.yield_, rs.q30, rs.qsum) if rs else (0, 0, 0)
                rows.append(
                    [
                        lane,
                        sid,
                        idxs[0],
                        idxs[1],
                        r.label,
                        y,
                        q30,
                        qs,
                        f"{(qs / y) if y else 0.0:.2f}",
                        f"{(100.0 * q30 / y) if y else 0.0:.2f}",
                    ]
                )
    _write(root / "Reports/Quality_Metrics.csv", _csv(rows))
    out.append("Reports/Quality_Metrics.csv")

    # ---- fastq_list.csv (template reads 1 and 2)
    rows = [["RGID", "RGSM", "RGLB", "Lane", "Read1File", "Read2File"]]
    by_key: dict[tuple[int, int | None], dict[str, str]] = {}
    for f in result.files:
        by_key.setdefault((f.sample_number, f.lane), {})[f.read] = f.path
    for (num, f_lane), reads in by_key.items():
        if "R1" not in reads:
            continue
        idx = ".".join(index_of(num, f_lane or 1)) if num else "Undetermined"
        sid = by_number[num].sample_id if num else "Undetermined"
        lane_txt = str(f_lane) if f_lane is not None else "1"
        rgid = f"{idx}.{lane_txt}" if idx else f"{sid}.{lane_txt}"
        rows.append([rgid, sid, "UnknownLibrary", lane_txt, reads["R1"], reads.get("R2", "")])
    _write(root / "Reports/fastq_list.csv", _csv(rows))
    out.append("Reports/fastq_list.csv")

    # ---- Stats/Stats.json (bcl2fastq shape)
    def read_metrics(st: SampleLaneStats) -> list[dict[str, int]]:
        ms = []
        for k, r in enumerate(plan.template_reads, start=1):
            rs = st.per_read.get(r.label)
            ms.append(
                {
                    "ReadNumber": k,
                    "Yield": rs.yield_ if rs else 0,
                    "YieldQ30": rs.q30 if rs else 0,
                    "QualityScoreSum": rs.qsum if rs else 0,
                    "TrimmedBases": rs.trimmed if rs else 0,
                }
            )
        return ms

    conversion = []
    for lane in lanes:
        demux_results = []
        undetermined: dict[str, Any] = {}
        lane_yield = 0
        for num, st in lane_rows(lane):
            ylds = sum(m["Yield"] for m in read_metrics(st))
            lane_yield += ylds
            if num == 0:
                undetermined = {"NumberReads": st.reads, "Yield": ylds, "ReadMetrics": read_metrics(st)}
                continue
            s = by_number[num]
            demux_results.append(
                {
                    "SampleId": s.sample_id,
                    "SampleName": s.name,
                    "IndexMetrics": [
                        {
                            "IndexSequence": "+".join(index_of(num, lane)),
                            "MismatchCounts": {str(k): st.mismatches[k] for k in range(sum(plan.tolerances) + 1)},
                        }
                    ]
                    if plan.index_reads
                    else [],
                    "NumberReads": st.reads,
                    "Yield": ylds,
                    "ReadMetrics": read_metrics(st),
                }
            )
        conversion.append(
            {
                "LaneNumber": lane,
                "TotalClustersRaw": result.lane_raw.get(lane, 0),
                "TotalClustersPF": result.lane_pf.get(lane, 0),
                "Yield": lane_yield,
                "DemuxResults": demux_results,
                "Undetermined": undetermined,
            }
        )
    stats = {
        "Flowcell": plan.info.flowcell,
        "RunNumber": plan.info.number,
        "RunId": plan.info.run_id,
        "ReadInfosForLanes": [
            {
                "LaneNumber": lane,
                "ReadInfos": [
                    {"Number": r.number, "NumCycles": r.cycles, "IsIndexedRead": r.is_index} for r in plan.info.reads
                ],
            }
            for lane in lanes
        ],
        "ConversionResults": conversion,
        "UnknownBarcodes": [
            {
                "Lane": lane,
                "Barcodes": dict(result.unknown.get(lane, Counter()).most_common(TOP_UNKNOWN_JSON)),
            }
            for lane in lanes
        ],
    }
    _write(root / "Stats/Stats.json", json.dumps(stats, indent=2) + "\n")
    out.append("Stats/Stats.json")
    return out
