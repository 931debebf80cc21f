"""Typed app keys of the auth service (shared ones are in libs.common.keys)."""

from __future__ import annotations

from aiohttp import web

from services.auth.settings import AuthSettings

settings = web.AppKey("auth_settings", AuthSettings)
