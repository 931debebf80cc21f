"""OAuth2 use cases of the auth service: token, authorization (login + consent), device, introspection,
revocation — each as prefetch (async) → Authlib decides (sync, no I/O) → commit (async, guarded).

Imports neither aiohttp nor pymongo: HTTP arrives as an `HttpCall`, results leave as `Response` triples or
small result objects the API renders; storage is the `AuthStore`; events go through the outbox.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Generic, Protocol, TypeVar

from authlib.oauth2.rfc6749.errors import (
    InvalidGrantError,
    InvalidRequestError,
    OAuth2Error,
)
from authlib.oauth2.rfc6749.util import extract_basic_authorization

from libs.common import scopes
from libs.common.errors import Locked, Unauthorized
from libs.common.events import Event, TokenRevoked, TokenRevokedData
from services.auth import hashing, metrics
from services.auth.models import AuthorizationCode, Client, User
from services.auth.oauth import (
    ANY_AUTH,
    DEVICE_GRANT,
    SECRET_AUTH,
    OAuthClient,
    OAuthRequest,
    Prefetched,
    Response,
    SeqhubAuthorizationServer,
    _User,
    error_response,
)
from services.auth.signing import KeyRing
from services.auth.store import AuthStore

T = TypeVar("T")
NO_STORE = [("Content-Type", "application/json"), ("Cache-Control", "no-store"), ("Pragma", "no-cache")]


class EventSink(Protocol):
    """The outbox: events written in the same transaction as the state they announce."""

    def transaction(self) -> AbstractAsyncContextManager[Any]: ...

    async def add(self, event: Event, *, session: Any = None) -> None: ...


@dataclass(frozen=True)
class HttpCall:
    """An HTTP request already read by the edge: the query string and form merged into `items`."""

    method: str
    url: str
    headers: Mapping[str, str]
    items: list[tuple[str, str]]
    remote: str = ""

    def get(self, name: str) -> str | None:
        return next((v for k, v in self.items if k == name), None)


@dataclass(frozen=True)
class Redirect:
    location: str


@dataclass(frozen=True)
class ErrorPage:
    status: int
    error: str
    description: str


@dataclass(frozen=True)
class ConsentPage:
    client_name: str
    client_id: str
    scopes: list[tuple[str, str]]
    params: list[tuple[str, str]]
    username: str


@dataclass(frozen=True)
class LoginRequired:
    pass


AuthorizeResult = Redirect | ErrorPage | ConsentPage | LoginRequired


@dataclass(frozen=True)
class LoginPolicy:
    max_failures: int = 5
    lock_seconds: float = 900.0
    session_ttl: float = 8 * 3600.0


@dataclass
class KeyHolder:
    """The current key ring (replaced on rotation; readers always take `.ring`)."""

    ring: KeyRing = field(default_factory=lambda: KeyRing([]))


class TtlCache(Generic[T]):
    """A small per-process cache (client registrations change rarely; a short TTL bounds staleness)."""

    def __init__(self, ttl: float, max_entries: int = 10_000) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._items: dict[str, tuple[float, T]] = {}

    def get(self, key: str, now: float) -> T | None:
        hit = self._items.get(key)
        return hit[1] if hit is not None and hit[0] > now else None

    def put(self, key: str, value: T, now: float) -> None:
        if len(self._items) >= self.max_entries:
            self._items.clear()
        self._items[key] = (now + self.ttl, value)

    def clear(self) -> None:
        self._items.clear()


class AuthService:
    """OAuth2 flows over the store, Authlib and the key ring."""

    def __init__(
        self,
        store: AuthStore,
        server: SeqhubAuthorizationServer,
        keys: KeyHolder,
        events: EventSink,
        *,
        login: LoginPolicy | None = None,
        client_cache_seconds: float = 2.0,
    ) -> None:
        self.store = store
        self.server = server
        self.keys = keys
        self.events = events
        self.login_policy = login or LoginPolicy()
        self.config = server.config
        self._client_cache: TtlCache[Client] = TtlCache(client_cache_seconds)

    # ---- token endpoint (RFC 6749 §3.2, RFC 8628 §3.4) ------------------------------------------------

    async def token(self, call: HttpCall) -> Response:
        pre = await self._prefetch_clients(call)
        grant_type = call.get("grant_type")
        usernames: set[str] = set()
        if grant_type == "authorization_code" and (code := call.get("code")):
            pre.code = await self.store.get_code(hashing.digest(code))
            usernames.add(pre.code.username if pre.code else "")
        elif grant_type == "refresh_token" and (refresh := call.get("refresh_token")):
            pre.refresh = await self.store.get_refresh(hashing.digest(refresh))
            usernames.add(pre.refresh.username if pre.refresh else "")
        elif grant_type == DEVICE_GRANT and (device_code := call.get("device_code")):
            pre.device, pre.device_previous_poll = await self.store.poll_device(
                hashing.digest(device_code), now=pre.now
            )
            usernames.add(pre.device.username or "" if pre.device else "")
        if usernames - {""}:
            pre.users = await self.store.get_users(usernames - {""})
        request = self._request(call, pre)
        with self.server.bound(request):
            status, body, headers = self.server.create_token_response(request)
        if status == 200:
            return await self._commit_token(request, (status, body, headers))
        await self._after_token_failure(request)
        return status, body, headers

    async def _commit_token(self, request: OAuthRequest, response: Response) -> Response:
        out, now = request.outcome, request.prefetched.now
        if out.consume_code is not None:
            code = out.consume_code
            if not await self.store.consume_code(code.code_digest, now=now, jti=out.access_jti, exp=out.access_exp):
                await self._revoke_code_grant(code)
                return error_response(InvalidGrantError("authorization code already used"))
        if out.rotate_refresh is not None:
            old = out.rotate_refresh
            if not await self.store.rotate_refresh(old.token_digest, now=now):
                await self._revoke_family(old.family_id, reason="refresh token reused")
                return error_response(InvalidGrantError("refresh token already used"))
        if out.consume_device is not None and not await self.store.consume_device(
            out.consume_device.device_code_digest
        ):
            return error_response(InvalidGrantError("device code already used"))
        if out.new_refresh is not None:
            await self.store.insert_refresh(out.new_refresh, access_jti=out.access_jti, access_exp=out.access_exp)
        return response

    async def _after_token_failure(self, request: OAuthRequest) -> None:
        out = request.outcome
        if out.reused_code is not None:  # RFC 6749 §4.1.2: revoke what the code issued
            metrics.REUSE_DETECTED.labels(kind="authorization_code").inc()
            await self._revoke_code_grant(out.reused_code)
        if out.reused_refresh is not None:  # RFC 9700 §4.14.2: reuse means theft, revoke the family
            metrics.REUSE_DETECTED.labels(kind="refresh_token").inc()
            await self._revoke_family(out.reused_refresh.family_id, reason="refresh token reused")

    async def _revoke_code_grant(self, code: AuthorizationCode) -> None:
        fresh = await self.store.get_code(code.code_digest) or code
        extra = [(fresh.issued_jti, fresh.issued_exp)] if fresh.issued_jti and fresh.issued_exp else []
        await self._revoke_family(fresh.family_id, reason="authorization code reused", extra=extra)

    async def _revoke_family(self, family_id: str, *, reason: str, extra: Iterable[tuple[str, float]] = ()) -> None:
        now = time.time()
        async with self.events.transaction() as session:
            issued = await self.store.revoke_family(family_id, now=now, session=session)
            for jti, exp in {*issued, *extra}:
                await self._deny_access_token(jti, exp, reason=reason, now=now, session=session)

    async def _deny_access_token(self, jti: str, exp: float, *, reason: str, now: float, session: Any) -> None:
        if exp <= now:
            return
        await self.store.add_revoked(jti, exp=exp, now=now, session=session)
        event = TokenRevoked(
            data=TokenRevokedData(
                jti=jti,
                revoked_at=datetime.fromtimestamp(now, UTC),
                expires_at=datetime.fromtimestamp(exp, UTC),
                reason=reason,
            )
        )
        await self.events.add(event, session=session)

    # ---- device authorization (RFC 8628 §3.1) ---------------------------------------------------------

    async def device_authorization(self, call: HttpCall) -> Response:
        pre = await self._prefetch_clients(call)
        request = self._request(call, pre)
        with self.server.bound(request):
            status, body, headers = self.server.create_endpoint_response("device_authorization", request)
        if status == 200 and request.outcome.new_device is not None:
            await self.store.insert_device(request.outcome.new_device)
            headers = [h for h in headers if h[0].lower() != "cache-control"] + [("Cache-Control", "no-store")]
        return status, body, headers

    async def device_lookup(self, user_code: str, user: User) -> tuple[Client, list[tuple[str, str]]] | None:
        """The pending grant behind a user code, its client, and the scopes `user` may grant, in words."""
        grant = await self.store.get_device_by_user_code(hashing.normalise_user_code(user_code))
        if grant is None or grant.status != "pending" or grant.expires_at <= time.time():
            return None
        client = (await self.store.get_clients({grant.client_id})).get(grant.client_id)
        if client is None:
            return None
        offered = scopes.allowed_subset(scopes.split_scopes(grant.scope), user.scopes)
        return client, [(s, scopes.describe(s)) for s in sorted(offered)]

    async def device_decide(self, user_code: str, user: User, *, approved: bool, chosen: Iterable[str]) -> bool:
        """Approve (the chosen subset of the requested scopes the user may grant) or deny a device grant."""
        code = hashing.normalise_user_code(user_code)
        grant = await self.store.get_device_by_user_code(code)
        if grant is None:
            return False
        granted = scopes.allowed_subset(scopes.split_scopes(grant.scope), user.scopes) & set(chosen)
        return await self.store.decide_device(
            code,
            username=user.username,
            approved=approved,
            scope=scopes.format_scopes(granted),
            now=time.time(),
        )

    # ---- authorization endpoint (RFC 6749 §4.1, RFC 7636) ---------------------------------------------

    async def authorize(self, call: HttpCall, user: User | None) -> AuthorizeResult:
        """First visit: validate, then ask to log in, auto-approve remembered consent, or show consent."""
        request, grant = await self._validated(call, user)
        if isinstance(request, (Redirect, ErrorPage)):
            return request
        if user is None:
            return LoginRequired()
        offered = self._offered(request, user)
        remembered = await self.store.get_consent(user.username, request.client.get_client_id())
        if offered <= remembered:
            return await self._issue_code(request, grant, user)
        params = [(k, v) for k, v in call.items if k not in ("decision", "csrf", "grant_scope")]
        return ConsentPage(
            client_name=request.client.record.name,
            client_id=request.client.get_client_id(),
            scopes=[(s, scopes.describe(s)) for s in sorted(offered)],
            params=params,
            username=user.username,
        )

    async def decide(self, call: HttpCall, user: User, *, approved: bool, chosen: Iterable[str]) -> AuthorizeResult:
        """The consent form was submitted: issue a code for the approved scopes, or `access_denied`."""
        request, grant = await self._validated(call, user)
        if isinstance(request, (Redirect, ErrorPage)):
            return request
        if not approved:
            with self.server.bound(request):
                status, _, headers = self.server.create_authorization_response(request, None, grant)
            return _as_redirect(status, headers)
        granted = self._offered(request, user) & set(chosen)
        if not granted and self._offered(request, user):
            # nothing ticked means no access; an empty scope would otherwise mean "the client's default"
            with self.server.bound(request):
                status, _, headers = self.server.create_authorization_response(request, None, grant)
            return _as_redirect(status, headers)
        narrowed = [(k, v) for k, v in call.items if k != "scope"] + [("scope", scopes.format_scopes(granted))]
        request, grant = await self._validated(HttpCall(call.method, call.url, call.headers, narrowed), user)
        if isinstance(request, (Redirect, ErrorPage)):
            return request
        await self.store.add_consent(user.username, request.client.get_client_id(), granted, now=time.time())
        return await self._issue_code(request, grant, user)

    async def _validated(self, call: HttpCall, user: User | None) -> tuple[Any, Any]:
        pre = await self._prefetch_clients(call)
        if user is not None:
            pre.users = {user.username: user}
        request = self._request(call, pre)
        try:
            with self.server.bound(request):
                grant = self.server.get_consent_grant(request, _User(user) if user else None)
        except OAuth2Error as error:
            status, body, headers = error_response(error)
            if status == 302:  # the redirect URI was validated against the client: safe to use
                return _as_redirect(status, headers), None
            return ErrorPage(status, str(body.get("error")), str(body.get("error_description", ""))), None
        return request, grant

    def _offered(self, request: OAuthRequest, user: User) -> frozenset[str]:
        return scopes.allowed_subset(scopes.split_scopes(request.scope), user.scopes)

    async def _issue_code(self, request: OAuthRequest, grant: Any, user: User) -> Redirect:
        with self.server.bound(request):
            status, _, headers = self.server.create_authorization_response(request, _User(user), grant)
        if request.outcome.new_code is not None:
            await self.store.insert_code(request.outcome.new_code)
        return _as_redirect(status, headers)

    # ---- introspection (RFC 7662) and revocation (RFC 7009) -------------------------------------------

    async def introspect(self, call: HttpCall) -> Response:
        client, failure = await self._authenticate_client(call, SECRET_AUTH, "introspection")
        if failure is not None:
            return failure
        token = call.get("token")
        if not token:
            return error_response(InvalidRequestError("missing 'token'"))
        assert client is not None
        info = await self.token_info(token) if client.record.can_introspect else None
        body: dict[str, Any] = {"active": True, **info} if info else {"active": False}
        return 200, body, NO_STORE

    async def revoke(self, call: HttpCall) -> Response:
        client, failure = await self._authenticate_client(call, ANY_AUTH, "revocation")
        if failure is not None:
            return failure
        token = call.get("token")
        if not token:
            return error_response(InvalidRequestError("missing 'token'"))
        assert client is not None
        now = time.time()
        if token.startswith(hashing.REFRESH_PREFIX):
            record = await self.store.get_refresh(hashing.digest(token))
            if record is not None and record.client_id == client.get_client_id():
                await self._revoke_family(record.family_id, reason="refresh token revoked")
        elif token.count(".") == 2:
            claims = self._own_claims(token)
            if claims and claims.get("client_id") == client.get_client_id() and claims.get("exp", 0) > now:
                async with self.events.transaction() as session:
                    await self._deny_access_token(
                        str(claims["jti"]),
                        float(claims["exp"]),
                        reason="access token revoked",
                        now=now,
                        session=session,
                    )
        return 200, {}, NO_STORE  # RFC 7009 §2.2: 200 also for unknown or invalid tokens

    async def token_info(self, token: str) -> dict[str, Any] | None:
        """The RFC 7662 members for an active token we issued (access, refresh or personal), else None."""
        now = time.time()
        if token.startswith(hashing.REFRESH_PREFIX):
            record = await self.store.get_refresh(hashing.digest(token))
            if record is None or record.rotated_at or record.revoked_at or record.expires_at <= now:
                return None
            if await self._disabled(record.username, record.client_id):
                return None
            return {
                "scope": record.scope,
                "client_id": record.client_id,
                "username": record.username,
                "sub": record.username,
                "token_type": "refresh_token",
                "iat": int(record.issued_at),
                "exp": int(record.expires_at),
                "iss": self.config.issuer,
            }
        if token.startswith(hashing.PAT_PREFIX):
            return await self._pat_info(token, now)
        claims = self._own_claims(token) if token.count(".") == 2 else None
        if not claims or claims.get("exp", 0) <= now or await self.store.is_revoked(str(claims.get("jti"))):
            return None
        if await self._disabled(str(claims.get("sub", "")), str(claims.get("client_id", ""))):
            return None
        return {
            **{
                k: claims[k]
                for k in ("scope", "client_id", "sub", "aud", "iss", "exp", "iat", "nbf", "jti")
                if k in claims
            },
            "username": claims.get("sub"),
            "token_type": "Bearer",
        }

    async def _disabled(self, subject: str, client_id: str) -> bool:
        """Whether the token's user or client has been disabled since it was issued."""
        user = await self.store.get_user(subject) if subject else None
        if user is not None and user.disabled:
            return True
        client = (await self.store.get_clients({client_id})).get(client_id) if client_id else None
        return client is not None and client.disabled

    async def _pat_info(self, token: str, now: float) -> dict[str, Any] | None:
        pat = await self.store.find_pat(hashing.digest(token))
        if pat is None or pat.revoked_at or (pat.expires_at and pat.expires_at <= now):
            return None
        user = await self.store.get_user(pat.username)
        if user is None or user.disabled:
            return None
        info: dict[str, Any] = {
            "scope": pat.scope,
            "username": pat.username,
            "sub": pat.username,
            "client_id": "personal-access-token",
            "token_type": "personal_access_token",
            "iat": int(pat.created_at),
            "jti": pat.token_id,
            "iss": self.config.issuer,
        }
        if pat.expires_at:
            info["exp"] = int(pat.expires_at)
        return info

    def _own_claims(self, token: str) -> dict[str, Any] | None:
        """Claims of an access token signed by us (signature, typ and issuer checked; not expiry)."""
        try:
            header, claims = self.keys.ring.verify(token)
        except ValueError:
            return None
        if header.get("typ") != "at+jwt" or claims.get("iss") != self.config.issuer:
            return None
        aud = claims.get("aud")
        wanted = self.config.audience
        if (aud if isinstance(aud, list) else [aud]) != (wanted if isinstance(wanted, list) else [wanted]):
            return None
        return claims

    async def bearer_claims(self, token: str) -> dict[str, Any]:
        """Verify one of our access tokens for our own API (admin, passport).

        Raises:
            Unauthorized: invalid, expired or revoked.
        """
        claims = self._own_claims(token)
        now = time.time()
        if claims is None or claims.get("exp", 0) <= now or await self.store.is_revoked(str(claims.get("jti"))):
            raise Unauthorized(
                "invalid or expired access token",
                headers={"WWW-Authenticate": 'Bearer realm="seqhub", error="invalid_token"'},
            )
        return claims

    async def _authenticate_client(
        self, call: HttpCall, methods: list[str], endpoint: str
    ) -> tuple[OAuthClient | None, Response | None]:
        request = self._request(call, await self._prefetch_clients(call))
        try:
            with self.server.bound(request):
                client = self.server.authenticate_client(request, methods, endpoint)
        except OAuth2Error as error:
            return None, error_response(error)
        return client, None

    # ---- login (the server-rendered page) -------------------------------------------------------------

    async def login(self, username: str, password: str) -> tuple[str, str, User]:
        """Check credentials; returns (session token, CSRF token, user). The session token goes in a cookie.

        Raises:
            Locked: too many recent failures for this account.
            Unauthorized: wrong user name or password (one message for both), or account disabled.
        """
        now = time.time()
        user = await self.store.get_user(username)
        if user is not None and user.locked_until > now:
            raise Locked(
                "too many failed logins; try again later",
                headers={"Retry-After": str(int(user.locked_until - now) + 1)},
            )
        ok = await asyncio.to_thread(hashing.verify_password, user.password_hash if user else None, password)
        if user is None or not ok or user.disabled:
            if user is not None and not ok:
                policy = self.login_policy
                await self.store.record_login_failure(
                    username, now=now, limit=policy.max_failures, lock_seconds=policy.lock_seconds
                )
            raise Unauthorized("unknown user name or wrong password")
        await self.store.reset_login_failures(username)
        session, csrf = hashing.new_token(), hashing.new_token()
        await self.store.create_session(
            hashing.digest(session), username=username, csrf=csrf, now=now, ttl=self.login_policy.session_ttl
        )
        return session, csrf, user

    async def session_user(self, session: str | None) -> tuple[User, str] | None:
        """The logged-in user and the session's CSRF token, or None."""
        if not session:
            return None
        doc = await self.store.get_session(hashing.digest(session), now=time.time())
        if doc is None:
            return None
        user = await self.store.get_user(doc["username"])
        return (user, doc["csrf"]) if user is not None and not user.disabled else None

    async def logout(self, session: str) -> None:
        await self.store.delete_session(hashing.digest(session))

    # ---- plumbing ---------------------------------------------------------------------------------------

    async def _prefetch_clients(self, call: HttpCall) -> Prefetched:
        ids = {call.get("client_id") or ""}
        basic_id, _ = extract_basic_authorization(call.headers)
        ids.add(basic_id or "")
        ids -= {""}
        now = time.time()
        clients = {i: c for i in ids if (c := self._client_cache.get(i, now)) is not None}
        if missing := ids - set(clients):
            loaded = await self.store.get_clients(missing)
            for client_id, client in loaded.items():
                self._client_cache.put(client_id, client, now)
            clients.update(loaded)
        return Prefetched(now=now, clients=clients)

    def _request(self, call: HttpCall, pre: Prefetched) -> OAuthRequest:
        return OAuthRequest(call.method, call.url, call.headers, call.items, pre)

    def metadata(self) -> dict[str, Any]:
        """RFC 8414 authorization server metadata (`issuer` equals the `iss` of our tokens)."""
        base = self.config.issuer.rstrip("/")
        return {
            "issuer": self.config.issuer,
            "authorization_endpoint": f"{base}/authorize",
            "token_endpoint": f"{base}/token",
            "device_authorization_endpoint": f"{base}/device_authorization",
            "jwks_uri": f"{base}/.well-known/jwks.json",
            "introspection_endpoint": f"{base}/introspect",
            "revocation_endpoint": f"{base}/revoke",
            "scopes_supported": sorted(scopes.STATIC_SCOPES),
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "grant_types_supported": [
                "authorization_code",
                "refresh_token",
                "client_credentials",
                DEVICE_GRANT,
            ],
            "token_endpoint_auth_methods_supported": ANY_AUTH,
            "introspection_endpoint_auth_methods_supported": SECRET_AUTH,
            "revocation_endpoint_auth_methods_supported": ANY_AUTH,
            "code_challenge_methods_supported": ["S256"],
            "service_documentation": f"{base}/openapi.json",
        }


def _as_redirect(status: int, headers: list[tuple[str, str]]) -> Redirect:
    location = next(v for k, v in headers if k.lower() == "location")
    assert status == 302
    return Redirect(location)
