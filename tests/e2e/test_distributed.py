"""The platform as separate processes (`make run-distributed`'s mechanism) on RabbitMQ and the database server.

The auth service disables an OAuth2 client; its TokenRevoked event travels through the outbox and RabbitMQ to
every resource service, which stores it and from then on rejects the client's still-unexpired token.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from services import platform
from tests.e2e.pipeline import ADMIN_ID, ADMIN_SECRET, distributed

pytestmark = pytest.mark.e2e


@pytest.fixture
def cluster(mongo_url: str, amqp_url: str, tmp_path: Path) -> Iterator[platform.Distributed]:
    with distributed(mongo_url, amqp_url, tmp_path) as cluster:
        yield cluster


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
