"""Vectorised FASTQ record formatting, adapter trimming/masking, and the gzip writer.

Records are assembled as one (clusters x width) byte matrix whose variable-width fields (X/Y
digits, trimmed sequence and quality) are padded with byte 0; dropping the zero bytes of the
flattened matrix yields the FASTQ text in cluster order, with no per-record Python work.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import numpy.typing as npt
from isal import isal_zlib as _isal_zlib

U8 = npt.NDArray[np.uint8]
I64 = npt.NDArray[np.int64]
isal_zlib: Any = _isal_zlib

BASE_CHARS = np.frombuffer(b"ACGT", dtype=np.uint8)
N = ord("N")
HASH = ord("#")


def isal_level(level: int) -> int:
    """Map a zlib-style compression level (0-9, bcl2fastq default 4) to an ISA-L level (0-3).

    ISA-L level 2 stays within 10% of zlib level 4's size on FASTQ (bench/demux.py measures it).
    """
    if level <= 0:
        return 0
    if level <= 2:
        return 1
    if level <= 6:
        return 2
    return 3


_ALL = np.arange(256, dtype=np.uint8)
_NOCALL = (_ALL >> 2) == 0
SEQ_LUT = np.where(_NOCALL, np.uint8(N), BASE_CHARS[_ALL & 3]).astype(np.uint8)
QUAL_LUT = np.where(_NOCALL, np.uint8(HASH), (_ALL >> 2) + np.uint8(33)).astype(np.uint8)
CODE_LUT = np.where(_NOCALL, np.uint8(4), _ALL & 3).astype(np.uint8)


def calls_to_text(calls: U8) -> tuple[U8, U8]:
    """BCL bytes -> ASCII bases and Phred+33 qualities; quality bits 0 = no-call (N, '#')."""
    return SEQ_LUT[calls], QUAL_LUT[calls]


def calls_to_codes(calls: U8) -> U8:
    """BCL bytes -> base codes 0-3, 4 = N."""
    return CODE_LUT[calls]


def digits(values: I64, width: int) -> U8:
    """Right-aligned decimal digits, leading positions 0 (the filler byte)."""
    if values.size and (values.min() < 0 or values.max() >= 10**width):
        raise ValueError("coordinate out of range")
    places = (10 ** np.arange(width - 1, -1, -1, dtype=np.int64))[None, :]
    d = (values[:, None] // places) % 10 + 48
    keep = (values[:, None] >= places) | (places == 1)
    return np.where(keep, d, 0).astype(np.uint8)


def const(text: bytes, n: int) -> U8:
    return np.broadcast_to(np.frombuffer(text, dtype=np.uint8), (n, len(text)))


def assemble(columns: Sequence[U8]) -> tuple[bytes, I64]:
    """Concatenate columns row-wise, drop filler bytes; returns text and record start offsets (n+1)."""
    mat = np.concatenate(columns, axis=1)
    keep = mat != 0
    offsets = np.zeros(mat.shape[0] + 1, dtype=np.int64)
    np.cumsum(keep.sum(axis=1), out=offsets[1:])
    out: bytes = mat[keep].tobytes()
    return out, offsets


@dataclass(frozen=True)
class AdapterSpec:
    adapter: bytes  # ASCII
    stringency: float = 0.9
    min_overlap: int = 1
    min_length: int = 35
    mask_short: int = 22
    behavior: str = "trim"


def find_adapter(seq: U8, spec: AdapterSpec) -> I64:
    """First position where the adapter (or its prefix, at the read end) matches; read length if none.

    Match rule: over the overlap o = min(len(adapter), L - i) >= min_overlap, at least
    stringency * o bases equal (N never equal).
    """
    n, length = seq.shape
    ad = np.frombuffer(spec.adapter, dtype=np.uint8)
    pos = np.full(n, length, dtype=np.int64)
    open_rows = np.ones(n, dtype=bool)
    for i in range(length):
        o = min(ad.size, length - i)
        if o < spec.min_overlap:
            break
        need = math.ceil(spec.stringency * o - 1e-9)
        rows = np.flatnonzero(open_rows)
        if rows.size == 0:
            break
        first = seq[rows, i] == ad[0]
        m = (seq[rows, i : i + o] == ad[None, :o]).sum(axis=1)
        hit = m >= need
        if need >= o:
            hit &= first
        hits = rows[hit]
        pos[hits] = i
        open_rows[hits] = False
    return pos


def apply_adapter(seq: U8, qual: U8, spec: AdapterSpec) -> tuple[U8, U8, I64]:
    """Trim or mask adapters; returns (seq, qual, bases trimmed per read) with 0 filler past the end."""
    n, length = seq.shape
    pos = find_adapter(seq, spec)
    cols = np.arange(length)[None, :]
    min_len = min(spec.min_length, length)
    t = pos[:, None]
    if spec.behavior == "mask":
        out_len = np.full((n, 1), length)
    else:
        out_len = np.maximum(t, min_len)
    short = t < spec.mask_short
    keep = (cols < t) & ~short
    s = np.where(keep, seq, np.uint8(N))
    q = np.where(keep, qual, np.uint8(HASH))
    beyond = cols >= out_len
    s = np.where(beyond, np.uint8(0), s).astype(np.uint8)
    q = np.where(beyond, np.uint8(0), q).astype(np.uint8)
    return s, q, (length - pos).astype(np.int64)


def records(
    prefix: bytes,
    x: I64,
    y: I64,
    umi: U8 | None,
    read_no: int,
    filtered: npt.NDArray[np.bool_],
    index_text: U8 | None,
    seq: U8,
    qual: U8,
) -> tuple[bytes, I64]:
    """FASTQ text: ``@<prefix><x>:<y>[:<umi>] <read>:<Y|N>:0:<index>`` + sequence + ``+`` + quality.

    Returns the text and the offset of each record (n + 1 values).
    """
    n = seq.shape[0]
    if n == 0:
        return b"", np.zeros(1, dtype=np.int64)
    cols: list[U8] = [const(b"@" + prefix, n), digits(x, 7), const(b":", n), digits(y, 7)]
    if umi is not None:
        cols += [const(b":", n), umi]
    cols += [const(f" {read_no}:".encode(), n)]
    cols += [np.where(filtered, np.uint8(ord("Y")), np.uint8(ord("N"))).astype(np.uint8)[:, None]]
    cols += [const(b":0:", n)]
    if index_text is not None:
        cols.append(index_text)
    cols += [const(b"\n", n), seq, const(b"\n+\n", n), qual, const(b"\n", n)]
    return assemble(cols)


class GzipPart:
    """One gzip member written incrementally to a file (ISA-L deflate)."""

    def __init__(self, path: Path, level: int) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._f: BinaryIO = open(path, "wb")
        self._c = isal_zlib.compressobj(level, isal_zlib.DEFLATED, 31)
        self.raw_bytes = 0

    def write(self, data: bytes | memoryview) -> None:
        if data:
            self.raw_bytes += len(data)
            self._f.write(self._c.compress(data))

    def close(self) -> None:
        self._f.write(self._c.flush())
        self._f.close()
