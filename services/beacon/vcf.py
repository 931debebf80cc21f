"""Reading VCF/BCF into per-ALT allele rows for the beacon index.

Uses pysam: ``VariantFile`` reads the header (and the records of BCF files); text VCF bodies are read
line by line through ``pysam.BGZFile`` because htslib would otherwise decode every sample's genotype
into Python objects, which is 5-10x slower on cohort files.  Only INFO AC/AN/AF/END/SVTYPE and GT are
looked at.  No aiohttp, no pymongo; blocking, so callers run it off the event loop.
"""

from __future__ import annotations

import gzip
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import pysam
from isal import igzip as isal_gzip

from .alleles import breakend_mate, classify, normalize_chromosome
from .vcf_fast import FastBatch, parse_chunk

CHUNK_BYTES = 16 << 20

_N = TypeVar("_N", int, float)
_SKIPPED_ALTS = frozenset({"*", "<*>", "<NON_REF>", "<X>", "."})


class VcfError(ValueError):
    """The file is not a readable VCF/BCF; the message names the file and the line."""


@dataclass(frozen=True, slots=True)
class AlleleRow:
    chrom: str
    start: int  # 0-based inclusive
    end: int  # 0-based exclusive (INFO/END when present)
    ref: str
    alt: str
    variant_type: str
    mate: str | None
    ac: int | None
    an: int | None
    af: float | None
    samples_with_allele: int | None
    record_id: int


@dataclass
class VcfSummary:
    samples: int = 0
    records: int = 0
    alleles: int = 0
    skipped_contigs: int = 0


@dataclass(frozen=True, slots=True)
class _GenotypeStats:
    an: int
    ac: list[int]
    carriers: list[int]


def read_alleles(path: Path, summary: VcfSummary) -> Iterator[AlleleRow | FastBatch]:
    """Yield one row per ALT allele of every record on a served chromosome (or fast batches of them)."""
    try:
        with pysam.VariantFile(str(path)) as vf:
            summary.samples = len(vf.header.samples)
            is_bcf = vf.is_bcf
            if is_bcf:
                yield from _bcf_rows(vf, summary)
                return
    except NotImplementedError:
        raise VcfError(f"{path.name}: gzip but not BGZF; recompress with bgzip") from None
    except (OSError, ValueError) as exc:
        raise VcfError(f"{path.name}: not a readable VCF/BCF ({exc})") from exc
    if summary.samples:
        yield from _text_rows(path, summary)
    else:
        yield from _fast_rows(path, summary)


def _open_binary(path: Path) -> Iterator[bytes]:
    with path.open("rb") as fh:
        magic = fh.read(2)
    if magic == b"\x1f\x8b":
        with isal_gzip.open(path, "rb") as raw:  # type: ignore[no-untyped-call]  # BGZF = multi-member gzip
            while chunk := raw.read(CHUNK_BYTES):
                yield chunk
        return
    with path.open("rb") as raw:
        while chunk := raw.read(CHUNK_BYTES):
            yield chunk


def _complete_lines(path: Path) -> Iterator[bytes]:
    """Chunks of whole data lines (header lines dropped), each ending with a newline."""
    rest = b""
    in_header = True
    for chunk in _open_binary(path):
        buf = rest + chunk
        cut = buf.rfind(b"\n") + 1
        buf, rest = buf[:cut], buf[cut:]
        if in_header:
            while buf.startswith(b"#"):
                nl = buf.find(b"\n")
                buf = buf[nl + 1 :]
            in_header = not buf
        if buf:
            yield buf.replace(b"\r\n", b"\n")
    if rest.strip() and not rest.startswith(b"#"):
        yield rest + b"\n"


def _fast_rows(path: Path, summary: VcfSummary) -> Iterator[AlleleRow | FastBatch]:
    for text in _complete_lines(path):
        result = parse_chunk(text)
        summary.records += result.records
        summary.skipped_contigs += result.skipped_contigs
        for batch in result.batches:
            summary.alleles += int(batch.start.size)
            yield batch
        for line in result.leftovers:
            yield from _line_rows(line.decode(errors="replace"), "record", summary)


def _open_text(path: Path) -> Iterator[str]:
    with path.open("rb") as fh:
        magic = fh.read(2)
    if magic == b"\x1f\x8b":
        try:
            with pysam.BGZFile(str(path), "rb", None) as raw:
                for line in raw:
                    yield line.decode()
            return
        except OSError:
            pass
        with gzip.open(path, "rt") as text:
            yield from text
        return
    with path.open() as text:
        yield from text


def _text_rows(path: Path, summary: VcfSummary) -> Iterator[AlleleRow]:
    for lineno, line in enumerate(_open_text(path), start=1):
        if line.startswith("#") or not line.strip():
            continue
        yield from _line_rows(line, f"line {lineno}", summary)


def _line_rows(line: str, where: str, summary: VcfSummary) -> Iterator[AlleleRow]:
    fields = line.rstrip("\r\n").split("\t")
    if len(fields) < 8:
        raise VcfError(f"{where}: expected at least 8 tab-separated columns, got {line[:60]!r}")
    chrom = normalize_chromosome(fields[0])
    summary.records += 1
    if chrom is None:
        summary.skipped_contigs += 1
        return
    try:
        start = int(fields[1]) - 1
    except ValueError:
        raise VcfError(f"{where}: POS {fields[1][:20]!r} is not an integer") from None
    info = _parse_info(fields[7])
    alts = fields[4].split(",")
    gts = _text_genotypes(fields, len(alts)) if len(fields) > 9 else None
    yield from _rows(chrom, start, fields[3].upper(), alts, info, gts, summary)


def _parse_info(text: str) -> dict[str, str]:
    wanted = {}
    for item in text.split(";"):
        key, _, value = item.partition("=")
        if key in ("AC", "AN", "AF", "END", "SVTYPE"):
            wanted[key] = value
    return wanted


def _text_genotypes(fields: list[str], n_alts: int) -> _GenotypeStats | None:
    fmt = fields[8].split(":")
    if not fmt or fmt[0] != "GT":
        return None
    samples = fields[9:] if len(fmt) == 1 else [s.partition(":")[0] for s in fields[9:]]
    counts = Counter(samples)
    an, ac, carriers = 0, [0] * n_alts, [0] * n_alts
    for gt, n in counts.items():
        seen: set[int] = set()
        for allele in gt.replace("|", "/").split("/"):
            if allele in (".", ""):
                continue
            an += n
            idx = int(allele)
            if 0 < idx <= n_alts:
                ac[idx - 1] += n
                seen.add(idx)
        for idx in seen:
            carriers[idx - 1] += n
    return _GenotypeStats(an=an, ac=ac, carriers=carriers)


def _bcf_rows(vf: pysam.VariantFile, summary: VcfSummary) -> Iterator[AlleleRow]:
    keys = set(vf.header.info.keys())
    for rec in vf:
        summary.records += 1
        chrom = normalize_chromosome(rec.chrom)
        if chrom is None:
            summary.skipped_contigs += 1
            continue
        info: dict[str, str] = {
            k: _info_text(rec.info[k]) for k in ("AC", "AN", "AF", "END", "SVTYPE") if k in keys and k in rec.info
        }
        alts = list(rec.alts or ())
        gts = _bcf_genotypes(rec, len(alts)) if summary.samples else None
        yield from _rows(chrom, rec.start, (rec.ref or "N").upper(), alts, info, gts, summary)


def _info_text(value: object) -> str:
    if isinstance(value, tuple):
        return ",".join(str(v) for v in value)
    return str(value)


def _bcf_genotypes(rec: pysam.VariantRecord, n_alts: int) -> _GenotypeStats | None:
    an, ac, carriers = 0, [0] * n_alts, [0] * n_alts
    for sample in rec.samples.values():
        gt = sample.get("GT")
        if gt is None:
            return None
        seen = {a for a in gt if a is not None and 0 < a <= n_alts}
        an += sum(1 for a in gt if a is not None)
        for a in gt:
            if a is not None and 0 < a <= n_alts:
                ac[a - 1] += 1
        for a in seen:
            carriers[a - 1] += 1
    return _GenotypeStats(an=an, ac=ac, carriers=carriers)


def _rows(
    chrom: str,
    start: int,
    ref: str,
    alts: list[str],
    info: dict[str, str],
    gts: _GenotypeStats | None,
    summary: VcfSummary,
) -> Iterator[AlleleRow]:
    record_id = summary.records
    end = _int_or_none(info.get("END")) or start + len(ref)
    ac_list = _numbers(info.get("AC"), int)
    af_list = _numbers(info.get("AF"), float)
    an = _int_or_none(info.get("AN"))
    if an is None and gts is not None:
        an = gts.an
    svtype = info.get("SVTYPE")
    for i, raw_alt in enumerate(alts):
        alt = raw_alt.upper() if not raw_alt.startswith("<") else raw_alt
        if alt in _SKIPPED_ALTS:
            continue
        vtype = classify(ref, alt, svtype)
        ac = ac_list[i] if ac_list is not None and i < len(ac_list) else (gts.ac[i] if gts else None)
        af = af_list[i] if af_list is not None and i < len(af_list) else None
        if af is None and ac is not None and an:
            af = ac / an
        summary.alleles += 1
        yield AlleleRow(
            chrom=chrom,
            start=start,
            end=end if vtype != "BND" else start + len(ref),
            ref=ref,
            alt=alt,
            variant_type=vtype,
            mate=breakend_mate(alt) if vtype == "BND" else None,
            ac=ac,
            an=an,
            af=af,
            samples_with_allele=gts.carriers[i] if gts else None,
            record_id=record_id,
        )


def _int_or_none(text: str | None) -> int | None:
    if text is None or text in (".", ""):
        return None
    try:
        return int(text)
    except ValueError:
        return None


def _numbers(text: str | None, kind: type[_N]) -> list[_N | None] | None:
    if text is None or text in (".", ""):
        return None
    out: list[_N | None] = []
    for part in text.split(","):
        try:
            out.append(kind(part))
        except ValueError:
            out.append(None)
    return out
