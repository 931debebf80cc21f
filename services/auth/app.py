"""Composition root of the auth service: `create_app(settings)` wires everything and does no I/O."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path

from aiohttp import web

from libs.common import keys as common_keys
from libs.common.periodic import periodic
from libs.common.web import service_app
from services.auth import api, consumers, keys
from services.auth.accounts import Accounts
from services.auth.bootstrap import bootstrap
from services.auth.oauth import OAuthConfig, SeqhubAuthorizationServer
from services.auth.ratelimit import RateLimiter
from services.auth.service import AuthService, KeyHolder, LoginPolicy
from services.auth.settings import AuthSettings, read_pinned_key
from services.auth.store import INDEXES, AuthStore

PREFIX = "/auth"
log = logging.getLogger(__name__)
OPENAPI = Path(__file__).with_name("openapi.yaml")


def create_app(settings: AuthSettings) -> web.Application:
    # Authlib logs whole token responses at DEBUG: never let a debug log level leak tokens
    logging.getLogger("authlib").setLevel(logging.INFO)
    app = service_app(
        "auth",
        settings.common,
        subscriptions=consumers.SUBSCRIPTIONS,
        authenticate=False,
        indexes=INDEXES,
        contexts=[_auth_ctx],
        openapi=OPENAPI if OPENAPI.exists() else None,
    )
    app.middlewares.append(api.oauth_errors)
    app[keys.settings] = settings
    app[keys.limits] = keys.Limits(
        login=RateLimiter(settings.login_rate, settings.login_burst),
        token=RateLimiter(settings.token_rate, settings.token_burst),
        device=RateLimiter(settings.device_rate, settings.device_burst),
    )
    app.add_routes(api.routes)
    return app


def oauth_config(settings: AuthSettings) -> OAuthConfig:
    issuer = settings.common.auth_issuer.rstrip("/")
    return OAuthConfig(
        issuer=issuer,
        audience=settings.common.auth_audience,
        verification_uri=f"{issuer}/device",
        access_token_ttl=settings.access_token_ttl,
        refresh_token_ttl=settings.refresh_token_ttl,
        code_ttl=settings.code_ttl,
        device_code_ttl=settings.device_code_ttl,
        device_interval=settings.device_interval,
    )


async def _auth_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[keys.settings]
    config = oauth_config(settings)
    store = AuthStore(app[common_keys.mongo_db])
    holder = KeyHolder()
    outbox = app[common_keys.outbox]
    accounts = Accounts(store, holder, outbox, issuer=config.issuer)
    if settings.signing_key_file is not None:
        pinned = read_pinned_key(settings.signing_key_file)
        if await accounts.import_pinned_key(
            pinned, prepublish_seconds=settings.key_prepublish_seconds, keep_seconds=settings.key_keep_seconds
        ):
            log.info("pinned signing key imported", extra={"kid": pinned.kid})
    await accounts.load_keys()
    await bootstrap(accounts, settings)
    server = SeqhubAuthorizationServer(config, lambda: holder.ring)
    policy = LoginPolicy(
        max_failures=settings.login_max_failures,
        lock_seconds=settings.lockout_seconds,
        session_ttl=settings.session_ttl,
    )
    app[keys.accounts] = accounts
    app[keys.service] = AuthService(store, server, holder, outbox, login=policy)
    # pick up key rotations done by another replica (the rotated-in key is published before it signs)
    async with periodic(
        settings.key_reload_seconds,
        accounts.load_keys,
        name="auth-key-reload",
        failure="could not reload the signing keys; keeping the current ones",
        log=log,
    ):
        yield
