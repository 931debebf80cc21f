"""The aiohttp skeleton every service shares: `service_app()` builds a service's app with its middlewares,
resources (cleanup contexts in dependency order), probes, metrics and OpenAPI routes; `root_app()` mounts
services under their prefixes (one in standalone mode, all five in embedded mode).

Middlewares, outermost first: request id → metrics + JSON access log → errors (typed errors rendered in the
service's own shape; anything unexpected → 500 with only the request id) → CORS (GA4GH APIs) → auth (sets
`request[keys.principal]`). Resources: HTTP client → MongoDB (+ indexes, outbox, inbox) → bus → file store →
token verifier → the service's own contexts → outbox relay → consumers.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from http import HTTPStatus
from pathlib import Path
from typing import Any

import aiohttp
import yaml
from aiohttp import web
from pydantic import ValidationError
from pymongo.errors import ConnectionFailure

from libs.common import db as dbmod
from libs.common import keys, metrics, outbox
from libs.common.auth import ANONYMOUS, RevocationList, TokenVerifier, parse_basic
from libs.common.bus import Consumer, Subscription, create_bus
from libs.common.config import EMBEDDED_BUS, CommonSettings
from libs.common.errors import SeqhubError, ServiceUnavailable, Unauthorized
from libs.common.events import TokenRevoked
from libs.common.filestore import LocalFileStore
from libs.common.logs import request_id_var

log = logging.getLogger(__name__)
access_log = logging.getLogger("seqhub.access")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
ErrorRenderer = Callable[[web.Request, int, str, Mapping[str, Any]], web.Response]
CleanupContext = Callable[[web.Application], AsyncIterator[None]]
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_TITLES = {460: "Checksum Mismatch"}  # tus checksum extension; others come from http.HTTPStatus


def problem_renderer(request: web.Request, status: int, message: str, extra: Mapping[str, Any]) -> web.Response:
    """RFC 9457 problem+json, the default error shape."""
    body = {"type": "about:blank", "title": _title(status), "status": status, "detail": message,
            "instance": request.path, "request_id": request.get(keys.request_id), **extra}
    return web.json_response(body, status=status, content_type="application/problem+json")


def _title(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return _TITLES.get(status, "Error")


@web.middleware
async def request_id_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    if keys.request_id in request:
        # a service app mounted under root_app: the root's middleware already chose the id (one per request)
        return await handler(request)
    incoming = request.headers.get("X-Request-ID", "")
    rid = incoming if _REQUEST_ID.match(incoming) else uuid.uuid4().hex
    request[keys.request_id] = rid
    token = request_id_var.set(rid)
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        exc.headers["X-Request-ID"] = rid
        raise
    finally:
        request_id_var.reset(token)
    if not response.prepared:
        response.headers["X-Request-ID"] = rid
    return response


def metrics_middleware(service: str) -> Any:
    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        started = time.perf_counter()
        status = 500
        metrics.HTTP_IN_PROGRESS.labels(service=service).inc()
        try:
            response = await handler(request)
            status = response.status
            return response
        except web.HTTPException as exc:
            status = exc.status
            raise
        finally:
            elapsed = time.perf_counter() - started
            metrics.HTTP_IN_PROGRESS.labels(service=service).dec()
            route = _route_template(request)
            labels = {"service": service, "method": request.method, "route": route, "status": str(status)}
            metrics.HTTP_REQUESTS.labels(**labels).inc()
            metrics.HTTP_DURATION.labels(**labels).observe(elapsed)
            access_log.info("%s %s %s", request.method, request.path, status, extra={
                "method": request.method, "path": request.path, "route": route, "status": status,
                "duration_ms": round(elapsed * 1000, 3), "remote": request.remote})

    return middleware


def _route_template(request: web.Request) -> str:
    route = request.match_info.route
    resource = route.resource if route is not None else None
    return resource.canonical if resource is not None and request.match_info.http_exception is None else "unmatched"


def error_middleware(renderer: ErrorRenderer) -> Any:
    """Typed errors → the API's error shape; unexpected errors → 500 with only the request id."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except SeqhubError as exc:
            response = renderer(request, exc.status, exc.message, exc.extra)
            response.headers.update(exc.headers)
            return response
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            message = exc.text if exc.text and not exc.text.startswith(f"{exc.status}:") else exc.reason
            response = renderer(request, exc.status, message or exc.reason, {})
            for name in ("Allow", "WWW-Authenticate", "Retry-After"):
                if name in exc.headers:
                    response.headers[name] = exc.headers[name]
            return response
        except ValidationError as exc:
            errors = [{"field": ".".join(str(p) for p in e["loc"]), "reason": e["msg"]} for e in exc.errors()]
            return renderer(request, 400, "invalid input: " + "; ".join(f"{e['field']}: {e['reason']}"
                                                                         for e in errors), {"errors": errors})
        except (ConnectionFailure, ServiceUnavailable, TimeoutError) as exc:
            log.warning("dependency unavailable", exc_info=True)
            message = exc.message if isinstance(exc, SeqhubError) else "a dependency is unavailable; retry later"
            response = renderer(request, 503, message, {})
            response.headers["Retry-After"] = "5"
            return response
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("unhandled error", extra={"path": request.path, "method": request.method})
            return renderer(request, 500, f"internal error (request id {request.get(keys.request_id)})", {})

    return middleware


def cors_middleware(allow_origin: str = "*") -> Any:
    """Open CORS for GA4GH discovery APIs: simple responses get the header, preflights are answered here."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers:
            response: web.StreamResponse = web.Response(status=204)
            response.headers.update({
                "Access-Control-Allow-Methods": "GET, POST, OPTIONS",
                "Access-Control-Allow-Headers": request.headers.get("Access-Control-Request-Headers",
                                                                    "Authorization, Content-Type"),
                "Access-Control-Max-Age": "600",
            })
        else:
            response = await handler(request)
        if not response.prepared:
            response.headers["Access-Control-Allow-Origin"] = allow_origin
            response.headers["Access-Control-Expose-Headers"] = "X-Request-ID, Link, Location, ETag"
        return response

    return middleware


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Authenticate the caller if credentials are present; anonymous otherwise. Handlers decide what to require."""
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if not header:
        request[keys.principal] = ANONYMOUS
    elif scheme.lower() == "bearer" and value.strip():
        request[keys.principal] = await request.app[keys.verifier].verify(value.strip())
    elif scheme.lower() == "basic" and keys.basic_verifier in request.app:
        user, password = parse_basic(value.strip())
        principal = await request.app[keys.basic_verifier](user, password)
        if principal is None:
            raise Unauthorized("unknown user name or token", headers={"WWW-Authenticate": 'Basic realm="seqhub"'})
        request[keys.principal] = principal
    else:
        raise Unauthorized(f"unsupported authorization scheme {scheme!r}; use Bearer",
                           headers={"WWW-Authenticate": 'Bearer realm="seqhub"'})
    return await handler(request)


def service_app(
    name: str,
    settings: CommonSettings,
    *,
    error_renderer: ErrorRenderer = problem_renderer,
    openapi: Path | None = None,
    indexes: dbmod.IndexPlan | None = None,
    retired_indexes: Mapping[str, Sequence[str]] | None = None,
    contexts: Sequence[CleanupContext] = (),
    subscriptions: Sequence[Subscription] = (),
    cors: bool = False,
    authenticate: bool = True,
    client_max_size: int = 16 * 1024 * 1024,
) -> web.Application:
    """Build a service's aiohttp application (no I/O here; everything starts in cleanup contexts).

    Args:
        name: service name: database `seqhub_<name>`, metrics label, connection name.
        settings: the common settings.
        error_renderer: shapes error bodies (problem+json by default).
        openapi: the service's OpenAPI document (YAML), served at /openapi.yaml and /openapi.json.
        indexes: the service's index plan, applied at startup.
        retired_indexes: index names (by collection) older versions created and the service no longer uses;
            dropped at startup where they exist.
        contexts: the service's own cleanup contexts (stores, workers), started after the shared resources.
        subscriptions: event consumers, started last (after the outbox relay).
        cors: open CORS (GA4GH APIs).
        authenticate: install the bearer/basic auth middleware (the auth service does its own).
        client_max_size: request body limit for handlers that use request.read()/json().
    """
    middlewares: list[Any] = [request_id_middleware, metrics_middleware(name), error_middleware(error_renderer)]
    if cors:
        middlewares.append(cors_middleware())
    if authenticate:
        middlewares.append(auth_middleware)
    app = web.Application(middlewares=middlewares, client_max_size=client_max_size)
    app[keys.service_name] = name
    app[keys.common_settings] = settings
    app[keys.shutting_down] = {"value": False}
    plan: dict[str, list[Any]] = {k: list(v) for k, v in outbox.INDEXES.items()}
    plan["revocations"] = []
    for collection, models in (indexes or {}).items():
        plan.setdefault(collection, []).extend(models)
    revocations_sub = Subscription(queue=f"{name}.revocations", handlers={TokenRevoked: _on_token_revoked})
    app[keys.subscriptions] = [*subscriptions, revocations_sub]
    app.cleanup_ctx.extend([
        _http_client_ctx, _mongo_ctx(plan, retired_indexes or {}), _bus_ctx, _files_ctx, _auth_ctx, *contexts,
        _relay_ctx, _consumers_ctx,
    ])
    app.on_shutdown.append(_mark_shutting_down)
    app.add_routes(_probe_routes(openapi))
    return app


async def _http_client_ctx(app: web.Application) -> AsyncIterator[None]:
    async with aiohttp.ClientSession() as session:
        app[keys.http_client] = session
        yield


def _mongo_ctx(plan: dbmod.IndexPlan, retired: Mapping[str, Sequence[str]]) -> CleanupContext:
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        settings = app[keys.common_settings]
        name = app[keys.service_name]
        async with dbmod.mongo_client(settings.mongo_url, timeout_ms=settings.mongo_timeout_ms,
                                      app_name=f"seqhub-{name}") as client:
            database = client[settings.database_name(name)]
            await dbmod.ensure_indexes(database, plan, retired=retired)
            app[keys.mongo_db] = database
            app[keys.outbox] = outbox.Outbox(database, service=name)
            app[keys.inbox] = outbox.Inbox(database)
            yield

    return ctx


async def _bus_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[keys.common_settings]
    database = app[keys.mongo_db]
    bus_db = database.client[settings.database_name("bus")] if settings.bus_url == EMBEDDED_BUS else None
    bus = create_bus(settings.bus, name=app[keys.service_name], database=bus_db)
    await bus.connect()
    app[keys.bus] = bus
    try:
        yield
    finally:
        await bus.close()


async def _files_ctx(app: web.Application) -> AsyncIterator[None]:
    root = app[keys.common_settings].files_root
    await asyncio.to_thread(root.mkdir, parents=True, exist_ok=True)
    app[keys.files] = LocalFileStore(root)
    yield


async def _auth_ctx(app: web.Application) -> AsyncIterator[None]:
    revocations = RevocationList()
    async for doc in app[keys.mongo_db]["revocations"].find({}):
        revocations.add(jti=doc.get("jti"), client_id=doc.get("client_id"), subject=doc.get("subject"),
                        revoked_at=doc["revoked_at"])
    app[keys.revocations] = revocations
    app[keys.verifier] = TokenVerifier(app[keys.common_settings].auth, http=app[keys.http_client],
                                       revocations=revocations)
    yield


async def _on_token_revoked(event: TokenRevoked, app: web.Application) -> None:
    data = event.data
    await app[keys.mongo_db]["revocations"].update_one(
        {"_id": event.id},
        {"$set": {"jti": data.jti, "client_id": data.client_id, "subject": data.subject,
                  "revoked_at": data.revoked_at, "expires_at": data.expires_at}},
        upsert=True,
    )
    app[keys.revocations].add(jti=data.jti, client_id=data.client_id, subject=data.subject,
                              revoked_at=data.revoked_at)


async def _relay_ctx(app: web.Application) -> AsyncIterator[None]:
    stop = asyncio.Event()
    outbox_ = app[keys.outbox]
    task = asyncio.create_task(outbox_.run_relay(app[keys.bus], stop), name="outbox-relay")
    try:
        yield
    finally:
        stop.set()
        outbox_.wake()
        done, _ = await asyncio.wait({task}, timeout=10)
        if not done:
            task.cancel()


async def _consumers_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[keys.common_settings]
    for sub in app[keys.subscriptions]:
        consumer = Consumer(sub, queue=settings.bus_queue_prefix + sub.queue, inbox=app[keys.inbox], context=app,
                            max_attempts=settings.bus_max_attempts)
        await app[keys.bus].consume(sub.queue, consumer, prefetch=sub.prefetch or settings.bus_prefetch,
                                    routing_keys=sub.routing_keys)
    yield


async def _mark_shutting_down(app: web.Application) -> None:
    app[keys.shutting_down]["value"] = True


def _probe_routes(openapi: Path | None) -> list[web.RouteDef]:
    async def healthz(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def readyz(request: web.Request) -> web.Response:
        app = request.app
        checks = {
            "serving": not app[keys.shutting_down]["value"],
            "database": keys.mongo_db in app and await dbmod.ping(app[keys.mongo_db]),
            "bus": keys.bus in app and app[keys.bus].ready(),
        }
        ok = all(checks.values())
        return web.json_response({"status": "ready" if ok else "unavailable", "checks": checks},
                                 status=200 if ok else 503)

    async def metrics_route(request: web.Request) -> web.Response:
        body, content_type = metrics.render()
        response = web.Response(body=body)
        response.headers["Content-Type"] = content_type
        return response

    routes = [web.get("/healthz", healthz), web.get("/readyz", readyz), web.get("/metrics", metrics_route)]
    if openapi is not None:
        routes += _openapi_routes(openapi)
    return routes


def _openapi_routes(path: Path) -> list[web.RouteDef]:
    text = path.read_text()  # read once at app construction, never per request
    document = yaml.safe_load(text)
    as_json = json.dumps(document, default=str)

    async def openapi_yaml(request: web.Request) -> web.Response:
        return web.Response(text=text, content_type="application/yaml")

    async def openapi_json(request: web.Request) -> web.Response:
        return web.Response(text=as_json, content_type="application/json")

    return [web.get("/openapi.yaml", openapi_yaml), web.get("/openapi.json", openapi_json)]


def root_app(services: Mapping[str, web.Application], *, links: Iterable[tuple[str, str]] = ()) -> web.Application:
    """Mount each service app under its prefix (e.g. "/beacon"); `/` lists them; unknown paths → problem+json."""
    root = web.Application(middlewares=[request_id_middleware, error_middleware(problem_renderer)])
    index = {"name": "seqhub", "services": {prefix.strip("/"): prefix + "/" for prefix in services},
             **dict(links)}

    async def home(request: web.Request) -> web.Response:
        return web.json_response(index)

    root.router.add_get("/", home)
    for prefix, app in services.items():
        root.add_subapp(prefix, app)
    return root
