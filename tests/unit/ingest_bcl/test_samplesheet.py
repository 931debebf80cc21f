"""Sample sheets v1/v2: round trips (hypothesis), settings, and errors that name file and line."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.ingest.bcl.errors import SampleSheetError
from services.ingest.bcl.samplesheet import (
    Sample,
    parse_override_cycles,
    parse_samplesheet,
    with_numbers,
    write_samplesheet_v1,
    write_samplesheet_v2,
)

ident = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-", min_size=1, max_size=12)
idx = st.text(alphabet="ACGT", min_size=8, max_size=8)


@st.composite
def sample_lists(draw: st.DrawFn) -> list[Sample]:
    ids = draw(st.lists(ident, min_size=1, max_size=8, unique=True))
    laned = draw(st.booleans())
    dual = draw(st.booleans())
    out = []
    for sid in ids:
        lane = draw(st.integers(1, 4)) if laned else None
        out.append(
            Sample(
                sample_id=sid,
                number=0,
                lane=lane,
                index=draw(idx),
                index2=draw(idx) if dual else "",
                project=draw(st.sampled_from(["", "ProjA"])),
            )
        )
    return with_numbers(out)


@given(sample_lists())
@settings(max_examples=60)
def test_v2_round_trip(samples: list[Sample]) -> None:
    text = write_samplesheet_v2(
        samples,
        reads={"Read1Cycles": 151, "Index1Cycles": 8},
        settings={"BarcodeMismatchesIndex1": "0", "NoLaneSplitting": "true"},
    )
    sheet = parse_samplesheet(text)
    assert sheet.version == 2
    got = [(s.sample_id, s.number, s.lane, s.index, s.index2, s.project) for s in sheet.samples]
    assert got == [(s.sample_id, s.number, s.lane, s.index, s.index2, s.project) for s in samples]
    assert sheet.barcode_mismatches == (0, None) and sheet.no_lane_splitting


@given(sample_lists())
@settings(max_examples=60)
def test_v1_round_trip(samples: list[Sample]) -> None:
    text = write_samplesheet_v1(samples, reads=[151, 151], settings={"Adapter": "AGATCGGAAGAGC"})
    sheet = parse_samplesheet(text)
    assert sheet.version == 1 and sheet.reads == (151, 151)
    assert [(s.sample_id, s.lane, s.index, s.index2) for s in sheet.samples] == [
        (s.sample_id, s.lane, s.index, s.index2) for s in samples
    ]
    assert sheet.adapters == ("AGATCGGAAGAGC", "")


def test_iem_sheet_with_trailing_commas_and_sample_name() -> None:
    text = (
        "[Header],,,\nIEMFileVersion,4,,\n\n[Reads],,,\n151,,,\n151,,,\n\n[Settings],,,\nAdapter,CTGTCTCTTATA,,\n"
        "Foo,1,,\n\n[Data],,,\nSample_ID,Sample_Name,index,Sample_Project\nA1,alpha,ACGTACGT,P1\nB2,,TTTTCCCC,\n"
        "A1,alpha,ACGTACGT,P1\n"
    )
    with pytest.raises(SampleSheetError, match=r"line 16: duplicate Sample_ID 'A1'"):
        parse_samplesheet(text)
    sheet = parse_samplesheet(text.rsplit("A1,alpha", 1)[0])
    assert [s.file_name for s in sheet.samples] == ["alpha", "B2"]
    assert [s.number for s in sheet.samples] == [1, 2]
    assert sheet.warnings == ("line 10: unknown [Settings] key 'Foo' ignored",)


def test_same_sample_in_two_lanes_keeps_its_number() -> None:
    text = "[Data]\nLane,Sample_ID,index\n1,X,AAAACCCC\n2,X,AAAACCCC\n1,Y,GGGGTTTT\n"
    sheet = parse_samplesheet(text)
    assert [(s.sample_id, s.number, s.lane) for s in sheet.samples] == [("X", 1, 1), ("X", 1, 2), ("Y", 2, 1)]


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (
            "[Header]\nFileFormatVersion,2\n[BCLConvert_Settings]\nBarcodeMismatches,1\n[BCLConvert_Data]\nSample_ID\nA\n",
            "unknown \\[BCLConvert_Settings\\] key 'BarcodeMismatches'",
        ),
        (
            "[Header]\nFileFormatVersion,2\n[BCLConvert_Settings]\nBarcodeMismatchesIndex1,3\n[BCLConvert_Data]\n"
            "Sample_ID\nA\n",
            "BarcodeMismatchesIndex1 must be within 0-2",
        ),
        ("[Data]\nSample_ID,index\nA B,ACGT\n", "line 3: Sample_ID 'A B' has illegal characters"),
        ("[Data]\nSample_ID,index\nA,ACGU\n", "line 3: index 'ACGU' has characters other than"),
        ("[Data]\nSample_ID,index\n", "lists no samples"),
        ("[Header]\nx,y\n", "no \\[Data\\] section"),
        ("[Data]\nLane,Sample_ID\n1,A\n,B\n", "Lane is set for some samples"),
        ("[Data]\nLane,Sample_ID\nx,A\n", "Lane 'x' is not an integer"),
        (b"\xff\xfe[Data]", "not UTF-8"),
    ],
)
def test_bad_sheets_name_the_problem(text: str | bytes, problem: str) -> None:
    with pytest.raises(SampleSheetError, match=problem) as e:
        parse_samplesheet(text, path="runs/SampleSheet.csv")
    assert str(e.value).startswith("runs/SampleSheet.csv: ")


def test_override_cycles() -> None:
    assert parse_override_cycles("Y151;I8;U8Y143") == [[("Y", 151)], [("I", 8)], [("U", 8), ("Y", 143)]]
    assert parse_override_cycles("N1Y150;I8N2") == [[("N", 1), ("Y", 150)], [("I", 8), ("N", 2)]]
    with pytest.raises(SampleSheetError, match="cannot parse"):
        parse_override_cycles("Y151;X8")
