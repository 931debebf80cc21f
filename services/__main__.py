"""`python -m services`: the whole platform. Embedded (default): one process, one port, every service under
its prefix, the local MongoDB-compatible server with data in ./var/db, the embedded bus and files in ./var.
`--distributed`: each service as its own process against RabbitMQ and the same database server."""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from libs.common.config import CommonSettings
from libs.common.logs import configure_logging
from libs.common.runner import serve
from services import platform

DEFAULT_AMQP = "amqp://guest:guest@127.0.0.1:5672/"


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m services", description=__doc__)
    parser.add_argument("--distributed", action="store_true", help="one process per service (needs RabbitMQ)")
    parser.add_argument("--var", type=Path, default=Path("var"), help="where data lives (default ./var)")
    parser.add_argument("--no-database", action="store_true",
                        help="do not start the local database server (SEQHUB_MONGO_URL points at one)")
    args = parser.parse_args()
    os.environ.setdefault("SEQHUB_FILES_ROOT", str(args.var / "files"))
    os.environ.setdefault("SEQHUB_DATA_ROOT", str(args.var / "data"))
    settings = CommonSettings()
    configure_logging(settings.log_level, json_lines=settings.log_json)
    database = None
    if not args.no_database and not platform.database_running(settings.mongo_url):
        args.var.mkdir(parents=True, exist_ok=True)
        database = platform.start_database(settings.mongo_url, args.var / "db", log_file=args.var / "db.log")
    try:
        if args.distributed:
            _run_distributed(settings, args.var)
        else:
            serve(platform.build_apps(), settings)
    finally:
        if database is not None:
            database.terminate()
            try:
                database.wait(30)
            except subprocess.TimeoutExpired:
                database.kill()


def _run_distributed(settings: CommonSettings, var: Path) -> None:
    base = settings.http_port
    ports = {name: base + 1 + i for i, name in enumerate(platform.SERVICE_NAMES)}
    env = {
        "SEQHUB_BUS_URL": os.environ.get("SEQHUB_BUS_URL", DEFAULT_AMQP) if settings.bus_url == "embedded"
        else settings.bus_url,
        "SEQHUB_AUTH_ISSUER": os.environ.get("SEQHUB_AUTH_ISSUER", f"http://127.0.0.1:{ports['auth']}/auth"),
    }
    (var / "logs").mkdir(parents=True, exist_ok=True)
    cluster = platform.Distributed(env=env, log_dir=var / "logs")
    stop = False

    def _stop(*_: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, _stop)
    try:
        cluster.start_all(ports)
        print("seqhub (distributed) is running:", *(f"  {n:<11} {cluster.url(n)}/" for n in ports),
              f"  logs        {var / 'logs'}", "Ctrl-C stops it.", sep="\n", flush=True)
        while not stop and all(p.poll() is None for p in cluster.processes.values()):
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        cluster.stop()
    dead = [n for n, p in cluster.processes.items() if p.returncode not in (0, -signal.SIGTERM, None)]
    if dead and not stop:
        sys.exit(f"stopped because these services exited: {', '.join(dead)} (see {var / 'logs'})")


if __name__ == "__main__":
    main()
