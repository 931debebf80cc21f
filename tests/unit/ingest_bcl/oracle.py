"""An independent, deliberately plain re-statement of the bcl2fastq rules, used by golden tests.

It reads the simulator's truth file (what the instrument "saw") and says, record by record, what
every FASTQ file must contain. Nothing here is shared with the demultiplexer's implementation.
"""

from __future__ import annotations

import gzip
import math
import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from services.ingest.bcl.samplesheet import Sample


@dataclass
class Expect:
    instrument: str
    run_number: int
    flowcell: str
    reads: list[str]  # per RunInfo read: segments, e.g. ["Y20", "I8", "I8", "Y20"] or ["U4Y16", ...]
    samples: list[Sample]
    tolerances: tuple[int, ...] = (1, 1)
    include_non_pf: bool = False
    lane_split: bool = True
    index_fastqs: bool = False
    adapters: tuple[str, str] = ("", "")
    min_len: int = 35
    mask_short: int = 22
    stringency: float = 0.9


def _segments(reads: list[str]) -> list[list[tuple[str, int]]]:
    return [[(k, int(n)) for k, n in re.findall(r"([YIUN])(\d+)", r)] for r in reads]


def _mismatches(observed: str, expected: str) -> int:
    return sum(1 for o, e in zip(observed, expected, strict=True) if o == "N" or e == "N" or o != e)


def _trim(seq: str, qual: str, adapter: str, e: Expect) -> tuple[str, str]:
    length = len(seq)
    pos = length
    for i in range(length):
        o = min(len(adapter), length - i)
        if o < 1:
            break
        same = sum(1 for a, b in zip(seq[i : i + o], adapter[:o], strict=True) if a == b)
        if same >= math.ceil(e.stringency * o - 1e-9):
            pos = i
            break
    if pos == length:
        return seq, qual
    out_len = max(pos, min(e.min_len, length))
    if pos < e.mask_short:
        return "N" * out_len, "#" * out_len
    return seq[:pos] + "N" * (out_len - pos), qual[:pos] + "#" * (out_len - pos)


def expected_fastqs(truth: Path, e: Expect) -> dict[str, list[tuple[str, str, str]]]:
    segs = _segments(e.reads)
    files: dict[str, list[tuple[str, str, str]]] = defaultdict(list)
    with gzip.open(truth, "rt") as f:
        next(f)
        for line in f:
            lane_s, tile, _cluster, x, y, pf, _sample, _errs, bases, quals = line.rstrip("\n").split("\t")
            lane = int(lane_s)
            if pf == "0" and not e.include_non_pf:
                continue
            pos = 0
            templ: list[tuple[str, str]] = []
            index: list[str] = []
            index_q: list[str] = []
            umi: list[str] = []
            for read in segs:
                t_seq, t_q, i_seq, i_q = "", "", "", ""
                for kind, n in read:
                    s, q = bases[pos : pos + n], quals[pos : pos + n]
                    pos += n
                    if kind == "Y":
                        t_seq, t_q = t_seq + s, t_q + q
                    elif kind == "I":
                        i_seq, i_q = i_seq + s, i_q + q
                    elif kind == "U":
                        umi.append(s)
                if t_seq:
                    templ.append((t_seq, t_q))
                if i_seq:
                    index.append(i_seq)
                    index_q.append(i_q)
            lane_samples = [s for s in e.samples if s.lane in (None, lane)]
            hits = []
            for s in lane_samples:
                exp = [s.index, s.index2][: len(index)]
                if all(_mismatches(o, x_) <= t for o, x_, t in zip(index, exp, e.tolerances, strict=False)):
                    hits.append(s)
            if not index:
                hits = lane_samples[:1]
            sample = hits[0] if len(hits) == 1 else None
            number = sample.number if sample else 0
            name = sample.sample_id if sample else "Undetermined"
            idx_field = "+".join(index) if index else str(number)
            umi_part = ":" + "+".join(umi) if umi else ""
            flag = "N" if pf == "1" else "Y"
            head = f"@{e.instrument}:{e.run_number}:{e.flowcell}:{lane}:{tile}:{x}:{y}{umi_part}"
            lane_part = f"_L{lane:03d}" if e.lane_split else ""
            outs = [(f"R{k + 1}", k + 1, s, q) for k, (s, q) in enumerate(templ)]
            if e.index_fastqs:
                outs += [(f"I{k + 1}", k + 1, s, q) for k, (s, q) in enumerate(zip(index, index_q, strict=True))]
            for label, no, s, q in outs:
                if label in ("R1", "R2") and e.adapters[no - 1]:
                    s, q = _trim(s, q, e.adapters[no - 1], e)
                files[f"{name}_S{number}{lane_part}_{label}_001.fastq.gz"].append(
                    (f"{head} {no}:{flag}:0:{idx_field}", s, q)
                )
    return dict(files)


def read_fastq(path: Path) -> list[tuple[str, str, str]]:
    with gzip.open(path, "rt") as f:
        lines = f.read().split("\n")
    assert lines[-1] == ""
    lines = lines[:-1]
    assert len(lines) % 4 == 0, f"{path}: not a whole number of records"
    out = []
    for i in range(0, len(lines), 4):
        assert lines[i + 2] == "+"
        assert len(lines[i + 1]) == len(lines[i + 3])
        out.append((lines[i], lines[i + 1], lines[i + 3]))
    return out
