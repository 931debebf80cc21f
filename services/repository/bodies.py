"""Request bodies to GMI JSON: JSON objects, or SRA XML documents (one element, or a ``*_SET`` of several)."""

from __future__ import annotations

import json
from typing import Any

from libs.common.errors import BadRequest

from . import metrics
from .models import ResourceType
from .negotiation import Representation
from .service import InvalidFields
from .sra import InvalidDocument, xml_to_gmi


def parse_body(data: bytes, rep: Representation, rtype: ResourceType) -> dict[str, Any]:
    """A request body holding one element in GMI JSON form (PUT, PATCH); 400 when it is not acceptable."""
    elements = parse_elements(data, rep, rtype)
    if len(elements) != 1:
        raise BadRequest(f"send exactly one {rtype.info.tag} here (got {len(elements)})")
    return elements[0]


def parse_elements(data: bytes, rep: Representation, rtype: ResourceType) -> list[dict[str, Any]]:
    """The elements of a request body in GMI JSON form: every element of an XML ``*_SET``, or one JSON object.

    400 (with the XSD field list, paths naming the element, for XML) when the document is not acceptable.
    """
    if rep is Representation.XML:
        try:
            elements = xml_to_gmi(data, rtype)
        except InvalidDocument as exc:
            metrics.INVALID_DOCUMENTS.labels(type=rtype.info.name).inc()
            raise InvalidFields(exc.message, exc.errors) from None
        if not elements:
            raise BadRequest(f"the {rtype.info.set_tag} holds no {rtype.info.tag}")
        return elements
    try:
        body = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest(f"request body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise BadRequest(f"a {rtype.info.name} must be a JSON object")
    return [body]
