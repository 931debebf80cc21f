"""SRA XML <-> GMI JSON conversion and validation against the ENA SRA 1.5 schemas.

XML is parsed with defusedxml (DTDs, entities and external references are refused outright), size- and
depth-bounded, then decoded and validated by xmlschema. The GMI JSON form of an element is the xmlschema
dict with friendlier keys: element names lower-cased (``SAMPLE_NAME`` -> ``sample_name``), attributes
without ``@`` (``center_name``), element text next to attributes as ``value``. The reverse mapping is
guided by the schema, which also restores the schema's child order.

No aiohttp or pymongo here.
"""

from __future__ import annotations

import functools
import xml.etree.ElementTree as ET  # only for types and serialisation; parsing goes through defusedxml
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import defusedxml
import defusedxml.ElementTree as SafeET
import xmlschema
from xmlschema.validators import XsdElement

from .models import FieldError, ResourceType

XSD_DIR = Path(__file__).parent / "xsd"
MAX_DOCUMENT_BYTES = 15 * 1024 * 1024  # ENA Webin's per-part limit
MAX_DEPTH = 64
TEXT_KEY = "value"


class InvalidDocument(Exception):
    """The document is not acceptable; ``errors`` lists each invalid field."""

    def __init__(self, message: str, errors: Iterable[FieldError] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.errors = tuple(errors)


@functools.cache
def schema_for(rtype: ResourceType) -> xmlschema.XMLSchema10:
    """The compiled schema of a type; built once per process (0.1-0.5 s each)."""
    return xmlschema.XMLSchema10(str(XSD_DIR / rtype.info.xsd))


def load_schemas() -> None:
    """Compile every schema (called at service start-up, in a thread)."""
    for rtype in ResourceType:
        schema_for(rtype)


def parse_xml(data: bytes) -> ET.Element:
    """Parse untrusted XML: no DTD, no entities, no external references, bounded size and depth."""
    if len(data) > MAX_DOCUMENT_BYTES:
        raise InvalidDocument(f"XML document larger than {MAX_DOCUMENT_BYTES} bytes")
    try:
        root: ET.Element = SafeET.fromstring(data, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except defusedxml.DefusedXmlException as exc:
        reason = f"XML refused: {type(exc).__name__} (DTDs and entities are not allowed)"
        raise InvalidDocument(reason) from exc
    except ET.ParseError as exc:
        raise InvalidDocument(f"XML is not well-formed: {exc}") from exc
    if _depth(root) > MAX_DEPTH:
        raise InvalidDocument(f"XML nested deeper than {MAX_DEPTH} levels")
    return root


def _depth(root: ET.Element) -> int:
    deepest, stack = 0, [(root, 1)]
    while stack:
        elem, depth = stack.pop()
        deepest = max(deepest, depth)
        if deepest > MAX_DEPTH:
            return deepest
        stack.extend((child, depth + 1) for child in elem)
    return deepest


def detect_type(root: ET.Element) -> ResourceType:
    rtype = ResourceType.from_set_tag(root.tag)
    if rtype is None:
        raise InvalidDocument(f"unsupported root element <{root.tag}>")
    return rtype


def xml_to_gmi(data: bytes, rtype: ResourceType) -> list[dict[str, Any]]:
    """Validate an SRA XML document (a ``*_SET`` or a single element) and return its elements in GMI form."""
    root = parse_xml(data)
    if root.tag == rtype.info.tag:
        wrapper = ET.Element(rtype.info.set_tag)
        wrapper.append(root)
        root = wrapper
    if root.tag != rtype.info.set_tag:
        raise InvalidDocument(f"expected <{rtype.info.set_tag}>, got <{root.tag}>")
    schema: Any = schema_for(rtype)
    decoded, errors = schema.to_dict(root, validation="lax")
    field_errors = [_field_error(rtype, err) for err in errors]
    if field_errors:
        raise InvalidDocument(f"{rtype.info.set_tag} is not valid against {rtype.info.xsd}", field_errors)
    elements = (decoded or {}).get(rtype.info.tag) or []
    return [to_gmi(element) for element in _as_list(elements)]


def validate_gmi(body: dict[str, Any], rtype: ResourceType) -> dict[str, Any]:
    """Validate a GMI JSON element against the schema; return it normalised (typed values, schema order)."""
    element_xml = _encode(body, rtype)
    schema: Any = schema_for(rtype)
    decoded = schema.to_dict(element_xml)
    normalised: dict[str, Any] = to_gmi(_as_list(decoded[rtype.info.tag])[0])
    return normalised


def gmi_to_xml(bodies: Iterable[dict[str, Any]], rtype: ResourceType) -> bytes:
    """Render GMI elements as one schema-valid ``*_SET`` document."""
    schema: Any = schema_for(rtype)
    xsd_element = _child_element(schema, rtype)
    set_dict = {rtype.info.tag: [from_gmi(body, xsd_element) for body in bodies]}
    element = schema.encode(set_dict, path=rtype.info.set_tag, validation="strict")
    text: bytes = ET.tostring(element, encoding="utf-8", xml_declaration=True)
    return text


def _encode(body: dict[str, Any], rtype: ResourceType) -> ET.Element:
    if not isinstance(body, dict):
        raise InvalidDocument(f"a {rtype.info.name} must be a JSON object")
    schema: Any = schema_for(rtype)
    unknown: list[str] = []
    element_dict = from_gmi(body, _child_element(schema, rtype), unknown=unknown)
    set_dict = {rtype.info.tag: [element_dict]}
    element, errors = schema.encode(set_dict, path=rtype.info.set_tag, validation="lax")
    field_errors = [_unknown_field(rtype, name) for name in unknown]
    field_errors += [_field_error(rtype, err) for err in errors]
    if field_errors:
        raise InvalidDocument(f"{rtype.info.name} is not valid against {rtype.info.xsd}", field_errors)
    result: ET.Element = element
    return result


def _unknown_field(rtype: ResourceType, dotted: str) -> FieldError:
    *parents, key = dotted.split(".")
    path = "/".join([f"/{rtype.info.set_tag}", rtype.info.tag, *(p.upper() for p in parents), key])
    return FieldError(path=path, field=dotted, reason=f"unknown property {key!r} (not in {rtype.info.xsd})")


def _child_element(schema: xmlschema.XMLSchema10, rtype: ResourceType) -> XsdElement:
    element: XsdElement = schema.elements[rtype.info.tag]
    return element


def _field_error(rtype: ResourceType, err: Any) -> FieldError:
    path = str(err.path or f"/{rtype.info.set_tag}")
    reason = str(err.reason or err.message).strip()
    return FieldError(path=path, field=_field_name(path, rtype), reason=reason)


def _field_name(path: str, rtype: ResourceType) -> str:
    """``/SAMPLE_SET/SAMPLE/SAMPLE_NAME/TAXON_ID`` -> ``sample_name.taxon_id`` (GMI JSON field)."""
    steps = [step.split("[")[0] for step in path.strip("/").split("/") if step]
    if steps[:1] == [rtype.info.set_tag]:
        steps = steps[1:]
    if steps[:1] == [rtype.info.tag]:
        steps = steps[1:]
    return ".".join(step.lstrip("@").lower() for step in steps) or rtype.info.name


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


# --- GMI form <-> xmlschema dict -------------------------------------------------------------------------


def to_gmi(value: Any) -> Any:
    """xmlschema dict -> GMI JSON: ``@attr`` -> ``attr``, ``TAG`` -> ``tag``, ``$`` -> ``value``."""
    if isinstance(value, list):
        return [to_gmi(item) for item in value]
    if not isinstance(value, dict):
        return value
    out: dict[str, Any] = {}
    for key, item in value.items():
        if key == "$":
            out[TEXT_KEY] = item
        elif key.startswith("@"):
            out[key[1:]] = item
        else:
            out[key.lower()] = to_gmi(item)
    return out


def from_gmi(value: Any, xsd_element: XsdElement | None, *, unknown: list[str] | None = None, where: str = "") -> Any:
    """GMI JSON -> xmlschema dict, using the schema to tell attributes from children and to order them.

    Keys the schema does not know are left out and reported in ``unknown`` (dotted JSON paths) when given,
    else kept (upper-cased) so that validation names them.
    """
    if isinstance(value, list):
        return [from_gmi(item, xsd_element, unknown=unknown, where=where) for item in value]
    if not isinstance(value, dict) or xsd_element is None:
        return value
    xsd_type = xsd_element.type
    attributes = getattr(xsd_type, "attributes", {})
    children = _children(xsd_element)
    out: dict[str, Any] = {}
    for key, item in value.items():  # attributes and text first
        if key in attributes:
            out[f"@{key}"] = item
        elif key == TEXT_KEY and key.upper() not in children:
            out["$"] = item
    for tag, child in children.items():  # then children, in the schema's order
        if tag.lower() in value:
            out[tag] = from_gmi(value[tag.lower()], child, unknown=unknown, where=f"{where}{tag.lower()}.")
    for key, item in value.items():
        if key not in attributes and key != TEXT_KEY and key.upper() not in children:
            if unknown is None:
                out[key.upper()] = item
            else:
                unknown.append(f"{where}{key}")
    return out


def _children(xsd_element: XsdElement) -> dict[str, XsdElement]:
    return _children_of_type(xsd_element.type)


@functools.cache
def _children_of_type(xsd_type: Any) -> dict[str, XsdElement]:
    if not (xsd_type.is_complex() and xsd_type.has_complex_content()):
        return {}
    return {
        child.local_name: child
        for child in xsd_type.content.iter_elements()
        if isinstance(child, XsdElement) and child.local_name
    }
