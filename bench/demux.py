"""Demultiplexing throughput vs the floor of the work, measured in the same run.

    .venv/bin/python bench/demux.py [--clusters 1000000] [--formats bcl.gz,cbcl] [--threads 2]

For each format: simulate a run (reads 151+8+8+151, 8 dual-indexed samples, 4 tiles), then
1. demux it with `--threads N` (wall time, clusters/s, peak RSS summed over the process tree);
2. the floor, with the same N processes: decompress every base-call file of the run and gzip the
   very FASTQ bytes the demux wrote, with the same library (ISA-L) at the same level;
3. ratio = floor time / demux time (1.0 = demux costs no more than reading + compressing).
Each is the best of --repeat runs (the machine is shared; the minimum is the least disturbed).
Also: size of the FASTQ.gz at our default level vs zlib level 4 (bcl2fastq's default) on the same bytes.
"""

from __future__ import annotations

import argparse
import gzip
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from isal import igzip, isal_zlib

from services.ingest.bcl import codecs
from services.ingest.bcl.demux import DemuxOptions, run_demux
from services.ingest.bcl.fastq import isal_level
from services.ingest.bcl.simulate import simulate_run


def _cli_peak_rss(run: Path, out: Path, threads: int) -> int:
    """Peak RSS summed over the process tree of `seqhub demux` run as its own process (what a user sees)."""
    cmd = [
        sys.executable,
        "-m",
        "libs.sdk.commands.demux",
        str(run),
        "--out",
        str(out),
        "--threads",
        str(threads),
        "--quiet",
    ]
    proc = subprocess.Popen(cmd, cwd=Path(__file__).resolve().parents[1])
    peak = 0
    while proc.poll() is None:
        peak = max(peak, _tree_rss(proc.pid))
        time.sleep(0.05)
    if proc.returncode != 0:
        raise SystemExit(f"seqhub demux failed with {proc.returncode}")
    return peak


def _tree_rss(pid: int) -> int:
    total, stack = 0, [pid]
    while stack:
        p = stack.pop()
        try:
            with open(f"/proc/{p}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1]) * 1024
            for t in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{t}/children") as f:
                    stack.extend(int(c) for c in f.read().split())
        except (FileNotFoundError, ProcessLookupError):
            continue
    return total


class PeakRss:
    def __init__(self) -> None:
        self.peak = 0
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, _tree_rss(os.getpid()))
            time.sleep(0.05)

    def __enter__(self) -> PeakRss:
        self._t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._t.join()


def _floor_worker(args: tuple[list[str], list[str], int]) -> float:
    inputs, fastqs, level = args
    t = time.perf_counter()
    for p in inputs:
        data = Path(p).read_bytes()
        if p.endswith(".gz"):
            igzip.decompress(data)
        elif p.endswith(".cbcl"):
            header, _ = codecs.parse_cbcl_header(data), None
            pos = header.header_size
            for tile in header.tiles:
                igzip.decompress(data[pos : pos + tile.compressed])
                pos += tile.compressed
    decomp = time.perf_counter() - t
    t = time.perf_counter()
    for p in fastqs:
        raw = Path(p).read_bytes()
        c = isal_zlib.compressobj(level, isal_zlib.DEFLATED, 31)
        c.compress(raw)
        c.flush()
    return decomp + (time.perf_counter() - t)


def bench(fmt: str, clusters: int, threads: int, work: Path, repeat: int) -> dict[str, float]:
    run = work / f"run_{fmt}"
    t = time.perf_counter()
    simulate_run(run, fmt=fmt, clusters=clusters, lanes=1, tiles=4, reads="151,8,8,151", samples=8, seed=1, truth=False)
    sim_s = time.perf_counter() - t
    opts = DemuxOptions(threads=threads)
    demux_times: list[float] = []
    peak = 0
    for k in range(repeat):
        out = work / f"out_{fmt}_{k}"
        with PeakRss() as rss:
            t = time.perf_counter()
            res = run_demux(run, out, opts)
            demux_times.append(time.perf_counter() - t)
        peak = max(peak, rss.peak)
        if k < repeat - 1:
            shutil.rmtree(out)
    cli_peak = _cli_peak_rss(run, work / f"cli_{fmt}", threads)
    shutil.rmtree(work / f"cli_{fmt}")
    # floor: the same bytes, same library, same level, same number of processes
    inputs = sorted(str(p) for p in (run / "Data/Intensities/BaseCalls").rglob("*") if p.suffix in (".gz", ".cbcl"))
    plain = work / f"plain_{fmt}"
    plain.mkdir()
    fq = []
    for f in res.files:
        dst = plain / f"{len(fq)}.fastq"
        with gzip.open(out / f.path, "rb") as src, open(dst, "wb") as d:
            shutil.copyfileobj(src, d, 1 << 22)
        fq.append(str(dst))
    level = isal_level(opts.compression_level)
    jobs = [(inputs[i::threads], fq[i::threads], level) for i in range(threads)]
    floor_times: list[float] = []
    for _ in range(repeat):
        t = time.perf_counter()
        with ProcessPoolExecutor(threads) as pool:
            list(pool.map(_floor_worker, jobs))
        floor_times.append(time.perf_counter() - t)
    # size check on (up to) 64 MiB of FASTQ
    sample = b"".join(Path(p).read_bytes() for p in fq[:4])[: 64 << 20]
    ours = len(igzip.compress(sample, compresslevel=level))
    z4 = len(zlib.compress(sample, 4))
    fastq_bytes = sum(os.path.getsize(p) for p in fq)
    return {
        "sim_s": sim_s,
        "demux_s": min(demux_times),
        "floor_s": min(floor_times),
        "clusters": res.clusters,
        "peak_rss_mb": peak / 2**20,
        "cli_peak_rss_mb": cli_peak / 2**20,
        "size_vs_zlib4": ours / z4,
        "fastq_mb": fastq_bytes / 2**20,
        "gz_mb": sum(f.size for f in res.files) / 2**20,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clusters", type=int, default=1_000_000)
    ap.add_argument("--formats", default="bcl.gz,cbcl")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--workdir", type=Path, default=None)
    ap.add_argument("--repeat", type=int, default=3, help="best of N for demux and for the floor (noisy machine)")
    a = ap.parse_args()
    base = Path(tempfile.mkdtemp(prefix="seqhub-bench-demux-", dir=a.workdir))
    try:
        print(f"clusters={a.clusters} reads=151+8+8+151 threads={a.threads} cpus={os.cpu_count()} best of {a.repeat}")
        for fmt in a.formats.split(","):
            r = bench(fmt, a.clusters, a.threads, base, a.repeat)
            cps = r["clusters"] / r["demux_s"]
            floor_cps = r["clusters"] / r["floor_s"]
            print(
                f"[{fmt}] demux {r['demux_s']:.2f} s = {cps:,.0f} clusters/s | floor (decompress input "
                f"+ gzip same FASTQ, same lib/level, {a.threads} procs) {r['floor_s']:.2f} s = "
                f"{floor_cps:,.0f} clusters/s | ratio {r['floor_s'] / r['demux_s']:.2f} | peak RSS (process "
                f"tree) {r['peak_rss_mb']:.0f} MiB in-bench, {r['cli_peak_rss_mb']:.0f} MiB as `seqhub demux` | FASTQ"
                f" {r['fastq_mb']:.0f} MiB -> {r['gz_mb']:.0f} MiB gz,"
                f" size vs zlib-4 {r['size_vs_zlib4']:.3f} | simulate {r['sim_s']:.1f} s"
            )
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
