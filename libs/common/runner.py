"""Process entry points: run one service (standalone) or several in one process (embedded), or apply indexes.

`python -m services.<name>` calls `run_standalone`; `python -m services` calls `serve` with all five.
`--ensure-indexes` starts only the database context of each app (the Kubernetes index Job) and exits.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from libs.common import keys
from libs.common.config import CommonSettings
from libs.common.logs import configure_logging
from libs.common.web import root_app

log = logging.getLogger(__name__)


def serve(apps: Mapping[str, web.Application], settings: CommonSettings, *, banner: bool = True) -> None:
    """Serve the apps under their prefixes on one port until SIGINT/SIGTERM, then drain and stop."""
    http = settings.http
    if banner:
        base = f"http://{http.host}:{http.port}"
        lines = ["seqhub is starting:"] + [f"  {prefix.strip('/'):<11} {base}{prefix}/" for prefix in apps]
        lines += [f"  health      {base}{next(iter(apps))}/readyz", "Ctrl-C stops it."]
        print("\n".join(lines), flush=True)
    web.run_app(root_app(apps), host=http.host, port=http.port, shutdown_timeout=http.shutdown_timeout,
                access_log=None, print=None)


async def ensure_indexes(apps: Mapping[str, web.Application]) -> None:
    """Run the startup contexts of each app just far enough to apply its indexes (mongo is the 2nd context)."""
    for prefix, app in apps.items():
        contexts: list[Any] = [ctx(app) for ctx in list(app.cleanup_ctx)[:2]]
        for ctx in contexts:
            await anext(ctx)
        log.info("indexes applied", extra={"service": app[keys.service_name], "prefix": prefix})
        for ctx in reversed(contexts):
            await anext(ctx, None)


def run_standalone(prefix: str, app: web.Application, settings: CommonSettings) -> None:
    """Entry point of `python -m services.<name>`."""
    parser = argparse.ArgumentParser(prog=f"python -m services.{prefix.strip('/')}",
                                     description=f"Run the seqhub {prefix.strip('/')} service on its own.")
    parser.add_argument("--ensure-indexes", action="store_true", help="apply database indexes and exit")
    args = parser.parse_args()
    configure_logging(settings.log_level, json_lines=settings.log_json)
    if args.ensure_indexes:
        asyncio.run(ensure_indexes({prefix: app}))
        return
    serve({prefix: app}, settings, banner=False)
