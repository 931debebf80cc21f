"""The agent's streamed chunk bodies (libs/sdk/uploader.py): `FileSlice` and the chunk's Upload-Checksum."""

import base64
import hashlib
import os
import zlib
from pathlib import Path
from typing import Any

import pytest
from aiohttp.abc import AbstractStreamWriter

from libs.sdk.uploader import FileSlice, checksum_header_of_range


class Collect(AbstractStreamWriter):
    def __init__(self) -> None:
        self.blocks: list[bytes] = []

    async def write(self, chunk: Any) -> None:
        self.blocks.append(bytes(chunk))

    async def write_eof(self, chunk: bytes = b"") -> None:
        pass

    async def drain(self) -> None:
        pass

    def enable_compression(self, encoding: str = "deflate", strategy: int | None = None) -> None:
        pass

    def enable_chunking(self) -> None:
        pass

    async def write_headers(self, status_line: str, headers: Any) -> None:
        pass

    def send_headers(self) -> None:
        pass


@pytest.fixture
def data_file(tmp_path: Path) -> tuple[Path, bytes]:
    data = os.urandom(10_000)
    path = tmp_path / "f.bin"
    path.write_bytes(data)
    return path, data


@pytest.mark.parametrize(("offset", "length", "piece"), [(0, 10_000, 7), (123, 4567, 1000), (9_999, 1, 4), (0, 0, 8)])
async def test_file_slice_streams_exactly_its_bytes_in_bounded_pieces(
    data_file: tuple[Path, bytes], offset: int, length: int, piece: int
) -> None:
    path, data = data_file
    with path.open("rb") as fh:
        body = FileSlice(fh.fileno(), offset, length, piece=piece)
        assert body.size == length
        for _ in range(2):  # readable again (a redirect re-sends it)
            sink = Collect()
            await body.write_with_length(sink, None)
            assert b"".join(sink.blocks) == data[offset : offset + length]
            assert all(len(b) <= piece for b in sink.blocks)
        sink = Collect()
        await body.write_with_length(sink, length // 2)
        assert b"".join(sink.blocks) == data[offset : offset + length // 2]


async def test_file_slice_and_checksum_refuse_a_file_that_shrank(data_file: tuple[Path, bytes]) -> None:
    path, _ = data_file
    with path.open("rb") as fh:
        body = FileSlice(fh.fileno(), 5000, 5000, piece=1000)
        os.truncate(path, 8000)
        with pytest.raises(OSError, match="2000 bytes early"):
            await body.write_with_length(Collect(), None)
        with pytest.raises(OSError, match="early"):
            checksum_header_of_range(fh.fileno(), 5000, 5000)


@pytest.mark.parametrize("algorithm", ["sha1", "crc32"])
def test_chunk_checksum_is_that_of_the_slice(data_file: tuple[Path, bytes], algorithm: str) -> None:
    path, data = data_file
    with path.open("rb") as fh:
        for offset, length in ((0, 10_000), (3, 2_000_000 // 1000), (9_000, 1000)):
            piece = data[offset : offset + length]
            if algorithm == "crc32":  # tus clients send the CRC as 4 big-endian bytes
                expected = zlib.crc32(piece).to_bytes(4, "big")
            else:
                expected = hashlib.sha1(piece, usedforsecurity=False).digest()
            header = checksum_header_of_range(fh.fileno(), offset, length, algorithm)
            assert header == f"{algorithm} " + base64.b64encode(expected).decode()
