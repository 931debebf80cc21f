"""multipart/mixed creation of runs and analyses (the GMI draft's single-request creation).

The first part is the metadata (GMI JSON or SRA XML, by its Content-Type); every further part is a data file
named by its Content-Disposition filename, streamed into the file store (temp file + rename) with its size
and sha256 recorded. Credentials are checked before any byte is stored.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import BodyPartReader, web

from libs.common.errors import BadRequest, PayloadTooLarge
from libs.common.filestore import LocalFileStore

from . import access
from .bodies import parse_body
from .models import DataFile, ResourceType
from .negotiation import request_format

CHUNK = 1 << 20
SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,200}$")
MAX_FILES = 64
MAX_METADATA_BYTES = 15 * 1024 * 1024  # same bound as a plain JSON/XML body


async def read_multipart(
    request: web.Request,
    rtype: ResourceType,
    *,
    caller: access.Caller,
    files: LocalFileStore,
    max_bytes: int,
) -> tuple[dict[str, Any], list[DataFile]]:
    access.require_authenticated(caller)
    reader = await request.multipart()
    metadata = await reader.next()
    if not isinstance(metadata, BodyPartReader):
        raise BadRequest("multipart/mixed body must start with the metadata part")
    rep = request_format(metadata.headers.get("Content-Type"), rtype)
    body = parse_body(await _read_limited(metadata, MAX_METADATA_BYTES), rep, rtype)
    stored: list[DataFile] = []
    prefix = f"repository/{rtype.info.collection}/{uuid.uuid4().hex}"
    try:
        while (part := await reader.next()) is not None:
            if not isinstance(part, BodyPartReader):
                raise BadRequest("nested multipart bodies are not supported")
            budget = max_bytes - sum(f.size for f in stored)
            stored.append(await _store_part(part, prefix, files, taken={f.name for f in stored}, budget=budget))
            if len(stored) > MAX_FILES:
                raise BadRequest(f"at most {MAX_FILES} files per request")
    except BaseException:
        for f in stored:
            await files.delete(f.uri)
        raise
    if not stored:
        raise BadRequest("multipart/mixed creation needs at least one file part after the metadata")
    return body, stored


async def _store_part(
    part: BodyPartReader, prefix: str, files: LocalFileStore, *, taken: set[str], budget: int
) -> DataFile:
    name = part.filename or ""
    if not SAFE_NAME.match(name):
        raise BadRequest(f"file part name {name[:80]!r} must be a plain file name (letters, digits, . _ -)")
    if name in taken:
        raise BadRequest(f"file {name!r} appears twice")

    md5 = hashlib.md5(usedforsecurity=False)  # the SRA analysis schema only knows MD5 checksums

    async def chunks() -> AsyncIterator[bytes]:
        received = 0
        while chunk := await part.read_chunk(CHUNK):
            received += len(chunk)
            if received > budget:  # the writer's temp file is removed when this propagates
                raise PayloadTooLarge("the files exceed the upload limit; use the resumable upload service")
            md5.update(chunk)
            yield chunk

    result = await files.put(f"{prefix}/{name}", chunks())
    content_type = part.headers.get("Content-Type", "application/octet-stream")
    return DataFile(
        name=name,
        uri=result.uri,
        size=result.size,
        sha256=result.sha256,
        content_type=content_type,
        md5=md5.hexdigest(),
    )


async def _read_limited(part: BodyPartReader, limit: int) -> bytes:
    data = bytearray()
    while chunk := await part.read_chunk(CHUNK):
        data += chunk
        if len(data) > limit:
            raise PayloadTooLarge(f"the metadata part is larger than {limit} bytes")
    return bytes(data)
