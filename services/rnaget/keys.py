"""Typed app keys of the rnaget service (shared ones are in libs.common.keys)."""

from __future__ import annotations

from aiohttp import web

from services.rnaget.service import MatrixFiles
from services.rnaget.settings import RnagetSettings
from services.rnaget.store import MetadataStore

settings = web.AppKey("rnaget_settings", RnagetSettings)
metadata_store = web.AppKey("rnaget_metadata_store", MetadataStore)
matrix_files = web.AppKey("rnaget_matrix_files", MatrixFiles)
