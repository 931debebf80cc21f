"""Typed app keys of the ingest service (shared ones are in libs.common.keys)."""

from __future__ import annotations

from aiohttp import web

from services.ingest.service import Ingest
from services.ingest.settings import IngestSettings

settings = web.AppKey("ingest_settings", IngestSettings)
ingest = web.AppKey("ingest", Ingest)
