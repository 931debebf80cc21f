"""kill -9 of the ingest server mid-PATCH: HEAD then reports exactly the durable bytes and a real tus
client (tuspy) resumes to a stored file identical to the source."""

import asyncio
import hashlib
import io
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from tusclient import client as tus_client

from libs.common.config import CommonSettings
from libs.common.testing import TokenMinter

from .conftest import TINY_XML, metadata, tus

SERVER_COMMAND = [sys.executable, "-m", "services.ingest"]


async def _register(http: aiohttp.ClientSession, server: "IngestProcess", auth: dict[str, str], name: str) -> str:
    response = await http.post(
        f"{server.url}/ingest/runs", headers=auth, json={"name": name, "run_info_xml": TINY_XML, "format": "bcl"}
    )
    assert response.status == 201, await response.text()
    return str((await response.json())["id"])


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class IngestProcess:
    """`python -m services.ingest` as a real process on a free port."""

    def __init__(self, settings: CommonSettings, port: int) -> None:
        self.port = port
        self.env = {
            **os.environ,
            "SEQHUB_MONGO_URL": settings.mongo_url,
            "SEQHUB_DB_PREFIX": settings.db_prefix,
            "SEQHUB_FILES_ROOT": str(settings.files_root),
            "SEQHUB_DATA_ROOT": str(settings.data_root),
            "SEQHUB_AUTH_JWKS": json.dumps(settings.auth_jwks),
            "SEQHUB_AUTH_ISSUER": settings.auth_issuer,
            "SEQHUB_AUTH_AUDIENCE": settings.auth_audience,
            "SEQHUB_HTTP_PORT": str(port),
            "SEQHUB_BUS_URL": "embedded",
            "SEQHUB_BUS_QUEUE_PREFIX": settings.bus_queue_prefix,
            "SEQHUB_LOG_JSON": "false",
            "SEQHUB_LOG_LEVEL": "WARNING",
            "SEQHUB_INGEST_LOCK_LEASE_SECONDS": "1",
            "SEQHUB_INGEST_SWEEP": "false",
            "SEQHUB_INGEST_DEMULTIPLEX": "false",
        }
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.process = subprocess.Popen(
            SERVER_COMMAND, env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.1)
        raise AssertionError("the ingest server did not start")

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@pytest.fixture
def server(common_settings: CommonSettings) -> Iterator[IngestProcess]:
    process = IngestProcess(common_settings, _free_port())
    process.start()
    try:
        yield process
    finally:
        process.stop()


async def test_server_killed_mid_patch_resumes_to_identical_file(
    server: IngestProcess, common_settings: CommonSettings, token_minter: TokenMinter
) -> None:
    auth = token_minter.bearer("instrument-1", "ingest:upload")
    data = os.urandom(24 * 1024 * 1024)
    async with aiohttp.ClientSession() as http:
        run_id = await _register(http, server, auth, "crash_run")
        response = await http.post(
            f"{server.url}/ingest/files/",
            headers={
                **auth,
                **tus(),
                "Upload-Length": str(len(data)),
                "Upload-Metadata": metadata(run_id=run_id, path="big.bin"),
            },
        )
        location = response.headers["Location"]
        sent = 0

        async def slow_body() -> AsyncIterator[bytes]:
            nonlocal sent
            for i in range(0, len(data), 256 * 1024):
                sent = i + 256 * 1024
                yield data[i : i + 256 * 1024]
                await asyncio.sleep(0.01)

        patch = asyncio.create_task(
            http.patch(
                location,
                data=slow_body(),
                headers={**auth, **tus(), "Content-Type": "application/offset+octet-stream", "Upload-Offset": "0"},
            )
        )
        parts = common_settings.data_root / "ingest" / "uploads"
        while sum(p.stat().st_size for p in parts.rglob("*.part")) < 4 * 1024 * 1024:
            await asyncio.sleep(0.02)
        server.kill()
        with pytest.raises(aiohttp.ClientError):
            await patch
        on_disk = sum(p.stat().st_size for p in parts.rglob("*.part"))
        assert 0 < on_disk < len(data)
        server.start()
        await asyncio.sleep(1.2)  # the dead writer's lock lease (1 s in this test) runs out
        head = await http.head(location, headers={**auth, **tus()})
        offset = int(head.headers["Upload-Offset"])
        # exactly the bytes durably on disk, never more than what was sent
        assert offset == on_disk and offset <= sent
        assert data[:offset] == next(parts.rglob("*.part")).read_bytes()[:offset]

    def resume() -> None:
        uploader = tus_client.TusClient(f"{server.url}/ingest/files/", headers=auth).uploader(
            file_stream=io.BytesIO(data), url=location, chunk_size=4 * 1024 * 1024, retries=5, retry_delay=1
        )
        assert uploader.offset == offset
        uploader.upload()

    await asyncio.to_thread(resume)
    stored = common_settings.files_root / "runs" / run_id / "big.bin"
    assert hashlib.sha256(stored.read_bytes()).digest() == hashlib.sha256(data).digest()


async def test_concurrent_patches_from_two_processes_one_wins(
    server: IngestProcess, common_settings: CommonSettings, token_minter: TokenMinter
) -> None:
    auth = token_minter.bearer("instrument-1", "ingest:upload")
    second = IngestProcess(common_settings, _free_port())
    second.start()
    try:
        async with aiohttp.ClientSession() as http:
            run_id = await _register(http, server, auth, "two_procs")
            response = await http.post(
                f"{server.url}/ingest/files/",
                headers={
                    **auth,
                    **tus(),
                    "Upload-Length": "4000000",
                    "Upload-Metadata": metadata(run_id=run_id, path="x"),
                },
            )
            upload_path = response.headers["Location"].split("/ingest/")[1]
            gate = asyncio.Event()

            async def held_body() -> AsyncIterator[bytes]:
                yield b"a" * 1000
                await gate.wait()
                yield b"b" * 1000

            headers = {**auth, **tus(), "Content-Type": "application/offset+octet-stream", "Upload-Offset": "0"}
            first = asyncio.create_task(
                http.patch(f"{server.url}/ingest/{upload_path}", data=held_body(), headers=headers)
            )
            status = 0
            for _ in range(100):
                await asyncio.sleep(0.05)
                other = await http.patch(f"{second.url}/ingest/{upload_path}", data=b"c" * 10, headers=headers)
                status = other.status
                if status == 423:
                    break
            assert status == 423
            gate.set()
            response = await first
            assert response.status == 204 and response.headers["Upload-Offset"] == "2000"
    finally:
        second.stop()


async def test_sweep_removes_the_part_file_of_a_server_killed_mid_creation_with_upload(
    server: IngestProcess, common_settings: CommonSettings, token_minter: TokenMinter, ingest_db: Any
) -> None:
    """A process killed while receiving a whole file in one creation-with-upload request leaves a part file that no
    upload document names. The sweep of a (restarted) server removes it once it is older than the orphan age, and
    leaves alone: a live upload's part file (however old), a recent record-less part file (a request of another
    process), and the part file of a request of its own process that pauses mid-body past the age."""
    auth = token_minter.bearer("instrument-1", "ingest:upload")
    parts = common_settings.data_root / "ingest" / "uploads"
    octet = {**auth, **tus(), "Content-Type": "application/offset+octet-stream"}

    def part_files() -> set[Path]:
        return set(parts.rglob("*.part"))

    async def wait_for_new_part(before: set[Path], size: int) -> Path:
        for _ in range(500):
            new = [p for p in part_files() - before if p.stat().st_size >= size]
            if new:
                return new[0]
            await asyncio.sleep(0.02)
        raise AssertionError("no part file appeared")

    async with aiohttp.ClientSession() as http:
        run_id = await _register(http, server, auth, "orphans")
        response = await http.post(
            f"{server.url}/ingest/files/",
            headers={**auth, **tus(), "Upload-Length": "1000", "Upload-Metadata": metadata(run_id=run_id, path="live")},
        )
        live_url = response.headers["Location"]
        response = await http.patch(live_url, data=b"L" * 500, headers={**octet, "Upload-Offset": "0"})
        assert response.status == 204
        (live,) = part_files()

        async def slow_body(total: int, held: asyncio.Event | None = None) -> AsyncIterator[bytes]:
            for i in range(0, total, 256 * 1024):
                yield b"o" * 256 * 1024
                if held is not None and i >= 2 << 20:
                    await held.wait()
                    held = None
                await asyncio.sleep(0.01)

        creation = {**octet, "Upload-Length": str(8 << 20)}
        doomed = asyncio.create_task(
            http.post(
                f"{server.url}/ingest/files/",
                data=slow_body(8 << 20),
                headers={**creation, "Upload-Metadata": metadata(run_id=run_id, path="orphan")},
            )
        )
        orphan = await wait_for_new_part({live}, 1 << 20)
        server.kill()
        with pytest.raises(aiohttp.ClientError):
            await doomed
        assert orphan.exists() and await ingest_db["uploads"].find_one({"_id": orphan.stem}) is None

        # a record-less part file with recent bytes: another process's request, still in progress
        fresh = parts / "ab" / ("ab" + "0" * 30 + ".part")
        fresh.parent.mkdir(exist_ok=True)
        fresh.write_bytes(b"f" * 1000)
        old = time.time() - 2 * 3600
        for path in (orphan, live):
            os.utime(path, (old, old))

        server.env.update(
            SEQHUB_INGEST_SWEEP="true",
            SEQHUB_INGEST_SWEEP_INTERVAL_SECONDS="0.2",
            SEQHUB_INGEST_ORPHAN_PART_SECONDS="600",
        )
        server.start()
        # a request of the restarted server that pauses mid-body with bytes older than the age
        gate = asyncio.Event()
        paused = asyncio.create_task(
            http.post(
                f"{server.url}/ingest/files/",
                data=slow_body(4 << 20, gate),
                headers={
                    **creation,
                    "Upload-Length": str(4 << 20),
                    "Upload-Metadata": metadata(run_id=run_id, path="paused"),
                },
            )
        )
        in_progress = await wait_for_new_part({live, orphan, fresh}, 2 << 20)
        os.utime(in_progress, (old, old))
        for _ in range(150):
            if not orphan.exists():
                break
            await asyncio.sleep(0.1)
        assert not orphan.exists(), "the sweep left the orphan part file"
        await asyncio.sleep(0.6)  # a few more sweeps
        assert live.read_bytes() == b"L" * 500 and fresh.exists() and in_progress.exists()
        gate.set()
        response = await paused
        assert response.status == 201, await response.text()
        assert (common_settings.files_root / "runs" / run_id / "paused").stat().st_size == 4 << 20
        response = await http.patch(live_url, data=b"M" * 500, headers={**octet, "Upload-Offset": "500"})
        assert response.status == 204 and response.headers["Upload-Offset"] == "1000"
        assert (common_settings.files_root / "runs" / run_id / "live").read_bytes() == b"L" * 500 + b"M" * 500
