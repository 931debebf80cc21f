"""RNAget benchmarks, each figure next to a baseline measured in the same run.

On a features x samples float32 matrix (default 60,000 x 10,000 = 2.4 GB, generated under --workdir and
deleted afterwards):

1. Slice reads in the store (dual-chunked HDF5, services/rnaget/matrix.py) vs a direct h5py read of the
   same cells from a plainly chunked file (h5py's own chunk guess) — 100 named features x all samples,
   all features x 100 samples, and a threshold query (target <= 1.5x the direct read).
2. The same three queries through the HTTP API (server in its own process on 127.0.0.1, secantusdb for
   metadata), as tsv and loom: full download time vs the direct read, and streamed MB/s (target >= 100).
3. TSV import MB/s (a smaller TSV: --tsv-features x --tsv-samples) vs numpy's C TSV parser alone.

    .venv/bin/python -m bench.rnaget --features 60000 --samples 10000
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import h5py
import numpy as np
from pymongo import MongoClient

from services import platform
from services.rnaget import formats
from services.rnaget.matrix import BLOCK_ROWS, MatrixFile, MatrixWriter
from services.rnaget.slicing import SliceQuery, Threshold, select

REPO = Path(__file__).resolve().parents[1]


def block(seed: int, r0: int, n: int, n_cols: int) -> np.ndarray:
    rng = np.random.default_rng([seed, r0])
    values = rng.gamma(0.6, 30.0, size=(n, n_cols)).astype(np.float32)
    values[rng.random(values.shape, dtype=np.float32) < 0.02] = np.nan
    return values


def generate(store: Path, plain: Path, n_rows: int, n_cols: int, seed: int = 1) -> dict[str, float]:
    genes = [f"ENSG{i:011d}" for i in range(n_rows)]
    names = [f"GENE{i}" for i in range(n_rows)]
    samples = [f"SAMPLE{j:06d}" for j in range(n_cols)]
    t_store = t_plain = 0.0
    with h5py.File(plain, "w") as h5, MatrixWriter(store, kind="expression", col_attrs={"Sample": samples}) as w:
        ds = h5.create_dataset("matrix", shape=(n_rows, n_cols), dtype=np.float32, chunks=True)
        for r0 in range(0, n_rows, BLOCK_ROWS):
            n = min(BLOCK_ROWS, n_rows - r0)
            values = block(seed, r0, n, n_cols)
            t = time.perf_counter()
            w.append(values, {"GeneID": genes[r0:r0 + n], "GeneName": names[r0:r0 + n]})
            t_store += time.perf_counter() - t
            t = time.perf_counter()
            ds[r0:r0 + n] = values
            t_plain += time.perf_counter() - t
        plain_chunks = ds.chunks
    t = time.perf_counter()
    w.close()
    t_store += time.perf_counter() - t
    print(f"generated {n_rows} x {n_cols}: store write {t_store:.1f} s (both layouts), plain write {t_plain:.1f} s "
          f"(chunks {plain_chunks}); ratio {t_store / t_plain:.2f}")
    return {"store_write_s": t_store, "plain_write_s": t_plain}


HTTP_REPEAT = 5  # the machine is shared: best of 5 filters other tenants' bursts; the median shows the spread


def best(fn: Callable[[], Any], repeat: int = 3) -> tuple[float, Any]:
    times, result = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t)
    return min(times), result


def queries(n_rows: int, n_cols: int, seed: int = 2) -> dict[str, dict[str, Any]]:
    rng = np.random.default_rng(seed)
    rows = np.sort(rng.choice(n_rows, 100, replace=False))
    cols = np.sort(rng.choice(n_cols, 100, replace=False))
    key = int(rows[0])
    return {
        "100 features x all samples": {"rows": rows, "cols": None,
                                       "params": {"featureIDList": ",".join(f"ENSG{i:011d}" for i in rows)}},
        "all features x 100 samples": {"rows": None, "cols": cols,
                                       "params": {"sampleIDList": ",".join(f"SAMPLE{j:06d}" for j in cols)}},
        "threshold (100 features, minExpression on one, feature_min_value)": {
            "rows": rows, "cols": None, "threshold": (key, 20.0), "feature_min": 150.0,
            "params": {"featureIDList": ",".join(f"ENSG{i:011d}" for i in rows),
                       "minExpression": f'[{{"threshold": 20.0, "featureID": "ENSG{key:011d}"}}]',
                       "feature_min_value": "150.0"}},
    }


def direct_read(plain: Path, q: dict[str, Any]) -> np.ndarray:
    with h5py.File(plain, "r") as h5:
        ds = h5["matrix"]
        if q["cols"] is None:
            out = ds[q["rows"], :]
        else:
            out = ds[:, q["cols"]]
        if "threshold" in q:
            key, t = q["threshold"]
            keep_cols = out[list(q["rows"]).index(key)] >= t
            out = out[:, keep_cols]
            out = out[(out >= q["feature_min"]).any(axis=1)]
        return np.asarray(out)


def store_read(store: Path, q: dict[str, Any]) -> np.ndarray:
    with MatrixFile.open(store) as mf:
        sq = SliceQuery(
            feature_ids=tuple(f"ENSG{i:011d}" for i in q["rows"]) if q["rows"] is not None else None,
            sample_ids=tuple(f"SAMPLE{j:06d}" for j in q["cols"]) if q["cols"] is not None else None,
            min_expression=(Threshold(q["threshold"][1], feature_id=f"ENSG{q['threshold'][0]:011d}"),)
            if "threshold" in q else (),
            feature_min_value=q.get("feature_min"))
        return mf.read(select(mf, sq))


def start_server(workdir: Path, mongo_url: str, prefix: str, port: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, "SEQHUB_MONGO_URL": mongo_url, "SEQHUB_DB_PREFIX": prefix, "SEQHUB_BUS_URL": "embedded",
           "SEQHUB_DATA_ROOT": str(workdir / "data"), "SEQHUB_FILES_ROOT": str(workdir / "files"),
           "SEQHUB_HTTP_PORT": str(port), "SEQHUB_LOG_LEVEL": "WARNING",
           "SEQHUB_RNAGET_MAX_SLICE_CELLS": str(10**10)}
    proc = subprocess.Popen([sys.executable, "-m", "services.rnaget"], cwd=REPO, env=env)
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/rnaget/readyz", timeout=2) as r:
                if r.status == 200:
                    return proc
        except OSError:
            time.sleep(0.3)
    proc.terminate()
    raise SystemExit("rnaget server did not become ready")


def http_get(url: str) -> tuple[int, float]:
    t = time.perf_counter()
    size = 0
    with urllib.request.urlopen(url, timeout=600) as r:  # noqa: S310
        while chunk := r.read(1 << 20):
            size += len(chunk)
    return size, time.perf_counter() - t


def bench_tsv_import(workdir: Path, n_rows: int, n_cols: int) -> None:
    src = workdir / "import.tsv"
    with src.open("wb") as f:
        f.write(("gene\tname\t" + "\t".join(f"S{j}" for j in range(n_cols)) + "\n").encode())
        for r0 in range(0, n_rows, BLOCK_ROWS):
            n = min(BLOCK_ROWS, n_rows - r0)
            lines = formats.format_block(block(3, r0, n, n_cols))
            f.write(b"".join(f"G{r0 + i}\tN{r0 + i}\t".encode() + ln + b"\n" for i, ln in enumerate(lines)))
    size = src.stat().st_size

    def parse_only() -> None:
        with src.open("rb") as f:
            next(f)
            for _ in formats._tsv_blocks(f, 1, 2, n_cols, "bench"):
                pass

    t_parse, _ = best(parse_only, 1)
    dest = workdir / "import.h5"
    t_import, _ = best(lambda: formats.import_tsv(src.open("rb"), dest), 1)
    print(f"\nTSV import, {n_rows} x {n_cols} ({size / 1e6:.0f} MB): {size / 1e6 / t_import:.1f} MB/s "
          f"({t_import:.1f} s); numpy loadtxt parse alone {size / 1e6 / t_parse:.1f} MB/s; "
          f"ratio import/parse time {t_import / t_parse:.2f}")
    src.unlink()
    dest.unlink()


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--features", type=int, default=60_000)
    ap.add_argument("--samples", type=int, default=10_000)
    ap.add_argument("--tsv-features", type=int, default=20_000)
    ap.add_argument("--tsv-samples", type=int, default=1_000)
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/rnaget-bench"))
    ap.add_argument("--keep", action="store_true", help="keep the generated files")
    args = ap.parse_args()
    workdir = args.workdir
    shutil.rmtree(workdir, ignore_errors=True)
    (workdir / "data" / "rnaget" / "matrices").mkdir(parents=True)
    store = workdir / "data" / "rnaget" / "matrices" / "bench.h5"
    plain = workdir / "plain.h5"
    print(f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} cores, load average {_load()}")
    mongo_url = f"mongodb://127.0.0.1:{platform.free_port()}/"
    mongo = platform.start_database(mongo_url, ":memory:")
    server = None
    try:
        generate(store, plain, args.features, args.samples)
        t = time.perf_counter()
        os.sync()  # the 7 GB just written must not be flushed to disk while the timed reads run
        print(f"sync {time.perf_counter() - t:.1f} s")
        qs = queries(args.features, args.samples)
        print("\nslice read (in process)                    direct h5py   store      ratio")
        for name, q in qs.items():
            t_direct, expected = best(partial(direct_read, plain, q))
            t_store, got = best(partial(store_read, store, q))
            assert np.array_equal(got, expected, equal_nan=True), name
            q["shape"], q["t_direct"] = got.shape, t_direct
            print(f"  {name[:40]:<40} {t_direct * 1000:9.1f} ms {t_store * 1000:8.1f} ms  {t_store / t_direct:5.2f}x"
                  f"   {got.shape}")

        prefix = f"bench{uuid.uuid4().hex[:6]}_"
        client: MongoClient[dict[str, Any]] = MongoClient(mongo_url)
        with client:
            client[f"{prefix}rnaget"]["matrices"].insert_one({
                "_id": "bench", "kind": "expression", "units": "TPM", "file": "matrices/bench.h5",
                "rows": args.features, "cols": args.samples, "access_level": "PUBLIC", "studyID": "S"})
        port = platform.free_port()
        server = start_server(workdir, mongo_url, prefix, port)
        base = f"http://127.0.0.1:{port}/rnaget/expressions/bench/bytes?"
        print(f"\nHTTP download (server process; best and median of {HTTP_REPEAT} after a warm-up)\n"
              "                                       direct h5py   best  ratio   MB   best MB/s  median MB/s")
        for name, q in qs.items():
            for fmt in ("tsv", "loom"):
                url = base + urllib.parse.urlencode({**q["params"], "format": fmt})
                http_get(url)  # warm: opens the file, loads labels
                runs = [http_get(url) for _ in range(HTTP_REPEAT)]
                size, times = runs[0][0], sorted(t for _, t in runs)
                t, median = times[0], times[len(times) // 2]
                print(f"  {name[:32]:<32} {fmt:<5} {q['t_direct'] * 1000:7.1f} ms {t * 1000:5.0f} ms "
                      f"{t / q['t_direct']:5.2f}x {size / 1e6:5.1f} {size / 1e6 / t:9.1f} {size / 1e6 / median:11.1f}")
        bench_tsv_import(workdir, args.tsv_features, args.tsv_samples)
        print(f"\n{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, load average {_load()}")
    finally:
        if server is not None:
            server.terminate()
            server.wait(30)
        mongo.terminate()
        mongo.wait(30)
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
