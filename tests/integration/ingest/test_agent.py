"""The instrument agent (libs/sdk/uploader.py + `seqhub upload run`) against the real ingest server."""

import asyncio
import hashlib
import json
import os
import signal
import subprocess
import sys
import tracemalloc
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient

from libs.sdk.client import SeqhubClient
from libs.sdk.uploader import INLINE_BYTES, RunUploader
from services.ingest import tus
from services.ingest.bcl.simulate import simulate_run
from services.ingest.metrics import UPLOAD_BYTES
from services.ingest.settings import IngestSettings


def _folder(run_dir: Path) -> dict[str, tuple[int, str]]:
    return {
        p.relative_to(run_dir).as_posix(): (p.stat().st_size, hashlib.sha256(p.read_bytes()).hexdigest())
        for p in run_dir.rglob("*")
        if p.is_file()
    }


async def _uploaded_events(db: Any) -> list[dict[str, Any]]:
    return [json.loads(d["body"]) for d in await db["outbox"].find({"type": "RunUploaded"}).to_list()]


async def test_agent_follows_a_run_being_written(
    client: TestClient, auth: dict[str, str], ingest_db: Any, ingest_settings: IngestSettings, tmp_path: Path
) -> None:
    run_dir = tmp_path / "240601_A00123_0042_AHSIMXXDSX"
    writer = asyncio.create_task(
        asyncio.to_thread(
            simulate_run,
            run_dir,
            fmt="bcl",
            clusters=400,
            tiles=2,
            reads=(12, 4, 12),
            samples=2,
            cycles_per_second=12,
            truth=False,
        )
    )
    token = auth["Authorization"].split()[1]
    async with SeqhubClient(str(client.make_url("")), token=token) as api:
        uploader = RunUploader(
            api,
            run_dir,
            watch=True,
            parallel=3,
            stable_seconds=0.3,
            poll_seconds=0.1,
            journal_path=tmp_path / "journal.jsonl",
        )
        run_id = await asyncio.wait_for(uploader.run(), 120)
    await writer
    run = await (await client.get(f"/ingest/runs/{run_id}", headers=auth)).json()
    assert run["status"] == "uploaded"
    events = await _uploaded_events(ingest_db)
    assert len(events) == 1
    manifest = {f["path"]: (f["size"], f["sha256"]) for f in events[0]["data"]["files"]}
    assert manifest == _folder(run_dir)
    assert events[0]["data"]["run_info"]["basecall_format"] == "bcl"
    stored = ingest_settings.common.files_root / "runs" / run_id
    assert _folder(stored) == _folder(run_dir)


async def test_killed_agent_resumes_without_resending_finished_files(
    client: TestClient, auth: dict[str, str], ingest_db: Any, tmp_path: Path
) -> None:
    run_dir = tmp_path / "240601_A00123_0043_AHSIMXXDSX"
    await asyncio.to_thread(
        simulate_run, run_dir, fmt="bcl", clusters=200_000, tiles=2, reads=(8, 4, 8), samples=2, truth=False
    )
    folder = _folder(run_dir)
    total = sum(size for size, _ in folder.values())
    journal = tmp_path / "journal.jsonl"
    chunk, parallel = 32 * 1024, 2
    command = [
        sys.executable,
        "-m",
        "libs.sdk.commands.upload",
        str(run_dir),
        "--quiet",
        "--parallel",
        str(parallel),
        "--chunk-size",
        str(chunk),
        "--state",
        str(journal),
    ]
    env = {
        **os.environ,
        "SEQHUB_URL": str(client.make_url("")).rstrip("/"),
        "SEQHUB_TOKEN": auth["Authorization"].split()[1],
    }
    before = UPLOAD_BYTES._value.get()
    agent = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(600):
        await asyncio.sleep(0.05)
        done = journal.read_text().count('"kind": "done"') if journal.exists() else 0
        if done >= 4 or agent.poll() is not None:
            break
    assert agent.poll() is None, "the agent finished before it could be killed"
    agent.send_signal(signal.SIGKILL)
    agent.wait()
    first_pass = UPLOAD_BYTES._value.get() - before
    assert 0 < first_pass < total
    result = await asyncio.to_thread(subprocess.run, command, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    resent = UPLOAD_BYTES._value.get() - before - total
    # only chunks in flight at the kill may be sent twice
    assert resent <= parallel * chunk
    events = await _uploaded_events(ingest_db)
    stored = {f["path"] for f in await ingest_db["run_files"].find({"state": "stored"}).to_list()}
    # a file whose last PATCH was cut off by the kill must still reach the run (not just report a full offset)
    assert len(events) == 1, f"not stored: {sorted(set(folder) - stored)}"
    assert {f["path"]: (f["size"], f["sha256"]) for f in events[0]["data"]["files"]} == folder


async def test_dry_run_lists_files_and_sends_nothing(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    await asyncio.to_thread(
        simulate_run, run_dir, fmt="cbcl", clusters=100, tiles=2, reads=(4, 4), samples=1, truth=False
    )
    result = await asyncio.to_thread(
        subprocess.run,
        [
            sys.executable,
            "-m",
            "libs.sdk.commands.upload",
            str(run_dir),
            "--dry-run",
            "--state",
            str(tmp_path / "j.jsonl"),
            "--url",
            "http://127.0.0.1:9",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    listed = {line.split()[-1] for line in result.stdout.splitlines()}
    assert listed == set(_folder(run_dir))


async def test_unrecoverable_errors_exit_non_zero_with_a_message(
    client: TestClient, tmp_path: Path, token_minter: Any
) -> None:
    run_dir = tmp_path / "run"
    await asyncio.to_thread(simulate_run, run_dir, fmt="bcl", clusters=100, tiles=1, reads=(4,), samples=1, truth=False)
    env = {
        **os.environ,
        "SEQHUB_URL": str(client.make_url("")).rstrip("/"),
        "SEQHUB_TOKEN": token_minter.mint("reader", "repository:read"),
    }
    result = await asyncio.to_thread(
        subprocess.run,
        [
            sys.executable,
            "-m",
            "libs.sdk.commands.upload",
            str(run_dir),
            "--quiet",
            "--state",
            str(tmp_path / "j.jsonl"),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "ingest:upload" in result.stderr
    result = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "libs.sdk.commands.upload", str(tmp_path / "missing")],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2 and "not a folder" in result.stderr


async def test_agent_uploads_a_nextseq_bgzf_run(
    client: TestClient, auth: dict[str, str], ingest_db: Any, tmp_path: Path
) -> None:
    run_dir = tmp_path / "240601_NS500_0044_AHSIMXXBGX"
    await asyncio.to_thread(
        simulate_run, run_dir, fmt="bcl.bgzf", clusters=200, tiles=2, reads=(6, 4), samples=1, truth=False
    )
    token = auth["Authorization"].split()[1]
    async with SeqhubClient(str(client.make_url("")), token=token) as api:
        uploader = RunUploader(api, run_dir, parallel=2, journal_path=tmp_path / "journal.jsonl")
        run_id = await asyncio.wait_for(uploader.run(), 60)
    run = await (await client.get(f"/ingest/runs/{run_id}", headers=auth)).json()
    assert run["status"] == "uploaded" and run["run_info"]["basecall_format"] == "bcl.bgzf"
    events = await _uploaded_events(ingest_db)
    assert {f["path"]: (f["size"], f["sha256"]) for f in events[0]["data"]["files"]} == _folder(run_dir)


async def test_agent_memory_does_not_grow_with_the_chunk_size(
    client: TestClient, auth: dict[str, str], ingest_db: Any, ingest_settings: IngestSettings, tmp_path: Path
) -> None:
    """Chunks are hashed and streamed from the file in 1 MiB pieces: with 16 MiB chunks, a 40 MiB file (three
    PATCHes) and a 3 MiB one (one creation-with-upload) are sent without any chunk-sized allocation — client and
    server share this process, so the peak covers both."""
    run_dir = tmp_path / "240601_A00123_0045_AHSIMXXDSX"
    await asyncio.to_thread(
        simulate_run, run_dir, fmt="bcl", clusters=200, tiles=1, reads=(4, 4), samples=1, truth=False
    )
    (run_dir / "InterOp").mkdir(exist_ok=True)
    (run_dir / "InterOp" / "big.bin").write_bytes(os.urandom(40 << 20))
    (run_dir / "InterOp" / "mid.bin").write_bytes(os.urandom(3 << 20))
    token = auth["Authorization"].split()[1]
    tracemalloc.start()
    try:
        async with SeqhubClient(str(client.make_url("")), token=token) as api:
            uploader = RunUploader(api, run_dir, parallel=1, chunk_size=16 << 20, journal_path=tmp_path / "j.jsonl")
            run_id = await asyncio.wait_for(uploader.run(), 120)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8 << 20, f"peak {peak / (1 << 20):.1f} MiB"
    events = await _uploaded_events(ingest_db)
    assert {f["path"]: (f["size"], f["sha256"]) for f in events[0]["data"]["files"]} == _folder(run_dir)
    assert _folder(ingest_settings.common.files_root / "runs" / run_id) == _folder(run_dir)


async def test_agent_streams_at_most_parallel_large_files_at_once(
    client: TestClient, auth: dict[str, str], ingest_db: Any, ingest_settings: IngestSettings, tmp_path: Path
) -> None:
    """`parallel` counts transfers, `parallel_large` the streamed ones among them (files over 1 MiB, each holding
    a few MiB of buffers in the agent and the server): with 16 transfers and 2 large, ten 3 MiB files never
    stream more than two at a time — memory follows the large limit, not `parallel` — while the small files go
    many at once. Client and server share this process, so the peak covers both."""
    run_dir = tmp_path / "240601_A00123_0046_AHSIMXXDSX"
    await asyncio.to_thread(
        simulate_run, run_dir, fmt="bcl", clusters=200, tiles=1, reads=(4, 4), samples=1, truth=False
    )
    (run_dir / "InterOp").mkdir(exist_ok=True)
    for i in range(10):
        (run_dir / "InterOp" / f"big{i}.bin").write_bytes(os.urandom(3 << 20))
    token = auth["Authorization"].split()[1]
    running = {"large": 0, "small": 0}
    peaks = {"large": 0, "small": 0}
    tracemalloc.start()
    try:
        async with SeqhubClient(str(client.make_url("")), token=token, connections=32) as api:
            uploader = RunUploader(api, run_dir, parallel=16, parallel_large=2, journal_path=tmp_path / "j.jsonl")
            upload_file = uploader._upload_file

            async def counted(run_id: str, path: str) -> None:
                kind = "large" if (run_dir / path).stat().st_size > INLINE_BYTES else "small"
                running[kind] += 1
                peaks[kind] = max(peaks[kind], running[kind])
                try:
                    await upload_file(run_id, path)
                finally:
                    running[kind] -= 1

            uploader._upload_file = counted  # type: ignore[method-assign]
            run_id = await asyncio.wait_for(uploader.run(), 120)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peaks["large"] == 2
    assert peaks["small"] > 2
    assert peak < 12 << 20, f"peak {peak / (1 << 20):.1f} MiB"
    events = await _uploaded_events(ingest_db)
    assert {f["path"]: (f["size"], f["sha256"]) for f in events[0]["data"]["files"]} == _folder(run_dir)
    assert _folder(ingest_settings.common.files_root / "runs" / run_id) == _folder(run_dir)


@pytest.mark.parametrize(
    ("header", "offered", "refused", "sent"),
    [
        ("Tus-Checksum-Algorithm", "sha1,md5,sha256,crc32", False, ["crc32"] * 3),
        ("tus-checksum-algorithm", "SHA1, CRC32", False, ["crc32"] * 3),  # as a proxy may pass it on
        ("Tus-Checksum-Algorithm", "sha1", False, ["sha1"] * 3),
        # offered by the instance that answered OPTIONS, refused by the one that takes the PATCH
        ("Tus-Checksum-Algorithm", "sha1,md5,sha256,crc32", True, ["crc32"] + ["sha1"] * 3),
    ],
)
async def test_agent_checksums_chunks_with_crc32_where_the_server_offers_it(
    client: TestClient,
    auth: dict[str, str],
    ingest_db: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    header: str,
    offered: str,
    refused: bool,
    sent: list[str],
) -> None:
    """The chunks' Upload-Checksum is crc32 when OPTIONS offers it (a fraction of sha1's CPU on both ends) and sha1
    against a server offering only what tus requires or refusing crc32 after all; either way the server verifies
    each chunk and the run is whole. The 6 MiB chunks pass the server's 4 MiB of inline hashing."""
    real = tus.options_headers

    def options_headers(max_size: int) -> dict[str, str]:
        headers = {k: v for k, v in real(max_size).items() if k != "Tus-Checksum-Algorithm"}
        return {**headers, header: offered}

    monkeypatch.setattr(tus, "options_headers", options_headers)
    if refused:
        monkeypatch.setattr(tus, "REQUEST_CHECKSUM_ALGORITHMS", tus.CHECKSUM_ALGORITHMS)
    run_dir = tmp_path / "240601_A00123_0047_AHSIMXXDSX"
    await asyncio.to_thread(
        simulate_run, run_dir, fmt="bcl", clusters=200, tiles=1, reads=(4, 4), samples=1, truth=False
    )
    (run_dir / "InterOp").mkdir(exist_ok=True)
    (run_dir / "InterOp" / "big.bin").write_bytes(os.urandom(13 << 20))  # PATCHes of 6, 6 and 1 MiB
    seen: list[str] = []

    async def on_request_start(session: Any, context: Any, params: aiohttp.TraceRequestStartParams) -> None:
        if params.method == "PATCH":
            seen.append(params.headers.get("Upload-Checksum", "none").split(" ")[0])

    trace = aiohttp.TraceConfig()
    trace.on_request_start.append(on_request_start)
    token = auth["Authorization"].split()[1]
    async with (
        aiohttp.ClientSession(trace_configs=[trace]) as session,
        SeqhubClient(str(client.make_url("")), token=token, session=session) as api,
    ):
        uploader = RunUploader(api, run_dir, parallel=2, chunk_size=6 << 20, journal_path=tmp_path / "j.jsonl")
        await asyncio.wait_for(uploader.run(), 60)
    assert seen == sent
    events = await _uploaded_events(ingest_db)
    assert {f["path"]: (f["size"], f["sha256"]) for f in events[0]["data"]["files"]} == _folder(run_dir)
