"""Content negotiation for the GMI media types: Accept with q-values (RFC 9110 §12.5.1), Content-Type checks.

Pure logic: returns a `Representation` or raises `NotAcceptable` / `UnsupportedMediaType` (domain errors
rendered at the edge). No aiohttp here.
"""

from __future__ import annotations

import enum
import functools
from dataclasses import dataclass

from libs.common.errors import NotAcceptable, UnsupportedMediaType

from .models import ResourceType


class Representation(enum.Enum):
    JSON = "json"
    XML = "xml"
    HTML = "html"


@dataclass(frozen=True, slots=True)
class MediaRange:
    type: str
    subtype: str
    q: float
    specificity: int  # 2 = type/subtype, 1 = type/*, 0 = */*

    def matches(self, media_type: str) -> bool:
        main, _, sub = media_type.partition("/")
        return self.type in ("*", main) and self.subtype in ("*", sub)


def parse_accept(header: str | None) -> list[MediaRange]:
    """Parse an Accept header; a missing or empty header means ``*/*``; malformed items are skipped."""
    if not header or not header.strip():
        return [MediaRange("*", "*", 1.0, 0)]
    ranges: list[MediaRange] = []
    for item in header.split(","):
        parts = [p.strip() for p in item.split(";")]
        media, _, sub = parts[0].lower().partition("/")
        if not media or not sub:
            continue
        q = 1.0
        for param in parts[1:]:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = min(max(float(value), 0.0), 1.0)
                except ValueError:
                    q = 0.0
        specificity = 0 if media == "*" else 1 if sub == "*" else 2
        ranges.append(MediaRange(media, sub, q, specificity))
    return ranges


def _quality(ranges: list[MediaRange], media_type: str) -> float:
    best: MediaRange | None = None
    for candidate in ranges:
        if candidate.matches(media_type) and (best is None or candidate.specificity > best.specificity):
            best = candidate
    return best.q if best else 0.0


@functools.cache
def offers(rtype: ResourceType | None, *, html: bool = True) -> tuple[tuple[str, Representation], ...]:
    """What a resource can be served as, in server preference order (versioned JSON first); built once."""
    out: list[tuple[str, Representation]] = []
    if rtype is not None:
        out += [(rtype.info.json_type, Representation.JSON), (rtype.info.xml_type, Representation.XML)]
    out.append(("application/json", Representation.JSON))
    if rtype is not None:
        out.append(("application/xml", Representation.XML))
    if html:
        out.append(("text/html", Representation.HTML))
    return tuple(out)


@functools.lru_cache(maxsize=512)
def negotiate(accept: str | None, rtype: ResourceType | None, *, html: bool = True) -> tuple[str, Representation]:
    """Pick the media type to answer with; ``NotAcceptable`` (406) when the client accepts none of them.

    Ties on q go to the server's preference (versioned JSON first). A client asking for the generic
    ``application/json`` (as in the draft's examples) gets that label on the same GMI JSON body.
    Clients send a handful of distinct Accept headers, so answers are memoised (bounded: a client varying
    its header only evicts entries; a 406 is never cached and is recomputed).
    """
    ranges = parse_accept(accept)
    best: tuple[float, int, str, Representation] | None = None
    for rank, (media_type, representation) in enumerate(offers(rtype, html=html)):
        q = _quality(ranges, media_type)
        if q > 0 and (best is None or q > best[0]):
            best = (q, rank, media_type, representation)
    if best is None:
        acceptable = ", ".join(media for media, _ in offers(rtype, html=html))
        raise NotAcceptable(f"none of the accepted media types is available; acceptable: {acceptable}")
    return best[2], best[3]


def request_format(content_type: str | None, rtype: ResourceType, *, multipart: bool = False) -> Representation:
    """The representation of a request body, from its Content-Type; 415 for anything else."""
    media = (content_type or "").split(";")[0].strip().lower()
    accepted = {
        rtype.info.json_type: Representation.JSON,
        "application/json": Representation.JSON,
        "application/merge-patch+json": Representation.JSON,
        rtype.info.xml_type: Representation.XML,
        "application/xml": Representation.XML,
        "text/xml": Representation.XML,
    }
    if media in accepted:
        return accepted[media]
    listed = [rtype.info.json_type, rtype.info.xml_type, "application/json", "application/xml"]
    if multipart:
        listed.append("multipart/mixed")
    raise UnsupportedMediaType(
        f"Content-Type {media or '(none)'!r} is not supported for a {rtype.info.name}; use one of {', '.join(listed)}"
    )
