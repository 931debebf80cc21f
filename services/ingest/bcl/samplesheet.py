"""Sample sheets: v1 (Illumina Experiment Manager / bcl2fastq) and v2 (BCL Convert). Parse and write.

Both versions are normalised into one `SampleSheet`: samples in order (sample numbers S<n> by first
appearance of the Sample_ID, Undetermined = S0) and the settings that change conversion.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

from .errors import SampleSheetError

_NAME = re.compile(r"^[A-Za-z0-9_\-]+$")
_INDEX = re.compile(r"^[ACGTN]*$")
_SEGMENT = re.compile(r"([YINU])(\d+|\*)")

V1_SETTINGS = frozenset(
    {
        "Adapter",
        "AdapterRead2",
        "MaskAdapter",
        "MaskAdapterRead2",
        "FindAdaptersWithIndels",
        "ReverseComplement",
        "TrimUMI",
        "Read1StartFromCycle",
        "Read1EndWithCycle",
        "Read2StartFromCycle",
        "Read2EndWithCycle",
        "Read1UMILength",
        "Read2UMILength",
        "Read1UMIStartFromCycle",
        "Read2UMIStartFromCycle",
        "CreateFastqForIndexReads",
        "BarcodeMismatches",
        "OverrideCycles",
        "NoLaneSplitting",
    }
)
V2_SETTINGS = frozenset(
    {
        "SoftwareVersion",
        "BarcodeMismatchesIndex1",
        "BarcodeMismatchesIndex2",
        "OverrideCycles",
        "AdapterRead1",
        "AdapterRead2",
        "AdapterBehavior",
        "AdapterStringency",
        "MinimumTrimmedReadLength",
        "MaskShortReads",
        "MinimumAdapterOverlap",
        "CreateFastqForIndexReads",
        "NoLaneSplitting",
        "FastqCompressionFormat",
        "TrimUMI",
        "FindAdaptersWithIndels",
        "IndependentIndexCollisionCheck",
    }
)
V2_DATA_COLUMNS = frozenset(
    {
        "Lane",
        "Sample_ID",
        "Index",
        "Index2",
        "OverrideCycles",
        "AdapterRead1",
        "AdapterRead2",
        "BarcodeMismatchesIndex1",
        "BarcodeMismatchesIndex2",
        "Sample_Project",
        "Sample_Name",
        "Description",
    }
)


@dataclass(frozen=True)
class Sample:
    sample_id: str
    number: int
    lane: int | None = None
    sample_name: str = ""
    index: str = ""
    index2: str = ""
    project: str = ""
    description: str = ""
    line: int = 0

    @property
    def file_name(self) -> str:
        """Name used in FASTQ file names (bcl2fastq: Sample_Name when set, else Sample_ID)."""
        return self.sample_name or self.sample_id


@dataclass(frozen=True)
class SampleSheet:
    version: Literal[1, 2]
    samples: tuple[Sample, ...]
    header: dict[str, str] = field(default_factory=dict)
    reads: tuple[int, ...] = ()
    settings: dict[str, str] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()
    path: str = "SampleSheet.csv"
    index_orientation: Literal["Forward", "ReverseComplement"] = "Forward"

    # ---- normalised settings (None = not set: the CLI/defaults decide)
    @property
    def barcode_mismatches(self) -> tuple[int | None, int | None]:
        if self.version == 2:
            return (
                _opt_int(self, "BarcodeMismatchesIndex1", 0, 2),
                _opt_int(self, "BarcodeMismatchesIndex2", 0, 2),
            )
        v = _opt_int(self, "BarcodeMismatches", 0, 2)
        return (v, v)

    @property
    def override_cycles(self) -> str | None:
        return self.settings.get("OverrideCycles") or None

    @property
    def adapters(self) -> tuple[str, str]:
        a1 = self.settings.get("AdapterRead1" if self.version == 2 else "Adapter", "")
        a2 = self.settings.get("AdapterRead2", "")
        return _adapter(self, a1), _adapter(self, a2)

    @property
    def adapter_behavior(self) -> Literal["trim", "mask"]:
        if self.version == 1:
            return "mask" if _opt_bool(self, "MaskAdapter") else "trim"
        v = self.settings.get("AdapterBehavior", "trim").strip().lower()
        if v not in ("trim", "mask"):
            raise SampleSheetError(f"AdapterBehavior must be trim or mask, got {v!r}", path=self.path)
        return "trim" if v == "trim" else "mask"

    @property
    def adapter_stringency(self) -> float:
        v = self.settings.get("AdapterStringency")
        if v is None:
            return 0.9
        try:
            f = float(v)
        except ValueError:
            raise SampleSheetError(f"AdapterStringency is not a number: {v!r}", path=self.path) from None
        if not 0.5 <= f <= 1.0:
            raise SampleSheetError(f"AdapterStringency must be within 0.5-1.0, got {v}", path=self.path)
        return f

    @property
    def minimum_trimmed_read_length(self) -> int | None:
        return _opt_int(self, "MinimumTrimmedReadLength", 0, 100000)

    @property
    def mask_short_reads(self) -> int | None:
        return _opt_int(self, "MaskShortReads", 0, 100000)

    @property
    def minimum_adapter_overlap(self) -> int | None:
        return _opt_int(self, "MinimumAdapterOverlap", 1, 3)

    @property
    def create_fastq_for_index_reads(self) -> bool:
        return _opt_bool(self, "CreateFastqForIndexReads")

    @property
    def no_lane_splitting(self) -> bool:
        return _opt_bool(self, "NoLaneSplitting")

    def sample_numbers(self) -> dict[str, int]:
        return {s.sample_id: s.number for s in self.samples}


def _opt_int(sheet: SampleSheet, key: str, lo: int, hi: int) -> int | None:
    v = sheet.settings.get(key)
    if v is None or v.strip() == "":
        return None
    try:
        n = int(v)
    except ValueError:
        raise SampleSheetError(f"{key} is not an integer: {v!r}", path=sheet.path) from None
    if not lo <= n <= hi:
        raise SampleSheetError(f"{key} must be within {lo}-{hi}, got {n}", path=sheet.path)
    return n


def _opt_bool(sheet: SampleSheet, key: str) -> bool:
    v = sheet.settings.get(key, "").strip().lower()
    if v in ("", "0", "false", "n", "no"):
        return False
    if v in ("1", "true", "y", "yes"):
        return True
    raise SampleSheetError(f"{key} must be true/false or 1/0, got {v!r}", path=sheet.path)


def _adapter(sheet: SampleSheet, seq: str) -> str:
    seq = seq.strip().upper().replace("+", "")
    if seq and not re.fullmatch(r"[ACGT]+", seq):
        raise SampleSheetError(f"adapter {seq!r} contains characters other than A, C, G, T", path=sheet.path)
    return seq


def _sections(text: str, path: str) -> list[tuple[str, int, list[tuple[int, list[str]]]]]:
    out: list[tuple[str, int, list[tuple[int, list[str]]]]] = []
    current: list[tuple[int, list[str]]] | None = None
    for lineno, row in enumerate(csv.reader(io.StringIO(text)), start=1):
        while row and row[-1].strip() == "":
            row.pop()
        if not row:
            continue
        row = [c.strip() for c in row]
        first = row[0]
        if first.startswith("[") and first.endswith("]") and len(row) == 1:
            current = []
            out.append((first[1:-1].strip(), lineno, current))
        elif first.startswith("["):
            raise SampleSheetError(f"malformed section header {first!r}", path=path, line=lineno)
        elif current is None:
            if first.startswith("#"):
                continue
            raise SampleSheetError("content before the first [Section]", path=path, line=lineno)
        else:
            current.append((lineno, row))
    return out


def parse_samplesheet(source: str | bytes | Path, *, path: str | None = None) -> SampleSheet:
    """Parse a v1 or v2 sample sheet (detected from FileFormatVersion / section names)."""
    if isinstance(source, Path):
        display = path or source.name
        try:
            raw = source.read_bytes()
        except OSError as e:
            raise SampleSheetError(f"cannot read: {e.strerror or e}", path=display) from None
    else:
        display = path or "SampleSheet.csv"
        raw = source.encode() if isinstance(source, str) else source
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise SampleSheetError(f"not UTF-8 text (byte {e.start})", path=display) from None
    if "\x00" in text:
        raise SampleSheetError("contains NUL bytes (binary file?)", path=display)
    sections = _sections(text, display)
    names = {n for n, _, _ in sections}
    header: dict[str, str] = {}
    for name, _, rows in sections:
        if name == "Header":
            header.update({r[0]: (r[1] if len(r) > 1 else "") for _, r in rows})
    v2 = header.get("FileFormatVersion") == "2" or "BCLConvert_Data" in names
    version: Literal[1, 2] = 2 if v2 else 1
    data_name = "BCLConvert_Data" if v2 else "Data"
    settings_name = "BCLConvert_Settings" if v2 else "Settings"
    warnings: list[str] = []
    settings: dict[str, str] = {}
    reads: list[int] = []
    data: tuple[int, list[tuple[int, list[str]]]] | None = None
    for name, lineno, rows in sections:
        if name == settings_name:
            for ln, r in rows:
                key, value = r[0], (r[1] if len(r) > 1 else "")
                known = V2_SETTINGS if v2 else V1_SETTINGS
                if key not in known:
                    if v2:
                        raise SampleSheetError(f"unknown [BCLConvert_Settings] key {key!r}", path=display, line=ln)
                    warnings.append(f"line {ln}: unknown [Settings] key {key!r} ignored")
                    continue
                if key in settings:
                    raise SampleSheetError(f"setting {key!r} given twice", path=display, line=ln)
                settings[key] = value
        elif name == "Reads":
            for ln, r in rows:
                cell = r[-1] if v2 else r[0]
                try:
                    n = int(cell)
                except ValueError:
                    raise SampleSheetError(f"read length {cell!r} is not an integer", path=display, line=ln) from None
                if n <= 0:
                    raise SampleSheetError(f"read length must be positive, got {n}", path=display, line=ln)
                reads.append(n)
        elif name == data_name:
            if data is not None:
                raise SampleSheetError(f"section [{name}] appears twice", path=display, line=lineno)
            data = (lineno, rows)
    if data is None:
        raise SampleSheetError(f"no [{data_name}] section", path=display)
    samples = _parse_data(data, version=version, path=display)
    orientation = header.get("IndexOrientation", "Forward") or "Forward"
    if orientation not in ("Forward", "ReverseComplement"):
        raise SampleSheetError(
            f"IndexOrientation must be Forward or ReverseComplement, got {orientation!r}", path=display
        )
    sheet = SampleSheet(
        version=version,
        samples=tuple(samples),
        header=header,
        reads=tuple(reads),
        settings=settings,
        warnings=tuple(warnings),
        path=display,
        index_orientation="Forward" if orientation == "Forward" else "ReverseComplement",
    )
    # evaluate the typed settings once so that bad values fail at load time, naming the file
    _ = (
        sheet.barcode_mismatches,
        sheet.adapters,
        sheet.adapter_behavior,
        sheet.adapter_stringency,
        sheet.minimum_trimmed_read_length,
        sheet.mask_short_reads,
        sheet.minimum_adapter_overlap,
        sheet.create_fastq_for_index_reads,
        sheet.no_lane_splitting,
    )
    if sheet.override_cycles:
        parse_override_cycles(sheet.override_cycles, path=display)
    return sheet


def _parse_data(data: tuple[int, list[tuple[int, list[str]]]], *, version: int, path: str) -> list[Sample]:
    lineno, rows = data
    if not rows:
        raise SampleSheetError("data section has no column header", path=path, line=lineno)
    hdr_line, cols = rows[0]
    if len(set(cols)) != len(cols):
        raise SampleSheetError("duplicate column in the data header", path=path, line=hdr_line)
    if "Sample_ID" not in cols:
        raise SampleSheetError("data section has no Sample_ID column", path=path, line=hdr_line)
    if version == 2:
        unknown = [c for c in cols if c not in V2_DATA_COLUMNS]
        if unknown:
            raise SampleSheetError(
                f"unknown [BCLConvert_Data] column(s): {', '.join(unknown)}", path=path, line=hdr_line
            )
    idx1_col = "Index" if version == 2 else "index"
    idx2_col = "Index2" if version == 2 else "index2"
    numbers: dict[str, int] = {}
    seen: set[tuple[int | None, str]] = set()
    out: list[Sample] = []
    for ln, row in rows[1:]:
        if len(row) > len(cols):
            raise SampleSheetError(f"{len(row)} fields but the header has {len(cols)}", path=path, line=ln)
        rec = dict(zip(cols, row + [""] * (len(cols) - len(row)), strict=True))
        sid = rec["Sample_ID"]
        if not sid:
            raise SampleSheetError("empty Sample_ID", path=path, line=ln)
        for col in ("Sample_ID", "Sample_Name", "Sample_Project"):
            val = rec.get(col, "")
            if val and not _NAME.match(val):
                raise SampleSheetError(
                    f"{col} {val!r} has illegal characters (allowed: A-Z a-z 0-9 _ -)", path=path, line=ln
                )
        lane: int | None = None
        if rec.get("Lane"):
            try:
                lane = int(rec["Lane"])
            except ValueError:
                raise SampleSheetError(f"Lane {rec['Lane']!r} is not an integer", path=path, line=ln) from None
            if lane < 1:
                raise SampleSheetError(f"Lane must be >= 1, got {lane}", path=path, line=ln)
        i1 = rec.get(idx1_col, "").upper()
        i2 = rec.get(idx2_col, "").upper()
        for name, seq in ((idx1_col, i1), (idx2_col, i2)):
            if not _INDEX.match(seq):
                raise SampleSheetError(f"{name} {seq!r} has characters other than A, C, G, T, N", path=path, line=ln)
        key = (lane, sid)
        if key in seen:
            where = f" in lane {lane}" if lane else ""
            raise SampleSheetError(f"duplicate Sample_ID {sid!r}{where}", path=path, line=ln)
        seen.add(key)
        if sid not in numbers:
            numbers[sid] = len(numbers) + 1
        out.append(
            Sample(
                sample_id=sid,
                number=numbers[sid],
                lane=lane,
                sample_name=rec.get("Sample_Name", "") if version == 1 else "",
                index=i1,
                index2=i2,
                project=rec.get("Sample_Project", ""),
                description=rec.get("Description", ""),
                line=ln,
            )
        )
    if not out:
        raise SampleSheetError("data section lists no samples", path=path, line=hdr_line)
    lanes = {s.lane for s in out}
    if None in lanes and len(lanes) > 1:
        raise SampleSheetError("Lane is set for some samples and empty for others", path=path)
    return out


def parse_override_cycles(text: str, *, path: str = "SampleSheet.csv") -> list[list[tuple[str, int]]]:
    """``Y151;I8;U8Y143`` -> [[('Y',151)], [('I',8)], [('U',8),('Y',143)]]. '*' is not supported."""
    out = []
    for part in text.strip().split(";"):
        part = part.strip().upper()
        pos, segs = 0, []
        for m in _SEGMENT.finditer(part):
            if m.start() != pos:
                break
            if m.group(2) == "*":
                raise SampleSheetError(f"OverrideCycles {text!r}: '*' lengths are not supported", path=path)
            n = int(m.group(2))
            if n <= 0:
                raise SampleSheetError(f"OverrideCycles {text!r}: zero-length segment", path=path)
            segs.append((m.group(1), n))
            pos = m.end()
        if pos != len(part) or not segs:
            raise SampleSheetError(f"OverrideCycles {text!r}: cannot parse {part!r} (use Y/I/U/N + count)", path=path)
        out.append(segs)
    return out


# --------------------------------------------------------------------------------------- writers


def _csv(rows: Iterable[Sequence[str]]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    for r in rows:
        w.writerow(r)
    return buf.getvalue()


def write_samplesheet_v1(
    samples: Sequence[Sample],
    *,
    reads: Sequence[int] = (),
    settings: dict[str, str] | None = None,
    header: dict[str, str] | None = None,
) -> str:
    dual = any(s.index2 for s in samples)
    laned = any(s.lane is not None for s in samples)
    rows: list[list[str]] = [["[Header]"], ["IEMFileVersion", "5"]]
    rows += [[k, v] for k, v in (header or {}).items()]
    rows += [[], ["[Reads]"]] + [[str(r)] for r in reads]
    rows += [[], ["[Settings]"]] + [[k, v] for k, v in (settings or {}).items()]
    cols = (["Lane"] if laned else []) + [
        "Sample_ID",
        "Sample_Name",
        "Sample_Plate",
        "Sample_Well",
        "I7_Index_ID",
        "index",
    ]
    if dual:
        cols += ["I5_Index_ID", "index2"]
    cols += ["Sample_Project", "Description"]
    rows += [[], ["[Data]"], cols]
    for s in samples:
        r = ([str(s.lane)] if laned else []) + [
            s.sample_id,
            s.sample_name,
            "",
            "",
            f"i7_{s.sample_id}",
            s.index,
        ]
        if dual:
            r += [f"i5_{s.sample_id}", s.index2]
        r += [s.project, s.description]
        rows.append(r)
    return _csv(rows)


def write_samplesheet_v2(
    samples: Sequence[Sample],
    *,
    reads: dict[str, int],
    settings: dict[str, str] | None = None,
    run_name: str = "seqhub",
    platform: str = "NovaSeqXSeries",
) -> str:
    dual = any(s.index2 for s in samples)
    indexed = any(s.index for s in samples)
    laned = any(s.lane is not None for s in samples)
    projects = any(s.project for s in samples)
    rows: list[list[str]] = [
        ["[Header]"],
        ["FileFormatVersion", "2"],
        ["RunName", run_name],
        ["InstrumentPlatform", platform],
        ["IndexOrientation", "Forward"],
        [],
        ["[Reads]"],
    ]
    rows += [[k, str(v)] for k, v in reads.items()]
    rows += [[], ["[BCLConvert_Settings]"], ["SoftwareVersion", "4.2.7"]]
    rows += [[k, v] for k, v in (settings or {}).items()]
    cols = (
        (["Lane"] if laned else [])
        + ["Sample_ID"]
        + (["Index"] if indexed else [])
        + (["Index2"] if dual else [])
        + (["Sample_Project"] if projects else [])
    )
    rows += [[], ["[BCLConvert_Data]"], cols]
    for s in samples:
        rows.append(
            ([str(s.lane)] if laned else [])
            + [s.sample_id]
            + ([s.index] if indexed else [])
            + ([s.index2] if dual else [])
            + ([s.project] if projects else [])
        )
    return _csv(rows)


def with_numbers(samples: Sequence[Sample]) -> list[Sample]:
    """Renumber samples S1.. by first appearance of their Sample_ID."""
    numbers: dict[str, int] = {}
    out = []
    for s in samples:
        numbers.setdefault(s.sample_id, len(numbers) + 1)
        out.append(replace(s, number=numbers[s.sample_id]))
    return out
