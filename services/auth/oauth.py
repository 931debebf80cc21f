"""The Authlib adapter: Authlib's OAuth2 grant logic over records loaded beforehand, with no I/O inside.

Authlib's storage hooks are synchronous; seqhub's database calls are async. So a call goes in three steps
(driven by `service.py`):

1. **prefetch** — the service awaits everything a hook could ask for (the client, the code, the refresh
   token, the device grant, the users) and puts it in a `Prefetched` on the `OAuthRequest`;
2. **decide** — Authlib runs synchronously on the event loop (pure CPU: parsing, checks, one ES256
   signature). Hooks read from `Prefetched` and record what must be written in an `Outcome`
   (new code, code to consume, refresh token to rotate, ...) — they never write;
3. **commit** — the service applies the `Outcome` with atomic conditional updates. If a guard fails (the
   code or refresh token was used concurrently), the response is replaced by `invalid_grant` and the
   reuse is treated as theft.

The hooks find the current request through a context variable, because Authlib's `query_client` does not
receive the request. No aiohttp or pymongo here.
"""

from __future__ import annotations

import contextvars
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from authlib.oauth2.rfc6749 import AuthorizationServer, ClientMixin, OAuth2Request
from authlib.oauth2.rfc6749 import grants as rfc6749_grants
from authlib.oauth2.rfc6749.errors import (
    InvalidRequestError,
    InvalidScopeError,
    OAuth2Error,
    UnauthorizedClientError,
)
from authlib.oauth2.rfc6749.requests import OAuth2Payload
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oauth2.rfc7636.challenge import compare_s256_code_challenge
from authlib.oauth2.rfc8628 import DeviceAuthorizationEndpoint, DeviceCodeGrant

from libs.common import scopes
from libs.common.passports import PASSPORT_CLAIM
from services.auth import hashing
from services.auth.models import AuthorizationCode, Client, DeviceGrant, RefreshToken, User
from services.auth.signing import KeyRing
from services.auth.visas import current_visas

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
PASSPORT_SCOPE = scopes.GA4GH_PASSPORT
USER_GRANTS = ("authorization_code", "refresh_token", DEVICE_GRANT)
SECRET_AUTH = ["client_secret_basic", "client_secret_post"]
ANY_AUTH = ["client_secret_basic", "client_secret_post", "none"]

Response = tuple[int, Any, list[tuple[str, str]]]


@dataclass(frozen=True)
class OAuthConfig:
    """Lifetimes and identities the grants need (from `AuthSettings`)."""

    issuer: str
    audience: str | list[str]
    verification_uri: str
    access_token_ttl: int = 600
    refresh_token_ttl: int = 30 * 24 * 3600
    code_ttl: int = 60
    device_code_ttl: int = 600
    device_interval: int = 5


@dataclass
class Prefetched:
    """Everything the hooks of one request may read, loaded asynchronously before Authlib runs."""

    now: float
    clients: dict[str, Client] = field(default_factory=dict)
    users: dict[str, User] = field(default_factory=dict)
    code: AuthorizationCode | None = None
    refresh: RefreshToken | None = None
    device: DeviceGrant | None = None
    device_previous_poll: float | None = None


@dataclass
class Outcome:
    """What the hooks decided must be written (applied by the service after Authlib returns)."""

    new_code: AuthorizationCode | None = None
    consume_code: AuthorizationCode | None = None
    reused_code: AuthorizationCode | None = None
    rotate_refresh: RefreshToken | None = None
    reused_refresh: RefreshToken | None = None
    new_refresh: RefreshToken | None = None
    new_device: DeviceGrant | None = None
    device_code: str | None = None
    consume_device: DeviceGrant | None = None
    access_jti: str | None = None
    access_exp: float | None = None


class _Payload(OAuth2Payload):  # type: ignore[misc]
    """Query string and form merged into one multi-valued mapping (first value wins in `data`)."""

    def __init__(self, items: Iterable[tuple[str, str]]) -> None:
        self._datalist: defaultdict[str, list[str]] = defaultdict(list)
        for key, value in items:
            self._datalist[key].append(value)
        self._data = {k: v[0] for k, v in self._datalist.items()}

    @property
    def data(self) -> dict[str, str]:
        return self._data

    @property
    def datalist(self) -> defaultdict[str, list[str]]:
        return self._datalist


class OAuthRequest(OAuth2Request):  # type: ignore[misc]
    """An Authlib request built from an already-read HTTP request, carrying prefetched records."""

    def __init__(
        self,
        method: str,
        uri: str,
        headers: Mapping[str, str],
        items: Iterable[tuple[str, str]],
        prefetched: Prefetched,
    ) -> None:
        super().__init__(method, uri, headers=dict(headers))
        self.payload = _Payload(items)
        self.prefetched = prefetched
        self.outcome = Outcome()

    @property
    def form(self) -> dict[str, str]:
        return self.payload.data

    @property
    def args(self) -> dict[str, str]:
        return self.payload.data


_current: contextvars.ContextVar[OAuthRequest] = contextvars.ContextVar("seqhub_auth_oauth_request")


def _req() -> OAuthRequest:
    return _current.get()


# ---- Authlib model wrappers ----------------------------------------------------------------------------


class OAuthClient(ClientMixin):  # type: ignore[misc]
    def __init__(self, record: Client) -> None:
        self.record = record

    def get_client_id(self) -> str:
        return self.record.client_id

    def get_default_redirect_uri(self) -> str | None:
        uris = self.record.redirect_uris
        return uris[0] if len(uris) == 1 else None

    def get_allowed_scope(self, scope: str | None) -> str | None:
        if not scope:  # RFC 6749 §3.3 default: every concrete scope the client is allowed
            return scopes.format_scopes(s for s in self.record.scopes if "*" not in s)
        requested = scopes.split_scopes(scope)
        allowed = scopes.allowed_subset(requested, self.record.scopes)
        return scopes.format_scopes(requested) if len(allowed) == len(requested) else None

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return redirect_uri in self.record.redirect_uris  # exact string match (RFC 9700 §2.1)

    def check_client_secret(self, client_secret: str) -> bool:
        digest = self.record.secret_digest
        return digest is not None and hashing.matches(client_secret, digest)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return method == "none" if self.record.public else method in SECRET_AUTH

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code" and "authorization_code" in self.record.grant_types

    def check_grant_type(self, grant_type: str) -> bool:
        if grant_type == "client_credentials" and self.record.public:
            return False
        return grant_type in self.record.grant_types


@dataclass
class _Code:
    record: AuthorizationCode

    def get_redirect_uri(self) -> str:
        return self.record.redirect_uri

    def get_scope(self) -> str:
        return self.record.scope

    @property
    def code_challenge(self) -> str:
        return self.record.code_challenge

    @property
    def code_challenge_method(self) -> str:
        return self.record.code_challenge_method


@dataclass
class _Refresh:
    record: RefreshToken

    def check_client(self, client: OAuthClient) -> bool:
        return client.get_client_id() == self.record.client_id

    def get_scope(self) -> str:
        return self.record.scope


@dataclass
class _Device:
    record: DeviceGrant
    now: float

    def get_client_id(self) -> str:
        return self.record.client_id

    def get_scope(self) -> str:
        return self.record.scope

    def get_user_code(self) -> str:
        return self.record.user_code

    def is_expired(self) -> bool:
        return self.record.expires_at <= self.now


@dataclass
class _User:
    record: User

    def get_user_id(self) -> str:
        return self.record.username


def _active_user(username: str | None) -> _User | None:
    user = _req().prefetched.users.get(username or "")
    return _User(user) if user is not None and not user.disabled else None


# ---- grants --------------------------------------------------------------------------------------------


class S256Challenge(CodeChallenge):  # type: ignore[misc]
    """PKCE for every client, S256 only (RFC 9700 §2.1.1): a missing challenge or `plain` is refused."""

    DEFAULT_CODE_CHALLENGE_METHOD = "S256"
    SUPPORTED_CODE_CHALLENGE_METHOD = ["S256"]
    CODE_CHALLENGE_METHODS = {"S256": compare_s256_code_challenge}

    def validate_code_challenge(self, grant: Any, redirect_uri: str) -> None:
        data = grant.request.payload.data
        if not data.get("code_challenge"):
            raise InvalidRequestError("PKCE is required: send code_challenge with code_challenge_method=S256")
        if data.get("code_challenge_method") != "S256":
            raise InvalidRequestError("code_challenge_method must be S256")
        super().validate_code_challenge(grant, redirect_uri)


class _AuthorizationCodeGrant(rfc6749_grants.AuthorizationCodeGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS = ANY_AUTH
    config: OAuthConfig

    def save_authorization_code(self, code: str, request: OAuthRequest) -> None:
        user = request.prefetched.users[request.user.get_user_id()]
        granted = scopes.allowed_subset(scopes.split_scopes(request.scope), user.scopes)
        now = request.prefetched.now
        request.outcome.new_code = AuthorizationCode(
            code_digest=hashing.digest(code),
            client_id=request.client.get_client_id(),
            username=user.username,
            redirect_uri=request.payload.redirect_uri or "",
            scope=scopes.format_scopes(granted),
            code_challenge=request.payload.data["code_challenge"],
            code_challenge_method=request.payload.data["code_challenge_method"],
            auth_time=now,
            expires_at=now + self.config.code_ttl,
            family_id=uuid.uuid4().hex,
        )

    def query_authorization_code(self, code: str, client: OAuthClient) -> _Code | None:
        request = _req()
        record = request.prefetched.code
        if record is None or not hashing.matches(code, record.code_digest):
            return None
        if record.client_id != client.get_client_id() or record.expires_at <= request.prefetched.now:
            return None
        if record.used_at is not None:
            request.outcome.reused_code = record
            return None
        return _Code(record)

    def delete_authorization_code(self, authorization_code: _Code) -> None:
        _req().outcome.consume_code = authorization_code.record

    def authenticate_user(self, authorization_code: _Code) -> _User | None:
        return _active_user(authorization_code.record.username)


class _RefreshTokenGrant(rfc6749_grants.RefreshTokenGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS = ANY_AUTH
    INCLUDE_NEW_REFRESH_TOKEN = True

    def authenticate_refresh_token(self, refresh_token: str) -> _Refresh | None:
        request = _req()
        record = request.prefetched.refresh
        if record is None or not hashing.matches(refresh_token, record.token_digest):
            return None
        if record.revoked_at is not None or record.expires_at <= request.prefetched.now:
            return None
        if record.rotated_at is not None:
            request.outcome.reused_refresh = record
            return None
        return _Refresh(record)

    def authenticate_user(self, refresh_token: _Refresh) -> _User | None:
        return _active_user(refresh_token.record.username)

    def revoke_old_credential(self, refresh_token: _Refresh) -> None:
        _req().outcome.rotate_refresh = refresh_token.record


class _ClientCredentialsGrant(rfc6749_grants.ClientCredentialsGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS = SECRET_AUTH


class _DeviceCodeGrant(DeviceCodeGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS = ANY_AUTH

    def query_device_credential(self, device_code: str) -> _Device | None:
        request = _req()
        record = request.prefetched.device
        if record is None or not hashing.matches(device_code, record.device_code_digest):
            return None
        if record.status == "consumed":
            return None
        return _Device(record, request.prefetched.now)

    def query_user_grant(self, user_code: str) -> tuple[_User | None, bool] | None:
        record = _req().prefetched.device
        if record is None or record.status == "pending":
            return None
        if record.status == "denied":
            return None, False
        user = _active_user(record.username)
        return (user, True) if user is not None else (None, False)

    def should_slow_down(self, credential: _Device) -> bool:
        previous = _req().prefetched.device_previous_poll
        return previous is not None and credential.now - previous < credential.record.interval

    def create_token_response(self) -> Response:
        self.request.outcome.consume_device = self.request.credential.record
        return super().create_token_response()  # type: ignore[no-any-return]


class _DeviceAuthorizationEndpoint(DeviceAuthorizationEndpoint):  # type: ignore[misc]
    CLIENT_AUTH_METHODS = ANY_AUTH
    config: OAuthConfig

    def create_endpoint_response(self, request: OAuthRequest) -> Response:
        client = self.authenticate_client(request)
        if not client.check_grant_type(DEVICE_GRANT):
            raise UnauthorizedClientError("the client may not use the device authorization grant")
        self.server.validate_requested_scope(request.payload.scope)
        if client.get_allowed_scope(request.payload.scope) is None:
            raise InvalidScopeError("the client may not request this scope")
        return super().create_endpoint_response(request)  # type: ignore[no-any-return]

    def generate_user_code(self) -> str:
        return hashing.new_user_code()

    def get_verification_uri(self) -> str:
        return self.config.verification_uri

    def save_device_credential(self, client_id: str, scope: str | None, data: dict[str, Any]) -> None:
        request = _req()
        client = request.prefetched.clients[client_id]
        granted = OAuthClient(client).get_allowed_scope(scope) or ""
        request.outcome.device_code = data["device_code"]
        request.outcome.new_device = DeviceGrant(
            device_code_digest=hashing.digest(data["device_code"]),
            user_code=data["user_code"],
            client_id=client_id,
            scope=granted,
            expires_at=request.prefetched.now + self.EXPIRES_IN,
            interval=self.INTERVAL,
        )


# ---- the server ----------------------------------------------------------------------------------------


class SeqhubAuthorizationServer(AuthorizationServer):  # type: ignore[misc]
    """Authlib's server wired to prefetched records and to the key ring (RFC 9068 access tokens)."""

    def __init__(self, config: OAuthConfig, keyring: Callable[[], KeyRing]) -> None:
        super().__init__(scopes_supported=None)
        self.config = config
        self._keyring = keyring
        code_grant = type("AuthorizationCodeGrant", (_AuthorizationCodeGrant,), {"config": config})
        self.register_grant(code_grant, [S256Challenge(required=True)])
        self.register_grant(_RefreshTokenGrant)
        self.register_grant(_ClientCredentialsGrant)
        self.register_grant(_DeviceCodeGrant)
        device = type("DeviceAuthorizationEndpoint", (_DeviceAuthorizationEndpoint,), {"config": config})
        endpoint = device(self)
        endpoint.EXPIRES_IN = config.device_code_ttl
        endpoint.INTERVAL = config.device_interval
        self.register_endpoint(endpoint)
        self.register_token_generator("default", self._generate_token)

    @contextmanager
    def bound(self, request: OAuthRequest) -> Iterator[OAuthRequest]:
        """Make `request` visible to the hooks for the duration of one synchronous Authlib call."""
        token = _current.set(request)
        try:
            yield request
        finally:
            _current.reset(token)

    # Authlib integration points
    def query_client(self, client_id: str) -> OAuthClient | None:
        record = _req().prefetched.clients.get(client_id)
        return OAuthClient(record) if record is not None and not record.disabled else None

    def save_token(self, token: dict[str, Any], request: OAuthRequest) -> None:
        refresh = token.get("refresh_token")
        if not refresh:
            return
        # Authlib calls save_token before revoke_old_credential / delete_authorization_code: use the
        # validated credential on the request to keep the new refresh token in the grant's family
        previous = request.refresh_token.record if isinstance(request.refresh_token, _Refresh) else None
        code = request.authorization_code.record if isinstance(request.authorization_code, _Code) else None
        family = previous.family_id if previous else code.family_id if code else uuid.uuid4().hex
        now = request.prefetched.now
        request.outcome.new_refresh = RefreshToken(
            token_digest=hashing.digest(refresh),
            family_id=family,
            client_id=request.client.get_client_id(),
            username=request.user.get_user_id(),
            scope=token.get("scope", ""),
            issued_at=now,
            expires_at=now + self.config.refresh_token_ttl,
        )

    def create_oauth2_request(self, request: OAuthRequest) -> OAuthRequest:
        return request

    def create_json_request(self, request: Any) -> Any:
        raise NotImplementedError("seqhub sends no JSON requests to Authlib")

    def handle_response(self, status: int, body: Any, headers: list[tuple[str, str]]) -> Response:
        return status, body, list(headers)

    def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
        return None

    def validate_requested_scope(self, scope: str | None) -> None:
        try:
            scopes.parse_scopes(scope)
        except scopes.InvalidScopeError as exc:
            raise InvalidScopeError(str(exc).replace("'", "")) from None

    def _generate_token(
        self,
        grant_type: str,
        client: OAuthClient,
        user: _User | None = None,
        scope: str | None = None,
        expires_in: int | None = None,
        include_refresh_token: bool = True,
    ) -> dict[str, Any]:
        if user is None:  # client credentials: an omitted scope means the client's default (RFC 6749 §3.3)
            scope = client.get_allowed_scope(scope)
            if scope is None:
                raise InvalidScopeError()
        else:  # user grants: exactly what the user granted (never widened to a default), within the client's
            scope = scopes.format_scopes(scopes.allowed_subset(scopes.split_scopes(scope), client.record.scopes))
        request = _req()
        now = int(request.prefetched.now)
        ttl = expires_in or self.config.access_token_ttl
        claims = access_token_claims(
            issuer=self.config.issuer,
            audience=self.config.audience,
            subject=user.get_user_id() if user else client.get_client_id(),
            client_id=client.get_client_id(),
            scope=scope,
            now=now,
            ttl=ttl,
        )
        if user is not None and PASSPORT_SCOPE in scopes.split_scopes(scope) and user.record.visas:
            # embedded passport: resource services evaluate the visas locally (libs.common.passports)
            claims[PASSPORT_CLAIM] = current_visas(
                self._keyring(),
                issuer=self.config.issuer,
                username=user.get_user_id(),
                visas=user.record.visas,
                now=now,
            )
        request.outcome.access_jti, request.outcome.access_exp = claims["jti"], claims["exp"]
        token: dict[str, Any] = {
            "token_type": "Bearer",
            "access_token": self._keyring().sign(claims),
            "expires_in": ttl,
            "scope": scope,
        }
        if include_refresh_token and user is not None and grant_type in USER_GRANTS:
            token["refresh_token"] = hashing.new_token(hashing.REFRESH_PREFIX)
        return token


def access_token_claims(
    *, issuer: str, audience: str | list[str], subject: str, client_id: str, scope: str, now: int, ttl: int
) -> dict[str, Any]:
    """The RFC 9068 claim set of an access token."""
    return {
        "iss": issuer,
        "sub": subject,
        "aud": audience,
        "exp": now + ttl,
        "iat": now,
        "nbf": now,
        "jti": uuid.uuid4().hex,
        "client_id": client_id,
        "scope": scope,
    }


def error_response(error: OAuth2Error) -> Response:
    """An Authlib error as (status, body, headers), e.g. to replace a response after a failed guard."""
    status, body, headers = error()
    return status, body, list(headers)


def now() -> float:
    return time.time()
