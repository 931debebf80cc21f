"""Repository API throughput vs bare pymongo against the same database server, in the same run.

    flock /tmp/seqhub-bench.lock .venv/bin/python bench/repository.py \
        [--mongo-url URL] [--concurrency 8] [--duration 5] [--rounds 2] [--generator auto|wrk|python]

Operations: GET item (JSON), GET collection page (20 items, JSON), POST (JSON sample, XSD-validated).

The measurement is symmetric: every side runs as its own OS process with the same number of requests in
flight, for the same time, against the same database server (secantusdb started here, or --mongo-url):

- API side: the repository in its own process behind real HTTP on 127.0.0.1 (anonymous GETs of public
  data, Bearer-authenticated POSTs). The HTTP load comes from `wrk` (one thread, C, `--concurrency`
  keep-alive connections) when it is installed, else from a Python aiohttp load process; the report
  names the generator used. Either way the load generator is a separate process.
- Baseline side: a separate Python process whose `--concurrency` asyncio workers issue, through one
  `AsyncMongoClient` configured like the services' (`libs.common.db.mongo_client`: timeoutMS, tz_aware,
  appname), exactly the database work the API does for that operation — `find_one` by `_id`
  (whole document, as the API reads it) on the very collection the API reads;
  `find(public, _id > after).sort(_id).limit(21)` on it; `insert_one` of a stored-shape document.
  The baseline process *is* the bare database work: it has no separate load generator to share a CPU with.

Each measurement starts with a one-second warm-up; every round measures the baseline then the API, so drift
in machine load hits both sides; all rounds of an operation run before the next operation (the POSTs grow
the collection the GETs read). "cost x" = baseline ops/s ÷ API req/s of the same round; "cpu x" = (API
process + database server CPU per request) ÷ (bare client + database server CPU per operation), read from
/proc for the processes started here (a less load-sensitive view of the same cost).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import multiprocessing
import os
import random
import re
import shutil
import statistics
import subprocess
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from libs.common.config import CommonSettings
from libs.common.db import mongo_client
from libs.common.testing import TokenMinter
from libs.common.web import root_app
from services import platform
from services.repository.app import create_app
from services.repository.settings import RepositorySettings

WARMUP_SECONDS = 1.0


@dataclass(frozen=True)
class Result:
    rate: float  # operations per second
    p99_ms: float
    generator: str
    front_cpu_us: float  # CPU of the API process (API side) or of the bare client process (baseline), per op
    db_cpu_us: float | None  # CPU of the database server per op (None: server not started here)


def cpu_seconds(pid: int | None) -> float:
    """User + system CPU time a process has used so far (Linux /proc); 0 for an unknown process."""
    if pid is None:
        return 0.0
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class CpuWindow:
    """CPU used by the front process and the database server between start() and stop()."""

    front_pid: int | None
    db_pid: int | None
    front: float = 0.0
    db: float = 0.0

    def start(self) -> None:
        self.front, self.db = cpu_seconds(self.front_pid), cpu_seconds(self.db_pid)

    def per_op(self, ops: int) -> tuple[float, float | None]:
        front = (cpu_seconds(self.front_pid) - self.front) / ops * 1e6
        db = (cpu_seconds(self.db_pid) - self.db) / ops * 1e6 if self.db_pid else None
        return front, db


@dataclass(frozen=True)
class Operation:
    name: str
    http_kind: str  # http-get | http-post
    http_params: dict[str, Any]
    db_kind: str  # db-item | db-page | db-insert
    db_params: dict[str, Any]


def sample(i: int | str, tag: str) -> dict[str, Any]:
    return {
        "alias": f"bench-{tag}-{i}",
        "title": f"Benchmark sample {i}",
        "sample_name": {"taxon_id": 9606, "scientific_name": "Homo sapiens"},
        "sample_attributes": {"sample_attribute": [{"tag": "batch", "value": "1"}]},
    }


def serve(common: CommonSettings, port: int) -> None:
    """The repository in its own process, as deployed (the load generator must not share its process)."""
    app = root_app({"/repository": create_app(RepositorySettings(common=common, review_types=""))})
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None)


# --- load generators ---------------------------------------------------------------------------------------


_COUNTER = itertools.count()  # one per load process: call numbers stay unique across warm-up and measurement


async def _drive(concurrency: int, seconds: float, op: Callable[[int], Awaitable[None]]) -> tuple[int, list[float]]:
    """Run op with `concurrency` calls in flight for `seconds`; (completed calls, latencies in s)."""
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds
    counter = _COUNTER

    async def worker() -> None:
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            await op(next(counter))
            latencies.append(time.perf_counter() - started)

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return len(latencies), latencies


async def _measure(
    concurrency: int, seconds: float, op: Callable[[int], Awaitable[None]], cpu: CpuWindow, generator: str
) -> Result:
    await _drive(concurrency, WARMUP_SECONDS, op)
    cpu.start()
    started = time.perf_counter()
    count, latencies = await _drive(concurrency, seconds, op)
    elapsed = time.perf_counter() - started
    front_us, db_us = cpu.per_op(count)
    p99 = statistics.quantiles(latencies, n=100)[98] if len(latencies) >= 100 else max(latencies)
    return Result(count / elapsed, p99 * 1000, generator, front_us, db_us)


def python_load(kind: str, target: str, params: dict[str, Any], concurrency: int, seconds: float) -> Result:
    """Entry point of a load process (spawned): `kind` is db-item, db-page, db-insert, http-get or http-post.

    params["db_pid"] is the database server's pid (or None), params["api_pid"] the API server's.
    """
    return asyncio.run(_python_load(kind, target, params, concurrency, seconds))


async def _python_load(kind: str, target: str, params: dict[str, Any], concurrency: int, seconds: float) -> Result:
    rng = random.Random()
    if kind.startswith("db-"):
        # the services' own client (libs.common.db: timeoutMS, tz_aware, appname): the same find_one the API runs
        async with mongo_client(target, timeout_ms=params["timeout_ms"], app_name="bench-bare") as client:
            return await _db_load(kind, client[params["db"]][params["collection"]], params, concurrency, seconds, rng)
    return await _http_load(kind, target, params, concurrency, seconds, rng)


async def _db_load(
    kind: str, coll: Any, params: dict[str, Any], concurrency: int, seconds: float, rng: random.Random
) -> Result:
    accessions: list[str] = params.get("accessions", [])
    prefix = uuid.uuid4().hex[:8]

    async def op(i: int) -> None:
        if kind == "db-item":
            found = await coll.find_one({"_id": rng.choice(accessions)})
            assert found is not None
        elif kind == "db-page":
            flt = {"_id": {"$gt": rng.choice(accessions)}, "$or": [{"visibility": "public"}]}
            assert len(await coll.find(flt).sort("_id", 1).limit(21).to_list()) == 21
        else:
            now = datetime.now(UTC)
            await coll.insert_one({
                "_id": f"{prefix}-{i}", "alias": f"bench-db-{prefix}-{i}", "owner": "bench",
                "body": sample(i, "db"), "parents": {}, "files": [], "visibility": "public", "version": 1,
                "created": now, "modified": now, "title_lc": f"benchmark sample {i}", "taxon": 9606,
                "attrs": [{"tag": "batch", "value": "1"}],
            })

    return await _measure(
        concurrency, seconds, op, CpuWindow(os.getpid(), params.get("db_pid")), "python (pymongo)"
    )


async def _http_load(
    kind: str, target: str, params: dict[str, Any], concurrency: int, seconds: float, rng: random.Random
) -> Result:
    db_pid: int | None = params.get("db_pid")
    paths: list[str] = params.get("paths", [])
    headers: dict[str, str] = params.get("headers", {})
    async with aiohttp.ClientSession(target, connector=aiohttp.TCPConnector(limit=concurrency)) as http:
        tag = uuid.uuid4().hex[:8]

        async def http_op(i: int) -> None:
            if kind == "http-get":
                async with http.get(rng.choice(paths)) as response:
                    assert response.status == 200, response.status
                    await response.read()
            else:
                async with http.post(paths[0], json=sample(i, tag), headers=headers) as response:
                    assert response.status == 201, await response.text()
                    await response.read()

        cpu = CpuWindow(params["api_pid"], db_pid)
        return await _measure(concurrency, seconds, http_op, cpu, "python process (aiohttp)")


_WRK_GET = """
local paths = {%s}
math.randomseed(%d)
request = function() return wrk.format("GET", paths[math.random(#paths)]) end
"""

_WRK_POST = """
local n = 0
local tag = ""
init = function(args) tag = args[1] end
request = function()
  n = n + 1
  local body = string.format('{"alias": "bench-%%s-%%d", "title": "Benchmark sample %%d", '
    .. '"sample_name": {"taxon_id": 9606, "scientific_name": "Homo sapiens"}, '
    .. '"sample_attributes": {"sample_attribute": [{"tag": "batch", "value": "1"}]}}', tag, n, n)
  return wrk.format("POST", "%s", {["Content-Type"] = "application/json", ["Authorization"] = "%s"}, body)
end
"""


def wrk_load(wrk: str, url: str, script: str, concurrency: int, seconds: float, cpu: CpuWindow) -> Result:
    """wrk (one thread, `concurrency` connections) with a Lua request generator; fails on any non-2xx answer."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua") as lua:
        lua.write(script)
        lua.flush()

        def once(duration: float) -> str:
            completed = subprocess.run(
                [wrk, "-t1", f"-c{concurrency}", f"-d{max(1, round(duration))}s", "--timeout", "60s", "--latency", "-s",
                 lua.name, url,
                 "--", uuid.uuid4().hex[:12]],  # a fresh tag per wrk run: POSTed aliases never repeat
                capture_output=True, text=True, timeout=duration + 60, check=True,
            )
            if "Non-2xx or 3xx" in completed.stdout or "Socket errors" in completed.stdout:
                raise RuntimeError(f"wrk saw failed requests:\n{completed.stdout}")
            return completed.stdout

        once(WARMUP_SECONDS)
        cpu.start()
        out = once(seconds)
        count = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
        front_us, db_us = cpu.per_op(count)
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    value, unit = re.search(r"\s99%\s+([\d.]+)(us|ms|s)\b", out).groups()  # type: ignore[union-attr]
    p99_ms = float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]
    return Result(rate, p99_ms, "wrk -t1", front_us, db_us)


# --- the run -----------------------------------------------------------------------------------------------


async def _seed(base: str, headers: dict[str, str], items: int) -> list[str]:
    accessions: list[str] = []
    async with aiohttp.ClientSession() as http:
        sem = asyncio.Semaphore(8)

        async def post(i: int) -> None:
            async with sem, http.post(f"{base}/samples", json=sample(i, "seed"), headers=headers) as r:
                assert r.status == 201, await r.text()
                accessions.append((await r.json())["accession"])

        await asyncio.gather(*(post(i) for i in range(items)))
    return sorted(accessions)


def run(mongo_url: str, db_pid: int | None, args: argparse.Namespace) -> list[tuple[int, str, Result, Result]]:
    minter = TokenMinter()
    tag = uuid.uuid4().hex[:8]
    root = Path(tempfile.mkdtemp(prefix="bench-repo-"))
    db_prefix = f"bench{tag}_"
    common = CommonSettings(
        mongo_url=mongo_url, db_prefix=db_prefix, bus_url="embedded", files_root=root / "files",
        data_root=root / "data", auth_jwks=minter.jwks, auth_issuer=minter.issuer, auth_audience=minter.audience,
        log_json=False, log_level="WARNING",
    )
    spawn = multiprocessing.get_context("spawn")
    port = platform.free_port()
    server = spawn.Process(target=serve, args=(common, port), daemon=True)
    server.start()
    wrk = shutil.which("wrk") if args.generator in ("auto", "wrk") else None
    if args.generator == "wrk" and wrk is None:
        raise SystemExit("--generator wrk: wrk is not installed (Debian: apt-get install -y wrk)")
    results: list[tuple[int, str, Result, Result]] = []
    try:
        platform.wait_for_port("127.0.0.1", port, 60)
        origin = f"http://127.0.0.1:{port}"
        token = f"Bearer {minter.mint('bench', 'repository:write', expires_in=3600)}"
        accessions = asyncio.run(_seed(f"{origin}/repository", {"Authorization": token}, args.items))
        first_half = accessions[: len(accessions) // 2]
        item_paths = [f"/repository/samples/{a}" for a in accessions]
        page_paths = [f"/repository/samples?limit=20&after={a}" for a in first_half]
        repo_db = {"db": f"{db_prefix}repository", "collection": "samples"}
        operations = [
            Operation("GET item", "http-get", {"paths": item_paths}, "db-item", {**repo_db, "accessions": accessions}),
            Operation("GET page (20)", "http-get", {"paths": page_paths}, "db-page",
                      {**repo_db, "accessions": first_half}),
            Operation("POST sample", "http-post",
                      {"paths": ["/repository/samples"], "headers": {"Authorization": token}}, "db-insert",
                      {"db": f"{db_prefix}baseline", "collection": "samples"}),
        ]
        with ProcessPoolExecutor(max_workers=1, mp_context=spawn) as pool:
            # all rounds of one operation before the next: the POSTs grow the collection, which must not
            # slow down the GETs measured after them
            for op in operations:
                if op.name not in args.only:
                    continue
                for round_no in range(1, args.rounds + 1):
                    name = op.name
                    pids = {"db_pid": db_pid, "api_pid": server.pid, "timeout_ms": common.mongo_timeout_ms}
                    baseline = pool.submit(
                        python_load, op.db_kind, mongo_url, {**op.db_params, **pids}, args.concurrency, args.duration
                    ).result()
                    cpu = CpuWindow(server.pid, db_pid)
                    if wrk is None:
                        api = pool.submit(
                            python_load, op.http_kind, origin, {**op.http_params, **pids}, args.concurrency,
                            args.duration,
                        ).result()
                    elif op.http_kind == "http-get":
                        quoted = ", ".join(json.dumps(p) for p in op.http_params["paths"])
                        api = wrk_load(wrk, origin, _WRK_GET % (quoted, random.randrange(1 << 30)),
                                       args.concurrency, args.duration, cpu)
                    else:
                        script = _WRK_POST % ("/repository/samples", token)
                        api = wrk_load(wrk, origin, script, args.concurrency, args.duration, cpu)
                    results.append((round_no, name, api, baseline))
                    print(f"round {round_no} {name}: API {api.rate:.0f}/s, bare DB {baseline.rate:.0f}/s, "
                          f"cost {baseline.rate / api.rate:.2f}x", flush=True)
    finally:
        server.terminate()
        server.join(20)
        asyncio.run(_drop(mongo_url, [f"{db_prefix}baseline", f"{db_prefix}repository"]))
        shutil.rmtree(root, ignore_errors=True)
    return results


async def _drop(mongo_url: str, names: list[str]) -> None:
    from pymongo import AsyncMongoClient

    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongo_url)
    try:
        for name in names:
            await client.drop_database(name)
    finally:
        await client.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mongo-url")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per measurement (after warm-up)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--items", type=int, default=400, help="samples seeded for the GETs")
    parser.add_argument("--generator", choices=("auto", "wrk", "python"), default="auto",
                        help="HTTP load generator (auto: wrk when installed)")
    parser.add_argument("--only", nargs="*", default=["GET item", "GET page (20)", "POST sample"])
    args = parser.parse_args()
    if not 1 <= args.concurrency <= 256 or not 1 <= args.duration <= 120 or not 1 <= args.rounds <= 10:
        raise SystemExit("--concurrency 1..256, --duration 1..120, --rounds 1..10")
    load_before = " ".join(f"{x:.2f}" for x in os.getloadavg())
    process = None
    url = args.mongo_url
    if url is None:
        url = f"mongodb://127.0.0.1:{platform.free_port()}/"
        process = platform.start_database(url, ":memory:")
    try:
        results = run(url, process.pid if process is not None else None, args)
    finally:
        if process is not None:
            process.terminate()
            process.wait(20)
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"\nrepository API vs bare pymongo, same server, concurrency={args.concurrency}, {args.duration:.0f} s per "
          f"measurement, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, load average before {load_before}, after {load}")
    print("throughput: cost x = bare DB ops/s / API req/s; CPU: µs per operation, front process (API server, or "
          "the bare client) + database server; cpu x = API total / bare total")
    print(f"{'round':<6}{'operation':<15}{'API req/s':>10}{'p99 ms':>8}{'DB ops/s':>9}{'p99 ms':>8}{'cost x':>8}"
          f"{'API cpu':>9}{'+db':>8}{'bare cpu':>9}{'+db':>8}{'cpu x':>7}  API load generator")
    for round_no, name, api, db in results:
        print(f"{round_no:<6}{name:<15}{api.rate:>10.0f}{api.p99_ms:>8.1f}{db.rate:>9.0f}{db.p99_ms:>8.1f}"
              f"{db.rate / api.rate:>8.2f}{api.front_cpu_us:>9.0f}{_us(api.db_cpu_us):>8}{db.front_cpu_us:>9.0f}"
              f"{_us(db.db_cpu_us):>8}{_cpu_ratio(api, db):>7}  {api.generator}")
    for name in dict.fromkeys(name for _, name, _, _ in results):
        ratios = sorted(db.rate / api.rate for _, n, api, db in results if n == name)
        print(f"{name}: median cost {statistics.median(ratios):.2f}x over {len(ratios)} rounds "
              f"(min {ratios[0]:.2f}, max {ratios[-1]:.2f})")


def _us(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


def _cpu_ratio(api: Result, db: Result) -> str:
    if api.db_cpu_us is None or db.db_cpu_us is None:
        return "-"
    return f"{(api.front_cpu_us + api.db_cpu_us) / (db.front_cpu_us + db.db_cpu_us):.2f}"


if __name__ == "__main__":
    main()
