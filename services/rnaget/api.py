"""HTTP entry points of the rnaget service: the released 1.0.0 routes and the 2019 draft (seed) routes.

Thin handlers: parse parameters (params.py), call a use case (service.py), serialise (media.py).
Routes are declared without the ``/rnaget`` prefix. Static paths are registered before ``{id}``
paths, and the list routes answer with and without a trailing slash (the compliance suite asks for
``projects/``).
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from aiohttp import web

from libs.common import keys as common_keys
from libs.common.auth import require_scopes
from libs.common.errors import BadRequest, NotAcceptable

from . import keys, media, metrics, params, service
from .models import FileObject, Kind, MatrixFormat, MatrixRecord, Project, ServiceInfo, Study, Ticket
from .service import READ_SCOPE, Access
from .store import MetadataStore

routes = web.RouteTableDef()
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

PROJECT_PARAMS = ("version", "tags", "name")
STUDY_PARAMS = (*PROJECT_PARAMS, "projectID")
_META = ("version", "tags", "studyID", "projectID", "units")
_EXPR_SLICE = (*params.LIST_PARAMS, *params.THRESHOLD_PARAMS, *params.BOUND_PARAMS)
_CONT_SLICE = ("sampleIDList", *params.RANGE_PARAMS)
BY_ID_PARAMS = {Kind.EXPRESSION: ("format", *_EXPR_SLICE), Kind.CONTINUOUS: ("format", *_CONT_SLICE)}
SEARCH_PARAMS = {Kind.EXPRESSION: ("format", *_META, *_EXPR_SLICE), Kind.CONTINUOUS: ("format", *_META, *_CONT_SLICE)}
_ROUTE = {Kind.EXPRESSION: "expressions", Kind.CONTINUOUS: "continuous"}


# -- helpers at the edge ------------------------------------------------------------------------------


def _access(request: web.Request) -> Access:
    principal = request[common_keys.principal]
    if request.app[keys.settings].require_token:
        require_scopes(principal, READ_SCOPE)
    return Access(authenticated=principal.authenticated, can_read=principal.has(READ_SCOPE))


async def _source(request: web.Request) -> Mapping[str, Any]:
    """GET: the query string; POST: a JSON object with the same keys (the spec's SHOULD for long queries)."""
    if request.method != "POST":
        return request.query
    try:
        body = await request.json()
    except ValueError:
        raise BadRequest("the body must be a JSON object of search parameters") from None
    if not isinstance(body, dict):
        raise BadRequest("the body must be a JSON object of search parameters")
    return body


def _base(request: web.Request) -> str:
    configured = request.app[keys.settings].base_url
    return configured.rstrip("/") if configured else str(request.url.origin())


def _bytes_url(request: web.Request, record: MatrixRecord, p: params.Params, fmt: MatrixFormat) -> str:
    path = request.app.router[f"{_ROUTE[record.kind]}_bytes_by_id"].url_for(matrixId=record.id)
    query = {**p.raw, "format": fmt.value}
    return _base(request) + str(path.with_query(query))


def _ticket_headers(request: web.Request) -> dict[str, str] | None:
    # the ticket URL is fetched with only these headers (no token of its own): carry the caller's
    auth = request.headers.get("Authorization")
    return {"Authorization": auth} if auth else None


def _ticket(request: web.Request, record: MatrixRecord, p: params.Params, fmt: MatrixFormat) -> dict[str, Any]:
    return Ticket(
        id=record.id,
        version=record.version,
        studyID=record.studyID,
        fileType=fmt,
        units=record.units,
        url=_bytes_url(request, record, p, fmt),
        headers=_ticket_headers(request),
    ).dump()


def _merged_ticket(
    request: web.Request, kind: Kind, records: list[MatrixRecord], p: params.Params, fmt: MatrixFormat
) -> dict[str, Any]:
    """One ticket for the merged file: its url repeats the filters on the multi bytes route."""
    path = request.app.router[f"{_ROUTE[kind]}_bytes"].url_for()
    filters = {k: ",".join(v) if isinstance(v, list) else v for k, v in p.filters.items()}
    url = _base(request) + str(path.with_query({**filters, **p.raw, "format": fmt.value}))
    return Ticket(
        version=service.common_value(records, "version"),
        studyID=service.common_value(records, "studyID"),
        fileType=fmt,
        units=records[0].units,
        url=url,
        headers=_ticket_headers(request),
    ).dump()


def _file_object(request: web.Request, record: MatrixRecord, p: params.Params, fmt: MatrixFormat) -> dict[str, Any]:
    url = _bytes_url(request, record, p, fmt)
    return FileObject(
        id=record.id,
        version=record.version,
        tags=record.tags,
        fileType=fmt,
        studyID=record.studyID,
        units=record.units,
        url=url,
        URL=url,
        headers=_ticket_headers(request),
    ).dump()


def _required_format(p: params.Params) -> MatrixFormat:
    if p.format is None:
        raise BadRequest("format is required: loom or tsv (see /formats)")
    return p.format


async def _send(
    request: web.Request, records: list[MatrixRecord], p: params.Params, fmt: MatrixFormat
) -> web.StreamResponse:
    """Stream one matrix's slice, or (several records) the slices merged into one file."""
    settings = request.app[keys.settings]
    files, tmp_dir = request.app[keys.matrix_files], settings.data_dir(request.app) / "tmp"
    if len(records) == 1:
        download = await service.plan_download(
            records[0], p, fmt, files=files, tmp_dir=tmp_dir, max_cells=settings.max_slice_cells
        )
    else:
        download = await service.plan_merged_download(
            records, p, fmt, files=files, tmp_dir=tmp_dir, max_cells=settings.max_slice_cells
        )
    try:
        first = await service.next_chunk(download.chunks)  # errors before the headers still render as JSON
        response = web.StreamResponse(
            headers={
                "Content-Type": fmt.media_type,
                "Content-Disposition": f'attachment; filename="{download.filename}"',
                "X-Matrix-Shape": f"{download.rows}x{download.cols}",
            }
        )
        await response.prepare(request)
        chunk = first
        streamed = metrics.BYTES_STREAMED.labels(format=fmt.value)
        while chunk is not None:
            # produce chunk n+1 in its worker thread while chunk n drains to the client
            following = asyncio.ensure_future(service.next_chunk(download.chunks))
            try:
                await response.write(chunk)
            except BaseException:
                await asyncio.wait([following])  # the thread holds the generator until it is done
                raise
            streamed.inc(len(chunk))
            chunk = await following
        await response.write_eof()
        return response
    finally:
        # deletes a loom temp file; if a worker thread is still inside the generator (client gone
        # mid-chunk) it cannot be closed now, and its finalizer does the cleanup instead
        with contextlib.suppress(ValueError):
            download.chunks.close()


# -- service info -----------------------------------------------------------------------------------


@routes.get("/service-info")
async def service_info(request: web.Request) -> web.Response:
    """GA4GH service-info (RNAget 1.1.0 adds it; harmless for 1.0.0 clients)."""
    common = request.app[common_keys.common_settings]
    info = ServiceInfo(
        id="org.seqhub.rnaget",
        name="seqhub RNAget",
        type={"group": "org.ga4gh", "artifact": "rnaget", "version": "1.0.0"},
        description="Expression matrices and continuous signal: released 1.0.0 routes and the 2019 draft routes",
        organization={"name": "seqhub", "url": common.public_url},
        version="0.1.0",
        supported={"projects": True, "studies": True, "expressions": True, "continuous": True},
    )
    return media.json_response(request, info.dump())


# -- projects and studies ------------------------------------------------------------------------------


def _metadata_routes(
    collection: str,
    id_param: str,
    allowed: tuple[str, ...],
    find: Callable[[MetadataStore, Mapping[str, str | list[str]]], Awaitable[Sequence[Project | Study]]],
    get: Callable[..., Awaitable[Project | Study]],
) -> None:
    """Search (GET and POST), filters and by-id routes of `/projects` or `/studies` (the same shape in the spec)."""

    async def filters(request: web.Request) -> web.Response:
        media.json_media_type(request)
        found = await service.metadata_filters(collection, store=request.app[keys.metadata_store])
        return media.json_response(request, [f.dump() for f in found])

    async def search(request: web.Request) -> web.Response:
        p = params.parse(await _source(request), allowed=allowed)
        found = await find(request.app[keys.metadata_store], p.filters)
        return media.json_response(request, [x.dump() for x in found])

    async def by_id(request: web.Request) -> web.Response:
        media.json_media_type(request)
        item = await get(request.match_info[id_param], store=request.app[keys.metadata_store])
        return media.json_response(request, item.dump())

    base = f"/{collection}"
    for path in (base, f"{base}/", f"{base}/search", f"{base}/search/"):
        routes.get(path)(search)
    routes.post(f"{base}/search")(search)
    routes.get(f"{base}/filters")(filters)
    routes.get(f"{base}/search/filters")(filters)
    routes.get(f"{base}/{{{id_param}}}")(by_id)


# -- expressions and continuous -----------------------------------------------------------------------


def _matrix_routes(kind: Kind) -> None:
    base = "/" + _ROUTE[kind]

    async def formats(request: web.Request) -> web.Response:
        return media.json_response(request, [f.value for f in MatrixFormat])

    async def filters(request: web.Request) -> web.Response:
        media.json_media_type(request)
        found = await service.matrix_filters(kind, request.query.get("type"), store=request.app[keys.metadata_store])
        return media.json_response(request, [f.dump() for f in found])

    async def _matching(request: web.Request, p: params.Params) -> list[MatrixRecord]:
        return await service.find_for_download(
            kind,
            p,
            store=request.app[keys.metadata_store],
            access=_access(request),
            max_matrices=request.app[keys.matrix_files].capacity,
        )

    async def multi_ticket(request: web.Request) -> web.Response:
        media.json_media_type(request)
        p = params.parse(await _source(request), allowed=SEARCH_PARAMS[kind])
        fmt = _required_format(p)
        records = await _matching(request, p)
        if len(records) == 1:
            return media.json_response(request, _ticket(request, records[0], p, fmt))
        max_cells = request.app[keys.settings].max_slice_cells
        await service.check_merge(records, p, files=request.app[keys.matrix_files], max_cells=max_cells)
        return media.json_response(request, _merged_ticket(request, kind, records, p, fmt))

    async def multi_bytes(request: web.Request) -> web.StreamResponse:
        p = params.parse(await _source(request), allowed=SEARCH_PARAMS[kind])
        requested = _required_format(p)
        records = await _matching(request, p)
        # not found (404) wins over not acceptable (406): look the matrices up first
        fmt = media.matrix_format(request, requested, request.app[keys.settings].default_format)
        return await _send(request, records, p, fmt)

    async def draft_search(request: web.Request) -> web.Response:
        media.json_media_type(request)
        try:
            p = params.parse(await _source(request), allowed=SEARCH_PARAMS[kind])
        except NotAcceptable:
            # the draft searches files: "format" is a filter like the others, and no file has an unknown one
            return media.json_response(request, [])
        fmt = _required_format(p)
        found = await service.find_matrices(kind, p, store=request.app[keys.metadata_store], access=_access(request))
        return media.json_response(request, [_file_object(request, r, p, fmt) for r in found])

    async def _record(request: web.Request) -> MatrixRecord:
        return await service.get_matrix(
            kind, request.match_info["matrixId"], store=request.app[keys.metadata_store], access=_access(request)
        )

    async def ticket_by_id(request: web.Request) -> web.Response:
        media.json_media_type(request)
        p = params.parse(request.query, allowed=BY_ID_PARAMS[kind])
        record = await _record(request)
        fmt = p.format or request.app[keys.settings].default_format
        return media.json_response(request, _ticket(request, record, p, fmt))

    async def bytes_by_id(request: web.Request) -> web.StreamResponse:
        p = params.parse(request.query, allowed=BY_ID_PARAMS[kind])
        record = await _record(request)
        fmt = media.matrix_format(request, p.format, request.app[keys.settings].default_format)
        return await _send(request, [record], p, fmt)

    async def draft_by_id(request: web.Request) -> web.StreamResponse:
        p = params.parse(request.query, allowed=BY_ID_PARAMS[kind])
        if kind is Kind.CONTINUOUS:  # the draft's /continuous/{id} is the matrix itself
            return await bytes_by_id(request)
        media.json_media_type(request)
        record = await _record(request)
        fmt = p.format or request.app[keys.settings].default_format
        return media.json_response(request, _file_object(request, record, p, fmt))

    routes.get(f"{base}/formats")(formats)
    routes.get(f"{base}/filters")(filters)
    routes.get(f"{base}/search/filters")(filters)
    routes.get(f"{base}/ticket")(multi_ticket)
    routes.post(f"{base}/ticket")(multi_ticket)
    routes.get(f"{base}/bytes", name=f"{_ROUTE[kind]}_bytes")(multi_bytes)
    routes.post(f"{base}/bytes")(multi_bytes)
    routes.get(f"{base}/search")(draft_search)
    routes.post(f"{base}/search")(draft_search)
    routes.get(f"{base}/{{matrixId}}/ticket")(ticket_by_id)
    routes.get(f"{base}/{{matrixId}}/bytes", name=f"{_ROUTE[kind]}_bytes_by_id")(bytes_by_id)
    routes.get(f"{base}/{{matrixId}}")(draft_by_id)


# -- administration (operators; the `seqhub rnaget` CLI) ------------------------------------------------


async def put_project(request: web.Request) -> web.Response:
    require_scopes(request[common_keys.principal], service.ADMIN_SCOPE)
    body = await _source_json(request)
    project = Project.model_validate({**body, "id": request.match_info["projectId"]})
    await request.app[keys.metadata_store].put_project(project)
    return media.json_response(request, project.dump())


async def put_study(request: web.Request) -> web.Response:
    require_scopes(request[common_keys.principal], service.ADMIN_SCOPE)
    body = await _source_json(request)
    study = Study.model_validate({**body, "id": request.match_info["studyId"]})
    await request.app[keys.metadata_store].put_study(study)
    return media.json_response(request, study.dump())


async def _source_json(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        raise BadRequest("the body must be a JSON object") from None
    if not isinstance(body, dict):
        raise BadRequest("the body must be a JSON object")
    return body


IMPORT_PARAMS = ("format", "units", "studyID", "projectID", "version", "name", "description", "tags", "access_level")


async def import_matrix(request: web.Request) -> web.Response:
    """PUT the raw matrix file (TSV, TSV.gz or loom) as the body; metadata in the query string."""
    require_scopes(request[common_keys.principal], service.ADMIN_SCOPE)
    kind = _kind(request.match_info["kind"])
    q = request.query
    unknown = sorted(set(q) - set(IMPORT_PARAMS))
    if unknown:
        raise BadRequest(f"unsupported parameter(s): {', '.join(unknown)}; accepted: {', '.join(IMPORT_PARAMS)}")
    if "format" not in q or "units" not in q:
        raise BadRequest("format (tsv or loom) and units (e.g. TPM) are required")
    req = service.ImportRequest(
        matrix_id=_matrix_id(request.match_info["matrixId"]),
        kind=kind,
        format=params.parse_format(q["format"]),
        units=q["units"],
        study_id=q.get("studyID"),
        project_id=q.get("projectID"),
        version=q.get("version"),
        name=q.get("name"),
        description=q.get("description"),
        tags=tuple(t.strip() for t in q["tags"].split(",")) if q.get("tags") else None,
        access_level=q.get("access_level", "PUBLIC").upper(),
    )
    if req.access_level not in ("PUBLIC", "REGISTERED", "CONTROLLED"):
        raise BadRequest("access_level must be PUBLIC, REGISTERED or CONTROLLED")
    settings = request.app[keys.settings]
    tmp = settings.data_dir(request.app) / "tmp" / f"upload-{uuid.uuid4().hex}"
    tmp.parent.mkdir(parents=True, exist_ok=True)
    try:
        with tmp.open("wb") as out:
            async for chunk in request.content.iter_chunked(1 << 20):
                out.write(chunk)
        record = await service.import_matrix(
            tmp,
            req,
            store=request.app[keys.metadata_store],
            files=request.app[keys.matrix_files],
            outbox=request.app[common_keys.outbox],
        )
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()
    return media.json_response(request, record.model_dump(mode="json", exclude_none=True), status=201)


async def delete_matrix(request: web.Request) -> web.Response:
    require_scopes(request[common_keys.principal], service.ADMIN_SCOPE)
    kind = _kind(request.match_info["kind"])
    store = request.app[keys.metadata_store]
    record = await service.get_matrix(
        kind, request.match_info["matrixId"], store=store, access=Access(authenticated=True, can_read=True)
    )
    await service.delete_matrix(record, store=store, files=request.app[keys.matrix_files])
    return web.Response(status=204)


def _kind(text: str) -> Kind:
    try:
        return {"expressions": Kind.EXPRESSION, "continuous": Kind.CONTINUOUS}[text]
    except KeyError:
        raise BadRequest(f"unknown matrix kind {text!r}; use expressions or continuous") from None


def _matrix_id(text: str) -> str:
    import re

    from .models import ID_PATTERN

    if not re.match(ID_PATTERN, text):
        raise BadRequest(f"matrix id {text!r} must match {ID_PATTERN}")
    return text


_metadata_routes("projects", "projectId", PROJECT_PARAMS, MetadataStore.find_projects, service.get_project)
_metadata_routes("studies", "studyId", STUDY_PARAMS, MetadataStore.find_studies, service.get_study)
_matrix_routes(Kind.EXPRESSION)
_matrix_routes(Kind.CONTINUOUS)
routes.put("/admin/projects/{projectId}")(put_project)
routes.put("/admin/studies/{studyId}")(put_study)
routes.put("/admin/{kind}/{matrixId}")(import_matrix)
routes.delete("/admin/{kind}/{matrixId}")(delete_matrix)
