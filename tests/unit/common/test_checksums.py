import hashlib
import zlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from libs.common.checksums import Crc32, new_hasher


def test_crc32_of_the_standard_check_string() -> None:
    # the CRC-32/ISO-HDLC check value every implementation publishes, as 4 big-endian bytes
    assert Crc32(b"123456789").digest() == bytes.fromhex("cbf43926")
    assert Crc32().hexdigest() == "00000000"


@given(st.binary(max_size=4096), st.lists(st.integers(min_value=0, max_value=4096), max_size=6))
def test_crc32_fed_in_pieces_equals_zlib_over_the_whole(data: bytes, cuts: list[int]) -> None:
    hasher = Crc32()
    start = 0
    for cut in sorted(min(c, len(data)) for c in cuts):
        hasher.update(memoryview(data)[start:cut])
        start = cut
    hasher.update(data[start:])
    assert hasher.digest() == zlib.crc32(data).to_bytes(4, "big")


def test_new_hasher_names_crc32_and_hashlib_algorithms() -> None:
    assert isinstance(new_hasher("crc32"), Crc32)
    sha1 = new_hasher("sha1")
    sha1.update(b"abc")
    assert sha1.digest() == hashlib.sha1(b"abc", usedforsecurity=False).digest()
    with pytest.raises(ValueError):
        new_hasher("no-such-algorithm")
