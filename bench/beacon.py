"""Beacon benchmarks, each figure next to a baseline measured in the same run.

1. Indexing a synthetic N-record VCF (sites-only, AC/AN/AF, ~1% multi-allelic, ~9% indels): records/s of
   `build_version` vs a bare `pysam.VariantFile` pass over the same file (target ratio >= 0.5).
2. Index size: bytes per indexed allele on disk (= resident memory once mapped; target <= 40).
3. Query throughput on a real server on 127.0.0.1 (secantusdb for metadata, server in its own process,
   load generator here): HIT, MISS, bracket range and all-datasets mixes, req/s and p50/p99, next to a
   trivial JSON endpoint on the same server (target >= 0.6 of it, p99 < 20 ms).

    .venv/bin/python -m bench.beacon --records 1000000 --duration 10 --concurrency 4,16
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import random
import shutil
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
import pysam
from pymongo import MongoClient

BASES = "ACGT"
CHROMS = (("1", 248_956_422), ("2", 242_193_529))


def synthetic_vcf(path: Path, records: int, seed: int = 1) -> None:
    rng = random.Random(seed)
    plain = path.with_suffix("")
    with plain.open("w") as out:
        out.write("##fileformat=VCFv4.2\n")
        for chrom, length in CHROMS:
            out.write(f"##contig=<ID={chrom},length={length}>\n")
        out.write('##INFO=<ID=AC,Number=A,Type=Integer,Description="Allele count">\n')
        out.write('##INFO=<ID=AN,Number=1,Type=Integer,Description="Allele number">\n')
        out.write('##INFO=<ID=AF,Number=A,Type=Float,Description="Allele frequency">\n')
        out.write("#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n")
        per_chrom = records // len(CHROMS)
        for chrom, length in CHROMS:
            step = length // per_chrom
            pos = 1
            lines = []
            for _ in range(per_chrom):
                pos += rng.randint(1, 2 * step - 1)
                ref, alts = _alleles(rng)
                an = 5008
                acs = [rng.randint(1, 200) for _ in alts]
                info = f"AC={','.join(map(str, acs))};AN={an};AF={','.join(f'{a / an:.5g}' for a in acs)}"
                lines.append(f"{chrom}\t{pos}\t.\t{ref}\t{','.join(alts)}\t50\tPASS\t{info}\n")
                if len(lines) >= 50_000:
                    out.writelines(lines)
                    lines.clear()
            out.writelines(lines)
    pysam.tabix_compress(str(plain), str(path), force=True)
    plain.unlink()


def _alleles(rng: random.Random) -> tuple[str, list[str]]:
    roll = rng.random()
    ref = rng.choice(BASES)
    if roll < 0.90:
        return ref, [rng.choice([b for b in BASES if b != ref])]
    if roll < 0.95:
        return ref, [ref + "".join(rng.choices(BASES, k=rng.randint(1, 5)))]
    if roll < 0.99:
        return ref + "".join(rng.choices(BASES, k=rng.randint(1, 5))), [ref]
    return ref, [b for b in BASES if b != ref][:2]


def bare_pass(path: Path) -> int:
    n = 0
    with pysam.VariantFile(str(path)) as vf:
        for _ in vf:
            n += 1
    return n


def bench_indexing(vcf: Path, root: Path, records: int) -> Any:
    from services.beacon.index import BYTES_PER_ROW, COLUMNS, build_version, open_version

    t0 = time.perf_counter()
    n = bare_pass(vcf)
    bare = time.perf_counter() - t0
    shutil.rmtree(root, ignore_errors=True)
    t0 = time.perf_counter()
    result = build_version(root, "synthetic", vcf)
    index_s = time.perf_counter() - t0
    print(f"indexing {n:,} records ({result.alleles:,} alleles)")
    print(f"  bare pysam pass   : {n / bare:12,.0f} records/s ({bare:.2f} s)")
    print(f"  build_version     : {n / index_s:12,.0f} records/s ({index_s:.2f} s)")
    print(f"  ratio index/bare  : {bare / index_s:.2f}   (target >= 0.5)")
    per = result.bytes_on_disk / result.alleles
    print(
        f"index size          : {result.bytes_on_disk:,} bytes = {per:.1f} bytes/allele "
        f"(columns {BYTES_PER_ROW} B; target <= 40)"
    )
    rss = _rss()
    index = open_version(root, "synthetic", result.version)
    for chrom in index.chromosomes.values():
        for name in COLUMNS:
            np.asarray(getattr(chrom, name)).view(np.uint8).sum(dtype=np.uint64)  # page every column in
    grown = _rss() - rss
    print(f"resident after open : +{grown:,} bytes = {grown / result.alleles:.1f} bytes/allele (all columns paged in)")
    return result


def _rss() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


# --- query throughput -----------------------------------------------------------------------------------


def _serve(port: int, mongo_url: str, index_dir: str, jwks: dict[str, Any]) -> None:
    from aiohttp import web

    from libs.common.config import CommonSettings
    from services.beacon.app import PREFIX, create_app
    from services.beacon.settings import BeaconSettings

    common = CommonSettings(
        mongo_url=mongo_url,
        db_prefix="bench_",
        bus_url="embedded",
        auth_jwks=jwks,
        files_root=Path(index_dir) / "files",
        data_root=Path(index_dir) / "data",
        log_level="WARNING",
    )
    root = web.Application()

    async def trivial(request: web.Request) -> web.Response:
        return web.json_response({"ok": True, "beaconId": "org.seqhub.beacon"})

    # The baseline sits inside the beacon app, behind the same middlewares (request id, metrics, errors,
    # CORS, auth) as /beacon/query, so the ratio measures the beacon's own work.
    beacon = create_app(BeaconSettings(common=common, index_dir=Path(index_dir) / "index"))
    beacon.router.add_get("/trivial", trivial)
    root.add_subapp(PREFIX, beacon)
    web.run_app(root, host="127.0.0.1", port=port, print=None, access_log=None)


def _register(mongo_url: str, index_root: Path, builds: dict[str, Any]) -> None:
    now = datetime.now(UTC).isoformat()
    with MongoClient(mongo_url) as client:
        db = client["bench_beacon"]
        db.drop_collection("datasets")
        for dataset_id, (build, assembly) in builds.items():
            db["datasets"].insert_one(
                {
                    "_id": dataset_id,
                    "name": dataset_id,
                    "assemblyId": assembly,
                    "accessType": "PUBLIC",
                    "indexVersion": build.version,
                    "variantCount": build.alleles,
                    "callCount": build.records,
                    "sampleCount": build.samples,
                    "createDateTime": now,
                    "updateDateTime": now,
                    "withdrawn": False,
                }
            )


def _queries(vcf: Path, kind: str, count: int, rng: random.Random) -> list[dict[str, str]]:
    rows = _sample_rows(vcf, rng)
    out = []
    for _ in range(count):
        chrom, pos, ref, alt = rng.choice(rows)
        base = {
            "referenceName": chrom,
            "assemblyId": "GRCh38",
            "referenceBases": ref,
            "alternateBases": alt,
            "start": str(pos - 1),
            "datasetIds": "synthetic",
        }
        if kind == "miss":
            base["start"] = str(pos - 1 + rng.randint(1, 40))
        elif kind == "range":
            base = {k: v for k, v in base.items() if k != "start"}
            base.update(
                referenceBases="N",
                alternateBases="N",
                startMin=str(pos - 1),
                startMax=str(pos + 999),
                endMin=str(pos - 1),
                endMax=str(pos + 1099),
            )
        elif kind == "all":
            base.pop("datasetIds")
        out.append(base)
    return out


_ROWS: list[tuple[str, int, str, str]] = []


def _sample_rows(vcf: Path, rng: random.Random) -> list[tuple[str, int, str, str]]:
    if not _ROWS:
        with pysam.VariantFile(str(vcf)) as vf:
            for i, rec in enumerate(vf):
                if i % 97 == 0:
                    _ROWS.append((rec.chrom, rec.pos, rec.ref or "N", (rec.alts or ("N",))[0]))
    return _ROWS


async def _load(url: str, params: list[dict[str, str]] | None, duration: float, concurrency: int) -> dict[str, Any]:
    latencies: list[float] = []
    errors = 0
    deadline = time.perf_counter() + duration
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as http:

        async def worker(offset: int) -> None:
            nonlocal errors
            i = offset
            while time.perf_counter() < deadline:
                t = time.perf_counter()
                async with http.get(url, params=params[i % len(params)] if params else None) as resp:
                    await resp.read()
                    if resp.status != 200:
                        errors += 1
                latencies.append(time.perf_counter() - t)
                i += concurrency

        started = time.perf_counter()
        await asyncio.gather(*(worker(k) for k in range(concurrency)))
        elapsed = time.perf_counter() - started
    latencies.sort()
    return {
        "rps": len(latencies) / elapsed,
        "p50": latencies[len(latencies) // 2] * 1000,
        "p99": latencies[int(len(latencies) * 0.99)] * 1000,
        "n": len(latencies),
        "errors": errors,
        "latencies": latencies,
        "elapsed": elapsed,
    }


ROUNDS = 4


def _interleaved(
    base: str, params: list[dict[str, str]], duration: float, concurrency: int
) -> tuple[dict[str, float], dict[str, float]]:
    """Alternate short slices of baseline and query load, so drift in the machine's load hits both alike."""
    parts: dict[str, list[dict[str, Any]]] = {"trivial": [], "query": []}
    for _ in range(ROUNDS):
        parts["trivial"].append(asyncio.run(_load(f"{base}/beacon/trivial", None, duration / ROUNDS, concurrency)))
        parts["query"].append(asyncio.run(_load(f"{base}/beacon/query", params, duration / ROUNDS, concurrency)))
    return _merge(parts["trivial"]), _merge(parts["query"])


def _merge(runs: list[dict[str, Any]]) -> dict[str, float]:
    latencies = sorted(x for run in runs for x in run["latencies"])
    elapsed = sum(run["elapsed"] for run in runs)
    return {
        "rps": len(latencies) / elapsed,
        "p50": latencies[len(latencies) // 2] * 1000,
        "p99": latencies[int(len(latencies) * 0.99)] * 1000,
        "errors": sum(run["errors"] for run in runs),
    }


def bench_queries(args: argparse.Namespace, vcf: Path, work: Path, synthetic: Any) -> None:
    from libs.common.testing import TokenMinter
    from services import platform
    from services.beacon.index import build_version

    chrmt = Path("/work/shared/data/1000g-chrMT/ALL.chrMT.phase3_callmom-v0_4.20130502.genotypes.vcf.gz")
    index_root = work / "index"
    builds = {"synthetic": (synthetic, "GRCh38")}
    if chrmt.exists():
        builds["chrmt"] = (build_version(index_root, "chrmt", chrmt), "GRCh38")
    mongo_url = f"mongodb://127.0.0.1:{platform.free_port()}/"
    db = platform.start_database(mongo_url, ":memory:")
    port = platform.free_port()
    server = multiprocessing.get_context("spawn").Process(
        target=_serve, args=(port, mongo_url, str(work), TokenMinter().jwks), daemon=True
    )
    try:
        platform.wait_for_port("127.0.0.1", int(mongo_url.rsplit(":", 1)[1].strip("/")))
        _register(mongo_url, index_root, builds)
        server.start()
        platform.wait_for_port("127.0.0.1", port)
        time.sleep(1.0)
        base = f"http://127.0.0.1:{port}"
        rng = random.Random(7)
        mixes = {kind: _queries(vcf, kind, 5000, rng) for kind in ("hit", "miss", "range", "all")}
        asyncio.run(_load(f"{base}/beacon/trivial", None, 2, 8))  # warm-up
        for concurrency in args.concurrency:
            print(
                f"query throughput, {concurrency} concurrent clients, {args.duration:g} s per mix and as much"
                f" baseline, interleaved in {ROUNDS} rounds (server: 1 process; load generator: this process)"
            )
            for kind, params in mixes.items():
                trivial, stats = _interleaved(base, params, args.duration, concurrency)
                print(
                    f"  {kind:6s}: {stats['rps']:7,.0f} req/s  p50 {stats['p50']:6.2f} ms  p99 {stats['p99']:6.2f} ms"
                    f" | trivial {trivial['rps']:7,.0f} req/s  p50 {trivial['p50']:6.2f}  p99 {trivial['p99']:6.2f}"
                    f" | ratio {stats['rps'] / trivial['rps']:.2f}  errors {stats['errors']}"
                )
    finally:
        server.terminate()
        server.join(10)
        db.terminate()
        db.wait(20)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument(
        "--concurrency",
        type=lambda v: [int(x) for x in v.split(",")],
        default=[4, 16],
        help="comma-separated client counts, e.g. 4,16",
    )
    parser.add_argument("--work", type=Path, default=Path("/tmp/beacon-bench"))
    parser.add_argument("--no-queries", action="store_true", help="indexing and size only")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    vcf = args.work / f"synthetic-{args.records}.vcf.gz"
    if not vcf.exists():
        t0 = time.perf_counter()
        synthetic_vcf(vcf, args.records)
        print(f"generated {vcf} in {time.perf_counter() - t0:.1f} s ({vcf.stat().st_size:,} bytes)")
    print(f"machine: {os.cpu_count()} cores")
    synthetic = bench_indexing(vcf, args.work / "index", args.records)
    if not args.no_queries:
        bench_queries(args, vcf, args.work, synthetic)


if __name__ == "__main__":
    main()
