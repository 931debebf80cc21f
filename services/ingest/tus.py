"""tus 1.0.0 wire format: header parsing, validation and formatting, and the tus error types.

Pure functions over header strings (a `Mapping[str, str]`); the HTTP edge (`api.py`) passes
`request.headers` and turns the results into responses. Nothing here imports aiohttp or pymongo.
Protocol facts: tus 1.0.0 `protocol.md` (core, creation, creation-with-upload, creation-defer-length,
checksum, termination, expiration, concatenation).
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

from libs.common.checksums import new_hasher
from libs.common.errors import (
    BadRequest,
    Conflict,
    Forbidden,
    Gone,
    Locked,
    NotFound,
    PayloadTooLarge,
    PreconditionFailed,
    SeqhubError,
    UnsupportedMediaType,
)

TUS_VERSION = "1.0.0"
TUS_EXTENSIONS = (
    "creation",
    "creation-with-upload",
    "creation-defer-length",
    "checksum",
    "termination",
    "expiration",
    "concatenation",
)
CHECKSUM_ALGORITHMS = ("sha1", "md5", "sha256")  # of a whole file, in Upload-Metadata `checksum`
# of one request's body, in Upload-Checksum: crc32 too. It catches damage in transit at a fraction of sha1's CPU;
# a whole file's checksum in Upload-Metadata, when the client sends one (the agent always does), checks it end to end.
REQUEST_CHECKSUM_ALGORITHMS = (*CHECKSUM_ALGORITHMS, "crc32")
OFFSET_CONTENT_TYPE = "application/offset+octet-stream"
TUS_HEADERS = {"Tus-Resumable": TUS_VERSION}

_METADATA_KEY = re.compile(r"^[^\s,]+$")


class TusError(SeqhubError):
    """Base of tus failures: every tus response, errors included, carries `Tus-Resumable`."""

    def __init__(self, message: str, *, headers: Mapping[str, str] | None = None, **kw: Any) -> None:
        super().__init__(message, headers={**TUS_HEADERS, **(headers or {})}, **kw)


class TusBadRequest(TusError, BadRequest):
    pass


class TusVersionUnsupported(TusError, PreconditionFailed):
    def __init__(self, got: str | None) -> None:
        super().__init__(
            f"Tus-Resumable {got!r} is not supported; this server speaks {TUS_VERSION}",
            headers={"Tus-Version": TUS_VERSION},
        )


class TusWrongContentType(TusError, UnsupportedMediaType):
    pass


class OffsetMismatch(TusError, Conflict):
    def __init__(self, *, expected: int, provided: int) -> None:
        super().__init__(
            f"Upload-Offset {provided} does not match the stored offset {expected}",
            headers={"Upload-Offset": str(expected)},
            extra={"expected-offset": expected, "provided-offset": provided},
        )


class UploadNotFound(TusError, NotFound):
    pass


class UploadGone(TusError, Gone):
    pass


class UploadLocked(TusError, Locked):
    pass


class UploadForbidden(TusError, Forbidden):
    pass


class UploadTooLarge(TusError, PayloadTooLarge):
    pass


class ChecksumMismatch(TusError):
    status = 460
    title = "Checksum Mismatch"


class TusConflict(TusError, Conflict):
    pass


@dataclass(frozen=True)
class Checksum:
    """An `Upload-Checksum` value: the algorithm and the raw digest bytes of one request body."""

    algorithm: str
    digest: bytes

    def new_hasher(self) -> Any:
        return new_hasher(self.algorithm)


@dataclass(frozen=True)
class Concat:
    """An `Upload-Concat` value: `partial`, or `final` with the partial upload ids in order."""

    final: bool
    parts: tuple[str, ...] = ()


def require_version(headers: Mapping[str, str]) -> None:
    """412 unless the request speaks tus 1.0.0 (every request except OPTIONS)."""
    got = headers.get("Tus-Resumable")
    if got != TUS_VERSION:
        raise TusVersionUnsupported(got)


def _non_negative_int(name: str, raw: str) -> int:
    text = raw.strip()
    if not text.isdigit() or len(text) > 19:
        raise TusBadRequest(f"{name} must be a non-negative integer, got {raw!r}")
    return int(text)


def parse_offset(headers: Mapping[str, str]) -> int:
    raw = headers.get("Upload-Offset")
    if raw is None:
        raise TusBadRequest("Upload-Offset header is required")
    return _non_negative_int("Upload-Offset", raw)


def parse_length(headers: Mapping[str, str]) -> int | None:
    raw = headers.get("Upload-Length")
    return None if raw is None else _non_negative_int("Upload-Length", raw)


def parse_defer_length(headers: Mapping[str, str]) -> bool:
    raw = headers.get("Upload-Defer-Length")
    if raw is None:
        return False
    if raw.strip() != "1":
        raise TusBadRequest(f"Upload-Defer-Length must be 1, got {raw!r}")
    return True


def parse_metadata(raw: str | None) -> dict[str, str]:
    """Decode `Upload-Metadata: key base64,key2 base64` into text values (empty value allowed)."""
    if raw is None or not raw.strip():
        return {}
    result: dict[str, str] = {}
    for pair in raw.split(","):
        parts = pair.strip().split(" ")
        key = parts[0]
        if not key or not _METADATA_KEY.match(key) or len(parts) > 2:
            raise TusBadRequest(f"Upload-Metadata: malformed pair {pair.strip()!r}")
        if key in result:
            raise TusBadRequest(f"Upload-Metadata: duplicate key {key!r}")
        value = parts[1] if len(parts) == 2 else ""
        try:
            result[key] = base64.b64decode(value, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise TusBadRequest(f"Upload-Metadata: value of {key!r} is not base64 of UTF-8 text") from None
    return result


def encode_metadata(metadata: Mapping[str, str]) -> str:
    return ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" if v else k for k, v in metadata.items())


def parse_checksum(headers: Mapping[str, str]) -> Checksum | None:
    """`Upload-Checksum: <algo> <base64 digest>`; 400 for an unsupported algorithm or bad digest."""
    raw = headers.get("Upload-Checksum")
    if raw is None:
        return None
    parts = raw.strip().split(" ")
    if len(parts) != 2:
        raise TusBadRequest(f"Upload-Checksum must be '<algorithm> <base64 digest>', got {raw!r}")
    algorithm = parts[0].lower()
    if algorithm not in REQUEST_CHECKSUM_ALGORITHMS:
        offered = ", ".join(REQUEST_CHECKSUM_ALGORITHMS)
        raise TusBadRequest(f"Upload-Checksum algorithm {parts[0]!r} is not supported; use one of {offered}")
    try:
        digest = base64.b64decode(parts[1], validate=True)
    except binascii.Error:
        raise TusBadRequest("Upload-Checksum digest is not valid base64") from None
    if len(digest) != new_hasher(algorithm).digest_size:
        raise TusBadRequest(f"Upload-Checksum digest has the wrong length for {algorithm}")
    return Checksum(algorithm, digest)


def parse_concat(headers: Mapping[str, str]) -> Concat | None:
    """`Upload-Concat: partial` or `final;<url> <url>`; the upload id is the last path segment of a URL."""
    raw = headers.get("Upload-Concat")
    if raw is None:
        return None
    text = raw.strip()
    if text == "partial":
        return Concat(final=False)
    if not text.startswith("final;"):
        raise TusBadRequest(f"Upload-Concat must be 'partial' or 'final;<urls>', got {raw!r}")
    urls = text[len("final;") :].split()
    if not urls:
        raise TusBadRequest("Upload-Concat: final needs at least one partial upload URL")
    ids = tuple(url.rstrip("/").rsplit("/", 1)[-1] for url in urls)
    if any(not _is_upload_id(i) for i in ids):
        raise TusBadRequest("Upload-Concat: a partial upload URL does not name an upload of this server")
    return Concat(final=True, parts=ids)


def _is_upload_id(text: str) -> bool:
    return bool(re.fullmatch(r"[0-9a-f]{32}", text))


def check_upload_id(text: str) -> str:
    if not _is_upload_id(text):
        raise UploadNotFound(f"no upload {text!r}")
    return text


def require_offset_content_type(headers: Mapping[str, str]) -> None:
    content_type = headers.get("Content-Type", "").split(";")[0].strip().lower()
    if content_type != OFFSET_CONTENT_TYPE:
        raise TusWrongContentType(f"Content-Type must be {OFFSET_CONTENT_TYPE}, got {content_type or 'none'!r}")


def format_expires(when: datetime) -> str:
    """RFC 9110 HTTP-date, as `Upload-Expires` requires."""
    aware = when if when.tzinfo is not None else when.replace(tzinfo=UTC)  # MongoDB hands back naive UTC
    return format_datetime(aware.astimezone(UTC), usegmt=True)


def options_headers(max_size: int) -> dict[str, str]:
    return {
        "Tus-Resumable": TUS_VERSION,
        "Tus-Version": TUS_VERSION,
        "Tus-Extension": ",".join(TUS_EXTENSIONS),
        "Tus-Max-Size": str(max_size),
        "Tus-Checksum-Algorithm": ",".join(REQUEST_CHECKSUM_ALGORITHMS),
    }
