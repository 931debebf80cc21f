"""RunUploaded -> demultiplex in a worker process -> SamplesDemultiplexed | DemultiplexingFailed.

Flow of `handle_run_uploaded` (idempotent; the bus may deliver an event more than once, and a worker may
die at any point):
1. The run's status (ingest `runs` collection) decides: demultiplexed or failed -> nothing to do;
   uploaded or demultiplexing -> (re)start, marking it demultiplexing.
2. If `<prefix>/<run_id>/` is already complete in the file store (an earlier attempt died after the
   rename but before step 4) its recorded result is reused: finished work is not redone.
3. Otherwise the conversion runs in a separate process (spawned, so the event loop never blocks and a
   crash cannot take the service down), which itself uses `threads` processes for tiles; it writes
   into a hidden staging folder renamed to `<prefix>/<run_id>/` only when everything is written.
4. One transaction: status -> demultiplexed (only from demultiplexing/uploaded) plus the
   SamplesDemultiplexed event in the outbox; a redelivery finds the status already final.
Bad input (DemuxError) -> status failed + DemultiplexingFailed naming the file and the problem, and
the message is acknowledged (retrying cannot fix the input). Anything else (a killed worker process,
a database outage) raises, so the bus retries with back-off and dead-letters after its limit.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import multiprocessing
import shutil
import time
import uuid
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web

from libs.common import keys as common_keys
from libs.common.bus import Subscription
from libs.common.events import (
    DemultiplexedRunSummary,
    DemultiplexedSample,
    DemultiplexingFailed,
    DemultiplexingFailedData,
    FastqFile,
    FileRef,
    RunUploaded,
    SamplesDemultiplexed,
    SamplesDemultiplexedData,
)
from libs.common.filestore import LocalFileStore, sha256_file, uri_of
from libs.common.outbox import Outbox
from services.ingest.bcl.demux import DemuxOptions, DemuxResult, run_demux
from services.ingest.bcl.errors import (
    BaseCallFileError,
    DemuxError,
    OutputError,
    RunFolderError,
    RunInfoError,
    SampleSheetError,
)
from services.ingest.demux.settings import DemuxSettings
from services.ingest.metrics import DEMUX_CLUSTERS, DEMUX_SECONDS
from services.ingest.store import RunStore, in_transaction

log = logging.getLogger(__name__)

RESULT_FILE = "seqhub_result.json"  # the SamplesDemultiplexed payload, kept with the output
OPEN = ["uploaded", "demultiplexing"]
FINAL = ("demultiplexed", "failed")


def _stage(exc: DemuxError) -> str:
    if isinstance(exc, SampleSheetError):
        return "sample-sheet"
    if isinstance(exc, RunInfoError):
        return "run-info"
    if isinstance(exc, BaseCallFileError | RunFolderError):
        return "basecalls"
    if isinstance(exc, OutputError):
        return "output"
    return "demultiplexing"


# ------------------------------------------------------------------------ in the worker process


@dataclass(frozen=True)
class JobResult:
    ok: bool
    payload: dict[str, Any] | None = None  # SamplesDemultiplexedData fields that come from the output
    stage: str = ""
    reason: str = ""


def _summarise(res: DemuxResult, *, output_key: str, root: Path) -> dict[str, Any]:
    plan = res.plan
    by_number: dict[int, dict[str, Any]] = {}
    for s in plan.samples:
        d = by_number.setdefault(
            s.number,
            {
                "sample_id": s.sample_id,
                "sample_name": s.name,
                "sample_number": s.number,
                "project": s.project or None,
                "index": s.indexes[0] if len(s.indexes) > 0 else None,
                "index2": s.indexes[1] if len(s.indexes) > 1 else None,
                "lanes": set(),
            },
        )
        d["lanes"].update([s.lane] if s.lane is not None else list(plan.info.lanes))
    by_number[0] = {
        "sample_id": "Undetermined",
        "sample_name": "Undetermined",
        "sample_number": 0,
        "project": None,
        "index": None,
        "index2": None,
        "lanes": set(plan.info.lanes),
    }
    templates = {r.label for r in plan.template_reads}
    for num, d in by_number.items():
        reads = bases = q30 = 0
        for lane in d["lanes"]:
            st = res.lane_stats.get(lane, {}).get(num)
            if st is None:
                continue
            reads += st.reads
            for label, rs in st.per_read.items():
                if label in templates:
                    bases += rs.yield_
                    q30 += rs.q30
        files = []
        for f in res.files:
            if f.sample_number != num:
                continue
            lanes = [f.lane] if f.lane is not None else sorted(d["lanes"])
            records = sum(st.written for ln in lanes if (st := res.lane_stats.get(ln, {}).get(num)) is not None)
            files.append(
                {
                    "read": f.read,
                    "lane": f.lane,
                    "uri": uri_of(f"{output_key}/{f.path}"),
                    "size": f.size,
                    "sha256": f.sha256,
                    "reads": records,
                }
            )
        d.update(
            lanes=sorted(d["lanes"]),
            read_count=reads,
            base_count=bases,
            q30_fraction=(q30 / bases) if bases else 0.0,
            files=files,
        )
    reports = []
    for rel in res.reports:
        p = root / rel
        reports.append(
            {
                "path": rel,
                "uri": uri_of(f"{output_key}/{rel}"),
                "size": p.stat().st_size,
                "sha256": sha256_file(p),
            }
        )
    return {
        "output_root_uri": uri_of(output_key) + "/",
        "run": {
            "read_lengths": [r.length for r in plan.template_reads],
            "index_lengths": [r.length for r in plan.index_reads],
            "paired": len(plan.template_reads) > 1,
        },
        "samples": [by_number[n] for n in sorted(by_number) if n != 0],
        "undetermined": by_number[0],
        "reports": reports,
        "total_clusters_pf": sum(res.lane_pf.values()),
    }


def run_job(
    run_dir: str, sample_sheet: str | None, staging: str, final: str, output_key: str, options: DemuxOptions
) -> JobResult:
    """Runs in the worker process: demultiplex into `staging`, record the result, rename to `final`."""
    staging_p, final_p = Path(staging), Path(final)
    try:
        opts = dataclasses.replace(options, sample_sheet=Path(sample_sheet) if sample_sheet else None)
        res = run_demux(Path(run_dir), staging_p, opts)
    except DemuxError as exc:
        return JobResult(ok=False, stage=_stage(exc), reason=str(exc))
    payload = _summarise(res, output_key=output_key, root=staging_p)
    tmp = staging_p / f".{RESULT_FILE}.tmp"
    tmp.write_text(json.dumps(payload))
    tmp.replace(staging_p / RESULT_FILE)
    if final_p.exists():  # an incomplete leftover of a killed attempt (complete ones are reused earlier)
        shutil.rmtree(final_p)
    staging_p.replace(final_p)
    return JobResult(ok=True, payload=payload)


# ------------------------------------------------------------------------------- in the service


def _completed(final: Path) -> dict[str, Any] | None:
    marker = final / "Logs" / "FastqComplete.txt"
    result = final / RESULT_FILE
    if marker.is_file() and result.is_file():
        loaded: dict[str, Any] = json.loads(result.read_text())
        return loaded
    return None


async def _run_in_process(*args: Any) -> JobResult:
    """Run `run_job` in a fresh process; if this coroutine is cancelled (shutdown), the process is killed
    at once instead of the event loop waiting for the conversion to finish (the bus redelivers later)."""
    loop = asyncio.get_running_loop()
    # spawn: the service process has threads (driver, bus); forking it would copy their locks
    pool = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"))
    finished = False
    try:
        result: JobResult = await loop.run_in_executor(pool, run_job, *args)
        finished = True
        return result
    finally:
        if not finished:
            # cancelled (or failed) while the job may still run: the executor has no public "kill", and its
            # worker process is the only way to stop a running conversion
            for proc in list(getattr(pool, "_processes", {}).values()):
                proc.kill()
        pool.shutdown(wait=False, cancel_futures=True)


async def handle_run_uploaded(
    event: RunUploaded, *, runs: RunStore, outbox: Outbox, files: LocalFileStore, settings: DemuxSettings
) -> str:
    """Demultiplex one uploaded run; returns what happened: skipped | demultiplexed | reused | failed."""
    data = event.data
    run = await runs.get(data.run_id)
    if run is not None and run.get("status") in FINAL:
        log.info("run %s already %s; RunUploaded %s ignored", data.run_id, run["status"], event.id)
        return "skipped"
    if run is not None:
        await runs.set_status(data.run_id, "demultiplexing", from_statuses=OPEN, set_={"demux_event": event.id})

    output_key = f"{settings.output_prefix}/{data.run_id}"
    final = files.path(output_key)
    outcome = "reused"
    seconds = 0.0
    payload = await asyncio.to_thread(_completed, final)
    if payload is None:
        run_dir = files.path(data.root_uri.rstrip("/"))
        sheet = str(files.path(data.sample_sheet_uri)) if data.sample_sheet_uri else None
        staging = final.parent / f".{data.run_id}.staging-{uuid.uuid4().hex[:8]}"
        final.parent.mkdir(parents=True, exist_ok=True)
        for stale in final.parent.glob(f"*.{data.run_id}.staging-*"):  # leftovers of killed attempts
            await asyncio.to_thread(shutil.rmtree, stale, True)
        options = DemuxOptions(
            threads=settings.threads,
            compression_level=settings.compression_level,
            barcode_mismatches=(settings.barcode_mismatches,) if settings.barcode_mismatches is not None else None,
        )
        started = time.monotonic()
        result = await _run_in_process(str(run_dir), sheet, str(staging), str(final), output_key, options)
        seconds = time.monotonic() - started
        if not result.ok:
            await _fail(event, runs=runs, outbox=outbox, stage=result.stage, reason=result.reason)
            return "failed"
        payload = result.payload
        outcome = "demultiplexed"
    assert payload is not None
    published = SamplesDemultiplexed(
        correlation_id=event.correlation_id,
        data=SamplesDemultiplexedData(
            run_id=data.run_id,
            run_name=data.run_name,
            instrument=data.instrument,
            flowcell=data.flowcell,
            project=data.project,
            owner=data.owner,
            output_root_uri=payload["output_root_uri"],
            run=DemultiplexedRunSummary(instrument_model=data.run_info.instrument_model, **payload["run"]),
            samples=[_sample(s) for s in payload["samples"]],
            undetermined=_sample(payload["undetermined"]),
            reports=[FileRef(**r) for r in payload["reports"]],
            total_clusters_pf=payload["total_clusters_pf"],
        ),
    )

    async def commit(session: Any) -> bool:
        done = await runs.set_status(
            data.run_id,
            "demultiplexed",
            from_statuses=OPEN,
            set_={"demux_output_uri": payload["output_root_uri"]},
            session=session,
        )
        if done is None and await runs.get(data.run_id, session=session) is not None:
            return False  # already final: a concurrent or earlier delivery finished it
        await outbox.add(published, session=session)
        return True

    if not await in_transaction(outbox, commit):
        return "skipped"
    if outcome == "demultiplexed":
        DEMUX_CLUSTERS.inc(int(payload["total_clusters_pf"]))
        DEMUX_SECONDS.observe(seconds)
    return outcome


def _sample(d: dict[str, Any]) -> DemultiplexedSample:
    return DemultiplexedSample(**{**d, "files": [FastqFile(**f) for f in d["files"]]})


async def _fail(event: RunUploaded, *, runs: RunStore, outbox: Outbox, stage: str, reason: str) -> None:
    data = event.data
    log.warning("demultiplexing of run %s failed at %s: %s", data.run_id, stage, reason)
    failed = DemultiplexingFailed(
        correlation_id=event.correlation_id,
        data=DemultiplexingFailedData(run_id=data.run_id, run_name=data.run_name, stage=stage, reason=reason),
    )

    async def commit(session: Any) -> bool:
        done = await runs.set_status(
            data.run_id,
            "failed",
            from_statuses=OPEN,
            set_={"failure": {"stage": stage, "reason": reason}},
            session=session,
        )
        if done is None and await runs.get(data.run_id, session=session) is not None:
            return False
        await outbox.add(failed, session=session)
        return True

    await in_transaction(outbox, commit)


async def on_run_uploaded(event: RunUploaded, app: web.Application) -> None:
    """Bus handler: adapts the ingest app to explicit dependencies."""
    await handle_run_uploaded(
        event,
        runs=RunStore(app[common_keys.mongo_db]),
        outbox=app[common_keys.outbox],
        files=app[common_keys.files],
        settings=DemuxSettings(),
    )


SUBSCRIPTION = Subscription(queue="ingest.demultiplexer", handlers={RunUploaded: on_run_uploaded}, prefetch=1)
"""Register in services/ingest/consumers.py: `SUBSCRIPTIONS = [..., SUBSCRIPTION]`."""
