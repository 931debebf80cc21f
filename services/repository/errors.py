"""The repository's error bodies (GMI draft): JSON `{"message", "invalidFields": [...]}` or the same in XML.

The draft asks for errors "in XML or JSON, whichever most closely matches the request's Content-Type"; for
GETs we follow Accept. `invalidFields` items carry the XSD path, the GMI JSON field and the reason.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET  # building only; nothing is parsed here
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from libs.common import keys


def _wants_xml(request: web.Request) -> bool:
    content_type = request.headers.get("Content-Type", "").split(";")[0].strip().lower()
    if content_type:
        return content_type.endswith("+xml") or content_type in ("application/xml", "text/xml")
    accept = request.headers.get("Accept", "").split(",")[0].split(";")[0].strip().lower()
    return accept.endswith("+xml") or accept == "application/xml"


def render_error(request: web.Request, status: int, message: str, extra: Mapping[str, Any]) -> web.Response:
    body: dict[str, Any] = {"message": message, "status": status, "request_id": request.get(keys.request_id)}
    body.update(extra)
    if _wants_xml(request):
        return web.Response(body=_xml(body), status=status, content_type="application/xml")
    return web.Response(text=json.dumps(body, default=str), status=status, content_type="application/json")


def _xml(body: Mapping[str, Any]) -> bytes:
    root = ET.Element("ERROR", status=str(body["status"]))
    ET.SubElement(root, "MESSAGE").text = str(body["message"])
    if body.get("request_id"):
        ET.SubElement(root, "REQUEST_ID").text = str(body["request_id"])
    fields = body.get("invalidFields") or []
    if fields:
        container = ET.SubElement(root, "INVALID_FIELDS")
        for item in fields:
            field = ET.SubElement(container, "FIELD", path=str(item.get("path", "")), name=str(item.get("field", "")))
            field.text = str(item.get("reason", ""))
    text: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return text
