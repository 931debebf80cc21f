"""`make run`'s mechanism: `python -m services` — every service in one process on one port, the local database
server with data under --var. Ready within 60 s; Ctrl-C (SIGINT to the process group) stops it cleanly; the next
start finds the data again."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from services import platform

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
PREFIXES = ("auth", "ingest", "repository", "beacon", "rnaget")
ADMIN_ID, ADMIN_SECRET = "embedded-ops", "embedded-ops-secret-0123456789"


class Embedded:
    def __init__(self, var: Path) -> None:
        self.var = var
        self.port = platform.free_port()
        self.db_port = platform.free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> float:
        env = {**os.environ, "SEQHUB_HTTP_PORT": str(self.port), "SEQHUB_MONGO_URL": f"mongodb://127.0.0.1:{self.db_port}/",
               "SEQHUB_AUTH_ISSUER": f"{self.base}/auth", "SEQHUB_AUTH_BOOTSTRAP_CLIENT_ID": ADMIN_ID,
               "SEQHUB_AUTH_BOOTSTRAP_CLIENT_SECRET": ADMIN_SECRET}
        env.pop("SEQHUB_BUS_URL", None)
        started = time.monotonic()
        self.process = subprocess.Popen([sys.executable, "-m", "services", "--var", str(self.var)], cwd=ROOT, env=env,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        pending = set(PREFIXES)
        while pending and time.monotonic() - started < 60:
            for prefix in list(pending):
                try:
                    if httpx.get(f"{self.base}/{prefix}/readyz", timeout=2).status_code == 200:
                        pending.discard(prefix)
                except httpx.TransportError:
                    pass
            time.sleep(0.2)
        assert not pending, f"not ready within 60 s: {sorted(pending)}"
        return time.monotonic() - started

    def interrupt(self) -> int:
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGINT)  # what Ctrl-C in the terminal does
        return self.process.wait(60)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


@pytest.fixture
def embedded(tmp_path: Path) -> Iterator[Embedded]:
    platform_ = Embedded(tmp_path / "var")
    yield platform_
    platform_.kill()
    subprocess.run(["pkill", "-f", f"--port {platform_.db_port}"], check=False)


def _admin(base: str) -> dict[str, str]:
    response = httpx.post(f"{base}/auth/token", data={"grant_type": "client_credentials", "scope": "admin"},
                          auth=(ADMIN_ID, ADMIN_SECRET), timeout=10)
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def test_embedded_platform_starts_stops_on_ctrl_c_and_keeps_its_data(embedded: Embedded) -> None:
    assert embedded.start() < 60
    created = httpx.post(f"{embedded.base}/auth/admin/clients", headers=_admin(embedded.base), timeout=10, json={
        "client_id": "kept-client", "name": "persistence check", "grant_types": ["client_credentials"],
        "scopes": ["rnaget:read"]})
    assert created.status_code == 201, created.text
    assert embedded.interrupt() == 0
    assert not platform.database_running(f"mongodb://127.0.0.1:{embedded.db_port}/")  # stopped with the platform

    embedded.start()
    clients = httpx.get(f"{embedded.base}/auth/admin/clients", headers=_admin(embedded.base), timeout=10).json()
    assert "kept-client" in {c["client_id"] for c in clients}
    assert embedded.interrupt() == 0
