"""Part files: the bytes of unfinished tus uploads on local disk, written in fixed-size buffers.

`PartFiles` appends a request body (any async iterator of bytes) at a given offset, double-buffered:
the event loop fills one buffer while a worker thread writes and hashes the previous one, so memory
is bounded by two buffers whatever the file or chunk size. Bytes past the durable offset (left by a
crash) are truncated away before appending; `fsync` runs before the caller records a new offset.
A running whole-file SHA-256 is kept per upload while its PATCHes arrive in order, so completion does
not re-read the file (after a restart it is recomputed from disk). No aiohttp, no pymongo.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .tus import Checksum

READ_BLOCK = 1 << 20


class BodyTooLong(Exception):
    """The body carried more bytes than the upload may still take."""


class BodyInterrupted(Exception):
    """The client went away mid-body; `written` bytes of it were kept."""

    def __init__(self, written: int) -> None:
        super().__init__(f"body interrupted after {written} bytes")
        self.written = written


@dataclass(frozen=True)
class AppendResult:
    written: int
    checksum_ok: bool


@dataclass
class _RunningHash:
    offset: int
    hasher: Any


class PartFiles:
    """Append-only data files for uploads, one per upload id, under `root`."""

    def __init__(self, root: Path, *, buffer_size: int = 1 << 20, fsync: bool = True) -> None:
        self.root = root
        self.buffer_size = buffer_size
        self.fsync = fsync
        self._hashes: dict[str, _RunningHash] = {}

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

    async def append(
        self,
        upload_id: str,
        offset: int,
        body: AsyncIterator[bytes],
        *,
        limit: int | None,
        checksum: Checksum | None,
    ) -> AppendResult:
        """Write `body` at `offset`; on a checksum mismatch or an over-long body, nothing is kept.

        Raises:
            BodyTooLong: more than `limit` bytes arrived (file truncated back to `offset`).
            BodyInterrupted: the body broke off; the bytes received so far are kept and synced
                unless a per-request checksum was announced (then they are dropped: unverifiable).
        """
        path = self.path(upload_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = await asyncio.to_thread(_open_at, path, offset)
        running = self._hashes.get(upload_id)
        whole = running.hasher if running is not None and running.offset == offset else None
        if whole is None and offset == 0:
            whole = hashlib.sha256()
        part = checksum.new_hasher() if checksum else None
        writer = _Writer(fd, [h for h in (whole, part) if h is not None])
        try:
            written = await self._pump(body, writer, limit)
        except BodyTooLong:
            await writer.abort(offset)
            self._hashes.pop(upload_id, None)
            raise
        except BodyInterrupted as exc:
            if checksum is not None:
                await writer.abort(offset)
                self._hashes.pop(upload_id, None)
                raise BodyInterrupted(0) from None
            await writer.close(sync=self.fsync)
            self._remember(upload_id, offset + exc.written, whole)
            raise
        except BaseException:
            await writer.abort(offset)
            self._hashes.pop(upload_id, None)
            raise
        if part is not None and checksum is not None and part.digest() != checksum.digest:
            await writer.abort(offset)
            self._hashes.pop(upload_id, None)
            return AppendResult(0, checksum_ok=False)
        await writer.close(sync=self.fsync)
        self._remember(upload_id, offset + written, whole)
        return AppendResult(written, checksum_ok=True)

    def _remember(self, upload_id: str, offset: int, whole: Any) -> None:
        if whole is None:
            self._hashes.pop(upload_id, None)
        else:
            self._hashes[upload_id] = _RunningHash(offset, whole)

    async def _pump(self, body: AsyncIterator[bytes], writer: _Writer, limit: int | None) -> int:
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
        if batch:
            await writer.submit(batch)
        await writer.drain()
        return total

    async def sync(self, upload_id: str, size: int) -> None:
        """Cut the part file to `size` bytes and make them durable."""
        await asyncio.to_thread(_cut_and_sync, self.path(upload_id), size)

    async def sha256(self, upload_id: str, length: int) -> str:
        """Whole-file SHA-256 hex; from the running hash when it covers the file, else re-read."""
        running = self._hashes.get(upload_id)
        if running is not None and running.offset == length:
            return str(running.hasher.hexdigest())
        return await asyncio.to_thread(file_digest, self.path(upload_id), "sha256")

    async def concat(self, target_id: str, part_ids: Iterable[str]) -> tuple[int, str]:
        """Write the parts, in order, into a new part file; return (size, sha256 hex)."""
        target = self.path(target_id)
        target.parent.mkdir(parents=True, exist_ok=True)
        sources = [self.path(p) for p in part_ids]
        size, digest = await asyncio.to_thread(_concat_files, target, sources, self.fsync)
        return size, digest


class _Writer:
    """Writes buffers in a worker thread, one at a time, while the loop reads the next one."""

    def __init__(self, fd: int, hashers: list[Any]) -> None:
        self.fd = fd
        self.hashers = hashers
        self.pending: asyncio.Future[None] | None = None

    async def submit(self, batch: list[bytes]) -> None:
        await self.drain()
        self.pending = asyncio.ensure_future(asyncio.to_thread(self._write, batch))

    def _write(self, batch: list[bytes]) -> None:
        views = [memoryview(b) for b in batch]
        while views:
            written = os.writev(self.fd, views[:1024])
            while views and written >= len(views[0]):
                written -= len(views[0])
                views.pop(0)
            if written:
                views[0] = views[0][written:]
        for data in batch:
            for h in self.hashers:
                h.update(data)

    async def drain(self) -> None:
        if self.pending is not None:
            pending, self.pending = self.pending, None
            await pending

    async def close(self, *, sync: bool) -> None:
        await self.drain()
        await asyncio.to_thread(_sync_close, self.fd, sync)

    async def abort(self, offset: int) -> None:
        try:
            await self.drain()
        except OSError:
            pass
        await asyncio.to_thread(_truncate_close, self.fd, offset)


def _open_at(path: Path, offset: int) -> int:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o640)
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
