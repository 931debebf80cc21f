"""Binary codecs for Illumina base-call files: read AND write (the simulator writes them).

Layouts (all little-endian) are documented in /work/shared/reference/illumina-run-formats.md
sections 3-5. Base calls are handled as "BCL bytes" everywhere: bits 0-1 base (A,C,G,T),
bits 2-7 Phred quality; a byte whose quality bits are 0 is a no-call (N). CBCL nibbles are
converted to BCL bytes on read (quality bin -> Phred through the header table).

Readers take ``bytes`` plus a ``path`` used only in error messages; streaming readers
(``BclStream``, ``CbclTileStream``) read a tile chunk by chunk so memory is bounded by the chunk.
"""

from __future__ import annotations

import functools
import os
import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, cast

import numpy as np
import numpy.typing as npt
from isal import igzip as _igzip_mod
from isal import isal_zlib as _isal_zlib_mod

from .errors import BaseCallFileError

U8 = npt.NDArray[np.uint8]
F32 = npt.NDArray[np.float32]
BOOL = npt.NDArray[np.bool_]

FILTER_VERSION = 3

# isal ships no type hints: one typed view of it here
igzip: Any = _igzip_mod
isal_zlib: Any = _isal_zlib_mod
GZIP_ERRORS: tuple[type[BaseException], ...] = (
    zlib.error,
    cast(type[BaseException], isal_zlib.error),
    EOFError,
)
GZIP_IO_ERRORS: tuple[type[BaseException], ...] = (OSError, *GZIP_ERRORS)


# ----------------------------------------------------------------------------------------- BCL


def encode_bcl(calls: U8) -> bytes:
    """Uncompressed .bcl: uint32 cluster count then one byte per cluster."""
    calls = np.ascontiguousarray(calls, dtype=np.uint8)
    return struct.pack("<I", calls.size) + calls.tobytes()


def decode_bcl(data: bytes, *, path: str | Path = "<bcl>") -> U8:
    if len(data) < 4:
        raise BaseCallFileError(f"truncated BCL: {len(data)} bytes, no header", path=path)
    (n,) = struct.unpack_from("<I", data)
    if len(data) != 4 + n:
        raise BaseCallFileError(f"BCL header says {n} clusters but the file holds {len(data) - 4}", path=path)
    return np.frombuffer(data, dtype=np.uint8, offset=4).copy()


def gzip_bytes(data: bytes, level: int = 1) -> bytes:
    out: bytes = igzip.compress(data, compresslevel=min(max(level, 0), 3))
    return out


def read_bcl_file(path: Path) -> U8:
    """Read a whole .bcl or .bcl.gz file."""
    try:
        raw = path.read_bytes()
        if path.name.endswith(".gz"):
            raw = igzip.decompress(raw)
    except OSError as e:
        raise BaseCallFileError(f"cannot read: {e.strerror or e}", path=path) from None
    except GZIP_ERRORS as e:
        raise BaseCallFileError(f"corrupt gzip stream ({e})", path=path) from None
    return decode_bcl(raw, path=path)


class BclStream:
    """Reads a per-tile .bcl/.bcl.gz file in chunks of clusters (memory bounded by the chunk)."""

    def __init__(self, path: Path, *, display: str | None = None) -> None:
        self.path = path
        self.display = display or str(path)
        try:
            self._f: BinaryIO = igzip.open(path, "rb") if path.name.endswith(".gz") else open(path, "rb")
        except OSError as e:
            raise BaseCallFileError(f"cannot open: {e.strerror or e}", path=self.display) from None
        head = self._read_exact(4, "header")
        (self.clusters,) = struct.unpack("<I", head)
        self._left = self.clusters

    def _read_exact(self, n: int, what: str) -> bytes:
        try:
            data = self._f.read(n)
        except GZIP_IO_ERRORS as e:
            raise BaseCallFileError(
                f"corrupt or truncated file while reading {what} ({e})", path=self.display
            ) from None
        if len(data) != n:
            raise BaseCallFileError(f"truncated: expected {n} more bytes of {what}, got {len(data)}", path=self.display)
        return data

    def read(self, n: int) -> U8:
        if n > self._left:
            raise BaseCallFileError(f"asked for {n} clusters, only {self._left} left", path=self.display)
        self._left -= n
        return np.frombuffer(self._read_exact(n, "base calls"), dtype=np.uint8)

    def finish(self) -> None:
        """Check there is nothing after the last cluster, then close."""
        try:
            extra = self._f.read(1)
        except GZIP_IO_ERRORS as e:
            raise BaseCallFileError(f"corrupt file trailer ({e})", path=self.display) from None
        finally:
            self._f.close()
        if extra:
            raise BaseCallFileError(
                f"more data than the {self.clusters} clusters the header declares", path=self.display
            )

    def close(self) -> None:
        self._f.close()


# -------------------------------------------------------------------------------------- filter


def encode_filter(pf: BOOL | Sequence[bool], *, version: int = FILTER_VERSION) -> bytes:
    arr = np.asarray(pf, dtype=np.uint8)
    return struct.pack("<III", 0, version, arr.size) + arr.tobytes()


def decode_filter(data: bytes, *, path: str | Path = "<filter>") -> BOOL:
    if len(data) < 12:
        raise BaseCallFileError(f"truncated filter file: {len(data)} bytes, header needs 12", path=path)
    zero, version, n = struct.unpack_from("<III", data)
    if zero != 0 or version != FILTER_VERSION:
        raise BaseCallFileError(f"unsupported filter version {version} (expected {FILTER_VERSION})", path=path)
    if len(data) != 12 + n:
        raise BaseCallFileError(f"filter header says {n} clusters but the file holds {len(data) - 12}", path=path)
    flags = np.frombuffer(data, dtype=np.uint8, offset=12)
    if flags.size and int(flags.max()) > 1:
        bad = int(np.argmax(flags > 1))
        raise BaseCallFileError(f"invalid PF flag 0x{int(flags[bad]):02x} at cluster {bad}", path=path)
    return flags.astype(bool)


# ---------------------------------------------------------------------------------- positions


def encode_locs(xy: F32) -> bytes:
    xy = np.ascontiguousarray(xy, dtype="<f4").reshape(-1, 2)
    return struct.pack("<IfI", 1, 1.0, xy.shape[0]) + xy.tobytes()


def decode_locs(data: bytes, *, path: str | Path = "<locs>") -> F32:
    """(n, 2) float32 array of x, y pixel positions."""
    if len(data) < 12:
        raise BaseCallFileError(f"truncated locs file: {len(data)} bytes, header needs 12", path=path)
    _one, _fone, n = struct.unpack_from("<IfI", data)
    if len(data) != 12 + 8 * n:
        raise BaseCallFileError(f"locs header says {n} clusters but the file holds {(len(data) - 12) / 8:g}", path=path)
    return np.frombuffer(data, dtype="<f4", offset=12).reshape(n, 2).astype(np.float32)


CLOCS_BLOCK = 25
CLOCS_IMAGE_WIDTH = 2048
CLOCS_BINS_PER_ROW = (CLOCS_IMAGE_WIDTH + CLOCS_BLOCK - 1) // CLOCS_BLOCK  # 82


def clocs_order(xy: F32) -> npt.NDArray[np.intp]:
    """Cluster order a .clocs file imposes: by bin (row-major), stable within a bin."""
    bins = _clocs_bins(xy)
    return np.argsort(bins, kind="stable")


def _clocs_bins(xy: F32) -> npt.NDArray[np.int64]:
    col = (xy[:, 0] // CLOCS_BLOCK).astype(np.int64)
    row = (xy[:, 1] // CLOCS_BLOCK).astype(np.int64)
    if col.size and (col.min() < 0 or col.max() >= CLOCS_BINS_PER_ROW or row.min() < 0):
        raise ValueError("position outside the clocs image")
    return row * CLOCS_BINS_PER_ROW + col


def encode_clocs(xy: F32) -> bytes:
    """Encode positions (which must already be in clocs order) quantised to 0.1 px."""
    xy64 = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
    bins = _clocs_bins(xy64.astype(np.float32))
    if bins.size and np.any(np.diff(bins) < 0):
        raise ValueError("positions are not in clocs bin order")
    nbins = int(bins.max()) + 1 if bins.size else 0
    counts = np.bincount(bins, minlength=nbins)
    if counts.size and counts.max() > 255:
        raise ValueError("more than 255 clusters in one clocs bin")
    # positions are quantised to 0.1 px; round (not floor) so decode -> encode is exact in float32
    dx = np.clip(np.rint((xy64[:, 0] - (bins % CLOCS_BINS_PER_ROW) * CLOCS_BLOCK) * 10), 0, 249).astype(np.uint8)
    dy = np.clip(np.rint((xy64[:, 1] - (bins // CLOCS_BINS_PER_ROW) * CLOCS_BLOCK) * 10), 0, 249).astype(np.uint8)
    out = bytearray(struct.pack("<BI", 1, nbins))
    pairs = np.stack([dx, dy], axis=1).tobytes()
    pos = 0
    for c in counts.tolist():
        out.append(c)
        out += pairs[pos : pos + 2 * c]
        pos += 2 * c
    return bytes(out)


def decode_clocs(data: bytes, *, path: str | Path = "<clocs>") -> F32:
    if len(data) < 5:
        raise BaseCallFileError("truncated clocs file: no header", path=path)
    _version, nbins = struct.unpack_from("<BI", data)
    pos = 5
    size = len(data)
    counts: list[int] = []
    for b in range(nbins):  # sequential walk over the bin counts only; pairs are gathered below
        if pos >= size:
            raise BaseCallFileError(f"truncated clocs file in bin {b} of {nbins}", path=path)
        c = data[pos]
        counts.append(c)
        pos += 1 + 2 * c
    if pos > size:
        raise BaseCallFileError(f"truncated clocs file in bin {nbins - 1} of {nbins}", path=path)
    if pos != size:
        raise BaseCallFileError(f"{size - pos} unexpected bytes after the last clocs bin", path=path)
    cnt = np.array(counts, dtype=np.int64)
    total = int(cnt.sum())
    if total == 0:
        return np.zeros((0, 2), dtype=np.float32)
    # byte offset of each bin's first pair: 5 + bins before * 1 + pairs before * 2 + 1
    pairs_before = np.concatenate([[0], np.cumsum(cnt)[:-1]])
    first = 5 + np.arange(nbins, dtype=np.int64) + 2 * pairs_before + 1
    bin_of = np.repeat(np.arange(nbins, dtype=np.int64), cnt)
    k = np.arange(total, dtype=np.int64) - np.repeat(pairs_before, cnt)
    at = np.repeat(first, cnt) + 2 * k
    raw = np.frombuffer(data, dtype=np.uint8)
    dx = raw[at].astype(np.float32) / np.float32(10)
    dy = raw[at + 1].astype(np.float32) / np.float32(10)
    x = (bin_of % CLOCS_BINS_PER_ROW * CLOCS_BLOCK).astype(np.float32) + dx
    y = (bin_of // CLOCS_BINS_PER_ROW * CLOCS_BLOCK).astype(np.float32) + dy
    return np.stack([x, y], axis=1).astype(np.float32)


def fastq_coordinates(xy: F32) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """CASAVA 1.8 / bcl2fastq convention: X = round(10x + 1000), Y = round(10y + 1000), half up."""
    xy64 = np.asarray(xy, dtype=np.float64)
    x = np.floor(xy64[:, 0] * 10 + 1000 + 0.5).astype(np.int64)
    y = np.floor(xy64[:, 1] * 10 + 1000 + 0.5).astype(np.int64)
    return x, y


def read_positions(path: Path, *, display: str | None = None) -> F32:
    disp = display or str(path)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise BaseCallFileError(f"cannot read: {e.strerror or e}", path=disp) from None
    return decode_clocs(data, path=disp) if path.name.endswith(".clocs") else decode_locs(data, path=disp)


# ---------------------------------------------------------------------------------------- CBCL


@dataclass(frozen=True)
class CbclTile:
    tile: int
    clusters: int  # clusters in the tile (the filter file's count)
    uncompressed: int
    compressed: int


@dataclass(frozen=True)
class CbclHeader:
    version: int
    header_size: int
    bits_per_base: int
    bits_per_quality: int
    bins: tuple[tuple[int, int], ...]
    tiles: tuple[CbclTile, ...]
    pf_excluded: bool

    def offsets(self) -> dict[int, int]:
        """Tile number -> absolute offset of its compressed block."""
        out, pos = {}, self.header_size
        for t in self.tiles:
            out[t.tile] = pos
            pos += t.compressed
        return out

    def quality_table(self) -> U8:
        """Bin index -> Phred, as a 4-entry table."""
        table = np.zeros(1 << self.bits_per_quality, dtype=np.uint8)
        for idx, q in self.bins:
            if 0 <= idx < table.size:
                table[idx] = min(q, 63)
        return table


NOVASEQ_BINS = ((0, 2), (1, 12), (2, 23), (3, 37))


def pack_nibbles(calls: U8, bins: Sequence[tuple[int, int]] = NOVASEQ_BINS) -> U8:
    """BCL bytes -> CBCL nibbles packed two per byte (first cluster in the low nibble).

    Each call's quality is mapped to the nearest bin of ``bins`` (excluding bin 0, which is reserved
    for no-calls); a no-call becomes nibble 0.
    """
    calls = np.asarray(calls, dtype=np.uint8)
    q = calls >> 2
    base = calls & 3
    bin_idx = np.array([b for b, _ in bins if b != 0], dtype=np.uint8)
    bin_q = np.array([p for b, p in bins if b != 0], dtype=np.int16)
    nearest = bin_idx[np.abs(q[:, None].astype(np.int16) - bin_q[None, :]).argmin(axis=1)]
    nib = np.where(q == 0, 0, (nearest << 2) | base).astype(np.uint8)
    if nib.size % 2:
        nib = np.append(nib, np.uint8(0))
    return (nib[0::2] | (nib[1::2] << 4)).astype(np.uint8)


def nibble_table(table: U8) -> U8:
    """(256, 2) lookup: packed byte -> BCL bytes of its low and high nibble."""
    nib = np.arange(16, dtype=np.uint8)
    qbin = nib >> 2
    one = np.where(qbin == 0, 0, (table[qbin] << 2) | (nib & 3)).astype(np.uint8)
    b = np.arange(256)
    return np.stack([one[b & 0x0F], one[b >> 4]], axis=1).astype(np.uint8)


@functools.lru_cache(maxsize=64)
def _cached_nibble_table(bins: tuple[tuple[int, int], ...]) -> U8:
    table = np.zeros(4, dtype=np.uint8)
    for idx, q in bins:
        if 0 <= idx < 4:
            table[idx] = min(q, 63)
    lut = nibble_table(table)
    lut.setflags(write=False)
    return lut


def unpack_nibbles(packed: U8, n: int, table: U8, lut: U8 | None = None) -> U8:
    """CBCL packed nibbles -> BCL bytes for the first ``n`` clusters (quality bin 0 = no-call)."""
    lut = nibble_table(table) if lut is None else lut
    lut16 = np.ascontiguousarray(lut).view(np.uint16).reshape(256)
    out: U8 = np.take(lut16, packed).view(np.uint8)[:n]
    return out


def encode_cbcl(
    tiles: Sequence[tuple[int, int, U8]],
    *,
    bins: Sequence[tuple[int, int]] = NOVASEQ_BINS,
    pf_excluded: bool = False,
    level: int = 1,
) -> bytes:
    """Build a CBCL file. ``tiles`` = (tile number, clusters in tile, BCL bytes of the stored clusters)."""
    blocks, records = [], []
    for tile, clusters, calls in tiles:
        raw = pack_nibbles(calls, bins).tobytes()
        comp = gzip_bytes(raw, level)
        blocks.append(comp)
        records.append(struct.pack("<IIII", tile, clusters, len(raw), len(comp)))
    body = struct.pack("<BBI", 2, 2, len(bins)) + b"".join(struct.pack("<II", i, q) for i, q in bins)
    body += struct.pack("<I", len(tiles)) + b"".join(records) + struct.pack("<B", 1 if pf_excluded else 0)
    header_size = 6 + len(body)
    return struct.pack("<HI", 1, header_size) + body + b"".join(blocks)


def parse_cbcl_header(head: bytes, *, path: str | Path = "<cbcl>") -> CbclHeader:
    """Parse a CBCL header from (at least) its first ``header_size`` bytes."""
    try:
        version, header_size, bpb, bpq, nbins = struct.unpack_from("<HIBBI", head)
        pos = 12
        bins = tuple(struct.unpack_from("<II", head, pos + 8 * i) for i in range(nbins))
        pos += 8 * nbins
        (ntiles,) = struct.unpack_from("<I", head, pos)
        pos += 4
        tiles = tuple(CbclTile(*struct.unpack_from("<IIII", head, pos + 16 * i)) for i in range(ntiles))
        pos += 16 * ntiles
        (pf,) = struct.unpack_from("<B", head, pos)
        pos += 1
    except struct.error:
        raise BaseCallFileError("truncated CBCL header", path=path) from None
    if version != 1:
        raise BaseCallFileError(f"unsupported CBCL version {version}", path=path)
    if bpb != 2 or bpq != 2:
        raise BaseCallFileError(f"unsupported CBCL bits per base/quality {bpb}/{bpq} (expected 2/2)", path=path)
    if pos != header_size:
        raise BaseCallFileError(f"CBCL header size field {header_size} does not match its content ({pos})", path=path)
    return CbclHeader(version, header_size, bpb, bpq, tuple((int(a), int(b)) for a, b in bins), tiles, bool(pf))


def read_cbcl_header(f: BinaryIO, *, path: str | Path) -> CbclHeader:
    first = f.read(6)
    if len(first) < 6:
        raise BaseCallFileError("truncated CBCL header", path=path)
    (_v, size) = struct.unpack("<HI", first)
    if size > 64 * 1024 * 1024:
        raise BaseCallFileError(f"implausible CBCL header size {size}", path=path)
    return parse_cbcl_header(first + f.read(size - 6), path=path)


def decode_cbcl(data: bytes, *, path: str | Path = "<cbcl>") -> tuple[CbclHeader, dict[int, U8]]:
    """Whole-file decode: header and, per tile, the BCL bytes of the stored clusters."""
    header = parse_cbcl_header(data, path=path)
    table = header.quality_table()
    out: dict[int, U8] = {}
    for t, off in zip(header.tiles, header.offsets().values(), strict=True):
        block = data[off : off + t.compressed]
        if len(block) != t.compressed:
            raise BaseCallFileError(f"truncated CBCL: tile {t.tile} block is cut short", path=path)
        try:
            raw = igzip.decompress(block)
        except GZIP_IO_ERRORS as e:
            raise BaseCallFileError(f"corrupt CBCL block for tile {t.tile} ({e})", path=path) from None
        if len(raw) != t.uncompressed:
            raise BaseCallFileError(
                f"tile {t.tile}: block decompresses to {len(raw)} bytes, header says {t.uncompressed}",
                path=path,
            )
        out[t.tile] = unpack_nibbles(np.frombuffer(raw, dtype=np.uint8), len(raw) * 2, table)
    return header, out


class CbclTileStream:
    """Streams the stored clusters of one tile of one CBCL file, chunk by chunk."""

    def __init__(
        self,
        path: Path,
        tile: int,
        *,
        stored: int,
        display: str | None = None,
        pf_count: int | None = None,
        clusters: int | None = None,
    ) -> None:
        """``stored``: clusters in the block; or give ``clusters`` (the tile's filter count) and ``pf_count``
        and the header's PF-excluded flag decides (and the tile record's count is checked)."""
        self.display = display or str(path)
        try:
            self._f = open(path, "rb")
        except OSError as e:
            raise BaseCallFileError(f"cannot open: {e.strerror or e}", path=self.display) from None
        try:
            header = read_cbcl_header(self._f, path=self.display)
        except BaseException:
            self._f.close()
            raise
        self.header = header
        rec = next((t for t in header.tiles if t.tile == tile), None)
        if rec is None:
            self._f.close()
            raise BaseCallFileError(f"tile {tile} is missing from the CBCL tile records", path=self.display)
        if clusters is not None:
            if rec.clusters != clusters:
                self._f.close()
                raise BaseCallFileError(
                    f"tile {tile} has {rec.clusters} clusters but its filter file has {clusters}", path=self.display
                )
            stored = pf_count if header.pf_excluded and pf_count is not None else clusters
        if rec.uncompressed != (stored + 1) // 2:
            self._f.close()
            raise BaseCallFileError(
                f"tile {tile}: block holds {rec.uncompressed * 2} clusters' nibbles, expected {stored} clusters",
                path=self.display,
            )
        self.record = rec
        self._f.seek(header.offsets()[tile])
        self._comp_left = rec.compressed
        self._dec = isal_zlib.decompressobj(31)
        self._buf = np.zeros(0, dtype=np.uint8)  # decoded, not yet returned BCL bytes
        self._left = stored
        self._table = header.quality_table()
        self._lut = _cached_nibble_table(header.bins)
        self._raw_total = 0

    def _fill(self, need: int) -> None:
        parts = [self._buf]
        have = self._buf.size
        while have < need:
            if self._dec.unconsumed_tail:
                chunk = self._dec.unconsumed_tail
            else:
                if self._comp_left <= 0:
                    raise BaseCallFileError(f"tile {self.record.tile}: block ends early", path=self.display)
                chunk = self._f.read(min(self._comp_left, 1 << 20))
                if not chunk:
                    raise BaseCallFileError(
                        f"truncated CBCL: tile {self.record.tile} block is cut short", path=self.display
                    )
                self._comp_left -= len(chunk)
            try:
                raw = self._dec.decompress(chunk, 1 << 22)
            except GZIP_ERRORS as e:
                raise BaseCallFileError(
                    f"corrupt CBCL block for tile {self.record.tile} ({e})", path=self.display
                ) from None
            self._raw_total += len(raw)
            if self._raw_total > self.record.uncompressed:
                raise BaseCallFileError(
                    f"tile {self.record.tile}: block decompresses to more than {self.record.uncompressed} bytes",
                    path=self.display,
                )
            calls = unpack_nibbles(np.frombuffer(raw, dtype=np.uint8), len(raw) * 2, self._table, self._lut)
            parts.append(calls)
            have += calls.size
        self._buf = np.concatenate(parts) if len(parts) > 1 else parts[0]

    def read(self, n: int) -> U8:
        if n > self._left:
            raise BaseCallFileError(f"asked for {n} clusters, only {self._left} left", path=self.display)
        self._fill(n)
        out, self._buf = self._buf[:n], self._buf[n:]
        self._left -= n
        return out

    def close(self) -> None:
        self._f.close()


# ------------------------------------------------------------ NextSeq 500/550: .bcl.bgzf + .bci
#
# One BGZF file per lane and cycle (`L00N/<cccc>.bcl.bgzf`) holds the BCL stream of every tile
# of the lane: uint32 total clusters, then one byte per cluster, tile after tile in the order of
# `s_<lane>.bci` (records of uint32 tile number + uint32 cluster count, until the end of the
# file). A tile's bytes start at 4 + the counts of the tiles before it. The lane-level
# `s_<lane>.filter` and `s_<lane>.locs` have the usual layouts over the same cluster order.

BGZF_MAX_INPUT = 0xFF00  # uncompressed bytes per block, as htslib writes
BGZF_EOF = bytes.fromhex("1f8b08040000000000ff0600424302001b0003000000000000000000")
_BGZF_HEAD = struct.Struct("<4sIBBH")  # magic+CM+FLG, MTIME, XFL, OS, XLEN


def encode_bci(tiles: Sequence[tuple[int, int]]) -> bytes:
    """`s_<lane>.bci`: (tile number, clusters) as two uint32 per tile, in file order."""
    return b"".join(struct.pack("<II", t, n) for t, n in tiles)


def decode_bci(data: bytes, *, path: str | Path = "<bci>") -> list[tuple[int, int]]:
    if not data:
        raise BaseCallFileError("empty tile index: no tile records", path=path)
    if len(data) % 8:
        raise BaseCallFileError(
            f"truncated tile index: {len(data)} bytes is not a whole number of 8-byte tile records", path=path
        )
    recs = [(int(t), int(n)) for t, n in struct.iter_unpack("<II", data)]
    seen: set[int] = set()
    for t, _ in recs:
        if t in seen:
            raise BaseCallFileError(f"tile {t} is listed twice", path=path)
        seen.add(t)
    return recs


def bci_offsets(tiles: Sequence[tuple[int, int]]) -> dict[int, tuple[int, int]]:
    """tile -> (first cluster of the tile within the lane, clusters of the tile)."""
    out: dict[int, tuple[int, int]] = {}
    start = 0
    for t, n in tiles:
        out[t] = (start, n)
        start += n
    return out


def _bgzf_block(payload: bytes, level: int) -> bytes:
    cdata: bytes = isal_zlib.compress(payload, level=min(max(level, 0), 3), wbits=-15)
    if len(cdata) + 26 > 65536:  # incompressible: a stored block always fits
        cdata = zlib.compress(payload, level=0, wbits=-15)
    bsize = len(cdata) + 25
    head = b"\x1f\x8b\x08\x04" + struct.pack("<IBBHBBHH", 0, 0, 0xFF, 6, 66, 67, 2, bsize)
    return head + cdata + struct.pack("<II", isal_zlib.crc32(payload), len(payload))


def bgzf_bytes(data: bytes, level: int = 1, *, block_size: int | None = None) -> bytes:
    """BGZF (blocked gzip as samtools/htslib write it), with the empty EOF block at the end.

    ``block_size`` (uncompressed bytes per block, default `BGZF_MAX_INPUT` read at call time) is
    only lowered by tests, so that small files still have many blocks.
    """
    step = min(block_size or BGZF_MAX_INPUT, BGZF_MAX_INPUT)
    blocks = [_bgzf_block(data[i : i + step], level) for i in range(0, len(data), step)]
    return b"".join(blocks) + BGZF_EOF


def _bgzf_header(f: BinaryIO, coff: int, path: str) -> tuple[int, int] | None:
    """Parse one block header at ``coff``: (total block size, header length), None at end of file."""
    head = f.read(12)
    if not head:
        return None
    if len(head) < 12:
        raise BaseCallFileError(f"truncated BGZF block header at byte {coff}", path=path)
    magic, _mtime, _xfl, _os, xlen = _BGZF_HEAD.unpack(head)
    if magic[:3] != b"\x1f\x8b\x08" or not magic[3] & 4:
        raise BaseCallFileError(f"not a BGZF block at byte {coff} (gzip magic or extra field missing)", path=path)
    extra = f.read(xlen)
    if len(extra) < xlen:
        raise BaseCallFileError(f"truncated BGZF block header at byte {coff}", path=path)
    pos = 0
    while pos + 4 <= xlen:
        si1, si2, slen = extra[pos], extra[pos + 1], struct.unpack_from("<H", extra, pos + 2)[0]
        if si1 == 66 and si2 == 67 and slen == 2 and pos + 6 <= xlen:
            return struct.unpack_from("<H", extra, pos + 4)[0] + 1, 12 + xlen
        pos += 4 + slen
    raise BaseCallFileError(f"gzip block at byte {coff} has no BGZF block size (BC) field", path=path)


@functools.lru_cache(maxsize=4096)
def _bgzf_index_cached(path: str, _size: int, _mtime_ns: int, display: str) -> tuple[npt.NDArray[np.int64], ...]:
    coffs: list[int] = []
    uoffs: list[int] = []
    coff = uoff = 0
    with open(path, "rb") as f:
        while True:
            f.seek(coff)
            parsed = _bgzf_header(f, coff, display)
            if parsed is None:
                break
            bsize, _hlen = parsed
            f.seek(coff + bsize - 4)
            tail = f.read(4)
            if len(tail) < 4:
                raise BaseCallFileError(
                    f"truncated BGZF block at byte {coff}: the block size says {bsize} bytes", path=display
                )
            (isize,) = struct.unpack("<I", tail)
            coffs.append(coff)
            uoffs.append(uoff)
            coff += bsize
            uoff += isize
    uoffs.append(uoff)  # total uncompressed size last
    return np.array(coffs, dtype=np.int64), np.array(uoffs, dtype=np.int64)


def bgzf_index(path: Path, *, display: str | None = None) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """(compressed offset of each block, uncompressed offset of each block + the total at the end).

    Read from the block headers and trailers only (no inflating); cached per process and file.
    """
    disp = display or str(path)
    try:
        st = path.stat()
        coffs, uoffs = _bgzf_index_cached(str(path), st.st_size, st.st_mtime_ns, disp)
    except OSError as e:
        raise BaseCallFileError(f"cannot read: {e.strerror or e}", path=disp) from None
    return coffs, uoffs


class BgzfTileStream:
    """One tile's base calls from a lane-wide `<cccc>.bcl.bgzf`, in chunks (seeks to the tile's block)."""

    def __init__(
        self, path: Path, *, start: int, clusters: int, lane_clusters: int, display: str | None = None
    ) -> None:
        self.path = path
        self.display = display or str(path)
        self.clusters = clusters
        coffs, uoffs = bgzf_index(path, display=self.display)
        total = int(uoffs[-1])
        try:
            self._f: BinaryIO = open(path, "rb")
        except OSError as e:
            raise BaseCallFileError(f"cannot open: {e.strerror or e}", path=self.display) from None
        self._coffs = coffs
        self._buf = b""
        self._pos = 0
        try:
            if total < 4:
                raise BaseCallFileError(f"truncated BCL: {total} bytes, no header", path=self.display)
            self._block = 0
            head = self._take(4, "header")
            (declared,) = struct.unpack("<I", head)
            if declared != lane_clusters:
                raise BaseCallFileError(
                    f"header says {declared} clusters but s_<lane>.bci lists {lane_clusters} for the lane",
                    path=self.display,
                )
            if total != 4 + declared:
                raise BaseCallFileError(
                    f"header says {declared} clusters but the file holds {total - 4}", path=self.display
                )
            u = 4 + start
            self._block = max(int(np.searchsorted(uoffs, u, side="right")) - 1, 0)
            self._buf, self._pos = b"", u - int(uoffs[self._block])
        except BaseException:
            self._f.close()
            raise
        self._left = clusters

    def _next_block(self) -> bytes:
        if self._block >= len(self._coffs):
            raise BaseCallFileError("truncated: the file ends inside the tile's base calls", path=self.display)
        coff = int(self._coffs[self._block])
        self._block += 1
        self._f.seek(coff)
        parsed = _bgzf_header(self._f, coff, self.display)
        if parsed is None:  # pragma: no cover - the index said a block is here
            raise BaseCallFileError(f"truncated BGZF block at byte {coff}", path=self.display)
        bsize, hlen = parsed
        body = self._f.read(bsize - hlen)
        if len(body) != bsize - hlen:
            raise BaseCallFileError(f"truncated BGZF block at byte {coff}", path=self.display)
        crc, isize = struct.unpack_from("<II", body, len(body) - 8)
        try:
            data: bytes = isal_zlib.decompress(body[:-8], wbits=-15)
        except GZIP_ERRORS as e:
            raise BaseCallFileError(f"corrupt BGZF block at byte {coff} ({e})", path=self.display) from None
        if len(data) != isize or isal_zlib.crc32(data) != crc:
            raise BaseCallFileError(f"corrupt BGZF block at byte {coff} (CRC or size mismatch)", path=self.display)
        return data

    def _take(self, n: int, what: str) -> bytes:
        parts: list[bytes] = []
        need = n
        while need:
            if self._pos >= len(self._buf):
                self._pos -= len(self._buf)
                self._buf = self._next_block()
                continue
            piece = self._buf[self._pos : self._pos + need]
            self._pos += len(piece)
            need -= len(piece)
            parts.append(piece)
        return b"".join(parts)

    def read(self, n: int) -> U8:
        if n > self._left:
            raise BaseCallFileError(f"asked for {n} clusters, only {self._left} left", path=self.display)
        self._left -= n
        return np.frombuffer(self._take(n, "base calls"), dtype=np.uint8)

    def close(self) -> None:
        self._f.close()


def read_lane_slice(
    path: Path, kind: str, *, start: int, count: int, lane_clusters: int, display: str | None = None
) -> npt.NDArray[Any]:
    """The clusters [start, start+count) of a lane-level `s_<lane>.filter` (bool) or `.locs` ((n, 2) float32).

    Only the header and the slice are read; the header must declare the lane's cluster count and the
    file size must match it.
    """
    disp = display or str(path)
    item = 1 if kind == "filter" else 8
    try:
        with open(path, "rb") as f:
            head = f.read(12)
            if len(head) < 12:
                raise BaseCallFileError(f"truncated {kind} file: {len(head)} bytes, header needs 12", path=disp)
            size = os.fstat(f.fileno()).st_size
            if kind == "filter":
                zero, version, n = struct.unpack("<III", head)
                if zero != 0 or version != FILTER_VERSION:
                    raise BaseCallFileError(
                        f"unsupported filter version {version} (expected {FILTER_VERSION})", path=disp
                    )
            else:
                _one, _fone, n = struct.unpack("<IfI", head)
            if n != lane_clusters:
                raise BaseCallFileError(
                    f"{kind} header says {n} clusters but s_<lane>.bci lists {lane_clusters} for the lane", path=disp
                )
            if size != 12 + item * n:
                raise BaseCallFileError(
                    f"{kind} header says {n} clusters but the file holds {(size - 12) / item:g}", path=disp
                )
            f.seek(12 + item * start)
            data = f.read(item * count)
    except OSError as e:
        raise BaseCallFileError(f"cannot read: {e.strerror or e}", path=disp) from None
    if kind == "filter":
        flags = np.frombuffer(data, dtype=np.uint8)
        if flags.size and int(flags.max()) > 1:
            bad = int(np.argmax(flags > 1))
            raise BaseCallFileError(f"invalid PF flag 0x{int(flags[bad]):02x} at cluster {start + bad}", path=disp)
        return flags.astype(bool)
    return np.frombuffer(data, dtype="<f4").reshape(count, 2).astype(np.float32)
