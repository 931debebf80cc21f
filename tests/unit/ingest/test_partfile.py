"""Part files: streaming appends, truncation of undurable bytes, checksums (services/ingest/partfile.py)."""

import asyncio
import base64
import hashlib
import os
import threading
import tracemalloc
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from services.ingest import partfile
from services.ingest.partfile import BodyInterrupted, BodyTooLong, PartFiles
from services.ingest.tus import Checksum

UID = "0123456789abcdef0123456789abcdef"


async def _body(*chunks: bytes) -> AsyncIterator[bytes]:
    for c in chunks:
        yield c


async def _broken(*chunks: bytes) -> AsyncIterator[bytes]:
    for c in chunks:
        yield c
    raise ConnectionResetError("peer went away")


async def test_appends_in_order_and_hash_covers_whole_file(tmp_path: Path) -> None:
    parts = PartFiles(tmp_path, buffer_size=7)
    a, b = os.urandom(1000), os.urandom(333)
    assert (await parts.append(UID, 0, _body(a[:10], a[10:]), limit=None, checksum=None)).written == 1000
    assert (await parts.append(UID, 1000, _body(b), limit=None, checksum=None)).written == 333
    assert parts.path(UID).read_bytes() == a + b
    assert await parts.sha256(UID, 1333) == hashlib.sha256(a + b).hexdigest()


async def test_hash_is_recomputed_from_disk_by_a_fresh_instance(tmp_path: Path) -> None:
    data = os.urandom(5000)
    await PartFiles(tmp_path).append(UID, 0, _body(data), limit=None, checksum=None)
    assert await PartFiles(tmp_path).sha256(UID, 5000) == hashlib.sha256(data).hexdigest()


async def test_bytes_past_the_durable_offset_are_truncated_before_appending(tmp_path: Path) -> None:
    parts = PartFiles(tmp_path)
    await parts.append(UID, 0, _body(b"hello garbage"), limit=None, checksum=None)
    await PartFiles(tmp_path).append(UID, 5, _body(b" world"), limit=None, checksum=None)
    assert parts.path(UID).read_bytes() == b"hello world"


async def test_a_body_at_offset_zero_replaces_whatever_an_earlier_writer_left(tmp_path: Path) -> None:
    parts = PartFiles(tmp_path)
    await parts.append(UID, 0, _body(b"bytes a crashed writer left"), limit=None, checksum=None)
    result = await PartFiles(tmp_path).append(UID, 0, _body(b"new"), limit=None, checksum=None)
    assert result.written == 3
    assert parts.path(UID).read_bytes() == b"new"


async def test_checksum_mismatch_discards_the_chunk(tmp_path: Path) -> None:
    parts = PartFiles(tmp_path)
    await parts.append(UID, 0, _body(b"abc"), limit=None, checksum=None)
    wrong = Checksum("sha1", hashlib.sha1(b"other", usedforsecurity=False).digest())
    result = await parts.append(UID, 3, _body(b"def"), limit=None, checksum=wrong)
    assert not result.checksum_ok
    assert parts.path(UID).read_bytes() == b"abc"
    right = Checksum("sha1", hashlib.sha1(b"def", usedforsecurity=False).digest())
    assert (await parts.append(UID, 3, _body(b"def"), limit=None, checksum=right)).checksum_ok
    assert await parts.sha256(UID, 6) == hashlib.sha256(b"abcdef").hexdigest()
    assert base64.b64encode(right.digest)


async def test_too_long_body_keeps_nothing(tmp_path: Path) -> None:
    parts = PartFiles(tmp_path)
    with pytest.raises(BodyTooLong):
        await parts.append(UID, 0, _body(b"x" * 10, b"y" * 10), limit=15, checksum=None)
    assert parts.size(UID) == 0


async def test_interrupted_body_keeps_what_arrived(tmp_path: Path) -> None:
    parts = PartFiles(tmp_path, buffer_size=4)
    with pytest.raises(BodyInterrupted) as err:
        await parts.append(UID, 0, _broken(b"12345", b"678"), limit=None, checksum=None)
    assert err.value.written == 8
    assert parts.path(UID).read_bytes() == b"12345678"
    assert await parts.sha256(UID, 8) == hashlib.sha256(b"12345678").hexdigest()


async def test_interrupted_body_with_checksum_keeps_nothing(tmp_path: Path) -> None:
    parts = PartFiles(tmp_path)
    checksum = Checksum("md5", hashlib.md5(b"12345678", usedforsecurity=False).digest())
    with pytest.raises(BodyInterrupted) as err:
        await parts.append(UID, 0, _broken(b"12345"), limit=None, checksum=checksum)
    assert err.value.written == 0 and parts.size(UID) == 0


async def test_memory_does_not_grow_with_body_size(tmp_path: Path) -> None:
    parts = PartFiles(tmp_path, buffer_size=1 << 20, fsync=False)
    block = os.urandom(256 << 10)

    async def big(n: int) -> AsyncIterator[bytes]:
        for _ in range(n):
            yield block

    tracemalloc.start()
    await parts.append(UID, 0, big(8), limit=None, checksum=None)  # 2 MiB
    _, small_peak = tracemalloc.get_traced_memory()
    tracemalloc.reset_peak()
    await parts.append(UID, 2 << 20, big(128), limit=None, checksum=None)  # 32 MiB
    _, big_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert big_peak < 8 << 20
    assert big_peak < small_peak * 2 + (1 << 20)


async def test_concat_joins_parts_in_order(tmp_path: Path) -> None:
    parts = PartFiles(tmp_path)
    ids = [f"{i:032x}" for i in range(3)]
    chunks = [os.urandom(100 + i) for i in range(3)]
    for uid, chunk in zip(ids, chunks, strict=True):
        await parts.append(uid, 0, _body(chunk), limit=None, checksum=None)
    size, digest = await parts.concat(UID, ids)
    assert parts.path(UID).read_bytes() == b"".join(chunks)
    assert (size, digest) == (303, hashlib.sha256(b"".join(chunks)).hexdigest())


def test_stale_lists_only_old_part_files_not_in_use_and_remove_stale_checks_again(tmp_path: Path) -> None:
    parts = PartFiles(tmp_path)
    old_id, young_id, busy_id = "aa" + "1" * 30, "bb" + "2" * 30, "cc" + "3" * 30
    for upload_id in (old_id, young_id, busy_id):
        parts.create(upload_id)
    misplaced = tmp_path / "dd" / ("ee" + "4" * 30 + ".part")  # not under its own two-digit folder
    other = tmp_path / "aa" / "notes.txt"
    concat = parts.path(old_id).with_suffix(".concat")
    for path in (misplaced, other, concat):
        path.parent.mkdir(exist_ok=True)
        path.touch()
    for path in (parts.path(old_id), parts.path(busy_id), misplaced, other, concat):
        os.utime(path, (1_000_000, 1_000_000))
    with parts.in_use(busy_id):
        assert parts.stale(3600) == [old_id]
        assert parts.remove_stale([old_id, young_id, busy_id], 3600) == 1
    assert not parts.path(old_id).exists()
    assert parts.path(young_id).exists() and parts.path(busy_id).exists()
    assert misplaced.exists() and other.exists() and concat.exists()
    assert parts.stale(3600) == [busy_id]  # no longer in use
    os.utime(parts.path(busy_id))  # written since it was listed: kept
    assert parts.remove_stale([busy_id], 3600) == 0 and parts.path(busy_id).exists()
    assert PartFiles(tmp_path / "missing").stale(0) == []


async def test_a_part_file_is_in_use_while_appended(tmp_path: Path) -> None:
    parts = PartFiles(tmp_path, buffer_size=1 << 20)
    parts.create(UID)
    seen: list[list[str]] = []

    async def watched() -> AsyncIterator[bytes]:
        yield b"x" * 8192  # below the buffer: nothing written yet, so only the in-use mark spares the file
        os.utime(parts.path(UID), (1_000_000, 1_000_000))
        seen.append(parts.stale(60))
        yield b"y"

    await parts.append(UID, 0, watched(), limit=None, checksum=None)
    assert seen == [[]]
    os.utime(parts.path(UID), (1_000_000, 1_000_000))
    assert parts.stale(60) == [UID]


def test_leftover_concatenation_temporaries_are_removed_once_old(tmp_path: Path) -> None:
    """A concatenation killed midway leaves `<id>.concat` (the merged file is only renamed into place at the end):
    never valid, removed once unwritten for the age; a young one (a concatenation running now) is kept."""
    parts = PartFiles(tmp_path)
    old_id, young_id = "aa" + "1" * 30, "bb" + "2" * 30
    for upload_id in (old_id, young_id):
        parts.create(upload_id)
    old_tmp = parts.path(old_id).with_suffix(".concat")
    young_tmp = parts.path(young_id).with_suffix(".concat")
    stray = tmp_path / "aa" / "notes.concat"  # not an upload id: not ours to remove
    for path in (old_tmp, young_tmp, stray):
        path.write_bytes(b"partial merge")
    for path in (old_tmp, stray, parts.path(old_id)):
        os.utime(path, (1_000_000, 1_000_000))
    assert parts.remove_stale_temporaries(3600) == 1
    assert not old_tmp.exists()
    assert young_tmp.exists() and stray.exists() and parts.path(old_id).exists()  # part files: not this sweep's
    assert PartFiles(tmp_path / "missing").remove_stale_temporaries(0) == 0


async def test_a_whole_body_is_handed_over_in_the_writer_thread(tmp_path: Path) -> None:
    parts = PartFiles(tmp_path)
    data = os.urandom(3000)
    seen: list[tuple[Path, str, bytes]] = []
    threads: list[threading.Thread] = []

    def complete(path: Path, sha256: str) -> str:
        seen.append((path, sha256, path.read_bytes()))
        threads.append(threading.current_thread())
        return "handed"

    result = await parts.append("b" * 32, 0, _body(data), limit=len(data), checksum=None, complete=complete)
    assert result.written == len(data) and result.completed == "handed"
    assert seen == [(parts.path("b" * 32), hashlib.sha256(data).hexdigest(), data)]
    assert threads[0] is not threading.main_thread()  # not the event loop's
    short = await parts.append("c" * 32, 0, _body(data[:10]), limit=len(data), checksum=None, complete=complete)
    assert short.completed is None and len(seen) == 1  # not whole: no hand-over


async def test_a_cancelled_hand_over_never_truncates_the_file_it_hands_over(tmp_path: Path) -> None:
    """Cancelling the request while the writer's thread hands the file over must not cut the file under it: by then
    it may be (about to be) a second name of the stored file."""
    parts = PartFiles(tmp_path)
    data = os.urandom(5000)
    target = tmp_path / "stored.bin"
    entered, release = threading.Event(), threading.Event()

    def complete(path: Path, sha256: str) -> None:
        entered.set()
        release.wait(10)
        os.link(path, target)

    appending = parts.append("d" * 32, 0, _body(data), limit=len(data), checksum=None, complete=complete)
    task = asyncio.create_task(appending)
    assert await asyncio.to_thread(entered.wait, 10)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.sleep(0.2)  # what the cancelled append does next runs now
    release.set()
    for _ in range(100):
        if target.exists():
            break
        await asyncio.sleep(0.05)
    assert target.read_bytes() == data


def _no_rereads(monkeypatch: pytest.MonkeyPatch) -> None:
    def reread(path: Path, algorithm: str) -> str:
        raise AssertionError(f"{path.name} was read again for its {algorithm}")

    monkeypatch.setattr(partfile, "file_digest", reread)


async def test_rejected_bodies_leave_the_running_hash_whole(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A 460 or an over-long body is cut away again; the bytes before it are still hashed, so completion needs no
    second read of the whole file."""
    parts = PartFiles(tmp_path, buffer_size=64)
    a, b = os.urandom(1000), os.urandom(500)
    await parts.append(UID, 0, _body(a), limit=None, checksum=None)
    wrong = Checksum("sha1", hashlib.sha1(b"other", usedforsecurity=False).digest())
    assert not (await parts.append(UID, 1000, _body(b), limit=None, checksum=wrong)).checksum_ok
    with pytest.raises(BodyTooLong):
        await parts.append(UID, 1000, _body(b, b), limit=600, checksum=None)
    await parts.append(UID, 1000, _body(b), limit=None, checksum=None)
    _no_rereads(monkeypatch)
    assert await parts.sha256(UID, 1500) == hashlib.sha256(a + b).hexdigest()


async def test_a_cancelled_wait_for_the_hash_leaves_it_running(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The whole-file hash is read back after each append is answered; a request cancelled while it waits for that
    hash (its client left) must not stop it for the next one."""
    parts = PartFiles(tmp_path, fsync=False)
    data = [os.urandom(4 << 20) for _ in range(3)]
    for i, block in enumerate(data):
        await parts.append(UID, i * len(block), _body(block), limit=None, checksum=None)
    _no_rereads(monkeypatch)
    waiting = asyncio.create_task(parts.sha256(UID, 12 << 20))
    await asyncio.sleep(0)
    assert not waiting.done()  # the cancel lands while the three chained reads are still under way
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert await parts.sha256(UID, 12 << 20) == hashlib.sha256(b"".join(data)).hexdigest()
    await parts.close()


async def test_a_hash_that_cannot_read_its_bytes_back_falls_back_to_the_file(tmp_path: Path) -> None:
    """The part file shrank before the running hash read an append back: the digest is of what is on disk, never
    one that claims bytes that are gone."""
    parts = PartFiles(tmp_path)
    await parts.append(UID, 0, _body(b"abcdef"), limit=None, checksum=None)
    await parts.append(UID, 6, _body(b"ghij"), limit=None, checksum=None)
    os.truncate(parts.path(UID), 6)  # before the running hash reads "ghij" back (it runs once the loop does)
    assert await parts.sha256(UID, 10) == hashlib.sha256(b"abcdef").hexdigest()
