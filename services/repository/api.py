"""HTTP entry points of the repository service (the GMI REST API): thin handlers over `service`.

Routes are declared without the `/repository` prefix. One set of handlers serves every resource type,
chosen by the collection segment of the path (`/studies`, `/samples`, ...).
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

import orjson
from aiohttp import web
from pydantic import ValidationError

from libs.common import keys as common_keys
from libs.common.errors import BadRequest, NotFound, UnsupportedMediaType

from . import keys, representation, service
from .bodies import parse_body, parse_elements
from .models import ListQuery, Page, Resource, ResourceType, Review, ReviewDecision, ReviewStatus
from .negotiation import Representation, negotiate, request_format
from .uploads import read_multipart

routes = web.RouteTableDef()

TYPES = "studies|samples|experiments|runs|analyses|submissions"
NESTED: dict[tuple[str, str], tuple[ResourceType, ResourceType]] = {
    ("studies", "samples"): (ResourceType.STUDY, ResourceType.SAMPLE),
    ("samples", "experiments"): (ResourceType.SAMPLE, ResourceType.EXPERIMENT),
    ("experiments", "runs"): (ResourceType.EXPERIMENT, ResourceType.RUN),
    ("runs", "analyses"): (ResourceType.RUN, ResourceType.ANALYSIS),
}
MULTIPART_TYPES = (ResourceType.RUN, ResourceType.ANALYSIS)


# --- helpers ---------------------------------------------------------------------------------------------


def _rtype(request: web.Request) -> ResourceType:
    return ResourceType.from_collection(request.match_info["collection"])


def _base(request: web.Request) -> str:
    """Absolute URL of the service root, whether mounted under /repository or not (prefix found at start-up)."""
    return f"{request.scheme}://{request.host}{request.app[keys.mount_path]}"


def _store(request: web.Request) -> service.ResourceStore:
    return request.app[keys.resource_store]


def _caller(request: web.Request) -> Any:
    return request[common_keys.principal]


def _etag(resource: Resource, rep: Representation) -> str:
    return resource.etag if rep is Representation.JSON else f'{resource.etag[:-1]}-{rep.value}"'


def _if_match(request: web.Request) -> str | None:
    value = request.headers.get("If-Match")
    if value is None:
        return None
    return ",".join(tag.strip().replace('-xml"', '"').replace('-html"', '"') for tag in value.split(","))


def _not_modified(request: web.Request, etag: str, modified: datetime) -> bool:
    if_none_match = request.headers.get("If-None-Match")
    if if_none_match is not None:
        tags = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
        return "*" in tags or etag in tags
    since = request.if_modified_since
    return since is not None and modified.replace(microsecond=0) <= since


def _render(
    request: web.Request, resource: Resource, rep: Representation, media: str, *, status: int = 200
) -> web.Response:
    base = _base(request)
    headers = {
        "Content-Type": media if rep is not Representation.HTML else "text/html; charset=utf-8",
        "ETag": _etag(resource, rep),
        "Last-Modified": _http_date(resource.modified),
        "Vary": "Accept, Authorization",
    }
    if rep is Representation.XML:
        headers["Link"] = representation.link_header(representation.links(resource, base))
        return web.Response(body=representation.to_xml([resource]), status=status, headers=headers)
    if rep is Representation.HTML:
        return web.Response(body=representation.to_html(resource, base).encode(), status=status, headers=headers)
    return web.Response(body=orjson.dumps(representation.to_json(resource, base)), status=status, headers=headers)


def _write_media(request: web.Request, rtype: ResourceType) -> tuple[str, Representation]:
    """Answer a write in the format of the request body (the draft), or as Accept asks when it names one."""
    rep = request_format(request.headers.get("Content-Type"), rtype) if request.body_exists else Representation.JSON
    if "Accept" in request.headers and request.headers["Accept"] not in ("*/*", ""):
        return negotiate(request.headers["Accept"], rtype, html=False)
    return (rtype.info.xml_type, rep) if rep is Representation.XML else (rtype.info.json_type, rep)


async def _read_body(request: web.Request, rtype: ResourceType) -> dict[str, Any]:
    rep = request_format(request.headers.get("Content-Type"), rtype, multipart=rtype in MULTIPART_TYPES)
    data = await request.read()
    return parse_body(data, rep, rtype)


def _list_query(request: web.Request) -> ListQuery:
    params = dict(request.query)
    attribute = params.pop("attribute", None)
    values: dict[str, Any] = dict(params)
    if attribute is not None:
        tag, sep, value = attribute.partition(":")
        if not sep:
            raise BadRequest("attribute filter must be TAG:VALUE")
        values["attribute"] = (tag, value)
    try:
        return ListQuery.model_validate(values)
    except ValidationError as exc:
        fields = ", ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise BadRequest(f"invalid query parameters: {fields}") from None


def _page_response(request: web.Request, page: Page, rtype: ResourceType, query: ListQuery) -> web.Response:
    media, rep = negotiate(request.headers.get("Accept"), rtype)
    base = _base(request)
    if rep is Representation.XML:
        response = web.Response(
            body=representation.to_xml(list(page.items)) if page.items else f"<{rtype.info.set_tag}/>".encode()
        )
    elif rep is Representation.HTML:
        response = web.Response(text=representation.page_html(page, base, rtype))
    else:
        response = web.Response(body=orjson.dumps(representation.page_json(page, base, rtype)))
    response.headers["Content-Type"] = media if rep is not Representation.HTML else "text/html; charset=utf-8"
    links = [f'<{request.url.with_query(_without(request, "after"))}>; rel="first"']
    if page.next_after:
        links.append(f'<{request.url.update_query(after=page.next_after)}>; rel="next"')
    response.headers["Link"] = ", ".join(links)
    response.headers["Vary"] = "Accept, Authorization"
    return response


def _without(request: web.Request, name: str) -> dict[str, str]:
    return {k: v for k, v in request.query.items() if k != name}


# --- collections -----------------------------------------------------------------------------------------


@routes.get("/studies", name="studies")
async def list_studies(request: web.Request) -> web.Response:
    return await _list(request, ResourceType.STUDY, None)


@routes.get(r"/{collection:" + TYPES + "}")
async def list_collection(request: web.Request) -> web.Response:
    return await _list(request, _rtype(request), None)


async def _list(request: web.Request, rtype: ResourceType, parent: tuple[ResourceType, str] | None) -> web.Response:
    negotiate(request.headers.get("Accept"), rtype)
    query = _list_query(request)
    page = await service.list_resources(rtype, query, caller=_caller(request), store=_store(request), parent=parent)
    return _page_response(request, page, rtype, query)


@routes.post(r"/{collection:" + TYPES + "}")
async def create(request: web.Request) -> web.Response:
    return await _create(request, _rtype(request), None)


@routes.get(r"/{parent:studies|samples|experiments|runs}/{accession}/{child:samples|experiments|runs|analyses}")
async def list_nested(request: web.Request) -> web.Response:
    parent_type, child_type = _nested(request)
    return await _list(request, child_type, (parent_type, request.match_info["accession"]))


@routes.post(r"/{parent:studies|samples|experiments|runs}/{accession}/{child:samples|experiments|runs|analyses}")
async def create_nested(request: web.Request) -> web.Response:
    parent_type, child_type = _nested(request)
    return await _create(request, child_type, (parent_type, request.match_info["accession"]))


def _nested(request: web.Request) -> tuple[ResourceType, ResourceType]:
    pair = NESTED.get((request.match_info["parent"], request.match_info["child"]))
    if pair is None:
        raise NotFound(f"no collection {request.path}")
    return pair


async def _create(request: web.Request, rtype: ResourceType, parent: tuple[ResourceType, str] | None) -> web.Response:
    store, caller = _store(request), _caller(request)
    settings = request.app[keys.settings]
    if request.content_type == "multipart/mixed" and rtype in MULTIPART_TYPES:
        body, files = await read_multipart(
            request, rtype, caller=caller, files=request.app[common_keys.files], max_bytes=settings.max_upload_bytes
        )
        media, rep = rtype.info.json_type, Representation.JSON
    else:
        content = request_format(request.headers.get("Content-Type"), rtype, multipart=rtype in MULTIPART_TYPES)
        elements = parse_elements(await request.read(), content, rtype)
        media, rep = _write_media(request, rtype)
        if len(elements) > 1:
            return await _create_set(request, rtype, parent, elements, media, rep)
        body, files = elements[0], []
    try:
        result = await service.create_resource(
            rtype,
            body,
            caller=caller,
            store=store,
            review_types=settings.review_type_set,
            parent=parent,
            files=files,
        )
    except BaseException:
        for f in files:
            await request.app[common_keys.files].delete(f.uri)
        raise
    if isinstance(result, Review):
        url = f"{_base(request)}/{rtype.info.collection}-to-review/{result.id}"
        response = web.json_response(representation.accepted_for_review(result, url), status=202)
        response.headers["Location"] = url
        return response
    response = _render(request, result, rep, media, status=201)
    response.headers["Location"] = representation.item_url(_base(request), rtype, result.accession)
    return response


async def _create_set(
    request: web.Request,
    rtype: ResourceType,
    parent: tuple[ResourceType, str] | None,
    elements: list[dict[str, Any]],
    media: str,
    rep: Representation,
) -> web.Response:
    """A ``*_SET`` with several elements: 201 with the created set (``Link: rel="item"`` per resource, no single
    Location), or 202 listing one review per element; all or nothing."""
    settings = request.app[keys.settings]
    results = await service.create_resources(
        rtype, elements, caller=_caller(request), store=_store(request), review_types=settings.review_type_set,
        parent=parent,
    )
    base = _base(request)
    if results and isinstance(results[0], Review):
        reviews = [r for r in results if isinstance(r, Review)]
        urls = [f"{base}/{rtype.info.collection}-to-review/{review.id}" for review in reviews]
        return web.json_response(representation.accepted_set_for_review(rtype, urls), status=202)
    resources = [r for r in results if isinstance(r, Resource)]
    if rep is Representation.XML:
        response = web.Response(body=representation.to_xml(resources), status=201)
    else:
        body = {"resources": [representation.to_json(r, base) for r in resources], "count": len(resources)}
        response = web.Response(body=orjson.dumps(body), status=201)
    response.headers["Content-Type"] = media
    response.headers["Link"] = ", ".join(
        f'<{representation.item_url(base, rtype, r.accession)}>; rel="item"' for r in resources
    )
    return response


# --- items -----------------------------------------------------------------------------------------------


@routes.get(r"/{collection:" + TYPES + "}/{accession}")
async def get_item(request: web.Request) -> web.Response:
    rtype = _rtype(request)
    media, rep = negotiate(request.headers.get("Accept"), rtype)
    resource = await service.get_resource(
        rtype, request.match_info["accession"], caller=_caller(request), store=_store(request)
    )
    etag = _etag(resource, rep)
    if _not_modified(request, etag, resource.modified):
        return web.Response(status=304, headers={"ETag": etag, "Last-Modified": _http_date(resource.modified)})
    return _render(request, resource, rep, media)


@routes.put(r"/{collection:" + TYPES + "}/{accession}")
async def put_item(request: web.Request) -> web.Response:
    rtype = _rtype(request)
    body = await _read_body(request, rtype)
    media, rep = _write_media(request, rtype)
    resource, created = await service.replace_resource(
        rtype,
        request.match_info["accession"],
        body,
        caller=_caller(request),
        store=_store(request),
        if_match=_if_match(request),
    )
    response = _render(request, resource, rep, media, status=201 if created else 200)
    response.headers["Location"] = representation.item_url(_base(request), rtype, resource.accession)
    return response


@routes.patch(r"/{collection:" + TYPES + "}/{accession}")
async def patch_item(request: web.Request) -> web.Response:
    rtype = _rtype(request)
    rep = request_format(request.headers.get("Content-Type"), rtype)
    if rep is not Representation.JSON:
        raise UnsupportedMediaType("PATCH takes a JSON merge patch (application/merge-patch+json)")
    patch = parse_body(await request.read(), rep, rtype)
    media, out_rep = _write_media(request, rtype)
    resource = await service.patch_resource(
        rtype,
        request.match_info["accession"],
        patch,
        caller=_caller(request),
        store=_store(request),
        if_match=_if_match(request),
    )
    response = _render(request, resource, out_rep, media)
    response.headers["Location"] = representation.item_url(_base(request), rtype, resource.accession)
    return response


@routes.delete(r"/{collection:" + TYPES + "}/{accession}")
async def delete_item(request: web.Request) -> web.Response:
    rtype = _rtype(request)
    await service.delete_resource(
        rtype,
        request.match_info["accession"],
        caller=_caller(request),
        store=_store(request),
        if_match=_if_match(request),
    )
    collection = representation.collection_url(_base(request), rtype)
    return web.json_response(
        {"message": f"{request.match_info['accession']} deleted", "links": [{"rel": "collection", "href": collection}]}
    )


@routes.get(r"/{collection:" + TYPES + "}/{accession}/related-resources")
async def related_resources(request: web.Request) -> web.Response:
    resource = await service.get_resource(
        _rtype(request), request.match_info["accession"], caller=_caller(request), store=_store(request)
    )
    return web.json_response({"resources": representation.related_resources(resource)})


@routes.get("/studies/{accession}/related-studies")
async def related_studies(request: web.Request) -> web.Response:
    resource = await service.get_resource(
        ResourceType.STUDY, request.match_info["accession"], caller=_caller(request), store=_store(request)
    )
    return web.json_response({"studies": representation.related_studies(resource)})


@routes.get(r"/{collection:runs|analyses}/{accession}/data")
async def list_data(request: web.Request) -> web.Response:
    rtype = _rtype(request)
    resource = await service.get_resource(
        rtype, request.match_info["accession"], caller=_caller(request), store=_store(request)
    )
    return web.json_response({"files": representation.to_json(resource, _base(request)).get("files", [])})


@routes.get(r"/{collection:runs|analyses}/{accession}/data/{name}")
async def get_data(request: web.Request) -> web.StreamResponse:
    rtype = _rtype(request)
    resource = await service.get_resource(
        rtype, request.match_info["accession"], caller=_caller(request), store=_store(request)
    )
    for f in resource.files:
        if f.name == request.match_info["name"]:
            return web.FileResponse(request.app[common_keys.files].path(f.uri))
    raise NotFound(f"{resource.accession} has no file {request.match_info['name']!r}")


@routes.get("/submitters/{subject}")
async def submitter(request: web.Request) -> web.Response:
    return web.json_response({"id": request.match_info["subject"]})


# --- reviews ---------------------------------------------------------------------------------------------


@routes.get(r"/{collection:" + TYPES + "}-to-review/{review_id}")
async def get_review(request: web.Request) -> web.Response:
    review = await service.get_review(request.match_info["review_id"], caller=_caller(request), store=_store(request))
    etag = f'"{review.id}-{int(review.modified.timestamp() * 1000)}"'
    if _not_modified(request, etag, review.modified):
        return web.Response(status=304, headers={"ETag": etag, "Last-Modified": _http_date(review.modified)})
    response = web.json_response(representation.review_json(review, _base(request)))
    response.headers["ETag"] = etag
    response.headers["Last-Modified"] = _http_date(review.modified)
    return response


@routes.post(r"/{collection:" + TYPES + "}-to-review/{review_id}/decision")
async def decide_review(request: web.Request) -> web.Response:
    try:
        decision = ReviewDecision.model_validate_json(await request.read())
    except ValidationError as exc:
        fields = ", ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise BadRequest(f"invalid decision: {fields}") from None
    review = await service.decide_review(
        request.match_info["review_id"], decision, caller=_caller(request), store=_store(request)
    )
    response = web.json_response(representation.review_json(review, _base(request)))
    response.headers["Last-Modified"] = _http_date(review.modified)
    if review.status is ReviewStatus.APPROVED and review.accession:
        response.headers["Location"] = representation.item_url(_base(request), review.rtype, review.accession)
    return response


def _http_date(value: datetime) -> str:
    """IMF-fixdate of the time floored to the second (aiohttp's own `last_modified` setter rounds up)."""
    return time.strftime("%a, %d %b %Y %H:%M:%S GMT", value.utctimetuple())
