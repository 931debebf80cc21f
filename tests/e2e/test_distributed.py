"""The platform as separate processes (`make run-distributed`'s mechanism) on RabbitMQ and the database server.

The auth service disables an OAuth2 client; its TokenRevoked event travels through the outbox and RabbitMQ to
every resource service, which stores it and from then on rejects the client's still-unexpired token.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from services import platform

pytestmark = pytest.mark.e2e
ADMIN_ID, ADMIN_SECRET = "e2e-ops", "e2e-ops-secret-0123456789"


@pytest.fixture
def cluster(mongo_url: str, amqp_url: str, tmp_path: Path) -> Iterator[platform.Distributed]:
    ports = {name: platform.free_port() for name in platform.SERVICE_NAMES}
    tag = os.urandom(4).hex()
    env = {
        "SEQHUB_MONGO_URL": mongo_url, "SEQHUB_DB_PREFIX": f"e2e{tag}_", "SEQHUB_BUS_URL": amqp_url,
        "SEQHUB_BUS_EXCHANGE": f"e2e.{tag}.events", "SEQHUB_BUS_DEAD_EXCHANGE": f"e2e.{tag}.dead",
        "SEQHUB_BUS_QUEUE_PREFIX": f"e2e.{tag}.", "SEQHUB_FILES_ROOT": str(tmp_path / "files"),
        "SEQHUB_DATA_ROOT": str(tmp_path / "data"), "SEQHUB_AUTH_ISSUER": f"http://127.0.0.1:{ports['auth']}/auth",
        "SEQHUB_AUTH_BOOTSTRAP_CLIENT_ID": ADMIN_ID, "SEQHUB_AUTH_BOOTSTRAP_CLIENT_SECRET": ADMIN_SECRET,
    }
    cluster = platform.Distributed(env=env, log_dir=tmp_path)
    try:
        cluster.start_all(ports)
        for name in ports:
            _wait_ready(f"{cluster.url(name)}/readyz")
        yield cluster
    finally:
        cluster.stop()


def _wait_ready(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"{url} not ready after {timeout}s")


def _token(auth: str, client_id: str, secret: str, scope: str) -> str:
    response = httpx.post(f"{auth}/token", data={"grant_type": "client_credentials", "scope": scope},
                          auth=(client_id, secret), timeout=10)
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


def test_revocation_published_by_auth_is_enforced_by_every_other_process(cluster: platform.Distributed) -> None:
    auth = cluster.url("auth")
    admin = {"Authorization": f"Bearer {_token(auth, ADMIN_ID, ADMIN_SECRET, 'admin')}"}
    created = httpx.post(f"{auth}/admin/clients", headers=admin, timeout=10, json={
        "client_id": "e2e-instrument", "name": "sequencer", "grant_types": ["client_credentials"],
        "scopes": ["ingest:upload", "rnaget:read"]})
    assert created.status_code == 201, created.text
    token = _token(auth, "e2e-instrument", created.json()["client_secret"], "rnaget:read")
    bearer = {"Authorization": f"Bearer {token}"}
    resources = [f"{cluster.url(name)}/readyz" for name in ("ingest", "repository", "beacon", "rnaget")]
    for url in resources:  # the auth middleware verifies any bearer token it is given, against auth's JWKS
        assert httpx.get(url, headers=bearer, timeout=10).status_code == 200, url

    assert httpx.post(f"{auth}/admin/clients/e2e-instrument/disable", headers=admin, timeout=10).status_code == 200

    deadline = time.monotonic() + 30
    pending = set(resources)
    while pending and time.monotonic() < deadline:
        pending = {url for url in pending if httpx.get(url, headers=bearer, timeout=10).status_code != 401}
        time.sleep(0.2)
    assert not pending, f"still accepting a revoked client's token: {sorted(pending)}"
