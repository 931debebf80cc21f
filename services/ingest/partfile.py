"""Part files: the bytes of unfinished tus uploads on local disk, written in fixed-size buffers.

`PartFiles` appends a request body (any async iterator of bytes) at a given offset, double-buffered:
the event loop fills one buffer while a worker thread writes and hashes the previous one, so memory
is bounded by two buffers whatever the file or chunk size. Bytes past the durable offset (left by a
crash) are truncated away before appending; `fsync` runs before the caller records a new offset.
A running whole-file SHA-256 is kept per upload while its PATCHes arrive in order, so completion does
not re-read the file (after a restart it is recomputed from disk); it reads each append's bytes back from
the page cache after the append has been answered, so no PATCH waits for the whole-file hash. No aiohttp,
no pymongo.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import hashlib
import itertools
import os
import re
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

from libs.common.filestore import hash_range

from .tus import Checksum

READ_BLOCK = 1 << 20
INLINE_HASH_BYTES = 4 << 20  # bodies up to this are hashed while written; the rest of bigger ones at the end
T = TypeVar("T")
_PART_NAME = re.compile(r"([0-9a-f]{32})\.part")  # <upload id: uuid4 hex>.part, under <first two hex digits>/
_CONCAT_NAME = re.compile(r"([0-9a-f]{32})\.concat")  # a concatenation's merged bytes before their rename


class BodyTooLong(Exception):
    """The body carried more bytes than the upload may still take."""


class BodyInterrupted(Exception):
    """The client went away mid-body; `written` bytes of it were kept."""

    def __init__(self, written: int) -> None:
        super().__init__(f"body interrupted after {written} bytes")
        self.written = written


@dataclass(frozen=True)
class AppendResult(Generic[T]):
    written: int
    checksum_ok: bool
    completed: T | None = None  # what `complete` returned, when it was called


class _HandoverFailed(Exception):
    """`complete` raised: carries its exception past the writer's clean-up."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(str(error))
        self.error = error


@dataclass
class _Handover(Generic[T]):
    """A whole body's hand-over, run by the writer's thread after the fsync (see `PartFiles.append`)."""

    complete: Callable[[Path, str], T]
    path: Path
    whole: Any
    part: Any
    expected: bytes | None  # the per-request checksum's digest
    result: T | None = None

    def __call__(self) -> None:
        if self.part is not None and self.part.digest() != self.expected:
            return  # the caller reports the mismatch and drops the bytes
        try:
            self.result = self.complete(self.path, self.whole.hexdigest())
        except BaseException as exc:
            raise _HandoverFailed(exc) from exc


@dataclass
class _RunningHash:
    """An upload's whole-file SHA-256 following its appends: bytes [0, `target`) are durable and queued, [0,
    `hashed`) of them are in `hasher`. A worker thread hashes the queue from the page cache after each append
    has been acknowledged (`pending` finishes it), so a PATCH's answer does not wait for its bytes' hash."""

    hasher: Any
    target: int
    hashed: int = 0
    pending: asyncio.Future[None] | None = None
    failed: bool = False  # the file could not be read back: the digest comes from a re-read

    def follow(self, path: Path, end: int) -> asyncio.Future[None]:
        """Queue bytes [target, end) for hashing, after whatever is queued already."""
        self.target = end
        self.pending = asyncio.ensure_future(self._hash_up_to(self.pending, path, end))
        return self.pending

    async def _hash_up_to(self, previous: asyncio.Future[None] | None, path: Path, end: int) -> None:
        if previous is not None:
            await asyncio.wait([previous])
            if previous.cancelled():  # (shutdown) its thread may still be updating the hasher
                self.failed = True
        if self.failed:
            return
        try:
            await asyncio.to_thread(self._hash_file, path, end)
        except OSError:
            self.failed = True

    def _hash_file(self, path: Path, end: int) -> None:
        with _reader(path) as fd:
            hash_range(fd, self.hashed, end - self.hashed, [self.hasher], block=READ_BLOCK)
        self.hashed = end

    async def digest(self) -> str | None:
        """The hex digest of [0, target) once hashed; None if the file could not be read back."""
        if self.pending is not None:
            await asyncio.wait([self.pending])  # a cancelled caller does not cancel the hashing
            if self.pending.cancelled():
                self.failed = True
        return None if self.failed or self.hashed != self.target else str(self.hasher.hexdigest())


class PartFiles:
    """Append-only data files for uploads, one per upload id, under `root`."""

    def __init__(self, root: Path, *, buffer_size: int = 1 << 20, fsync: bool = True) -> None:
        self.root = root
        self.buffer_size = buffer_size
        self.fsync = fsync
        self._hashes: dict[str, _RunningHash] = {}
        self._hashing: set[asyncio.Future[None]] = set()  # running hashes' reads under way (see `close`)
        self._in_use: Counter[str] = Counter()  # part files a request of this process is writing or moving

    def path(self, upload_id: str) -> Path:
        return self.root / upload_id[:2] / f"{upload_id}.part"

    def size(self, upload_id: str) -> int:
        try:
            return self.path(upload_id).stat().st_size
        except FileNotFoundError:
            return 0

    def create(self, upload_id: str) -> None:
        path = self.path(upload_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch()

    def delete(self, upload_id: str) -> None:
        self._hashes.pop(upload_id, None)
        self.path(upload_id).unlink(missing_ok=True)

    def forget_hash(self, upload_id: str) -> None:
        self._hashes.pop(upload_id, None)

    @contextlib.contextmanager
    def in_use(self, upload_id: str) -> Iterator[None]:
        """Mark the upload's part file as being worked on by a request of this process: `remove_stale` spares it
        however old its bytes are (a request whose client pauses a long time mid-body)."""
        self._in_use[upload_id] += 1
        try:
            yield
        finally:
            self._in_use[upload_id] -= 1
            if self._in_use[upload_id] <= 0:
                del self._in_use[upload_id]

    def stale(self, older_than: float, *, limit: int = 1000) -> list[str]:
        """Upload ids of part files unchanged for `older_than` seconds and not in use here (blocking: a thread)."""
        return [upload_id for upload_id, _ in itertools.islice(self._unchanged(_PART_NAME, older_than), limit)]

    def remove_stale_temporaries(self, older_than: float) -> int:
        """Unlink `<id>.concat` files unchanged for `older_than` seconds: a concatenation renames its merged file
        into place when done, so one left behind is from a process killed midway and is never valid (a retry
        writes it anew); one being written is young. The count removed (blocking: a thread)."""
        removed = 0
        for _, path in list(self._unchanged(_CONCAT_NAME, older_than)):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
                removed += 1
        return removed

    def _unchanged(self, name: re.Pattern[str], older_than: float) -> Iterator[tuple[str, str]]:
        """(upload id, path) of files named `name` under their id's own two-digit folder, unchanged for
        `older_than` seconds and not in use by a request of this process."""
        cutoff = time.time() - older_than
        with contextlib.suppress(FileNotFoundError), os.scandir(self.root) as folders:
            for folder in folders:
                if len(folder.name) != 2 or not folder.is_dir(follow_symlinks=False):
                    continue
                with contextlib.suppress(FileNotFoundError), os.scandir(folder.path) as entries:
                    for entry in entries:
                        match = name.fullmatch(entry.name)
                        if match is None or not match[1].startswith(folder.name) or match[1] in self._in_use:
                            continue
                        with contextlib.suppress(FileNotFoundError):
                            if entry.is_file(follow_symlinks=False) and entry.stat().st_mtime < cutoff:
                                yield match[1], entry.path

    def remove_stale(self, upload_ids: Iterable[str], older_than: float) -> int:
        """Unlink those part files that are still unchanged for `older_than` seconds and not in use here (the
        stat is taken again: bytes written since `stale` keep the file); the count removed (blocking: a thread)."""
        removed = 0
        for upload_id in upload_ids:
            if upload_id in self._in_use:
                continue
            path = self.path(upload_id)
            with contextlib.suppress(FileNotFoundError):
                if path.stat().st_mtime < time.time() - older_than:
                    path.unlink()
                    removed += 1
        return removed

    async def append(
        self,
        upload_id: str,
        offset: int,
        body: AsyncIterator[bytes],
        *,
        limit: int | None,
        checksum: Checksum | None,
        complete: Callable[[Path, str], T] | None = None,
    ) -> AppendResult[T]:
        """Write `body` at `offset`; on a checksum mismatch or an over-long body, nothing is kept.

        `complete(path, sha256 hex)`: when the body (from offset 0) brings the file to exactly `limit` bytes and
        passes its checksum, it is called in the writer's thread right after the fsync — the hop that wrote the last
        bytes also hands the file on (blocking work: a hard link) — and its result is `AppendResult.completed`.
        Once it is called the part file is the caller's: an exception from it propagates as it is, nothing here
        truncates or deletes the file (it may be linked elsewhere by then), and no running hash is kept. The same
        holds for any failure (a failed fsync, a cancellation) once the whole body is in: the caller deletes the
        part file's name.

        Raises:
            BodyTooLong: more than `limit` bytes arrived (file truncated back to `offset`).
            BodyInterrupted: the body broke off; the bytes received so far are kept and synced
                unless a per-request checksum was announced (then they are dropped: unverifiable).
        """
        with self.in_use(upload_id):
            path = self.path(upload_id)
            # a body that may be the whole file is hashed as it is written (its hand-over needs the digest); the
            # bytes of other appends are hashed behind them (`_RunningHash`)
            whole = hashlib.sha256() if complete is not None and offset == 0 else None
            part = checksum.new_hasher() if checksum else None
            writer = _Writer(path, offset, [h for h in (whole, part) if h is not None], writeback=self.fsync)
            handover: _Handover[T] | None = None
            try:
                written, last = await self._pump(body, writer, limit)
                if complete is not None and offset == 0 and written == limit:
                    handover = _Handover(complete, path, whole, part, None if checksum is None else checksum.digest)
                # the last batch, fsync, close (and the handover): one thread hop
                await writer.finish(last, sync=self.fsync, then=handover)
            except BodyTooLong:
                await writer.abort()
                raise
            except BodyInterrupted as exc:
                if checksum is not None:
                    await writer.abort()
                    raise BodyInterrupted(0) from None
                await writer.finish([], sync=self.fsync)
                self._follow(upload_id, offset, exc.written, whole)
                raise
            except _HandoverFailed as failed:  # the file is the caller's now: leave it as it is
                self._hashes.pop(upload_id, None)
                raise failed.error from None
            except BaseException:
                if handover is None:
                    await writer.abort()
                else:  # the whole body is in and the writer's thread may be handing it over still (a cancelled
                    # await does not stop a thread): cutting the file could cut the stored file it becomes; the
                    # caller deletes the part file's name, which is safe either way
                    self._hashes.pop(upload_id, None)
                raise
            if part is not None and checksum is not None and part.digest() != checksum.digest:
                await writer.abort()
                return AppendResult(0, checksum_ok=False)
            if handover is not None:
                self._hashes.pop(upload_id, None)
                return AppendResult(written, checksum_ok=True, completed=handover.result)
            self._follow(upload_id, offset, written, whole)
            return AppendResult(written, checksum_ok=True)

    def _follow(self, upload_id: str, offset: int, written: int, whole: Any) -> None:
        """Bytes [offset, offset + written) are durable: extend the upload's running hash over them."""
        running = self._hashes.get(upload_id)
        if whole is not None:  # hashed as written, from offset 0
            self._hashes[upload_id] = _RunningHash(whole, written, hashed=written)
            return
        if offset == 0:
            running = self._hashes[upload_id] = _RunningHash(hashlib.sha256(), 0)
        elif running is None or running.target != offset:
            self._hashes.pop(upload_id, None)  # not in order (a restart, another process): re-read at the end
            return
        if written:
            hashing = running.follow(self.path(upload_id), offset + written)
            self._hashing.add(hashing)
            hashing.add_done_callback(self._hashing.discard)

    async def _pump(self, body: AsyncIterator[bytes], writer: _Writer, limit: int | None) -> tuple[int, list[bytes]]:
        """Hand the body to the writer in batches; returns the byte count and the last batch, not yet written."""
        # chunks are collected by reference (no copy) and handed to the writer thread as one writev batch
        batch: list[bytes] = []
        batched = 0
        total = 0
        try:
            async for chunk in body:
                total += len(chunk)
                if limit is not None and total > limit:
                    raise BodyTooLong(f"body exceeds the {limit} bytes the upload may still take")
                batch.append(chunk)
                batched += len(chunk)
                if batched >= self.buffer_size:
                    await writer.submit(batch)
                    batch, batched = [], 0
        except (BodyTooLong, asyncio.CancelledError):
            raise
        except (ConnectionError, EOFError) as exc:
            if batch:
                await writer.submit(batch)
            await writer.drain()
            raise BodyInterrupted(total) from exc
        return total, batch

    async def sync(self, upload_id: str, size: int) -> None:
        """Cut the part file to `size` bytes and make them durable."""
        await asyncio.to_thread(_cut_and_sync, self.path(upload_id), size)

    async def sha256(self, upload_id: str, length: int) -> str:
        """Whole-file SHA-256 hex; from the running hash when it covers the file, else re-read."""
        running = self._hashes.get(upload_id)
        if running is not None and running.target == length and (digest := await running.digest()) is not None:
            return digest
        return await asyncio.to_thread(file_digest, self.path(upload_id), "sha256")

    async def close(self) -> None:
        """Wait for the running hashes still reading (at shutdown: no thread outlives the loop's tasks)."""
        await asyncio.gather(*self._hashing, return_exceptions=True)

    async def concat(self, target_id: str, part_ids: Iterable[str]) -> tuple[int, str]:
        """Write the parts, in order, into a new part file; return (size, sha256 hex)."""
        target = self.path(target_id)
        target.parent.mkdir(parents=True, exist_ok=True)
        sources = [self.path(p) for p in part_ids]
        with self.in_use(target_id):
            size, digest = await asyncio.to_thread(_concat_files, target, sources, self.fsync)
        return size, digest


def _writeback_starter() -> Callable[[int, int, int], None]:
    """Linux's `sync_file_range(fd, offset, length, SYNC_FILE_RANGE_WRITE)` (not in `os`): start writing a range's
    dirty pages to disk and return without waiting. Durability still comes from the fsync before every
    acknowledgement; this lets the disk work while the rest of the body arrives, so that fsync finds little left
    to write. A no-op where the call does not exist, and its failures are ignored (the fsync reports real ones)."""
    try:
        call = ctypes.CDLL(None, use_errno=True).sync_file_range
    except (OSError, AttributeError):
        return lambda fd, offset, length: None
    call.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
    call.restype = ctypes.c_int
    write = 2  # SYNC_FILE_RANGE_WRITE

    def start(fd: int, offset: int, length: int) -> None:
        call(fd, offset, length, write)

    return start


_start_writeback = _writeback_starter()


class _Writer:
    """Writes buffers in a worker thread, one at a time, while the loop reads the next one. The file is opened
    (and cut to `offset`) by the first write, and the last batch, fsync and close share one thread hop, so a
    small body costs a single hop.

    Each batch but the last starts its own writeback (`writeback`, when the body is fsynced): the disk writes
    while the rest of the body arrives, and the fsync the acknowledgement waits for finds little left to do.

    Hashing (the hashers the caller needs before it answers: a per-request checksum, the digest of a body that
    may be the whole file): the first `INLINE_HASH_BYTES` of a body are hashed as they are written; the rest of a
    big body is hashed at the end, read back from the page cache while another thread runs the fsync. During the
    body the CPU goes to receiving and writing (the client is sending then, on the same cores). Memory stays one
    read block."""

    def __init__(self, path: Path, offset: int, hashers: list[Any], *, writeback: bool = False) -> None:
        self.path = path
        self.offset = offset
        self.writeback = writeback
        self.fd: int | None = None
        self.hashers = hashers
        self.written = 0  # bytes of this body written
        self.hashed = 0  # bytes of this body hashed (a prefix of them)
        self.pending: asyncio.Future[None] | None = None

    async def submit(self, batch: list[bytes]) -> None:
        await self.drain()
        self.pending = asyncio.ensure_future(asyncio.to_thread(self._write, batch, ahead=self.writeback))

    def _write(self, batch: list[bytes], *, ahead: bool = False) -> None:
        """Write a batch; `ahead`: start its writeback (more of the body follows, then the fsync)."""
        if self.fd is None:
            self.fd = _open_at(self.path, self.offset)
        views = [memoryview(b) for b in batch]
        while views:
            written = os.writev(self.fd, views[:1024])
            while views and written >= len(views[0]):
                written -= len(views[0])
                views.pop(0)
            if written:
                views[0] = views[0][written:]
        size = sum(len(b) for b in batch)
        if ahead:
            _start_writeback(self.fd, self.offset + self.written, size)
        if self.hashed == self.written and self.written < INLINE_HASH_BYTES:
            for data in batch:
                for h in self.hashers:
                    h.update(data)
            self.hashed += size
        self.written += size

    def _finish(self, batch: list[bytes], sync: bool, then: Callable[[], None] | None) -> None:
        self._sync_and_hash(batch, sync)
        if then is not None:
            then()

    def _sync_and_hash(self, batch: list[bytes], sync: bool) -> None:
        self._write(batch)
        fd, self.fd = self.fd, None
        assert fd is not None
        if self.hashed == self.written or not self.hashers:
            _sync_close(fd, sync)
            return
        failed: list[BaseException] = []

        def _sync() -> None:
            try:
                _sync_close(fd, sync)
            except BaseException as exc:  # re-raised below: no acknowledgement without a durable fsync
                failed.append(exc)

        syncer = threading.Thread(target=_sync, name="ingest-fsync")
        syncer.start()
        try:
            with _reader(self.path) as rfd:
                hash_range(rfd, self.offset + self.hashed, self.written - self.hashed, self.hashers, block=READ_BLOCK)
            self.hashed = self.written
        finally:
            syncer.join()
        if failed:
            raise failed[0]

    async def drain(self) -> None:
        if self.pending is not None:
            pending, self.pending = self.pending, None
            await pending

    async def finish(self, batch: list[bytes], *, sync: bool, then: Callable[[], None] | None = None) -> None:
        await self.drain()
        await asyncio.to_thread(self._finish, batch, sync, then)

    async def abort(self) -> None:
        """Drop what this writer wrote: the file is cut back to `offset`."""
        try:
            await self.drain()
        except OSError:
            pass
        fd, self.fd = self.fd, None
        await asyncio.to_thread(_abort, fd, self.path, self.offset)


@contextlib.contextmanager
def _reader(path: Path) -> Iterator[int]:
    fd = os.open(path, os.O_RDONLY)
    try:
        yield fd
    finally:
        os.close(fd)


def _abort(fd: int | None, path: Path, offset: int) -> None:
    if fd is not None:
        _truncate_close(fd, offset)
        return
    with contextlib.suppress(FileNotFoundError):
        if path.stat().st_size > offset:
            os.truncate(path, offset)


def _open_at(path: Path, offset: int) -> int:
    """Open a part file for writing at `offset`, cutting off any bytes beyond it. At offset 0 (every whole file
    received in one request) `O_TRUNC` does that in the open itself: one system call instead of open + `fstat` +
    `lseek` (each one a release and re-take of the GIL, which the event loop holds most of the time under load)."""
    flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if offset == 0 else 0)
    try:
        fd = os.open(path, flags, 0o640)
    except FileNotFoundError:  # the first upload under this two-hex-digit folder
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, flags, 0o640)
    if offset == 0:
        return fd
    try:
        size = os.fstat(fd).st_size
        if size < offset:
            raise OSError(f"part file {path.name} holds {size} bytes, fewer than the offset {offset}")
        if size > offset:
            os.ftruncate(fd, offset)
        os.lseek(fd, offset, os.SEEK_SET)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _cut_and_sync(path: Path, size: int) -> None:
    fd = os.open(path, os.O_WRONLY)
    try:
        os.ftruncate(fd, size)
        os.fsync(fd)
    finally:
        os.close(fd)


def _sync_close(fd: int, sync: bool) -> None:
    try:
        if sync:
            os.fsync(fd)
    finally:
        os.close(fd)


def _truncate_close(fd: int, offset: int) -> None:
    try:
        os.ftruncate(fd, offset)
    finally:
        os.close(fd)


def file_digest(path: Path, algorithm: str) -> str:
    with path.open("rb") as fh:
        return hashlib.file_digest(fh, algorithm).hexdigest()


def _concat_files(target: Path, sources: list[Path], sync: bool) -> tuple[int, str]:
    hasher = hashlib.sha256()
    size = 0
    tmp = target.with_suffix(".concat")
    with tmp.open("wb") as out:
        for source in sources:
            with source.open("rb") as src:
                while block := src.read(READ_BLOCK):
                    out.write(block)
                    hasher.update(block)
                    size += len(block)
        out.flush()
        if sync:
            os.fsync(out.fileno())
    os.replace(tmp, target)
    return size, hasher.hexdigest()
