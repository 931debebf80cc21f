"""RunInfo.xml parsing, date styles, tile layout and the expected-file manifest."""

from __future__ import annotations

import datetime as dt

import pytest

from services.ingest.bcl.errors import RunInfoError
from services.ingest.bcl.runinfo import parse_run_date, parse_runinfo, runinfo_xml

NOVASEQ = b"""<?xml version="1.0"?>
<RunInfo Version="5">
  <Run Id="240601_A00123_0042_AHXXXXXXXX" Number="42">
    <Flowcell>HXXXXXXXX</Flowcell> <Instrument>A00123</Instrument> <Date>240601</Date>
    <Reads>
      <Read Number="1" NumCycles="151" IsIndexedRead="N"/>
      <Read Number="2" NumCycles="8"   IsIndexedRead="Y"/>
      <Read Number="3" NumCycles="8"   IsIndexedRead="Y" IsReverseComplement="Y"/>
      <Read Number="4" NumCycles="151" IsIndexedRead="N"/>
    </Reads>
    <FlowcellLayout LaneCount="4" SurfaceCount="2" SwathCount="6" TileCount="88">
      <TileSet TileNamingConvention="FourDigit"><Tiles>
        <Tile>1_1101</Tile><Tile>1_2101</Tile><Tile>2_1101</Tile><Tile>2_2101</Tile>
        <Tile>3_1101</Tile><Tile>3_2101</Tile><Tile>4_1101</Tile><Tile>4_2101</Tile>
      </Tiles></TileSet>
    </FlowcellLayout>
  </Run>
</RunInfo>"""

MISEQ_NO_TILES = b"""<?xml version="1.0"?>
<RunInfo Version="2"><Run Id="150101_M01234_0007_000000000-ABCDE" Number="7">
<Flowcell>000000000-ABCDE</Flowcell><Instrument>M01234</Instrument><Date>1/1/2015 10:11:12 AM</Date>
<Reads><Read Number="1" NumCycles="26" IsIndexedRead="N"/>
<Read Number="2" NumCycles="8" IsIndexedRead="Y"/></Reads>
<FlowcellLayout LaneCount="1" SurfaceCount="2" SwathCount="1" TileCount="3"/></Run></RunInfo>"""


def test_novaseq_runinfo_fields() -> None:
    info = parse_runinfo(NOVASEQ)
    assert info.run_id == "240601_A00123_0042_AHXXXXXXXX"
    assert (info.number, info.flowcell, info.instrument) == (42, "HXXXXXXXX", "A00123")
    assert info.date == dt.datetime(2024, 6, 1)
    assert [r.cycles for r in info.reads] == [151, 8, 8, 151]
    assert [r.is_index for r in info.reads] == [False, True, True, False]
    assert [r.reverse_complement for r in info.reads] == [False, False, True, False]
    assert info.read_structure == "151T8B8B151T"
    assert info.read_start(1) == 151  # read 2 starts at cycle 152 (1-based)
    assert info.lane_tiles(2) == (1101, 2101)
    assert info.surfaces(1) == (1, 2)


def test_cbcl_manifest_matches_the_reference_count() -> None:
    """4 lanes x 318 cycles x 2 surfaces CBCLs + a filter per tile + s.locs + RunInfo + markers."""
    files = parse_runinfo(NOVASEQ).expected_files("cbcl")
    cbcl = [f for f in files if f.endswith(".cbcl")]
    assert len(cbcl) == 4 * 318 * 2
    assert "Data/Intensities/BaseCalls/L001/C152.1/L001_2.cbcl" in cbcl
    assert sum(f.endswith(".filter") for f in files) == 8
    assert "Data/Intensities/s.locs" in files
    assert files[0] == "RunInfo.xml" and files[-1] == "CopyComplete.txt"
    assert len(files) == len(set(files))


def test_bcl_manifest_is_per_tile_and_cycle() -> None:
    info = parse_runinfo(MISEQ_NO_TILES)
    files = info.expected_files("bcl")
    assert sum(f.endswith(".bcl") for f in files) == 1 * 6 * 34  # tiles derived from the layout
    assert "Data/Intensities/BaseCalls/L001/C34.1/s_1_2103.bcl" in files
    assert "Data/Intensities/L001/s_1_1101.locs" in files
    gz = info.expected_files("bcl.gz", positions="clocs")
    assert "Data/Intensities/BaseCalls/L001/C1.1/s_1_1101.bcl.gz" in gz
    assert "Data/Intensities/L001/s_1_1101.clocs" in gz


def test_tiles_derived_from_layout_and_us_date() -> None:
    info = parse_runinfo(MISEQ_NO_TILES)
    assert info.lane_tiles(1) == (1101, 1102, 1103, 2101, 2102, 2103)
    assert info.date == dt.datetime(2015, 1, 1, 10, 11, 12)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("240601", dt.datetime(2024, 6, 1)),
        ("20240601", dt.datetime(2024, 6, 1)),
        ("6/1/2024 1:02:03 PM", dt.datetime(2024, 6, 1, 13, 2, 3)),
        ("2024-06-01T12:34:56Z", dt.datetime(2024, 6, 1, 12, 34, 56, tzinfo=dt.UTC)),
    ],
)
def test_date_styles(text: str, expected: dt.datetime) -> None:
    assert parse_run_date(text) == expected


def test_round_trip_through_writer() -> None:
    info = parse_runinfo(NOVASEQ)
    again = parse_runinfo(runinfo_xml(info))
    assert again.reads == info.reads and again.tiles == info.tiles and again.number == info.number


@pytest.mark.parametrize(
    ("xml", "problem"),
    [
        (b"<RunInfo><Run", "not well-formed"),
        (b"<Other/>", "expected <RunInfo>"),
        (NOVASEQ.replace(b'Number="42"', b'Number="x"'), "not an integer"),
        (NOVASEQ.replace(b'Number="3" ', b'Number="5" '), "without gaps"),
        (NOVASEQ.replace(b"<Tile>1_2101</Tile>", b"<Tile>9_2101</Tile>"), "invalid tile"),
        (NOVASEQ.replace(b"<Date>240601</Date>", b"<Date>June first</Date>"), "unrecognised run date"),
        (b'<!DOCTYPE x [<!ENTITY a "b">]><RunInfo/>', "not well-formed"),
    ],
)
def test_bad_runinfo_names_the_problem(xml: bytes, problem: str) -> None:
    with pytest.raises(RunInfoError, match=problem) as e:
        parse_runinfo(xml)
    assert e.value.path == "RunInfo.xml"
