"""Index matching (bcl2fastq2 v2.20 / BCL Convert rules) and the barcode collision check.

- A read goes to a sample when every index read is within that index read's mismatch tolerance.
- An ``N`` in the observed index always counts as a mismatch; an ``N`` in the sample sheet is a
  literal base (it never matches an observed base).
- Collision check per lane: two samples collide when, on *every* index read, their Hamming
  distance is < 2 * tolerance + 1. With that guarantee at most one sample can match a read.

Matching is vectorised: observed index bases of a chunk are packed into integers, made unique, and
each unique value is looked up once in a precomputed table of every sequence within tolerance of a
sample (the bcl2fastq approach), with a memo shared across chunks of a tile.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from .errors import BarcodeCollisionError

CODE = {"A": 0, "C": 1, "G": 2, "T": 3, "N": 4}
SHEET_N = 5  # a sample-sheet N: never equal to an observed code


def hamming(a: str, b: str) -> int:
    return sum(x != y for x, y in zip(a, b, strict=True))


@dataclass(frozen=True)
class LaneSamples:
    """The samples of one lane, in sample-sheet order: (sample index in the plan, index sequences)."""

    lane: int
    members: tuple[tuple[int, tuple[str, ...]], ...]


def check_collisions(
    lane: int, samples: Sequence[tuple[str, tuple[str, ...]]], tolerances: Sequence[int], *, path: str
) -> None:
    """Raise BarcodeCollisionError naming the first colliding pair of a lane."""
    if not tolerances:
        if len(samples) > 1:
            names = ", ".join(s for s, _ in samples)
            raise BarcodeCollisionError(
                f"lane {lane} has several samples ({names}) but the run has no index read to tell them apart",
                path=path,
            )
        return
    for (sa, ia), (sb, ib) in itertools.combinations(samples, 2):
        dists = [hamming(x, y) for x, y in zip(ia, ib, strict=True)]
        if all(d < 2 * m + 1 for d, m in zip(dists, tolerances, strict=True)):
            shown = " and ".join(f"{s} ({'+'.join(i)})" for s, i in ((sa, ia), (sb, ib)))
            raise BarcodeCollisionError(
                f"barcode collision in lane {lane}: {shown} differ by {'/'.join(map(str, dists))} "
                f"base(s) but mismatch tolerance {'/'.join(map(str, tolerances))} needs at least "
                f"{'/'.join(str(2 * m + 1) for m in tolerances)} on one index read; lower "
                f"--barcode-mismatches (BarcodeMismatchesIndex1/2) or fix the indexes",
                path=path,
            )


def _variants(seq: str, m: int) -> dict[int, int]:
    """Packed observed sequences within ``m`` mismatches of ``seq`` (N counts as a mismatch) -> mismatches."""
    codes = [CODE.get(c, SHEET_N) for c in seq]
    length = len(codes)
    out: dict[int, int] = {}
    weights = [5 ** (length - 1 - i) for i in range(length)]
    for k in range(m + 1):
        for pos in itertools.combinations(range(length), k):
            choices = [[c for c in range(5) if c != codes[p]] for p in pos]
            for repl in itertools.product(*choices):
                v = list(codes)
                for p, c in zip(pos, repl, strict=True):
                    v[p] = c
                if any(c == SHEET_N for c in v):
                    continue  # a sheet N position can never be matched exactly
                key = sum(c * w for c, w in zip(v, weights, strict=True))
                out.setdefault(key, k)
    return out


def pack(codes: npt.NDArray[np.uint8]) -> npt.NDArray[np.int64]:
    """(n, L) codes 0-4 -> base-5 integers."""
    length = codes.shape[1]
    weights = (5 ** np.arange(length - 1, -1, -1, dtype=np.int64)).astype(np.int64)
    return codes.astype(np.int64) @ weights


class IndexMatcher:
    """Assigns clusters of one lane to samples from their observed index codes."""

    def __init__(self, lane: LaneSamples, tolerances: Sequence[int], lengths: Sequence[int]) -> None:
        self.lane = lane.lane
        self.tolerances = tuple(tolerances)
        self.lengths = tuple(lengths)
        self.tables: list[dict[int, list[tuple[int, int]]]] = []
        for r, m in enumerate(self.tolerances):
            table: dict[int, list[tuple[int, int]]] = {}
            for sidx, seqs in lane.members:
                for key, mm in _variants(seqs[r], m).items():
                    table.setdefault(key, []).append((sidx, mm))
            self.tables.append(table)
        self.no_index_sample = lane.members[0][0] if (not self.tolerances and lane.members) else -1
        self._memo: dict[tuple[int, ...], tuple[int, tuple[int, ...]]] = {}
        # sorted variant keys per index read -> sample (-2 when several samples share the key) and mismatches
        self._keys: list[npt.NDArray[np.int64]] = []
        self._sample: list[npt.NDArray[np.int64]] = []
        self._mm: list[npt.NDArray[np.int64]] = []
        for table in self.tables:
            keys = np.array(sorted(table), dtype=np.int64)
            self._keys.append(keys)
            self._sample.append(
                np.array([table[k][0][0] if len(table[k]) == 1 else -2 for k in keys.tolist()], dtype=np.int64)
            )
            self._mm.append(np.array([table[k][0][1] for k in keys.tolist()], dtype=np.int64))

    def _lookup(self, keys: tuple[int, ...]) -> tuple[int, tuple[int, ...]]:
        hit = self._memo.get(keys)
        if hit is not None:
            return hit
        found: dict[int, list[int]] | None = None
        for r, key in enumerate(keys):
            cands = self.tables[r].get(key)
            if not cands:
                found = None
                break
            cur = {s: mm for s, mm in cands}
            if found is None:
                found = {s: [mm] for s, mm in cur.items()}
            else:
                found = {s: [*v, cur[s]] for s, v in found.items() if s in cur}
            if not found:
                break
        if found and len(found) == 1:
            ((s, mms),) = found.items()
            res = (s, tuple(mms))
        else:
            res = (-1, tuple(-1 for _ in keys))
        if len(self._memo) < 2_000_000:
            self._memo[keys] = res
        return res

    def assign(
        self, index_codes: Sequence[npt.NDArray[np.uint8]]
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        """index_codes: one (n, L_r) code array per index read.

        Returns (sample index per cluster, -1 = undetermined; total mismatches, -1 if none; the
        packed observed index per cluster, a key for counting unknown barcodes).
        """
        n = index_codes[0].shape[0] if index_codes else 0
        if not self.tolerances:
            return (
                np.full(n, self.no_index_sample, dtype=np.int64),
                np.zeros(n, dtype=np.int64),
                np.zeros(n, dtype=np.int64),
            )
        sample = np.full(n, -3, dtype=np.int64)  # -3: not decided yet
        total_mm = np.zeros(n, dtype=np.int64)
        packed = [pack(c) for c in index_codes]
        ambiguous = np.zeros(n, dtype=bool)
        for r, key in enumerate(packed):
            keys = self._keys[r]
            pos = np.searchsorted(keys, key)
            pos[pos >= keys.size] = 0
            found = keys[pos] == key if keys.size else np.zeros(n, dtype=bool)
            s_r = np.where(found, self._sample[r][pos], -1)
            total_mm += np.where(found, self._mm[r][pos], 0)
            ambiguous |= s_r == -2
            sample = np.where(sample == -3, s_r, np.where((sample == s_r) & (s_r >= 0), sample, -1))
        sample[sample < 0] = -1
        total_mm[sample < 0] = -1
        # keys shared by several samples on one index read: resolve with the full tables
        for i in np.flatnonzero(ambiguous).tolist():
            s, mms = self._lookup(tuple(int(p[i]) for p in packed))
            sample[i] = s
            total_mm[i] = sum(mms) if s >= 0 else -1
        combined = packed[0]
        for r in range(1, len(packed)):
            combined = combined * (5 ** self.lengths[r]) + packed[r]
        return sample, total_mm, combined

    def decode_key(self, key: int) -> str:
        return decode_key(key, self.lengths)


def decode_key(key: int, lengths: Sequence[int]) -> str:
    """Packed observed index (see `IndexMatcher.assign`) -> ``ACGT[+ACGT]``."""
    if True:
        parts = []
        for length in reversed(lengths):
            digits = []
            for _ in range(length):
                key, d = divmod(key, 5)
                digits.append("ACGTN"[d])
            parts.append("".join(reversed(digits)))
        return "+".join(reversed(parts))
