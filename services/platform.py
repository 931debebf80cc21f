"""Starting the platform: the local MongoDB-compatible server, all services in one process, or one process each.

Used by `make run` (embedded), `make run-distributed` and the end-to-end tests, so that what the tests start is
exactly what a newcomer starts.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO
from urllib.parse import urlparse

from aiohttp import web

from libs.common.config import from_environment

SERVICE_NAMES = ("auth", "ingest", "repository", "beacon", "rnaget")


def build_apps() -> dict[str, web.Application]:
    """Every service's app, keyed by its prefix, each built from its own settings (environment)."""
    from services.auth.app import PREFIX as AUTH
    from services.auth.app import create_app as auth_app
    from services.auth.settings import AuthSettings
    from services.beacon.app import PREFIX as BEACON
    from services.beacon.app import create_app as beacon_app
    from services.beacon.settings import BeaconSettings
    from services.ingest.app import PREFIX as INGEST
    from services.ingest.app import create_app as ingest_app
    from services.ingest.settings import IngestSettings
    from services.repository.app import PREFIX as REPOSITORY
    from services.repository.app import create_app as repository_app
    from services.repository.settings import RepositorySettings
    from services.rnaget.app import PREFIX as RNAGET
    from services.rnaget.app import create_app as rnaget_app
    from services.rnaget.settings import RnagetSettings

    return {
        AUTH: auth_app(from_environment(AuthSettings)),
        INGEST: ingest_app(from_environment(IngestSettings)),
        REPOSITORY: repository_app(from_environment(RepositorySettings)),
        BEACON: beacon_app(from_environment(BeaconSettings)),
        RNAGET: rnaget_app(from_environment(RnagetSettings)),
    }


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(host: str, port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            sock.settimeout(0.5)
            if sock.connect_ex((host, port)) == 0:
                return
        time.sleep(0.1)
    raise TimeoutError(f"nothing listens on {host}:{port} after {timeout:.0f}s")


def start_database(mongo_url: str, storage: Path | str, *, log_file: Path | None = None) -> subprocess.Popen[bytes]:
    """Start secantusd-py (the MongoDB-compatible server) for `mongo_url` with data under `storage`."""
    server = shutil.which("secantusd-py") or str(Path(sys.executable).with_name("secantusd-py"))
    parsed = urlparse(mongo_url)
    host, port = parsed.hostname or "127.0.0.1", parsed.port or 27017
    if str(storage) != ":memory:":
        Path(storage).mkdir(parents=True, exist_ok=True)
    out = log_file.open("ab") if log_file else subprocess.DEVNULL
    process = subprocess.Popen(
        [server, "--host", host, "--port", str(port), "--storage-path", str(storage), "--log-level", "WARNING",
         "--sync-on-commit"],
        stdout=out, stderr=subprocess.STDOUT,
        # its own session: a terminal's Ctrl-C (SIGINT to the foreground group) must not stop the database
        # before the services have drained and closed their connections; the launcher stops it last
        start_new_session=True,
    )
    try:
        wait_for_port(host, port, 60)
    except TimeoutError:
        process.kill()
        raise
    return process


def database_running(mongo_url: str) -> bool:
    parsed = urlparse(mongo_url)
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((parsed.hostname or "127.0.0.1", parsed.port or 27017)) == 0


@dataclass
class Distributed:
    """Each service as its own OS process on its own port, sharing the database server and RabbitMQ."""

    env: Mapping[str, str]
    ports: dict[str, int] = field(default_factory=dict)
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    log_dir: Path | None = None
    _logs: dict[str, BinaryIO] = field(default_factory=dict)

    def start(self, name: str, port: int) -> None:
        env = {**os.environ, **self.env, "SEQHUB_HTTP_PORT": str(port)}
        out: int | BinaryIO = subprocess.DEVNULL
        if self.log_dir:
            if name in self._logs:
                self._logs[name].close()
            out = self._logs[name] = (self.log_dir / f"{name}.log").open("ab")
        self.processes[name] = subprocess.Popen([sys.executable, "-m", f"services.{name}"], env=env, stdout=out,
                                                stderr=subprocess.STDOUT)
        self.ports[name] = port

    def start_all(self, ports: Mapping[str, int]) -> None:
        for name, port in ports.items():
            self.start(name, port)
        for port in ports.values():
            wait_for_port("127.0.0.1", port, 60)

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.ports[name]}/{name}"

    def kill(self, name: str) -> None:
        self.processes[name].kill()
        self.processes[name].wait()

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.terminate()
        for process in self.processes.values():
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        for handle in self._logs.values():
            handle.close()
