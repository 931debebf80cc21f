"""Allele keys: packing round-trips, N wildcards match exactly one base, long or non-ACGT alleles go through
the side table and still match; variant classification of padded and symbolic alleles."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from services.beacon.alleles import ALT_CODEC, REF_CODEC, breakend_mate, classify, normalize_chromosome

BASES = st.text(alphabet="ACGT", min_size=1, max_size=40)


def _keys(alleles: list[str], side: list[str]) -> np.ndarray:
    out = []
    for allele in alleles:
        packed = ALT_CODEC.pack(allele)
        if packed is None:
            side.append(allele)
            packed = ALT_CODEC.side_key(len(side) - 1)
        out.append(packed)
    return np.array(out, dtype=np.uint64)


@given(st.lists(BASES, min_size=1, max_size=20), st.data())
def test_wildcard_matching_equals_a_naive_anchored_comparison(alleles: list[str], data: st.DataObject) -> None:
    side: list[str] = []
    keys = _keys(alleles, side)
    target = data.draw(st.sampled_from(alleles))
    pattern = "".join(data.draw(st.sampled_from([b, "N"])) for b in target)
    got = ALT_CODEC.matches(keys, pattern, side)
    want = [len(a) == len(pattern) and all(p in ("N", b) for p, b in zip(pattern, a, strict=True)) for a in alleles]
    assert got.tolist() == want
    assert all(ALT_CODEC.unpack(int(k), side) == a for k, a in zip(keys, alleles, strict=True))


def test_non_acgt_alleles_live_in_the_side_table() -> None:
    assert REF_CODEC.pack("NA") is None and ALT_CODEC.pack("<DEL>") is None
    assert REF_CODEC.pack("A" * 15) is None and REF_CODEC.pack("A" * 14) is not None
    side: list[str] = []
    keys = _keys(["NA", "CA", "<DEL>"], side)
    assert ALT_CODEC.matches(keys, "NA", side).tolist() == [True, True, False]


def test_classification() -> None:
    assert classify("TCC", "CCC", None) == "SNP"  # padded SNV
    assert classify("TC", "CT", None) == "MNP"
    assert classify("TATTTT", "T", None) == "DEL" and classify("C", "CTTT", None) == "INS"
    assert classify("N", "<DUP:TANDEM>", None) == "DUP:TANDEM"
    assert classify("N", "<INS:ME:ALU>", None) == "INS:ME"
    assert classify("N", "<CN0>", None) == "CNV"
    assert classify("A", "A[2:300[", None) == "BND" and breakend_mate("A[chr2:300[") == "2"
    assert normalize_chromosome("chrM") == "MT" and normalize_chromosome("chr1") == "1"
    assert normalize_chromosome("chrUn_gl000220") is None
