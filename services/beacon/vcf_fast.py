"""Vectorised parsing of sites-only VCF text for the beacon index (the common case: aggregated VCFs such as
gnomAD-style AC/AN/AF files).  Whole chunks of decompressed text are parsed with numpy: line and tab
offsets, positions, 2-bit packed alleles and INFO AC/AN, without a Python loop per record.

Records the fast path does not handle (multi-allelic, symbolic or breakend ALTs, INFO END/SVTYPE, no
AC/AN, long or non-ACGT alleles, chromosomes outside the served set) are returned as text lines for the
per-record path in ``vcf.py``.  No aiohttp, no pymongo.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

from .alleles import ALT_CODEC, REF_CODEC, VARIANT_TYPE_CODE, AlleleCodec, normalize_chromosome

_TAB, _NL, _SEMI, _COMMA = 9, 10, 59, 44
_LUT: Final = np.full(256, 255, dtype=np.uint8)
for _i, _b in enumerate(b"ACGT"):
    _LUT[_b] = _i
_MAX_DIGITS: Final = 10

U8 = npt.NDArray[np.uint8]
I64 = npt.NDArray[np.int64]


@dataclass(frozen=True)
class FastBatch:
    """Rows of one chromosome parsed by the fast path (single ALT each)."""

    chrom: str
    start: I64
    end: I64
    ref: npt.NDArray[np.uint64]
    alt: npt.NDArray[np.uint64]
    ac: I64
    an: I64
    vtype: U8


@dataclass(frozen=True)
class ChunkResult:
    batches: list[FastBatch]
    leftovers: list[bytes]
    """Lines for the per-record path."""
    records: int
    """Records parsed here (fast rows plus records on contigs the beacon does not serve)."""
    skipped_contigs: int


def parse_chunk(text: bytes) -> ChunkResult:
    """Parse complete data lines (no header lines) of a sites-only VCF; everything the fast path does not
    handle comes back as leftovers (all lines, when the chunk is not 8-column text)."""
    data = np.frombuffer(text, dtype=np.uint8)
    ends = np.flatnonzero(data == _NL)
    n = ends.size
    if n == 0:
        return ChunkResult([], [], 0, 0)
    starts = np.empty(n, dtype=np.int64)
    starts[0] = 0
    starts[1:] = ends[:-1] + 1
    flat_tabs = np.flatnonzero(data == _TAB)
    if flat_tabs.size != 7 * n:
        return ChunkResult([], text.splitlines(keepends=True), 0, 0)
    # Seven tabs per row, each row's tabs inside its own line: every line has exactly 8 columns.
    tabs = flat_tabs.reshape(n, 7)
    if not bool((tabs[:, 6] < ends).all() and (tabs[:, 0] > starts).all()):
        return ChunkResult([], text.splitlines(keepends=True), 0, 0)
    ok = np.ones(n, dtype=bool)
    pos, good = _integers(data, tabs[:, 0] + 1, tabs[:, 1])
    ok &= good
    ref_s, ref_e = tabs[:, 2] + 1, tabs[:, 3]
    alt_s, alt_e = tabs[:, 3] + 1, tabs[:, 4]
    ref, good = _pack(data, ref_s, ref_e, REF_CODEC)
    ok &= good
    alt, good = _pack(data, alt_s, alt_e, ALT_CODEC)  # commas, '<', '[' are not ACGT: rejected here
    ok &= good
    info_s, info_e = tabs[:, 6] + 1, ends
    ac, good = _info_int(data, b"AC=", info_s, info_e)
    ok &= good
    an, good = _info_int(data, b"AN=", info_s, info_e)
    ok &= good
    for key in (b"END=", b"SVTYPE="):
        ok &= ~_info_present(data, key, info_s, info_e)
    chroms = _chromosomes(text, data, starts, tabs[:, 0])
    batches = []
    for name, rows in chroms.items():
        if name is None:
            continue
        sel = rows[ok[rows]]
        if sel.size == 0:
            continue
        lr = ref_e[sel] - ref_s[sel]
        la = alt_e[sel] - alt_s[sel]
        vtype = np.where(la > lr, VARIANT_TYPE_CODE["INS"], VARIANT_TYPE_CODE["DEL"]).astype(np.uint8)
        vtype[(la == lr) & (lr == 1)] = VARIANT_TYPE_CODE["SNP"]
        same = (la == lr) & (lr > 1)
        if bool(same.any()):  # MNP unless only one base differs after trimming: leave to the slow path
            ok[sel[same]] = False
            keep = ~same
            sel, lr, vtype = sel[keep], lr[keep], vtype[keep]
        start = pos[sel] - 1
        batches.append(
            FastBatch(
                chrom=name, start=start, end=start + lr, ref=ref[sel], alt=alt[sel], ac=ac[sel], an=an[sel], vtype=vtype
            )
        )
    skipped_contig = np.zeros(n, dtype=bool)
    for name, rows in chroms.items():
        if name is None:
            skipped_contig[rows] = True
    leftovers = [text[starts[i] : ends[i] + 1] for i in np.flatnonzero(~ok & ~skipped_contig)]
    skipped = int(skipped_contig.sum())
    return ChunkResult(batches, leftovers, int(np.count_nonzero(ok & ~skipped_contig)) + skipped, skipped)


def _integers(data: U8, s: I64, e: I64) -> tuple[I64, npt.NDArray[np.bool_]]:
    length = e - s
    ok = (length > 0) & (length <= _MAX_DIGITS)
    value = np.zeros(s.size, dtype=np.int64)
    for k in range(_MAX_DIGITS):
        active = ok & (k < length)
        if not active.any():
            break
        digit = data[np.where(active, s + k, 0)].astype(np.int64) - 48
        ok &= ~active | ((digit >= 0) & (digit <= 9))
        value = np.where(active, value * 10 + digit, value)
    return value, ok


def _pack(data: U8, s: I64, e: I64, codec: AlleleCodec) -> tuple[npt.NDArray[np.uint64], npt.NDArray[np.bool_]]:
    length = e - s
    ok = (length > 0) & (length <= codec.capacity)
    value = np.zeros(s.size, dtype=np.uint64)
    width = int(length[ok].max()) if ok.any() else 0
    for k in range(width):
        active = ok & (k < length)
        code = _LUT[data[np.where(active, s + k, 0)]]
        ok &= ~active | (code != 255)
        value = np.where(active, (value << np.uint64(2)) | code.astype(np.uint64), value)
    shift = np.uint64(codec.bits - codec.len_bits)
    return (length.astype(np.uint64) << shift) | value, ok


def _key_hits(data: U8, key: bytes, info_s: I64, info_e: I64) -> tuple[I64, I64]:
    """Positions just after ``key`` where it starts an INFO item, and the row each belongs to."""
    cand = np.flatnonzero(data[: data.size - len(key) + 1] == key[0])
    for j in range(1, len(key)):
        cand = cand[data[cand + j] == key[j]]
    prev = data[np.maximum(cand - 1, 0)]
    cand = cand[(prev == _SEMI) | (prev == _TAB)]
    row = np.searchsorted(info_s, cand, side="right") - 1
    inside = (row >= 0) & (cand >= info_s[np.maximum(row, 0)]) & (cand < info_e[np.maximum(row, 0)])
    return cand[inside] + len(key), row[inside]


def _info_present(data: U8, key: bytes, info_s: I64, info_e: I64) -> npt.NDArray[np.bool_]:
    present = np.zeros(info_s.size, dtype=bool)
    _, rows = _key_hits(data, key, info_s, info_e)
    present[rows] = True
    return present


def _info_int(data: U8, key: bytes, info_s: I64, info_e: I64) -> tuple[I64, npt.NDArray[np.bool_]]:
    values = np.zeros(info_s.size, dtype=np.int64)
    ok = np.zeros(info_s.size, dtype=bool)
    at, rows = _key_hits(data, key, info_s, info_e)
    if at.size == 0:
        return values, ok
    delims = np.flatnonzero((data == _SEMI) | (data == _NL))
    stop = delims[np.searchsorted(delims, at)]
    parsed, good = _integers(data, at, stop)
    values[rows] = parsed
    ok[rows] = good
    return values, ok


def _chromosomes(text: bytes, data: U8, starts: I64, chrom_end: I64) -> dict[str | None, I64]:
    """Row indices per served chromosome name (None: contigs the beacon does not serve)."""
    change = np.ones(starts.size, dtype=bool)
    length = chrom_end - starts
    change[1:] = length[1:] != length[:-1]
    width = int(length.max())
    for k in range(width):
        col = data[np.minimum(starts + k, data.size - 1)]
        change[1:] |= (col[1:] != col[:-1]) & (k < length[1:])
    runs = np.flatnonzero(change)
    out: dict[str | None, list[I64]] = {}
    bounds = [*runs.tolist(), starts.size]
    for a, b in itertools.pairwise(bounds):
        raw = text[starts[a] : chrom_end[a]].decode(errors="replace")
        out.setdefault(normalize_chromosome(raw), []).append(np.arange(a, b, dtype=np.int64))
    return {k: np.concatenate(v) for k, v in out.items()}
