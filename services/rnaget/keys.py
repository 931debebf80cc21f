"""Typed app keys of the rnaget service (shared ones are in libs.common.keys)."""

from __future__ import annotations

from aiohttp import web

from services.rnaget.settings import RnagetSettings

settings = web.AppKey("rnaget_settings", RnagetSettings)
