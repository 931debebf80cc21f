"""HTTP entry points of the auth service: thin handlers that read the request, call a use case, render.

OAuth endpoints answer with the (status, body, headers) Authlib produced (RFC error codes, `no-store`);
pages are server-rendered HTML with security headers; the admin API is JSON behind an `admin` bearer token.
Rate limits (429 + Retry-After) guard login, token and device endpoints.
"""

from __future__ import annotations

import base64
import hmac
import json
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web
from aiohttp.typedefs import Handler
from authlib.oauth2.rfc6749.errors import InvalidClientError, InvalidRequestError

from libs.common.errors import BadRequest, Forbidden, Locked, NotFound, Unauthorized
from services.auth import keys, metrics, pages
from services.auth.hashing import new_token
from services.auth.models import CreateClient, CreateToken, CreateUser, GrantVisa, User
from services.auth.oauth import error_response
from services.auth.service import (
    AuthService,
    ConsentPage,
    ErrorPage,
    HttpCall,
    LoginRequired,
    Redirect,
)

routes = web.RouteTableDef()

SESSION_COOKIE = "seqhub_session"
LOGIN_CSRF_COOKIE = "seqhub_login_csrf"
FORM = "application/x-www-form-urlencoded"


# ---- metadata and keys -----------------------------------------------------------------------------------


@routes.get("/.well-known/oauth-authorization-server", name="metadata")
async def metadata(request: web.Request) -> web.Response:
    return web.json_response(_service(request).metadata())


@routes.get("/.well-known/jwks.json", name="jwks")
@routes.get("/jwks")
async def jwks(request: web.Request) -> web.Response:
    body = _service(request).keys.ring.jwks()
    return web.json_response(body, headers={"Cache-Control": "public, max-age=300"})


# ---- token, device authorization, introspection, revocation -----------------------------------------------


@routes.post("/token", name="token")
async def token(request: web.Request) -> web.Response:
    call = await _form_call(request, "token")
    request.app[keys.limits].token.check(f"token:{call.remote}")
    result = await _service(request).token(call)
    metrics.count_token_response(call.get("grant_type"), result[0], result[1])
    return _oauth_response(result)


@routes.post("/device_authorization", name="device_authorization")
async def device_authorization(request: web.Request) -> web.Response:
    call = await _form_call(request, "device_authorization")
    request.app[keys.limits].device.check(f"device:{call.remote}")
    return _oauth_response(await _service(request).device_authorization(call))


@routes.post("/introspect", name="introspect")
async def introspect(request: web.Request) -> web.Response:
    return _oauth_response(await _service(request).introspect(await _form_call(request, "introspect")))


@routes.post("/revoke", name="revoke")
async def revoke(request: web.Request) -> web.Response:
    return _oauth_response(await _service(request).revoke(await _form_call(request, "revoke")))


# ---- login ----------------------------------------------------------------------------------------------


@routes.get("/login", name="login")
async def login_form(request: web.Request) -> web.Response:
    csrf = request.cookies.get(LOGIN_CSRF_COOKIE) or _new_csrf()
    next_url = _safe_next(request.query.get("next"))
    response = _html(pages.login_page(action=_url(request, "login"), next_url=next_url, csrf=csrf))
    _set_cookie(request, response, LOGIN_CSRF_COOKIE, csrf, max_age=3600, same_site="Strict")
    return response


@routes.post("/login")
async def login_submit(request: web.Request) -> web.Response:
    form = await _read_form(request)
    request.app[keys.limits].login.check(f"login:{request.remote}")
    cookie = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not cookie or not hmac.compare_digest(cookie, form.get("csrf", "")):
        raise Forbidden("the login form expired or was not sent by this site; reload it and try again")
    username, next_url = form.get("username", "").strip().lower(), _safe_next(form.get("next"))
    try:
        session, _, _ = await _service(request).login(username, form.get("password", ""))
    except Locked:
        metrics.LOGINS.labels(outcome="locked").inc()
        raise
    except Unauthorized as exc:
        metrics.LOGINS.labels(outcome="failure").inc()
        page = pages.login_page(
            action=_url(request, "login"), next_url=next_url, csrf=cookie, error=exc.message, username=username
        )
        return _html(page, status=401)
    metrics.LOGINS.labels(outcome="success").inc()
    response = web.HTTPSeeOther(next_url or _url(request, "signed_in"))
    _set_cookie(request, response, SESSION_COOKIE, session, max_age=int(_service(request).login_policy.session_ttl))
    response.del_cookie(LOGIN_CSRF_COOKIE, path="/")
    raise response


@routes.get("/signed-in", name="signed_in")
async def signed_in(request: web.Request) -> web.Response:
    return _html(pages.message_page("Signed in", "You are signed in to seqhub. You can close this window."))


@routes.post("/logout", name="logout")
async def logout(request: web.Request) -> web.Response:
    session = request.cookies.get(SESSION_COOKIE)
    current = await _service(request).session_user(session)
    form = await _read_form(request)
    if current is not None and session:
        _check_csrf(current[1], form)
        await _service(request).logout(session)
    response = _html(pages.message_page("Signed out", "You are signed out of seqhub."))
    response.del_cookie(SESSION_COOKIE, path="/")
    return response


# ---- authorization endpoint (login + consent) -----------------------------------------------------------


@routes.get("/authorize", name="authorize")
async def authorize(request: web.Request) -> web.StreamResponse:
    current = await _service(request).session_user(request.cookies.get(SESSION_COOKIE))
    call = _query_call(request, "authorize")
    result = await _service(request).authorize(call, current[0] if current else None)
    return _render_authorize(request, result, current)


@routes.post("/authorize")
async def authorize_decision(request: web.Request) -> web.StreamResponse:
    current = await _service(request).session_user(request.cookies.get(SESSION_COOKIE))
    form = await _read_form(request)
    if current is None:
        raise Unauthorized("your sign-in expired; start again from the application")
    _check_csrf(current[1], form)
    call = HttpCall(
        "GET", _endpoint(request, "authorize"), dict(request.headers), form.items_list, request.remote or ""
    )
    approved = form.get("decision") == "approve"
    result = await _service(request).decide(call, current[0], approved=approved, chosen=form.getall("grant_scope"))
    return _render_authorize(request, result, current)


def _render_authorize(request: web.Request, result: object, current: tuple[User, str] | None) -> web.StreamResponse:
    if isinstance(result, Redirect):
        raise web.HTTPFound(result.location)
    if isinstance(result, LoginRequired):
        raise web.HTTPFound(_url(request, "login", next=str(request.rel_url)))
    if isinstance(result, ConsentPage) and current is not None:
        page = pages.consent_page(
            action=_url(request, "authorize"),
            client_name=result.client_name,
            client_id=result.client_id,
            username=result.username,
            scopes=result.scopes,
            params=result.params,
            csrf=current[1],
        )
        return _html(page)
    assert isinstance(result, ErrorPage)
    return _html(
        pages.message_page("Authorization request refused", f"{result.error}: {result.description}"),
        status=result.status,
    )


# ---- device verification page (RFC 8628 §3.3) -----------------------------------------------------------


@routes.get("/device", name="device")
async def device_page(request: web.Request) -> web.Response:
    request.app[keys.limits].device.check(f"device-page:{request.remote}")
    current = await _service(request).session_user(request.cookies.get(SESSION_COOKIE))
    if current is None:
        raise web.HTTPFound(_url(request, "login", next=str(request.rel_url)))
    user, csrf = current
    user_code = request.query.get("user_code", "")
    if not user_code:
        return _html(pages.device_code_page(action=_url(request, "device"), csrf=csrf))
    found = await _service(request).device_lookup(user_code, user)
    if found is None:
        page = pages.device_code_page(
            action=_url(request, "device"),
            csrf=csrf,
            user_code=user_code,
            error="That code is unknown, expired or already used.",
        )
        return _html(page, status=400)
    client, scopes = found
    return _html(
        pages.device_consent_page(
            action=_url(request, "device"),
            client_name=client.name,
            client_id=client.client_id,
            username=user.username,
            user_code=user_code,
            scopes=scopes,
            csrf=csrf,
        )
    )


@routes.post("/device")
async def device_decision(request: web.Request) -> web.Response:
    current = await _service(request).session_user(request.cookies.get(SESSION_COOKIE))
    form = await _read_form(request)
    if current is None:
        raise Unauthorized("your sign-in expired; open the device link again")
    _check_csrf(current[1], form)
    approved = form.get("decision") == "approve"
    done = await _service(request).device_decide(
        form.get("user_code", ""), current[0], approved=approved, chosen=form.getall("grant_scope")
    )
    if not done:
        return _html(pages.message_page("Code not accepted", "That code is unknown, expired or already used."), 400)
    text = "Your device is connected; return to it." if approved else "Access was denied; the device gets no access."
    return _html(pages.message_page("Done", text))


# ---- passports and the admin API --------------------------------------------------------------------------


@routes.get("/passport", name="passport")
async def passport(request: web.Request) -> web.Response:
    claims = await _bearer(request, "ga4gh_passport_v1")
    return web.json_response(
        await request.app[keys.accounts].passport(str(claims["sub"])), headers={"Cache-Control": "no-store"}
    )


@routes.post("/me/tokens")
async def create_own_token(request: web.Request) -> web.Response:
    """A signed-in user creates a personal access token for themself, with at most their token's scopes."""
    claims = await _bearer(request, None)
    body = CreateToken.model_validate(await _json(request))
    pat, value = await request.app[keys.accounts].create_own_token(
        str(claims["sub"]), str(claims.get("scope", "")), body
    )
    view = {**pat.model_dump(exclude={"token_digest"}), "token": value}
    return web.json_response(view, status=201, headers={"Cache-Control": "no-store"})


@routes.get("/me/tokens")
async def list_own_tokens(request: web.Request) -> web.Response:
    claims = await _bearer(request, None)
    pats = await request.app[keys.accounts].list_tokens(str(claims["sub"]))
    return web.json_response([p.model_dump(exclude={"token_digest"}) for p in pats])


@routes.delete("/me/tokens/{token_id}")
async def revoke_own_token(request: web.Request) -> web.Response:
    claims = await _bearer(request, None)
    await request.app[keys.accounts].revoke_token(request.match_info["token_id"], owner=str(claims["sub"]))
    return web.Response(status=204)


@routes.get("/me/consents")
async def list_own_consents(request: web.Request) -> web.Response:
    """The apps I allowed, and what I allowed them (remembered consents)."""
    claims = await _bearer(request, None)
    consents = await _service(request).store.list_consents(str(claims["sub"]))
    return web.json_response([{"client_id": client_id, "scopes": granted} for client_id, granted in consents])


@routes.delete("/me/consents/{client_id}")
async def revoke_own_consent(request: web.Request) -> web.Response:
    """Forget a remembered consent: the app must ask again (tokens already issued keep their lifetime)."""
    claims = await _bearer(request, None)
    if not await _service(request).store.revoke_consent(str(claims["sub"]), request.match_info["client_id"]):
        raise NotFound(f"no remembered consent for client {request.match_info['client_id']!r}")
    return web.Response(status=204)


@routes.post("/admin/users")
async def create_user(request: web.Request) -> web.Response:
    await _bearer(request, "admin")
    body = CreateUser.model_validate(await _json(request))
    user = await request.app[keys.accounts].create_user(body)
    return web.json_response(_user_view(user), status=201)


@routes.get("/admin/users")
async def list_users(request: web.Request) -> web.Response:
    await _bearer(request, "admin")
    return web.json_response([_user_view(u) for u in await request.app[keys.accounts].list_users()])


@routes.post("/admin/users/{username}/disable")
async def disable_user(request: web.Request) -> web.Response:
    await _bearer(request, "admin")
    await request.app[keys.accounts].set_user_disabled(request.match_info["username"], True)
    return web.json_response({"username": request.match_info["username"], "disabled": True})


@routes.post("/admin/users/{username}/enable")
async def enable_user(request: web.Request) -> web.Response:
    await _bearer(request, "admin")
    await request.app[keys.accounts].set_user_disabled(request.match_info["username"], False)
    return web.json_response({"username": request.match_info["username"], "disabled": False})


@routes.post("/admin/clients")
async def create_client(request: web.Request) -> web.Response:
    await _bearer(request, "admin")
    body = CreateClient.model_validate(await _json(request))
    client, secret = await request.app[keys.accounts].create_client(body)
    view = {**client.model_dump(exclude={"secret_digest"}), "public": client.public}
    if secret:
        view["client_secret"] = secret
    return web.json_response(view, status=201, headers={"Cache-Control": "no-store"})


@routes.get("/admin/clients")
async def list_clients(request: web.Request) -> web.Response:
    await _bearer(request, "admin")
    clients = await request.app[keys.accounts].list_clients()
    return web.json_response([{**c.model_dump(exclude={"secret_digest"}), "public": c.public} for c in clients])


@routes.post("/admin/clients/{client_id}/disable")
async def disable_client(request: web.Request) -> web.Response:
    await _bearer(request, "admin")
    await request.app[keys.accounts].set_client_disabled(request.match_info["client_id"], True)
    return web.json_response({"client_id": request.match_info["client_id"], "disabled": True})


@routes.post("/admin/users/{username}/tokens")
async def create_token(request: web.Request) -> web.Response:
    await _bearer(request, "admin")
    body = CreateToken.model_validate(await _json(request))
    pat, token_value = await request.app[keys.accounts].create_token(request.match_info["username"], body)
    view = {**pat.model_dump(exclude={"token_digest"}), "token": token_value}
    return web.json_response(view, status=201, headers={"Cache-Control": "no-store"})


@routes.get("/admin/users/{username}/tokens")
async def list_tokens(request: web.Request) -> web.Response:
    await _bearer(request, "admin")
    pats = await request.app[keys.accounts].list_tokens(request.match_info["username"])
    return web.json_response([p.model_dump(exclude={"token_digest"}) for p in pats])


@routes.delete("/admin/tokens/{token_id}")
async def revoke_token(request: web.Request) -> web.Response:
    await _bearer(request, "admin")
    await request.app[keys.accounts].revoke_token(request.match_info["token_id"])
    return web.Response(status=204)


@routes.post("/admin/users/{username}/visas")
async def grant_visa(request: web.Request) -> web.Response:
    await _bearer(request, "admin")
    body = GrantVisa.model_validate(await _json(request))
    visa = await request.app[keys.accounts].grant_visa(request.match_info["username"], body)
    return web.json_response(visa.model_dump(), status=201)


@routes.post("/admin/keys/rotate")
async def rotate_keys(request: web.Request) -> web.Response:
    await _bearer(request, "admin")
    settings = request.app[keys.settings]
    kid = await request.app[keys.accounts].rotate_keys(
        prepublish_seconds=settings.key_prepublish_seconds, keep_seconds=settings.key_keep_seconds
    )
    return web.json_response({"kid": kid}, status=201)


# ---- helpers ------------------------------------------------------------------------------------------------


def _service(request: web.Request) -> AuthService:
    return request.app[keys.service]


async def _read_form(request: web.Request) -> _Form:
    if request.content_type != FORM:
        raise BadRequest(f"expected {FORM}, got {request.content_type or 'no content type'}")
    try:
        data = await request.post()
    except (UnicodeDecodeError, ValueError):
        raise BadRequest("the form body is not valid UTF-8 application/x-www-form-urlencoded") from None
    return _Form([(k, v) for k, v in data.items() if isinstance(v, str)])


async def _form_call(request: web.Request, endpoint: str) -> HttpCall:
    if request.content_type != FORM:
        raise _NotForm(f"the body must be {FORM}")
    try:
        form = await _read_form(request)
    except BadRequest as exc:
        raise _NotForm(exc.message) from None
    _check_basic(request)
    items = [(k, v) for k, v in request.query.items()] + form.items_list
    return HttpCall(request.method, _endpoint(request, endpoint), dict(request.headers), items, request.remote or "")


def _query_call(request: web.Request, endpoint: str) -> HttpCall:
    items = [(k, v) for k, v in request.query.items()]
    return HttpCall(request.method, _endpoint(request, endpoint), dict(request.headers), items, request.remote or "")


def _endpoint(request: web.Request, endpoint: str) -> str:
    """The endpoint's public URL (Authlib refuses non-TLS URLs except on loopback; the issuer decides)."""
    return request.app[keys.service].config.issuer.rstrip("/") + "/" + endpoint


def _oauth_response(result: tuple[int, Any, list[tuple[str, str]]]) -> web.Response:
    status, body, headers = result
    response = web.Response(status=status, body=json.dumps(body).encode() if body != "" else b"")
    for name, value in headers:
        response.headers[name] = value
    return response


def _html(text: str, status: int = 200) -> web.Response:
    return web.Response(text=text, status=status, content_type="text/html", headers=pages.SECURITY_HEADERS)


def _url(request: web.Request, name: str, **query: str) -> str:
    url = request.app.router[name].url_for()
    return str(url.with_query(query) if query else url)


def _safe_next(value: str | None) -> str:
    """Only a same-site absolute path may be a post-login destination (no open redirect)."""
    if not value:
        return ""
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or not value.startswith("/") or value.startswith(("//", "/\\")):
        return ""
    return value


def _set_cookie(
    request: web.Request,
    response: web.StreamResponse,
    name: str,
    value: str,
    *,
    max_age: int,
    same_site: str = "Lax",
) -> None:
    secure = request.app[keys.service].config.issuer.startswith("https://")
    response.set_cookie(name, value, max_age=max_age, path="/", httponly=True, secure=secure, samesite=same_site)


def _new_csrf() -> str:
    return new_token()


def _check_csrf(expected: str, form: _Form) -> None:
    if not hmac.compare_digest(expected, form.get("csrf", "")):
        raise Forbidden("the form was not sent by this site (CSRF check failed); reload the page")


async def _bearer(request: web.Request, scope: str | None) -> dict[str, Any]:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise Unauthorized("a bearer token is required", headers={"WWW-Authenticate": 'Bearer realm="seqhub"'})
    claims = await _service(request).bearer_claims(value.strip())
    if scope is not None and scope not in str(claims.get("scope", "")).split():
        raise Forbidden(
            f"the token lacks the scope {scope}",
            headers={"WWW-Authenticate": f'Bearer realm="seqhub", error="insufficient_scope", scope="{scope}"'},
        )
    return claims


async def _json(request: web.Request) -> Any:
    try:
        return await request.json()
    except ValueError:
        raise BadRequest("the body is not valid JSON") from None


def _user_view(user: User) -> dict[str, Any]:
    return user.model_dump(exclude={"password_hash", "failed_logins"})


class _NotForm(Exception):
    """An OAuth endpoint received something other than a UTF-8 form (RFC 6749 §3.2)."""


class _BadClientAuth(Exception):
    """Undecodable HTTP Basic client credentials (RFC 6749 §2.3.1)."""


def _check_basic(request: web.Request) -> None:
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return
    try:
        base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        raise _BadClientAuth() from None


@web.middleware
async def oauth_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Answer malformed bodies and client credentials on OAuth endpoints with the RFC error object."""
    try:
        return await handler(request)
    except _NotForm as exc:
        return _oauth_response(error_response(InvalidRequestError(str(exc))))
    except _BadClientAuth:
        error = InvalidClientError(status_code=401, description="malformed HTTP Basic client credentials")
        return _oauth_response(error_response(error))


class _Form:
    """A read form: first value by name, all values, and the ordered pairs."""

    def __init__(self, items: list[tuple[str, str]]) -> None:
        self.items_list = items

    def get(self, name: str, default: str = "") -> str:
        return next((v for k, v in self.items_list if k == name), default)

    def getall(self, name: str) -> list[str]:
        return [v for k, v in self.items_list if k == name]
