"""HTTP entry points of the rnaget service: thin handlers that parse, call a use case, serialise."""

from __future__ import annotations

from aiohttp import web

from libs.common import keys as common_keys

routes = web.RouteTableDef()


@routes.get("/service-info")
async def service_info(request: web.Request) -> web.Response:
    """GA4GH service-info (https://github.com/ga4gh-discovery/ga4gh-service-info)."""
    common = request.app[common_keys.common_settings]
    return web.json_response({
        "id": "org.seqhub.rnaget",
        "name": "seqhub rnaget",
        "type": {"group": "org.ga4gh", "artifact": "rnaget", "version": "1.0.0"},
        "organization": {"name": "seqhub", "url": common.public_url},
        "version": "0.1.0",
    })
