"""RNAget media types: lenient Accept parsing, the degrade rule, JSON and error responses.

The spec: JSON responses use ``application/vnd.ga4gh.rnaget.v1.0.0+json; charset=us-ascii`` and a
client may degrade to ``…+json`` or ``application/json``; a format the server cannot produce is 406.
The compliance suites send ``Accept: a, b;`` with a literal trailing ``;`` — parsing must tolerate it.
Errors are ``{"message": …}`` in the same JSON media type (never problem+json).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from libs.common.errors import NotAcceptable

from .models import MEDIA_TYPE, MatrixFormat

JSON_TYPES = (MEDIA_TYPE, "application/json")
CHARSET = "us-ascii"
_JSON_WILDCARDS = {"*/*", "application/*"}
_MATRIX_TYPES = {MatrixFormat.LOOM: "application/vnd.loom", MatrixFormat.TSV: "text/tab-separated-values"}
_OCTET = "application/octet-stream"


def accepted(header: str | None) -> list[str]:
    """Media ranges in the client's order, parameters (q, charset, a stray ';') dropped."""
    if not header or not header.strip():
        return []
    out = []
    for part in header.split(","):
        media = part.split(";", 1)[0].strip().lower()
        if media:
            out.append(media)
    return out


def json_media_type(request: web.Request) -> str:
    """The JSON media type to answer with, or NotAcceptable if the client takes no JSON."""
    ranges = accepted(request.headers.get("Accept"))
    if not ranges or MEDIA_TYPE in ranges or _JSON_WILDCARDS & set(ranges):
        return MEDIA_TYPE
    if "application/json" in ranges or any(r.endswith("+json") for r in ranges):
        return "application/json"
    raise NotAcceptable(
        f"this route answers {MEDIA_TYPE} or application/json; Accept was {request.headers['Accept']!r}"
    )


def matrix_format(request: web.Request, requested: MatrixFormat | None, default: MatrixFormat) -> MatrixFormat:
    """The matrix format: the ``format`` parameter if given, else the first the Accept header allows."""
    ranges = accepted(request.headers.get("Accept"))
    open_ended = not ranges or bool({"*/*", _OCTET} & set(ranges))
    if requested is not None:
        if open_ended or _MATRIX_TYPES[requested] in ranges or _wild(ranges, _MATRIX_TYPES[requested]):
            return requested
        raise NotAcceptable(
            f"format {requested.value} is served as {_MATRIX_TYPES[requested]}, which the Accept "
            f"header ({request.headers.get('Accept')!r}) does not allow"
        )
    for media in ranges:
        for fmt, mt in _MATRIX_TYPES.items():
            if media == mt:
                return fmt
    if open_ended or any(_wild(ranges, mt) for mt in _MATRIX_TYPES.values()):
        return default
    raise NotAcceptable(
        f"matrices are served as application/vnd.loom or text/tab-separated-values; Accept was "
        f"{request.headers.get('Accept')!r}"
    )


def _wild(ranges: list[str], media: str) -> bool:
    return f"{media.split('/')[0]}/*" in ranges


def json_response(request: web.Request, data: Any, *, status: int = 200) -> web.Response:
    return _json(data, status=status, media_type=json_media_type(request))


def _json(data: Any, *, status: int, media_type: str) -> web.Response:
    body = json.dumps(data, ensure_ascii=True, separators=(",", ":"))
    response = web.Response(text=body, status=status, charset=CHARSET)
    response.content_type = media_type
    return response


def error_renderer(request: web.Request, status: int, message: str, extra: Mapping[str, Any]) -> web.Response:
    """RNAget errors: ``{"message"}`` in the RNAget JSON media type (degraded to application/json on request)."""
    ranges = accepted(request.headers.get("Accept"))
    plain_json = "application/json" in ranges and MEDIA_TYPE not in ranges
    body: dict[str, Any] = {"message": message, **{k: v for k, v in extra.items() if k != "message"}}
    return _json(body, status=status, media_type="application/json" if plain_json else MEDIA_TYPE)
