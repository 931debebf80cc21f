"""Real tus clients against the ingest server: tuspy (sync + resume), aiotus (chunks, concatenation),
tus-js-client under Node (whole file, chunked, creation-with-upload, deferred length, resume, parallel parts)."""

import asyncio
import hashlib
import io
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import aiotus
import pytest
from aiohttp.test_utils import TestClient
from tusclient import client as tus_client

from services.ingest.settings import IngestSettings

JS_DIR = Path(__file__).parent / "js"


def _endpoint(client: TestClient) -> str:
    return str(client.make_url("/ingest/files/"))


def _stored(settings: IngestSettings, run_id: str, path: str) -> bytes:
    return (settings.common.files_root / "runs" / run_id / path).read_bytes()


async def test_tuspy_uploads_in_chunks_and_resumes_with_a_new_client(
    client: TestClient, auth: dict[str, str], register: Any, ingest_settings: IngestSettings
) -> None:
    run = await register()
    data = os.urandom(5 * 1024 * 1024 + 123)
    meta = {"run_id": run["id"], "path": "Data/big.bin"}

    def first_client() -> str:
        uploader = tus_client.TusClient(_endpoint(client), headers=auth).uploader(
            file_stream=io.BytesIO(data), chunk_size=1024 * 1024, metadata=meta, upload_checksum=True
        )
        uploader.upload(stop_at=2 * 1024 * 1024)  # the client "dies" after two chunks
        return str(uploader.url)

    url = await asyncio.to_thread(first_client)

    def second_client() -> int:
        uploader = tus_client.TusClient(_endpoint(client), headers=auth).uploader(
            file_stream=io.BytesIO(data), chunk_size=1024 * 1024, url=url, upload_checksum=True
        )
        resumed_at = int(uploader.offset)
        uploader.upload()
        return resumed_at

    assert await asyncio.to_thread(second_client) == 2 * 1024 * 1024
    assert _stored(ingest_settings, run["id"], "Data/big.bin") == data


async def test_tuspy_whole_file_in_one_patch(
    client: TestClient, auth: dict[str, str], register: Any, ingest_settings: IngestSettings
) -> None:
    run = await register()
    data = os.urandom(9 * 1024 * 1024)  # > aiohttp's 1 MiB default body limit: must stream

    def upload() -> None:
        tus_client.TusClient(_endpoint(client), headers=auth).uploader(
            file_stream=io.BytesIO(data), metadata={"run_id": run["id"], "path": "whole.bin"}
        ).upload()

    await asyncio.to_thread(upload)
    assert _stored(ingest_settings, run["id"], "whole.bin") == data


# aiotus hands aiohttp each 4 MiB chunk as raw bytes, which aiohttp warns about (client-side, not ours)
@pytest.mark.filterwarnings("ignore:Sending a large body directly:ResourceWarning")
async def test_aiotus_upload_and_concatenation(
    client: TestClient, auth: dict[str, str], register: Any, ingest_settings: IngestSettings
) -> None:
    run = await register()
    data = os.urandom(6 * 1024 * 1024 + 5)
    config = aiotus.RetryConfiguration(retry_attempts=2, max_retry_period_seconds=1)
    location = await aiotus.upload(
        _endpoint(client),
        io.BytesIO(data),
        {"run_id": run["id"].encode(), "path": b"one.bin"},
        config=config,
        headers=auth,
    )
    assert location is not None
    assert _stored(ingest_settings, run["id"], "one.bin") == data
    parts = [io.BytesIO(data[i : i + 2_000_000]) for i in range(0, len(data), 2_000_000)]
    location = await aiotus.upload_multiple(
        _endpoint(client),
        parts,
        {"run_id": run["id"].encode(), "path": b"joined.bin"},
        config=config,
        headers=auth,
        chunksize=1024 * 1024,
    )
    assert location is not None
    assert _stored(ingest_settings, run["id"], "joined.bin") == data


def _node(options: dict[str, Any]) -> dict[str, Any]:
    result = subprocess.run(
        ["node", str(JS_DIR / "upload.js"), json.dumps(options)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    return dict(json.loads(result.stdout.strip().splitlines()[-1]))


@pytest.fixture(scope="module")
def node_ready() -> None:
    if shutil.which("node") is None or not (JS_DIR / "node_modules" / "tus-js-client").is_dir():
        pytest.fail(f"tus-js-client is not installed: run `npm ci --prefix {JS_DIR}` (make test does)")


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"chunkSize": 1024 * 1024},
        {"uploadDataDuringCreation": True, "chunkSize": 3 * 1024 * 1024},
        {"uploadLengthDeferred": True, "chunkSize": 1024 * 1024},
        {"parallelUploads": 3},
    ],
    ids=["whole", "chunked", "with-creation", "deferred", "parallel-concat"],
)
async def test_tus_js_client(
    node_ready: None,
    client: TestClient,
    auth: dict[str, str],
    register: Any,
    ingest_settings: IngestSettings,
    tmp_path: Path,
    options: dict[str, Any],
) -> None:
    run = await register()
    data = os.urandom(4 * 1024 * 1024 + 77)
    source = tmp_path / "source.bin"
    source.write_bytes(data)
    token = auth["Authorization"].split()[1]
    result = await asyncio.to_thread(
        _node,
        {
            "endpoint": _endpoint(client),
            "file": str(source),
            "token": token,
            "metadata": {"run_id": run["id"], "path": "js.bin"},
            **options,
        },
    )
    assert "url" in result
    assert hashlib.sha256(_stored(ingest_settings, run["id"], "js.bin")).digest() == hashlib.sha256(data).digest()


async def test_tus_js_client_resumes_an_aborted_upload(
    node_ready: None,
    client: TestClient,
    auth: dict[str, str],
    register: Any,
    ingest_settings: IngestSettings,
    tmp_path: Path,
) -> None:
    run = await register()
    data = os.urandom(6 * 1024 * 1024)
    source = tmp_path / "source.bin"
    source.write_bytes(data)
    base = {
        "endpoint": _endpoint(client),
        "file": str(source),
        "token": auth["Authorization"].split()[1],
        "metadata": {"run_id": run["id"], "path": "resumed.bin"},
        "chunkSize": 1024 * 1024,
    }
    first = await asyncio.to_thread(_node, {**base, "stopAfterBytes": 2 * 1024 * 1024})
    assert first["aborted"] and first["url"]
    head = await client.session.head(first["url"], headers={**auth, "Tus-Resumable": "1.0.0"})
    assert 2 * 1024 * 1024 <= int(head.headers["Upload-Offset"]) < len(data)
    await asyncio.to_thread(_node, {**base, "uploadUrl": first["url"]})
    assert _stored(ingest_settings, run["id"], "resumed.bin") == data
