"""Upload benchmark: tus ingest vs a bare aiohttp streaming handler, and the agent with/without parallelism.

Part A — one big file over loopback (default 2 GiB) with real tus clients (aiotus, tuspy) at 8 MiB and 64 MiB
chunks, next to a bare aiohttp handler that streams each request body to disk (1 MiB writes, fsync per
request, like the ingest server) fed the same chunks by a plain aiohttp client, in the same run. Also: the
ingest server fed by that same plain client speaking tus ("plain tus": the server's own cost), and the bare
handler fed each chunk as a bytes body the way aiotus sends it ("bare(bytes)": the client-side cost of that), and
seqhub's own agent (`RunUploader`, parallel 1, `--chunk-size` = the chunk) uploading a run folder holding the
file: a second real tus client, doing the work instruments do (a sha256 pass over the file first, a sha1
Upload-Checksum per chunk that the server verifies, each chunk streamed from the file). Client CPU-s per GiB
(this process's CPU time) is shown for aiotus and the agent. Both
servers are separate processes, started fresh for each measurement; their peak RSS (VmHWM) is read from
/proc, and the ingest server is also measured with a small file (default 200 MiB) to show RSS is flat. Printed
too: the database's share of a PATCH's fixed cost (median latency of the one offset write a PATCH makes,
`UploadStore.write_locked`, from this process) and the milliseconds per chunk of the bare handler and plain tus.

Part B — a run of many small files (default 10,000 x 100 KB) through the agent (`RunUploader`): files/s
with `--parallel` transfers vs one at a time, each against a fresh ingest server and (when the bench starts
its own) a fresh database server. Each line also shows the CPU milliseconds per file spent by the agent (this
process), the ingest server and the database server, read from /proc.

Part C — a run of large files (default 32 x 48 MiB) through the agent at its default `--parallel`, with
`--parallel-large` streams (default 1 4 8 16 32): MB/s, the ratio to one stream in the same round, and the ingest
server's peak RSS. It shows where streams stop paying (the agent's DEFAULT_PARALLEL_LARGE) and what each costs.

Uses a secantusdb server started here (or SEQHUB_BENCH_MONGO_URL); the servers connect with
`retryWrites=false` unless --retryable-writes (secantusdb's per-write cost grows with the number of retryable
writes before it; see Bench.service_mongo_url). Big temporary files are deleted.

    .venv/bin/python bench/upload.py                      # full run (several minutes)
    .venv/bin/python bench/upload.py --big-mib 512 --files 2000   # quicker
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import io
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
import uuid
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import aiotus
from tusclient.client import TusClient

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from libs.common.db import mongo_client  # noqa: E402
from libs.common.testing import TokenMinter  # noqa: E402
from libs.sdk.client import SeqhubClient  # noqa: E402
from libs.sdk.uploader import DEFAULT_PARALLEL, DEFAULT_PARALLEL_LARGE, RunUploader  # noqa: E402
from services.ingest import store  # noqa: E402
from services.ingest.bcl.runinfo import ReadInfo, RunInfo, runinfo_xml  # noqa: E402

MIB = 1 << 20
TINY = RunInfo(
    run_id="BENCH",
    number=1,
    flowcell="FC",
    instrument="BENCH01",
    date=None,
    reads=(ReadInfo(1, 1, False),),
    lane_count=1,
    tiles=("1_1101",),
)
SERVER_COMMAND = [sys.executable, "-m", "services.ingest"]

BARE_SERVER = textwrap.dedent("""
    import os, sys
    from aiohttp import web
    root = sys.argv[2]
    async def sink(request):
        path = os.path.join(root, request.match_info["name"])
        with open(path, "ab") as fh:
            async for chunk in request.content.iter_chunked(1 << 20):
                fh.write(chunk)
            fh.flush()
            os.fsync(fh.fileno())
        return web.Response(status=204)
    app = web.Application()
    app.router.add_post("/sink/{name}", sink)
    web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None)
""")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_port(port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on port {port}")


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def cpu_seconds(pid: int | None) -> float:
    """User + system CPU time of a process so far (its threads included), from /proc."""
    if pid is None:
        return float("nan")
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextlib.contextmanager
def process(command: list[str], port: int, env: dict[str, str] | None = None) -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT)
    try:
        wait_port(port)
        yield proc
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextlib.contextmanager
def secantusdb() -> Iterator[tuple[str, int]]:
    """A fresh in-memory secantusdb server: (URL, pid)."""
    port = free_port()
    command = [str(Path(sys.executable).parent / "secantusd-py"), "--host", "127.0.0.1", "--port", str(port)]
    command += ["--storage-path", ":memory:", "--log-level", "WARNING"]
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_port(port)
        yield f"mongodb://127.0.0.1:{port}/", proc.pid
    finally:
        proc.terminate()
        proc.wait()


@dataclass
class AgentRun:
    seconds: float
    files: int
    cpu: str  # CPU ms per file: agent / ingest server / database
    server_rss_mib: float


class Bench:
    def __init__(self, args: argparse.Namespace, mongo_url: str, work: Path, db_pid: int | None) -> None:
        self.args = args
        self.db_pid = db_pid  # secantusdb started here (None: a given database, its CPU not measured)
        self.mongo_url = mongo_url
        self.work = work
        self.minter = TokenMinter()
        self.token = self.minter.mint("bench", "ingest:upload", expires_in=24 * 3600)

    def ingest_env(self, port: int) -> dict[str, str]:
        tag = uuid.uuid4().hex[:8]
        return {
            **os.environ,
            "SEQHUB_MONGO_URL": self.service_mongo_url(),
            "SEQHUB_DB_PREFIX": f"bench{tag}_",
            "SEQHUB_FILES_ROOT": str(self.work / f"files-{tag}"),
            "SEQHUB_DATA_ROOT": str(self.work / f"data-{tag}"),
            "SEQHUB_AUTH_JWKS": json.dumps(self.minter.jwks),
            "SEQHUB_AUTH_ISSUER": self.minter.issuer,
            "SEQHUB_HTTP_PORT": str(port),
            "SEQHUB_BUS_URL": "embedded",
            "SEQHUB_LOG_LEVEL": "WARNING",
            "SEQHUB_INGEST_SWEEP": "false",
            "SEQHUB_INGEST_MAX_FILE_BYTES": str(64 << 30),
        }

    def service_mongo_url(self) -> str:
        """The servers' database URL. Without --retryable-writes, `retryWrites=false`: secantusdb keeps a record
        per retryable write for 30 min and scans (past 10,000 records: sorts) them all on every write, so its
        cost per write grows with every write before it — 10,000 files slowed from ~70 to ~11 files/s within
        one run. Real MongoDB keeps one record per session. The service's own work is the same either way."""
        if self.args.retryable_writes:
            return self.mongo_url
        return self.mongo_url + ("&" if "?" in self.mongo_url else "?") + "retryWrites=false"

    def cleanup(self, *, defer: bool = False) -> None:
        """Remove the servers' file stores. `defer` (part B) keeps them until the next cleanup if the disk has room:
        on ext4 without a journal (as on this machine) a new file's inode is searched past every inode deleted in
        the last 60 s of its block group (`recently_deleted` in fs/ext4/ialloc.c), so deleting one measurement's
        10,000 files just before the next made that one's file creation cost ~1/4 of the server's CPU (perf)."""
        room = shutil.disk_usage(self.work).free > 4 * self.args.files * self.args.file_kb * 1024 + (2 << 30)
        if not (defer and room):
            for path in [*self.work.glob("files-*"), *self.work.glob("data-*")]:
                shutil.rmtree(path, ignore_errors=True)
        os.sync()  # the next measurement starts with nothing of this one left to write back

    async def register(self, http: aiohttp.ClientSession, base: str, name: str) -> str:
        async with http.post(
            f"{base}/ingest/runs",
            headers={"Authorization": f"Bearer {self.token}"},
            json={"name": name, "run_info_xml": runinfo_xml(TINY).decode(), "format": "bcl"},
        ) as r:
            assert r.status == 201, await r.text()
            return str((await r.json())["id"])

    # --- part A ---------------------------------------------------------------------------------

    async def bare(self, source: Path, chunk: int, *, as_bytes: bool = False) -> tuple[float, float]:
        """The baseline. `as_bytes`: send each chunk as a bytes body, as aiotus does (aiohttp then joins and
        buffers it: client-side copies), instead of a BytesIO the client streams."""
        port = free_port()
        sink = self.work / "sink"
        sink.mkdir(exist_ok=True)
        with process([sys.executable, "-c", BARE_SERVER, str(port), str(sink)], port) as proc:
            started = time.perf_counter()
            async with aiohttp.ClientSession() as http:
                with source.open("rb") as fh:
                    while block := fh.read(chunk):
                        body = block if as_bytes else io.BytesIO(block)
                        async with http.post(f"http://127.0.0.1:{port}/sink/big", data=body) as r:
                            assert r.status == 204
            elapsed = time.perf_counter() - started
            rss = peak_rss_mib(proc.pid)
        assert (sink / "big").stat().st_size == source.stat().st_size
        shutil.rmtree(sink)
        return source.stat().st_size / MIB / elapsed, rss

    async def tus_plain(self, source: Path, chunk: int) -> float:
        """tus PATCHes sent by the same plain aiohttp client loop as the bare baseline: the server's own cost."""
        port = free_port()
        with process(SERVER_COMMAND, port, self.ingest_env(port)):
            base = f"http://127.0.0.1:{port}"
            auth = {"Authorization": f"Bearer {self.token}", "Tus-Resumable": "1.0.0"}
            async with aiohttp.ClientSession() as http:
                run_id = await self.register(http, base, "bench_plain")
                size = source.stat().st_size
                meta = f"run_id {b64(run_id)},path {b64('big.bin')}"
                started = time.perf_counter()
                async with http.post(
                    f"{base}/ingest/files/", headers={**auth, "Upload-Length": str(size), "Upload-Metadata": meta}
                ) as r:
                    location = r.headers["Location"]
                offset = 0
                with source.open("rb") as fh:
                    while block := fh.read(chunk):
                        async with http.patch(
                            location,
                            data=io.BytesIO(block),
                            headers={
                                **auth,
                                "Upload-Offset": str(offset),
                                "Content-Type": "application/offset+octet-stream",
                            },
                        ) as r:
                            assert r.status == 204, await r.text()
                            offset = int(r.headers["Upload-Offset"])
                elapsed = time.perf_counter() - started
        self.cleanup()
        return size / MIB / elapsed

    async def agent_big(self, source: Path, chunk: int) -> tuple[float, float]:
        """The agent uploading a run folder with the big file (hard-linked, not copied) and the few tiny files
        RunInfo implies: (MB/s of the whole run, client CPU-s per GiB)."""
        run_dir = self.work / "bigrun"
        make_run(run_dir, 0, 0)
        os.link(source, run_dir / "big.bin")
        port = free_port()
        try:
            with process(SERVER_COMMAND, port, self.ingest_env(port)):
                async with SeqhubClient(f"http://127.0.0.1:{port}", token=self.token) as api:
                    journal = self.work / f"j{uuid.uuid4().hex}"
                    uploader = RunUploader(api, run_dir, parallel=1, chunk_size=chunk, journal_path=journal)
                    cpu, started = time.process_time(), time.perf_counter()
                    await uploader.run()
                    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
        finally:
            shutil.rmtree(run_dir, ignore_errors=True)
            self.cleanup()
        size = source.stat().st_size
        return size / MIB / elapsed, cpu / (size / (1 << 30))

    async def tus(self, source: Path, chunk: int) -> tuple[float, float, float]:
        """aiotus: (MB/s, server peak RSS MiB, client CPU-s per GiB)."""
        port = free_port()
        with process(SERVER_COMMAND, port, self.ingest_env(port)) as proc:
            base = f"http://127.0.0.1:{port}"
            async with aiohttp.ClientSession() as http:
                run_id = await self.register(http, base, "bench_big")
                cpu, started = time.process_time(), time.perf_counter()
                with source.open("rb") as fh:
                    location = await aiotus.upload(
                        f"{base}/ingest/files/",
                        fh,
                        {"run_id": run_id.encode(), "path": b"big.bin"},
                        client_session=http,
                        headers={"Authorization": f"Bearer {self.token}"},
                        chunksize=chunk,
                        config=aiotus.RetryConfiguration(retry_attempts=1),
                    )
                elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
            assert location is not None, "the tus upload failed"
            rss = peak_rss_mib(proc.pid)
        self.cleanup()
        size = source.stat().st_size
        return size / MIB / elapsed, rss, cpu / (size / (1 << 30))

    async def tuspy(self, source: Path, chunk: int) -> tuple[float, float]:
        """tuspy (requests, blocking; run in a thread): (MB/s, client CPU-s per GiB). It sends each chunk as one
        bytes body over http.client, a new connection per request."""
        port = free_port()
        with process(SERVER_COMMAND, port, self.ingest_env(port)):
            base = f"http://127.0.0.1:{port}"
            async with aiohttp.ClientSession() as http:
                run_id = await self.register(http, base, "bench_tuspy")
            client = TusClient(f"{base}/ingest/files/", headers={"Authorization": f"Bearer {self.token}"})
            uploader = client.uploader(
                file_path=str(source), chunk_size=chunk, metadata={"run_id": run_id, "path": "big.bin"}
            )
            cpu, started = time.process_time(), time.perf_counter()
            await asyncio.to_thread(uploader.upload)
            elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
            assert uploader.offset == source.stat().st_size, "the tus upload did not finish"
        self.cleanup()
        size = source.stat().st_size
        return size / MIB / elapsed, cpu / (size / (1 << 30))

    async def offset_write_ms(self, rounds: int = 200) -> float:
        """Median latency (ms) of the one database write a PATCH costs — `UploadStore.write_locked` with the
        fields `uploads._advance` sets, on a collection with the service's indexes, through a client opened as the
        service opens it — from this process to the bench's database: the database's part of a PATCH's fixed cost."""
        async with mongo_client(self.service_mongo_url(), timeout_ms=30_000, app_name="bench-probe") as client:
            db = client[f"bench_probe_{uuid.uuid4().hex[:8]}"]
            await db["uploads"].create_indexes(store.INDEXES["uploads"])
            uploads = store.UploadStore(db)
            at = datetime.now(UTC)
            lock = {"token": "t", "until": at}
            await uploads.insert({"_id": "probe", "offset": 0, "state": "receiving", "expires_at": at, "lock": lock})
            times = []
            for i in range(rounds):
                at = datetime.now(UTC)
                fields = {"offset": i, "updated_at": at, "expires_at": at + timedelta(days=1), "lock.until": at}
                started = time.perf_counter()
                assert await uploads.write_locked("probe", "t", fields)
                times.append(time.perf_counter() - started)
            await client.drop_database(db.name)
        return statistics.median(times) * 1000

    async def part_a(self) -> None:
        big = make_file(self.work / "big.bin", self.args.big_mib)
        small = make_file(self.work / "small.bin", self.args.small_mib)
        print(f"\n== one file over loopback: {self.args.big_mib} MiB (tus clients vs bare aiohttp handler) ==")
        print(f"database offset write (update_one, one per PATCH): {await self.offset_write_ms():.2f} ms median")
        print(
            f"{'chunk':>8} {'bare MB/s':>10} {'aiotus MB/s':>12} {'ratio':>6} {'tuspy MB/s':>11} {'ratio':>6}"
            f" {'agent MB/s':>11} {'ratio':>6}"
            f" {'plain-tus MB/s':>15} {'ratio':>6} {'bare(bytes) MB/s':>17} {'aiotus ratio':>13}"
            f" {'CPU-s/GiB aiotus':>17} {'tuspy':>6} {'agent':>6}"
            f" {'bare RSS':>9} {'tus RSS':>8} {'tus RSS ' + str(self.args.small_mib) + ' MiB':>16}"
            f" {'ms/chunk bare':>14} {'plain-tus':>10}  load"
        )
        try:
            for chunk_mib in self.args.chunks:
                bare_speed, bare_rss = await self.bare(big, chunk_mib * MIB)
                tus_speed, tus_rss, tus_cpu = await self.tus(big, chunk_mib * MIB)
                tuspy_speed, tuspy_cpu = await self.tuspy(big, chunk_mib * MIB)
                agent_speed, agent_cpu = await self.agent_big(big, chunk_mib * MIB)
                plain_speed = await self.tus_plain(big, chunk_mib * MIB)
                bytes_speed, _ = await self.bare(big, chunk_mib * MIB, as_bytes=True)
                _, small_rss, _ = await self.tus(small, chunk_mib * MIB)
                print(
                    f"{chunk_mib:>6}Mi {bare_speed:>10.0f} {tus_speed:>12.0f} {tus_speed / bare_speed:>6.2f}"
                    f" {tuspy_speed:>11.0f} {tuspy_speed / bare_speed:>6.2f}"
                    f" {agent_speed:>11.0f} {agent_speed / bare_speed:>6.2f}"
                    f" {plain_speed:>15.0f} {plain_speed / bare_speed:>6.2f}"
                    f" {bytes_speed:>17.0f} {tus_speed / bytes_speed:>13.2f}"
                    f" {tus_cpu:>17.1f} {tuspy_cpu:>6.1f} {agent_cpu:>6.1f}"
                    f" {bare_rss:>8.0f}M {tus_rss:>7.0f}M {small_rss:>15.0f}M"
                    f" {chunk_mib / bare_speed * 1000:>14.1f} {chunk_mib / plain_speed * 1000:>10.1f}  {load()}",
                    flush=True,
                )
        finally:
            big.unlink(missing_ok=True)
            small.unlink(missing_ok=True)

    # --- part B ---------------------------------------------------------------------------------

    @contextlib.contextmanager
    def fresh_database(self) -> Iterator[None]:
        """Each agent measurement (parts B and C) starts from an empty database server when the bench owns it:
        secantusdb (a Python process) gets slower as its heap grows, which would penalise later measurements."""
        if self.db_pid is None:
            yield
            return
        url, pid = self.mongo_url, self.db_pid
        try:
            with secantusdb() as (self.mongo_url, self.db_pid):
                yield
        finally:
            self.mongo_url, self.db_pid = url, pid

    async def agent(
        self, run_dir: Path, parallel: int, parallel_large: int = DEFAULT_PARALLEL_LARGE, *, defer: bool = True
    ) -> AgentRun:
        """One upload of `run_dir` by the agent, against a fresh ingest server (and database: `fresh_database`)."""
        with self.fresh_database():
            port = free_port()
            with process(SERVER_COMMAND, port, self.ingest_env(port)) as server:
                async with SeqhubClient(
                    f"http://127.0.0.1:{port}", token=self.token, connections=parallel * 2
                ) as api:
                    journal = self.work / f"j{uuid.uuid4().hex}"
                    uploader = RunUploader(
                        api, run_dir, parallel=parallel, parallel_large=parallel_large, journal_path=journal
                    )
                    before = time.process_time(), cpu_seconds(server.pid), cpu_seconds(self.db_pid)
                    started = time.perf_counter()
                    await uploader.run()
                    elapsed = time.perf_counter() - started
                    after = time.process_time(), cpu_seconds(server.pid), cpu_seconds(self.db_pid)
                rss = peak_rss_mib(server.pid)
        self.cleanup(defer=defer)
        files = uploader.progress.files_done
        cpu = " / ".join(f"{(b - a) / files * 1000:.2f}" for a, b in zip(before, after, strict=True))
        return AgentRun(elapsed, files, cpu, rss)

    async def part_b(self) -> None:
        """One at a time, then each --parallel setting, --repeat times interleaved; the median ratio at the end
        (each ratio against the one-at-a-time figure of its own round)."""
        run_dir = self.work / "run"
        make_run(run_dir, self.args.files, self.args.file_kb * 1024)
        print(f"\n== agent: {self.args.files} files x {self.args.file_kb} KB ==")
        print("CPU ms per file: agent / ingest server / database")
        ratios: dict[int, list[float]] = {n: [] for n in self.args.parallel}
        try:
            for round_ in range(1, self.args.repeat + 1):
                one = await self.agent(run_dir, 1)
                serial, cpu = one.files / one.seconds, one.cpu
                line = f"[{round_}] one at a time : {serial:8.1f} files/s                CPU {cpu}"
                print(f"{line}   (load {load()})", flush=True)
                for n in self.args.parallel:
                    measured = await self.agent(run_dir, n)
                    parallel, cpu = measured.files / measured.seconds, measured.cpu
                    ratios[n].append(parallel / serial)
                    ratio = parallel / serial
                    line = f"[{round_}] parallel {n:<4} : {parallel:8.1f} files/s   ratio {ratio:.2f}x   CPU {cpu}"
                    print(f"{line}   (load {load()})", flush=True)
        finally:
            shutil.rmtree(run_dir, ignore_errors=True)
            self.cleanup()
        for n, values in ratios.items():
            shown = ", ".join(f"{r:.2f}" for r in values)
            print(f"parallel {n:<4}: median ratio {statistics.median(values):.2f}x  ({shown})")

    # --- part C ---------------------------------------------------------------------------------

    async def part_c(self) -> None:
        """Large files, each --parallel-large setting against a fresh server and database, --repeat rounds."""
        run_dir = self.work / "large-run"
        files, size = self.args.large_files, self.args.large_mib * MIB
        make_run(run_dir, files, size)
        print(f"\n== agent: {files} files x {self.args.large_mib} MiB, --parallel {DEFAULT_PARALLEL} ==")
        try:
            for round_ in range(1, self.args.repeat + 1):
                one = None
                for n in self.args.parallel_large:
                    measured = await self.agent(run_dir, DEFAULT_PARALLEL, n, defer=False)
                    rate = files * size / measured.seconds
                    one = one or rate
                    line = f"[{round_}] --parallel-large {n:<3}: {rate / 1e6:7.1f} MB/s   ratio {rate / one:.2f}x"
                    print(f"{line}   server RSS {measured.server_rss_mib:.0f} MiB   (load {load()})", flush=True)
        finally:
            shutil.rmtree(run_dir, ignore_errors=True)
            self.cleanup()


def spread_directories(work: Path) -> None:
    """Mark `work` a top of directory hierarchies (`chattr +T`, ext2/3/4; best effort) so that each server's file
    store, a subdirectory, is placed in a block group with free inodes rather than beside the bench's earlier
    stores. On ext4 without a journal, creating a file walks past every inode freed in its group in the last 60 s
    (360 s while that inode table block is dirty: `recently_deleted`, fs/ext4/ialloc.c); after an earlier run's
    10,000 files were deleted, that walk was ~1/4 of the ingest server's CPU (perf) and depended on what ran
    before, not on the service."""
    with contextlib.suppress(OSError):
        subprocess.run(["chattr", "+T", str(work)], check=False, capture_output=True)


def load() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def make_file(path: Path, mib: int) -> Path:
    block = os.urandom(64 * MIB)
    with path.open("wb") as fh:
        left = mib * MIB
        while left > 0:
            piece = block[: min(left, len(block))]
            fh.write(piece)
            left -= len(piece)
    os.sync()
    return path


def make_run(run_dir: Path, files: int, size: int) -> None:
    """A run folder: RunInfo.xml, the few files it implies, `files` extra files and CopyComplete.txt."""
    run_dir.mkdir(parents=True)
    (run_dir / "RunInfo.xml").write_bytes(runinfo_xml(TINY))
    for rel in TINY.expected_files("bcl", markers=()):
        if rel != "RunInfo.xml":
            (run_dir / rel).parent.mkdir(parents=True, exist_ok=True)
            (run_dir / rel).write_bytes(os.urandom(64))
    block = os.urandom(size + files)
    for i in range(files):
        folder = run_dir / "InterOp" / f"d{i // 1000:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"f{i:05d}.bin").write_bytes(block[i : i + size])
    (run_dir / "CopyComplete.txt").write_bytes(b"")
    os.sync()  # written back before any measurement: not competing with the first one's fsyncs


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--big-mib", type=int, default=2048)
    parser.add_argument("--small-mib", type=int, default=200)
    parser.add_argument("--chunks", type=int, nargs="+", default=[8, 64], help="chunk sizes (MiB) for part A")
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--file-kb", type=int, default=100)
    parser.add_argument("--parallel", type=int, nargs="+", default=[8], help="agent transfers to compare with 1")
    parser.add_argument(
        "--retryable-writes", action="store_true", help="let the servers use retryable writes (see service_mongo_url)"
    )
    parser.add_argument("--large-files", type=int, default=32, help="part C: files in the run")
    parser.add_argument("--large-mib", type=int, default=48, help="part C: size of each file")
    parser.add_argument(
        "--parallel-large", type=int, nargs="+", default=[1, 4, 8, 16, 32], help="part C: agent streams (first = 1x)"
    )
    parser.add_argument("--repeat", type=int, default=1, help="part B and C rounds")
    parser.add_argument("--skip-big", action="store_true")
    parser.add_argument("--skip-files", action="store_true")
    parser.add_argument("--skip-large", action="store_true")
    args = parser.parse_args()
    warnings.simplefilter("ignore")  # aiotus sends raw bytes bodies; aiohttp warns about it
    work = Path(tempfile.mkdtemp(prefix="seqhub-bench-upload-"))
    spread_directories(work)
    given = os.environ.get("SEQHUB_BENCH_MONGO_URL")
    try:
        with contextlib.ExitStack() as stack:
            mongo_url, db_pid = (given, None) if given else stack.enter_context(secantusdb())
            bench = Bench(args, mongo_url, work, db_pid)
            kind = "given" if given else "secantusdb, a fresh one per part-B measurement"
            print(f"database: {mongo_url} ({kind}); 2 cores shared by client, server, db")
            if not args.skip_big:
                await bench.part_a()
            if not args.skip_files:
                await bench.part_b()
            if not args.skip_large:
                await bench.part_c()
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    asyncio.run(main())
