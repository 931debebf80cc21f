"""Allele encoding and variant classification for the beacon index.

Pure functions and numpy helpers only: no I/O, no aiohttp, no pymongo.

Sequence alleles are packed 2 bits per base into fixed-width integers with their length in the top
bits, so that an exact or an ``N``-wildcard match is one vectorised ``(key & mask) == value``
comparison.  Alleles that do not fit (too long, or not plain ``ACGT``: symbolic ``<DEL>``, breakends,
``N`` in the data) get a key pointing into a per-chromosome side table of strings.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

CHROMOSOMES: Final[tuple[str, ...]] = (*(str(i) for i in range(1, 23)), "X", "Y", "MT")
CHROMOSOME_CODE: Final[dict[str, int]] = {name: i for i, name in enumerate(CHROMOSOMES)}
NO_MATE: Final = 255

VARIANT_TYPES: Final[tuple[str, ...]] = (
    "SNP",
    "MNP",
    "INS",
    "DEL",
    "DUP",
    "INV",
    "CNV",
    "DUP:TANDEM",
    "DEL:ME",
    "INS:ME",
    "BND",
    "OTHER",
)
VARIANT_TYPE_CODE: Final[dict[str, int]] = {name: i for i, name in enumerate(VARIANT_TYPES)}
BND_CODE: Final = VARIANT_TYPE_CODE["BND"]

_BASE_CODE: Final[dict[str, int]] = {"A": 0, "C": 1, "G": 2, "T": 3}
_BND_MATE = re.compile(r"[\[\]](?:<?)([^:\[\]<>]+)(?:>?):\d+[\[\]]")


@dataclass(frozen=True)
class AlleleCodec:
    """Packs alleles of up to ``capacity`` bases into ``bits``-wide unsigned keys.

    Layout: the length sits in the top ``len_bits`` bits, bases in the low ``2 * capacity`` bits.  The
    largest length value marks a side-table key whose low bits are an index into the side table.
    """

    bits: int
    len_bits: int
    dtype: type[np.unsignedinteger]

    @property
    def capacity(self) -> int:
        return min((self.bits - self.len_bits) // 2, (1 << self.len_bits) - 2)

    @property
    def side_marker(self) -> int:
        return (1 << self.len_bits) - 1

    @property
    def _shift(self) -> int:
        return self.bits - self.len_bits

    def side_key(self, index: int) -> int:
        return (self.side_marker << self._shift) | index

    def pack(self, allele: str) -> int | None:
        """The packed key of a plain ACGT allele, or None when it needs the side table."""
        if not 0 < len(allele) <= self.capacity:
            return None
        value = 0
        for base in allele:
            code = _BASE_CODE.get(base)
            if code is None:
                return None
            value = (value << 2) | code
        return (len(allele) << self._shift) | value

    def unpack(self, key: int, side: list[str]) -> str:
        length = key >> self._shift
        if length == self.side_marker:
            return side[key & ((1 << self._shift) - 1)]
        bases = []
        for i in range(length):
            bases.append("ACGT"[(key >> (2 * (length - 1 - i))) & 3])
        return "".join(bases)

    def mask_value(self, pattern: str) -> tuple[int, int] | None:
        """(mask, value) so that ``key & mask == value`` iff a packed allele matches the pattern.

        ``N`` in the pattern matches exactly one base.  None when no packed allele can match.
        """
        if not 0 < len(pattern) <= self.capacity:
            return None
        mask = ((1 << self.len_bits) - 1) << self._shift
        value = len(pattern) << self._shift
        for i, base in enumerate(pattern):
            if base == "N":
                continue
            shift = 2 * (len(pattern) - 1 - i)
            mask |= 3 << shift
            value |= _BASE_CODE[base] << shift
        return mask, value

    def matches(self, keys: npt.NDArray[np.unsignedinteger], pattern: str, side: list[str]) -> npt.NDArray[np.bool_]:
        """Rows whose allele matches ``pattern`` (``[ACGTN]+``, N = one base, anchored at both ends)."""
        result = np.zeros(keys.shape, dtype=bool)
        mv = self.mask_value(pattern)
        if mv is not None:
            mask, value = mv
            result |= (keys & self.dtype(mask)) == self.dtype(value)
        # Only the side-table entries referenced by these rows are looked at (the table can be large).
        marker = self.dtype(self.side_marker << self._shift)
        on_side = np.flatnonzero((keys & marker) == marker)
        low = self.dtype((1 << self._shift) - 1)
        for row in on_side.tolist():
            result[row] = _pattern_matches(pattern, side[int(keys[row] & low)])
        return result

    def matches_one(self, key: int, pattern: str, side: list[str], mv: tuple[int, int] | None) -> bool:
        """``matches`` for a single key; ``mv`` is ``mask_value(pattern)``, computed once per query."""
        if key >> self._shift == self.side_marker:
            return _pattern_matches(pattern, side[key & ((1 << self._shift) - 1)])
        return mv is not None and key & mv[0] == mv[1]


REF_CODEC: Final = AlleleCodec(bits=32, len_bits=4, dtype=np.uint32)
ALT_CODEC: Final = AlleleCodec(bits=64, len_bits=6, dtype=np.uint64)


def _pattern_matches(pattern: str, allele: str) -> bool:
    if len(pattern) != len(allele):
        return False
    return all(p == "N" or p == a for p, a in zip(pattern, allele, strict=True))


def normalize_chromosome(contig: str) -> str | None:
    """Beacon chromosome name of a VCF contig (``chr1`` → ``1``, ``chrM`` → ``MT``), None if not served."""
    name = contig[3:] if contig.lower().startswith("chr") else contig
    name = name.upper() if name.lower() in {"x", "y", "m", "mt"} else name
    if name == "M":
        name = "MT"
    return name if name in CHROMOSOME_CODE else None


def is_symbolic(alt: str) -> bool:
    return alt.startswith("<") or "[" in alt or "]" in alt or alt.startswith(".") or alt.endswith(".")


def breakend_mate(alt: str) -> str | None:
    """The partner chromosome of a VCF breakend ALT (``G]17:198982]`` → ``17``)."""
    found = _BND_MATE.search(alt)
    return normalize_chromosome(found.group(1)) if found else None


def classify(ref: str, alt: str, svtype: str | None) -> str:
    """The beacon variantType of one REF/ALT pair.

    Sequence alleles are compared after trimming the shared suffix and prefix, so a padded SNV such as
    ``TCC>CCC`` is an SNP.  Symbolic alleles map by their ID (``<DEL:ME:ALU>`` → ``DEL:ME``), breakends
    are BND, and INFO/SVTYPE decides when the ALT itself says nothing.
    """
    if "[" in alt or "]" in alt or alt.startswith(".") or alt.endswith("."):
        return "BND"
    if alt.startswith("<"):
        return _symbolic_type(alt[1:-1] if alt.endswith(">") else alt[1:], svtype)
    if svtype is not None and svtype.upper() == "BND":
        return "BND"
    r, a = _trim(ref, alt)
    if len(r) == len(a):
        return "SNP" if len(r) <= 1 else "MNP"
    return "INS" if len(a) > len(r) else "DEL"


def _symbolic_type(symbol: str, svtype: str | None) -> str:
    parts = symbol.upper().split(":")
    for depth in (2, 1):
        candidate = ":".join(parts[:depth])
        if candidate in VARIANT_TYPE_CODE and candidate not in {"SNP", "MNP", "OTHER"}:
            return candidate
    if parts[0].startswith("CN"):
        return "CNV"
    if svtype is not None and svtype.upper() in VARIANT_TYPE_CODE:
        return svtype.upper()
    return "OTHER"


def _trim(ref: str, alt: str) -> tuple[str, str]:
    while len(ref) > 1 and len(alt) > 1 and ref[-1] == alt[-1]:
        ref, alt = ref[:-1], alt[:-1]
    while len(ref) > 1 and len(alt) > 1 and ref[0] == alt[0]:
        ref, alt = ref[1:], alt[1:]
    return ref, alt
