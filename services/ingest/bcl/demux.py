"""BCL/CBCL -> FASTQ demultiplexing with bcl2fastq2 v2.20 / BCL Convert default behaviour.

`plan_demux()` reads RunInfo.xml and the sample sheet, resolves settings (CLI options override the
sample sheet, which overrides the defaults), checks the sample sheet against the run and for
barcode collisions, and checks the run folder is complete -- all before any work.
`run_demux()` then converts tile by tile (one task per tile, in worker processes with
``threads > 1``), each task writing one gzip member per output file; the members are concatenated
in (lane, tile) order into the final FASTQ files. Everything is written into a hidden temporary
folder next to the output, renamed to the output path only when complete (with
``Logs/FastqComplete.txt``).
"""

from __future__ import annotations

import hashlib
import itertools
import os
import shutil
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt

from . import codecs, fastq, kernels
from .errors import DemuxError, OutputError, SampleSheetError
from .matcher import CODE, IndexMatcher, LaneSamples, check_collisions, decode_key
from .runinfo import Format, Positions, RunInfo, parse_runinfo
from .samplesheet import Sample, SampleSheet, parse_override_cycles, parse_samplesheet
from .tiles import TileReader, TileSpec, check_complete, detect_format

U8 = npt.NDArray[np.uint8]
COMPLEMENT = str.maketrans("ACGTN", "TGCAN")
EMPTY_GZIP = codecs.gzip_bytes(b"", 1)
TOP_UNKNOWN = 1000  # unknown barcodes kept per lane (bcl2fastq's Stats.json keeps 1000)
QSCORE = np.clip(np.arange(256, dtype=np.int64) - 33, 0, None)  # Phred+33 byte -> score


@dataclass(frozen=True)
class DemuxOptions:
    """CLI / worker options; None = take the sample sheet's setting, else the bcl2fastq default."""

    sample_sheet: Path | None = None
    barcode_mismatches: tuple[int, ...] | None = None  # one value for all index reads, or one per read
    threads: int = 1
    include_non_pf: bool = False
    no_lane_splitting: bool | None = None
    create_fastq_for_index_reads: bool | None = None
    compression_level: int = 4  # zlib scale, bcl2fastq default; mapped to ISA-L (fastq.isal_level)
    chunk_clusters: int = 16384


@dataclass(frozen=True)
class Segment:
    kind: str  # Y I U N
    start: int  # 0-based global cycle
    length: int


@dataclass(frozen=True)
class OutputRead:
    label: str  # R1 R2 I1 I2
    header_no: int  # read number in the FASTQ header
    segments: tuple[Segment, ...]
    adapter: fastq.AdapterSpec | None = None

    @property
    def length(self) -> int:
        return sum(s.length for s in self.segments)


@dataclass(frozen=True)
class PlanSample:
    sample_id: str
    number: int
    name: str  # used in file names
    project: str
    lane: int | None
    indexes: tuple[str, ...]  # as in the sample sheet (for reports)
    expected: tuple[str, ...]  # as observed on the instrument (after reverse-complement normalisation)


@dataclass(frozen=True)
class DemuxPlan:
    run_dir: Path
    info: RunInfo
    sheet: SampleSheet | None
    fmt: Format
    positions: Positions
    samples: tuple[PlanSample, ...]
    template_reads: tuple[OutputRead, ...]
    index_reads: tuple[OutputRead, ...]  # used for matching
    umi: tuple[Segment, ...]
    tolerances: tuple[int, ...]
    include_non_pf: bool
    lane_splitting: bool
    index_fastqs: bool
    compression_level: int
    chunk_clusters: int
    threads: int
    tiles: tuple[TileSpec, ...]
    warnings: tuple[str, ...] = ()

    @property
    def output_reads(self) -> tuple[OutputRead, ...]:
        return self.template_reads + (self.index_reads if self.index_fastqs else ())

    def lane_samples(self, lane: int) -> list[int]:
        return [i for i, s in enumerate(self.samples) if s.lane in (None, lane)]

    def file_name(self, number: int, lane: int, label: str) -> str:
        if number == 0:
            name, project = "Undetermined", ""
        else:
            s = next(s for s in self.samples if s.number == number)
            name, project = s.name, s.project
        lane_part = f"_L{lane:03d}" if self.lane_splitting else ""
        rel = f"{name}_S{number}{lane_part}_{label}_001.fastq.gz"
        return f"{project}/{rel}" if project else rel


def _default_layout(info: RunInfo, sheet: SampleSheet | None) -> list[list[tuple[str, int]]]:
    n_idx_sheet = 0
    if sheet is not None:
        n_idx_sheet = 2 if any(s.index2 for s in sheet.samples) else 1 if any(s.index for s in sheet.samples) else 0
    out, seen_idx = [], 0
    for r in info.reads:
        if r.is_index:
            seen_idx += 1
            out.append([("I" if seen_idx <= n_idx_sheet else "N", r.cycles)])
        else:
            out.append([("Y", r.cycles)])
    return out


def plan_demux(run_dir: Path, options: DemuxOptions) -> DemuxPlan:
    """Resolve everything about a conversion and validate the inputs; raises DemuxError subclasses."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise DemuxError("run folder does not exist or is not a folder", path=run_dir)
    info = parse_runinfo(run_dir / "RunInfo.xml")
    sheet_path = options.sample_sheet or run_dir / "SampleSheet.csv"
    sheet: SampleSheet | None = None
    if sheet_path.is_file():
        sheet = parse_samplesheet(sheet_path, path=sheet_path.name if options.sample_sheet is None else str(sheet_path))
    elif options.sample_sheet is not None:
        raise SampleSheetError("sample sheet not found", path=sheet_path)
    sheet_name = sheet.path if sheet else "SampleSheet.csv"
    warnings = list(sheet.warnings) if sheet else []

    # ---- read layout (OverrideCycles or the default)
    if sheet and sheet.override_cycles:
        layout = parse_override_cycles(sheet.override_cycles, path=sheet_name)
        if len(layout) != len(info.reads):
            raise SampleSheetError(
                f"OverrideCycles {sheet.override_cycles!r} has {len(layout)} reads, RunInfo.xml has {len(info.reads)}",
                path=sheet_name,
            )
        for r, segs in zip(info.reads, layout, strict=True):
            if sum(n for _, n in segs) != r.cycles:
                raise SampleSheetError(
                    f"OverrideCycles read {r.number} covers {sum(n for _, n in segs)} cycles, RunInfo.xml "
                    f"says {r.cycles}",
                    path=sheet_name,
                )
    else:
        layout = _default_layout(info, sheet)
    templates: list[OutputRead] = []
    index_reads: list[OutputRead] = []
    umi: list[Segment] = []
    rc_flags: list[bool] = []
    adapters = sheet.adapters if sheet else ("", "")
    for r, segs in zip(info.reads, layout, strict=True):
        cyc = info.read_start(r.number - 1)
        y: list[Segment] = []
        ix: list[Segment] = []
        for kind, n in segs:
            seg = Segment(kind, cyc, n)
            cyc += n
            {"Y": y, "I": ix, "U": umi, "N": []}[kind].append(seg)
        if y and ix:
            raise SampleSheetError(f"OverrideCycles read {r.number} mixes Y and I cycles", path=sheet_name)
        if y:
            k = len(templates)
            ad = adapters[k] if k < 2 else ""
            spec = None
            if ad and sheet is not None:
                spec = fastq.AdapterSpec(
                    adapter=ad.encode(),
                    stringency=sheet.adapter_stringency,
                    min_overlap=sheet.minimum_adapter_overlap or 1,
                    min_length=35 if sheet.minimum_trimmed_read_length is None else sheet.minimum_trimmed_read_length,
                    mask_short=22 if sheet.mask_short_reads is None else sheet.mask_short_reads,
                    behavior=sheet.adapter_behavior,
                )
            templates.append(OutputRead(f"R{k + 1}", k + 1, tuple(y), spec))
        if ix:
            k = len(index_reads)
            index_reads.append(OutputRead(f"I{k + 1}", k + 1, tuple(ix)))
            rc_flags.append(r.reverse_complement)
    if not templates:
        raise SampleSheetError("no template (Y) cycles: nothing to write", path=sheet_name)
    if len(index_reads) > 2:
        raise SampleSheetError("more than two index reads are not supported", path=sheet_name)
    if sum(r.length for r in index_reads) > 27:
        raise SampleSheetError("index reads longer than 27 cycles in total are not supported", path=sheet_name)

    # ---- samples
    samples: list[PlanSample] = []
    sheet_samples: Sequence[Sample] = sheet.samples if sheet else ()
    for s in sheet_samples:
        given = (s.index, s.index2)[: len(index_reads)]
        for k, (seq, ir) in enumerate(zip(given, index_reads, strict=True)):
            if len(seq) != ir.length:
                col = ("Index", "Index2")[k] if sheet and sheet.version == 2 else ("index", "index2")[k]
                raise SampleSheetError(
                    f"sample {s.sample_id}: {col} {seq!r} has {len(seq)} bases but index read {k + 1} uses "
                    f"{ir.length} cycles",
                    path=sheet_name,
                    line=s.line,
                )
        if len(index_reads) == 0 and (s.index or s.index2) and any(r.is_index for r in info.reads):
            pass  # OverrideCycles skips the index reads: indexes are ignored
        if s.lane is not None and s.lane > info.lane_count:
            raise SampleSheetError(
                f"sample {s.sample_id}: lane {s.lane} but the run has {info.lane_count} lane(s)",
                path=sheet_name,
                line=s.line,
            )
        expected = tuple(
            seq.translate(COMPLEMENT)[::-1]
            if rc and sheet is not None and sheet.index_orientation == "Forward"
            else seq
            for seq, rc in zip(given, rc_flags, strict=True)
        )
        samples.append(
            PlanSample(
                sample_id=s.sample_id,
                number=s.number,
                name=s.file_name,
                project=s.project,
                lane=s.lane,
                indexes=given,
                expected=expected,
            )
        )

    # ---- mismatch tolerances: CLI > sheet > default 1
    if options.barcode_mismatches is not None:
        bm = options.barcode_mismatches
        tol = tuple(bm[k] if len(bm) > 1 else bm[0] for k in range(len(index_reads)))
        if len(bm) > 1 and len(bm) != len(index_reads):
            raise DemuxError(f"--barcode-mismatches gives {len(bm)} values for {len(index_reads)} index read(s)")
    else:
        sheet_bm = sheet.barcode_mismatches if sheet else (None, None)
        tol = tuple(1 if sheet_bm[k] is None else int(sheet_bm[k] or 0) for k in range(len(index_reads)))
    if any(not 0 <= t <= 2 for t in tol):
        raise DemuxError(f"barcode mismatches must be 0, 1 or 2, got {list(tol)}")

    # ---- collision check per lane, before any work
    for lane in info.lanes:
        members = [samples[i] for i in range(len(samples)) if samples[i].lane in (None, lane)]
        check_collisions(lane, [(s.sample_id, s.expected) for s in members], tol, path=sheet_name)

    fmt, pos = detect_format(run_dir, info)
    check_complete(run_dir, info, fmt, pos)
    tiles = tuple(TileSpec(lane, t, info.surface_of(t)) for lane in info.lanes for t in info.lane_tiles(lane))
    lane_splitting = not (
        options.no_lane_splitting
        if options.no_lane_splitting is not None
        else (sheet.no_lane_splitting if sheet else False)
    )
    index_fastqs = (
        options.create_fastq_for_index_reads
        if options.create_fastq_for_index_reads is not None
        else (sheet.create_fastq_for_index_reads if sheet else False)
    )
    if not 0 <= options.compression_level <= 9:
        raise DemuxError(f"compression level must be 0-9, got {options.compression_level}")
    if options.threads < 1:
        raise DemuxError(f"threads must be >= 1, got {options.threads}")
    return DemuxPlan(
        run_dir=run_dir,
        info=info,
        sheet=sheet,
        fmt=fmt,
        positions=pos,
        samples=tuple(samples),
        template_reads=tuple(templates),
        index_reads=tuple(index_reads),
        umi=tuple(umi),
        tolerances=tol,
        include_non_pf=options.include_non_pf,
        lane_splitting=lane_splitting,
        index_fastqs=bool(index_fastqs),
        compression_level=options.compression_level,
        chunk_clusters=max(2, options.chunk_clusters),
        threads=options.threads,
        tiles=tiles,
        warnings=tuple(warnings),
    )


# ------------------------------------------------------------------------------------ per tile


@dataclass
class ReadStats:
    yield_: int = 0
    q30: int = 0
    qsum: int = 0
    trimmed: int = 0

    def add(self, other: ReadStats) -> None:
        self.yield_ += other.yield_
        self.q30 += other.q30
        self.qsum += other.qsum
        self.trimmed += other.trimmed


@dataclass
class SampleLaneStats:
    """Counters for one (lane, sample number); PF reads only, as bcl2fastq's Stats.json."""

    reads: int = 0
    mismatches: list[int] = field(default_factory=lambda: [0, 0, 0, 0, 0])  # by total mismatches 0..4
    per_read: dict[str, ReadStats] = field(default_factory=dict)
    written: int = 0  # records written (PF, plus non-PF with --include-non-pf)

    def add(self, other: SampleLaneStats) -> None:
        self.reads += other.reads
        self.written += other.written
        self.mismatches = [a + b for a, b in zip(self.mismatches, other.mismatches, strict=True)]
        for k, v in other.per_read.items():
            self.per_read.setdefault(k, ReadStats()).add(v)


@dataclass
class TileResult:
    task: int
    lane: int
    tile: int
    raw: int
    pf: int
    stats: dict[int, SampleLaneStats]  # sample number -> counters
    unknown_keys: npt.NDArray[np.int64]  # packed observed index of undetermined PF reads (unique)
    unknown_counts: npt.NDArray[np.int64]
    parts: dict[str, int]  # output file -> uncompressed bytes of this tile's member


def _cols(sel: U8, segments: Sequence[Segment]) -> U8:
    """(clusters, cycles) -> the cycles of ``segments`` as one (clusters, length) array (a view if one)."""
    if len(segments) == 1:
        s = segments[0]
        return sel[:, s.start : s.start + s.length]
    return np.concatenate([sel[:, s.start : s.start + s.length] for s in segments], axis=1)


@dataclass(frozen=True)
class _KernelParams:
    seg_start: npt.NDArray[np.int64]
    seg_len: npt.NDArray[np.int64]
    umi_start: npt.NDArray[np.int64]
    umi_len: npt.NDArray[np.int64]
    idx_start: npt.NDArray[np.int64]
    idx_len: npt.NDArray[np.int64]
    idx_sep: npt.NDArray[np.bool_]
    tag: U8
    fixed: int  # upper bound of a record's bytes besides sequence and quality

    @classmethod
    def build(cls, plan: DemuxPlan, r: OutputRead) -> _KernelParams:
        def arr(v: list[int]) -> npt.NDArray[np.int64]:
            return np.array(v, dtype=np.int64)

        idx_segs = [(s, k > 0 and j == 0) for k, ir in enumerate(plan.index_reads) for j, s in enumerate(ir.segments)]
        tag = f" {r.header_no}:".encode()
        prefix_len = len(plan.info.instrument) + len(plan.info.flowcell) + 40
        fixed = (
            prefix_len
            + 2 * 20
            + sum(s.length + 1 for s in plan.umi)
            + len(tag)
            + 4
            + sum(s.length + 1 for s, _ in idx_segs)
            + 20
            + 8
        )
        return cls(
            seg_start=arr([s.start for s in r.segments]),
            seg_len=arr([s.length for s in r.segments]),
            umi_start=arr([s.start for s in plan.umi]),
            umi_len=arr([s.length for s in plan.umi]),
            idx_start=arr([s.start for s, _ in idx_segs]),
            idx_len=arr([s.length for s, _ in idx_segs]),
            idx_sep=np.array([sep for _, sep in idx_segs], dtype=np.bool_),
            tag=np.frombuffer(tag, dtype=np.uint8),
            fixed=fixed,
        )


def _adapter_lengths(
    r: OutputRead, sel: U8, order: npt.NDArray[np.intp]
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.int64] | None]:
    """(bases kept, record length, bases trimmed) per output row, in ``order``."""
    n = order.size
    if r.adapter is None:
        full = np.full(n, r.length, dtype=np.int64)
        return full, full, None
    spec = r.adapter
    seq = fastq.SEQ_LUT[_cols(sel, r.segments)[order]]
    t = fastq.find_adapter(seq, spec)
    keep = np.where(t < spec.mask_short, 0, t)
    if spec.behavior == "mask":
        out_len = np.full(n, r.length, dtype=np.int64)
    else:
        out_len = np.maximum(t, min(spec.min_length, r.length))
    return keep.astype(np.int64), out_len.astype(np.int64), (r.length - t).astype(np.int64)


def process_tile(plan: DemuxPlan, task: int, spec: TileSpec, parts_dir: Path) -> TileResult:
    """Convert one tile: write one gzip member per output file into ``parts_dir/<task>/``."""
    info = plan.info
    lane = spec.lane
    members = plan.lane_samples(lane)
    matcher = IndexMatcher(
        LaneSamples(lane, tuple((i, plan.samples[i].expected) for i in members)),
        plan.tolerances if members else (),
        [r.length for r in plan.index_reads],
    )
    if not members:
        matcher.no_index_sample = -1
    numbers = np.array([s.number for s in plan.samples] + [0], dtype=np.int64)  # index -1 -> 0
    prefix = f"{info.instrument}:{info.number}:{info.flowcell}:{lane}:{spec.tile}:".encode()
    level = fastq.isal_level(plan.compression_level)
    task_dir = parts_dir / f"{task:06d}"
    writers: dict[str, fastq.GzipPart] = {}
    file_names: dict[tuple[int, str], str] = {}
    stats: dict[int, SampleLaneStats] = {}
    unknown_keys: list[npt.NDArray[np.int64]] = []
    reader = TileReader(plan.run_dir, info, plan.fmt, plan.positions, spec)
    raw = reader.n
    pf_total = int(reader.pf.sum())
    x_all, y_all = codecs.fastq_coordinates(reader.xy)
    include_non_pf = plan.include_non_pf and reader.stores_non_pf
    prefix_arr = np.frombuffer(prefix, dtype=np.uint8)
    kernel_params = [_KernelParams.build(plan, r) for r in plan.output_reads]
    buf = np.empty(0, dtype=np.uint8)
    try:
        for tile_rows, sel in reader.chunks(plan.chunk_clusters, pf_only=not include_non_pf):
            n = tile_rows.size  # sel: (clusters, cycles)
            if n == 0:
                continue
            rpf = reader.pf[tile_rows]
            idx_codes = [fastq.calls_to_codes(_cols(sel, r.segments)) for r in plan.index_reads]
            if plan.index_reads:
                sample_idx, mm, obs_keys = matcher.assign(idx_codes)
            else:
                sample_idx = np.full(n, matcher.no_index_sample, dtype=np.int64)
                mm = np.zeros(n, dtype=np.int64)
                obs_keys = np.zeros(n, dtype=np.int64)
            sample_no = numbers[sample_idx]
            if plan.index_reads:
                unknown_keys.append(obs_keys[(sample_no == 0) & rpf])
            # group clusters by sample, keeping cluster order inside a sample (radix sort on int16)
            order = np.argsort(sample_no.astype(np.int16), kind="stable")
            sorted_no = sample_no[order]
            bounds = [0, *(np.flatnonzero(np.diff(sorted_no)) + 1).tolist(), n]
            o_pf = rpf[order]
            o_mm = mm[order]
            x = x_all[tile_rows]
            y = y_all[tile_rows]
            # per sample counters
            for a, b in itertools.pairwise(bounds):
                if a == b:
                    continue
                num = int(sorted_no[a])
                st = stats.setdefault(num, SampleLaneStats())
                gpf = o_pf[a:b]
                st.reads += int(gpf.sum())
                st.written += b - a
                if num != 0:
                    hist = np.bincount(o_mm[a:b][gpf], minlength=5)[:5].tolist()
                    st.mismatches = [p + q for p, q in zip(st.mismatches, hist, strict=True)]
            for r, kp in zip(plan.output_reads, kernel_params, strict=True):
                keep, out_len, trimmed = _adapter_lengths(r, sel, order)
                max_len = max(r.length, r.adapter.min_length if r.adapter else 0)
                cap = n * (kp.fixed + 2 * max_len)
                if buf.size < cap:
                    buf = np.empty(cap, dtype=np.uint8)
                offsets = np.empty(n + 1, dtype=np.int64)
                r_yield = np.empty(n, dtype=np.int64)
                r_q30 = np.empty(n, dtype=np.int64)
                r_qsum = np.empty(n, dtype=np.int64)
                kernels.fill_records(
                    buf,
                    offsets,
                    r_yield,
                    r_q30,
                    r_qsum,
                    sel,
                    order.astype(np.int64),
                    kp.seg_start,
                    kp.seg_len,
                    kp.umi_start,
                    kp.umi_len,
                    kp.idx_start,
                    kp.idx_len,
                    kp.idx_sep,
                    sorted_no,
                    prefix_arr,
                    kp.tag,
                    rpf,
                    x,
                    y,
                    keep,
                    out_len,
                    fastq.SEQ_LUT,
                    fastq.QUAL_LUT,
                    r.length,
                )
                view = memoryview(buf)  # type: ignore[arg-type]
                for a, b in itertools.pairwise(bounds):
                    if a == b:
                        continue
                    num = int(sorted_no[a])
                    gpf = o_pf[a:b]
                    rs = stats[num].per_read.setdefault(r.label, ReadStats())
                    rs.yield_ += int(r_yield[a:b][gpf].sum())
                    rs.q30 += int(r_q30[a:b][gpf].sum())
                    rs.qsum += int(r_qsum[a:b][gpf].sum())
                    if trimmed is not None:
                        rs.trimmed += int(trimmed[a:b][gpf].sum())
                    key = (num, r.label)
                    name = file_names.get(key)
                    if name is None:
                        name = file_names[key] = plan.file_name(num, lane, r.label)
                    w = writers.get(name)
                    if w is None:
                        w = writers[name] = fastq.GzipPart(task_dir / (name.replace("/", "__") + ".part"), level)
                    w.write(view[int(offsets[a]) : int(offsets[b])])
    finally:
        reader.close()
        for w in writers.values():
            w.close()
    if unknown_keys:
        u_keys, u_counts = np.unique(np.concatenate(unknown_keys), return_counts=True)
    else:
        u_keys = u_counts = np.zeros(0, dtype=np.int64)
    return TileResult(
        task=task,
        lane=lane,
        tile=spec.tile,
        raw=raw,
        pf=pf_total,
        stats=stats,
        unknown_keys=u_keys,
        unknown_counts=u_counts,
        parts={k: w.raw_bytes for k, w in writers.items()},
    )


# --------------------------------------------------------------------------------- the whole run


@dataclass(frozen=True)
class OutputFile:
    path: str  # relative to the output folder
    sample_number: int
    lane: int | None  # None when lanes are merged
    read: str
    size: int
    sha256: str


@dataclass
class DemuxResult:
    plan: DemuxPlan
    out_dir: Path
    files: list[OutputFile]
    lane_stats: dict[int, dict[int, SampleLaneStats]]  # lane -> sample number -> counters
    lane_raw: dict[int, int]
    lane_pf: dict[int, int]
    unknown: dict[int, Counter[str]]  # lane -> the most frequent undetermined PF index sequences
    unknown_total: dict[int, int]  # lane -> undetermined PF reads
    reports: list[str]
    seconds: float

    @property
    def clusters(self) -> int:
        return sum(self.lane_raw.values())


ProgressFn = Callable[[int, int, int], None]  # (tiles done, tiles total, clusters done)


def _safe_rmtree(p: Path) -> None:
    shutil.rmtree(p, ignore_errors=True)


def run_demux(
    run_dir: Path | str,
    out_dir: Path | str,
    options: DemuxOptions | None = None,
    *,
    progress: ProgressFn | None = None,
    plan: DemuxPlan | None = None,
) -> DemuxResult:
    """Convert a run folder into ``out_dir`` (must not exist, or be an empty folder)."""
    from .reports import write_reports  # local: reports imports this module's types

    options = options or DemuxOptions()
    t0 = time.monotonic()
    plan = plan or plan_demux(Path(run_dir), options)
    out = Path(out_dir)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise OutputError("output folder exists and is not empty", path=out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.partial-{os.getpid()}-{int(time.time() * 1000)}"
    tmp.mkdir()
    parts_dir = tmp / ".parts"
    try:
        results = _run_tasks(plan, parts_dir, progress)
        files = _assemble(plan, tmp, parts_dir, results)
        _safe_rmtree(parts_dir)
        result = DemuxResult(
            plan=plan,
            out_dir=out,
            files=files,
            lane_stats={},
            lane_raw={},
            lane_pf={},
            unknown={},
            unknown_total={},
            reports=[],
            seconds=0.0,
        )
        for r in results:
            result.lane_raw[r.lane] = result.lane_raw.get(r.lane, 0) + r.raw
            result.lane_pf[r.lane] = result.lane_pf.get(r.lane, 0) + r.pf
            lane_stats = result.lane_stats.setdefault(r.lane, {})
            for num, st in r.stats.items():
                lane_stats.setdefault(num, SampleLaneStats()).add(st)
        lengths = [r.length for r in plan.index_reads]
        for lane in plan.info.lanes:
            keys = [r.unknown_keys for r in results if r.lane == lane]
            counts = [r.unknown_counts for r in results if r.lane == lane]
            if not keys or not sum(k.size for k in keys):
                result.unknown[lane], result.unknown_total[lane] = Counter(), 0
                continue
            u, inv = np.unique(np.concatenate(keys), return_inverse=True)
            c = np.bincount(inv.reshape(-1), weights=np.concatenate(counts)).astype(np.int64)
            top = np.argsort(-c, kind="stable")[:TOP_UNKNOWN]
            result.unknown[lane] = Counter({decode_key(int(u[i]), lengths): int(c[i]) for i in top.tolist()})
            result.unknown_total[lane] = int(c.sum())
        result.reports = write_reports(result, tmp)
        done = tmp / "Logs/FastqComplete.txt"
        done.parent.mkdir(parents=True, exist_ok=True)
        done.write_text(f"seqhub demux completed {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}\n")
        result.reports.append("Logs/FastqComplete.txt")
        if out.exists():
            out.rmdir()
        os.replace(tmp, out)
        result.seconds = time.monotonic() - t0
        return result
    except BaseException:
        _safe_rmtree(tmp)
        raise


def _run_tasks(plan: DemuxPlan, parts_dir: Path, progress: ProgressFn | None) -> list[TileResult]:
    results: list[TileResult] = []
    total = len(plan.tiles)
    clusters = 0
    if plan.threads <= 1 or total == 1:
        for i, spec in enumerate(plan.tiles):
            r = process_tile(plan, i, spec, parts_dir)
            results.append(r)
            clusters += r.raw
            if progress:
                progress(len(results), total, clusters)
        return results
    kernels.warm_up()  # forked workers inherit the compiled kernels instead of each loading them
    with ProcessPoolExecutor(max_workers=min(plan.threads, total)) as pool:
        futures: set[Future[TileResult]] = {
            pool.submit(process_tile, plan, i, spec, parts_dir) for i, spec in enumerate(plan.tiles)
        }
        pending = futures
        try:
            while pending:
                done, pending = wait(pending, return_when=FIRST_EXCEPTION)
                for f in done:
                    r = f.result()  # re-raises a worker's DemuxError here
                    results.append(r)
                    clusters += r.raw
                    if progress:
                        progress(len(results), total, clusters)
        except BaseException:
            for f in pending:
                f.cancel()
            raise
    results.sort(key=lambda r: r.task)
    return results


def _assemble(plan: DemuxPlan, tmp: Path, parts_dir: Path, results: list[TileResult]) -> list[OutputFile]:
    """Concatenate the per-tile gzip members into the final files (every expected file exists)."""
    expected: list[tuple[str, int, int | None, str]] = []
    seen: set[str] = set()
    lanes = plan.info.lanes
    for number in [s.number for s in plan.samples] + [0]:
        for lane in lanes:
            if number and not any(s.number == number and s.lane in (None, lane) for s in plan.samples):
                continue
            for o_read in plan.output_reads:
                name = plan.file_name(number, lane, o_read.label)
                if name not in seen:
                    seen.add(name)
                    expected.append((name, number, lane if plan.lane_splitting else None, o_read.label))
    order = sorted(results, key=lambda r: r.task)
    files: list[OutputFile] = []
    for name, number, f_lane, label in expected:
        dest = tmp / name
        dest.parent.mkdir(parents=True, exist_ok=True)
        h = hashlib.sha256()
        size = 0
        with open(dest, "wb") as out:
            wrote = False
            for tr in order:
                if name not in tr.parts:
                    continue
                part = parts_dir / f"{tr.task:06d}" / (name.replace("/", "__") + ".part")
                with open(part, "rb") as f:
                    while chunk := f.read(1 << 20):
                        out.write(chunk)
                        h.update(chunk)
                        size += len(chunk)
                wrote = True
                part.unlink()
            if not wrote:
                out.write(EMPTY_GZIP)
                h.update(EMPTY_GZIP)
                size += len(EMPTY_GZIP)
        files.append(OutputFile(name, number, f_lane, label, size, h.hexdigest()))
    return files


def observed_index_code(seq: str) -> list[int]:
    return [CODE[c] for c in seq]
