"""The instrument simulator: writes a realistic run folder progressively, plus a truth file.

Order of writing (what an uploader watching the folder sees): RunInfo.xml, RunParameters.xml,
SampleSheet.csv, positions (per-tile .locs/.clocs, the shared s.locs, or NextSeq 500/550's lane-level
s_<lane>.locs with the tile index s_<lane>.bci), then cycle after cycle the
base calls (per tile .bcl/.bcl.gz, per lane x surface .cbcl, or per lane <cccc>.bcl.bgzf), the .filter once cycle 25
is written (as RTA does), RTAComplete.txt, and CopyComplete.txt last. Every file is written to a
hidden temporary name in its folder and renamed, so a file that is visible is complete.

The truth file (gzip TSV, one line per cluster, default ``<out_dir>.truth.tsv.gz`` next to the run
folder so the run folder holds only instrument files) has columns:
``lane tile cluster x y pf sample index_errors bases quals`` where ``cluster`` is the 0-based
position within the tile, ``x``/``y`` are FASTQ coordinates, ``sample`` the Sample_ID the index was
drawn from (empty: none), ``index_errors`` the error injected per index read (``exact``, ``mm1``,
``mm2``, ``n1``, ``n2``, ``mm1n1``, ``random``; joined by ``+``), ``bases``/``quals`` all cycles
(Phred+33; a no-call is ``N`` / ``#``) exactly as stored in the base-call files.
"""

from __future__ import annotations

import datetime as dt
import gzip
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt

from . import codecs
from .errors import DemuxError
from .runinfo import Format, ReadInfo, RunInfo, run_parameters_xml, runinfo_xml
from .samplesheet import Sample, write_samplesheet_v1, write_samplesheet_v2

ADAPTER_READ1 = "AGATCGGAAGAGCACACGTCTGAACTCCAGTCA"
ADAPTER_READ2 = "AGATCGGAAGAGCGTCGTGTAGGGAAAGAGTG"
BASES = np.frombuffer(b"ACGT", dtype=np.uint8)
INDEX_ERROR_MIX: dict[str, float] = {
    "exact": 0.60,
    "mm1": 0.12,
    "mm2": 0.06,
    "n1": 0.06,
    "n2": 0.04,
    "mm1n1": 0.02,
    "random": 0.10,
}
CBCL_QUALITIES = (12, 23, 37)
FILTER_AFTER_CYCLE = 25


@dataclass
class SimulationResult:
    run_dir: Path
    run_info: RunInfo
    samples: list[Sample]
    fmt: Format
    truth_path: Path | None
    clusters: int
    files: list[str] = field(default_factory=list)


@dataclass
class _SimTile:
    lane: int
    tile: int
    calls: npt.NDArray[np.uint8]  # (clusters, cycles) BCL bytes
    pf: npt.NDArray[np.bool_]
    xy: npt.NDArray[np.float32]
    sample_of: npt.NDArray[np.int64]  # index into samples, -1 = none
    errors: npt.NDArray[np.int64]  # (clusters, index reads) category index
    samples: list[Sample]
    cat_names: list[str]


def parse_reads_spec(spec: str | Sequence[int]) -> list[tuple[int, bool]]:
    """``151,8,8,151`` -> [(151, False), (8, True), (8, True), (151, False)].

    The first read is a template read; with three or more reads the last one is too and the ones in
    between are index reads; with two reads the second is an index read when it is shorter than
    the first. An explicit suffix overrides: ``8I`` / ``8B`` index, ``151Y`` / ``151T`` template.
    """
    items = spec.split(",") if isinstance(spec, str) else [str(x) for x in spec]
    out: list[tuple[int, bool]] = []
    lengths = [x.strip().upper().rstrip("IBYT") for x in items]
    for i, raw in enumerate(items):
        tok = raw.strip().upper()
        kind = None
        if tok and tok[-1] in "IBYT":
            kind, tok = tok[-1], tok[:-1]
        if not tok.isdigit() or int(tok) <= 0:
            raise DemuxError(f"invalid read length {raw!r} in reads {spec!r}")
        n = int(tok)
        if kind:
            is_index = kind in ("I", "B")
        elif len(items) == 2:
            is_index = i == 1 and lengths[0].isdigit() and n < int(lengths[0])
        else:
            is_index = 0 < i < len(items) - 1
        out.append((n, is_index))
    if not out or out[0][1]:
        raise DemuxError(f"reads {spec!r}: the first read must be a template read")
    return out


def _distant_indexes(rng: np.random.Generator, k: int, length: int, min_dist: int = 3) -> list[str]:
    chosen: list[npt.NDArray[np.uint8]] = []
    attempts = 0
    while len(chosen) < k:
        attempts += 1
        if attempts > 200000:
            raise DemuxError(f"cannot draw {k} indexes of length {length} at Hamming distance >= {min_dist}")
        cand = rng.integers(0, 4, size=length, dtype=np.uint8)
        if all(int((cand != c).sum()) >= min_dist for c in chosen):
            chosen.append(cand)
    return [BASES[c].tobytes().decode() for c in chosen]


def _atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".~{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _inject_index_errors(
    rng: np.random.Generator,
    codes: npt.NDArray[np.uint8],
    categories: npt.NDArray[np.int64],
    names: list[str],
) -> npt.NDArray[np.uint8]:
    """codes: (n, L) base codes 0-3; returns codes with 4 = N, per category."""
    n, length = codes.shape
    out = codes.copy()
    order = np.argsort(rng.random((n, length)), axis=1)  # distinct random positions per cluster
    shift = rng.integers(1, 4, size=(n, 2), dtype=np.uint8)
    rows = np.arange(n)
    for ci, name in enumerate(names):
        sel = categories == ci
        if not sel.any():
            continue
        r = rows[sel]
        if name == "random":
            out[r] = rng.integers(0, 4, size=(r.size, length), dtype=np.uint8)
            continue
        mm = {"mm1": 1, "mm2": 2, "mm1n1": 1}.get(name, 0)
        nn = {"n1": 1, "n2": 2, "mm1n1": 1}.get(name, 0)
        if mm + nn > length:
            continue
        for j in range(mm):
            p = order[r, j]
            out[r, p] = (out[r, p] + shift[r, j]) % 4
        for j in range(mm, mm + nn):
            out[r, order[r, j]] = 4
    return out


def simulate_run(
    out_dir: str | Path,
    *,
    fmt: Format = "cbcl",
    clusters: int = 1000,
    lanes: int = 1,
    tiles: int | Sequence[int] = 2,
    reads: str | Sequence[int] = (151, 8, 8, 151),
    samples: int = 4,
    cycles_per_second: float = 0.0,
    seed: int = 0,
    index_distance: int = 3,
    sample_sheet_version: int = 2,
    pf_fraction: float = 0.95,
    no_call_rate: float = 0.005,
    index_error_mix: dict[str, float] | None = None,
    adapter_fraction: float = 0.0,
    override_cycles: str | None = None,
    extra_settings: dict[str, str] | None = None,
    lane_column: bool = False,
    cbcl_pf_excluded: bool = True,
    truth: bool | Path = True,
    run_number: int = 42,
    instrument: str = "A00123",
    flowcell: str = "HSIMXXDSX",
    compression_level: int = 1,
    on_cycle: Callable[[int, int], None] | None = None,
) -> SimulationResult:
    """Write a simulated run folder into ``out_dir`` (created; must not exist or be empty)."""
    if fmt not in ("bcl", "bcl.gz", "cbcl", "bcl.bgzf"):
        raise DemuxError(f"unknown format {fmt!r} (bcl, bcl.gz, cbcl or bcl.bgzf)")
    if clusters < 1 or lanes < 1 or samples < 0:
        raise DemuxError("clusters and lanes must be >= 1, samples >= 0")
    if cycles_per_second < 0:
        raise DemuxError("cycles per second must be >= 0 (0 = as fast as possible)")
    run_dir = Path(out_dir)
    if run_dir.exists() and any(run_dir.iterdir()):
        raise DemuxError(f"output folder {run_dir} exists and is not empty")
    rng = np.random.default_rng(seed)
    read_spec = parse_reads_spec(reads)
    index_reads = [i for i, (_, ix) in enumerate(read_spec) if ix]

    # ---- flow-cell layout
    if isinstance(tiles, int):
        if tiles < 1:
            raise DemuxError("tiles must be >= 1")
        surfaces = 2 if fmt == "cbcl" and tiles >= 2 else 1
        per = -(-tiles // surfaces)
        tile_numbers = [s * 1000 + 100 + t for s in range(1, surfaces + 1) for t in range(1, per + 1)][:tiles]
        if surfaces == 2:
            tile_numbers = [t for t in tile_numbers]
    else:
        tile_numbers = list(tiles)
    tile_numbers.sort()
    ntiles = len(tile_numbers) * lanes
    if fmt == "cbcl":
        per_tile = [clusters // ntiles] * ntiles
    else:
        per_tile = [clusters // ntiles + (1 if i < clusters % ntiles else 0) for i in range(ntiles)]
    if min(per_tile) < 1:
        raise DemuxError(f"{clusters} clusters cannot fill {ntiles} tiles")
    date = dt.datetime(2024, 6, 1)
    run_id = f"{date:%y%m%d}_{instrument}_{run_number:04d}_A{flowcell}"
    info = RunInfo(
        run_id=run_id,
        number=run_number,
        flowcell=flowcell,
        instrument=instrument,
        date=date,
        reads=tuple(ReadInfo(i + 1, n, ix) for i, (n, ix) in enumerate(read_spec)),
        lane_count=lanes,
        surface_count=len({t // 1000 for t in tile_numbers}),
        swath_count=1,
        tile_count=max(t % 100 for t in tile_numbers),
        tiles=tuple(f"{ln}_{t}" for ln in range(1, lanes + 1) for t in tile_numbers),
        version=5,
    )
    total_cycles = info.total_cycles

    # ---- samples
    idx_seqs = (
        [_distant_indexes(rng, samples, read_spec[r][0], index_distance) for r in index_reads[:2]] if samples else []
    )
    sample_list: list[Sample] = []
    for k in range(samples):
        i1 = idx_seqs[0][k] if len(idx_seqs) > 0 else ""
        i2 = idx_seqs[1][k] if len(idx_seqs) > 1 else ""
        sid = f"Sample{k + 1}"
        if lane_column:
            sample_list.extend(
                Sample(sample_id=sid, number=k + 1, lane=ln, index=i1, index2=i2) for ln in range(1, lanes + 1)
            )
        else:
            sample_list.append(Sample(sample_id=sid, number=k + 1, index=i1, index2=i2))
    if lane_column:
        sample_list.sort(key=lambda s: (s.lane or 0, s.number))
    settings = dict(extra_settings or {})
    if adapter_fraction > 0:
        settings.setdefault("AdapterRead1" if sample_sheet_version == 2 else "Adapter", ADAPTER_READ1)
        settings.setdefault("AdapterRead2", ADAPTER_READ2)
    if override_cycles:
        settings["OverrideCycles"] = override_cycles
    if sample_sheet_version == 2:
        rd: dict[str, int] = {}
        t_i = i_i = 0
        for n, ix in read_spec:
            if ix:
                i_i += 1
                rd[f"Index{i_i}Cycles"] = n
            else:
                t_i += 1
                rd[f"Read{t_i}Cycles"] = n
        sheet_text = write_samplesheet_v2(sample_list, reads=rd, settings=settings, run_name=run_id)
    else:
        sheet_text = write_samplesheet_v1(
            sample_list,
            reads=[n for n, ix in read_spec if not ix],
            settings=settings,
            header={"Experiment Name": run_id},
        )

    run_dir.mkdir(parents=True, exist_ok=True)
    written: list[str] = []

    def put(rel: str, data: bytes) -> None:
        _atomic_write(run_dir / rel, data)
        written.append(rel)

    put("RunInfo.xml", runinfo_xml(info))
    platform = {"cbcl": "NovaSeqXPlus", "bcl.bgzf": "NextSeq"}.get(fmt, "HiSeq")
    put("RunParameters.xml", run_parameters_xml(info, platform=platform))
    put("SampleSheet.csv", sheet_text.encode())

    # ---- per tile content, generated up front (memory ~ clusters x cycles bytes)
    mix = index_error_mix or INDEX_ERROR_MIX
    cat_names = list(mix)
    cat_p = np.array([mix[c] for c in cat_names], dtype=np.float64)
    cat_p = cat_p / cat_p.sum()
    shared_xy: npt.NDArray[np.float32] | None = None
    if fmt == "cbcl":
        shared_xy = (rng.random((per_tile[0], 2)) * 2000 + 10).astype(np.float32)
    tiles_data: list[_SimTile] = []
    ti = 0
    for lane in range(1, lanes + 1):
        for tile in tile_numbers:
            n = per_tile[ti]
            ti += 1
            tiles_data.append(
                _make_tile(
                    rng,
                    lane=lane,
                    tile=tile,
                    n=n,
                    fmt=fmt,
                    read_spec=read_spec,
                    sample_list=[s for s in sample_list if s.lane in (None, lane)],
                    index_reads=index_reads,
                    cat_names=cat_names,
                    cat_p=cat_p,
                    pf_fraction=pf_fraction,
                    no_call_rate=no_call_rate,
                    adapter_fraction=adapter_fraction,
                    shared_xy=shared_xy,
                )
            )

    # ---- positions first (the instrument knows them after template generation)
    by_lane = {ln: [td for td in tiles_data if td.lane == ln] for ln in range(1, lanes + 1)}
    if fmt == "cbcl":
        assert shared_xy is not None
        put("Data/Intensities/s.locs", codecs.encode_locs(shared_xy))
    elif fmt == "bcl.bgzf":  # NextSeq 500/550: lane-level tile index and positions, tiles in order
        for ln, tds in by_lane.items():
            base = f"Data/Intensities/BaseCalls/L{ln:03d}"
            put(f"{base}/s_{ln}.bci", codecs.encode_bci([(td.tile, int(td.pf.size)) for td in tds]))
            put(f"{base}/s_{ln}.locs", codecs.encode_locs(np.concatenate([td.xy for td in tds])))
    else:
        for td in tiles_data:
            lane, tile, xy = td.lane, td.tile, td.xy
            if fmt == "bcl":
                put(f"Data/Intensities/L{lane:03d}/s_{lane}_{tile}.locs", codecs.encode_locs(xy))
            else:
                put(f"Data/Intensities/L{lane:03d}/s_{lane}_{tile}.clocs", codecs.encode_clocs(xy))

    def write_filters() -> None:
        if fmt == "bcl.bgzf":
            for ln, tds in by_lane.items():
                pf_all = np.concatenate([td.pf for td in tds])
                put(f"Data/Intensities/BaseCalls/L{ln:03d}/s_{ln}.filter", codecs.encode_filter(pf_all))
            return
        for td in tiles_data:
            lane, tile, pf = td.lane, td.tile, td.pf
            put(f"Data/Intensities/BaseCalls/L{lane:03d}/s_{lane}_{tile}.filter", codecs.encode_filter(pf))

    start = time.monotonic()
    for c in range(total_cycles):
        cyc = c + 1
        if fmt == "cbcl":
            for lane in range(1, lanes + 1):
                lane_tiles = [td for td in tiles_data if td.lane == lane]
                for surface in sorted({td.tile // 1000 for td in lane_tiles}):
                    entries = []
                    for td in lane_tiles:
                        if td.tile // 1000 != surface:
                            continue
                        calls, pf = td.calls, td.pf
                        col = calls[:, c]
                        entries.append((td.tile, int(col.size), col[pf] if cbcl_pf_excluded else col))
                    put(
                        f"Data/Intensities/BaseCalls/L{lane:03d}/C{cyc}.1/L{lane:03d}_{surface}.cbcl",
                        codecs.encode_cbcl(entries, pf_excluded=cbcl_pf_excluded, level=compression_level),
                    )
        elif fmt == "bcl.bgzf":
            for ln, tds in by_lane.items():
                raw = codecs.encode_bcl(np.concatenate([td.calls[:, c] for td in tds]))
                put(
                    f"Data/Intensities/BaseCalls/L{ln:03d}/{cyc:04d}.bcl.bgzf",
                    codecs.bgzf_bytes(raw, compression_level),
                )
        else:
            for td in tiles_data:
                calls = td.calls
                raw = codecs.encode_bcl(calls[:, c])
                data = codecs.gzip_bytes(raw, compression_level) if fmt == "bcl.gz" else raw
                put(
                    f"Data/Intensities/BaseCalls/L{td.lane:03d}/C{cyc}.1/s_{td.lane}_{td.tile}.{fmt}",
                    data,
                )
        if cyc == min(FILTER_AFTER_CYCLE, total_cycles):
            write_filters()
        if on_cycle:
            on_cycle(cyc, total_cycles)
        if cycles_per_second > 0:
            delay = start + cyc / cycles_per_second - time.monotonic()
            if delay > 0:
                time.sleep(delay)

    put("RTAComplete.txt", f"RTA 3.4.4 completed on {date:%m/%d/%Y %I:%M:%S %p}\n".encode())
    truth_path: Path | None = None
    if truth:
        truth_path = truth if isinstance(truth, Path) else run_dir.parent / f"{run_dir.name}.truth.tsv.gz"
        _write_truth(truth_path, tiles_data, index_reads=index_reads, read_spec=read_spec)
    put("CopyComplete.txt", b"")
    return SimulationResult(
        run_dir=run_dir,
        run_info=info,
        samples=sample_list,
        fmt=fmt,
        truth_path=truth_path,
        clusters=sum(per_tile),
        files=written,
    )


def _make_tile(
    rng: np.random.Generator,
    *,
    lane: int,
    tile: int,
    n: int,
    fmt: str,
    read_spec: list[tuple[int, bool]],
    sample_list: list[Sample],
    index_reads: list[int],
    cat_names: list[str],
    cat_p: npt.NDArray[np.float64],
    pf_fraction: float,
    no_call_rate: float,
    adapter_fraction: float,
    shared_xy: npt.NDArray[np.float32] | None,
) -> _SimTile:
    total = sum(c for c, _ in read_spec)
    bases = rng.integers(0, 4, size=(n, total), dtype=np.uint8)
    if fmt == "cbcl":
        quals = np.array(CBCL_QUALITIES, dtype=np.uint8)[rng.choice(3, size=(n, total), p=[0.08, 0.12, 0.80])]
    else:
        hi = rng.integers(30, 42, size=(n, total), dtype=np.uint8)
        lo = rng.integers(2, 30, size=(n, total), dtype=np.uint8)
        quals = np.where(rng.random((n, total)) < 0.8, hi, lo).astype(np.uint8)
    pf = rng.random(n) < pf_fraction
    starts = np.cumsum([0] + [c for c, _ in read_spec])

    # adapters: short inserts read into the adapter on both template reads
    templates = [i for i, (_, ix) in enumerate(read_spec) if not ix]
    if adapter_fraction > 0 and templates:
        sel = np.flatnonzero(rng.random(n) < adapter_fraction)
        adapters = [ADAPTER_READ1, ADAPTER_READ2]
        for row in sel.tolist():
            rlen = read_spec[templates[0]][0]
            ins = int(rng.integers(0, rlen))
            insert = bases[row, starts[templates[0]] : starts[templates[0]] + ins].copy()
            for k, ri in enumerate(templates[:2]):
                length = read_spec[ri][0]
                seq = insert if k == 0 else (3 - insert[::-1])
                ad = np.frombuffer(adapters[k].encode(), dtype=np.uint8)
                ad_codes = np.searchsorted(BASES, ad).astype(np.uint8)
                full = np.concatenate([seq, ad_codes, rng.integers(0, 4, size=length, dtype=np.uint8)])[:length]
                bases[row, starts[ri] : starts[ri] + length] = full

    # indexes: source sample + injected errors per index read
    sample_of = np.full(n, -1, dtype=np.int64)
    err_names = np.zeros((n, max(len(index_reads), 1)), dtype=np.int64)
    if sample_list and index_reads:
        sample_of = rng.integers(0, len(sample_list), size=n)
        # one error category per cluster, applied to one index read ("random" replaces all of them)
        cluster_cat = rng.choice(len(cat_names), size=n, p=cat_p)
        n_idx = len(index_reads[:2])
        target = rng.integers(0, n_idx, size=n)
        exact = cat_names.index("exact") if "exact" in cat_names else -1
        random_cat = cat_names.index("random") if "random" in cat_names else -1
        for k, ri in enumerate(index_reads[:2]):
            length = read_spec[ri][0]
            seqs = [s.index if k == 0 else s.index2 for s in sample_list]
            table = np.array(
                [np.searchsorted(BASES, np.frombuffer(s.encode(), dtype=np.uint8)) for s in seqs],
                dtype=np.uint8,
            ).reshape(len(seqs), length)
            codes = table[sample_of]
            hit = (target == k) | (cluster_cat == random_cat) | (exact < 0)
            cats = np.where(hit, cluster_cat, exact)
            err_names[:, k] = cats
            codes = _inject_index_errors(rng, codes, cats, cat_names)
            ncall = codes == 4
            bases[:, starts[ri] : starts[ri] + length] = np.where(ncall, 0, codes)
            qslice = quals[:, starts[ri] : starts[ri] + length]
            quals[:, starts[ri] : starts[ri] + length] = np.where(ncall, 0, qslice)
    elif sample_list:
        sample_of = np.zeros(n, dtype=np.int64)  # no index read: everything belongs to the lane's sample
    nocall = (rng.random((n, total)) < no_call_rate) | (quals == 0)
    calls = np.where(nocall, 0, (quals << 2) | bases).astype(np.uint8)

    if shared_xy is not None:
        xy = shared_xy
    else:
        xy = (rng.random((n, 2)) * 2000 + 10).astype(np.float32)
        if fmt == "bcl.gz":  # clocs: quantised to 0.1 px, cluster order = bin order
            xy = (np.floor(xy * 10) / 10).astype(np.float32)
            order = codecs.clocs_order(xy)
            xy = xy[order]
            # round-trip through the codec so the truth has exactly what a reader decodes
            xy = codecs.decode_clocs(codecs.encode_clocs(xy))
    return _SimTile(
        lane=lane,
        tile=tile,
        calls=calls,
        pf=pf,
        xy=xy,
        sample_of=sample_of,
        errors=err_names,
        samples=sample_list,
        cat_names=cat_names,
    )


_BASE_CHARS = np.frombuffer(b"ACGT", dtype=np.uint8)


def calls_to_text(calls: npt.NDArray[np.uint8]) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.uint8]]:
    """BCL bytes -> (ASCII bases, ASCII Phred+33 qualities); quality bits 0 = no-call N/#."""
    q = calls >> 2
    nc = q == 0
    seq = np.where(nc, ord("N"), _BASE_CHARS[calls & 3]).astype(np.uint8)
    qual = np.where(nc, 35, q + 33).astype(np.uint8)
    return seq, qual


def _write_truth(
    path: Path,
    tiles_data: list[_SimTile],
    *,
    index_reads: list[int],
    read_spec: list[tuple[int, bool]],
) -> None:
    tmp = path.with_name(f".~{path.name}.tmp")
    with gzip.open(tmp, "wt", compresslevel=1, encoding="ascii") as f:
        f.write("lane\ttile\tcluster\tx\ty\tpf\tsample\tindex_errors\tbases\tquals\n")
        for td in tiles_data:
            calls, pf, xy = td.calls, td.pf, td.xy
            sample_of, errors = td.sample_of, td.errors
            samples, cat_names = td.samples, td.cat_names
            x, y = codecs.fastq_coordinates(xy)
            seq, qual = calls_to_text(calls)
            nidx = len(index_reads[:2])
            for i in range(calls.shape[0]):
                sid = samples[int(sample_of[i])].sample_id if sample_of[i] >= 0 else ""
                errs = "+".join(cat_names[int(errors[i, k])] for k in range(nidx)) if sid and nidx else ""
                f.write(
                    f"{td.lane}\t{td.tile}\t{i}\t{x[i]}\t{y[i]}\t{int(pf[i])}\t{sid}\t{errs}\t"
                    f"{seq[i].tobytes().decode()}\t{qual[i].tobytes().decode()}\n"
                )
    os.replace(tmp, path)
