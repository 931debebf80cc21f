"""Hundreds of random queries on the 1000 Genomes chrMT file, each checked against ``bcftools``.

The oracle is independent of our reader: bcftools recomputes AC/AN from the genotypes
(``+fill-tags``), splits multi-allelic records (``norm -m -any``) and answers every query with
``bcftools query -r/-i`` on that file.  Our side builds the columnar index from the original file.
"""

from __future__ import annotations

import random
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from services.beacon.index import DatasetIndex, build_version, current_version, open_version
from services.beacon.matcher import match
from services.beacon.query import validate
from tests.shared import SHARED

CHRMT = (SHARED / "data/1000g-chrMT/ALL.chrMT.phase3_callmom-v0_4.20130502.genotypes.vcf.gz")
MT_LENGTH = 16569

pytestmark = pytest.mark.skipif(
    shutil.which("bcftools") is None, reason="needs Debian bcftools (make test installs it)"
)


@dataclass(frozen=True)
class Oracle:
    split: Path
    rows: list[tuple[int, str, str, int, int]]  # POS (1-based), REF, ALT, AC, AN


@pytest.fixture(scope="module")
def oracle(tmp_path_factory: pytest.TempPathFactory) -> Oracle:
    tmp = tmp_path_factory.mktemp("oracle")
    split = tmp / "split.vcf.gz"
    # Genotypes are dropped (-G) only after fill-tags has counted them, so each query reads sites only.
    pipeline = (
        f"bcftools annotate -x INFO/AC {CHRMT} -Ou | bcftools +fill-tags -Ou -- -t AN,AC"
        f" | bcftools view -G -Ou | bcftools norm -m -any -Oz -o {split} 2>/dev/null"
        f" && bcftools index -t {split}"
    )
    subprocess.run(pipeline, shell=True, check=True)  # noqa: S602 - fixed command, test-only paths
    return Oracle(split=split, rows=_bcftools_rows(split, []))


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> DatasetIndex:
    root = tmp_path_factory.mktemp("index")
    build_version(root, "mt", CHRMT)
    version = current_version(root, "mt")
    assert version is not None
    return open_version(root, "mt", version)


def _bcftools_rows(split: Path, args: list[str]) -> list[tuple[int, str, str, int, int]]:
    out = subprocess.run(
        ["bcftools", "query", *args, "-f", "%POS\t%REF\t%ALT\t%AC\t%AN\n", str(split)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    rows = []
    for line in out.splitlines():
        pos, ref, alt, ac, an = line.split("\t")
        rows.append((int(pos), ref, alt, int(ac), int(an)))
    return rows


def _regex(pattern: str) -> str:
    return "^" + pattern.replace("N", ".") + "$"


def _expected(oracle: Oracle, q: dict[str, Any]) -> dict[str, Any]:
    """Answer ``q`` with bcftools: region + filter expression on the split, re-counted file."""
    if "start" in q:
        first, last = q["start"] + 1, q["start"] + 1
    else:
        first, last = q["startMin"] + 1, q["startMax"] + 1
    conds = [f"POS>={first}", f"POS<={last}"]
    # 0-based exclusive end = POS - 1 + len(REF); compared as POS + len(REF) against end + 1 because
    # bcftools 1.16 evaluates "POS-1+strlen(REF)" as "POS-(1+strlen(REF))".
    end = "POS+strlen(REF)"
    if "end" in q:
        conds.append(f"{end}=={q['end'] + 1}")
    if "endMin" in q:
        conds += [f"{end}>={q['endMin'] + 1}", f"{end}<={q['endMax'] + 1}"]
    if q["referenceBases"] != "N":
        conds.append(f'REF~"{_regex(q["referenceBases"])}"')
    if q.get("alternateBases", "N") != "N":
        conds.append(f'ALT~"{_regex(q["alternateBases"])}"')
    if q.get("variantType") == "DEL":
        conds.append("strlen(ALT)<strlen(REF)")
    if q.get("variantType") == "INS":
        conds.append("strlen(ALT)>strlen(REF)")
    rows = _bcftools_rows(oracle.split, ["-r", f"MT:{first}-{last}", "-i", " && ".join(conds)])
    sites = {(pos, ref): an for pos, ref, _alt, _ac, an in rows}
    return {
        "exists": bool(rows),
        "alleles": len(rows),
        "variant_count": sum(r[3] for r in rows),
        "call_count": sum(sites.values()) if rows else None,
        "matched": sorted((pos - 1, ref, alt) for pos, ref, alt, _ac, _an in rows),
    }


def _check(dataset: DatasetIndex, oracle: Oracle, queries: list[dict[str, Any]]) -> tuple[int, int]:
    mismatches, hits = [], 0
    for q in queries:
        request = validate({"referenceName": "MT", "assemblyId": "GRCh37", **q})
        got = match(dataset, request, samples=2534)
        want = _expected(oracle, q)
        observed = {
            "exists": got.exists,
            "alleles": got.alleles,
            "variant_count": got.variant_count if got.exists else 0,
            "call_count": got.call_count,
            "matched": sorted((e["start"], e["referenceBases"], e["alternateBases"]) for e in got.examples),
        }
        if want["alleles"] > 10:  # only the first 10 alleles are reported by the matcher
            observed["matched"] = want["matched"] = len(got.examples)
        if observed != want:
            mismatches.append((q, observed, want))
        hits += got.exists
    assert mismatches == [], mismatches[:3]
    return hits, len(queries) - hits


def _mutate(bases: str, rng: random.Random) -> str:
    i = rng.randrange(len(bases))
    return bases[:i] + rng.choice([b for b in "ACGT" if b != bases[i]]) + bases[i + 1 :]


@pytest.fixture(params=["rowwise", "vectorised"])
def matcher_path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Point queries normally take the row-by-row path; "vectorised" forces the numpy path for them too."""
    from services.beacon import matcher

    if request.param == "vectorised":
        monkeypatch.setattr(matcher, "SMALL_SLICE", 0)
    return str(request.param)


def test_exact_snv_and_mnv_hits_and_misses_agree_with_bcftools(
    dataset: DatasetIndex, oracle: Oracle, matcher_path: str
) -> None:
    rng = random.Random(20130502)
    queries = []
    for pos, ref, alt, _ac, _an in rng.sample(oracle.rows, 120):
        queries.append({"start": pos - 1, "referenceBases": ref, "alternateBases": alt})
        queries.append({"start": pos - 1, "referenceBases": ref, "alternateBases": _mutate(alt, rng)})
        queries.append({"start": pos, "referenceBases": ref, "alternateBases": alt})  # off by one: POS, not POS-1
    hits, misses = _check(dataset, oracle, queries)
    assert hits >= 120 and misses >= 100


def test_indel_queries_agree_with_bcftools(dataset: DatasetIndex, oracle: Oracle, matcher_path: str) -> None:
    indels = [r for r in oracle.rows if len(r[1]) != len(r[2])]
    queries = []
    assert len(indels) >= 38
    for pos, ref, alt, _ac, _an in indels:
        queries.append({"start": pos - 1, "referenceBases": ref, "alternateBases": alt})
        queries.append({"start": pos - 1, "referenceBases": ref, "alternateBases": alt + "A"})
        kind = "DEL" if len(alt) < len(ref) else "INS"
        queries.append({"start": pos - 1, "referenceBases": "N", "variantType": kind})
        queries.append({"start": pos - 1, "referenceBases": ref, "variantType": "INS" if kind == "DEL" else "DEL"})
    hits, misses = _check(dataset, oracle, queries)
    assert hits >= 70 and misses >= 40


def test_n_wildcards_match_exactly_one_base_and_agree_with_bcftools(
    dataset: DatasetIndex, oracle: Oracle, matcher_path: str
) -> None:
    rng = random.Random(64)
    queries = [{"start": 63, "referenceBases": "CT", "alternateBases": "NN"}]
    for pos, ref, alt, _ac, _an in rng.sample(oracle.rows, 80):
        masked = "".join("N" if rng.random() < 0.5 else b for b in alt)
        queries.append({"start": pos - 1, "referenceBases": "N" * len(ref), "alternateBases": masked})
        queries.append({"start": pos - 1, "referenceBases": ref, "alternateBases": masked + "N"})
        queries.append({"start": pos - 1, "referenceBases": ref, "alternateBases": "N"})
    hits, misses = _check(dataset, oracle, queries)
    assert hits >= 150 and misses >= 40
    pos64 = match(dataset, validate({"referenceName": "MT", "assemblyId": "GRCh37", **queries[0]}))
    assert pos64.alleles == 3 and pos64.variant_count == 120


def test_ranges_and_brackets_agree_with_bcftools(dataset: DatasetIndex, oracle: Oracle) -> None:
    rng = random.Random(16569)
    queries = []
    for _ in range(100):
        smin = rng.randrange(MT_LENGTH)
        smax = smin + rng.choice([0, 1, 5, 50, 300])
        emin = smin + rng.choice([0, 1, 2])
        emax = max(emin, smax + rng.choice([1, 2, 10]))
        kind = rng.choice([{"alternateBases": "N"}, {"variantType": "DEL"}, {"variantType": "INS"}])
        queries.append(
            {
                "startMin": smin,
                "startMax": smax,
                "endMin": emin,
                "endMax": emax,
                "referenceBases": "N",
                **kind,
            }
        )
    for pos, ref, _alt, _ac, _an in rng.sample(oracle.rows, 50):
        queries.append({"start": pos - 1, "end": pos - 1 + len(ref), "referenceBases": "N", "alternateBases": "N"})
        queries.append({"start": pos - 1, "end": pos + len(ref), "referenceBases": "N", "alternateBases": "N"})
    hits, misses = _check(dataset, oracle, queries)
    assert hits >= 60 and misses >= 40


def test_bracket_bounds_are_inclusive_at_both_edges(dataset: DatasetIndex) -> None:
    # POS 10 T>C: start 9, end 10.  Each bound equal to the variant's coordinate still matches;
    # moving any bound one past it misses.
    base = {"referenceName": "MT", "assemblyId": "GRCh37", "referenceBases": "N", "alternateBases": "C"}
    edges = {"startMin": 9, "startMax": 9, "endMin": 10, "endMax": 10}
    assert match(dataset, validate({**base, **edges})).exists
    for name, moved in (("startMin", 10), ("startMax", 8), ("endMin", 11), ("endMax", 9)):
        q = {**edges, name: moved}
        if q["startMin"] > q["startMax"] or q["endMin"] > q["endMax"]:
            continue
        assert not match(dataset, validate({**base, **q})).exists, name
