"""Checksum algorithms by name, hashlib's and CRC-32, behind hashlib's `update`/`digest` interface.

CRC-32 is for transport integrity only (tus `Upload-Checksum: crc32`): it catches bytes damaged in transit, not
bytes forged, so a whole file is checked end to end by a hash when the client supplies one (the agent always does).
isal computes it more than 20 times faster than sha1 (docs/benchmarks.md, Upload, ninth session).
"""

from __future__ import annotations

import hashlib
from typing import Any

from isal import isal_zlib


class Crc32:
    """CRC-32 (the zlib / IEEE 802.3 polynomial) as a hasher; `digest()` is the value as 4 big-endian bytes, the
    form tus clients base64-encode into `Upload-Checksum`."""

    name = "crc32"
    digest_size = 4

    def __init__(self, data: bytes = b"") -> None:
        self._value = isal_zlib.crc32(data)

    def update(self, data: Any) -> None:
        self._value = isal_zlib.crc32(data, self._value)

    def digest(self) -> bytes:
        return self._value.to_bytes(4, "big")

    def hexdigest(self) -> str:
        return self.digest().hex()


def new_hasher(algorithm: str) -> Any:
    """A fresh hasher for `algorithm` ('crc32' or any hashlib name); ValueError for an unknown one."""
    if algorithm == "crc32":
        return Crc32()
    return hashlib.new(algorithm, usedforsecurity=False)
