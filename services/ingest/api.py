"""HTTP entrypoints of the ingest service: the run API (`/runs`) and tus 1.0 (`/files/`).

Thin handlers: parse headers/JSON, check scopes, call one use case in `service`/`uploads`, shape the response.
tus request bodies are streamed from `request.content` (never `request.read()`), so aiohttp's body limit
does not apply and memory stays flat whatever the chunk size.
"""

from __future__ import annotations

import asyncio
import functools
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

from aiohttp import web

from libs.common import keys as common_keys
from libs.common.auth import Principal, require_scopes
from libs.common.errors import BadRequest, SeqhubError
from libs.common.scopes import ADMIN, INGEST_UPLOAD, REPOSITORY_READ

from . import service, tus, uploads
from .keys import ingest, settings
from .models import DeclareFiles, RunCreate, RunStatus

T = TypeVar("T")
routes = web.RouteTableDef()
BODY_CHUNK = 1 << 20
TusHandler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _uploader(request: web.Request) -> str:
    principal: Principal = request[common_keys.principal]
    require_scopes(principal, INGEST_UPLOAD)
    assert principal.subject is not None
    return principal.subject


def _reader(request: web.Request) -> None:
    require_scopes(request[common_keys.principal], INGEST_UPLOAD, REPOSITORY_READ, ADMIN, any_of=True)


async def _json(request: web.Request) -> Any:
    try:
        return json.loads(await request.read())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BadRequest(f"request body is not valid JSON: {exc}") from None


def _run_json(view: Any, status: int = 200) -> web.Response:
    return web.json_response(view.model_dump(mode="json"), status=status)


# --- runs ---------------------------------------------------------------------------------------


@routes.post("/runs")
async def register_run(request: web.Request) -> web.Response:
    subject = _uploader(request)
    body = RunCreate.model_validate(await _json(request))
    view = await service.register_run(
        body, owner=subject, correlation_id=request[common_keys.request_id], deps=request.app[ingest]
    )
    response = _run_json(view, 201)
    response.headers["Location"] = f"{request.path.rstrip('/')}/{view.id}"
    return response


@routes.get("/runs")
async def list_runs(request: web.Request) -> web.Response:
    _reader(request)
    query = request.query
    try:
        status = RunStatus(query["status"]) if "status" in query else None
        offset = int(query.get("offset", "0"))
        limit = int(query.get("limit", "50"))
    except ValueError:
        raise BadRequest(
            f"status must be one of {', '.join(s.value for s in RunStatus)}; offset and limit integers"
        ) from None
    if offset < 0 or not 1 <= limit <= 500:
        raise BadRequest("offset must be >= 0 and limit between 1 and 500")
    page = await service.list_runs(
        status=status,
        instrument=query.get("instrument"),
        offset=offset,
        limit=limit,
        deps=request.app[ingest],
    )
    return _run_json(page)


@routes.get("/runs/{run_id}")
async def show_run(request: web.Request) -> web.Response:
    _reader(request)
    run = await service.get_run(request.match_info["run_id"], deps=request.app[ingest])
    return _run_json(service.to_view(run))


@routes.delete("/runs/{run_id}")
async def delete_run(request: web.Request) -> web.Response:
    subject = _uploader(request)
    await service.delete_run(request.match_info["run_id"], subject=subject, deps=request.app[ingest])
    return web.Response(status=204)


@routes.post("/runs/{run_id}/files")
async def declare_files(request: web.Request) -> web.Response:
    subject = _uploader(request)
    body = DeclareFiles.model_validate(await _json(request))
    view = await service.declare_files(
        request.match_info["run_id"], body.files, subject=subject, deps=request.app[ingest]
    )
    return _run_json(view)


# --- tus ----------------------------------------------------------------------------------------


def _tus(handler: TusHandler) -> TusHandler:
    """A tus request (every route but OPTIONS) must name the version we speak (412 otherwise); every tus response,
    errors included, carries Tus-Resumable."""

    @functools.wraps(handler)
    async def wrapper(request: web.Request) -> web.StreamResponse:
        try:
            tus.require_version(request.headers)
            response = await handler(request)
        except SeqhubError as exc:
            exc.headers.setdefault("Tus-Resumable", tus.TUS_VERSION)
            raise
        response.headers["Tus-Resumable"] = tus.TUS_VERSION
        return response

    return wrapper


async def _chunks(request: web.Request) -> AsyncIterator[bytes]:
    """The request body in pieces; a broken connection surfaces as ConnectionResetError."""
    try:
        async for chunk, _ in request.content.iter_chunks():  # as received: no re-joining copy
            if chunk:
                yield chunk
    except Exception as exc:  # GeneratorExit and cancellation are BaseExceptions: they pass untouched
        raise ConnectionResetError(f"request body broke off: {exc}") from exc


def _to_the_end(work: Awaitable[T]) -> Awaitable[T]:
    """Run a tus use case to its end even if the client leaves mid-request (aiohttp then cancels the handler when
    `handler_cancellation` is on, as in its test server): stopping between "bytes recorded" and "file handed to its
    run" would leave work half done. The client only loses the answer; a broken body is still seen as one."""
    task = asyncio.ensure_future(work)
    task.add_done_callback(_consume)
    return asyncio.shield(task)


def _consume(task: asyncio.Future[Any]) -> None:
    if not task.cancelled():
        task.exception()  # retrieved: a client that left does not turn its error into a "never retrieved" log


def _upload_headers(info: uploads.UploadInfo, base: str) -> dict[str, str]:
    headers = {"Upload-Offset": str(info.offset), "Cache-Control": "no-store"}
    if info.length is None:
        headers["Upload-Defer-Length"] = "1"
    else:
        headers["Upload-Length"] = str(info.length)
    if info.metadata:
        headers["Upload-Metadata"] = tus.encode_metadata(info.metadata)
    if info.expires_at is not None:
        headers["Upload-Expires"] = tus.format_expires(info.expires_at)
    if info.concat == "partial":
        headers["Upload-Concat"] = "partial"
    elif info.concat == "final":
        headers["Upload-Concat"] = "final;" + " ".join(f"{base}/{p}" for p in info.parts)
    return headers


def _files_base(request: web.Request) -> str:
    path = request.path.rstrip("/")
    return path if path.endswith("/files") else path.rsplit("/", 1)[0]


def _body(request: web.Request, offset: int) -> uploads.Body:
    return uploads.Body(
        offset=offset,
        checksum=tus.parse_checksum(request.headers),
        chunks=_chunks(request),
        length=tus.parse_length(request.headers),
    )


@routes.options("/files")
@routes.options("/files/")
@routes.options("/files/{upload_id}")
async def tus_options(request: web.Request) -> web.Response:
    return web.Response(status=204, headers=tus.options_headers(request.app[settings].max_file_bytes))


@routes.post("/files")
@routes.post("/files/")
@_tus
async def tus_create(request: web.Request) -> web.Response:
    subject = _uploader(request)
    req = uploads.CreateRequest(
        length=tus.parse_length(request.headers),
        defer_length=tus.parse_defer_length(request.headers),
        metadata=tus.parse_metadata(request.headers.get("Upload-Metadata")),
        concat=tus.parse_concat(request.headers),
    )
    body = None
    if request.body_exists and request.content_type == tus.OFFSET_CONTENT_TYPE:
        body = uploads.Body(offset=0, checksum=tus.parse_checksum(request.headers), chunks=_chunks(request))
    info = await _to_the_end(
        uploads.create_upload(
            req, body, subject=subject, correlation_id=request[common_keys.request_id], deps=request.app[ingest]
        )
    )
    base = _files_base(request)
    headers = _upload_headers(info, base)
    headers.pop("Cache-Control")
    # absolute: some clients (aiotus) cannot resolve a path-only Location against the endpoint
    headers["Location"] = f"{request.url.origin()}{base}/{info.id}"
    return web.Response(status=201, headers=headers)


@routes.head("/files/{upload_id}")
@_tus
async def tus_head(request: web.Request) -> web.Response:
    subject = _uploader(request)
    upload_id = tus.check_upload_id(request.match_info["upload_id"])
    info = await _to_the_end(uploads.head_upload(upload_id, subject=subject, deps=request.app[ingest]))
    return web.Response(status=200, headers=_upload_headers(info, _files_base(request)))


@routes.patch("/files/{upload_id}")
@_tus
async def tus_patch(request: web.Request) -> web.Response:
    subject = _uploader(request)
    upload_id = tus.check_upload_id(request.match_info["upload_id"])
    tus.require_offset_content_type(request.headers)
    offset = tus.parse_offset(request.headers)
    info = await _to_the_end(
        uploads.patch_upload(
            upload_id,
            _body(request, offset),
            subject=subject,
            correlation_id=request[common_keys.request_id],
            deps=request.app[ingest],
        )
    )
    headers = {"Upload-Offset": str(info.offset)}
    if info.expires_at is not None:
        headers["Upload-Expires"] = tus.format_expires(info.expires_at)
    return web.Response(status=204, headers=headers)


@routes.delete("/files/{upload_id}")
@_tus
async def tus_delete(request: web.Request) -> web.Response:
    subject = _uploader(request)
    upload_id = tus.check_upload_id(request.match_info["upload_id"])
    await _to_the_end(uploads.terminate_upload(upload_id, subject=subject, deps=request.app[ingest]))
    return web.Response(status=204)


@routes.post("/files/{upload_id}")
async def tus_method_override(request: web.Request) -> web.StreamResponse:
    """`X-HTTP-Method-Override: PATCH|DELETE` on POST, for proxies that block those verbs."""
    method = request.headers.get("X-HTTP-Method-Override", "").upper()
    if method == "PATCH":
        return await tus_patch(request)
    if method == "DELETE":
        return await tus_delete(request)
    raise tus.TusBadRequest("POST on an upload needs X-HTTP-Method-Override: PATCH or DELETE")
