"""HTTP entry points of the ingest service: thin handlers that parse, call a use case, serialise."""

from __future__ import annotations

from aiohttp import web

routes = web.RouteTableDef()
