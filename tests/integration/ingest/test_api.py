"""The ingest HTTP API against the real MongoDB-wire server: runs, tus 1.0 and run assembly."""

import asyncio
import hashlib
import json
import os
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient
from yarl import URL

from libs.common.testing import TokenMinter
from libs.common.web import root_app
from services.ingest.app import PREFIX, create_app
from services.ingest.settings import IngestSettings

from .conftest import TINY_EXPECTED, TINY_RUN, TINY_XML, crc32_header, metadata, sha1_header, tus


def _path(location: str) -> str:
    return URL(location).path


OCTET = {"Content-Type": "application/offset+octet-stream"}


async def _create(client: TestClient, auth: dict[str, str], run_id: str, path: str, length: int, **extra: str) -> str:
    response = await client.post(
        "/ingest/files/",
        headers={
            **auth,
            **tus(),
            "Upload-Length": str(length),
            "Upload-Metadata": metadata(run_id=run_id, path=path),
            **extra,
        },
    )
    assert response.status == 201, await response.text()
    return _path(response.headers["Location"])


async def _put(client: TestClient, auth: dict[str, str], run_id: str, path: str, data: bytes) -> None:
    location = await _create(client, auth, run_id, path, len(data))
    if data:
        response = await client.patch(location, data=data, headers={**auth, **tus(), **OCTET, "Upload-Offset": "0"})
        assert response.status == 204, await response.text()


async def _events(db: Any, event_type: str) -> list[dict[str, Any]]:
    return [json.loads(d["body"]) for d in await db["outbox"].find({"type": event_type}).to_list()]


async def test_register_show_and_list_runs(
    client: TestClient, auth: dict[str, str], register: Any, ingest_db: Any
) -> None:
    run = await register(project="P1")
    assert run["status"] == "uploading"
    assert run["instrument"] == "A00123" and run["flowcell"] == "HTINYXXXX"
    assert run["missing_expected"] == len(TINY_EXPECTED)
    shown = await (await client.get(f"/ingest/runs/{run['id']}", headers=auth)).json()
    assert shown["id"] == run["id"] and shown["run_info"]["lanes"] == 1
    await register(name="other_run", instrument="M99999")
    page = await (await client.get("/ingest/runs?instrument=M99999", headers=auth)).json()
    assert [r["name"] for r in page["items"]] == ["other_run"] and page["total"] == 1
    page = await (await client.get("/ingest/runs?status=uploading&limit=1", headers=auth)).json()
    assert page["total"] == 2 and len(page["items"]) == 1
    registered = await _events(ingest_db, "RunRegistered")
    assert {e["data"]["run_id"] for e in registered} >= {run["id"]}


async def test_bad_run_bodies_are_400_naming_the_problem(client: TestClient, auth: dict[str, str]) -> None:
    response = await client.post(
        "/ingest/runs", json={"name": "x", "run_info_xml": "<RunInfo", "format": "bcl"}, headers=auth
    )
    assert response.status == 400 and "RunInfo.xml" in (await response.json())["detail"]
    response = await client.post("/ingest/runs", data=b"{not json", headers=auth)
    assert response.status == 400
    response = await client.post(
        "/ingest/runs", json={"name": "../x", "run_info_xml": "<a/>", "format": "bcl"}, headers=auth
    )
    assert response.status == 400
    response = await client.get("/ingest/runs?status=bogus", headers=auth)
    assert response.status == 400
    assert (await client.get("/ingest/runs/nope", headers=auth)).status == 404


async def test_tokens_are_required_with_the_upload_scope(client: TestClient, token_minter: TokenMinter) -> None:
    assert (await client.post("/ingest/runs", json={})).status == 401
    reader = token_minter.bearer("someone", "repository:read")
    assert (await client.post("/ingest/runs", json={}, headers=reader)).status == 403
    assert (await client.post("/ingest/files/", headers={**reader, **tus(), "Upload-Length": "1"})).status == 403
    assert (await client.get("/ingest/runs", headers=reader)).status == 200
    forged = {"Authorization": "Bearer " + token_minter.mint("x", "ingest:upload")[:-4] + "AAAA"}
    assert (await client.post("/ingest/files/", headers={**forged, **tus()})).status == 401


async def test_options_advertise_tus(client: TestClient) -> None:
    response = await client.options("/ingest/files/")
    assert response.status == 204
    assert response.headers["Tus-Version"] == "1.0.0"
    assert "concatenation" in response.headers["Tus-Extension"]
    assert int(response.headers["Tus-Max-Size"]) == 64 << 20


async def test_chunked_upload_resumes_from_head(client: TestClient, auth: dict[str, str], register: Any) -> None:
    run = await register()
    data = os.urandom(300_000)
    location = await _create(client, auth, run["id"], "InterOp/x.bin", len(data))
    head = await client.head(location, headers={**auth, **tus()})
    assert head.status == 200 and head.headers["Upload-Offset"] == "0"
    assert head.headers["Cache-Control"] == "no-store" and "Upload-Metadata" in head.headers
    for start in range(0, len(data), 100_000):
        head = await client.head(location, headers={**auth, **tus()})
        offset = int(head.headers["Upload-Offset"])
        assert offset == start
        piece = data[offset : offset + 100_000]
        response = await client.patch(
            location,
            data=piece,
            headers={
                **auth,
                **tus(),
                **OCTET,
                "Upload-Offset": str(offset),
                # both a hash and a CRC guard a request's bytes
                "Upload-Checksum": sha1_header(piece) if start % 200_000 else crc32_header(piece),
            },
        )
        assert response.status == 204, await response.text()
        assert int(response.headers["Upload-Offset"]) == offset + len(piece)
        assert "Upload-Expires" in response.headers or offset + len(piece) == len(data)
    shown = await (await client.get(f"/ingest/runs/{run['id']}", headers=auth)).json()
    assert shown["files_received"] == 1 and shown["bytes_received"] == len(data)


async def test_protocol_errors(
    client: TestClient, auth: dict[str, str], register: Any, ingest_settings: IngestSettings
) -> None:
    run = await register()
    location = await _create(client, auth, run["id"], "a.bin", 10)
    base = {**auth, **tus(), **OCTET}
    # unsupported version → 412 with Tus-Version
    response = await client.patch(location, data=b"x", headers={**base, "Tus-Resumable": "0.2.2", "Upload-Offset": "0"})
    assert response.status == 412 and response.headers["Tus-Version"] == "1.0.0"
    # wrong content type → 415
    response = await client.patch(
        location, data=b"x", headers={**auth, **tus(), "Upload-Offset": "0", "Content-Type": "text/plain"}
    )
    assert response.status == 415
    # offset mismatch → 409, nothing written
    response = await client.patch(location, data=b"abc", headers={**base, "Upload-Offset": "5"})
    assert response.status == 409 and response.headers["Upload-Offset"] == "0"
    # checksum mismatch → 460, offset unchanged; unsupported algorithm → 400
    response = await client.patch(
        location, data=b"abc", headers={**base, "Upload-Offset": "0", "Upload-Checksum": sha1_header(b"abd")}
    )
    assert response.status == 460
    response = await client.patch(
        location, data=b"abc", headers={**base, "Upload-Offset": "0", "Upload-Checksum": crc32_header(b"abd")}
    )
    assert response.status == 460
    response = await client.patch(
        location, data=b"abc", headers={**base, "Upload-Offset": "0", "Upload-Checksum": "sha512 " + "A" * 86 + "=="}
    )
    assert response.status == 400 and "not supported" in (await response.json())["detail"]
    head = await client.head(location, headers={**auth, **tus()})
    assert head.headers["Upload-Offset"] == "0"
    # body longer than Upload-Length → 413, nothing kept
    response = await client.patch(location, data=b"x" * 11, headers={**base, "Upload-Offset": "0"})
    assert response.status == 413
    assert (await client.head(location, headers={**auth, **tus()})).headers["Upload-Offset"] == "0"
    # unknown upload → 404 without Upload-Offset
    response = await client.head("/ingest/files/" + "0" * 32, headers={**auth, **tus()})
    assert response.status == 404 and "Upload-Offset" not in response.headers
    # termination → 204, then 410
    assert (await client.delete(location, headers={**auth, **tus()})).status == 204
    assert (await client.head(location, headers={**auth, **tus()})).status == 410
    # another client cannot touch my upload
    other = await _create(client, auth, run["id"], "b.bin", 3)
    assert other


async def test_unsafe_paths_and_sizes_are_refused(
    client: TestClient, auth: dict[str, str], register: Any, ingest_settings: IngestSettings, tmp_path: Path
) -> None:
    run = await register()
    for path in ("../../escape.txt", "/etc/passwd", "a/../../b", "a\x00b", "C:\\x"):
        response = await client.post(
            "/ingest/files/",
            headers={
                **auth,
                **tus(),
                "Upload-Length": "1",
                "Upload-Metadata": metadata(run_id=run["id"], path=path),
            },
        )
        assert response.status == 400, path
    response = await client.post(
        "/ingest/files/",
        headers={
            **auth,
            **tus(),
            "Upload-Length": str((64 << 20) + 1),
            "Upload-Metadata": metadata(run_id=run["id"], path="big"),
        },
    )
    assert response.status == 413
    response = await client.post("/ingest/files/", headers={**auth, **tus(), "Upload-Length": "1"})
    assert response.status == 400  # no run_id/path
    files_root = ingest_settings.common.files_root.resolve()
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert all(p.resolve().is_relative_to(files_root) or "data" in p.parts for p in written)
    assert not any("escape" in p.name for p in written)


async def test_run_limit_is_enforced(client: TestClient, auth: dict[str, str], register: Any) -> None:
    run = await register()
    for i in range(3):
        await _create(client, auth, run["id"], f"f{i}", 60 << 20)
    response = await client.post(
        "/ingest/files/",
        headers={
            **auth,
            **tus(),
            "Upload-Length": str(60 << 20),
            "Upload-Metadata": metadata(run_id=run["id"], path="f4"),
        },
    )
    assert response.status == 413 and "limit" in (await response.json())["detail"]


async def test_parallel_whole_files_over_the_run_limit_keep_exactly_the_accepted_ones(
    aiohttp_client: Any, auth: dict[str, str], ingest_settings: IngestSettings, ingest_db: Any
) -> None:
    """One-request uploads racing for a run's last bytes are accounted in group commits: a batch the run refuses
    is settled file by file. Every file answered 201 is stored, counted and has its upload document (HEAD); the
    413 ones leave no bytes, no file record and no upload document."""
    settings = ingest_settings.model_copy(update={"max_run_bytes": 10_000})
    client = await aiohttp_client(root_app({PREFIX: create_app(settings)}))
    response = await client.post(
        "/ingest/runs", json={"name": TINY_RUN.run_id, "run_info_xml": TINY_XML, "format": "bcl"}, headers=auth
    )
    run_id = (await response.json())["id"]
    blobs = {f"InterOp/x{i:02d}.bin": os.urandom(1000) for i in range(16)}

    async def send(path: str, data: bytes) -> tuple[str, int, str | None]:
        response = await client.post(
            "/ingest/files/",
            data=data,
            headers={
                **auth,
                **tus(),
                **OCTET,
                "Upload-Length": str(len(data)),
                "Upload-Metadata": metadata(run_id=run_id, path=path),
            },
        )
        return path, response.status, response.headers.get("Location")

    results = await asyncio.gather(*(send(path, data) for path, data in blobs.items()))
    accepted = {path: location for path, status, location in results if status == 201}
    assert sorted(status for _, status, _ in results) == [201] * 10 + [413] * 6
    for location in accepted.values():
        head = await client.head(_path(location), headers={**auth, **tus()})
        assert head.status == 200 and head.headers["Upload-Offset"] == "1000"
    assert await ingest_db["uploads"].count_documents({}) == 10
    stored = await ingest_db["run_files"].find({"run_id": run_id, "state": "stored"}).to_list()
    assert {d["path"] for d in stored} == set(accepted)
    assert all(d["sha256"] == hashlib.sha256(blobs[d["path"]]).hexdigest() for d in stored)
    shown = await (await client.get(f"/ingest/runs/{run_id}", headers=auth)).json()
    assert shown["files_received"] == 10 and shown["bytes_received"] == 10_000
    on_disk = {p.name for p in settings.common.files_root.rglob("x*.bin")}
    assert on_disk == {Path(path).name for path in accepted}


async def test_run_completes_once_with_manifest(
    client: TestClient, auth: dict[str, str], register: Any, ingest_db: Any, ingest_settings: IngestSettings
) -> None:
    run = await register()
    contents = {path: os.urandom(50 + i) for i, path in enumerate(TINY_EXPECTED)}
    contents["SampleSheet.csv"] = b"[Header]\n"
    for path, data in contents.items():
        await _put(client, auth, run["id"], path, data)
    shown = await (await client.get(f"/ingest/runs/{run['id']}", headers=auth)).json()
    assert shown["status"] == "uploading" and shown["missing_expected"] == 0
    await _put(client, auth, run["id"], "CopyComplete.txt", b"")
    contents["CopyComplete.txt"] = b""
    shown = await (await client.get(f"/ingest/runs/{run['id']}", headers=auth)).json()
    assert shown["status"] == "uploaded"
    events = await _events(ingest_db, "RunUploaded")
    assert len(events) == 1
    data = events[0]["data"]
    manifest = {f["path"]: (f["size"], f["sha256"]) for f in data["files"]}
    assert manifest == {p: (len(d), hashlib.sha256(d).hexdigest()) for p, d in contents.items()}
    assert data["sample_sheet_uri"] == f"store:runs/{run['id']}/SampleSheet.csv"
    root = ingest_settings.common.files_root / "runs" / run["id"]
    assert {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()} == contents
    # the finished run takes no more files, and nothing is overwritten
    response = await client.post(
        "/ingest/files/",
        headers={
            **auth,
            **tus(),
            "Upload-Length": "1",
            "Upload-Metadata": metadata(run_id=run["id"], path="late.txt"),
        },
    )
    assert response.status == 409
    response = await client.delete(f"/ingest/runs/{run['id']}", headers=auth)
    assert response.status == 409


async def test_no_overwrite_of_a_stored_file(client: TestClient, auth: dict[str, str], register: Any) -> None:
    run = await register()
    await _put(client, auth, run["id"], "x.txt", b"one")
    response = await client.post(
        "/ingest/files/",
        headers={
            **auth,
            **tus(),
            "Upload-Length": "3",
            "Upload-Metadata": metadata(run_id=run["id"], path="x.txt"),
        },
    )
    assert response.status == 409


async def test_creation_with_upload_and_zero_length(
    client: TestClient, auth: dict[str, str], register: Any, ingest_settings: IngestSettings
) -> None:
    run = await register()
    response = await client.post(
        "/ingest/files/",
        data=b"hello",
        headers={
            **auth,
            **tus(),
            **OCTET,
            "Upload-Length": "5",
            "Upload-Metadata": metadata(run_id=run["id"], path="h.txt"),
        },
    )
    assert response.status == 201 and response.headers["Upload-Offset"] == "5"
    response = await client.post(
        "/ingest/files/",
        headers={
            **auth,
            **tus(),
            "Upload-Length": "0",
            "Upload-Metadata": metadata(run_id=run["id"], path="empty.txt"),
        },
    )
    assert response.status == 201
    root = ingest_settings.common.files_root / "runs" / run["id"]
    assert (root / "h.txt").read_bytes() == b"hello" and (root / "empty.txt").read_bytes() == b""


async def test_deferred_length(client: TestClient, auth: dict[str, str], register: Any) -> None:
    run = await register()
    response = await client.post(
        "/ingest/files/",
        headers={
            **auth,
            **tus(),
            "Upload-Defer-Length": "1",
            "Upload-Metadata": metadata(run_id=run["id"], path="grow.log"),
        },
    )
    location = _path(response.headers["Location"])
    head = await client.head(location, headers={**auth, **tus()})
    assert head.headers["Upload-Defer-Length"] == "1" and "Upload-Length" not in head.headers
    response = await client.patch(location, data=b"abc", headers={**auth, **tus(), **OCTET, "Upload-Offset": "0"})
    assert response.status == 204
    response = await client.patch(
        location, data=b"def", headers={**auth, **tus(), **OCTET, "Upload-Offset": "3", "Upload-Length": "6"}
    )
    assert response.status == 204 and response.headers["Upload-Offset"] == "6"
    shown = await (await client.get(f"/ingest/runs/{run['id']}", headers=auth)).json()
    assert shown["bytes_received"] == 6


async def test_concatenation_of_partial_uploads(
    client: TestClient, auth: dict[str, str], register: Any, ingest_settings: IngestSettings
) -> None:
    run = await register()
    parts = [os.urandom(1000), os.urandom(777)]
    urls = []
    for data in parts:
        response = await client.post(
            "/ingest/files/",
            data=data,
            headers={**auth, **tus(), **OCTET, "Upload-Length": str(len(data)), "Upload-Concat": "partial"},
        )
        assert response.status == 201
        urls.append(_path(response.headers["Location"]))
    response = await client.post(
        "/ingest/files/",
        headers={
            **auth,
            **tus(),
            "Upload-Concat": "final;" + " ".join(urls),
            "Upload-Metadata": metadata(run_id=run["id"], path="joined.bin"),
        },
    )
    assert response.status == 201, await response.text()
    final = _path(response.headers["Location"])
    head = await client.head(final, headers={**auth, **tus()})
    assert head.headers["Upload-Offset"] == head.headers["Upload-Length"] == "1777"
    assert head.headers["Upload-Concat"].startswith("final;")
    response = await client.patch(final, data=b"x", headers={**auth, **tus(), **OCTET, "Upload-Offset": "1777"})
    assert response.status == 403
    stored = ingest_settings.common.files_root / "runs" / run["id"] / "joined.bin"
    assert stored.read_bytes() == b"".join(parts)


def _part_files(settings: IngestSettings) -> list[Path]:
    return list((settings.common.data_root / "ingest" / "uploads").rglob("*.part"))


async def _post_whole(
    client: TestClient, auth: dict[str, str], run_id: str, path: str, data: bytes, **meta: str
) -> Any:
    """creation-with-upload of a whole file in one request."""
    return await client.post(
        "/ingest/files/",
        data=data,
        headers={
            **auth,
            **tus(),
            **OCTET,
            "Upload-Length": str(len(data)),
            "Upload-Metadata": metadata(run_id=run_id, path=path, **meta),
        },
    )


async def test_whole_file_checksum_from_metadata(
    client: TestClient, auth: dict[str, str], register: Any, ingest_settings: IngestSettings
) -> None:
    run = await register()
    data = b"payload"
    folder = ingest_settings.common.files_root / "runs" / run["id"]
    for algorithm in ("sha256", "md5"):
        good = f"{algorithm} " + hashlib.new(algorithm, data).hexdigest()
        response = await _post_whole(client, auth, run["id"], f"{algorithm}.txt", b"payloaX", checksum=good)
        assert response.status == 460, await response.text()
        assert "Upload-Metadata" in (await response.json())["detail"]
        assert not (folder / f"{algorithm}.txt").exists() and _part_files(ingest_settings) == []
        response = await _post_whole(client, auth, run["id"], f"{algorithm}.txt", data, checksum=good)
        assert response.status == 201, await response.text()
        assert (folder / f"{algorithm}.txt").read_bytes() == data
    assert _part_files(ingest_settings) == []


async def test_a_whole_file_never_replaces_a_stored_one(
    client: TestClient, auth: dict[str, str], register: Any, ingest_settings: IngestSettings
) -> None:
    run = await register()
    stored = ingest_settings.common.files_root / "runs" / run["id"] / "x.txt"
    assert (await _post_whole(client, auth, run["id"], "x.txt", b"one")).status == 201
    for again in (b"two", b"one"):  # other bytes, and the same bytes sent by another upload
        response = await _post_whole(client, auth, run["id"], "x.txt", again)
        assert response.status == 409, await response.text()
        assert "already stored" in (await response.json())["detail"]
        assert stored.read_bytes() == b"one"
    assert _part_files(ingest_settings) == []
    shown = await (await client.get(f"/ingest/runs/{run['id']}", headers=auth)).json()
    assert shown["files_received"] == 1 and shown["bytes_received"] == 3


async def test_concurrent_patch_gets_423(client: TestClient, auth: dict[str, str], register: Any) -> None:
    run = await register()
    location = await _create(client, auth, run["id"], "slow.bin", 2_000_000)
    release = asyncio.Event()

    async def slow_body() -> Any:
        yield b"a" * 1000
        await release.wait()
        yield b"b" * 1000

    first = asyncio.create_task(
        client.patch(location, data=slow_body(), headers={**auth, **tus(), **OCTET, "Upload-Offset": "0"})
    )
    for _ in range(100):
        await asyncio.sleep(0.05)
        second = await client.patch(location, data=b"c" * 10, headers={**auth, **tus(), **OCTET, "Upload-Offset": "0"})
        if second.status == 423:
            break
    assert second.status == 423
    release.set()
    response = await first
    assert response.status == 204 and response.headers["Upload-Offset"] == "2000"


async def test_expired_uploads_are_removed_and_answer_410(
    client: TestClient, auth: dict[str, str], register: Any, ingest_settings: IngestSettings
) -> None:
    from datetime import timedelta

    from services.ingest import uploads
    from services.ingest.keys import ingest
    from services.ingest.service import now

    run = await register()
    location = await _create(client, auth, run["id"], "old.bin", 10)
    await client.patch(location, data=b"12345", headers={**auth, **tus(), **OCTET, "Upload-Offset": "0"})
    deps = client.server.app._subapps[0][ingest]  # type: ignore[attr-defined]
    assert await uploads.expire_uploads(deps=deps, at=now() + timedelta(days=30)) == 1
    assert (await client.head(location, headers={**auth, **tus()})).status == 410
    parts = list((ingest_settings.common.data_root / "ingest" / "uploads").rglob("*.part"))
    assert parts == []


async def test_stalled_runs_are_marked_and_resume(client: TestClient, auth: dict[str, str], register: Any) -> None:
    from datetime import timedelta

    from services.ingest import service
    from services.ingest.keys import ingest

    run = await register()
    deps = client.server.app._subapps[0][ingest]  # type: ignore[attr-defined]
    assert await service.mark_stalled_runs(deps=deps, at=service.now() + timedelta(days=2)) == 1
    shown = await (await client.get(f"/ingest/runs/{run['id']}", headers=auth)).json()
    assert shown["status"] == "stalled"
    await _put(client, auth, run["id"], "more.txt", b"x")
    shown = await (await client.get(f"/ingest/runs/{run['id']}", headers=auth)).json()
    assert shown["status"] == "uploading"


async def test_delete_abandoned_run(
    client: TestClient,
    auth: dict[str, str],
    register: Any,
    ingest_settings: IngestSettings,
    token_minter: TokenMinter,
) -> None:
    run = await register()
    await _put(client, auth, run["id"], "x.txt", b"data")
    other = token_minter.bearer("someone-else", "ingest:upload")
    assert (await client.delete(f"/ingest/runs/{run['id']}", headers=other)).status == 403
    assert (await client.delete(f"/ingest/runs/{run['id']}", headers=auth)).status == 204
    assert (await client.get(f"/ingest/runs/{run['id']}", headers=auth)).status == 404
    assert not (ingest_settings.common.files_root / "runs" / run["id"]).exists()


async def test_head_hands_a_complete_upload_to_its_run(
    client: TestClient, auth: dict[str, str], register: Any, ingest_db: Any, ingest_settings: IngestSettings
) -> None:
    """A process that died (or a client that left) between recording the last byte and storing the file leaves an
    upload `complete` but not in its run; HEAD then reports the full offset only after handing it over."""
    run = await register()
    location = await _create(client, auth, run["id"], "late.bin", 5)
    upload_id = location.rsplit("/", 1)[-1]
    part = ingest_settings.common.data_root / "ingest" / "uploads" / upload_id[:2] / f"{upload_id}.part"
    part.write_bytes(b"hello")
    digest = hashlib.sha256(b"hello").hexdigest()
    await ingest_db["uploads"].update_one(
        {"_id": upload_id}, {"$set": {"offset": 5, "state": "complete", "sha256": digest}}
    )
    assert await ingest_db["run_files"].count_documents({"path": "late.bin"}) == 0
    response = await client.head(location, headers={**auth, **tus()})
    assert response.status == 200 and response.headers["Upload-Offset"] == "5"
    stored = await ingest_db["run_files"].find_one({"path": "late.bin"})
    assert stored is not None and stored["state"] == "stored" and stored["sha256"] == digest
    root = ingest_settings.common.files_root / "runs" / run["id"]
    assert (root / "late.bin").read_bytes() == b"hello"
    assert (await ingest_db["uploads"].find_one({"_id": upload_id}))["state"] == "stored"


async def test_an_upload_created_with_part_of_its_body_takes_the_rest_by_patch(
    client: TestClient, auth: dict[str, str], register: Any, ingest_settings: IngestSettings
) -> None:
    """creation-with-upload that carries only the first bytes (a partial upload for concatenation, and one of
    deferred length): the same client PATCHes the rest right away and is not told the upload is busy."""
    run = await register()
    data = os.urandom(3000)
    partial = await client.post(
        "/ingest/files/",
        data=data[:1000],
        headers={**auth, **tus(), **OCTET, "Upload-Length": "3000", "Upload-Concat": "partial"},
    )
    deferred = await client.post(
        "/ingest/files/",
        data=data[:1000],
        headers={
            **auth,
            **tus(),
            **OCTET,
            "Upload-Defer-Length": "1",
            "Upload-Metadata": metadata(run_id=run["id"], path="grown.bin"),
        },
    )
    for created in (partial, deferred):
        assert created.status == 201 and created.headers["Upload-Offset"] == "1000", await created.text()
        location = _path(created.headers["Location"])
        response = await client.patch(
            location,
            data=data[1000:],
            headers={**auth, **tus(), **OCTET, "Upload-Offset": "1000", "Upload-Length": "3000"},
        )
        assert response.status == 204, await response.text()
        assert response.headers["Upload-Offset"] == "3000"
    stored = ingest_settings.common.files_root / "runs" / run["id"] / "grown.bin"
    assert stored.read_bytes() == data
