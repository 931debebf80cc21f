"""Typed app keys of the auth service (shared ones are in libs.common.keys)."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from services.auth.accounts import Accounts
from services.auth.ratelimit import RateLimiter
from services.auth.service import AuthService
from services.auth.settings import AuthSettings


@dataclass(frozen=True)
class Limits:
    """Per-process rate limiters of the abuse-prone endpoints."""

    login: RateLimiter
    token: RateLimiter
    device: RateLimiter


settings = web.AppKey("auth_settings", AuthSettings)
service = web.AppKey("auth_service", AuthService)
accounts = web.AppKey("auth_accounts", Accounts)
limits = web.AppKey("auth_limits", Limits)
