"""Fixtures of the ingest integration tests: the app on the real MongoDB-wire server, tokens, a tiny run."""

import base64
import hashlib
import zlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from pymongo import AsyncMongoClient

from libs.common.config import CommonSettings
from libs.common.testing import TokenMinter
from libs.common.web import root_app
from services.ingest.app import PREFIX, create_app
from services.ingest.bcl.runinfo import ReadInfo, RunInfo, runinfo_xml
from services.ingest.settings import IngestSettings

TINY_RUN = RunInfo(
    run_id="240601_A00123_0042_AHTINYXXXX",
    number=42,
    flowcell="HTINYXXXX",
    instrument="A00123",
    date=None,
    reads=(ReadInfo(1, 3, False), ReadInfo(2, 2, True)),
    lane_count=1,
    tiles=("1_1101",),
)
TINY_XML = runinfo_xml(TINY_RUN).decode()
# what RunInfo implies for this run in bcl layout (markers excluded), from the demultiplexer's rules
TINY_EXPECTED = TINY_RUN.expected_files("bcl", markers=())


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def metadata(**values: str) -> str:
    return ",".join(f"{k} {b64(v)}" for k, v in values.items())


def tus(**extra: str) -> dict[str, str]:
    return {"Tus-Resumable": "1.0.0", **extra}


def sha1_header(data: bytes) -> str:
    return "sha1 " + base64.b64encode(hashlib.sha1(data, usedforsecurity=False).digest()).decode()


def crc32_header(data: bytes) -> str:
    return "crc32 " + base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()


@pytest.fixture
def ingest_settings(common_settings: CommonSettings) -> IngestSettings:
    return IngestSettings(
        common=common_settings,
        sweep=False,
        lock_lease_seconds=2.0,
        max_file_bytes=64 << 20,
        max_run_bytes=200 << 20,
        demultiplex=False,
    )


@pytest.fixture
async def client(aiohttp_client: Any, ingest_settings: IngestSettings) -> AsyncIterator[TestClient]:  # type: ignore[type-arg]
    yield await aiohttp_client(root_app({PREFIX: create_app(ingest_settings)}))


@pytest.fixture
def auth(token_minter: TokenMinter) -> dict[str, str]:
    return token_minter.bearer("instrument-1", "ingest:upload")


@pytest.fixture
async def ingest_db(common_settings: CommonSettings) -> AsyncIterator[Any]:
    mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(common_settings.mongo_url)
    try:
        yield mongo[common_settings.database_name("ingest")]
    finally:
        await mongo.close()


@pytest.fixture
def register(client: TestClient, auth: dict[str, str]) -> Callable[..., Any]:  # type: ignore[type-arg]
    async def _register(**overrides: Any) -> dict[str, Any]:
        body = {"name": TINY_RUN.run_id, "run_info_xml": TINY_XML, "format": "bcl", **overrides}
        response = await client.post("/ingest/runs", json=body, headers=auth)
        assert response.status == 201, await response.text()
        return dict(await response.json())

    return _register
