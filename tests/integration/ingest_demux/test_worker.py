"""The demultiplexing worker against the real MongoDB-wire server and the platform's bus/outbox."""

from __future__ import annotations

import asyncio
import gzip
import multiprocessing
import os
import signal
from collections.abc import AsyncIterator
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any

import pytest
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from libs.common import keys as common_keys
from libs.common.config import CommonSettings
from libs.common.events import (
    DemultiplexingFailed,
    ReadSummary,
    RunInfoSummary,
    RunUploaded,
    RunUploadedData,
    SamplesDemultiplexed,
    parse_event,
)
from libs.common.filestore import LocalFileStore, sha256_file
from libs.common.outbox import Outbox
from libs.common.web import service_app
from services.ingest.bcl.simulate import SimulationResult, simulate_run
from services.ingest.demux.settings import DemuxSettings
from services.ingest.demux.worker import SUBSCRIPTION, handle_run_uploaded
from services.ingest.store import RunStore


@pytest.fixture
async def db(common_settings: CommonSettings) -> AsyncIterator[AsyncDatabase[dict[str, Any]]]:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(common_settings.mongo_url)
    yield client[f"{common_settings.db_prefix}ingest"]
    await client.close()


def _simulate(files: LocalFileStore, **kw: Any) -> SimulationResult:
    tmp = files.root / "runs" / "incoming"
    res = simulate_run(
        tmp,
        **{
            "fmt": "cbcl",
            "clusters": 600,
            "lanes": 2,
            "tiles": 2,
            "reads": "16,8,8,16",
            "samples": 3,
            "seed": 21,
            "truth": False,
            **kw,
        },
    )
    final = files.root / "runs" / res.run_info.run_id
    tmp.rename(final)
    res.run_dir = final
    return res


def _event(res: SimulationResult) -> RunUploaded:
    info = res.run_info
    return RunUploaded(
        data=RunUploadedData(
            run_id=info.run_id,
            run_name=info.run_id,
            instrument=info.instrument,
            flowcell=info.flowcell,
            owner="instrument-agent",
            root_uri=f"store:runs/{info.run_id}/",
            files=[],
            total_bytes=0,
            run_info=RunInfoSummary(
                run_number=info.number,
                lanes=info.lane_count,
                basecall_format=res.fmt,
                reads=[ReadSummary(number=r.number, cycles=r.cycles, is_index=r.is_index) for r in info.reads],
            ),
        )
    )


async def _events(db: AsyncDatabase[dict[str, Any]]) -> list[Any]:
    return [parse_event(d["body"]) for d in await db["outbox"].find().sort("created_at", 1).to_list()]


def _check_outputs(files: LocalFileStore, ev: SamplesDemultiplexed) -> None:
    samples = [*ev.data.samples, ev.data.undetermined]
    assert [s.sample_id for s in ev.data.samples] == ["Sample1", "Sample2", "Sample3"]
    total_r1 = 0
    for s in samples:
        assert s is not None
        for f in s.files:
            path = files.path(f.uri)
            assert path.stat().st_size == f.size
            assert sha256_file(path) == f.sha256
            with gzip.open(path, "rt") as fh:
                lines = fh.read().count("\n")
            assert lines == 4 * f.reads
            if f.read == "R1":
                total_r1 += f.reads
    assert total_r1 == ev.data.total_clusters_pf
    assert sum(s.read_count for s in samples if s) == ev.data.total_clusters_pf
    names = {r.path for r in ev.data.reports}
    assert {"Reports/Demultiplex_Stats.csv", "Stats/Stats.json", "Logs/FastqComplete.txt"} <= names


async def test_run_uploaded_ends_in_samples_demultiplexed_once(
    common_settings: CommonSettings, db: AsyncDatabase[dict[str, Any]]
) -> None:
    files = LocalFileStore(common_settings.files_root)
    res = _simulate(files)
    run_id = res.run_info.run_id
    await db["runs"].insert_one({"_id": run_id, "status": "uploaded"})
    deps = {
        "runs": RunStore(db),
        "outbox": Outbox(db, service="ingest"),
        "files": files,
        "settings": DemuxSettings(threads=2),
    }
    event = _event(res)
    assert await handle_run_uploaded(event, **deps) == "demultiplexed"
    assert (await db["runs"].find_one({"_id": run_id}))["status"] == "demultiplexed"
    events = await _events(db)
    assert [type(e) for e in events] == [SamplesDemultiplexed]
    _check_outputs(files, events[0])
    out = files.path(f"demux/{run_id}")
    mtimes = {p: p.stat().st_mtime_ns for p in out.rglob("*")}
    # redelivery: nothing redone, nothing published twice
    assert await handle_run_uploaded(event, **deps) == "skipped"
    assert len(await _events(db)) == 1
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*")} == mtimes


async def test_completed_output_is_reused_after_a_crash_before_commit(
    common_settings: CommonSettings, db: AsyncDatabase[dict[str, Any]]
) -> None:
    files = LocalFileStore(common_settings.files_root)
    res = _simulate(files)
    run_id = res.run_info.run_id
    await db["runs"].insert_one({"_id": run_id, "status": "uploaded"})
    deps = {
        "runs": RunStore(db),
        "outbox": Outbox(db, service="ingest"),
        "files": files,
        "settings": DemuxSettings(threads=1),
    }
    assert await handle_run_uploaded(_event(res), **deps) == "demultiplexed"
    # as if the worker died after renaming the output but before its transaction
    await db["outbox"].delete_many({})
    await db["runs"].update_one({"_id": run_id}, {"$set": {"status": "demultiplexing"}})
    out = files.path(f"demux/{run_id}")
    mtimes = {p: p.stat().st_mtime_ns for p in out.rglob("*")}
    assert await handle_run_uploaded(_event(res), **deps) == "reused"
    assert [type(e) for e in await _events(db)] == [SamplesDemultiplexed]
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*")} == mtimes


async def test_killed_worker_then_redelivery_completes_once(
    common_settings: CommonSettings, db: AsyncDatabase[dict[str, Any]]
) -> None:
    files = LocalFileStore(common_settings.files_root)
    res = _simulate(files, clusters=40000, lanes=1, tiles=4, reads="76,8,8,76")
    run_id = res.run_info.run_id
    await db["runs"].insert_one({"_id": run_id, "status": "uploaded"})
    deps = {
        "runs": RunStore(db),
        "outbox": Outbox(db, service="ingest"),
        "files": files,
        "settings": DemuxSettings(threads=1),
    }
    task = asyncio.create_task(handle_run_uploaded(_event(res), **deps))
    demux_dir = files.path("demux")
    killed = False
    for _ in range(600):
        await asyncio.sleep(0.05)
        partial = list(demux_dir.glob(f".{run_id}.staging-*")) + list(demux_dir.glob(f"..{run_id}.staging-*"))
        if partial and multiprocessing.active_children():
            for child in multiprocessing.active_children():
                os.kill(child.pid, signal.SIGKILL)  # type: ignore[arg-type]
            killed = True
            break
        if task.done():
            break
    assert killed, "the worker finished before it could be killed"
    with pytest.raises(BrokenProcessPool):
        await task
    assert (await db["runs"].find_one({"_id": run_id}))["status"] == "demultiplexing"
    assert await _events(db) == []
    assert not files.path(f"demux/{run_id}").exists()
    # the bus redelivers: the run completes, once
    assert await handle_run_uploaded(_event(res), **deps) == "demultiplexed"
    assert [type(e) for e in await _events(db)] == [SamplesDemultiplexed]
    assert [p.name for p in demux_dir.iterdir()] == [run_id]


async def test_bad_input_fails_the_run_with_an_actionable_reason(
    common_settings: CommonSettings, db: AsyncDatabase[dict[str, Any]]
) -> None:
    files = LocalFileStore(common_settings.files_root)
    res = _simulate(files, fmt="bcl.gz")
    run_id = res.run_info.run_id
    bad = res.run_dir / "Data/Intensities/BaseCalls/L002/C9.1/s_2_1102.bcl.gz"
    bad.write_bytes(bad.read_bytes()[:10])
    await db["runs"].insert_one({"_id": run_id, "status": "uploaded"})
    deps = {
        "runs": RunStore(db),
        "outbox": Outbox(db, service="ingest"),
        "files": files,
        "settings": DemuxSettings(threads=1),
    }
    assert await handle_run_uploaded(_event(res), **deps) == "failed"
    doc = await db["runs"].find_one({"_id": run_id})
    assert doc["status"] == "failed" and doc["failure"]["stage"] == "basecalls"
    (ev,) = await _events(db)
    assert isinstance(ev, DemultiplexingFailed)
    assert "Data/Intensities/BaseCalls/L002/C9.1/s_2_1102.bcl.gz" in ev.data.reason
    assert not files.path(f"demux/{run_id}").exists()
    assert await handle_run_uploaded(_event(res), **deps) == "skipped"
    assert len(await _events(db)) == 1


async def test_event_path_through_the_bus(
    common_settings: CommonSettings,
    db: AsyncDatabase[dict[str, Any]],
    aiohttp_client: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SEQHUB_INGEST_DEMUX_THREADS", "1")
    app = service_app("ingest", common_settings, subscriptions=[SUBSCRIPTION])
    await aiohttp_client(app)
    files = app[common_keys.files]
    res = _simulate(files)
    run_id = res.run_info.run_id
    await db["runs"].insert_one({"_id": run_id, "status": "uploaded"})
    await app[common_keys.outbox].add(_event(res))
    for _ in range(1200):
        done = [e for e in await _events(db) if isinstance(e, SamplesDemultiplexed)]
        if done:
            break
        await asyncio.sleep(0.1)
    assert len(done) == 1
    _check_outputs(files, done[0])
    assert (await db["runs"].find_one({"_id": run_id}))["status"] == "demultiplexed"


async def test_cancelled_handler_kills_the_conversion_without_blocking(
    common_settings: CommonSettings, db: AsyncDatabase[dict[str, Any]]
) -> None:
    """Service shutdown cancels the handler: it must return promptly, and the run completes on redelivery."""
    files = LocalFileStore(common_settings.files_root)
    res = _simulate(files, clusters=40000, lanes=1, tiles=4, reads="76,8,8,76")
    run_id = res.run_info.run_id
    await db["runs"].insert_one({"_id": run_id, "status": "uploaded"})
    deps = {
        "runs": RunStore(db),
        "outbox": Outbox(db, service="ingest"),
        "files": files,
        "settings": DemuxSettings(threads=1),
    }
    earlier = {p.pid for p in multiprocessing.active_children()}  # e.g. an earlier test's worker still exiting
    task = asyncio.create_task(handle_run_uploaded(_event(res), **deps))
    demux_dir = files.path("demux")
    for _ in range(600):
        await asyncio.sleep(0.05)
        if list(demux_dir.glob(f"*.{run_id}.staging-*")) or task.done():
            break
    assert not task.done(), "the conversion finished before it could be cancelled"
    converters = [p.pid for p in multiprocessing.active_children() if p.pid not in earlier]
    assert converters, "the conversion must run in a child process"
    task.cancel()
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert loop.time() - started < 5
    for pid in converters:
        for _ in range(100):
            if _dead(pid):
                break
            await asyncio.sleep(0.05)
        assert _dead(pid), f"conversion process {pid} still running after the handler was cancelled"
    assert await _events(db) == []
    assert await handle_run_uploaded(_event(res), **deps) == "demultiplexed"
    assert [type(e) for e in await _events(db)] == [SamplesDemultiplexed]


def _dead(pid: int) -> bool:
    """The process is gone or a zombie. Not `Process.is_alive()`: the executor's manager thread may reap the
    killed worker concurrently, and then `is_alive()` reads the lost waitpid race as "still alive"."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] in ("Z", "X")
