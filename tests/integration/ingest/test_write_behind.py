"""A PATCH without Upload-Checksum is answered once its bytes are fsynced, and its offset is written to the
database behind the answer (uploads._advance). These tests hold that write back (a gate in front of the upload
store's `write_locked`) to check what a client sees meanwhile, and what a process that died before the write
landed leaves to the next one."""

import asyncio
import hashlib
import io
import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from pymongo.errors import AutoReconnect

from libs.common.web import root_app
from services.ingest.app import PREFIX, create_app
from services.ingest.keys import ingest
from services.ingest.service import Ingest
from services.ingest.settings import IngestSettings

from .conftest import metadata, sha1_header, tus
from .test_api import OCTET, _create, _path

MIB = 1 << 20


def _deps(client: TestClient) -> Ingest:  # type: ignore[type-arg]
    return client.server.app._subapps[0][ingest]  # type: ignore[attr-defined,no-any-return]


class Gate:
    """Holds every `write_locked` of an upload store until opened; `fail` makes the next one raise as if the
    database connection dropped."""

    def __init__(self, deps: Ingest, monkeypatch: pytest.MonkeyPatch) -> None:
        self.open = asyncio.Event()
        self.open.set()
        self.fail = 0
        self.calls = 0
        real = deps.uploads.write_locked

        async def write_locked(*args: Any, **kwargs: Any) -> bool:
            self.calls += 1
            await self.open.wait()
            if self.fail:
                self.fail -= 1
                raise AutoReconnect("connection closed (test)")
            return await real(*args, **kwargs)

        monkeypatch.setattr(deps.uploads, "write_locked", write_locked)


@pytest.fixture
def gate(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> Iterator[Gate]:  # type: ignore[type-arg]
    """A gate on the test app's upload store, opened again before the app shuts down (which waits for the
    writes behind: a failing test must not hang there)."""
    gate = Gate(_deps(client), monkeypatch)
    yield gate
    gate.open.set()


async def _recorded_offset(ingest_db: Any, location: str) -> int:
    doc = await ingest_db["uploads"].find_one({"_id": location.rsplit("/", 1)[-1]})
    return int(doc["offset"])


async def _patch(
    client: TestClient,  # type: ignore[type-arg]
    auth: dict[str, str],
    location: str,
    offset: int,
    body: bytes,
    **extra: str,
) -> Any:
    return await client.patch(
        location, data=io.BytesIO(body), headers={**auth, **tus(), **OCTET, "Upload-Offset": str(offset), **extra}
    )


async def _first_mib_answered_unrecorded(
    client: TestClient,  # type: ignore[type-arg]
    auth: dict[str, str],
    run_id: str,
    ingest_db: Any,
    gate: Gate,
    name: str,
    size: int,
) -> tuple[bytes, str]:
    """A new upload of `size` random bytes whose first MiB is PATCHed without a checksum while the gate holds the
    offset write: answered (204, offset 1 MiB) although the database still says 0. (data, location)."""
    data = os.urandom(size)
    location = await _create(client, auth, run_id, name, size)
    gate.open.clear()
    response = await asyncio.wait_for(_patch(client, auth, location, 0, data[:MIB]), 10)
    assert response.status == 204 and response.headers["Upload-Offset"] == str(MIB)
    assert await _recorded_offset(ingest_db, location) == 0  # answered, not yet recorded
    return data, location


async def test_an_unchecked_patch_is_answered_before_its_offset_is_recorded_and_head_waits_for_it(
    client: TestClient,  # type: ignore[type-arg]
    auth: dict[str, str],
    register: Callable[..., Any],
    ingest_db: Any,
    gate: Gate,
) -> None:
    run = await register()
    data, location = await _first_mib_answered_unrecorded(client, auth, run["id"], ingest_db, gate, "wb.bin", 4 * MIB)
    head = asyncio.create_task(client.head(location, headers={**auth, **tus()}))
    await asyncio.sleep(0.3)
    assert not head.done(), "HEAD answered from the database before the acknowledged offset was in it"
    gate.open.set()
    assert (await head).headers["Upload-Offset"] == str(MIB)
    assert await _recorded_offset(ingest_db, location) == MIB

    # a body with a per-request checksum is answered only once its offset is recorded: bytes past the recorded
    # offset are dropped after a crash when they needed verification
    def checked(start: int) -> Any:
        body = data[start : start + MIB]
        return _patch(client, auth, location, start, body, **{"Upload-Checksum": sha1_header(body)})

    assert (await checked(MIB)).status == 204  # the lock now says "checked" (written before the body)
    gate.open.clear()
    second = asyncio.create_task(checked(2 * MIB))
    await asyncio.sleep(0.3)
    assert not second.done(), "a checked PATCH was answered before its offset was recorded"
    gate.open.set()
    response = await second
    assert response.status == 204 and response.headers["Upload-Offset"] == str(3 * MIB)
    assert await _recorded_offset(ingest_db, location) == 3 * MIB

    response = await _patch(client, auth, location, 3 * MIB, data[3 * MIB :])  # the last byte: recorded, then stored
    assert response.status == 204 and response.headers["Upload-Offset"] == str(len(data))
    shown = await (await client.get(f"/ingest/runs/{run['id']}", headers=auth)).json()
    assert shown["bytes_received"] == len(data)


@pytest.mark.parametrize("resume_with", ["HEAD", "PATCH"])
async def test_bytes_acknowledged_by_a_process_that_died_before_recording_them_are_adopted_by_the_next(
    resume_with: str,
    client: TestClient,  # type: ignore[type-arg]
    aiohttp_client: Any,
    auth: dict[str, str],
    register: Callable[..., Any],
    ingest_db: Any,
    ingest_settings: IngestSettings,
    gate: Gate,
) -> None:
    run = await register()
    # the first process never gets its offset into the database: it "dies" right after answering
    data, location = await _first_mib_answered_unrecorded(
        client, auth, run["id"], ingest_db, gate, "crash.bin", 3 * MIB
    )

    other = await aiohttp_client(root_app({PREFIX: create_app(ingest_settings)}))  # the next process
    head = await other.head(location, headers={**auth, **tus()})
    assert head.headers["Upload-Offset"] == "0"  # the dead writer's lease still holds: the recorded offset
    busy = await _patch(other, auth, location, MIB, data[MIB : 2 * MIB])
    assert busy.status == 423 and "Retry-After" in busy.headers
    await asyncio.sleep(ingest_settings.lock_lease_seconds + 0.3)
    if resume_with == "HEAD":  # a client that asks first (tuspy, aiotus, the agent)
        head = await other.head(location, headers={**auth, **tus()})
        assert head.headers["Upload-Offset"] == str(MIB)  # the acknowledged bytes, adopted from the disk
        assert await _recorded_offset(ingest_db, location) == MIB
    # else a client that goes on from the offset it was given: its PATCH adopts the bytes as HEAD would
    response = await _patch(other, auth, location, MIB, data[MIB:])
    assert response.status == 204 and response.headers["Upload-Offset"] == str(len(data))
    stored = ingest_settings.common.files_root / "runs" / run["id"] / "crash.bin"
    assert hashlib.sha256(stored.read_bytes()).digest() == hashlib.sha256(data).digest()
    gate.open.set()  # the first process's late write finds the lock gone and changes nothing
    await asyncio.sleep(0.2)
    assert await _recorded_offset(ingest_db, location) == len(data)


async def test_a_write_behind_the_database_refused_is_written_again_before_anyone_reads_the_offset(
    client: TestClient,  # type: ignore[type-arg]
    auth: dict[str, str],
    register: Callable[..., Any],
    ingest_db: Any,
    gate: Gate,
) -> None:
    run = await register()
    data = os.urandom(2 * MIB)
    location = await _create(client, auth, run["id"], "retry.bin", len(data))
    gate.fail = 1
    response = await _patch(client, auth, location, 0, data[:MIB])
    assert response.status == 204 and response.headers["Upload-Offset"] == str(MIB)
    await asyncio.sleep(0.2)
    assert gate.calls == 1 and await _recorded_offset(ingest_db, location) == 0  # the write failed
    head = await client.head(location, headers={**auth, **tus()})
    assert head.headers["Upload-Offset"] == str(MIB)
    assert gate.calls == 2 and await _recorded_offset(ingest_db, location) == MIB
    response = await _patch(client, auth, location, MIB, data[MIB:])
    assert response.status == 204 and response.headers["Upload-Offset"] == str(len(data))


async def test_deferred_length_set_after_a_write_behind_keeps_the_acknowledged_offset(
    client: TestClient,  # type: ignore[type-arg]
    auth: dict[str, str],
    register: Callable[..., Any],
    gate: Gate,
) -> None:
    """Setting Upload-Length reads the upload document back: it must already hold the last offset."""
    run = await register()
    response = await client.post(
        "/ingest/files/",
        headers={**auth, **tus(), "Upload-Defer-Length": "1", "Upload-Metadata": metadata(run_id=run["id"], path="g")},
    )
    location = _path(response.headers["Location"])
    gate.open.clear()
    assert (await asyncio.wait_for(_patch(client, auth, location, 0, b"abc"), 10)).status == 204
    last = asyncio.create_task(_patch(client, auth, location, 3, b"def", **{"Upload-Length": "6"}))
    await asyncio.sleep(0.2)
    gate.open.set()
    response = await last
    assert response.status == 204, await response.text()
    assert response.headers["Upload-Offset"] == "6"


async def test_a_patch_that_fails_unexpectedly_keeps_the_offset_acknowledged_before_it(
    client: TestClient,  # type: ignore[type-arg]
    auth: dict[str, str],
    register: Callable[..., Any],
    ingest_db: Any,
    gate: Gate,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The failed PATCH releases the lock with the last acknowledged offset, even though that offset's own write
    has not landed yet (it then finds the lock gone and changes nothing)."""
    run = await register()
    data, location = await _first_mib_answered_unrecorded(client, auth, run["id"], ingest_db, gate, "fail.bin", 3 * MIB)
    parts = _deps(client).parts

    async def broken_disk(*args: Any, **kwargs: Any) -> Any:
        raise OSError(5, "Input/output error (test)")

    with monkeypatch.context() as patched:
        patched.setattr(parts, "append", broken_disk)
        response = await asyncio.wait_for(_patch(client, auth, location, MIB, data[MIB : 2 * MIB]), 10)
    assert response.status == 500
    gate.open.set()
    await asyncio.sleep(0.2)
    assert await _recorded_offset(ingest_db, location) == MIB
    head = await client.head(location, headers={**auth, **tus()})
    assert head.headers["Upload-Offset"] == str(MIB)
    response = await _patch(client, auth, location, MIB, data[MIB:])
    assert response.status == 204 and response.headers["Upload-Offset"] == str(len(data))
