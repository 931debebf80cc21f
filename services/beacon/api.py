"""HTTP entry points of the beacon: thin handlers that parse, resolve the caller's access, call one use
case and serialise.  Routes are declared without the `/beacon` prefix."""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from libs.common import keys as common_keys
from libs.common.auth import Principal, require_scopes
from libs.common.errors import BadRequest, UnsupportedMediaType
from libs.common.passports import PASSPORT_CLAIM

from . import keys, metrics, service
from .index import DATASET_ID
from .models import API_VERSION, AccessLevel, AlleleRequest, RegisteredBeacon
from .network import aggregate
from .query import InvalidQuery, parse_json, parse_multidict
from .vcf import VcfError

routes = web.RouteTableDef()


def beacon_error(request: web.Request, status: int, message: str, extra: Mapping[str, Any]) -> web.Response:
    """The Beacon error object inside a BeaconAlleleResponse (what the spec types 4xx bodies as)."""
    body: dict[str, Any] = {
        "beaconId": request.app[keys.settings].beacon_id,
        "apiVersion": API_VERSION,
        "error": {"errorCode": status, "errorMessage": message},
        "datasetAlleleResponses": [],
    }
    if isinstance(extra.get("alleleRequest"), dict):
        body["alleleRequest"] = extra["alleleRequest"]
    return web.json_response(body, status=status)


def _json(model: Any, status: int = 200) -> web.Response:
    # Serialised by pydantic-core in one pass (no intermediate dicts, no json.dumps).
    return web.Response(body=model.model_dump_json(exclude_none=True), status=status, content_type="application/json")


def access_of(request: web.Request) -> service.Access:
    principal: Principal = request[common_keys.principal]
    if not principal.authenticated:
        return service.ANONYMOUS_ACCESS
    settings = request.app[keys.settings]
    scoped = frozenset(s.removeprefix("beacon:dataset:") for s in principal.scopes if s.startswith("beacon:dataset:"))
    visas = principal.claims.get(PASSPORT_CLAIM)
    verified = None
    if isinstance(visas, list) and visas:
        verified = request.app[keys.passports].verify_visas(visas, subject=principal.subject)
    return service.Access(
        authenticated=True,
        registered=principal.has("beacon:registered") or bool(verified and verified.bona_fide),
        datasets=scoped | (verified.datasets(settings.grant_prefix()) if verified else frozenset()),
        everything="admin" in principal.scopes,
    )


def spend_budget(request: web.Request) -> None:
    principal: Principal = request[common_keys.principal]
    request.app[keys.query_budget].spend(principal.subject or f"ip:{request.remote}")


async def parse_query(request: web.Request) -> AlleleRequest:
    spend_budget(request)
    try:
        if request.method == "GET":
            return parse_multidict(list(request.query.items()))
        ctype = request.content_type
        if not request.can_read_body:
            raise InvalidQuery("body", "POST /query needs a BeaconAlleleRequest body (JSON or form-encoded)")
        if ctype == "application/json":
            try:
                body = json.loads(await request.text() or "null")
            except ValueError:
                raise InvalidQuery("body", "The request body is not valid JSON") from None
            return parse_json(body)
        if ctype == "application/x-www-form-urlencoded":
            form = await request.post()
            return parse_multidict([(k, v) for k, v in form.items() if isinstance(v, str)])
        raise UnsupportedMediaType("POST /query takes application/json or application/x-www-form-urlencoded")
    except InvalidQuery as exc:
        raise service.InvalidRequest(exc.message) from None


@routes.get("/")
async def beacon_info(request: web.Request) -> web.Response:
    app = request.app
    info = service.describe(app[keys.identity], datasets=app[keys.catalog].snapshot(), access=access_of(request))
    return _json(info)


@routes.get("/query")
@routes.post("/query")
async def query(request: web.Request) -> web.Response:
    try:
        req = await parse_query(request)
        app = request.app
        answer = await service.answer(
            req,
            datasets=app[keys.catalog].snapshot(),
            access=access_of(request),
            beacon_id=app[keys.settings].beacon_id,
        )
    except Exception:
        metrics.QUERIES.labels(result="error").inc()
        raise
    metrics.QUERIES.labels(result="hit" if answer.exists else "miss").inc()
    return _json(answer)


@routes.get("/service-info")
async def service_info(request: web.Request) -> web.Response:
    """GA4GH service-info (https://github.com/ga4gh-discovery/ga4gh-service-info)."""
    settings = request.app[keys.settings]
    return web.json_response(
        {
            "id": settings.beacon_id,
            "name": settings.name,
            "type": {"group": "org.ga4gh", "artifact": "beacon", "version": API_VERSION.lstrip("v")},
            "organization": {"name": settings.organization_name, "url": settings.common.public_url},
            "version": "0.1.0",
        }
    )


@routes.put("/datasets/{dataset_id}")
async def load_dataset(request: web.Request) -> web.Response:
    """Operator load (`seqhub beacon load`): the body is the VCF/BCF; metadata in query parameters."""
    require_scopes(request[common_keys.principal], "admin")
    dataset_id = request.match_info["dataset_id"]
    spec = _load_spec(dataset_id, request.query, request.get(common_keys.request_id))
    files = request.app[common_keys.files]
    stored = await files.put(
        f"beacon/uploads/{dataset_id}-{secrets.token_hex(6)}", request.content.iter_chunked(1 << 20)
    )
    try:
        meta = await service.load_dataset(
            files.path(stored.uri),
            spec,
            root=request.app[keys.settings].index_root(),
            store=request.app[keys.dataset_store],
            outbox=request.app[common_keys.outbox],
            catalog=request.app[keys.catalog],
        )
    except VcfError as exc:
        raise BadRequest(f"body: {exc}") from None
    finally:
        await files.delete(stored.uri)
    return _json(meta, status=201)


def _load_spec(dataset_id: str, query: Mapping[str, str], request_id: str | None) -> service.LoadSpec:
    if not DATASET_ID.fullmatch(dataset_id):
        raise BadRequest(f"dataset id must match {DATASET_ID.pattern}")
    assembly = query.get("assembly", "")
    if not assembly:
        raise BadRequest("Missing mandatory parameter assembly (e.g. GRCh38)")
    try:
        access = AccessLevel(query.get("access", "PUBLIC").upper())
    except ValueError:
        raise BadRequest("access must be PUBLIC, REGISTERED or CONTROLLED") from None
    return service.LoadSpec(
        dataset_id=dataset_id,
        assembly=assembly,
        access=access,
        name=query.get("name"),
        description=query.get("description"),
        correlation_id=request_id,
    )


@routes.delete("/datasets/{dataset_id}")
async def withdraw_dataset(request: web.Request) -> web.Response:
    require_scopes(request[common_keys.principal], "admin")
    dataset_id = request.match_info["dataset_id"]
    await service.require_dataset(dataset_id, store=request.app[keys.dataset_store])
    await service.withdraw_dataset(
        dataset_id,
        root=request.app[keys.settings].index_root(),
        store=request.app[keys.dataset_store],
        catalog=request.app[keys.catalog],
    )
    return web.Response(status=204)


@routes.get("/network/query")
@routes.post("/network/query")
async def network_query(request: web.Request) -> web.Response:
    req = await parse_query(request)
    answers = await request.app[keys.network].query(req)
    body = {
        "beaconId": request.app[keys.settings].beacon_id,
        "apiVersion": API_VERSION,
        "exists": aggregate(answers),
        "alleleRequest": req.model_dump(exclude_none=True),
        "responses": answers,
    }
    return web.json_response(body)


@routes.get("/network/beacons")
async def network_beacons(request: web.Request) -> web.Response:
    beacons = await request.app[keys.network].health()
    return web.json_response({"beacons": [b.model_dump(exclude_none=True) for b in beacons]})


@routes.post("/network/beacons")
async def register_beacon(request: web.Request) -> web.Response:
    require_scopes(request[common_keys.principal], "admin")
    try:
        beacon = RegisteredBeacon.model_validate(await request.json())
    except ValueError:
        raise BadRequest("body: a JSON object {id, url, name?} is required") from None
    registered = await request.app[keys.network].register(beacon)
    return web.json_response(registered.model_dump(exclude_none=True), status=201)
