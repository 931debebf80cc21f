"""The file store: big data (run folders, FASTQ, VCF, matrices) lives here; events carry its URIs.

`LocalFileStore` keeps files under one directory (a volume in Kubernetes). Keys are relative POSIX paths,
validated so that no key can point outside the root; URIs are `store:<key>`. Writes go to a temporary file
beside the target and are renamed into place only when complete, so a reader never sees a half-written file.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import shutil
import tempfile
from collections.abc import AsyncIterable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO

from libs.common.errors import BadRequest, NotFound

URI_SCHEME = "store:"
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_CHUNK = 1 << 20
_FOLDERS_KEPT = 4096  # resolved folders a store remembers before it starts again


class InvalidKey(BadRequest):
    """A key or URI that is not a safe relative path inside the store."""


@dataclass(frozen=True, slots=True)
class StoredFile:
    uri: str
    size: int
    sha256: str


def validate_key(key: str) -> str:
    """Return the normalised key, or raise InvalidKey naming the problem.

    Rejects empty keys, absolute paths, backslashes, `.`/`..` segments, empty segments and control characters.
    """
    if not key or len(key) > 1024:
        raise InvalidKey(f"invalid path {key[:80]!r}: must be 1..1024 characters")
    if _CONTROL.search(key):
        raise InvalidKey(f"invalid path {key!r}: control characters are not allowed")
    if "\\" in key:
        raise InvalidKey(f"invalid path {key!r}: use '/' as separator")
    if key.startswith("/") or PurePosixPath(key).is_absolute():
        raise InvalidKey(f"invalid path {key!r}: absolute paths are not allowed")
    parts = key.split("/")
    if any(part in ("", ".", "..") for part in parts):
        raise InvalidKey(f"invalid path {key!r}: empty, '.' or '..' segments are not allowed")
    return key


def key_of(uri: str) -> str:
    if not uri.startswith(URI_SCHEME):
        raise InvalidKey(f"not a file-store URI: {uri!r}")
    return validate_key(uri[len(URI_SCHEME) :])


def uri_of(key: str) -> str:
    return URI_SCHEME + validate_key(key)


class LocalFileStore:
    """Files under `root`; safe keys; atomic writes; sha256 computed while writing."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self._folders: dict[str, Path] = {}  # folder key -> its resolved path, for folders found inside the root

    def path(self, uri_or_key: str) -> Path:
        """Local path of a URI or key (for worker processes that read files directly), with every symlink
        resolved; InvalidKey if one leads out of the store.

        The folder part is resolved once per folder and process (`realpath` costs an `lstat` per component, and a
        run folder takes thousands of files; docs/benchmarks.md, Upload, eighth session); the file name costs one
        `lstat` each time. The server never makes symlinks, so what this check catches is one that somebody with
        write access to the volume put there — before a folder's first use here; a folder swapped for a symlink
        later is not seen again."""
        key = key_of(uri_or_key) if uri_or_key.startswith(URI_SCHEME) else validate_key(uri_or_key)
        folder, _, name = key.rpartition("/")
        path = (self._folder(folder, key) if folder else self.root) / name
        if path.is_symlink():
            path = self._inside(path.resolve(), key)
        return path

    def _folder(self, folder: str, key: str) -> Path:
        found = self._folders.get(folder)
        if found is None:
            found = self._inside((self.root / folder).resolve(), key)
            if found.is_dir():  # only folders that exist: one made later is resolved when it is there
                if len(self._folders) >= _FOLDERS_KEPT:
                    self._folders.clear()
                self._folders[folder] = found
        return found

    def _inside(self, path: Path, key: str) -> Path:
        if not path.is_relative_to(self.root):  # a symlink inside the store pointing out of it
            raise InvalidKey(f"path {key!r} leaves the file store")
        return path

    @contextmanager
    def writer(self, key: str) -> Iterator[BinaryIO]:
        """Write a file atomically: yields a temp file; renamed to the key only if the block succeeds."""
        target = self.path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
        try:
            with os.fdopen(fd, "wb") as handle:
                yield handle
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    async def put(self, key: str, chunks: AsyncIterable[bytes]) -> StoredFile:
        """Stream chunks into `key` atomically; returns its URI, size and sha256."""
        digest = hashlib.sha256()
        size = 0
        with self.writer(key) as handle:
            async for chunk in chunks:
                digest.update(chunk)
                size += len(chunk)
                await asyncio.to_thread(handle.write, chunk)
        return StoredFile(uri_of(key), size, digest.hexdigest())

    async def put_bytes(self, key: str, data: bytes) -> StoredFile:
        def _write() -> None:
            with self.writer(key) as handle:
                handle.write(data)

        await asyncio.to_thread(_write)
        return StoredFile(uri_of(key), len(data), hashlib.sha256(data).hexdigest())

    def stat(self, uri: str) -> int:
        """Size in bytes; NotFound if absent."""
        try:
            return self.path(uri).stat().st_size
        except FileNotFoundError as exc:
            raise NotFound(f"no file {uri}") from exc

    async def sha256(self, uri: str) -> str:
        return await asyncio.to_thread(sha256_file, self.path(uri))

    def exists(self, uri: str) -> bool:
        return self.path(uri).is_file()

    async def delete(self, uri: str) -> None:
        """Delete a file, or a whole prefix when the key ends with '/' (idempotent)."""
        path = self.path(uri.rstrip("/")) if uri.endswith("/") else self.path(uri)
        if path.is_dir():
            await asyncio.to_thread(shutil.rmtree, path, True)
        else:
            path.unlink(missing_ok=True)


def hash_range(fd: int, start: int, length: int, hashers: Iterable[Any], *, block: int = _CHUNK) -> None:
    """Feed `length` bytes of an open file from `start` to the hashers, read into one reusable buffer (blocking:
    call it in a thread). OSError if the file ends early (it shrank meanwhile)."""
    buffer = memoryview(bytearray(min(block, length)))
    end = start + length
    while start < end:
        n = os.preadv(fd, [buffer[: min(block, end - start)]], start)
        if n <= 0:
            raise OSError(f"the file ended {end - start} bytes early while hashing")
        for h in hashers:
            h.update(buffer[:n])
        start += n


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()
