"""Answering one allele request against one memory-mapped dataset index.

Query semantics (documented in docs/beacon.md):

* ``start`` only: variants whose start equals ``start``;
* ``start`` + ``end``: start equals ``start`` and end equals ``end`` (precise structural variants);
* brackets: ``startMin <= start <= startMax`` and ``endMin <= end <= endMax``, **both bounds
  inclusive** as the spec text says ("startMin = startMax" gives a precise match);
* ``referenceBases``/``alternateBases``: anchored, exact-length match where ``N`` is one base; a bare
  ``N`` matches any allele; ``variantType`` compares the stored type; ``mateName`` the BND partner.

Counts over the matched alleles: variantCount = sum of AC, callCount = sum of AN over distinct sites,
frequency = variantCount / callCount, sampleCount = samples carrying a matched allele.  Pure numpy.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from .alleles import ALT_CODEC, CHROMOSOME_CODE, REF_CODEC, VARIANT_TYPE_CODE, VARIANT_TYPES
from .index import MISSING, ChromColumns, DatasetIndex
from .models import AlleleRequest

MAX_REPORTED_ALLELES: Final = 10
_MAX_POS: Final = 2**31 - 1
# Point queries touch a handful of rows: plain Python on them beats a dozen numpy calls on tiny slices.
SMALL_SLICE: Final = 16


@dataclass(frozen=True)
class DatasetMatch:
    exists: bool
    alleles: int = 0
    variant_count: int | None = 0
    call_count: int | None = None
    sample_count: int | None = 0
    frequency: float | None = 0.0
    chrom: str = ""
    columns: ChromColumns | None = None
    example_rows: tuple[int, ...] = ()

    @property
    def examples(self) -> tuple[dict[str, Any], ...]:
        """The first matched alleles, described only when a response reports them."""
        if self.columns is None:
            return ()
        return tuple(_describe(self.columns, r, self.chrom) for r in self.example_rows)


MISS: Final = DatasetMatch(exists=False)


def match(index: DatasetIndex, q: AlleleRequest, *, samples: int | None = None) -> DatasetMatch:
    cols = index.chromosomes.get(q.referenceName)
    if cols is None or len(cols) == 0:
        return MISS
    lo, hi = _position_slice(cols, q)
    if lo >= hi:
        return MISS
    if hi - lo <= SMALL_SLICE:
        return _match_small(cols, q, lo, hi, samples)
    rows = _filter(cols, q, lo, hi)
    if rows.size == 0:
        return MISS
    return _summarise(cols, rows, q.referenceName, samples)


def candidate_rows(index: DatasetIndex, q: AlleleRequest) -> int:
    """How many rows the position range of ``q`` covers (before allele filters): the cost of a match."""
    cols = index.chromosomes.get(q.referenceName)
    if cols is None or len(cols) == 0:
        return 0
    lo, hi = _position_slice(cols, q)
    return max(0, hi - lo)


def _position_slice(cols: ChromColumns, q: AlleleRequest) -> tuple[int, int]:
    if q.start is not None:
        first, last = q.start, q.start
    else:
        assert q.startMin is not None and q.startMax is not None
        first, last = q.startMin, q.startMax
    # Needles must have the column's dtype: a Python int would make numpy cast the whole column to int64.
    lo = int(np.searchsorted(cols.start, np.int32(min(first, _MAX_POS)), side="left"))
    hi = int(np.searchsorted(cols.start, np.int32(min(last, _MAX_POS)), side="right"))
    return lo, hi


def _filter(cols: ChromColumns, q: AlleleRequest, lo: int, hi: int) -> npt.NDArray[np.intp]:
    keep = np.ones(hi - lo, dtype=bool)
    if q.start is not None and q.end is not None:
        keep &= cols.end[lo:hi] == q.end
    if q.endMin is not None and q.endMax is not None:
        ends = cols.end[lo:hi]
        keep &= (ends >= q.endMin) & (ends <= q.endMax)
    if q.referenceBases != "N":
        keep &= REF_CODEC.matches(np.asarray(cols.ref[lo:hi]), q.referenceBases, cols.side_ref)
    if q.alternateBases is not None and q.alternateBases != "N":
        keep &= ALT_CODEC.matches(np.asarray(cols.alt[lo:hi]), q.alternateBases, cols.side_alt)
    if q.variantType is not None:
        keep &= cols.vtype[lo:hi] == VARIANT_TYPE_CODE[q.variantType]
    if q.mateName is not None:
        keep &= cols.mate[lo:hi] == CHROMOSOME_CODE[q.mateName]
    return np.flatnonzero(keep) + lo


def _summarise(cols: ChromColumns, rows: npt.NDArray[np.intp], chrom: str, samples: int | None) -> DatasetMatch:
    ac = cols.ac[rows]
    an = cols.an[rows]
    sc = cols.sc[rows]
    variant_count = None if bool((ac == MISSING).any()) else int(ac.sum(dtype=np.uint64))
    call_count = _distinct_site_an(cols, rows, an)
    sample_count = None if bool((sc == MISSING).any()) else int(sc.sum(dtype=np.uint64))
    if sample_count is not None and samples is not None:
        sample_count = min(sample_count, samples)
    return DatasetMatch(
        exists=True,
        alleles=int(rows.size),
        variant_count=variant_count,
        call_count=call_count,
        sample_count=sample_count,
        frequency=_frequency(cols, rows, variant_count, call_count),
        chrom=chrom,
        columns=cols,
        example_rows=tuple(int(r) for r in rows[:MAX_REPORTED_ALLELES]),
    )


def _distinct_site_an(cols: ChromColumns, rows: npt.NDArray[np.intp], an: npt.NDArray[np.uint32]) -> int | None:
    """AN summed once per site: alleles split from one record share start, REF and AN."""
    if bool((an == MISSING).any()):
        return None
    if rows.size == 1:
        return int(an[0])
    sites = np.unique(
        np.stack([cols.start[rows].astype(np.int64), cols.ref[rows].astype(np.int64), an.astype(np.int64)]),
        axis=1,
    )
    return int(sites[2].sum())


def _frequency(cols: ChromColumns, rows: npt.NDArray[np.intp], ac: int | None, an: int | None) -> float | None:
    if ac is not None and an:
        return min(1.0, ac / an)
    if rows.size == 1:
        af = float(cols.af[rows[0]])
        if not np.isnan(af):
            return min(1.0, max(0.0, af))
    return None


def _describe(cols: ChromColumns, row: int, chrom: str) -> dict[str, Any]:
    out: dict[str, Any] = {
        "referenceName": chrom,
        "start": int(cols.start[row]),
        "end": int(cols.end[row]),
        "referenceBases": REF_CODEC.unpack(int(cols.ref[row]), cols.side_ref),
        "alternateBases": ALT_CODEC.unpack(int(cols.alt[row]), cols.side_alt),
        "variantType": VARIANT_TYPES[int(cols.vtype[row])],
    }
    for key, column in (("alleleCount", cols.ac), ("alleleNumber", cols.an)):
        if column[row] != MISSING:
            out[key] = int(column[row])
    return out


def _match_small(cols: ChromColumns, q: AlleleRequest, lo: int, hi: int, samples: int | None) -> DatasetMatch:
    """``_filter`` + ``_summarise`` for a few rows, row by row (same semantics, tested against bcftools)."""
    ref_mv = REF_CODEC.mask_value(q.referenceBases) if q.referenceBases != "N" else None
    alt = q.alternateBases if q.alternateBases not in (None, "N") else None
    alt_mv = ALT_CODEC.mask_value(alt) if alt is not None else None
    vtype = VARIANT_TYPE_CODE[q.variantType] if q.variantType is not None else None
    mate = CHROMOSOME_CODE[q.mateName] if q.mateName is not None else None
    rows = []
    for r in range(lo, hi):
        end = int(cols.end[r])
        if q.start is not None and q.end is not None and end != q.end:
            continue
        if q.endMin is not None and q.endMax is not None and not q.endMin <= end <= q.endMax:
            continue
        if q.referenceBases != "N" and not REF_CODEC.matches_one(
            int(cols.ref[r]), q.referenceBases, cols.side_ref, ref_mv
        ):
            continue
        if alt is not None and not ALT_CODEC.matches_one(int(cols.alt[r]), alt, cols.side_alt, alt_mv):
            continue
        if vtype is not None and int(cols.vtype[r]) != vtype:
            continue
        if mate is not None and int(cols.mate[r]) != mate:
            continue
        rows.append(r)
    if not rows:
        return MISS
    missing = int(MISSING)
    acs = [int(cols.ac[r]) for r in rows]
    ans = [int(cols.an[r]) for r in rows]
    scs = [int(cols.sc[r]) for r in rows]
    variant_count = None if missing in acs else sum(acs)
    call_count = None
    if missing not in ans:
        sites = {(int(cols.start[r]), int(cols.ref[r]), an) for r, an in zip(rows, ans, strict=True)}
        call_count = sum(site[2] for site in sites)
    sample_count = None if missing in scs else sum(scs)
    if sample_count is not None and samples is not None:
        sample_count = min(sample_count, samples)
    if variant_count is not None and call_count:
        frequency: float | None = min(1.0, variant_count / call_count)
    else:
        frequency = _frequency(cols, np.asarray(rows, dtype=np.intp), variant_count, call_count)
    return DatasetMatch(
        exists=True,
        alleles=len(rows),
        variant_count=variant_count,
        call_count=call_count,
        sample_count=sample_count,
        frequency=frequency,
        chrom=q.referenceName,
        columns=cols,
        example_rows=tuple(rows[:MAX_REPORTED_ALLELES]),
    )
