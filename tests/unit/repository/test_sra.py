"""SRA XML <-> GMI JSON: the real ENA documents round-trip, errors carry XSD paths, hostile XML is refused."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest

from services.repository.models import ResourceType
from services.repository.sra import (
    MAX_DOCUMENT_BYTES,
    InvalidDocument,
    detect_type,
    gmi_to_xml,
    parse_xml,
    validate_gmi,
    xml_to_gmi,
)
from tests.shared import SHARED

EXAMPLES = (SHARED / "specs/sra-examples")
DOCS = [
    ("SRS001433.xml", ResourceType.SAMPLE),
    ("SRP000539.xml", ResourceType.STUDY),
    ("ERR000076.xml", ResourceType.RUN),
]


def _canonical(elem: ET.Element) -> tuple[object, ...]:
    """Element content without formatting whitespace: tag, attributes, text, children."""
    text = (elem.text or "").strip()
    return (elem.tag, sorted(elem.attrib.items()), text, [_canonical(child) for child in elem])


@pytest.mark.parametrize(("name", "rtype"), DOCS)
def test_real_ena_document_round_trips_xml_json_xml(name: str, rtype: ResourceType) -> None:
    original = (EXAMPLES / name).read_bytes()
    [body] = xml_to_gmi(original, rtype)
    as_json = json.loads(json.dumps(body))  # what a client would see and send back
    normalised = validate_gmi(as_json, rtype)
    assert normalised == body
    rendered = gmi_to_xml([normalised], rtype)
    assert xml_to_gmi(rendered, rtype) == [body]  # still schema-valid
    assert _canonical(ET.fromstring(rendered)) == _canonical(ET.fromstring(original))  # noqa: S314


def test_gmi_json_uses_friendly_keys_and_typed_values() -> None:
    [body] = xml_to_gmi((EXAMPLES / "SRS001433.xml").read_bytes(), ResourceType.SAMPLE)
    assert body["alias"] == "NA18758"
    assert body["sample_name"] == {"taxon_id": 9606, "scientific_name": "Homo sapiens"}
    assert body["identifiers"]["external_id"] == [{"namespace": "BioSample", "value": "SAMN00000985"}]
    assert not any(key.startswith(("@", "$")) for key in json.dumps(body).split('"') if key)


def test_json_in_any_key_order_is_put_back_in_schema_order() -> None:
    body = {"sample_name": {"scientific_name": "Homo", "taxon_id": "9606"}, "title": "t", "alias": "a"}
    normalised = validate_gmi(body, ResourceType.SAMPLE)
    assert normalised["sample_name"]["taxon_id"] == 9606
    xml = gmi_to_xml([normalised], ResourceType.SAMPLE).decode()
    assert xml.index("<TITLE>") < xml.index("<SAMPLE_NAME>")


def test_invalid_xml_lists_each_field_with_its_xsd_path() -> None:
    bad = (EXAMPLES / "SRS001433.xml").read_bytes().replace(b"<TAXON_ID>9606", b"<TAXON_ID>human")
    with pytest.raises(InvalidDocument) as info:
        xml_to_gmi(bad, ResourceType.SAMPLE)
    [error] = info.value.errors
    assert error.path == "/SAMPLE_SET/SAMPLE/SAMPLE_NAME/TAXON_ID"
    assert error.field == "sample_name.taxon_id"
    assert "human" in error.reason


def test_unknown_element_is_named() -> None:
    bad = (EXAMPLES / "SRS001433.xml").read_bytes().replace(b"<TITLE>", b"<BOGUS/><TITLE>")
    with pytest.raises(InvalidDocument) as info:
        xml_to_gmi(bad, ResourceType.SAMPLE)
    assert any("BOGUS" in e.reason and e.path == "/SAMPLE_SET/SAMPLE" for e in info.value.errors)


def test_missing_required_element_in_json_is_reported() -> None:
    with pytest.raises(InvalidDocument) as info:
        validate_gmi({"title": "no name"}, ResourceType.SAMPLE)
    assert any("SAMPLE_NAME" in e.reason for e in info.value.errors)


def test_wrong_root_for_the_collection_is_refused() -> None:
    with pytest.raises(InvalidDocument, match="expected <STUDY_SET>"):
        xml_to_gmi((EXAMPLES / "SRS001433.xml").read_bytes(), ResourceType.STUDY)


def test_detect_type_from_root() -> None:
    assert detect_type(parse_xml((EXAMPLES / "ERR000076.xml").read_bytes())) is ResourceType.RUN


@pytest.mark.parametrize(
    "hostile",
    [
        # billion laughs
        b'<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">'
        b'<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;">]><SAMPLE_SET>&c;</SAMPLE_SET>',
        # external entity (file disclosure)
        b'<?xml version="1.0"?><!DOCTYPE s [<!ENTITY x SYSTEM "file:///etc/passwd">]><SAMPLE_SET>&x;</SAMPLE_SET>',
        # external DTD
        b'<?xml version="1.0"?><!DOCTYPE s SYSTEM "http://127.0.0.1:1/evil.dtd"><SAMPLE_SET/>',
    ],
)
def test_hostile_xml_is_refused(hostile: bytes) -> None:
    with pytest.raises(InvalidDocument, match="DTDs and entities are not allowed"):
        xml_to_gmi(hostile, ResourceType.SAMPLE)


def test_huge_and_deep_documents_are_refused() -> None:
    with pytest.raises(InvalidDocument, match="larger than"):
        parse_xml(b"<SAMPLE_SET>" + b" " * MAX_DOCUMENT_BYTES + b"</SAMPLE_SET>")
    with pytest.raises(InvalidDocument, match="deeper than"):
        parse_xml(b"<a>" * 10_000 + b"</a>" * 10_000)


def test_malformed_xml_is_a_clear_error() -> None:
    with pytest.raises(InvalidDocument, match="not well-formed"):
        parse_xml(b"<SAMPLE_SET><SAMPLE>")


def test_unknown_json_keys_are_named_with_their_path() -> None:
    with pytest.raises(InvalidDocument) as info:
        validate_gmi({"sampleName": "x", "sample_name": {"taxon_id": 1, "colour": "red"}}, ResourceType.SAMPLE)
    fields = {e.field: e for e in info.value.errors}
    assert fields["sampleName"].path == "/SAMPLE_SET/SAMPLE/sampleName"
    assert fields["sample_name.colour"].path == "/SAMPLE_SET/SAMPLE/SAMPLE_NAME/colour"
    assert all("unknown property" in e.reason for e in fields.values())
