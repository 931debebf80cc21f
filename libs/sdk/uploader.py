"""The instrument agent's engine: stream a run folder to seqhub ingest over tus, resumably.

`RunUploader` registers the run (from RunInfo.xml), then uploads each file once it is complete:
cycle folders (`C<n>.1`) are complete when a later cycle folder exists or their size has been stable
for `stable_seconds`; other files when their size and mtime are stable; completion markers
(RTAComplete.txt, CopyComplete.txt) go last, after every other file is stored, CopyComplete.txt the
very last (it is what tells the server the run is whole). Transfers run in parallel, many small files at once
but only a few large ones (`WorkQueue`: large streams fill the link long before they are many); each file is
hashed (sha256, sent in Upload-Metadata and verified by the server) and each chunk carries an
`Upload-Checksum`. A journal (JSON lines, one per event) records the run id, each upload URL and each
finished file, so a killed agent resumes where it stopped (HEAD → offset) and never re-sends finished
files. Network errors, 5xx, 423 and 460 are retried with exponential back-off and jitter.

Memory does not grow with the chunk size: a chunk is hashed (crc32 or sha1, for its `Upload-Checksum`) by one
pass over the file slice, then streamed from the file by `FileSlice` in `PIECE`-sized reads; only files of at
most `INLINE_BYTES` are read into memory (once, serving both the sha256 and the one request).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import os
import re
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp.abc import AbstractStreamWriter
from aiohttp.payload import Payload

from libs.common.checksums import new_hasher
from libs.common.filestore import hash_range
from libs.sdk.client import ApiError, SeqhubClient, backoff

MARKERS = ("RTAComplete.txt", "CopyComplete.txt")
FINAL_MARKER = "CopyComplete.txt"
TUS_HEADERS = {"Tus-Resumable": "1.0.0"}
PIECE = 1 << 20  # bytes per read while hashing or streaming a chunk from its file
INLINE_BYTES = 1 << 20  # files up to this size are read once into memory (hash + body); larger ones are streamed
_CYCLE = re.compile(r"(?:^|/)C(\d+)\.1/|/(\d{4})\.bcl\.bgzf$")


# concurrent transfers: a run is mostly small files, each one request, and the server accounts concurrent files
# in one group commit, so files/s rises with concurrency up to ~64 (bench/upload.py part B, docs/benchmarks.md).
# A killed agent re-sends at most this many requests.
DEFAULT_PARALLEL = 64
# of those, transfers of files over INLINE_BYTES (streamed: each holds ~2 MiB of buffers in the agent and ~1-2 MiB
# in the server): large files gain nothing past 4-8 streams while each costs memory (bench/upload.py part C,
# docs/benchmarks.md)
DEFAULT_PARALLEL_LARGE = 8


class UploadFailed(Exception):
    """Unrecoverable: the server refused something, or retries ran out. The message says what and where."""


class WorkQueue:
    """The files waiting to upload, split by size. Any idle worker takes a small file; a large one only while
    fewer than `large_limit` large ones are under way, and large ones first (they take longest), so that many
    small files go at once while the few streams that fill the link stay few."""

    def __init__(self, large_limit: int) -> None:
        self.large_limit = max(1, large_limit)
        self.large_running = 0
        self._small: deque[str] = deque()
        self._large: deque[str] = deque()
        self._closed = False
        self._changed = asyncio.Condition()

    async def put(self, path: str, *, large: bool) -> None:
        async with self._changed:
            (self._large if large else self._small).append(path)
            self._changed.notify()

    async def close(self) -> None:
        """No more files: workers return once nothing is left."""
        async with self._changed:
            self._closed = True
            self._changed.notify_all()

    async def take(self) -> tuple[str, bool] | None:
        """(path, large), or None when the queue is closed and empty. Call `finished(large)` after the file."""
        async with self._changed:
            while True:
                if self._large and self.large_running < self.large_limit:
                    self.large_running += 1
                    return self._large.popleft(), True
                if self._small:
                    return self._small.popleft(), False
                if self._closed and not self._large:
                    return None
                await self._changed.wait()

    async def finished(self, large: bool) -> None:
        if large:
            async with self._changed:
                self.large_running -= 1
                self._changed.notify_all()


@dataclass
class FileState:
    size: int
    mtime_ns: int
    url: str | None = None
    sha256: str | None = None
    done: bool = False


@dataclass
class Progress:
    """Counters for the progress display (and the final summary)."""

    files_total: int = 0
    files_done: int = 0
    bytes_total: int = 0
    bytes_done: int = 0
    bytes_sent: int = 0
    started: float = field(default_factory=time.monotonic)

    @property
    def throughput(self) -> float:
        elapsed = time.monotonic() - self.started
        return self.bytes_sent / elapsed if elapsed > 0 else 0.0


class Journal:
    """Append-only local state of one run upload: survives the agent being killed at any point."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.run_id: str | None = None
        self.base_url: str | None = None
        self.files: dict[str, FileState] = {}
        self._fh: Any = None

    def load(self) -> None:
        if not self.path.exists():
            return
        with self.path.open(encoding="utf-8") as fh:
            for line in fh:
                try:
                    entry = json.loads(line)
                except json.JSONDecodeError:
                    break  # a torn last line from a kill: everything before it is valid
                self._apply(entry)

    def _apply(self, entry: dict[str, Any]) -> None:
        kind = entry.get("kind")
        if kind == "run":
            self.run_id, self.base_url = entry["run_id"], entry.get("base_url")
        elif kind == "upload":
            self.files[entry["path"]] = FileState(entry["size"], entry["mtime_ns"], entry["url"], entry.get("sha256"))
        elif kind == "done" and entry["path"] in self.files:
            self.files[entry["path"]].done = True
        elif kind == "done":
            self.files[entry["path"]] = FileState(entry["size"], entry["mtime_ns"], None, entry.get("sha256"), True)

    def record(self, **entry: Any) -> None:
        self._apply(entry)
        if self._fh is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fh = self.path.open("a", encoding="utf-8")
        self._fh.write(json.dumps(entry) + "\n")
        self._fh.flush()

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None


def default_journal_path(run_dir: Path) -> Path:
    state_home = Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state")
    digest = hashlib.sha256(str(run_dir.resolve()).encode()).hexdigest()[:12]
    return state_home / "seqhub" / "uploads" / f"{run_dir.name}-{digest}.jsonl"


def detect_format(run_dir: Path) -> str | None:
    calls = run_dir / "Data" / "Intensities" / "BaseCalls"
    if not calls.is_dir():
        return None
    for lane in sorted(calls.glob("L*")):
        if any(not f.name.startswith(".") for f in lane.glob("*.bcl.bgzf")):
            return "bcl.bgzf"  # NextSeq 500/550: one lane-wide file per cycle, no cycle folders
        for cycle in sorted(lane.glob("C*.1")):
            for f in cycle.iterdir():
                if f.name.startswith("."):
                    continue
                for suffix, fmt in ((".cbcl", "cbcl"), (".bcl.gz", "bcl.gz"), (".bcl", "bcl")):
                    if f.name.endswith(suffix):
                        return fmt
    return None


def scan(run_dir: Path) -> dict[str, os.stat_result]:
    """Every visible regular file under the run folder (hidden temp files of writers are skipped)."""
    found: dict[str, os.stat_result] = {}
    for root, dirs, names in os.walk(run_dir):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in names:
            if name.startswith("."):
                continue
            full = Path(root) / name
            with contextlib.suppress(FileNotFoundError):
                st = full.stat()
                found[full.relative_to(run_dir).as_posix()] = st
    return found


def cycle_of(path: str) -> int | None:
    match = _CYCLE.search(path)
    return int(match.group(1) or match.group(2)) if match else None


def sha256_of(path: Path) -> str:
    with path.open("rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def _read_and_hash(path: Path) -> tuple[bytes, str]:
    data = path.read_bytes()
    return data, hashlib.sha256(data).hexdigest()


def checksum_header_of_range(fd: int, offset: int, length: int, algorithm: str = "sha1") -> str:
    """tus `Upload-Checksum` of `length` bytes of the file from `offset` (blocking: a thread). OSError if the file
    ends early (it shrank: the file is re-read)."""
    hasher = new_hasher(algorithm)
    hash_range(fd, offset, length, [hasher], block=PIECE)
    return f"{algorithm} " + base64.b64encode(hasher.digest()).decode()


class FileSlice(Payload):
    """A request body of `length` bytes of an open file from `offset`, streamed in `PIECE`-sized reads: the next
    read runs in a worker thread while the previous block is sent, so client memory is two pieces whatever the
    chunk size, and no copy of the whole chunk is ever made. The caller owns (and closes) the file descriptor;
    the payload can be sent again (a redirect) since it reads by position."""

    _autoclose = True  # it holds nothing to close

    def __init__(self, fd: int, offset: int, length: int, *, piece: int = PIECE) -> None:
        super().__init__(None, content_type="application/offset+octet-stream")
        self._fd = fd
        self._offset = offset
        self._length = length
        self._size = length
        self._piece = piece

    def decode(self, encoding: str = "utf-8", errors: str = "strict") -> str:
        raise TypeError("a file slice is streamed, not decoded")

    async def write(self, writer: AbstractStreamWriter) -> None:
        await self.write_with_length(writer, None)

    async def write_with_length(self, writer: AbstractStreamWriter, content_length: int | None) -> None:
        length = self._length if content_length is None else min(self._length, content_length)
        position, end = self._offset, self._offset + length
        ahead: asyncio.Future[bytes] | None = None
        try:
            if position < end:
                ahead = asyncio.ensure_future(asyncio.to_thread(os.pread, self._fd, min(self._piece, length), position))
            while ahead is not None:
                block = await ahead
                ahead = None
                if not block:
                    raise OSError(f"the file ended {end - position} bytes early while sending a chunk")
                position += len(block)
                if position < end:
                    size = min(self._piece, end - position)
                    ahead = asyncio.ensure_future(asyncio.to_thread(os.pread, self._fd, size, position))
                await writer.write(block)
        finally:
            if ahead is not None:
                ahead.cancel()
                with contextlib.suppress(BaseException):
                    await ahead  # the read thread finishes before the caller may close the descriptor


def _b64(value: str) -> str:
    return base64.b64encode(value.encode()).decode()


class RunUploader:
    """Upload one run folder. See the module docstring for the rules.

    Args:
        client: API client (base URL + token).
        run_dir: the instrument's run folder.
        parallel: concurrent file transfers.
        parallel_large: of those, at most this many of files over INLINE_BYTES (streamed; see WorkQueue).
        chunk_size: bytes per PATCH.
        watch: follow a folder still being written until its final marker is uploaded.
        fmt: base-call format (bcl, bcl.gz, cbcl); detected from the folder when None.
        journal_path: local state file (default under $XDG_STATE_HOME/seqhub/uploads/).
        stable_seconds: how long size/mtime must not change before a file counts as complete (watch mode).
        poll_seconds: how often the folder is rescanned (watch mode).
        on_progress: called after every chunk with the counters.
        max_attempts: retries per request before giving up.
    """

    def __init__(
        self,
        client: SeqhubClient,
        run_dir: Path,
        *,
        parallel: int = DEFAULT_PARALLEL,
        parallel_large: int = DEFAULT_PARALLEL_LARGE,
        chunk_size: int = 8 << 20,
        watch: bool = False,
        fmt: str | None = None,
        journal_path: Path | None = None,
        stable_seconds: float = 5.0,
        poll_seconds: float = 1.0,
        on_progress: Callable[[Progress], None] | None = None,
        max_attempts: int = 8,
        project: str | None = None,
    ) -> None:
        self.client = client
        self.run_dir = run_dir
        self.parallel = max(1, parallel)
        self.parallel_large = max(1, min(parallel_large, self.parallel))
        self.chunk_size = chunk_size
        self.watch = watch
        self.fmt = fmt
        self.journal = Journal(journal_path or default_journal_path(run_dir))
        self.stable_seconds = stable_seconds
        self.poll_seconds = poll_seconds
        self.on_progress = on_progress
        self.max_attempts = max_attempts
        self.project = project
        self.progress = Progress()
        self._seen: dict[str, tuple[int, int, float]] = {}
        self._queued: set[str] = set()
        self._chunk_checksum = "sha1"  # the chunks' Upload-Checksum algorithm (see `_offered_checksum`)

    # --- planning -------------------------------------------------------------------------------

    def plan(self) -> list[tuple[str, int]]:
        """What a --dry-run would upload now: (path, size) of every file not yet uploaded."""
        self.journal.load()
        return [
            (p, st.st_size)
            for p, st in sorted(scan(self.run_dir).items())
            if not (p in self.journal.files and self.journal.files[p].done)
        ]

    def _ready(self, files: dict[str, os.stat_result], now: float, finished: bool) -> list[str]:
        """Files complete enough to upload now, markers excluded."""
        max_cycle = max((c for p in files if (c := cycle_of(p)) is not None), default=0)
        ready = []
        for path, st in files.items():
            if path in self._queued or path in MARKERS:
                continue
            key = (st.st_size, st.st_mtime_ns)
            first = self._seen.get(path)
            if first is None or first[:2] != key:
                self._seen[path] = (*key, now)
                first = self._seen[path]
            cycle = cycle_of(path)
            stable = now - first[2] >= self.stable_seconds
            if finished or not self.watch or stable or (cycle is not None and cycle < max_cycle):
                ready.append(path)
        return sorted(ready)

    # --- the run --------------------------------------------------------------------------------

    async def run(self) -> str:
        """Upload the folder; returns the run id. Raises UploadFailed on unrecoverable errors."""
        self.journal.load()
        try:
            run_id = await self._register()
            self._chunk_checksum = await self._offered_checksum()
            queue = WorkQueue(self.parallel_large)
            workers = [asyncio.create_task(self._worker(run_id, queue)) for _ in range(self.parallel)]
            try:
                await self._feed(queue, workers)
                await queue.close()
                await asyncio.gather(*workers)
                await self._upload_markers(run_id)
            finally:
                for w in workers:
                    w.cancel()
                await asyncio.gather(*workers, return_exceptions=True)
            return run_id
        finally:
            self.journal.close()

    async def _feed(self, queue: WorkQueue, workers: list[asyncio.Task[None]]) -> None:
        while True:
            files = scan(self.run_dir)
            finished = FINAL_MARKER in files or not self.watch
            for path in self._ready(files, time.monotonic(), finished):
                self._queued.add(path)
                st = files[path]
                state = self.journal.files.get(path)
                if state is not None and state.done and state.size == st.st_size:
                    continue
                self.progress.files_total += 1
                self.progress.bytes_total += st.st_size
                await queue.put(path, large=st.st_size > INLINE_BYTES)
            for w in workers:
                if w.done() and w.exception() is not None:
                    raise w.exception()  # type: ignore[misc]
            if finished and all(p in self._queued or p in MARKERS for p in files):
                return
            await asyncio.sleep(self.poll_seconds)

    async def _upload_markers(self, run_id: str) -> None:
        files = scan(self.run_dir)
        for marker in MARKERS:  # RTAComplete before CopyComplete: the last one completes the run
            if marker in files:
                state = self.journal.files.get(marker)
                if state is None or not state.done:
                    self.progress.files_total += 1
                    self.progress.bytes_total += files[marker].st_size
                    await self._upload_file(run_id, marker)

    async def _worker(self, run_id: str, queue: WorkQueue) -> None:
        while (taken := await queue.take()) is not None:
            path, large = taken
            try:
                await self._upload_file(run_id, path)
            finally:
                await queue.finished(large)

    async def _register(self) -> str:
        if self.journal.run_id is not None:
            return self.journal.run_id
        run_info = self.run_dir / "RunInfo.xml"
        while not run_info.exists() or (self.fmt or detect_format(self.run_dir)) is None:
            if not self.watch:
                missing = "RunInfo.xml" if not run_info.exists() else "base-call files (to detect the format)"
                raise UploadFailed(f"{self.run_dir}: no {missing}; is this a run folder?")
            await asyncio.sleep(self.poll_seconds)
        body: dict[str, Any] = {
            "name": self.run_dir.name,
            "run_info_xml": run_info.read_text(encoding="utf-8"),
            "format": self.fmt or detect_format(self.run_dir),
        }
        if self.project:
            body["project"] = self.project
        if (
            not (self.run_dir / "CopyComplete.txt").exists()
            and (self.run_dir / "RTAComplete.txt").exists()
            and not self.watch
        ):
            body["completion_marker"] = "RTAComplete.txt"
        try:
            created = await self._retrying(lambda: self.client.post_json("/ingest/runs", body), "register run")
        except ApiError as exc:
            raise UploadFailed(f"{self.run_dir}: the server refused the run: {exc.message}") from None
        self.journal.record(kind="run", run_id=created["id"], base_url=self.client.base_url)
        return str(created["id"])

    async def _offered_checksum(self) -> str:
        """The chunks' `Upload-Checksum` algorithm: crc32 where the server offers it (it catches damage in transit
        at a small fraction of sha1's CPU, on both ends; the file's sha256 in Upload-Metadata checks it end to end),
        else sha1, which every tus server with the checksum extension takes. Asked once per run, with OPTIONS; a
        PATCH refused for crc32 all the same switches the run to sha1 (see `_upload_file`)."""
        try:
            _, headers, _ = await self.client.request("OPTIONS", "/ingest/files/", headers=TUS_HEADERS)
        except (ApiError, aiohttp.ClientError, OSError, TimeoutError):
            return "sha1"  # the first PATCH meets the same trouble and is retried; sha1 is always valid
        offered = {name.strip().lower() for name in headers.get("Tus-Checksum-Algorithm", "").split(",")}
        return "crc32" if "crc32" in offered else "sha1"

    async def _retrying(self, call: Callable[[], Any], what: str) -> Any:
        delays = backoff(attempts=self.max_attempts)
        while True:
            try:
                return await call()
            except (aiohttp.ClientError, OSError, TimeoutError) as exc:
                last: Exception = exc
            except ApiError as exc:
                if not exc.transient:
                    raise
                last = exc
            delay = next(delays, None)
            if delay is None:
                raise UploadFailed(f"{what}: giving up after {self.max_attempts} retries: {last}")
            await asyncio.sleep(delay)

    # --- one file -------------------------------------------------------------------------------

    async def _upload_file(self, run_id: str, path: str) -> None:
        local = self.run_dir / path
        st = local.stat()
        known = self._journal_state(path, st)
        data = None
        if known is None and st.st_size <= min(INLINE_BYTES, self.chunk_size):  # one read: hash and request body
            data, sha256 = await asyncio.to_thread(_read_and_hash, local)
            if len(data) != st.st_size:
                data, sha256 = None, await asyncio.to_thread(sha256_of, local)
        else:
            sha256 = known.sha256 if known and known.sha256 else await asyncio.to_thread(sha256_of, local)
        delays = backoff(attempts=self.max_attempts)
        fresh = False
        while True:
            state = None if fresh else self._journal_state(path, st)
            fresh = False
            try:
                await self._transfer(run_id, path, local, st, sha256, state, data)
                break
            except ApiError as exc:
                if exc.status == 409 and "already stored" in exc.message:
                    break  # stored by an earlier attempt whose answer we lost
                if exc.status in (404, 410):
                    fresh = True  # the server forgot the upload (expired): start a new one
                elif exc.status == 400 and self._chunk_checksum != "sha1" and "Upload-Checksum" in exc.message:
                    self._chunk_checksum = "sha1"  # offered but refused (servers of two versions behind one URL)
                elif not (exc.status == 409 or exc.transient or exc.status == 460):
                    raise UploadFailed(f"{path}: {exc.message} (HTTP {exc.status})") from None
                last: Exception = exc  # offset moved, lock held, chunk damaged: HEAD and resume
            except (aiohttp.ClientError, OSError, TimeoutError) as exc:
                last = exc
            delay = next(delays, None)
            if delay is None:
                raise UploadFailed(f"{path}: giving up after {self.max_attempts} retries: {last}")
            await asyncio.sleep(delay)
        self.journal.record(kind="done", path=path, size=st.st_size, mtime_ns=st.st_mtime_ns, sha256=sha256)
        self.progress.files_done += 1
        self._report()

    def _journal_state(self, path: str, st: os.stat_result) -> FileState | None:
        state = self.journal.files.get(path)
        if state is None or (state.size, state.mtime_ns) != (st.st_size, st.st_mtime_ns):
            return None  # unknown, or the file changed since: start over
        return state

    async def _transfer(
        self,
        run_id: str,
        path: str,
        local: Path,
        st: os.stat_result,
        sha256: str,
        state: FileState | None,
        data: bytes | None = None,
    ) -> None:
        size = st.st_size
        with local.open("rb") as fh:
            fd = fh.fileno()
            if state is None or state.url is None:
                offset, url = await self._create(run_id, path, fd, size, sha256, data)
                if offset < size:  # the URL is what a resumed agent needs: on disk before the first PATCH
                    self.journal.record(
                        kind="upload", path=path, size=size, mtime_ns=st.st_mtime_ns, url=url, sha256=sha256
                    )
            else:
                url = state.url
                offset = await self._head(url)
            while offset < size:
                offset = await self._patch(url, fd, offset, min(self.chunk_size, size - offset))

    async def _create(
        self, run_id: str, path: str, fd: int, size: int, sha256: str, data: bytes | None = None
    ) -> tuple[int, str]:
        metadata = f"run_id {_b64(run_id)},path {_b64(path)},checksum {_b64('sha256 ' + sha256)}"
        headers = {**TUS_HEADERS, "Upload-Length": str(size), "Upload-Metadata": metadata}
        body: bytes | FileSlice | None = None
        if size <= self.chunk_size:
            # a file that fits one chunk: creation-with-upload, one request; the body is the whole file, so the
            # sha256 in Upload-Metadata checks it end to end (no per-request Upload-Checksum needed)
            headers["Content-Type"] = "application/offset+octet-stream"
            body = data if data is not None else FileSlice(fd, 0, size)
        _, response_headers, _ = await self.client.request("POST", "/ingest/files/", headers=headers, data=body)
        url = self.client.url(response_headers["Location"])
        offset = int(response_headers.get("Upload-Offset", "0"))
        if body is not None:
            self.progress.bytes_sent += offset
            self.progress.bytes_done += offset
        return offset, url

    async def _head(self, url: str) -> int:
        _, headers, _ = await self.client.request("HEAD", url, headers=TUS_HEADERS)
        return int(headers["Upload-Offset"])

    async def _patch(self, url: str, fd: int, offset: int, length: int) -> int:
        """One chunk: hashed by a pass over its file slice, then streamed from the file (memory: a few pieces)."""
        headers = {
            **TUS_HEADERS,
            "Upload-Offset": str(offset),
            "Content-Type": "application/offset+octet-stream",
            "Upload-Checksum": await asyncio.to_thread(
                checksum_header_of_range, fd, offset, length, self._chunk_checksum
            ),
        }
        body = FileSlice(fd, offset, length)
        _, response_headers, _ = await self.client.request("PATCH", url, headers=headers, data=body)
        new_offset = int(response_headers["Upload-Offset"])
        self.progress.bytes_sent += length
        self.progress.bytes_done += new_offset - offset
        self._report()
        return new_offset

    def _report(self) -> None:
        if self.on_progress is not None:
            self.on_progress(self.progress)
