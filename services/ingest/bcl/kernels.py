"""The hot loop of demultiplexing, compiled with numba: base calls -> FASTQ text in one pass.

Pure numpy needs ~6 passes over every output byte (lookup tables for bases and qualities, a row
gather, the record matrix, the filler mask, the compaction) and ends up costing twice the gzip
compression that follows; this kernel writes each record once, straight from the BCL bytes.
Compiled on first use (cached in __pycache__ when the folder is writable).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
from numba import njit

U8 = npt.NDArray[np.uint8]
I64 = npt.NDArray[np.int64]


@njit(cache=True, nogil=True, boundscheck=False)
def _write_int(out: Any, pos: int, v: int) -> int:  # pragma: no cover - compiled
    if v == 0:
        out[pos] = 48
        return pos + 1
    tmp = np.empty(20, dtype=np.uint8)
    k = 0
    while v > 0:
        tmp[k] = 48 + v % 10
        v //= 10
        k += 1
    for j in range(k):
        out[pos + j] = tmp[k - 1 - j]
    return pos + k


@njit(cache=True, nogil=True, boundscheck=False)
def fill_records(  # pragma: no cover - compiled; exercised through the demux golden tests
    out: Any,
    offsets: Any,
    row_yield: Any,
    row_q30: Any,
    row_qsum: Any,
    calls: Any,
    order: Any,
    seg_start: Any,
    seg_len: Any,
    umi_start: Any,
    umi_len: Any,
    idx_start: Any,
    idx_len: Any,
    idx_sep: Any,
    sample_no: Any,
    prefix: Any,
    read_tag: Any,
    pf: Any,
    x: Any,
    y: Any,
    keep: Any,
    out_len: Any,
    seq_lut: Any,
    qual_lut: Any,
) -> int:
    """Write the records of rows ``order`` into ``out``; returns the bytes written.

    Per record: ``@`` prefix X ``:`` Y [``:`` UMI(+UMI)] read_tag (e.g. `` 1:``) Y|N ``:0:`` index
    (observed bases, ``+`` before segment k when idx_sep[k]; or the sample number when there is no
    index segment), sequence (template segments; bases at position >= keep are N/#, the record
    stops at out_len), ``+``, qualities. ``offsets[i]`` = start of record i (n + 1 values).
    """
    pos = 0
    n = order.shape[0]
    for i in range(n):
        r = order[i]
        offsets[i] = pos
        out[pos] = 64  # @
        pos += 1
        for j in range(prefix.shape[0]):
            out[pos + j] = prefix[j]
        pos += prefix.shape[0]
        pos = _write_int(out, pos, x[r])
        out[pos] = 58  # :
        pos += 1
        pos = _write_int(out, pos, y[r])
        for k in range(umi_start.shape[0]):
            out[pos] = 58 if k == 0 else 43  # ':' then '+'
            pos += 1
            s = umi_start[k]
            for j in range(umi_len[k]):
                out[pos + j] = seq_lut[calls[r, s + j]]
            pos += umi_len[k]
        for j in range(read_tag.shape[0]):
            out[pos + j] = read_tag[j]
        pos += read_tag.shape[0]
        out[pos] = 78 if pf[r] else 89  # N / Y
        out[pos + 1] = 58
        out[pos + 2] = 48
        out[pos + 3] = 58
        pos += 4
        if idx_start.shape[0] == 0:
            pos = _write_int(out, pos, sample_no[i])
        for k in range(idx_start.shape[0]):
            if idx_sep[k]:
                out[pos] = 43
                pos += 1
            s = idx_start[k]
            for j in range(idx_len[k]):
                out[pos + j] = seq_lut[calls[r, s + j]]
            pos += idx_len[k]
        out[pos] = 10
        pos += 1
        # sequence
        total = out_len[i]
        kp = keep[i]
        seq_at = pos
        written = 0
        for k in range(seg_start.shape[0]):
            s = seg_start[k]
            for j in range(seg_len[k]):
                if written >= total:
                    break
                b = calls[r, s + j]
                out[pos] = seq_lut[b] if written < kp else 78
                pos += 1
                written += 1
        while written < total:  # N padding up to the minimum trimmed length
            out[pos] = 78
            pos += 1
            written += 1
        out[pos] = 10
        out[pos + 1] = 43
        out[pos + 2] = 10
        pos += 3
        q30 = 0
        qsum = 0
        written = 0
        for k in range(seg_start.shape[0]):
            s = seg_start[k]
            for j in range(seg_len[k]):
                if written >= total:
                    break
                b = calls[r, s + j]
                q = qual_lut[b] if written < kp else 35
                out[pos] = q
                if q >= 63:
                    q30 += 1
                qsum += q - 33
                pos += 1
                written += 1
        while written < total:
            out[pos] = 35
            qsum += 2
            pos += 1
            written += 1
        out[pos] = 10
        pos += 1
        row_yield[i] = total
        row_q30[i] = q30
        row_qsum[i] = qsum
        _ = seq_at
    offsets[n] = pos
    return pos
