"""RunInfo.xml and RunParameters.xml: parse, write, and derive the expected file manifest.

The manifest (`RunInfo.expected_files(fmt)`) is the list of relative paths a complete run folder
must contain for a given base-call layout; ingest uses it to decide when a run is uploaded.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal
from xml.etree.ElementTree import Element, SubElement, tostring

from defusedxml import ElementTree as SafeET

from .errors import RunInfoError

Format = Literal["bcl", "bcl.gz", "cbcl", "bcl.bgzf"]
Positions = Literal["locs", "clocs", "s.locs", "lane.locs"]
FORMATS: tuple[Format, ...] = ("bcl", "bcl.gz", "cbcl", "bcl.bgzf")
COMPLETION_MARKERS = ("RTAComplete.txt", "CopyComplete.txt")
DEFAULT_POSITIONS: dict[str, Positions] = {"bcl": "locs", "bcl.gz": "clocs", "cbcl": "s.locs", "bcl.bgzf": "lane.locs"}

_RUN_ID = re.compile(r"^[A-Za-z0-9_.\-]+$")


@dataclass(frozen=True)
class ReadInfo:
    number: int
    cycles: int
    is_index: bool
    reverse_complement: bool = False


@dataclass(frozen=True)
class RunInfo:
    run_id: str
    number: int
    flowcell: str
    instrument: str
    date: dt.datetime | None
    reads: tuple[ReadInfo, ...]
    lane_count: int
    surface_count: int = 1
    swath_count: int = 1
    tile_count: int = 1
    section_count: int = 1
    naming: str = "FourDigit"
    tiles: tuple[str, ...] = ()  # "<lane>_<tile>" as listed (or derived)
    version: int = 0
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def total_cycles(self) -> int:
        return sum(r.cycles for r in self.reads)

    @property
    def lanes(self) -> tuple[int, ...]:
        return tuple(range(1, self.lane_count + 1))

    @property
    def read_structure(self) -> str:
        """Compact structure, e.g. ``151T8B8B151T``."""
        return "".join(f"{r.cycles}{'B' if r.is_index else 'T'}" for r in self.reads)

    def read_start(self, read_index: int) -> int:
        """0-based first cycle of ``self.reads[read_index]`` in the global cycle numbering."""
        return sum(r.cycles for r in self.reads[:read_index])

    def lane_tiles(self, lane: int) -> tuple[int, ...]:
        """Tile numbers of a lane, in RunInfo order."""
        out = []
        for t in self.tiles:
            ln, _, num = t.partition("_")
            if int(ln) == lane:
                out.append(int(num))
        return tuple(out)

    def surfaces(self, lane: int) -> tuple[int, ...]:
        """Surfaces used by a lane's tiles (the most significant digit of the tile number)."""
        digits = 5 if self.naming == "FiveDigit" else 4
        return tuple(sorted({t // int(10 ** (digits - 1)) for t in self.lane_tiles(lane)}))

    def surface_of(self, tile: int) -> int:
        digits = 5 if self.naming == "FiveDigit" else 4
        return tile // int(10 ** (digits - 1))

    def expected_files(
        self, fmt: Format, *, positions: Positions | None = None, markers: Iterable[str] = COMPLETION_MARKERS
    ) -> list[str]:
        """Relative paths (POSIX) a complete run folder contains for the layout ``fmt``.

        RunInfo.xml, base calls (per tile and cycle for bcl/bcl.gz, per lane, cycle and surface for
        cbcl), one filter per tile, positions (per tile .locs/.clocs or the shared s.locs) and the
        completion markers. NextSeq 500/550 (``bcl.bgzf``): per lane one ``<cccc>.bcl.bgzf`` per
        cycle, the tile index ``s_<lane>.bci`` and lane-level ``s_<lane>.filter`` / ``s_<lane>.locs``.
        RunParameters.xml and SampleSheet.csv are not required (instruments name
        and place them differently) and InterOp is not needed for conversion.
        """
        if fmt not in FORMATS:
            raise RunInfoError(f"unknown base-call format {fmt!r} (expected one of {', '.join(FORMATS)})")
        pos = positions or DEFAULT_POSITIONS[fmt]
        if (fmt == "bcl.bgzf") != (pos == "lane.locs"):
            raise RunInfoError(f"positions {pos!r} do not go with the base-call format {fmt!r}")
        files: list[str] = ["RunInfo.xml"]
        cycles = range(1, self.total_cycles + 1)
        for lane in self.lanes:
            tiles = self.lane_tiles(lane)
            if not tiles:
                raise RunInfoError(f"lane {lane} has no tiles", path="RunInfo.xml")
            base = f"Data/Intensities/BaseCalls/L{lane:03d}"
            if fmt == "bcl.bgzf":
                files.extend(f"{base}/{c:04d}.bcl.bgzf" for c in cycles)
                files.extend(f"{base}/s_{lane}.{kind}" for kind in ("bci", "filter", "locs"))
                continue
            if fmt == "cbcl":
                for c in cycles:
                    files.extend(f"{base}/C{c}.1/L{lane:03d}_{s}.cbcl" for s in self.surfaces(lane))
            else:
                for c in cycles:
                    files.extend(f"{base}/C{c}.1/s_{lane}_{t}.{fmt}" for t in tiles)
            files.extend(f"{base}/s_{lane}_{t}.filter" for t in tiles)
            if pos in ("locs", "clocs"):
                files.extend(f"Data/Intensities/L{lane:03d}/s_{lane}_{t}.{pos}" for t in tiles)
        if pos == "s.locs":
            files.append("Data/Intensities/s.locs")
        files.extend(markers)
        return files


def _flag(el: Element, name: str) -> bool:
    v = (el.get(name) or "N").strip().upper()
    if v not in ("Y", "N", "TRUE", "FALSE", "1", "0"):
        raise RunInfoError(f"attribute {name}={v!r} is not Y/N", path="RunInfo.xml")
    return v in ("Y", "TRUE", "1")


def _int(text: str | None, what: str, *, default: int | None = None) -> int:
    if text is None or not text.strip():
        if default is not None:
            return default
        raise RunInfoError(f"missing {what}", path="RunInfo.xml")
    try:
        value: int = int(text.strip())
    except ValueError:
        raise RunInfoError(f"{what} is not an integer: {text!r}", path="RunInfo.xml") from None
    return value


_DATE_FORMATS = (
    "%y%m%d",
    "%Y%m%d",
    "%m/%d/%Y %I:%M:%S %p",
    "%m/%d/%Y %H:%M:%S",
    "%m/%d/%Y",
    "%Y-%m-%d",
    "%d/%m/%Y",
)


def parse_run_date(text: str) -> dt.datetime:
    """Parse RunInfo ``<Date>`` styles: YYMMDD, YYYYMMDD, ``M/D/YYYY h:mm:ss AM``, ISO 8601."""
    s = text.strip()
    try:
        return dt.datetime.fromisoformat(s.replace("Z", "+00:00"))
    except ValueError:
        pass
    for f in _DATE_FORMATS:
        try:
            return dt.datetime.strptime(s, f)
        except ValueError:
            continue
    raise RunInfoError(f"unrecognised run date {text!r}", path="RunInfo.xml")


def _tile_numbers(surfaces: int, swaths: int, tiles: int, sections: int, naming: str) -> list[int]:
    out: list[int] = []
    for s in range(1, surfaces + 1):
        for w in range(1, swaths + 1):
            if naming == "FiveDigit":
                out.extend(
                    s * 10000 + w * 1000 + c * 100 + t for c in range(1, sections + 1) for t in range(1, tiles + 1)
                )
            else:
                out.extend(s * 1000 + w * 100 + t for t in range(1, tiles + 1))
    return out


def parse_runinfo(source: str | bytes | Path) -> RunInfo:
    """Parse RunInfo.xml from a path, bytes or a string of XML."""
    if isinstance(source, Path):
        try:
            data = source.read_bytes()
        except OSError as e:
            raise RunInfoError(f"cannot read: {e.strerror}", path=source.name) from None
    else:
        data = source.encode() if isinstance(source, str) else source
    try:
        root = SafeET.fromstring(data)
    except Exception as e:  # defusedxml raises ParseError and its own DTD/entity errors
        raise RunInfoError(f"not well-formed XML ({e})", path="RunInfo.xml") from None
    if root.tag != "RunInfo":
        raise RunInfoError(f"root element is <{root.tag}>, expected <RunInfo>", path="RunInfo.xml")
    run = root.find("Run")
    if run is None:
        raise RunInfoError("no <Run> element", path="RunInfo.xml")
    run_id = (run.get("Id") or "").strip()
    if not run_id or not _RUN_ID.match(run_id):
        raise RunInfoError(f"invalid run Id {run_id!r}", path="RunInfo.xml")
    number = _int(run.get("Number"), "Run Number")
    flowcell = (run.findtext("Flowcell") or "").strip()
    instrument = (run.findtext("Instrument") or "").strip()
    if not flowcell or not instrument:
        raise RunInfoError("missing <Flowcell> or <Instrument>", path="RunInfo.xml")
    date_text = run.findtext("Date")
    date = parse_run_date(date_text) if date_text and date_text.strip() else None

    reads_el = run.find("Reads")
    if reads_el is None or not list(reads_el):
        raise RunInfoError("no <Reads>", path="RunInfo.xml")
    reads = []
    for r in reads_el.findall("Read"):
        reads.append(
            ReadInfo(
                number=_int(r.get("Number"), "Read Number"),
                cycles=_int(r.get("NumCycles"), "Read NumCycles"),
                is_index=_flag(r, "IsIndexedRead"),
                reverse_complement=_flag(r, "IsReverseComplement"),
            )
        )
    reads.sort(key=lambda r: r.number)
    if [r.number for r in reads] != list(range(1, len(reads) + 1)):
        raise RunInfoError("read numbers must be 1..n without gaps", path="RunInfo.xml")
    if any(r.cycles <= 0 for r in reads):
        raise RunInfoError("a read has NumCycles <= 0", path="RunInfo.xml")

    layout = run.find("FlowcellLayout")
    if layout is None:
        raise RunInfoError("no <FlowcellLayout>", path="RunInfo.xml")
    lanes = _int(layout.get("LaneCount"), "LaneCount")
    surfaces = _int(layout.get("SurfaceCount"), "SurfaceCount", default=1)
    swaths = _int(layout.get("SwathCount"), "SwathCount", default=1)
    tile_count = _int(layout.get("TileCount"), "TileCount", default=1)
    sections = _int(layout.get("SectionPerLane"), "SectionPerLane", default=1)
    tileset = layout.find("TileSet")
    naming = (tileset.get("TileNamingConvention") if tileset is not None else None) or (
        "FiveDigit" if layout.get("SectionPerLane") else "FourDigit"
    )
    tiles: list[str] = []
    if tileset is not None:
        for t in tileset.iter("Tile"):
            txt = (t.text or "").strip()
            m = re.fullmatch(r"(\d+)_(\d{4,5})", txt)
            if not m or not 1 <= int(m.group(1)) <= lanes:
                raise RunInfoError(f"invalid tile {txt!r}", path="RunInfo.xml")
            tiles.append(txt)
    if not tiles:
        nums = _tile_numbers(surfaces, swaths, tile_count, sections, naming)
        tiles = [f"{ln}_{t}" for ln in range(1, lanes + 1) for t in nums]
    if len(set(tiles)) != len(tiles):
        raise RunInfoError("duplicate tile in <Tiles>", path="RunInfo.xml")
    return RunInfo(
        run_id=run_id,
        number=number,
        flowcell=flowcell,
        instrument=instrument,
        date=date,
        reads=tuple(reads),
        lane_count=lanes,
        surface_count=surfaces,
        swath_count=swaths,
        tile_count=tile_count,
        section_count=sections,
        naming=naming,
        tiles=tuple(tiles),
        version=_int(root.get("Version"), "Version", default=0),
    )


def runinfo_xml(info: RunInfo) -> bytes:
    """Serialise a RunInfo the way current instruments write it (Version 5/6 style)."""
    root = Element("RunInfo", Version=str(info.version or 5))
    run = SubElement(root, "Run", Id=info.run_id, Number=str(info.number))
    SubElement(run, "Flowcell").text = info.flowcell
    SubElement(run, "Instrument").text = info.instrument
    SubElement(run, "Date").text = info.date.strftime("%y%m%d") if info.date else ""
    reads = SubElement(run, "Reads")
    for r in info.reads:
        attrs = {
            "Number": str(r.number),
            "NumCycles": str(r.cycles),
            "IsIndexedRead": "Y" if r.is_index else "N",
        }
        if r.is_index:
            attrs["IsReverseComplement"] = "Y" if r.reverse_complement else "N"
        SubElement(reads, "Read", attrs)
    layout = SubElement(
        run,
        "FlowcellLayout",
        LaneCount=str(info.lane_count),
        SurfaceCount=str(info.surface_count),
        SwathCount=str(info.swath_count),
        TileCount=str(info.tile_count),
    )
    ts = SubElement(layout, "TileSet", TileNamingConvention=info.naming)
    tiles = SubElement(ts, "Tiles")
    for t in info.tiles:
        SubElement(tiles, "Tile").text = t
    return b'<?xml version="1.0"?>\n' + tostring(root, encoding="unicode").encode() + b"\n"


def run_parameters_xml(info: RunInfo, *, application: str = "seqhub-simulator", platform: str = "NovaSeq") -> bytes:
    root = Element("RunParameters")
    SubElement(root, "RunId").text = info.run_id
    SubElement(root, "InstrumentType").text = platform
    SubElement(root, "Application").text = application
    SubElement(root, "FlowCellSerialBarcode").text = info.flowcell
    SubElement(root, "RunNumber").text = str(info.number)
    reads = SubElement(root, "PlannedReads")
    for r in info.reads:
        SubElement(reads, "Read", ReadName=f"{'Index' if r.is_index else 'Read'}{r.number}", Cycles=str(r.cycles))
    return b'<?xml version="1.0"?>\n' + tostring(root, encoding="unicode").encode() + b"\n"


@dataclass(frozen=True)
class RunParameters:
    run_id: str | None
    instrument_type: str | None
    application: str | None
    rta_version: str | None


def parse_run_parameters(data: bytes) -> RunParameters:
    """The few RunParameters.xml fields we use; element names vary by instrument, so look broadly."""
    try:
        root = SafeET.fromstring(data)
    except Exception as e:
        raise RunInfoError(f"not well-formed XML ({e})", path="RunParameters.xml") from None

    def first(*names: str) -> str | None:
        for n in names:
            el = root.find(f".//{n}")
            if el is not None and el.text and el.text.strip():
                return str(el.text).strip()
        return None

    return RunParameters(
        run_id=first("RunId", "RunID"),
        instrument_type=first("InstrumentType", "InstrumentName", "ApplicationName"),
        application=first("Application", "ApplicationName"),
        rta_version=first("RtaVersion", "RTAVersion"),
    )
