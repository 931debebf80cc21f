"""Typed app keys of the repository service (shared ones are in libs.common.keys)."""

from __future__ import annotations

from aiohttp import web

from services.repository.settings import RepositorySettings
from services.repository.store import MongoResourceStore

settings = web.AppKey("repository_settings", RepositorySettings)
resource_store = web.AppKey("resource_store", MongoResourceStore)
# the path the service is mounted at ("/repository" in the platform, "" standalone), known from start-up on
mount_path = web.AppKey("repository_mount_path", str)
